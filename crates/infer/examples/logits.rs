//! Prints a GGUF model's logits at the last position of a prompt given as token ids, as one JSON
//! array (for comparing with another engine on a model whose tokenizer is not implemented):
//!
//!     cargo run --release -p aik-infer --example logits -- MODEL ID [ID…]

use aik_infer::{ExecOptions, LlamaModel, Logits, Session};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: logits MODEL ID [ID…]");
    let ids: Vec<u32> = args.map(|a| a.parse().expect("a token id")).collect();
    let model = LlamaModel::open(&path).expect("a model this engine loads");
    let mut session = Session::new(&model, ExecOptions::default(), ids.len());
    let logits = session.forward(&ids, Logits::Last).expect("a forward pass");
    println!("{}", serde_json::to_string(&logits).expect("JSON"));
}
