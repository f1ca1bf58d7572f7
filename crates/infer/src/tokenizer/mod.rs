//! GPT-2 byte-level BPE tokenizer built from GGUF metadata.
//!
//! Text is cut into pieces by the model's pre-tokenizer ([`PreTokenizerKind`]), each piece's
//! UTF-8 bytes become byte tokens through GPT-2's byte-level alphabet, and merges from
//! `tokenizer.ggml.merges` are applied lowest rank first. The result is identical to HF
//! `tokenizers` for the same vocabulary (checked on a generated corpus in the integration tests).
//!
//! # Rules that fix the token ids of a request
//!
//! * [`Tokenizer::encode`] treats all input as text: `<|im_start|>` typed by a user is spelled
//!   with ordinary tokens, never the control token. Only [`Tokenizer::encode_with_special`]
//!   (for chat-template output) turns the text of control and user-defined tokens into their ids.
//! * **Bytes the vocabulary lacks are dropped.** Byte-level BPE has no byte fallback: every
//!   token is a string over the 256-character byte alphabet, and a vocabulary may omit some of
//!   those characters (SmolLM2 omits 21: bytes 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1,
//!   0xF1, 0xF2 and 0xF5–0xFF, so code points U+40000–U+BFFFF lose their lead byte). Such a byte
//!   yields no token and is removed before merging, so its neighbours within the piece may merge
//!   across it. This is HF `tokenizers`' behaviour with `unk_token = null`, the setting the
//!   model was trained with (llama.cpp also drops the byte but does not merge across it:
//!   `"!\x04!"` is `[10095]` here and in HF, `[17, 17]` in llama.cpp). [`Tokenizer::missing_bytes`] lists the affected bytes, so a caller
//!   that must not lose input can reject it instead. Loading never fails for a missing byte:
//!   real vocabularies (SmolLM2's included) lack some.
//! * [`Tokenizer::decode`] concatenates [`Tokenizer::token_bytes`] and replaces each maximal
//!   invalid UTF-8 sequence with U+FFFD (`String::from_utf8_lossy`). Control tokens decode to
//!   their text; callers that stop at [`Tokenizer::eog_ids`] never see them.

mod bpe;
mod byte_level;
mod pretokenize;
mod spm;

pub use pretokenize::PreTokenizerKind;

use crate::{Error, Gguf, Result};
use bpe::{Merge, MergeTable};
use pretokenize::PreTokenizer;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

/// SentencePiece's stand-in for a space.
const SPM_SPACE: &str = "\u{2581}";

/// The byte a SentencePiece byte token (`<0xXX>`) stands for.
fn spm_byte(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Pieces longer than this are merged without the cache (they are rare and would bloat it).
const CACHE_MAX_PIECE_BYTES: usize = 64;
/// The piece cache is cleared when it holds this many entries, bounding its memory.
const CACHE_MAX_ENTRIES: usize = 100_000;

/// Texts of control tokens that end a generation, as llama.cpp recognizes them (beyond the
/// `eos` and `eot` ids named in the metadata).
const EOG_TEXTS: &[&str] = &[
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<EOT>",
];

/// The role of a vocabulary entry (GGUF `tokenizer.ggml.token_type`, llama.cpp's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// An ordinary byte-level BPE token (1).
    Normal,
    /// The unknown token (2).
    Unknown,
    /// A control token such as `<|im_start|>` (3): only template text produces it.
    Control,
    /// A token the model author added as literal text (4); matched like a control token.
    UserDefined,
    /// A reserved, unused slot (5).
    Unused,
    /// A raw-byte token (6), used by SentencePiece vocabularies.
    Byte,
}

impl TokenType {
    /// The type for a GGUF token-type number.
    pub fn from_gguf(value: i64) -> Option<Self> {
        Some(match value {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => return None,
        })
    }

    /// Whether the token's text is literal (not byte-level encoded) and is matched as a whole
    /// by [`Tokenizer::encode_with_special`].
    fn is_special(self) -> bool {
        matches!(self, Self::Control | Self::UserDefined)
    }
}

