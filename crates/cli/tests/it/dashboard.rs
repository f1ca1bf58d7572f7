//! The dashboard in a real browser: `aik up` serves it and prints its address; headless
//! Chromium (Debian's, driven by puppeteer-core) loads it on a phone-sized screen, finds a
//! finalized prompt with its answer, hash, committee and workers, and then a second prompt
//! appears without a reload, pushed by the chain's WebSocket.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::support::{AikProcess, home_with_default_model, stdout_of};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_prompts_live_in_a_real_browser() {
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js.join("node_modules/puppeteer-core").is_dir()
            && PathBuf::from("/usr/bin/chromium").exists(),
        "run scripts/test: it installs Debian's chromium and npm ci's crates/cli/tests/js"
    );
    let dir = tempfile::tempdir().unwrap();
    let home = home_with_default_model(dir.path());
    let (port, dashboard) = (free_port(), free_port());
    let state = dir.path().join("net");
    let mut up = AikProcess::up(&state, &home, port, dashboard);
    let url = format!("http://127.0.0.1:{dashboard}/");
    assert!(up.log().contains(&format!("Dashboard     {url}")), "{}", up.log());
    let aik = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aik"));
        command.args(args).arg("--dir").arg(&state).env("AIK_HOME", &home).env("NO_COLOR", "1");
        command.env_remove("AIK_RPC").env_remove("AIK_KEY");
        command
    };
    let ask = |question: &'static str| {
        let mut command =
            aik(&["prompt", "--json", "--topic", "dash", "--max-tokens", "12", question]);
        async move {
            let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
            let json: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
            assert_eq!(json["status"], "finalized", "{json}");
            json
        }
    };
    let first = ask("Name a colour.").await;

    let screenshot = dir.path().join("dashboard.png");
    let mut browser = Command::new("node")
        .arg(js.join("dashboard.mjs"))
        .args([url.as_str(), "1", "2", screenshot.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let ready: serde_json::Value =
        serde_json::from_str(&lines.next().expect("the page showed prompt 1").unwrap()).unwrap();
    assert_eq!(ready["ready"], true);
    assert!(ready["live"].as_str().unwrap().starts_with("live over ws://"), "{ready}");

    // The page is open; the second prompt must reach it by itself.
    let second = ask("Name a fruit.").await;
    let seen: serde_json::Value =
        serde_json::from_str(&lines.next().expect("the page showed prompt 2").unwrap()).unwrap();
    assert!(browser.wait().unwrap().success());
    assert_eq!(seen["loads"], 1, "no reload: the WebSocket brought prompt 2");
    assert_eq!(seen["overflow"], 0, "fits a phone screen without sideways scrolling");
    let text = seen["text"].as_str().unwrap();
    for json in [&first, &second] {
        for field in ["output", "output_sha256"] {
            let value = json[field].as_str().unwrap().trim();
            assert!(text.contains(value), "the page shows {field} {value:?}:\n{text}");
        }
    }
    for expected in [
        "#1",
        "#2",
        "Name a colour.",
        "Name a fruit.",
        "finalized",
        "committed 3/3",
        "EAI supply",
        "\"dash\"",
    ] {
        assert!(text.contains(expected), "the page shows {expected:?}:\n{text}");
    }
    let accounts = aik_devnet::derive_dev_accounts(aik_devnet::DEV_MNEMONIC, 4).unwrap();
    for worker in &accounts[1..=3] {
        assert!(
            text.contains(&worker.address.to_string()),
            "worker {} listed:\n{text}",
            worker.address
        );
    }
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a screenshot was taken");
    if let Ok(keep) = std::env::var("AIK_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).unwrap();
    }
    up.assert_running();
}
