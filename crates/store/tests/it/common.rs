//! Shared helpers: external tools, free ports, daemons killed on drop, a raw HTTP server.

use std::{
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// `crates/store/tests/js`, where package.json pins js-ipfs, arlocal and arweave.
pub(crate) fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("js")
}

/// True under CI, where a missing tool is a failure rather than a skip.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns `false` (after saying why) when a prerequisite is missing locally; panics under
/// `CI=true`, where every backend must really be tested.
pub(crate) fn require(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    assert!(!in_ci(), "CI=true but {what} is missing; scripts/test installs it");
    eprintln!("SKIPPED: {what} is missing (run scripts/test to install it)");
    false
}

/// Whether `program --version` runs.
pub(crate) fn tool_runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether node and the npm packages of tests/js are installed.
pub(crate) fn js_servers_available() -> bool {
    require(tool_runs("node", &["--version"]), "node")
        && require(
            js_dir().join("node_modules").join("ipfs").is_dir(),
            "crates/store/tests/js/node_modules (npm ci)",
        )
}

/// `crates/store/tests/helia`, where package.json pins Helia's HTTP node, UnixFS and CAR
/// packages (a separate install: they need newer versions of shared packages than js-ipfs).
pub(crate) fn helia_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("helia")
}

/// Whether node and the npm packages of tests/helia are installed.
pub(crate) fn helia_available() -> bool {
    require(tool_runs("node", &["--version"]), "node")
        && require(
            helia_dir().join("node_modules").join("@helia").join("car").is_dir(),
            "crates/store/tests/helia/node_modules (npm ci)",
        )
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process (a server) that is killed when the test ends, however it ends.
pub(crate) struct Daemon {
    pub(crate) name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `command` with stdout and stderr going to `log`.
    pub(crate) fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child, log }
    }

    /// The server's output so far, for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `url` with `method` until it answers 2xx, or panics with the server's log.
    pub(crate) async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
    ) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(90) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited with {status} before it was ready:\n{}", self.name, self.log());
            }
            let request = client.request(method.clone(), url).timeout(Duration::from_secs(2));
            if let Ok(response) = request.send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{} not ready at {url} after 90 s:\n{}", self.name, self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the raw test server answers for a path.
#[derive(Clone)]
pub(crate) enum Route {
    /// 200 with these bytes and a correct Content-Length.
    Ok(Vec<u8>),
    /// An error status with a body.
    Status(u16, &'static str),
    /// Announces the full length, sends only the first `sent` bytes, closes the connection.
    Truncated { body: Vec<u8>, sent: usize },
    /// 200 with these bytes as `application/vnd.ipld.car` (a trustless gateway's answer).
    Car(Vec<u8>),
    /// Announces a CAR of the full length, sends the first `sent` bytes, then holds the
    /// connection open without a word (a peer that stalls mid-transfer).
    StalledCar { body: Vec<u8>, sent: usize },
}

/// A plain HTTP/1.1 server on 127.0.0.1 written against raw TCP, so it can misbehave on purpose
/// (truncate bodies) in ways a framework would not allow.
pub(crate) struct RawHttpServer {
    pub(crate) base: String,
    pub(crate) requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RawHttpServer {
    pub(crate) async fn start(routes: Vec<(&'static str, Route)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let routes = Arc::new(routes);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let routes = routes.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let route = routes.iter().find(|(p, _)| *p == path).map(|(_, r)| r.clone());
                    let (head, body): (String, &[u8]) = match &route {
                        Some(Route::Ok(body)) => (header(200, "OK", body.len()), body),
                        Some(Route::Car(body)) => (
                            header(200, "OK", body.len()).replace(
                                "Connection",
                                "Content-Type: application/vnd.ipld.car; version=1\r\nConnection",
                            ),
                            body,
                        ),
                        Some(Route::Status(code, body)) => {
                            (header(*code, "Error", body.len()), body.as_bytes())
                        }
                        Some(Route::Truncated { body, sent }) => {
                            (header(200, "OK", body.len()), &body[..*sent])
                        }
                        Some(Route::StalledCar { body, sent }) => {
                            let head = header(200, "OK", body.len()).replace(
                                "Connection",
                                "Content-Type: application/vnd.ipld.car; version=1\r\nConnection",
                            );
                            let _ = socket.write_all(head.as_bytes()).await;
                            let _ = socket.write_all(&body[..*sent]).await;
                            std::future::pending::<()>().await;
                            return;
                        }
                        None => (header(404, "Not Found", 9), b"not found"),
                    };
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { base, requests, task }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for RawHttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn header(code: u16, reason: &str, length: usize) -> String {
    format!("HTTP/1.1 {code} {reason}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
}

/// Deterministic pseudo-random bytes (xorshift), so sizes and hashes are reproducible.
pub(crate) fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Names of temp files left in a store directory.
pub(crate) fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".incoming-"))
        .collect()
}