/// Which algorithm turns text into tokens (`tokenizer.ggml.model`).
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizerModel {
    /// GPT-2 byte-level BPE (`gpt2`): merges in rank order after a pre-tokenizer split.
    Bpe,
    /// SentencePiece-style (`llama`: Llama 2, Gemma): merges by token score over characters,
    /// `▁` for spaces, `<0xXX>` byte fallback (see the `spm` module's docs).
    Spm {
        /// One score per token (`tokenizer.ggml.scores`): higher merges first.
        scores: Vec<f32>,
        /// Whether raw text starts with a space (`tokenizer.ggml.add_space_prefix`, default
        /// true; Gemma: false).
        add_space_prefix: bool,
    },
}

/// Everything a tokenizer is built from, as plain vectors (what the GGUF metadata holds).
#[derive(Debug, Clone)]
pub struct TokenizerParts {
    /// Token texts, indexed by id (`tokenizer.ggml.tokens`); byte-level encoded except for
    /// control and user-defined tokens.
    pub tokens: Vec<String>,
    /// One type per token (`tokenizer.ggml.token_type`); empty means all [`TokenType::Normal`].
    pub token_types: Vec<TokenType>,
    /// Merges in priority order, each `"left right"` (`tokenizer.ggml.merges`).
    pub merges: Vec<String>,
    /// The pre-tokenizer (`tokenizer.ggml.pre`).
    pub pre: PreTokenizerKind,
    /// Beginning-of-sequence token (`tokenizer.ggml.bos_token_id`).
    pub bos_id: Option<u32>,
    /// End-of-sequence token (`tokenizer.ggml.eos_token_id`).
    pub eos_id: Option<u32>,
    /// End-of-turn token (`tokenizer.ggml.eot_token_id`).
    pub eot_id: Option<u32>,
    /// The algorithm.
    pub model: TokenizerModel,
}

