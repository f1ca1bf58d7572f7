//! A model's registered prompt layout decides how a worker renders its context: the node loads
//! the driver in that layout or refuses the model.

use aik_infer::{ExecOptions, Message, PromptLayout};
use aik_kernel::bindings::ModelFileSystem::{Model, ModelTerms};
use aik_node::{load_driver, prompt_layout};
use alloy::primitives::U256;

/// A registry entry with `layout` (the file fields do not matter to loading).
fn entry(layout: u8) -> Model {
    Model {
        name: "m".into(),
        driver: "llama-gguf/1".into(),
        fileSha256: Default::default(),
        fileSize: 1,
        chunkSize: 1,
        layout,
        merkleRoot: Default::default(),
        uris: Vec::new(),
        terms: ModelTerms {
            pricePerToken: 1,
            committeeSize: 1,
            policy: 0,
            minMemoryMb: 0,
            retired: false,
        },
    }
}

fn pulled(file: &str) -> std::path::PathBuf {
    let path = aik_infer::model_path(file).expect("a home directory");
    assert!(path.is_file(), "scripts/test pulls {file} before the tests");
    path
}

/// Gemma 3 270M has no chat template: registered as a chat model it is refused (every prompt
/// would fail on it), registered as plain text it renders the protocol's plain-text layout. An
/// instruction-tuned model may be registered either way, and the two layouts give different
/// prompts. A layout value the node does not know is refused rather than guessed.
#[test]
fn workers_load_a_model_in_its_registered_layout_or_refuse_it() {
    let id = U256::from(7);
    let gemma = pulled(aik_infer::GEMMA3_270M_FILE);
    let error = load_driver(id, &entry(0), &gemma, ExecOptions::default()).unwrap_err();
    let error = error.to_string();
    assert!(error.starts_with("model 7: "), "{error}");
    assert!(error.contains("no chat template") && error.contains("plain-text layout"), "{error}");
    let driver = load_driver(id, &entry(1), &gemma, ExecOptions::default()).unwrap();
    assert_eq!(driver.layout(), PromptLayout::PlainText);
    let messages = [Message::system("Facts."), Message::user("Paris is")];
    assert_eq!(
        driver.prompt_tokens(&messages).unwrap(),
        driver.raw_prompt_tokens("Facts.\n\nParis is")
    );

    let smollm = pulled(aik_infer::DEFAULT_MODEL_FILE);
    let chat = load_driver(id, &entry(0), &smollm, ExecOptions::default()).unwrap();
    let plain = load_driver(id, &entry(1), &smollm, ExecOptions::default()).unwrap();
    assert_eq!(chat.layout(), PromptLayout::Chat);
    assert_eq!(
        plain.prompt_tokens(&messages).unwrap(),
        plain.raw_prompt_tokens("Facts.\n\nParis is")
    );
    assert_ne!(chat.prompt_tokens(&messages).unwrap(), plain.prompt_tokens(&messages).unwrap());

    assert_eq!(prompt_layout(id, &entry(1)).unwrap(), PromptLayout::PlainText);
    let error = prompt_layout(id, &entry(2)).unwrap_err().to_string();
    assert_eq!(error, "model 7: its prompt layout 2 is not one this node knows");
}
