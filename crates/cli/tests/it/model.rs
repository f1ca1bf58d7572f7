//! `aik model add|list` against a deployed kernel.

use aik_store::ContentId;
use sha2::{Digest, Sha256};

use crate::support::{AikProcess, Network, stdout_of, tiny_model};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_models_are_listed_with_their_hash_and_bad_files_are_refused() {
    let net = Network::start().await;
    let (file, bytes) = tiny_model(net.dir.path(), 7);
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    let cid = ContentId::of(&bytes).to_string();
    // The default URI names the file by its UnixFS id, as `ipfs add --cid-version 1` would.
    let unixfs = aik_store::UnixFsFile::of(&bytes).root.to_string();

    let added = net
        .aik(&[
            "model",
            "add",
            "--name",
            "tiny-7",
            "--price",
            "5",
            "--committee",
            "2",
            "--policy",
            "round-robin",
            file.to_str().unwrap(),
        ])
        .await;
    let text = stdout_of(&added);
    assert!(text.starts_with("registered model #2 \"tiny-7\""), "{text}");
    // Kept in the content store under its id, so workers here need no download.
    assert_eq!(std::fs::read(net.home().join("store").join(&cid)).unwrap(), bytes);

    let listed = stdout_of(&net.aik(&["model", "list", "--json"]).await);
    let models: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let models = models.as_array().unwrap();
    assert_eq!(models.len(), 2, "{listed}");
    let added = &models[1];
    assert_eq!(added["id"], 2);
    assert_eq!(added["name"], "tiny-7");
    assert_eq!(added["driver"], "gguf/1");
    assert_eq!(added["sha256"], sha256.as_str());
    assert_eq!(added["cid"], cid.as_str());
    assert_eq!(added["size"], bytes.len() as u64);
    assert_eq!(added["uris"], serde_json::json!([format!("ipfs://{unixfs}")]));
    assert_eq!(added["price_per_token_wei"], "5");
    assert_eq!(added["committee_size"], 2);
    assert_eq!(added["policy"], "round-robin");
    assert_eq!(added["retired"], false);
    assert_eq!(added["local"], true);
    // The deployment's own model was never put in this home's store.
    assert_eq!(models[0]["id"], net.deployment.model_id);
    assert_eq!(models[0]["name"], "tiny");
    assert_eq!(models[0]["uris"], serde_json::json!(["https://example.com/tiny.gguf"]));
    assert_eq!(models[0]["local"], false);
    assert_eq!(models[0]["policy"], "fee-priority");

    // A file that is not GGUF is refused before anything is stored or sent.
    let junk = net.dir.path().join("notes.gguf");
    std::fs::write(&junk, b"just some text, not a model").unwrap();
    let refused = net.aik(&["model", "add", "--name", "junk", junk.to_str().unwrap()]).await;
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(
        error.contains(&format!(
            "{} is not a GGUF model the gguf/1 driver can load",
            junk.display()
        )) && error.contains("header.magic"),
        "{error}"
    );
    // Only the owner registers models.
    let not_owner = net
        .aik(&[
            "model",
            "add",
            "--name",
            "x",
            "--key",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            file.to_str().unwrap(),
        ])
        .await;
    let error = String::from_utf8_lossy(&not_owner.stderr);
    assert!(
        error.contains(&format!(
            "--key is account 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, but only the owner \
             0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 through the timelock {} may add models",
            net.deployment.timelock.expect("a timelock owns the kernel")
        )),
        "{error}"
    );
    let listed = stdout_of(&net.aik(&["model", "list", "--json"]).await);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed).unwrap().as_array().unwrap().len(),
        2
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_model_is_served_by_aik_node_run_and_answers_prompts_that_verify() {
    let net = Network::start().await;
    let (file, _) = tiny_model(net.dir.path(), 7);
    let file = file.to_str().unwrap();
    let added = net.aik(&["model", "add", "--name", "tiny-7", "--committee", "2", file]).await;
    assert!(stdout_of(&added).starts_with("registered model #2"));

    // Two worker processes serving only the added model, reading it from the store `model add`
    // filled (the same home), staked from the owner's EAI.
    let accounts = net.devnet.accounts();
    let owner = accounts[0].signer.clone();
    let stake = aik_kernel::DeployParams::dev(owner.address()).min_stake;
    let workers = [accounts[1].address, accounts[2].address];
    aik_node::network::fund_workers(&net.deployment, &owner, &workers, stake).await.unwrap();
    let state = net.dir.path().join("state");
    let home = net.home();
    let mut nodes: Vec<_> = (1..=2)
        .map(|i| AikProcess::node(&state, &accounts[i], i, &["--model", "2"], Some(&home)))
        .collect();

    let unknown =
        net.aik(&["node", "run", "--model", "9", "--key", &accounts[3].private_key_hex()]).await;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("cannot load model #9"), "{stderr}");

    let asked = net
        .aik(&[
            "prompt",
            "--model",
            "2",
            "--json",
            "--max-tokens",
            "4",
            "--timeout",
            "60",
            "Hello?",
        ])
        .await;
    let asked: serde_json::Value = serde_json::from_str(&stdout_of(&asked)).unwrap();
    assert_eq!(asked["status"], "finalized", "{asked}");
    for node in &mut nodes {
        node.assert_running();
    }
    let id = asked["prompt_id"].as_str().unwrap();
    let provider = alloy::providers::ProviderBuilder::new()
        .connect_http(net.deployment.rpc_url.parse().unwrap());
    let kernel = aik_kernel::KernelClient::new(
        provider,
        alloy::primitives::Address::ZERO,
        net.deployment.addresses(),
    );
    let record = kernel.prompt(id.parse().unwrap()).await.unwrap();
    assert_eq!(record.model_id, 2);
    // `aik verify` runs the prompt's own model (not the deployment's) and gets the same bytes.
    let verified = stdout_of(&net.aik(&["verify", "--json", id]).await);
    let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(verified["verified"], true, "{verified}");
    drop(nodes);
    net.stop().await;
}

