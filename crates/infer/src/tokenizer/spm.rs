//! SentencePiece-style tokenization (`tokenizer.ggml.model = llama`: Llama 2, Gemma), as
//! llama.cpp's `llm_tokenizer_spm` does it.
//!
//! Spaces become `▁` (U+2581); the text is split into UTF-8 characters; adjacent symbols whose
//! concatenation is a vocabulary token are merged, highest score first (leftmost on ties), as
//! long as any pair forms a token. Each final symbol is then a token (a merge only ever forms
//! one), or a single character the vocabulary lacks, which becomes its bytes' `<0xXX>` tokens
//! (byte fallback). (llama.cpp also keeps a map for splitting a final symbol back into the pair
//! that formed it; since every merged symbol is a token, that path is never taken.)

use std::collections::BinaryHeap;

/// One merge candidate: symbols `left` and `right` form a token of `score` and `size` bytes.
#[derive(Debug, PartialEq)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl Eq for Bigram {}

impl Ord for Bigram {
    /// Highest score first; on equal scores the leftmost (llama.cpp's comparator).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score.total_cmp(&other.score).then(other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A symbol: a byte range of the text, linked to its neighbours.
#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Encodes `text` (spaces already `▁`) into `out`. `id` looks a token up by its text, `score`
/// gives a token's score, `byte` gives the token of a raw byte.
pub(crate) fn encode(
    text: &str,
    id: &dyn Fn(&str) -> Option<u32>,
    score: &dyn Fn(u32) -> f32,
    byte: &dyn Fn(u8) -> Option<u32>,
    out: &mut Vec<u32>,
) {
    let bytes = text.as_bytes();
    let mut symbols: Vec<Symbol> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        // llama.cpp's `unicode_len_utf8`: the length the lead byte announces.
        let len = match bytes[at] >> 4 {
            0xc | 0xd => 2,
            0xe => 3,
            0xf => 4,
            _ => 1,
        }
        .min(bytes.len() - at);
        let index = symbols.len();
        symbols.push(Symbol {
            start: at,
            len,
            prev: index.checked_sub(1),
            next: (at + len < bytes.len()).then_some(index + 1),
        });
        at += len;
    }
    let mut queue = BinaryHeap::new();
    let try_add = |left: Option<usize>,
                   right: Option<usize>,
                   symbols: &[Symbol],
                   queue: &mut BinaryHeap<Bigram>| {
        let (Some(left), Some(right)) = (left, right) else { return };
        let start = symbols[left].start;
        let size = symbols[left].len + symbols[right].len;
        // A pair cut inside a character (malformed UTF-8 input) is no token.
        let Some(piece) = text.get(start..start + size) else { return };
        let Some(token) = id(piece) else { return };
        queue.push(Bigram { score: score(token), left, right, size });
    };
    for i in 1..symbols.len() {
        try_add(Some(i - 1), Some(i), &symbols, &mut queue);
    }
    while let Some(bigram) = queue.pop() {
        let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != bigram.size {
            continue;
        }
        symbols[bigram.left].len += r.len;
        symbols[bigram.right].len = 0;
        symbols[bigram.left].next = r.next;
        if let Some(next) = r.next {
            symbols[next].prev = Some(bigram.left);
        }
        let left = symbols[bigram.left];
        try_add(left.prev, Some(bigram.left), &symbols, &mut queue);
        try_add(Some(bigram.left), left.next, &symbols, &mut queue);
    }
    let mut next = (!symbols.is_empty()).then_some(0);
    while let Some(i) = next {
        let Symbol { start, len, .. } = symbols[i];
        let piece = &bytes[start..start + len];
        match std::str::from_utf8(piece).ok().and_then(id) {
            Some(token) => out.push(token),
            None => out.extend(piece.iter().filter_map(|&b| byte(b))),
        }
        next = symbols[i].next;
    }
}
