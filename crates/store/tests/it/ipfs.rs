//! IPFS backends against js-ipfs 0.66 (`jsipfs daemon --offline`): its Kubo-compatible RPC API
//! and its HTTP gateway, on free ports of 127.0.0.1.

use std::{path::Path, process::Command, time::Duration};

use aik_store::{
    ContentId, Error, Expected, Fetch, FetchConfig, Fetcher, IpfsGateway, KuboRpc, LocalStore,
    NoProgress, Uri,
};
use reqwest::{Method, Url};

use crate::common::{
    Daemon, RawHttpServer, Route, free_port, js_dir, js_servers_available, temp_files, test_bytes,
};

/// CIDs js-ipfs printed for `ipfs add --cid-version 1 --raw-leaves` of "" and "hello world";
/// the test below also recomputes them live.
const EMPTY_CID: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
const HELLO_WORLD_CID: &str = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";

struct JsIpfs {
    _daemon: Daemon,
    _repo: tempfile::TempDir,
    api: Url,
    gateway: Url,
}

async fn start_js_ipfs() -> JsIpfs {
    let repo = tempfile::tempdir().unwrap();
    let ipfs_path = repo.path().join("ipfs");
    let cli = js_dir().join("node_modules").join("ipfs").join("src").join("cli.js");
    let init = Command::new("node")
        .arg(&cli)
        .args(["init", "--empty-repo"])
        .env("IPFS_PATH", &ipfs_path)
        .output()
        .unwrap();
    assert!(init.status.success(), "jsipfs init failed: {}", String::from_utf8_lossy(&init.stderr));

    // Loopback only, free ports, no peers, no discovery: fully offline.
    let (api_port, gateway_port, rpc_port) = (free_port(), free_port(), free_port());
    let config_path = ipfs_path.join("config");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["Addresses"]["API"] = format!("/ip4/127.0.0.1/tcp/{api_port}").into();
    config["Addresses"]["Gateway"] = format!("/ip4/127.0.0.1/tcp/{gateway_port}").into();
    config["Addresses"]["RPC"] = format!("/ip4/127.0.0.1/tcp/{rpc_port}").into();
    config["Addresses"]["Swarm"] = serde_json::json!([]);
    config["Addresses"]["Delegates"] = serde_json::json!([]);
    config["Bootstrap"] = serde_json::json!([]);
    config["Discovery"] =
        serde_json::json!({"MDNS": {"Enabled": false}, "webRTCStar": {"Enabled": false}});
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

    let mut command = Command::new("node");
    command.arg(&cli).args(["daemon", "--offline"]).env("IPFS_PATH", &ipfs_path);
    let mut daemon = Daemon::spawn("jsipfs daemon", command, repo.path().join("daemon.log"));
    let api = Url::parse(&format!("http://127.0.0.1:{api_port}")).unwrap();
    let gateway = Url::parse(&format!("http://127.0.0.1:{gateway_port}")).unwrap();
    let client = reqwest::Client::new();
    // js-ipfs starts the gateway before the API, so a live API means both are up.
    daemon.wait_ready(&client, Method::POST, &format!("{api}api/v0/version")).await;
    JsIpfs { _daemon: daemon, _repo: repo, api, gateway }
}

#[test]
fn known_cids_are_recomputed() {
    assert_eq!(ContentId::of(b"").to_string(), EMPTY_CID);
    assert_eq!(ContentId::of(b"hello world").to_string(), HELLO_WORLD_CID);
}

async fn fetch_with(
    backend: &impl Fetch,
    store: &LocalStore,
    uri: &Uri,
    expected: ContentId,
) -> aik_store::Result<ContentId> {
    let mut incoming = store.stage(Expected::id(expected), &uri.to_string(), &NoProgress).await?;
    backend.fetch(uri, &mut incoming).await?;
    incoming.finish().await
}

