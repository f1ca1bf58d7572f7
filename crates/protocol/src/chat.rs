//! Chat messages: what context assembly produces and a model's chat template renders.

use crate::{Error, Result};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions that frame the conversation (a topic's system prompt).
    System,
    /// The person or contract asking.
    User,
    /// The model (a finalized answer).
    Assistant,
}

impl Role {
    /// The role name chat templates compare against (`system`, `user`, `assistant`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "system" => Ok(Self::System),
            "user" => Ok(Self::User),
            "assistant" => Ok(Self::Assistant),
            other => Err(Error::UnknownRole(other.to_owned())),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What was written: plain text, never parsed for a tokenizer's special tokens.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// How a model is prompted, as its registry entry says (the ModelFileSystem's `PromptLayout`,
/// in the same order). Every worker and verifier of the model renders the assembled messages
/// the same way, so it is part of the protocol, not a node's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PromptLayout {
    /// Through the model's chat template (an instruction-tuned model).
    #[default]
    Chat,
    /// As plain text, [`plain_text`] (a base model: no chat template).
    PlainText,
}

impl PromptLayout {
    /// The registry's value (`0` chat, `1` plain text).
    pub const fn to_u8(self) -> u8 {
        match self {
            Self::Chat => 0,
            Self::PlainText => 1,
        }
    }

    /// The layout of a registry value; `None` for a value the protocol does not define.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Chat),
            1 => Some(Self::PlainText),
            _ => None,
        }
    }

    /// `chat` or `plain-text`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::PlainText => "plain-text",
        }
    }
}

impl std::fmt::Display for PromptLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The plain-text layout of a conversation (context assembly's rule 5, for models registered
/// with [`PromptLayout::PlainText`]): a system message's content followed by one blank line
/// (`"\n\n"`), then every user and assistant message's content in order with nothing in
/// between. A topic is one document that the requester's inputs and the model's continuations
/// extend in turn; a lone input is exactly the text a base model continues.
pub fn plain_text(messages: &[Message]) -> String {
    let mut text = String::with_capacity(messages.iter().map(|m| m.content.len() + 2).sum());
    for message in messages {
        text.push_str(&message.content);
        if message.role == Role::System {
            text.push_str("\n\n");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_the_contents_in_order_with_a_blank_line_after_the_system_prompt() {
        let messages = [
            Message::system("You write fables."),
            Message::user("The fox saw"),
            Message::assistant(" a crow with cheese."),
            Message::user(" The fox said"),
        ];
        assert_eq!(
            plain_text(&messages),
            "You write fables.\n\nThe fox saw a crow with cheese. The fox said"
        );
        assert_eq!(plain_text(&messages[1..2]), "The fox saw");
        assert_eq!(plain_text(&[]), "");
    }

    #[test]
    fn layouts_round_trip_through_the_registry_value() {
        for layout in [PromptLayout::Chat, PromptLayout::PlainText] {
            assert_eq!(PromptLayout::from_u8(layout.to_u8()), Some(layout));
        }
        assert_eq!(PromptLayout::from_u8(2), None);
        assert_eq!(PromptLayout::default(), PromptLayout::Chat);
        assert_eq!(PromptLayout::PlainText.to_string(), "plain-text");
    }

    #[test]
    fn roles_parse_and_print() {
        for role in [Role::System, Role::User, Role::Assistant] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        let err = "tool".parse::<Role>().unwrap_err().to_string();
        assert_eq!(err, "unknown role 'tool' (expected system, user or assistant)");
    }
}
