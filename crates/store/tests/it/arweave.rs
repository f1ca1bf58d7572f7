//! Arweave against arlocal (a local Arweave gateway from npm): fetching data the real `arweave`
//! JS client posted, and uploading with our own signed transactions, which that client then
//! verifies.

use std::process::Command;

use aik_store::{
    ArweaveUploader, ArweaveWallet, ContentId, Error, Expected, FetchConfig, Fetcher, LocalStore,
    NoProgress, Uri, arweave::DataTree,
};
use reqwest::{Method, Url};

use crate::common::{Daemon, free_port, js_dir, js_servers_available, temp_files, test_bytes};

/// arlocal on a free port, in `dir`.
async fn start_arlocal(dir: &std::path::Path) -> (Daemon, u16, Url) {
    let port = free_port();
    let mut command = Command::new("node");
    command
        .arg(js_dir().join("node_modules").join("arlocal").join("bin").join("index.js"))
        .args([port.to_string().as_str(), "--hidelogs", "--dbpath", "arlocal-db"])
        .current_dir(dir);
    let mut daemon = Daemon::spawn("arlocal", command, dir.join("arlocal.log"));
    let gateway = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    daemon.wait_ready(&reqwest::Client::new(), Method::GET, &format!("{gateway}info")).await;
    (daemon, port, gateway)
}

/// `node arweave.mjs ARGS…`: its stdout, or a panic with its stderr.
fn arweave_js(args: &[&str]) -> String {
    let output = Command::new("node")
        .arg(js_dir().join("arweave.mjs"))
        .args(args)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "arweave.mjs {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn arlocal_gateway() {
    if !js_servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (daemon, port, gateway) = start_arlocal(dir.path()).await;

    let data = test_bytes(300_000, 40);
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let post = Command::new("node")
        .arg(js_dir().join("arweave-post.mjs"))
        .arg(port.to_string())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        post.status.success(),
        "posting to arlocal failed: {}\n{}",
        String::from_utf8_lossy(&post.stderr),
        daemon.log()
    );
    let tx = String::from_utf8(post.stdout).unwrap().trim().to_string();
    let uri: Uri = format!("ar://{tx}").parse().unwrap();

    let store = LocalStore::open(dir.path().join("store")).await.unwrap();
    let config = FetchConfig { arweave_gateway: gateway, ..FetchConfig::default() };
    let fetcher = Fetcher::new(&config).unwrap();
    let id = ContentId::of(&data);
    let expected = Expected::id(id).with_size(data.len() as u64);
    assert_eq!(fetcher.fetch_into(&store, &uri, &expected, &NoProgress).await.unwrap(), id);
    assert_eq!(store.get(&id).await.unwrap(), data);

    let other = ContentId::of(b"something else");
    let error =
        fetcher.fetch_into(&store, &uri, &Expected::id(other), &NoProgress).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::HashMismatch { .. }), "{message}");
    assert!(
        message.contains(&tx)
            && message.contains(&other.to_hex())
            && message.contains(&id.to_hex()),
        "{message}"
    );
    assert!(!store.has(&other));

    let unknown: Uri = format!("ar://{}", "A".repeat(43)).parse().unwrap();
    let error =
        fetcher.fetch_into(&store, &unknown, &Expected::id(other), &NoProgress).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::HttpStatus { status: 404, .. }), "{message}");
    assert!(message.contains(&"A".repeat(43)), "{message}");
    assert!(temp_files(store.root()).is_empty());
}

