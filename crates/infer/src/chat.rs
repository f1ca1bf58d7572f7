//! Chat templates: the model's own `tokenizer.chat_template` (Jinja), rendered with minijinja.
//!
//! The environment matches what HF `transformers` and llama.cpp give templates: `trim_blocks`
//! and `lstrip_blocks` on, loop controls (`break`/`continue`), Python string and dict methods
//! (`.strip()`, `.startswith()`, `.items()`, …), `raise_exception(msg)`, and the
//! variables `messages`, `add_generation_prompt`, `bos_token` and `eos_token`. The template
//! decides everything else (SmolLM2's inserts a default system prompt when the conversation does
//! not start with one); this module adds nothing of its own, so the prompt is the one the model
//! was tuned on.

use crate::{Error, Gguf, Message, Result, Tokenizer};
use minijinja::{Environment, Value};
use std::collections::BTreeMap;
use std::ops::Range;

/// Name under which the template is stored in the minijinja environment.
const TEMPLATE_NAME: &str = "chat_template";

/// Unicode noncharacters (reserved for internal use, never interchanged) that bracket each
/// message content in a second rendering, to find where contents land in the prompt.
const CONTENT_OPEN: char = '\u{FDD0}';
const CONTENT_CLOSE: char = '\u{FDD1}';

/// A rendered prompt and where the message contents sit in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// The template's output.
    pub text: String,
    /// Byte ranges of `text` that hold message contents (user, system or assistant text), in
    /// order. Special-token text inside them must stay text when encoding.
    pub content_spans: Vec<Range<usize>>,
}

/// A message as the template sees it: a map with `role` and `content`.
fn message_value(message: &Message) -> Value {
    let mut map = BTreeMap::new();
    map.insert("role", Value::from(message.role.as_str()));
    map.insert("content", Value::from(message.content.as_str()));
    Value::from(map)
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
        // HF templates are written for Python's Jinja2 and call str/dict methods.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
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
    /// Message contents are inserted as the template says, so encoding this string with
    /// [`Tokenizer::encode_with_special`] would turn a user's typed `<|im_end|>` into the control
    /// token. To build model input use [`ChatTemplate::encode`], which keeps contents as text.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Error::ChatTemplate(format!("{e:#}")))?;
        let mut ctx = BTreeMap::new();
        ctx.insert("messages", Value::from(messages.iter().map(message_value).collect::<Vec<_>>()));
        ctx.insert("add_generation_prompt", Value::from(add_generation_prompt));
        ctx.insert("bos_token", Value::from(self.bos_token.as_str()));
        ctx.insert("eos_token", Value::from(self.eos_token.as_str()));
        template
            .render(Value::from(ctx))
            .map_err(|e| Error::ChatTemplate(format!("rendering failed: {e:#}")))
    }
}

impl ChatTemplate {
    /// Renders like [`ChatTemplate::render`] and also reports where each message content
    /// landed. Found by rendering a second time with every content bracketed by two Unicode
    /// noncharacters; the bracketed output, brackets removed, must equal the plain output, so a
    /// template that rewrites contents (e.g. trims them) is an error rather than a guess. A
    /// message or template containing those noncharacters (U+FDD0, U+FDD1) is rejected.
    pub fn render_with_spans(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<RenderedPrompt> {
        let is_marker = |c: char| c == CONTENT_OPEN || c == CONTENT_CLOSE;
        if self.source.contains(is_marker) {
            return Err(Error::ChatTemplate(
                "template contains the reserved noncharacters U+FDD0/U+FDD1".into(),
            ));
        }
        if let Some((i, _)) =
            messages.iter().enumerate().find(|(_, m)| m.content.contains(is_marker))
        {
            return Err(Error::ChatTemplate(format!(
                "message {i} contains the noncharacter U+FDD0 or U+FDD1, which prompts may not hold"
            )));
        }
        let text = self.render(messages, add_generation_prompt)?;
        let marked: Vec<Message> = messages
            .iter()
            .map(|m| Message::new(m.role, format!("{CONTENT_OPEN}{}{CONTENT_CLOSE}", m.content)))
            .collect();
        let marked = self.render(&marked, add_generation_prompt)?;
        let mut stripped = String::with_capacity(text.len());
        let mut content_spans = Vec::new();
        let mut open = None;
        for c in marked.chars() {
            match (c, open) {
                (CONTENT_OPEN, None) => open = Some(stripped.len()),
                (CONTENT_CLOSE, Some(start)) => {
                    content_spans.push(start..stripped.len());
                    open = None;
                }
                (CONTENT_OPEN | CONTENT_CLOSE, _) => {
                    return Err(Error::ChatTemplate(
                        "template splits or nests message contents; cannot tell them from \
                         template text"
                            .into(),
                    ));
                }
                _ => stripped.push(c),
            }
        }
        if open.is_some() || stripped != text {
            return Err(Error::ChatTemplate(
                "template transforms message contents; cannot tell them from template text".into(),
            ));
        }
        Ok(RenderedPrompt { text, content_spans })
    }

    /// The model input for a conversation: the rendered template, with the template's own
    /// special-token text (`<|im_start|>`, …) as control tokens and every message content as
    /// plain text, even if it spells a special token. Ordinary text is encoded across the
    /// content edges exactly as in the whole string, so for contents without special-token text
    /// the ids equal llama.cpp's and HF's tokenization of the rendered prompt.
    pub fn encode(
        &self,
        tokenizer: &Tokenizer,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        let prompt = self.render_with_spans(messages, add_generation_prompt)?;
        Ok(tokenizer.encode_with_special_outside(&prompt.text, &prompt.content_spans))
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
    fn python_methods_work() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{% if m.content.startswith('x') %}{{ m.content.strip().upper() }}{% endif %}{% endfor %}",
        )
        .unwrap();
        assert_eq!(t.render(&[Message::user("x y  "), Message::user("no")], false).unwrap(), "X Y");
    }

    #[test]
    fn syntax_errors_are_reported() {
        let err = ChatTemplate::new("{% for m in messages %}").unwrap_err().to_string();
        assert!(err.contains("chat template"), "{err}");
    }

    #[test]
    fn spans_locate_contents() {
        let t = ChatTemplate::new(
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}</>\n{% endfor %}",
        )
        .unwrap();
        let msgs = [Message::system("sys"), Message::user("a<b>c")];
        let r = t.render_with_spans(&msgs, false).unwrap();
        assert_eq!(r.text, "<system>sys</>\n<user>a<b>c</>\n");
        let spans: Vec<&str> = r.content_spans.iter().map(|s| &r.text[s.clone()]).collect();
        assert_eq!(spans, ["sys", "a<b>c"]);
    }

    #[test]
    fn content_rewriting_templates_are_refused() {
        let t =
            ChatTemplate::new("{% for m in messages %}{{ m.content | trim }}{% endfor %}").unwrap();
        assert!(t.render_with_spans(&[Message::user("x")], false).is_ok());
        let err = t.render_with_spans(&[Message::user(" x ")], false).unwrap_err().to_string();
        assert!(err.contains("transforms message contents"), "{err}");
        let err = t.render_with_spans(&[Message::user("\u{FDD0}")], false).unwrap_err().to_string();
        assert!(err.contains("message 0"), "{err}");
    }
}
