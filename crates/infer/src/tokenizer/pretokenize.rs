//! Pre-tokenizers: how text is cut into pieces before BPE runs on each piece alone.

use crate::{Error, Result};
use fancy_regex::Regex;

/// GPT-2's split pattern, as llama.cpp (`llama-vocab.cpp`, `LLAMA_VOCAB_PRE_TYPE_GPT2`) and HF
/// `ByteLevel` use it. The final `\s+` takes the whitespace that `\s+(?!\S)` leaves (a lone
/// whitespace run before a non-space that no other branch takes); llama.cpp's splitter keeps such
/// leftovers as pieces as well, so both spellings cut text identically.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Which pre-tokenizer a vocabulary was trained with (GGUF `tokenizer.ggml.pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreTokenizerKind {
    /// Plain GPT-2 (`gpt2`).
    Gpt2,
    /// SmolLM / StarCoder: every numeric character (`\p{N}`) becomes its own piece, then the
    /// GPT-2 pattern runs on the rest (HF: `Sequence[Digits(individual_digits), ByteLevel]`).
    Smollm,
}

impl PreTokenizerKind {
    /// The kind for a `tokenizer.ggml.pre` value; unknown names are an error because a wrong
    /// split silently changes token ids.
    pub fn from_gguf_name(name: &str) -> Result<Self> {
        match name {
            "gpt2" => Ok(Self::Gpt2),
            "smollm" => Ok(Self::Smollm),
            other => Err(Error::Tokenizer(format!(
                "pre-tokenizer '{other}' is not supported (supported: gpt2, smollm)"
            ))),
        }
    }

    /// The GGUF name of this kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gpt2 => "gpt2",
            Self::Smollm => "smollm",
        }
    }
}

/// A compiled pre-tokenizer.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    kind: PreTokenizerKind,
    gpt2: Regex,
}

impl PreTokenizer {
    pub(crate) fn new(kind: PreTokenizerKind) -> Result<Self> {
        let gpt2 = Regex::new(GPT2_PATTERN)
            .map_err(|e| Error::Tokenizer(format!("GPT-2 split pattern does not compile: {e}")))?;
        Ok(Self { kind, gpt2 })
    }

    pub(crate) fn kind(&self) -> PreTokenizerKind {
        self.kind
    }

    /// Calls `piece` for each piece of `text`, in order; the pieces concatenate to `text`.
    pub(crate) fn split(&self, text: &str, piece: &mut impl FnMut(&str)) {
        match self.kind {
            PreTokenizerKind::Gpt2 => self.split_gpt2(text, piece),
            PreTokenizerKind::Smollm => {
                // `char::is_numeric` is exactly `\p{N}` (categories Nd, Nl, No), the test HF's
                // `Digits` pre-tokenizer applies.
                let mut start = 0;
                for (at, c) in text.char_indices() {
                    if c.is_numeric() {
                        self.split_gpt2(&text[start..at], piece);
                        let end = at + c.len_utf8();
                        piece(&text[at..end]);
                        start = end;
                    }
                }
                self.split_gpt2(&text[start..], piece);
            }
        }
    }

    fn split_gpt2(&self, text: &str, piece: &mut impl FnMut(&str)) {
        let mut last = 0;
        for found in self.gpt2.find_iter(text) {
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
    fn unknown_pre_tokenizer_is_named() {
        let err = PreTokenizerKind::from_gguf_name("llama-bpe").unwrap_err().to_string();
        assert!(err.contains("'llama-bpe'"), "{err}");
    }
}