/// Our data roots and chunk proofs equal the `arweave` client's at the sizes where Arweave's
/// chunking changes (empty, one chunk, a last chunk under 32 KiB split evenly, an exact
/// multiple of 256 KiB with its empty last leaf, several levels).
#[test]
fn data_trees_equal_the_arweave_clients() {
    if !js_servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let b64 = |bytes: &[u8]| data_encoding::BASE64URL_NOPAD.encode(bytes);
    for size in [0, 1, 262_144, 262_144 + 1, 262_144 + 40_000, 3 * 262_144, 5 * 262_144 + 999] {
        let path = dir.path().join(format!("{size}.bin"));
        std::fs::write(&path, test_bytes(size, 60 + size as u64)).unwrap();
        let theirs: serde_json::Value =
            serde_json::from_str(&arweave_js(&["tree", path.to_str().unwrap()])).unwrap();
        let ours = DataTree::of(&std::fs::read(&path).unwrap());
        assert_eq!(theirs["data_root"], b64(&ours.root), "data root at {size} bytes");
        let proofs: Vec<(u64, String)> =
            ours.chunks.iter().map(|c| (c.end - 1, b64(&c.proof))).collect();
        let expected: Vec<(u64, String)> = theirs["proofs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["offset"].as_u64().unwrap(), p["proof"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(proofs, expected, "chunk proofs at {size} bytes");
    }
}

/// Files uploaded as our own signed transactions (inline and in chunks): arlocal takes them, the
/// `arweave` client verifies the signature and the data root, and they come back by `ar://`.
/// A bad wallet, and a wallet without funds, are refused with the reason.
#[tokio::test]
async fn uploads_are_signed_transactions_the_arweave_client_verifies() {
    if !js_servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (daemon, port, gateway) = start_arlocal(dir.path()).await;
    let port = port.to_string();
    let jwk = dir.path().join("wallet.json");
    let address = arweave_js(&["wallet", &port, jwk.to_str().unwrap()]).trim().to_string();
    let wallet = ArweaveWallet::load(&jwk).unwrap();
    assert_eq!(wallet.address(), address);

    let client = reqwest::Client::new();
    let uploader = ArweaveUploader::with_client(gateway.clone(), client.clone());
    let config = FetchConfig { arweave_gateway: gateway.clone(), ..FetchConfig::default() };
    let fetcher = Fetcher::new(&config).unwrap();
    let store = LocalStore::open(dir.path().join("store")).await.unwrap();
    for (size, seed) in [(5, 70), (700_000, 71)] {
        let data = test_bytes(size, seed);
        let path = dir.path().join(format!("{size}.bin"));
        std::fs::write(&path, &data).unwrap();
        let tx = uploader
            .upload_file(&wallet, &path, &[("App-Name", "AI Kernel")])
            .await
            .unwrap_or_else(|e| panic!("{size} bytes: {e}\n{}", daemon.log()));
        client.get(format!("{gateway}mine")).send().await.unwrap();
        let check: serde_json::Value =
            serde_json::from_str(&arweave_js(&["check", &port, &tx, path.to_str().unwrap()]))
                .unwrap();
        assert_eq!(check["verified"], true, "{size} bytes: {check}");
        assert_eq!(check["data_root"], check["expected_data_root"], "{size} bytes");
        assert_eq!(check["owner_address"], address.as_str());

        let uri: Uri = format!("ar://{tx}").parse().unwrap();
        let id = ContentId::of(&data);
        let expected = Expected::id(id).with_size(size as u64);
        assert_eq!(fetcher.fetch_into(&store, &uri, &expected, &NoProgress).await.unwrap(), id);
        assert_eq!(store.get(&id).await.unwrap(), data);
    }

    // A wallet that is not one.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"kty":"EC","n":"AQAB","e":"AQAB","d":"AQAB","p":"AQAB","q":"AQAB"}"#)
        .unwrap();
    let error = ArweaveWallet::load(&bad).unwrap_err().to_string();
    assert!(error.contains("RSA") && error.contains("bad.json"), "{error}");
    let mut broken: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwk).unwrap()).unwrap();
    broken["d"] = "AQAB".into();
    let error = ArweaveWallet::from_jwk(&broken.to_string()).unwrap_err();
    assert!(error.contains("not a valid RSA key"), "{error}");

    // A wallet arlocal never credited: the node's refusal, with its status.
    let poor = dir.path().join("poor.json");
    arweave_js(&["wallet", "0", poor.to_str().unwrap()]);
    let poor = ArweaveWallet::load(&poor).unwrap();
    let path = dir.path().join("700000.bin");
    let error = uploader.upload_file(&poor, &path, &[]).await.unwrap_err();
    assert!(matches!(error, Error::HttpStatus { status: 410, .. }), "{error}");
    assert!(error.to_string().contains("enough tokens"), "{error}");
}
