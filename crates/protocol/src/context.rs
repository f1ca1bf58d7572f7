//! Context assembly (DESIGN §5.2): the one rule by which a worker and a verifier turn a prompt and
//! its topic's history into the chat messages the model runs on.
//!
//! # The rule
//!
//! 1. The topic's system prompt at the revision the prompt recorded, if it has one; nothing
//!    otherwise (the model's chat template may add its own default, which is part of the model).
//! 2. The last `window` finalized turns of the topic before the prompt's snapshot, oldest first,
//!    each as a user message (laid out as in 3) followed by an assistant message holding the
//!    winning output as text ([`output_text`]). A turn answered with a
//!    [failure answer](crate::Failure) is left out (it still counts towards the window).
//! 3. The new user message: with no extra context it is the input alone; with extra context it
//!    is the extra context, one blank line (`"\n\n"`), then the input. Bytes that are not UTF-8
//!    become U+FFFD.
//! 4. While the rendered conversation has more tokens than the model's context length minus the
//!    prompt's max output tokens, the oldest remaining turn (its user and assistant message
//!    together) is dropped. If nothing but the system prompt and the new message is left and it
//!    still does not fit, the prompt cannot be run: [`Failure::ContextTooLong`], the same on
//!    every node, which the committee answers with that failure answer.
//! 5. A model registered with the plain-text layout (a base model,
//!    [`PromptLayout::PlainText`](crate::PromptLayout::PlainText)) runs on
//!    [`plain_text`](crate::plain_text) of those messages instead of its chat template: the
//!    system prompt and a blank line, then the inputs and answers in order, joined with nothing.
//!    Rule 4 counts the tokens of that text (and the BOS the model adds).
//!
//! Token counting depends on the model, so [`PromptContext::assemble`] takes it as a closure and
//! this crate stays free of the inference engine.
//!
//! Reading a prompt's context from the chain is the kernel SDK's (`aik_kernel::load_context`).

use alloy_primitives::{Address, U256};

use crate::{Error, Failure, Message, OutputFormat, OutputValue, Result, Role, SamplingSpec};

/// A finalized turn of a topic: what was asked and the answer the committee agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// The turn's prompt id.
    pub prompt_id: U256,
    /// Input bytes.
    pub input: Vec<u8>,
    /// Extra context bytes (empty: none).
    pub extra: Vec<u8>,
    /// The turn's output format, needed to show a canonical answer as text.
    pub format: OutputFormat,
    /// Canonical bytes of the winning output.
    pub output: Vec<u8>,
}

/// Everything context assembly and the driver need about one prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptContext {
    /// The prompt.
    pub prompt_id: U256,
    /// Who asked (and owns the topic).
    pub requester: Address,
    /// The model.
    pub model_id: U256,
    /// The topic name.
    pub topic: String,
    /// The topic's system prompt in force at submission.
    pub system_prompt: Option<String>,
    /// The last `window` turns before the prompt's snapshot, oldest first.
    pub history: Vec<Turn>,
    /// The new input.
    pub input: Vec<u8>,
    /// The new extra context (empty: none).
    pub extra: Vec<u8>,
    /// The answer's shape.
    pub format: OutputFormat,
    /// Most output tokens.
    pub max_tokens: u32,
    /// Decoding rule.
    pub sampling: SamplingSpec,
}

/// A user message's text under rule 3: the extra context, a blank line, then the input; the
/// input alone when there is no extra context.
pub fn user_message(input: &[u8], extra: &[u8]) -> String {
    let input = String::from_utf8_lossy(input);
    if extra.is_empty() {
        input.into_owned()
    } else {
        format!("{}\n\n{input}", String::from_utf8_lossy(extra))
    }
}

/// An output as the assistant message of a later turn: text as is, `true`/`false`, the chosen
/// option's text, or the integer in decimal (a failure answer, which never becomes a turn's
/// message, shows as `[failure N: …]`). Bytes that do not decode under the format (which a
/// finalized prompt never has) are shown as `0x`-hex so the rule stays total.
pub fn output_text(format: &OutputFormat, output: &[u8]) -> String {
    if let Some(failure) = Failure::decode(output) {
        return format!("[{failure}]");
    }
    match OutputValue::decode(format, output) {
        Ok(value) => value.to_text(format),
        Err(_) => format!("0x{}", alloy_primitives::hex::encode(output)),
    }
}

