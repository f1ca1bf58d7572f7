//! ethers.js v6, a client no one here wrote, against the chain (tests/js/ethers-client.mjs).

use std::process::Command;

use crate::util::devnet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethers_v6_deploys_sends_and_queries() {
    let js_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js_dir.join("node_modules/ethers").is_dir(),
        "ethers is not installed in {}: run scripts/test (or npm ci there)",
        js_dir.display()
    );
    let devnet = devnet().await;
    let url = devnet.http_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg("ethers-client.mjs").arg(url).current_dir(&js_dir).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ethers client failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("ethers client: all checks passed"), "{stdout}");
}