/// `aik model pull gemma3-270m` caches Gemma 3 270M (scripts/test pulls it); `aik generate --raw`
/// completes plain text with it, the same tokens on the SIMD and scalar kernels and any thread
/// count, starting as llama.cpp does (`crates/infer/tests/data/llamacpp_gemma3.json`); without
/// `--raw` the base model's missing chat template is named, with the way out.
#[test]
fn a_base_model_completes_raw_text() {
    let path = aik_infer::model_path(aik_infer::GEMMA3_270M_FILE).unwrap();
    if !path.is_file() {
        assert!(std::env::var("CI").is_err(), "scripts/test pulls gemma3-270m");
        eprintln!("skipped: {} missing (aik model pull gemma3-270m)", path.display());
        return;
    }
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("../../../infer/tests/data/llamacpp_gemma3.json"))
            .unwrap();
    let generate = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_aik"))
            .args(["generate", "--raw", "--json", "--max-tokens", "6", "--model"])
            .arg(&path)
            .args(extra)
            .arg(reference["text"].as_str().unwrap())
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&stdout_of(&output)).unwrap();
        json["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect::<Vec<_>>()
    };
    let tokens = generate(&[]);
    assert_eq!(tokens.len(), 6);
    assert_eq!(tokens, generate(&["--scalar", "--threads", "1"]), "bit-identical paths");
    // llama.cpp's first greedy tokens (its margins there are wide; see the infer test).
    let greedy: Vec<u64> =
        reference["greedy"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    assert_eq!(tokens[..4], greedy[..4]);

    let chat = std::process::Command::new(env!("CARGO_BIN_EXE_aik"))
        .args(["generate", "--model"])
        .arg(&path)
        .arg("Hi")
        .output()
        .unwrap();
    assert!(!chat.status.success());
    let error = String::from_utf8_lossy(&chat.stderr);
    assert!(error.contains("no chat template") && error.contains("--raw"), "{error}");
}
