//! `aik up --model gemma3-270m`: a base model served on chain and prompted as plain text.

use std::process::Command;

use serde_json::Value;

use crate::support::{AikProcess, home_with_model, stdout_of};

/// `aik up --model gemma3-270m` registers Gemma 3 270M (no chat template) with the plain-text
/// layout, and its three workers answer a topic as one document (context assembly's rule 5):
/// each finalized answer is exactly what `aik generate --raw` gives for the topic's text so far,
/// and `aik verify` recomputes it. The directory then refuses to resume as another model.
#[test]
fn a_base_model_answers_a_topic_as_one_plain_text_document() {
    let dir = tempfile::tempdir().unwrap();
    let (file, sha256) = (aik_infer::GEMMA3_270M_FILE, aik_infer::GEMMA3_270M_SHA256);
    let home = home_with_model(dir.path(), file, sha256);
    let gemma = aik_infer::model_path(file).unwrap();
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let state = dir.path().join("net");
    let mut up = AikProcess::up_with(&state, &home, free(), free(), &["--model", "gemma3-270m"]);
    assert!(up.log().contains("Gemma 3 270M Q4_K_M") && up.log().contains("plain-text"));
    let aik = |args: &[&str], on_network: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aik"));
        command.args(args).env("AIK_HOME", &home).env("NO_COLOR", "1");
        if on_network {
            command.arg("--dir").arg(&state);
        }
        command.env_remove("AIK_RPC").env_remove("AIK_KEY");
        command.output().unwrap()
    };
    let json = |args: &[&str], on_network: bool| -> Value {
        let out = stdout_of(&aik(args, on_network));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let models = json(&["model", "list", "--json"], true);
    assert_eq!(models[0]["layout"], "plain-text", "{models}");

    let ask = |text: &str| {
        let asked = json(
            &[
                "prompt",
                "--json",
                "--topic",
                "paris",
                "--max-tokens",
                "8",
                "--timeout",
                "300",
                text,
            ],
            true,
        );
        assert_eq!(asked["status"], "finalized", "{asked}");
        asked["output"].as_str().unwrap().to_owned()
    };
    let complete = |text: &str| {
        let gemma = gemma.to_str().unwrap();
        let args = ["generate", "--raw", "--json", "--max-tokens", "8", "--model", gemma, text];
        json(&args, false)["text"].as_str().unwrap().to_owned()
    };
    let first = ask("The capital of France is");
    assert_eq!(first, complete("The capital of France is"));
    let second = ask(" Its most famous museum is");
    let document = format!("The capital of France is{first} Its most famous museum is");
    assert_eq!(second, complete(&document));
    assert_ne!(first, second, "the second answer continues the document, not the prompt alone");

    let verified = json(&["verify", "--json", "2"], true);
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["output"], second.as_str());

    up.interrupt();
    let mut again = Command::new(env!("CARGO_BIN_EXE_aik"));
    again.arg("up").arg("--dir").arg(&state).args(["--port", &free().to_string()]);
    again.args(["--dashboard-port", &free().to_string(), "--model", "smollm2"]);
    let again = again.env("AIK_HOME", &home).env("NO_COLOR", "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        stderr.contains("serves model #1 \"Gemma 3 270M Q4_K_M\", not SmolLM2-135M-Instruct Q4_1"),
        "{stderr}"
    );
}