impl PromptContext {
    /// The full conversation before truncation (rules 1–3).
    pub fn messages(&self) -> Vec<Message> {
        Self::messages_from(self, &self.history)
    }

    fn messages_from(&self, history: &[Turn]) -> Vec<Message> {
        let mut messages = Vec::with_capacity(2 * history.len() + 2);
        if let Some(system) = &self.system_prompt {
            messages.push(Message::new(Role::System, system.clone()));
        }
        for turn in history.iter().filter(|turn| Failure::decode(&turn.output).is_none()) {
            messages.push(Message::new(Role::User, user_message(&turn.input, &turn.extra)));
            messages.push(Message::new(Role::Assistant, output_text(&turn.format, &turn.output)));
        }
        messages.push(Message::new(Role::User, user_message(&self.input, &self.extra)));
        messages
    }

    /// The conversation the model runs on (rules 1–4): turns are dropped oldest first until
    /// `count_tokens(messages)` (the rendered prompt's token count, generation prompt included)
    /// plus max tokens fits `context_length`.
    pub fn assemble<E: std::fmt::Display>(
        &self,
        context_length: usize,
        mut count_tokens: impl FnMut(&[Message]) -> std::result::Result<usize, E>,
    ) -> Result<Vec<Message>> {
        let max_tokens = self.max_tokens as usize;
        let failed = |failure, reason| Error::PromptFailure {
            prompt_id: self.prompt_id.to_string(),
            failure,
            reason,
        };
        let budget = context_length.checked_sub(max_tokens).filter(|b| *b > 0).ok_or_else(|| {
            failed(
                Failure::ContextTooLong,
                format!(
                    "it asks for {max_tokens} output tokens but the model's context holds {context_length}"
                ),
            )
        })?;
        for dropped in 0..=self.history.len() {
            let messages = self.messages_from(&self.history[dropped..]);
            let tokens = count_tokens(&messages).map_err(|e| {
                failed(Failure::Unprocessable, format!("its context cannot be tokenized: {e}"))
            })?;
            if tokens <= budget {
                return Ok(messages);
            }
            if dropped == self.history.len() {
                return Err(failed(
                    Failure::ContextTooLong,
                    format!(
                        "it needs {tokens} prompt tokens without any history, but only {budget} fit (context {context_length} minus {max_tokens} output tokens)"
                    ),
                ));
            }
        }
        unreachable!("the loop returns on its last iteration")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(id: u64, input: &str, extra: &str, output: &str) -> Turn {
        Turn {
            prompt_id: U256::from(id),
            input: input.into(),
            extra: extra.into(),
            format: OutputFormat::Text,
            output: output.into(),
        }
    }

    fn context(
        system: Option<&str>,
        history: Vec<Turn>,
        input: &str,
        extra: &str,
    ) -> PromptContext {
        PromptContext {
            prompt_id: U256::from(9),
            requester: Address::repeat_byte(1),
            model_id: U256::from(1),
            topic: "chat".into(),
            system_prompt: system.map(str::to_owned),
            history,
            input: input.into(),
            extra: extra.into(),
            format: OutputFormat::Text,
            max_tokens: 10,
            sampling: SamplingSpec::Greedy,
        }
    }

    fn m(role: Role, content: &str) -> Message {
        Message::new(role, content)
    }

    /// One token per whitespace-separated word plus four per message, like a template's framing.
    fn words(messages: &[Message]) -> std::result::Result<usize, String> {
        Ok(messages.iter().map(|m| 4 + m.content.split_whitespace().count()).sum())
    }

    #[test]
    fn multi_turn_topic_with_system_prompt_and_extra() {
        let ctx = context(
            Some("Be brief."),
            vec![turn(1, "Hi", "", "Hello!"), turn(2, "Capital of France?", "geo quiz", "Paris")],
            "And of Italy?",
            "still geography",
        );
        assert_eq!(
            ctx.assemble(1000, words).unwrap(),
            vec![
                m(Role::System, "Be brief."),
                m(Role::User, "Hi"),
                m(Role::Assistant, "Hello!"),
                m(Role::User, "geo quiz\n\nCapital of France?"),
                m(Role::Assistant, "Paris"),
                m(Role::User, "still geography\n\nAnd of Italy?"),
            ]
        );
    }

    #[test]
    fn no_system_prompt_and_no_history_is_one_user_message() {
        let ctx = context(None, Vec::new(), "Hi", "");
        assert_eq!(ctx.assemble(100, words).unwrap(), vec![m(Role::User, "Hi")]);
        // Invalid UTF-8 becomes U+FFFD rather than failing.
        let ctx = PromptContext { input: vec![b'a', 0xff], ..ctx };
        assert_eq!(ctx.messages(), vec![m(Role::User, "a\u{fffd}")]);
    }

    #[test]
    fn truncation_drops_oldest_turns_first() {
        let ctx = context(
            Some("sys"),
            vec![
                turn(1, "one two three", "", "four five"),
                turn(2, "six", "", "seven"),
                turn(3, "eight", "", "nine"),
            ],
            "ten",
            "",
        );
        // Full: sys 5 + (7 + 6) + (5 + 5) + (5 + 5) + ten 5 = 43 tokens; 10 output tokens.
        assert_eq!(words(&ctx.messages()).unwrap(), 43);
        assert_eq!(ctx.assemble(53, words).unwrap().len(), 8);
        // One token short: the first turn (13 tokens) goes, the two later ones stay.
        let assembled = ctx.assemble(52, words).unwrap();
        assert_eq!(
            assembled,
            vec![
                m(Role::System, "sys"),
                m(Role::User, "six"),
                m(Role::Assistant, "seven"),
                m(Role::User, "eight"),
                m(Role::Assistant, "nine"),
                m(Role::User, "ten"),
            ]
        );
        // Room for the system prompt and the new message only.
        assert_eq!(
            ctx.assemble(20, words).unwrap(),
            vec![m(Role::System, "sys"), m(Role::User, "ten")]
        );
        let err = ctx.assemble(19, words).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt 9 cannot run (failure 1: the prompt does not fit the model's context): it needs 10 prompt tokens without any history, but only 9 fit (context 19 minus 10 output tokens)"
        );
        assert!(matches!(err, Error::PromptFailure { failure: Failure::ContextTooLong, .. }));
        let err = ctx.assemble(10, words).unwrap_err();
        assert!(err.to_string().contains("asks for 10 output tokens"), "{err}");
        assert!(matches!(err, Error::PromptFailure { failure: Failure::ContextTooLong, .. }));
    }

    #[test]
    fn tokenizer_errors_name_the_prompt() {
        let ctx = context(None, Vec::new(), "Hi", "");
        let err = ctx.assemble(100, |_| Err::<usize, _>("bad template")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt 9 cannot run (failure 5: the input cannot be processed by the model): its context cannot be tokenized: bad template"
        );
    }

    #[test]
    fn turns_answered_with_a_failure_are_left_out() {
        let turn = |id: u64, input: &str, output: Vec<u8>| Turn {
            prompt_id: U256::from(id),
            input: input.as_bytes().to_vec(),
            extra: Vec::new(),
            format: OutputFormat::Text,
            output,
        };
        let ctx = context(
            None,
            vec![
                turn(1, "one", b"uno".to_vec()),
                turn(2, "two", Failure::ContextTooLong.encode().to_vec()),
                turn(3, "three", b"tres".to_vec()),
            ],
            "four",
            "",
        );
        assert_eq!(
            ctx.messages(),
            vec![
                m(Role::User, "one"),
                m(Role::Assistant, "uno"),
                m(Role::User, "three"),
                m(Role::Assistant, "tres"),
                m(Role::User, "four"),
            ]
        );
    }

    #[test]
    fn earlier_answers_show_as_text_in_their_format() {
        let choice = OutputFormat::Choice(vec!["red".into(), "blue".into()]);
        assert_eq!(output_text(&choice, &OutputValue::Choice(1).encode()), "blue");
        assert_eq!(output_text(&OutputFormat::Bool, &OutputValue::Bool(false).encode()), "false");
        let uint = OutputFormat::Uint { min: U256::ZERO, max: U256::from(100) };
        assert_eq!(output_text(&uint, &OutputValue::Uint(U256::from(42)).encode()), "42");
        assert_eq!(output_text(&OutputFormat::Bool, &[7]), "0x07");
        let ctx = context(
            None,
            vec![Turn {
                prompt_id: U256::from(1),
                input: b"Is the sky blue?".to_vec(),
                extra: Vec::new(),
                format: OutputFormat::Bool,
                output: OutputValue::Bool(true).encode(),
            }],
            "Why?",
            "",
        );
        assert_eq!(
            ctx.messages(),
            vec![
                m(Role::User, "Is the sky blue?"),
                m(Role::Assistant, "true"),
                m(Role::User, "Why?"),
            ]
        );
    }
}