#[tokio::test]
async fn js_ipfs_rpc_and_gateway() {
    if !js_servers_available() {
        return;
    }
    let ipfs = start_js_ipfs().await;
    let rpc = KuboRpc::new(ipfs.api.clone());
    let gateway = IpfsGateway::new(ipfs.gateway.clone());

    // The real IPFS implementation assigns our content ids to single-block raw content.
    assert_eq!(rpc.add_bytes(b"hello world".to_vec()).await.unwrap(), HELLO_WORLD_CID);
    assert_eq!(rpc.add_bytes(Vec::new()).await.unwrap(), EMPTY_CID);
    let small = test_bytes(200_000, 30);
    assert_eq!(rpc.add_bytes(small.clone()).await.unwrap(), ContentId::of(&small).to_string());

    // A multi-block file gets a dag-pb root; the URI names it, the expected id stays the sha256.
    let large = test_bytes(1_500_000, 31);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.bin");
    std::fs::write(&path, &large).unwrap();
    let root = rpc.add_file(&path).await.unwrap();
    let id = ContentId::of(&large);
    assert_ne!(root, id.to_string());
    assert!(root.starts_with("bafy"), "{root}");
    assert_eq!(root, aik_store::UnixFsFile::of(&large).root.to_string(), "our UnixFS id");
    let uri: Uri = format!("ipfs://{root}").parse().unwrap();

    for (name, result) in [
        (
            "gateway",
            fetch_with(&gateway, &LocalStore::open(dir.path().join("g")).await.unwrap(), &uri, id)
                .await,
        ),
        (
            "rpc",
            fetch_with(&rpc, &LocalStore::open(dir.path().join("r")).await.unwrap(), &uri, id)
                .await,
        ),
    ] {
        assert_eq!(result.unwrap_or_else(|e| panic!("{name}: {e}")), id);
    }
    assert_eq!(std::fs::read(dir.path().join("g").join(id.to_string())).unwrap(), large);

    // A download cut off after the root and two leaves resumes from js-ipfs block by block
    // (`block/get` through the RPC API, `?format=raw` through its gateway).
    let dag = aik_store::UnixFsFile::of(&large);
    let mut car = Vec::new();
    aik_store::write_car(&dag, &path, &mut car).unwrap();
    let cut = 60 + 3 * (aik_store::unixfs::CHUNK_SIZE + 40);
    let car_path: &'static str = Box::leak(format!("/ipfs/{root}?format=car").into());
    let server = RawHttpServer::start(vec![(car_path, Route::Car(car[..cut].to_vec()))]).await;
    for (name, resume) in [("rpc", Some(ipfs.api.clone())), ("gateway", None)] {
        let store = LocalStore::open(dir.path().join(format!("resume-{name}"))).await.unwrap();
        let cut_off =
            FetchConfig { ipfs_gateways: vec![server.base.parse().unwrap()], ..Default::default() };
        let error = Fetcher::new(&cut_off)
            .unwrap()
            .fetch_into(&store, &uri, &Expected::id(id), &NoProgress)
            .await;
        let message = error.unwrap_err().to_string();
        assert!(message.contains("ends inside a section"), "{name}: {message}");
        let partial = store.root().join("partial").join(format!("{root}.car"));
        assert!(partial.exists(), "{name}");
        let config = FetchConfig {
            ipfs_gateways: vec![ipfs.gateway.clone()],
            ipfs_rpc: resume,
            ..Default::default()
        };
        let fetched = Fetcher::new(&config)
            .unwrap()
            .fetch_into(&store, &uri, &Expected::id(id), &NoProgress)
            .await;
        assert_eq!(fetched.unwrap_or_else(|e| panic!("{name}: {e}")), id);
        assert_eq!(store.get(&id).await.unwrap(), large, "{name}");
        assert!(!partial.exists(), "{name}");
    }

    // Through the dispatcher: the RPC API when configured, else the gateway.
    for rpc_api in [Some(ipfs.api.clone()), None] {
        let config = FetchConfig {
            ipfs_gateways: vec![ipfs.gateway.clone()],
            ipfs_rpc: rpc_api,
            ..FetchConfig::default()
        };
        let store = LocalStore::open(dir.path().join(format!("d{}", config.ipfs_rpc.is_some())))
            .await
            .unwrap();
        let fetcher = Fetcher::new(&config).unwrap();
        let hello: Uri = format!("ipfs://{HELLO_WORLD_CID}").parse().unwrap();
        let hello_id = HELLO_WORLD_CID.parse().unwrap();
        fetcher.fetch_into(&store, &hello, &Expected::id(hello_id), &NoProgress).await.unwrap();
        assert_eq!(store.get(&hello_id).await.unwrap(), b"hello world");

        // Right bytes for the CID, wrong for what the registry expects: refused, nothing kept.
        let error = fetcher
            .fetch_into(&store, &uri, &Expected::id(ContentId::of(b"x")), &NoProgress)
            .await
            .unwrap_err();
        let message = error.to_string();
        // With the RPC API configured the gateway is tried after it: both refuse.
        let failures = match error {
            Error::AllSourcesFailed { failures } => failures,
            other => vec![other],
        };
        assert_eq!(failures.len(), if config.ipfs_rpc.is_some() { 2 } else { 1 }, "{message}");
        assert!(failures.iter().all(|e| matches!(e, Error::HashMismatch { .. })), "{message}");
        assert!(
            message.contains(&id.to_hex()) && message.contains(&ContentId::of(b"x").to_hex()),
            "{message}"
        );
        assert!(message.contains(&root), "names the source: {message}");
        assert!(!store.has(&ContentId::of(b"x")) && !store.has(&id));
        assert!(temp_files(store.root()).is_empty());
    }

    // A file whose first and third chunks are equal: `dag/export` sends that block once, and
    // the reader writes it again from what it already verified.
    let chunk = |seed| test_bytes(aik_store::unixfs::CHUNK_SIZE, seed);
    let (first, second) = (chunk(34), chunk(35));
    let repeated = [first.clone(), second, first, vec![7; 10]].concat();
    let path = dir.path().join("repeated.bin");
    std::fs::write(&path, &repeated).unwrap();
    let root = rpc.add_file(&path).await.unwrap();
    assert_eq!(root, aik_store::UnixFsFile::of(&repeated).root.to_string());
    let uri: Uri = format!("ipfs://{root}").parse().unwrap();
    let store = LocalStore::open(dir.path().join("repeated")).await.unwrap();
    let id = ContentId::of(&repeated);
    assert_eq!(fetch_with(&rpc, &store, &uri, id).await.unwrap(), id);
    assert_eq!(store.get(&id).await.unwrap(), repeated);
    // By the UnixFS id alone, through the RPC API's dag/export.
    let config = FetchConfig { ipfs_rpc: Some(ipfs.api.clone()), ..FetchConfig::default() };
    let store = LocalStore::open(dir.path().join("repeated-by-root")).await.unwrap();
    let root: aik_store::Cid = root.parse().unwrap();
    let fetched =
        Fetcher::new(&config).unwrap().fetch_unixfs(&store, root, &NoProgress).await.unwrap();
    assert_eq!(fetched, id);
    assert_eq!(store.resolve(&root).await.unwrap(), Some(id));

    // A two-level DAG (176 leaves: a root over a node of 174 leaves and one of 2) added to
    // js-ipfs and read back from its dag/export by the UnixFS id alone, every block checked.
    let big = test_bytes(175 * aik_store::unixfs::CHUNK_SIZE + 1, 36);
    let path = dir.path().join("two-levels.bin");
    std::fs::write(&path, &big).unwrap();
    let dag = aik_store::UnixFsFile::of(&big);
    assert_eq!(dag.nodes.len(), 3, "a root and two nodes under it");
    assert_eq!(rpc.add_file(&path).await.unwrap(), dag.root.to_string());
    let store = LocalStore::open(dir.path().join("two-levels")).await.unwrap();
    let fetched =
        Fetcher::new(&config).unwrap().fetch_unixfs(&store, dag.root, &NoProgress).await.unwrap();
    assert_eq!(fetched, dag.sha256);
    assert!(store.get(&dag.sha256).await.unwrap() == big);

    check_errors(&ipfs, dir.path()).await;
}

