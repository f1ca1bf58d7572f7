//! Real clients no one here wrote against the chain: ethers.js v6 and viem (scripts in tests/js).

use std::process::Command;

use crate::util::devnet;

/// Runs `node <script> <url>` against a fresh chain and checks it reports success.
async fn run_node_client(script: &'static str, package: &str, success: &str) {
    let js_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js_dir.join("node_modules").join(package).is_dir(),
        "{package} is not installed in {}: run scripts/test (or npm ci there)",
        js_dir.display()
    );
    let devnet = devnet().await;
    let url = devnet.http_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(script).arg(url).current_dir(&js_dir).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(success), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethers_v6_deploys_sends_and_queries() {
    run_node_client("ethers-client.mjs", "ethers", "ethers client: all checks passed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viem_deploys_writes_and_decodes_reverts() {
    run_node_client("viem-client.mjs", "viem", "viem client: all checks passed").await;
}
