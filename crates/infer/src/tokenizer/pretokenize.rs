//! Pre-tokenizers: how text is cut into pieces before BPE runs on each piece alone.

use crate::{Error, Result};
use fancy_regex::Regex;

/// GPT-2's split pattern, as llama.cpp (`llama-vocab.cpp`, `LLAMA_VOCAB_PRE_TYPE_GPT2`) and HF
/// `ByteLevel` use it. The final `\s+` takes the whitespace that `\s+(?!\S)` leaves (a lone
/// whitespace run before a non-space that no other branch takes); llama.cpp's splitter keeps such
/// leftovers as pieces as well, so both spellings cut text identically.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Llama 3's split pattern, as its tokenizer.json (and tiktoken) spells it: letters may take one
/// leading non-letter, digits go in runs of at most three, punctuation keeps trailing newlines.
/// The contractions match case-insensitively by Unicode case folding, so `'ſ` (long s) is one:
/// llama.cpp spells them `'[sS]` and differs there, on text no one writes.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen 2's split pattern (its tokenizer.json's): Llama 3's with every digit its own piece.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Which pre-tokenizer a vocabulary was trained with (GGUF `tokenizer.ggml.pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreTokenizerKind {
    /// Plain GPT-2 (`gpt2`).
    Gpt2,
    /// SmolLM / StarCoder: every numeric character (`\p{N}`) becomes its own piece, then the
    /// GPT-2 pattern runs on the rest (HF: `Sequence[Digits(individual_digits), ByteLevel]`).
    Smollm,
    /// Llama 3 (`llama-bpe`, also written `llama3`): its own split pattern, and a piece that is
    /// a whole vocabulary token is that token without merging (HF's `ignore_merges`).
    Llama3,
    /// Qwen 2 (`qwen2`): its own split pattern, merges as usual.
    Qwen2,
}

impl PreTokenizerKind {
    /// The kind for a `tokenizer.ggml.pre` value; unknown names are an error because a wrong
    /// split silently changes token ids.
    pub fn from_gguf_name(name: &str) -> Result<Self> {
        match name {
            "gpt2" => Ok(Self::Gpt2),
            "smollm" => Ok(Self::Smollm),
            "llama-bpe" | "llama3" => Ok(Self::Llama3),
            "qwen2" => Ok(Self::Qwen2),
            other => Err(Error::Tokenizer(format!(
                "pre-tokenizer '{other}' is not supported (supported: gpt2, smollm, llama-bpe, qwen2)"
            ))),
        }
    }

    /// The GGUF name of this kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gpt2 => "gpt2",
            Self::Smollm => "smollm",
            Self::Llama3 => "llama-bpe",
            Self::Qwen2 => "qwen2",
        }
    }

    /// Whether a piece that is itself a vocabulary token is taken whole, before any merge.
    pub fn ignores_merges(self) -> bool {
        self == Self::Llama3
    }
}

/// A compiled pre-tokenizer.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    kind: PreTokenizerKind,
    /// The split pattern (GPT-2's for `gpt2` and `smollm`).
    regex: Regex,
}

impl PreTokenizer {
    pub(crate) fn new(kind: PreTokenizerKind) -> Result<Self> {
        let pattern = match kind {
            PreTokenizerKind::Gpt2 | PreTokenizerKind::Smollm => GPT2_PATTERN,
            PreTokenizerKind::Llama3 => LLAMA3_PATTERN,
            PreTokenizerKind::Qwen2 => QWEN2_PATTERN,
        };
        let regex = Regex::new(pattern).map_err(|e| {
            Error::Tokenizer(format!("the {} split pattern does not compile: {e}", kind.name()))
        })?;
        Ok(Self { kind, regex })
    }

    pub(crate) fn kind(&self) -> PreTokenizerKind {
        self.kind
    }

    /// Calls `piece` for each piece of `text`, in order; the pieces concatenate to `text`.
    pub(crate) fn split(&self, text: &str, piece: &mut impl FnMut(&str)) {
        match self.kind {
            PreTokenizerKind::Gpt2 | PreTokenizerKind::Llama3 | PreTokenizerKind::Qwen2 => {
                self.split_regex(text, piece);
            }
            PreTokenizerKind::Smollm => {
                // `char::is_numeric` is exactly `\p{N}` (categories Nd, Nl, No), the test HF's
                // `Digits` pre-tokenizer applies.
                let mut start = 0;
                for (at, c) in text.char_indices() {
                    if c.is_numeric() {
                        self.split_regex(&text[start..at], piece);
                        let end = at + c.len_utf8();
                        piece(&text[at..end]);
                        start = end;
                    }
                }
                self.split_regex(&text[start..], piece);
            }
        }
    }

    fn split_regex(&self, text: &str, piece: &mut impl FnMut(&str)) {
        let mut last = 0;
        for found in self.regex.find_iter(text) {
            let Ok(found) = found else {
                // Only a backtrack-limit overrun can fail here; keep the rest as one piece
                // rather than lose text (never reached with this pattern in practice).
                break;
            };
            if found.start() > last {
                piece(&text[last..found.start()]);
            }
            if found.end() > found.start() {
                piece(found.as_str());
            }
            last = found.end();
        }
        if last < text.len() {
            piece(&text[last..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(kind: PreTokenizerKind, text: &str) -> Vec<String> {
        let pre = PreTokenizer::new(kind).unwrap();
        let mut out = Vec::new();
        pre.split(text, &mut |p| out.push(p.to_string()));
        out
    }

    #[test]
    fn gpt2_splits_words_contractions_and_spaces() {
        assert_eq!(
            pieces(PreTokenizerKind::Gpt2, "Hello world's  end 123!!\n\n x"),
            ["Hello", " world", "'s", " ", " end", " 123", "!!", "\n\n", " x"]
        );
    }

    #[test]
    fn smollm_splits_every_digit() {
        assert_eq!(
            pieces(PreTokenizerKind::Smollm, "a 123 ½x"),
            ["a", " ", "1", "2", "3", " ", "½", "x"]
        );
    }

    #[test]
    fn llama3_and_qwen2_split_digits_and_take_a_leading_symbol() {
        let text = "x12345 ,hello\n\n  world's!\n";
        assert_eq!(
            pieces(PreTokenizerKind::Llama3, text),
            ["x", "123", "45", " ,", "hello", "\n\n", " ", " world", "'s", "!\n"]
        );
        assert_eq!(
            pieces(PreTokenizerKind::Qwen2, text),
            ["x", "1", "2", "3", "4", "5", " ,", "hello", "\n\n", " ", " world", "'s", "!\n"]
        );
        assert_eq!(pieces(PreTokenizerKind::Llama3, "IT'S it'ſx"), ["IT", "'S", " it", "'ſ", "x"]);
    }

    #[test]
    fn unknown_pre_tokenizer_is_named() {
        let err = PreTokenizerKind::from_gguf_name("deepseek-llm").unwrap_err().to_string();
        assert!(err.contains("'deepseek-llm'"), "{err}");
    }
}