/// A GPT-2 byte-level BPE tokenizer; see the module docs for the rules it follows.
///
/// Cheap to share across threads (`&self` methods; the piece cache sits behind a mutex).
pub struct Tokenizer {
    pre: PreTokenizer,
    token_bytes: Vec<Vec<u8>>,
    token_types: Vec<TokenType>,
    /// Byte value → its byte-level token, if the vocabulary has it.
    byte_tokens: [Option<u32>; 256],
    missing_bytes: Vec<u8>,
    /// Vocabulary text → id.
    ids: HashMap<Box<str>, u32>,
    merges: MergeTable,
    /// Control and user-defined tokens by text, longest text first (so the longest match wins).
    specials: Vec<(String, u32)>,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
    eog_ids: Vec<u32>,
    cache: Mutex<HashMap<Box<str>, Box<[u32]>>>,
    /// Set for a SentencePiece vocabulary: its scores and whether text gets a leading space.
    spm: Option<(Vec<f32>, bool)>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("pre", &self.pre.kind())
            .field("vocab_size", &self.token_bytes.len())
            .field("merges", &self.merges.len())
            .field("specials", &self.specials.len())
            .field("missing_bytes", &self.missing_bytes)
            .field("eog_ids", &self.eog_ids)
            .finish()
    }
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF model was trained with, from its `tokenizer.*` metadata.
    ///
    /// Only `tokenizer.ggml.model = gpt2` is supported; other models (llama/SentencePiece,
    /// bert, …) are an error naming the value.
    pub fn from_gguf(gguf: &Gguf) -> Result<Self> {
        let model = match gguf.get_str("tokenizer.ggml.model")? {
            "gpt2" => TokenizerModel::Bpe,
            "llama" => {
                let scores = gguf
                    .metadata("tokenizer.ggml.scores")
                    .and_then(|v| v.as_array())
                    .and_then(|a| a.as_f32s())
                    .ok_or_else(|| {
                        Error::Tokenizer(
                            "tokenizer.ggml.scores (f32 array) is missing: a SentencePiece vocabulary merges by score".into(),
                        )
                    })?
                    .to_vec();
                let add_space_prefix = match gguf.metadata("tokenizer.ggml.add_space_prefix") {
                    Some(v) => v.as_bool().ok_or_else(|| {
                        Error::Tokenizer("tokenizer.ggml.add_space_prefix is not a bool".into())
                    })?,
                    None => true,
                };
                TokenizerModel::Spm { scores, add_space_prefix }
            }
            other => {
                return Err(Error::Tokenizer(format!(
                    "tokenizer.ggml.model '{other}' is not supported (supported: gpt2, llama)"
                )));
            }
        };
        // Required for BPE: llama.cpp's fallback for an absent key ("default") is a different,
        // four-regex split, and guessing would silently change ids. SentencePiece has no split.
        let pre = match model {
            TokenizerModel::Bpe => {
                PreTokenizerKind::from_gguf_name(gguf.get_str("tokenizer.ggml.pre")?)?
            }
            TokenizerModel::Spm { .. } => PreTokenizerKind::Gpt2,
        };
        let tokens: Vec<String> =
            gguf.get_str_array("tokenizer.ggml.tokens")?.into_iter().map(str::to_owned).collect();
        let token_types = match gguf.metadata("tokenizer.ggml.token_type") {
            None => Vec::new(),
            Some(_) => gguf
                .get_i64_array("tokenizer.ggml.token_type")?
                .into_iter()
                .enumerate()
                .map(|(id, t)| {
                    TokenType::from_gguf(t).ok_or_else(|| {
                        Error::Tokenizer(format!(
                            "tokenizer.ggml.token_type[{id}] = {t} is not a token type (1..=6)"
                        ))
                    })
                })
                .collect::<Result<_>>()?,
        };
        let merges: Vec<String> = match model {
            TokenizerModel::Bpe => gguf
                .get_str_array("tokenizer.ggml.merges")?
                .into_iter()
                .map(str::to_owned)
                .collect(),
            TokenizerModel::Spm { .. } => Vec::new(),
        };
        let id = |key: &str| -> Result<Option<u32>> {
            gguf.get_u64_opt(key)?
                .map(|v| {
                    u32::try_from(v).map_err(|_| {
                        Error::Tokenizer(format!("{key} = {v} does not fit a token id"))
                    })
                })
                .transpose()
        };
        Self::from_parts(TokenizerParts {
            tokens,
            token_types,
            merges,
            pre,
            bos_id: id("tokenizer.ggml.bos_token_id")?,
            eos_id: id("tokenizer.ggml.eos_token_id")?,
            eot_id: id("tokenizer.ggml.eot_token_id")?,
            model,
        })
    }

    /// Builds a tokenizer from plain vectors (tests, fixtures, other containers).
    ///
    /// Errors name the offending entry: a merge that is not two tokens of the vocabulary whose
    /// concatenation is also in it, a repeated token text, a normal token with a character
    /// outside the byte-level alphabet, or a special id beyond the vocabulary.
    pub fn from_parts(parts: TokenizerParts) -> Result<Self> {
        let TokenizerParts { tokens, mut token_types, merges, pre, bos_id, eos_id, eot_id, model } =
            parts;
        let spm = match model {
            TokenizerModel::Bpe => None,
            TokenizerModel::Spm { scores, add_space_prefix } => {
                if scores.len() != tokens.len() {
                    return Err(Error::Tokenizer(format!(
                        "{} scores for {} tokens",
                        scores.len(),
                        tokens.len()
                    )));
                }
                if !merges.is_empty() {
                    return Err(Error::Tokenizer(
                        "a SentencePiece vocabulary merges by score, not by a merge list".into(),
                    ));
                }
                Some((scores, add_space_prefix))
            }
        };
        let vocab_size = tokens.len();
        if vocab_size == 0 || u32::try_from(vocab_size).is_err() {
            return Err(Error::Tokenizer(format!("vocabulary size {vocab_size} is unusable")));
        }
        if token_types.is_empty() {
            token_types = vec![TokenType::Normal; vocab_size];
        } else if token_types.len() != vocab_size {
            return Err(Error::Tokenizer(format!(
                "{} token types for {vocab_size} tokens",
                token_types.len()
            )));
        }

        let mut ids: HashMap<Box<str>, u32> = HashMap::with_capacity(vocab_size);
        let mut token_bytes = Vec::with_capacity(vocab_size);
        let mut specials = Vec::new();
        for (id, (text, &ty)) in tokens.iter().zip(&token_types).enumerate() {
            let id = id as u32;
            if let Some(first) = ids.insert(text.as_str().into(), id) {
                return Err(Error::Tokenizer(format!(
                    "token text {text:?} appears twice, as ids {first} and {id}"
                )));
            }
            if ty.is_special() {
                if text.is_empty() {
                    return Err(Error::Tokenizer(format!("special token {id} has empty text")));
                }
                specials.push((text.clone(), id));
                token_bytes.push(text.as_bytes().to_vec());
            } else if spm.is_some() {
                token_bytes.push(match spm_byte(text) {
                    Some(byte) if ty == TokenType::Byte => vec![byte],
                    _ => text.replace(SPM_SPACE, " ").into_bytes(),
                });
            } else {
                let bytes = byte_level::decode_token_text(text).map_err(|c| {
                    Error::Tokenizer(format!(
                        "token {id} {text:?} has character {c:?} (U+{:04X}) outside the GPT-2 \
                         byte-level alphabet",
                        c as u32
                    ))
                })?;
                token_bytes.push(bytes);
            }
        }
        // Longest first, then by id, so matching is deterministic when texts share a prefix.
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));

        let mut byte_tokens = [None; 256];
        let mut missing_bytes = Vec::new();
        for byte in 0..=255u8 {
            // SentencePiece: `<0xXX>`, else the byte as a one-character token (llama.cpp's
            // `byte_to_token`); byte-level BPE: the byte's alphabet character.
            let text = match spm {
                Some(_) => format!("<0x{byte:02X}>"),
                None => byte_level::BYTE_TO_CHAR[byte as usize].to_string(),
            };
            let fallback = (spm.is_some() && byte < 0x80).then(|| char::from(byte).to_string());
            let found =
                ids.get(text.as_str()).or_else(|| fallback.and_then(|f| ids.get(f.as_str())));
            match found {
                Some(&id) if !token_types[id as usize].is_special() => {
                    byte_tokens[byte as usize] = Some(id)
                }
                _ => missing_bytes.push(byte),
            }
        }
        if !missing_bytes.is_empty() {
            tracing::debug!(
                missing = ?missing_bytes,
                "vocabulary lacks some byte-level symbols; those bytes are dropped when encoding"
            );
        }

        let mut merge_table = MergeTable::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            let bad = |why: &str| Error::Tokenizer(format!("merge {rank} {merge:?}: {why}"));
            let (left, right) = merge
                .split_once(' ')
                .filter(|(l, r)| !l.is_empty() && !r.is_empty() && !r.contains(' '))
                .ok_or_else(|| bad("not two tokens separated by one space"))?;
            let lookup = |text: &str| {
                ids.get(text)
                    .copied()
                    .ok_or_else(|| bad(&format!("{text:?} is not in the vocabulary")))
            };
            let pair = (lookup(left)?, lookup(right)?);
            let merged = lookup(&format!("{left}{right}"))?;
            // A repeated pair keeps its first (highest-priority) rank, as in HF and llama.cpp.
            merge_table.entry(pair).or_insert(Merge { rank: rank as u32, merged });
        }

        let check = |name: &str, id: Option<u32>| -> Result<Option<u32>> {
            match id {
                Some(id) if id as usize >= vocab_size => Err(Error::Tokenizer(format!(
                    "{name} token id {id} is outside the vocabulary of {vocab_size}"
                ))),
                other => Ok(other),
            }
        };
        let bos_id = check("bos", bos_id)?;
        let eos_id = check("eos", eos_id)?;
        let eot_id = check("eot", eot_id)?;
        let mut eog_ids: Vec<u32> = eos_id.into_iter().chain(eot_id).collect();
        for (text, id) in &specials {
            if token_types[*id as usize] == TokenType::Control && EOG_TEXTS.contains(&text.as_str())
            {
                eog_ids.push(*id);
            }
        }
        eog_ids.sort_unstable();
        eog_ids.dedup();

        Ok(Self {
            pre: PreTokenizer::new(pre)?,
            token_bytes,
            token_types,
            byte_tokens,
            missing_bytes,
            ids,
            merges: merge_table,
            specials,
            bos_id,
            eos_id,
            eog_ids,
            cache: Mutex::new(HashMap::new()),
            spm,
        })
    }

    /// Token ids for user text. Nothing in `text` becomes a control token: `<|im_end|>` typed by
    /// a user is spelled with ordinary tokens, so user input cannot forge chat structure.
    ///
    /// A SentencePiece vocabulary's user-defined tokens (Gemma's runs of newlines or tabs, for
    /// instance) are part of its text alphabet: they are matched in user text too, as llama.cpp
    /// does; its control tokens never are.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        if self.spm.is_some() {
            return self.encode_matching(text, &[], true);
        }
        let mut out = Vec::new();
        self.encode_text(text, &mut out);
        out
    }

    /// Token ids for template output: occurrences of control and user-defined token texts
    /// (e.g. `<|im_start|>`) become those tokens, leftmost first and longest at one position;
    /// the text between them is encoded as by [`Tokenizer::encode`].
    ///
    /// Only for text the program composed (a rendered chat template); never pass raw user input.
    pub fn encode_with_special(&self, text: &str) -> Vec<u32> {
        self.encode_with_special_outside(text, &[])
    }

    /// Like [`Tokenizer::encode_with_special`], but special-token text that overlaps one of
    /// `text_spans` (byte ranges, e.g. the message contents inside a rendered chat template)
    /// stays ordinary text. Ordinary text is still encoded across span edges exactly as in
    /// the whole string, so the ids equal [`Tokenizer::encode_with_special`]'s whenever the
    /// spans hold no special-token text.
    pub fn encode_with_special_outside(&self, text: &str, text_spans: &[Range<usize>]) -> Vec<u32> {
        self.encode_matching(text, text_spans, false)
    }

    /// Encodes `text`, turning the text of special tokens outside `text_spans` into their ids
    /// (only user-defined ones when `user_defined_only`).
    fn encode_matching(
        &self,
        text: &str,
        text_spans: &[Range<usize>],
        user_defined_only: bool,
    ) -> Vec<u32> {
        let mut out = Vec::new();
        let mut start = 0; // beginning of the pending ordinary text
        let mut at = 0;
        let bytes = text.as_bytes();
        while at < bytes.len() {
            let found = self.specials.iter().find(|(special, id)| {
                bytes[at..].starts_with(special.as_bytes())
                    && !text_spans.iter().any(|s| s.start < at + special.len() && at < s.end)
                    && (!user_defined_only
                        || self.token_types[*id as usize] == TokenType::UserDefined)
            });
            match found {
                Some((special, id)) => {
                    self.encode_text(&text[start..at], &mut out);
                    out.push(*id);
                    at += special.len();
                    start = at;
                }
                None => at += 1,
            }
        }
        self.encode_text(&text[start..], &mut out);
        out
    }

    /// Decodes ids to text, replacing invalid UTF-8 with U+FFFD. Ids outside the vocabulary are
    /// skipped (they cannot come from this tokenizer or a model with its vocabulary size).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if let Some(b) = self.token_bytes.get(id as usize) {
                bytes.extend_from_slice(b);
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The raw bytes token `id` stands for (a control token: its text), or empty for an id
    /// outside the vocabulary. Constrained decoding masks tokens by these bytes; it should also
    /// exclude [`Tokenizer::is_special`] tokens, whose bytes are not what the model means.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Whether `id` is a control or user-defined token (one that plain text never produces).
    pub fn is_special(&self, id: u32) -> bool {
        self.token_types.get(id as usize).is_some_and(|t| t.is_special())
    }

    /// The type of token `id`, if it is in the vocabulary.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.token_types.get(id as usize).copied()
    }

    /// Number of tokens (the model's logits have this many entries).
    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// Tokens that end a generation: eos, eot and control tokens with a known end text
    /// (`<|im_end|>`, `<|endoftext|>`, …), sorted. SmolLM2: `[0, 2]`.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog_ids
    }

    /// Whether `id` ends a generation.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog_ids.binary_search(&id).is_ok()
    }

    /// The beginning-of-sequence token, if the vocabulary names one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// The end-of-sequence token, if the vocabulary names one.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    /// Bytes with no byte-level token; [`Tokenizer::encode`] drops them (module docs).
    pub fn missing_bytes(&self) -> &[u8] {
        &self.missing_bytes
    }

    /// Whether this is a SentencePiece vocabulary (`tokenizer.ggml.model = llama`).
    pub fn is_sentencepiece(&self) -> bool {
        self.spm.is_some()
    }

    /// The pre-tokenizer in use.
    pub fn pre_tokenizer(&self) -> PreTokenizerKind {
        self.pre.kind()
    }

    /// The id of a token by its exact vocabulary text, e.g. `"<|im_end|>"` or `"Ġthe"`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    fn encode_text(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        if let Some((scores, add_space_prefix)) = &self.spm {
            // Each run of ordinary text starts the text or follows a special token: llama.cpp
            // gives it the leading space there when the vocabulary asks for one.
            let prefix = if *add_space_prefix { " " } else { "" };
            let escaped = format!("{prefix}{text}").replace(' ', SPM_SPACE);
            let id = |piece: &str| self.ids.get(piece).copied();
            let score = |token: u32| scores[token as usize];
            let byte = |b: u8| self.byte_tokens[b as usize];
            spm::encode(&escaped, &id, &score, &byte, out);
            return;
        }
        self.pre.split(text, &mut |piece| self.encode_piece(piece, out));
    }

    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>) {
        if piece.len() > CACHE_MAX_PIECE_BYTES {
            out.extend(self.merge_piece(piece.as_bytes()));
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ids) = cache.get(piece) {
            out.extend_from_slice(ids);
            return;
        }
        let ids = self.merge_piece(piece.as_bytes());
        out.extend_from_slice(&ids);
        if cache.len() >= CACHE_MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(piece.into(), ids.into_boxed_slice());
    }

    fn merge_piece(&self, bytes: &[u8]) -> Vec<u32> {
        if self.pre.kind().ignores_merges() {
            let text: String =
                bytes.iter().map(|&b| byte_level::BYTE_TO_CHAR[b as usize]).collect();
            if let Some(&id) = self.ids.get(text.as_str()) {
                return vec![id];
            }
        }
        let ids: Vec<u32> = bytes.iter().filter_map(|&b| self.byte_tokens[b as usize]).collect();
        bpe::merge(&ids, &self.merges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny vocabulary: all 256 byte symbols except 0x04, a few merges, two control tokens.
    fn tiny() -> Tokenizer {
        tiny_with(PreTokenizerKind::Smollm, &[])
    }

    /// [`tiny`] with another pre-tokenizer and extra tokens no merge produces.
    fn tiny_with(pre: PreTokenizerKind, extra: &[&str]) -> Tokenizer {
        let mut tokens = vec!["<|endoftext|>".to_string(), "<|im_end|>".to_string()];
        let mut token_types = vec![TokenType::Control, TokenType::Control];
        for b in 0..=255u8 {
            if b != 0x04 {
                tokens.push(byte_level::BYTE_TO_CHAR[b as usize].to_string());
                token_types.push(TokenType::Normal);
            }
        }
        let merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o", "! !"];
        for m in merges {
            tokens.push(m.replace(' ', ""));
            token_types.push(TokenType::Normal);
        }
        for t in extra {
            tokens.push(t.to_string());
            token_types.push(TokenType::Normal);
        }
        Tokenizer::from_parts(TokenizerParts {
            tokens,
            token_types,
            merges: merges.iter().map(|m| m.to_string()).collect(),
            pre,
            bos_id: None,
            eos_id: Some(1),
            eot_id: None,
            model: TokenizerModel::Bpe,
        })
        .unwrap()
    }

    /// Llama 3 takes a piece that is a whole token as that token (`ignore_merges`); Qwen 2 and
    /// the others merge it as far as the merges go.
    #[test]
    fn llama3_takes_whole_tokens_before_merging() {
        let llama3 = tiny_with(PreTokenizerKind::Llama3, &["world"]);
        let world = llama3.token_id("world").unwrap();
        assert_eq!(llama3.encode("world"), vec![world]);
        let qwen2 = tiny_with(PreTokenizerKind::Qwen2, &["world"]);
        let by_merges = qwen2.encode("world");
        assert_eq!(by_merges.len(), 5, "no merge joins these letters: {by_merges:?}");
        assert_eq!(qwen2.decode(&by_merges), "world");
    }

    #[test]
    fn merges_follow_rank_and_round_trip() {
        let t = tiny();
        let hello = t.token_id("hello").unwrap();
        let wo = t.token_id("Ġwo").unwrap();
        let ids = t.encode("hello wo");
        assert_eq!(ids, vec![hello, wo]);
        assert_eq!(t.decode(&ids), "hello wo");
        assert_eq!(t.token_bytes(wo), b" wo");
        let text = "héllo, 世界 🙂\n\t12";
        assert_eq!(t.decode(&t.encode(text)), text);
    }

    #[test]
    fn special_text_is_text_unless_requested() {
        let t = tiny();
        let plain = t.encode("a<|im_end|>b");
        assert!(!plain.contains(&1), "{plain:?}");
        assert_eq!(t.decode(&plain), "a<|im_end|>b");
        let special = t.encode_with_special("a<|im_end|>b<|im_end");
        assert_eq!(special[1], 1);
        assert_eq!(t.decode(&special), "a<|im_end|>b<|im_end");
        assert_eq!(t.eog_ids(), &[0, 1]);
        // Inside a protected span the same text stays text; outside it still counts.
        let text = "<|im_end|>a<|im_end|>";
        let user_span = 11..16;
        let ids = t.encode_with_special_outside(text, std::slice::from_ref(&user_span));
        assert_eq!(ids[0], 1);
        assert!(!ids[1..].contains(&1), "{ids:?}");
        assert_eq!(t.decode(&ids), text);
        let plain_span = 10..11;
        assert_eq!(
            t.encode_with_special_outside(text, std::slice::from_ref(&plain_span)),
            t.encode_with_special(text)
        );
    }

    #[test]
    fn missing_byte_is_dropped_and_listed() {
        let t = tiny();
        assert_eq!(t.missing_bytes(), &[0x04]);
        assert_eq!(t.decode(&t.encode("he\u{4}llo")), "hello");
        // Inside one piece, neighbours merge across the dropped byte (HF's rule).
        assert_eq!(t.encode("!\u{4}!"), vec![t.token_id("!!").unwrap()]);
    }

    #[test]
    fn invalid_utf8_decodes_to_replacement() {
        let t = tiny();
        let e_acute = t.encode("é");
        assert_eq!(e_acute.len(), 2);
        assert_eq!(t.decode(&e_acute[..1]), "\u{FFFD}");
        assert_eq!(t.decode(&[e_acute[1], e_acute[0], e_acute[1]]), "\u{FFFD}é");
    }

    #[test]
    fn bad_merges_are_named() {
        let parts = |merges: Vec<&str>| TokenizerParts {
            tokens: vec!["a".into(), "b".into(), "ab".into()],
            token_types: vec![],
            merges: merges.into_iter().map(String::from).collect(),
            pre: PreTokenizerKind::Gpt2,
            bos_id: None,
            eos_id: None,
            eot_id: None,
            model: TokenizerModel::Bpe,
        };
        assert!(Tokenizer::from_parts(parts(vec!["a b"])).is_ok());
        let err = Tokenizer::from_parts(parts(vec!["a b", "b a"])).unwrap_err().to_string();
        assert!(err.contains("merge 1 \"b a\"") && err.contains("\"ba\""), "{err}");
        let err = Tokenizer::from_parts(parts(vec!["ab"])).unwrap_err().to_string();
        assert!(err.contains("merge 0"), "{err}");
        let mut dup = parts(vec![]);
        dup.tokens.push("a".into());
        let err = Tokenizer::from_parts(dup).unwrap_err().to_string();
        assert!(err.contains("ids 0 and 3"), "{err}");
        let mut bad_char = parts(vec![]);
        bad_char.tokens[1] = "ń".into();
        let err = Tokenizer::from_parts(bad_char).unwrap_err().to_string();
        assert!(err.contains("U+0144"), "{err}");
    }

    /// A GGUF holding `tiny()`'s vocabulary, with `edit` applied to the metadata.
    fn tiny_gguf(edit: impl FnOnce(&mut crate::GgufWriter)) -> Gguf {
        use crate::{MetadataArray, MetadataValue};
        let t = tiny();
        let mut tokens = Vec::new();
        let mut types = Vec::new();
        for id in 0..t.vocab_size() as u32 {
            let ty = t.token_type(id).unwrap();
            tokens.push(if ty.is_special() {
                String::from_utf8(t.token_bytes(id).to_vec()).unwrap()
            } else {
                t.token_bytes(id).iter().map(|&b| byte_level::BYTE_TO_CHAR[b as usize]).collect()
            });
            types.push(if ty == TokenType::Control { 3 } else { 1 });
        }
        let mut w = crate::GgufWriter::new();
        w.metadata("tokenizer.ggml.model", MetadataValue::String("gpt2".into()))
            .metadata("tokenizer.ggml.pre", MetadataValue::String("smollm".into()))
            .metadata("tokenizer.ggml.tokens", MetadataValue::Array(MetadataArray::strings(tokens)))
            .metadata("tokenizer.ggml.token_type", MetadataValue::Array(MetadataArray::i32s(types)))
            .metadata(
                "tokenizer.ggml.merges",
                MetadataValue::Array(MetadataArray::strings(["h e", "l l", "he ll", "hell o"])),
            )
            .metadata("tokenizer.ggml.eos_token_id", MetadataValue::U32(1));
        edit(&mut w);
        Gguf::read(w.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn from_gguf_reads_the_metadata() {
        let t = Tokenizer::from_gguf(&tiny_gguf(|_| {})).unwrap();
        assert_eq!(t.encode("hello"), vec![t.token_id("hello").unwrap()]);
        assert_eq!(t.eog_ids(), &[0, 1]);
        assert_eq!(t.pre_tokenizer(), PreTokenizerKind::Smollm);
    }

    #[test]
    fn from_gguf_names_what_is_wrong() {
        use crate::MetadataValue;
        let err = |edit: fn(&mut crate::GgufWriter)| {
            Tokenizer::from_gguf(&tiny_gguf(edit)).unwrap_err().to_string()
        };
        let e = err(|w| {
            w.metadata("tokenizer.ggml.model", MetadataValue::String("bert".into()));
        });
        assert!(e.contains("'bert'"), "{e}");
        let e = err(|w| {
            w.metadata("tokenizer.ggml.model", MetadataValue::String("llama".into()));
        });
        assert!(e.contains("tokenizer.ggml.scores"), "{e}");
        let e = err(|w| {
            w.metadata("tokenizer.ggml.pre", MetadataValue::String("chatglm-bpe".into()));
        });
        assert!(e.contains("'chatglm-bpe'"), "{e}");
        let e = err(|w| {
            w.metadata("tokenizer.ggml.eos_token_id", MetadataValue::U32(99_999));
        });
        assert!(e.contains("99999"), "{e}");
        let e = err(|w| {
            w.metadata("tokenizer.ggml.merges", MetadataValue::U32(3));
        });
        assert!(e.contains("tokenizer.ggml.merges"), "{e}");
    }
}