async fn check_errors(ipfs: &JsIpfs, dir: &Path) {
    let store = LocalStore::open(dir.join("errors")).await.unwrap();
    // A CID nobody has: an offline node can only wait, so the read timeout ends it.
    let absent = ContentId::of(b"never added");
    let config = FetchConfig {
        ipfs_gateways: vec![ipfs.gateway.clone()],
        read_timeout: Duration::from_secs(2),
        ..FetchConfig::default()
    };
    let fetcher = Fetcher::new(&config).unwrap();
    let uri: Uri = format!("ipfs://{absent}").parse().unwrap();
    let error =
        fetcher.fetch_into(&store, &uri, &Expected::id(absent), &NoProgress).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Request { .. }), "{message}");
    assert!(message.contains(&absent.to_string()) && message.contains("timed out"), "{message}");

    // A malformed CID: the RPC API's own error message comes through.
    let rpc = KuboRpc::new(ipfs.api.clone());
    let bad: Uri = "ipfs://bafkreinotacid".parse().unwrap();
    let error = fetch_with(&rpc, &store, &bad, absent).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::HttpStatus { status: 400..=599, .. }), "{message}");
    assert!(message.contains("bafkreinotacid"), "{message}");

    // Nothing listening: connection refused, naming the URL.
    let dead = KuboRpc::new(Url::parse(&format!("http://127.0.0.1:{}", free_port())).unwrap());
    let error = dead.add_bytes(b"x".to_vec()).await.unwrap_err();
    assert!(
        matches!(error, Error::Request { .. }) && error.to_string().contains("/api/v0/add"),
        "{error}"
    );
}
