//! The whole flow on `npx hardhat node`, a chain nobody here wrote, with a tiny model generated in
//! code: the kernel deployed, the model served over HTTP and registered, three workers that fetch
//! it (hash- and Merkle-checked) and serve a topic of three prompts, each of which verifies and
//! whose model input is pinned to the token ids of the conversation written out by hand.

use std::{
    net::TcpListener as StdListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::context_tokens::{chatml, hf_ids, hf_tokenizer};
use aik_devnet::{DEV_MNEMONIC, derive_dev_accounts};
use aik_infer::{
    ExecOptions, LlamaGgufDriver,
    fixture::{TinyLlamaSpec, tiny_llama_gguf},
};
use aik_kernel::{
    DataSource, DeployParams, KernelClient, PromptRequest, PromptStatus, WorkerStatus,
    bindings::DecentralizedInference as DI, load_context, output_hash, wallet_provider,
};
use aik_node::{
    Engine, NodeDb, Worker, WorkerConfig, fetch_model,
    network::{deploy, fund_workers, model_spec},
    registered_model,
};
use aik_store::{FetchConfig, Fetcher, LocalStore, NoProgress};
use alloy::{
    primitives::{B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

/// A `hardhat node` child process (contracts/hardhat, installed by scripts/test), killed and
/// reaped on drop.
struct HardhatNode {
    child: Child,
    port: u16,
}

impl HardhatNode {
    fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/hardhat");
        let cli = dir.join("node_modules/hardhat/internal/cli/cli.js");
        assert!(
            cli.exists(),
            "hardhat is not installed at {}: run scripts/test (it runs npm ci in contracts/hardhat)",
            cli.display()
        );
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // cli.js runs the node in this very process, so killing the child stops the chain.
        let child = Command::new("node")
            .arg(&cli)
            .args(["node", "--hostname", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(&dir)
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs hardhat");
        Self { child, port }
    }

    fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for HardhatNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves one file at `/<name>` over HTTP/1.1 on 127.0.0.1 (404 for anything else), counting
/// requests; stops when dropped.
struct FileServer {
    url: String,
    requests: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl FileServer {
    async fn start(name: &str, body: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/{name}", listener.local_addr().unwrap());
        let (path, body) = (format!("/{name}"), Arc::new(body));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let accept = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (path, body, counter) = (path.clone(), Arc::clone(&body), Arc::clone(&counter));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let line = String::from_utf8_lossy(&head);
                    let wanted = line.split_whitespace().nth(1).unwrap_or("");
                    let (status, body): (&str, &[u8]) =
                        if wanted == path { ("200 OK", &body) } else { ("404 Not Found", b"") };
                    let header = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(header.as_bytes()).await;
                    let _ = stream.write_all(body).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, requests, accept }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Waits until prompt `id` is finalized, failing on a refund or after a minute.
async fn finalized(client: &KernelClient<DynProvider>, id: U256) -> B256 {
    let started = Instant::now();
    loop {
        let (status, hash, _) = client.result(id).await.unwrap();
        match status {
            PromptStatus::Finalized => {
                eprintln!("prompt {id} finalized in {:.2} s", started.elapsed().as_secs_f64());
                return hash;
            }
            PromptStatus::Refunded => panic!("prompt {id} was refunded"),
            _ => {}
        }
        assert!(started.elapsed() < Duration::from_secs(60), "prompt {id} still {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_serve_a_generated_model_on_hardhat_node() {
    let node = HardhatNode::start();
    let accounts = derive_dev_accounts(DEV_MNEMONIC, 6).unwrap();
    let owner = accounts[0].signer.clone();
    let probe = wallet_provider(&node.http_url(), owner.clone()).unwrap();
    let started = Instant::now();
    while probe.get_chain_id().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(90), "hardhat node did not answer in 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("hardhat node up after {:.1} s", started.elapsed().as_secs_f64());

    // The model: generated, served over HTTP and registered under that URI only.
    let dir = tempfile::tempdir().unwrap();
    let model_bytes = tiny_llama_gguf(&TinyLlamaSpec::default()).unwrap();
    let model_file = dir.path().join("tiny.gguf");
    std::fs::write(&model_file, &model_bytes).unwrap();
    let server = FileServer::start("tiny.gguf", model_bytes.clone()).await;
    let spec = model_spec(&model_file, "tiny", vec![server.url.clone()], 3).unwrap();
    let params = DeployParams::dev(owner.address());
    let deployment =
        deploy(&node.http_url(), Some(node.ws_url()), &owner, &params, &spec).await.unwrap();
    assert_eq!(deployment.chain_id, 31337);
    let workers: Vec<_> = accounts[1..4].iter().map(|a| a.address).collect();
    fund_workers(&deployment, &owner, &workers, params.min_stake).await.unwrap();

    // Each worker fetches the registered model into its own store, as separate machines would.
    let model_id = U256::from(deployment.model_id);
    let fetcher = Fetcher::new(&FetchConfig::default()).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (i, account) in accounts[1..4].iter().enumerate() {
        let mut config = WorkerConfig::new(
            deployment.rpc_url.clone(),
            account.signer.clone(),
            deployment.addresses(),
        );
        config.ws_url = deployment.ws_url.clone();
        config.models = vec![model_id];
        config.start_block = deployment.deploy_block;
        config.poll_interval = Duration::from_millis(100);
        let worker_dir = dir.path().join(format!("worker-{i}"));
        let store = LocalStore::open(worker_dir.join("store")).await.unwrap();
        let provider = wallet_provider(&deployment.rpc_url, account.signer.clone()).unwrap();
        let registered = registered_model(&provider, deployment.models, model_id).await.unwrap();
        let path =
            fetch_model(model_id, &registered, &store, &fetcher, None, &NoProgress).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), model_bytes);
        let driver = LlamaGgufDriver::load(&path, ExecOptions::default()).unwrap();
        let db = NodeDb::open(&worker_dir.join("node.redb")).unwrap();
        let worker = Arc::new(Worker::new(config, Engine::new(Arc::new(driver)), db).unwrap());
        worker.ensure_registered().await.unwrap();
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move { worker.run(stopped).await }));
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 3, "one download per worker");

    let requester_signer = accounts[4].signer.clone();
    let provider = wallet_provider(&node.http_url(), requester_signer.clone()).unwrap();
    let requester =
        KernelClient::new(provider.clone(), requester_signer.address(), deployment.addresses());
    requester.set_system_prompt("hh", "You are terse.").await.unwrap();
    let verifier =
        Engine::new(Arc::new(LlamaGgufDriver::load(&model_file, ExecOptions::default()).unwrap()));
    let hf = hf_tokenizer(&model_file);
    // A topic of three prompts: the second with extra context, the third after the owner cut
    // the window to one turn. Turns are (input, extra, output) bytes.
    let mut turns: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = Vec::new();
    let prompts =
        [("Say hi from hardhat.", "", 8), ("And again?", "Be brief.", 8), ("More?", "", 1)];
    for (input, extra, window) in prompts {
        if window != 8 {
            requester.set_window("hh", window).await.unwrap();
        }
        let mut request = PromptRequest::text(deployment.model_id, "hh", input);
        request.max_tokens = 12;
        request.extra = (!extra.is_empty()).then(|| DataSource::Onchain(extra.into()));
        let id = requester.submit(&request).await.unwrap().prompt_id;
        let hash = finalized(&requester, id).await;

        // Verification as `aik verify` does it: the context rebuilt from hardhat's logs and the
        // model re-run locally give the very bytes the committee revealed.
        let context = load_context(&provider, &deployment.addresses(), id).await.unwrap();
        assert_eq!(context.system_prompt.as_deref(), Some("You are terse."));
        let shown = &turns[turns.len().saturating_sub(usize::from(window))..];
        let history: Vec<_> = context
            .history
            .iter()
            .map(|t| (t.input.clone(), t.extra.clone(), t.output.clone()))
            .collect();
        assert_eq!(history, shown, "the window's last turns, in order");
        let (_, output) = verifier.run_blocking(context).await.unwrap();
        assert_eq!(output_hash(&output.bytes), hash);

        // The ids fed to the model are those of the conversation written out by hand: the
        // extra context, a blank line, then the input; each answer as text.
        let user = |input: &[u8], extra: &[u8]| match (input, extra) {
            (input, []) => String::from_utf8(input.to_vec()).unwrap(),
            (input, extra) => {
                format!(
                    "{}\n\n{}",
                    std::str::from_utf8(extra).unwrap(),
                    std::str::from_utf8(input).unwrap()
                )
            }
        };
        let mut written = vec![("system".to_owned(), "You are terse.".to_owned())];
        for (input, extra, output) in shown {
            written.push(("user".into(), user(input, extra)));
            written.push(("assistant".into(), String::from_utf8(output.clone()).unwrap()));
        }
        written.push(("user".into(), user(input.as_bytes(), extra.as_bytes())));
        let conversation: Vec<(&str, &str)> =
            written.iter().map(|(r, c)| (r.as_str(), c.as_str())).collect();
        assert_eq!(output.prompt_tokens, hf_ids(&hf, &chatml(&conversation)));
        eprintln!(
            "prompt {id}: {} prompt tokens, answer {:?}",
            output.prompt_tokens.len(),
            output.text
        );

        let filter = Filter::new()
            .address(deployment.kernel)
            .event_signature(DI::OutputRevealed::SIGNATURE_HASH)
            .topic1(B256::from(id))
            .from_block(0);
        let reveals = provider.get_logs(&filter).await.unwrap();
        assert_eq!(reveals.len(), 3);
        for log in &reveals {
            let reveal = DI::OutputRevealed::decode_log_data(log.data()).unwrap();
            assert_eq!(reveal.output.to_vec(), output.bytes, "worker {}", reveal.worker);
        }
        turns.push((input.into(), extra.into(), output.bytes));
    }
    for worker in &workers {
        let info = requester.worker(*worker).await.unwrap();
        assert_eq!(
            (info.status, info.stake),
            (WorkerStatus::Active, params.min_stake.to::<u128>())
        );
    }

    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}
