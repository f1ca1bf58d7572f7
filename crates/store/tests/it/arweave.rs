//! Arweave backend against arlocal (a local Arweave gateway from npm), with the data posted as
//! a signed transaction by the real `arweave` JS client.

use std::process::Command;

use aik_store::{ContentId, Error, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri};
use reqwest::{Method, Url};

use crate::common::{Daemon, free_port, js_dir, js_servers_available, temp_files, test_bytes};

#[tokio::test]
async fn arlocal_gateway() {
    if !js_servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new("node");
    command
        .arg(js_dir().join("node_modules").join("arlocal").join("bin").join("index.js"))
        .args([port.to_string().as_str(), "--hidelogs", "--dbpath", "arlocal-db"])
        .current_dir(dir.path());
    let mut daemon = Daemon::spawn("arlocal", command, dir.path().join("arlocal.log"));
    let gateway = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    daemon.wait_ready(&reqwest::Client::new(), Method::GET, &format!("{gateway}info")).await;

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
