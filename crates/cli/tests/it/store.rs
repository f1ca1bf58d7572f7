//! `aik store add|get|export`: a file by the ids IPFS uses, without a network.

use std::process::{Command, Output};

use aik_store::{Cid, UnixFsFile, unixfs::CHUNK_SIZE};

use crate::support::stdout_of;

fn aik(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aik")).args(args).env("AIK_HOME", home).output().unwrap()
}

/// An unsigned LEB128 varint and the bytes after it.
fn varint(bytes: &[u8]) -> (usize, &[u8]) {
    let mut value = 0usize;
    for (i, byte) in bytes.iter().enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, &bytes[i + 1..]);
        }
    }
    panic!("truncated varint")
}

#[test]
fn a_file_added_is_got_back_and_exported_by_its_unixfs_id() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("data.bin");
    let bytes: Vec<u8> = (0..2 * CHUNK_SIZE + 77).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let dag = UnixFsFile::of(&bytes);

    let added = stdout_of(&aik(&home, &["store", "add", file.to_str().unwrap(), "--json"]));
    let report: serde_json::Value = serde_json::from_str(&added).unwrap();
    assert_eq!(report["cid"], dag.root.to_string());
    assert!(report["cid"].as_str().unwrap().starts_with("bafybei"));
    assert_eq!(report["sha256"], dag.sha256.to_hex());
    assert_eq!(report["size"], bytes.len());

    let cid = dag.root.to_string();
    let out = dir.path().join("out.bin");
    stdout_of(&aik(&home, &["store", "get", &cid, "--out", out.to_str().unwrap()]));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    // The raw id of the whole file names the same stored bytes.
    let raw = dag.sha256.to_string();
    let out_raw = dir.path().join("out-raw.bin");
    stdout_of(&aik(&home, &["store", "get", &raw, "--out", out_raw.to_str().unwrap()]));
    assert_eq!(std::fs::read(&out_raw).unwrap(), bytes);

    let car = dir.path().join("data.car");
    stdout_of(&aik(&home, &["store", "export", &cid, "--car", car.to_str().unwrap()]));
    let archive = std::fs::read(&car).unwrap();
    // Header, then the root block first: varint(36 + node length), the root CID, the node.
    let (header_len, rest) = varint(&archive);
    let (section, first) = varint(&rest[header_len..]);
    let root_node = &dag.nodes[&dag.root].bytes;
    assert_eq!(section, 36 + root_node.len());
    assert_eq!(&first[..36], dag.root.to_bytes().as_slice());
    assert_eq!(&first[36..36 + root_node.len()], root_node.as_slice());
    // Root node + three leaves, each once.
    let expected_len = 1
        + header_len
        + dag
            .blocks()
            .iter()
            .map(|cid| {
                let block = dag.nodes.get(cid).map_or_else(|| dag.leaves[cid].1, |n| n.bytes.len());
                let section = 36 + block;
                section
                    + if section < 128 {
                        1
                    } else if section < 16_384 {
                        2
                    } else {
                        3
                    }
            })
            .sum::<usize>();
    assert_eq!(archive.len(), expected_len);

    // An id the store does not hold is named in the error.
    let unknown = UnixFsFile::of(&vec![9u8; 2 * CHUNK_SIZE]).root;
    let failed = aik(&home, &["store", "get", &unknown.to_string(), "--out", "/dev/null"]);
    assert!(!failed.status.success());
    let error = String::from_utf8_lossy(&failed.stderr);
    assert!(error.contains(&format!("{unknown} is not in the local store")), "{error}");
    // Where IPFS content comes from is configurable; a bad endpoint is named.
    let misconfigured = Command::new(env!("CARGO_BIN_EXE_aik"))
        .args(["store", "get", &unknown.to_string(), "--out", "/dev/null"])
        .env("AIK_HOME", &home)
        .env("AIK_IPFS_GATEWAY", "not a url")
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&misconfigured.stderr);
    assert!(error.contains("AIK_IPFS_GATEWAY=not a url is not a URL"), "{error}");
    let bad = aik(&home, &["store", "export", "bafy-not-a-cid", "--car", "/dev/null"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid"), "not a CID");
    let _: Cid = cid.parse().unwrap();
}

/// A model registered only by its UnixFS id (`aik model add`'s default URI; the file spans two
/// IPFS blocks, so the id is a dag-pb root) reaches a second worker from the first one's store,
/// found through the chain: worker A serves its store (`--serve-store`) and publishes its
/// address onchain (`--announce-store`); worker B has an empty store, a dead IPFS gateway and
/// `peer_gateways = "any"` in its TOML file, so it reads the published gateways, is refused by a
/// staked liar's gateway (published first, it serves a wrong CAR), then fetches the file from A
/// as a CAR checked block by block, loads it, registers, and holds it under its UnixFS id too
/// (so it could serve it on). A worker left at the default (`public`) skips gateways on
/// loopback addresses and cannot load the model at all; one whose operator lists A's gateway
/// (`--store-peer`, with `--ipfs-gateway` a dead one) loads it from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_fetches_a_model_from_another_workers_store() {
    use std::time::{Duration, Instant};

    use aik_kernel::{DeployParams, KernelClient, wallet_provider};
    use aik_node::network::fund_workers;
    use alloy::primitives::U256;

    use crate::support::{AikProcess, Network};

    let net = Network::start().await;
    // Wider than the default tiny model: about 380 KB, two 256 KiB blocks.
    let spec = aik_infer::fixture::TinyLlamaSpec {
        dim: 128,
        ffn_dim: 512,
        seed: 11,
        ..Default::default()
    };
    let bytes = aik_infer::fixture::tiny_llama_gguf(&spec).unwrap();
    let file = net.dir.path().join("shared.gguf");
    std::fs::write(&file, &bytes).unwrap();
    let dag = UnixFsFile::of(&bytes);
    assert_eq!(dag.root.codec(), aik_store::Codec::DagPb, "{} bytes: one block", bytes.len());
    let added =
        stdout_of(&net.aik(&["model", "add", "--name", "shared", file.to_str().unwrap()]).await);
    assert!(added.starts_with("registered model #2"), "{added}");

    let accounts = net.devnet.accounts().to_vec();
    let owner = accounts[0].signer.clone();
    let min_stake = DeployParams::dev(owner.address()).min_stake;
    let workers = [accounts[1].address, accounts[2].address];
    let liar = accounts[3].signer.clone();
    let all = [workers[0], workers[1], liar.address(), accounts[4].address, accounts[5].address];
    fund_workers(&net.deployment, &owner, &all, min_stake).await.unwrap();
    let stake = (min_stake / U256::from(10u128.pow(18))).to_string();

    // The liar: staked, serving model 2 on paper, publishing a gateway that answers every
    // request with a CAR that is not the file's.
    let lies = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lies_at = lies.local_addr().unwrap();
    let lied = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::spawn({
        let lied = lied.clone();
        move || {
            for stream in lies.incoming() {
                use std::io::{Read, Write};
                let Ok(mut stream) = stream else { return };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                lied.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ipld.car\r\nContent-Length: 6\r\nConnection: close\r\n\r\n\x05hello",
                );
            }
        }
    });
    let liar_client = KernelClient::new(
        wallet_provider(&net.deployment.rpc_url, liar.clone()).unwrap(),
        liar.address(),
        net.deployment.addresses(),
    );
    let hardware = aik_kernel::Hardware {
        gpu_model: "cpu".into(),
        memory_mb: 64_000,
        engine: "aik-infer/llama-gguf/1".into(),
    };
    liar_client.register_worker(&hardware, &[U256::from(2)], 1, min_stake).await.unwrap();
    liar_client.set_store_gateway(&format!("http://{lies_at}")).await.unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let state = net.dir.path().join("state");
    let serving = format!("127.0.0.1:{port}");
    let announce = format!("http://{serving}");
    let mut a = AikProcess::node(
        &state,
        &accounts[1],
        0,
        &[
            "--model",
            "2",
            "--stake",
            &stake,
            "--serve-store",
            &serving,
            "--announce-store",
            &announce,
        ],
        Some(&net.home()),
    );
    let home_b = net.dir.path().join("home-b");
    let config = net.dir.path().join("b.toml");
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    std::fs::write(&config, format!("ipfs_gateway = \"{dead}\"\npeer_gateways = \"any\"\n"))
        .unwrap();
    let provider = wallet_provider(&net.deployment.rpc_url, owner.clone()).unwrap();
    let client = KernelClient::new(provider, owner.address(), net.deployment.addresses());
    let serves = |address| {
        let client = client.clone();
        async move {
            client.worker(address).await.is_ok_and(|info| info.models.contains(&U256::from(2)))
        }
    };
    let started = Instant::now();
    while !serves(workers[0]).await || client.store_gateway(workers[0]).await.unwrap() != announce {
        a.assert_running();
        assert!(started.elapsed() < Duration::from_secs(60), "worker A never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(a.log().contains(&format!("store gateway published onchain: {announce}")));
    let listed = client.store_gateways(net.deployment.deploy_block).await.unwrap();
    assert_eq!(
        listed,
        [(liar.address(), format!("http://{lies_at}")), (workers[0], announce.clone())]
    );
    let mut b = AikProcess::node(
        &state,
        &accounts[2],
        1,
        &[
            "--model",
            "2",
            "--stake",
            &stake,
            "--config",
            config.to_str().unwrap(),
            "--dashboard",
            "127.0.0.1:0",
        ],
        Some(&home_b),
    );
    while !serves(workers[1]).await {
        b.assert_running();
        assert!(started.elapsed() < Duration::from_secs(90), "worker B never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // B holds the file now, fetched from A (its IPFS gateway is dead; the liar was asked first
    // and refused).
    let stored = home_b.join("store").join(dag.sha256.to_string());
    assert_eq!(std::fs::read(stored).unwrap(), bytes);
    let indexed = home_b.join("store").join("unixfs").join(dag.root.to_string());
    assert_eq!(std::fs::read_to_string(indexed).unwrap(), dag.sha256.to_string());
    assert!(lied.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the liar's gateway was tried");
    assert!(b.log().contains("gateway failed, trying the next"), "{}", b.log());

    // A worker at the default policy skips gateways on loopback addresses: nothing to load from.
    let home_d = net.dir.path().join("home-d");
    let config_d = net.dir.path().join("d.toml");
    std::fs::write(&config_d, format!("ipfs_gateway = \"{dead}\"\n")).unwrap();
    let d = AikProcess::node(
        &state,
        &accounts[4],
        2,
        &["--model", "2", "--stake", &stake, "--config", config_d.to_str().unwrap()],
        Some(&home_d),
    );
    let exited = Instant::now();
    while !d.log().contains("cannot load model #2") {
        assert!(exited.elapsed() < Duration::from_secs(60), "D did not give up:\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!home_d.join("store").join(dag.sha256.to_string()).exists());
    assert!(!serves(accounts[4].address).await, "D never registered");
    // The same default policy, but the operator lists A's gateway (flags, not the file).
    let home_e = net.dir.path().join("home-e");
    let mut e = AikProcess::node(
        &state,
        &accounts[5],
        3,
        &["--model", "2", "--stake", &stake, "--ipfs-gateway", &dead, "--store-peer", &announce],
        Some(&home_e),
    );
    while !serves(accounts[5].address).await {
        e.assert_running();
        assert!(started.elapsed() < Duration::from_secs(150), "worker E never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read(home_e.join("store").join(dag.sha256.to_string())).unwrap(), bytes);
    // B's dashboard (`--dashboard`, port 0: the bound address is printed) lists both workers.
    let log = b.log();
    let dashboard = log
        .lines()
        .find_map(|line| line.strip_prefix("Dashboard  http://"))
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no Dashboard line:\n{log}"));
    let state = crate::support::http_get(dashboard, "/api/state");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let listed: Vec<&str> = state["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["address"].as_str().unwrap())
        .collect();
    for worker in workers {
        assert!(listed.contains(&worker.to_string().as_str()), "{worker} in {listed:?}");
    }
    a.assert_running();
    b.assert_running();
    net.stop().await;
}

/// `aik up` keeps the default model in the content store; `aik generate` (and `aik bench`) then
/// find it there and link it where the model cache keeps it.
#[test]
fn generate_finds_the_default_model_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let home = crate::support::home_with_default_model(dir.path());
    let cached = home.join("models").join(aik_infer::DEFAULT_MODEL_FILE);
    assert!(!cached.exists());
    let out = stdout_of(&aik(&home, &["generate", "--max-tokens", "2", "Hi"]));
    assert!(!out.trim().is_empty(), "generated nothing");
    assert!(cached.is_file(), "the model is now where the cache keeps it");
    // Without it anywhere, the error says what to do.
    let empty = dir.path().join("empty");
    let failed = aik(&empty, &["generate", "--max-tokens", "2", "Hi"]);
    let error = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && error.contains("run `aik model pull`"), "{error}");
}

/// `aik store add --arweave-wallet` uploads the file to Arweave (arlocal, through
/// `AIK_ARWEAVE_GATEWAY`) as a transaction the real `arweave` client verifies, and prints its
/// `ar://` URI beside the IPFS ids; `aik model add --arweave-wallet` registers the model with its
/// `ar://` URI after the IPFS one, and that URI yields the file. A wallet file that is not one is
/// named in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_models_added_with_an_arweave_wallet_are_uploaded_to_arweave() {
    use aik_store::{ContentId, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri};

    use crate::support::{AikProcess, Network, tiny_model};

    let js = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/tests/js");
    if !js.join("node_modules").join("arlocal").is_dir() {
        assert!(std::env::var("CI").is_err(), "crates/store/tests/js is not installed (npm ci)");
        eprintln!("skipped: crates/store/tests/js/node_modules missing");
        return;
    }
    let net = Network::start().await;
    let dir = net.dir.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut arlocal = Command::new("node");
    arlocal
        .arg(js.join("node_modules/arlocal/bin/index.js"))
        .args([&port.to_string(), "--hidelogs", "--dbpath", "arlocal-db"])
        .current_dir(dir);
    let mut server = AikProcess::spawn(arlocal, dir.join("arlocal.log"));
    let address = format!("127.0.0.1:{port}");
    let gateway = format!("http://{address}");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(&address).is_err() {
        server.assert_running();
        assert!(started.elapsed().as_secs() < 60, "arlocal did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let node = |args: &[&str]| {
        let output = Command::new("node").arg(js.join("arweave.mjs")).args(args).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let wallet = dir.join("wallet.json");
    node(&["wallet", &port.to_string(), wallet.to_str().unwrap()]);
    let file = dir.join("data.bin");
    let bytes: Vec<u8> = (0..CHUNK_SIZE + 50_000).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let env = [("AIK_ARWEAVE_GATEWAY", gateway.as_str())];

    let add = |wallet: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_aik"))
            .args(["store", "add", file.to_str().unwrap(), "--json", "--arweave-wallet"])
            .arg(wallet)
            .env("AIK_HOME", net.home())
            .envs(env)
            .output()
            .unwrap()
    };
    let report: serde_json::Value = serde_json::from_str(&stdout_of(&add(&wallet))).unwrap();
    assert_eq!(report["cid"], UnixFsFile::of(&bytes).root.to_string());
    let uri = report["arweave"].as_str().unwrap();
    let tx = uri.strip_prefix("ar://").unwrap();
    assert_eq!(tx.len(), 43, "{uri}");
    crate::support::http_get(&address, "/mine");
    let check: serde_json::Value =
        serde_json::from_str(&node(&["check", &port.to_string(), tx, file.to_str().unwrap()]))
            .unwrap();
    assert_eq!(check["verified"], true, "{check}");
    assert_eq!(check["data_root"], check["expected_data_root"]);

    let not_a_wallet = dir.join("key.txt");
    std::fs::write(&not_a_wallet, "0x1234").unwrap();
    let failed = add(&not_a_wallet);
    assert!(!failed.status.success());
    let error = String::from_utf8_lossy(&failed.stderr);
    assert!(error.contains("key.txt") && error.contains("not an Arweave wallet"), "{error}");

    // A model: registered under its IPFS id and its Arweave transaction.
    let (model, model_bytes) = tiny_model(dir, 12);
    let wallet_arg = wallet.to_str().unwrap();
    let args = [
        "model",
        "add",
        "--name",
        "woven",
        model.to_str().unwrap(),
        "--arweave-wallet",
        wallet_arg,
    ];
    let added = stdout_of(&net.aik_with(&args, &env).await);
    assert!(added.starts_with("registered model #2"), "{added}");
    let listed = stdout_of(&net.aik(&["model", "list", "--json"]).await);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let entry = listed.as_array().unwrap().iter().find(|m| m["id"] == 2).unwrap();
    let uris: Vec<&str> =
        entry["uris"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert_eq!(uris[0], format!("ipfs://{}", UnixFsFile::of(&model_bytes).root));
    assert!(uris[1].starts_with("ar://"), "{uris:?}");
    crate::support::http_get(&address, "/mine");
    let config = FetchConfig { arweave_gateway: gateway.parse().unwrap(), ..Default::default() };
    let store = LocalStore::open(dir.join("fetched")).await.unwrap();
    let id = ContentId::of(&model_bytes);
    let uri: Uri = uris[1].parse().unwrap();
    let fetcher = Fetcher::new(&config).unwrap();
    let fetched = fetcher.fetch_into(&store, &uri, &Expected::id(id), &NoProgress).await;
    assert_eq!(fetched.unwrap(), id);
    net.stop().await;
}

/// A tiny HTTP server on a thread: `routes` maps a request path to a body sent as
/// `content_type`; any other path is a 404. With `stall_after`, a body is cut there and the
/// connection held open (a peer that stops sending). Returns its address and the paths asked.
fn serve_paths(
    routes: Vec<(String, Vec<u8>)>,
    content_type: &'static str,
    stall_after: Option<usize>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let (routes, log) = (routes.clone(), log.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    log.lock().unwrap().push(path.clone());
                    let Some((_, body)) = routes.iter().find(|(p, _)| *p == path) else {
                        let _ = stream.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
                        );
                        continue;
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    match stall_after {
                        Some(sent) => {
                            let _ = stream.write_all(&body[..sent]);
                            std::thread::sleep(std::time::Duration::from_secs(3600));
                        }
                        None => {
                            let _ = stream.write_all(body);
                        }
                    }
                }
            });
        }
    });
    (address, asked)
}

/// `aik store get` killed (SIGKILL) in the middle of a download resumes when run again: the
/// second run gets only single blocks from a gateway that serves nothing else, and only the
/// blocks the first run had not verified.
#[test]
fn a_killed_download_resumes_where_it_stopped() {
    use crate::support::AikProcess;

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // Six leaves under one root, each different.
    let bytes: Vec<u8> = (0..5 * CHUNK_SIZE + 123)
        .map(|i| ((i * 7919) % 251) as u8 ^ (i / CHUNK_SIZE) as u8)
        .collect();
    let source = dir.path().join("source.bin");
    std::fs::write(&source, &bytes).unwrap();
    let dag = UnixFsFile::of(&bytes);
    let mut car = Vec::new();
    aik_store::write_car(&dag, &source, &mut car).unwrap();
    let order = dag.blocks();
    assert_eq!(order.len(), 7);
    let car_path = format!("/ipfs/{}?format=car", dag.root);
    // Root and about three leaves, then silence.
    let (stalling, _) = serve_paths(
        vec![(car_path, car)],
        "application/vnd.ipld.car; version=1",
        Some(60 + 400 + 3 * (CHUNK_SIZE + 40) + 1000),
    );
    let out = dir.path().join("out.bin");
    let get = |gateway: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aik"));
        command
            .args(["store", "get", &dag.root.to_string(), "--out", out.to_str().unwrap()])
            .env("AIK_HOME", &home)
            .env("AIK_IPFS_GATEWAY", format!("http://{gateway}"))
            .env("NO_COLOR", "1");
        command
    };
    let mut first = AikProcess::spawn(get(&stalling), dir.path().join("first.log"));
    let partial = home.join("store").join("partial").join(format!("{}.car", dag.root));
    let started = std::time::Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len() as usize) < 3 * CHUNK_SIZE {
        first.assert_running();
        assert!(started.elapsed().as_secs() < 60, "no resume state:\n{}", first.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    first.kill();
    assert!(!out.exists());

    // The second run: a gateway that has only single blocks.
    let block = |cid: &aik_store::Cid| {
        let (offset, len) = dag.leaves[cid];
        bytes[offset as usize..offset as usize + len].to_vec()
    };
    let raw: Vec<(String, Vec<u8>)> =
        order[1..].iter().map(|cid| (format!("/ipfs/{cid}?format=raw"), block(cid))).collect();
    let (blocks_only, asked) = serve_paths(raw, "application/vnd.ipld.raw", None);
    let mut second = AikProcess::spawn(get(&blocks_only), dir.path().join("second.log"));
    let started = std::time::Instant::now();
    while !out.exists() || std::fs::metadata(&out).unwrap().len() < bytes.len() as u64 {
        assert!(started.elapsed().as_secs() < 60, "no output:\n{}", second.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    second.kill();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let asked = asked.lock().unwrap().clone();
    assert!(!asked.is_empty() && asked.len() <= 3, "only the blocks never verified: {asked:?}");
    let missing: Vec<String> =
        order[7 - asked.len()..].iter().map(|cid| format!("/ipfs/{cid}?format=raw")).collect();
    assert_eq!(asked, missing);
    assert!(!partial.exists(), "the resume state goes once the file is complete");
}
