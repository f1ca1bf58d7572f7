//! Chat templates: the model's own `tokenizer.chat_template` (Jinja), rendered with minijinja.
//!
//! The environment matches what HF `transformers` and llama.cpp give templates: `trim_blocks`
//! and `lstrip_blocks` on, loop controls (`break`/`continue`), `raise_exception(msg)`, and the
//! variables `messages`, `add_generation_prompt`, `bos_token` and `eos_token`. The template
//! decides everything else (SmolLM2's inserts a default system prompt when the conversation does
//! not start with one); this module adds nothing of its own, so the prompt is the one the model
//! was tuned on.

use crate::{Error, Gguf, Result};
use minijinja::{Environment, Value};
use std::collections::BTreeMap;

/// Name under which the template is stored in the minijinja environment.
const TEMPLATE_NAME: &str = "chat_template";

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person asking.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The role name templates compare against (`system`, `user`, `assistant`).
    pub fn as_str(self) -> &'static str {
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
            other => Err(Error::ChatTemplate(format!(
                "unknown role '{other}' (expected system, user or assistant)"
            ))),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What was written (plain text; never parsed for special tokens by the tokenizer when it
    /// comes from a user, see [`crate::Tokenizer::encode`]).
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

    fn to_value(&self) -> Value {
        let mut map = BTreeMap::new();
        map.insert("role", Value::from(self.role.as_str()));
        map.insert("content", Value::from(self.content.as_str()));
        Value::from(map)
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

impl ChatTemplate {
    /// The template stored in a GGUF file (`tokenizer.chat_template`), with `bos_token` and
    /// `eos_token` taken from the vocabulary when the file names them.
    pub fn from_gguf(gguf: &Gguf) -> Result<Self> {
        let source = gguf.get_str("tokenizer.chat_template")?;
        let mut template = Self::new(source)?;
        let token_text = |key: &str| -> Result<Option<String>> {
            let Some(id) = gguf.get_u64_opt(key)? else { return Ok(None) };
            let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?;
            let text = usize::try_from(id).ok().and_then(|i| tokens.get(i)).ok_or_else(|| {
                Error::ChatTemplate(format!("{key} = {id} is outside the vocabulary"))
            })?;
            Ok(Some((*text).to_owned()))
        };
        if let Some(bos) = token_text("tokenizer.ggml.bos_token_id")? {
            template.bos_token = bos;
        }
        if let Some(eos) = token_text("tokenizer.ggml.eos_token_id")? {
            template.eos_token = eos;
        }
        Ok(template)
    }

    /// Compiles a template source; a syntax error names the line and reason.
    pub fn new(source: impl Into<String>) -> Result<Self> {
        let source = source.into();
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| Error::ChatTemplate(format!("syntax configuration: {e}")))?;
        env.set_syntax(syntax);
        env.add_function("raise_exception", |message: String| -> Result<Value, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned(TEMPLATE_NAME, source.clone())
            .map_err(|e| Error::ChatTemplate(format!("template does not compile: {e:#}")))?;
        Ok(Self { env, source, bos_token: String::new(), eos_token: String::new() })
    }

    /// Sets the texts templates see as `bos_token` and `eos_token` (empty by default).
    pub fn with_special_tokens(mut self, bos: impl Into<String>, eos: impl Into<String>) -> Self {
        self.bos_token = bos.into();
        self.eos_token = eos.into();
        self
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the assistant's
    /// reply begins. Encode the result with [`crate::Tokenizer::encode_with_special`].
    ///
    /// Note: message contents are inserted verbatim, so a user who types `<|im_end|>` would
    /// forge structure if the whole string were encoded with special tokens; callers that
    /// need that guarantee encode message contents separately (see the tokenizer docs).
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Error::ChatTemplate(format!("{e:#}")))?;
        let mut ctx = BTreeMap::new();
        ctx.insert(
            "messages",
            Value::from(messages.iter().map(Message::to_value).collect::<Vec<_>>()),
        );
        ctx.insert("add_generation_prompt", Value::from(add_generation_prompt));
        ctx.insert("bos_token", Value::from(self.bos_token.as_str()));
        ctx.insert("eos_token", Value::from(self.eos_token.as_str()));
        template
            .render(Value::from(ctx))
            .map_err(|e| Error::ChatTemplate(format!("rendering failed: {e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_loops_and_generation_prompt() {
        let t = ChatTemplate::new(
            "{% for m in messages %}[{{ m.role }}|{{ m['content'] }}]{% if loop.last %}.{% endif %}\n{% endfor %}{% if add_generation_prompt %}>{% endif %}",
        )
        .unwrap();
        let msgs = [Message::system("s"), Message::user("u")];
        assert_eq!(t.render(&msgs, true).unwrap(), "[system|s][user|u].>");
        assert_eq!(t.render(&msgs, false).unwrap(), "[system|s][user|u].");
    }

    #[test]
    fn raise_exception_is_an_error_with_its_message() {
        let t = ChatTemplate::new(
            "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok",
        )
        .unwrap();
        assert_eq!(t.render(&[Message::user("x")], false).unwrap(), "ok");
        let err = t.render(&[Message::assistant("x")], false).unwrap_err().to_string();
        assert!(err.contains("first must be user"), "{err}");
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = ChatTemplate::new("{% for m in messages %}").unwrap_err().to_string();
        assert!(err.contains("chat template"), "{err}");
    }

    #[test]
    fn roles_parse() {
        assert_eq!("assistant".parse::<Role>().unwrap(), Role::Assistant);
        assert!("tool".parse::<Role>().unwrap_err().to_string().contains("'tool'"));
    }
}
