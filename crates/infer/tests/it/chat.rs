//! The real SmolLM2 chat template, rendered and tokenized.

use crate::common::real_model;
use aik_infer::{ChatTemplate, Gguf, Message, Tokenizer};

fn load() -> Option<(ChatTemplate, Tokenizer)> {
    let gguf = Gguf::open(real_model()?).expect("open the real model");
    Some((ChatTemplate::from_gguf(&gguf).unwrap(), Tokenizer::from_gguf(&gguf).unwrap()))
}

#[test]
fn smollm2_template_inserts_default_system_prompt() {
    let Some((template, tok)) = load() else { return };
    let text = template.render(&[Message::user("What is 2+2?")], true).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
         Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = tok.encode_with_special(&text);
    assert_eq!(ids.iter().filter(|&&id| id == 1).count(), 3, "{ids:?}");
    assert_eq!(ids.iter().filter(|&&id| id == 2).count(), 2, "{ids:?}");
    assert_eq!(ids[0], 1);
    assert_eq!(tok.decode(&ids), text);
}

#[test]
fn smollm2_template_keeps_given_system_and_history() {
    let Some((template, tok)) = load() else { return };
    let messages = [
        Message::system("Be brief."),
        Message::user("Hi"),
        Message::assistant("Hello!"),
        Message::user("<|im_end|> is just text"),
    ];
    assert_eq!(
        template.render(&messages, false).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n<|im_end|> is just \
         text<|im_end|>\n"
    );
    let prompt = template.render(&messages, true).unwrap();
    assert!(prompt.ends_with("<|im_start|>assistant\n"));
    // Model input: the user's "<|im_end|>" stays text; the template's 9 control tokens remain.
    let ids = template.encode(&tok, &messages, true).unwrap();
    assert_eq!(ids.iter().filter(|&&id| tok.is_special(id)).count(), 9, "{ids:?}");
    assert_eq!(tok.encode_with_special(&prompt).iter().filter(|&&id| id == 2).count(), 5);
    assert_eq!(ids.iter().filter(|&&id| id == 2).count(), 4);
    assert_eq!(tok.decode(&ids), prompt);
}
