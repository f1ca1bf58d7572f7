//! Byte-pair merging of one pre-tokenized piece, in strict merges-list order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// What merging a pair of adjacent tokens gives: its priority and the resulting token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Merge {
    /// Position in `tokenizer.ggml.merges`; lower merges first.
    pub(crate) rank: u32,
    /// The token the pair becomes.
    pub(crate) merged: u32,
}

/// Pair of adjacent token ids → the merge that joins them.
pub(crate) type MergeTable = HashMap<(u32, u32), Merge>;

/// One symbol of the piece being merged, in a doubly linked list over a vector.
#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: Option<usize>,
    next: Option<usize>,
    /// False once merged into its left neighbour.
    alive: bool,
}

/// Merges `ids` (the piece's byte tokens) until no adjacent pair has a merge.
///
/// The rule is HF's and llama.cpp's: repeatedly apply the lowest-ranked merge present, leftmost
/// first among equal ranks. A heap keyed by (rank, position) with stale entries skipped keeps
/// this O(n log n) even for long pieces such as a run of 10,000 identical characters.
pub(crate) fn merge(ids: &[u32], merges: &MergeTable) -> Vec<u32> {
    if ids.len() < 2 {
        return ids.to_vec();
    }
    let mut symbols: Vec<Symbol> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| Symbol {
            id,
            prev: i.checked_sub(1),
            next: (i + 1 < ids.len()).then_some(i + 1),
            alive: true,
        })
        .collect();
    // Entries: (rank, left position, left id, right id); the ids detect stale entries.
    let mut heap = BinaryHeap::new();
    let push =
        |heap: &mut BinaryHeap<Reverse<(u32, usize, u32, u32)>>, left: usize, l: u32, r: u32| {
            if let Some(m) = merges.get(&(l, r)) {
                heap.push(Reverse((m.rank, left, l, r)));
            }
        };
    for i in 0..ids.len() - 1 {
        push(&mut heap, i, ids[i], ids[i + 1]);
    }
    while let Some(Reverse((_, left, l, r))) = heap.pop() {
        let sym = symbols[left];
        let Some(right) = sym.next else { continue };
        if !sym.alive || sym.id != l || symbols[right].id != r || !symbols[right].alive {
            continue;
        }
        let merged = merges[&(l, r)].merged;
        let after = symbols[right].next;
        symbols[left].id = merged;
        symbols[left].next = after;
        symbols[right].alive = false;
        if let Some(after) = after {
            symbols[after].prev = Some(left);
            push(&mut heap, left, merged, symbols[after].id);
        }
        if let Some(before) = sym.prev {
            push(&mut heap, before, symbols[before].id, merged);
        }
    }
    symbols.iter().filter(|s| s.alive).map(|s| s.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens: 0 a, 1 b, 2 c, 3 ab, 4 bc, 5 abc, 6 aa.
    fn table() -> MergeTable {
        let mut t = MergeTable::new();
        t.insert((1, 2), Merge { rank: 0, merged: 4 });
        t.insert((0, 1), Merge { rank: 1, merged: 3 });
        t.insert((0, 4), Merge { rank: 2, merged: 5 });
        t.insert((0, 0), Merge { rank: 3, merged: 6 });
        t
    }

    #[test]
    fn lowest_rank_wins_over_leftmost() {
        // "abc": b+c (rank 0) before a+b (rank 1), then a+bc.
        assert_eq!(merge(&[0, 1, 2], &table()), vec![5]);
        // "ab": only a+b.
        assert_eq!(merge(&[0, 1], &table()), vec![3]);
    }

    #[test]
    fn equal_ranks_merge_leftmost_first() {
        assert_eq!(merge(&[0, 0, 0], &table()), vec![6, 0]);
        assert_eq!(merge(&[0, 0, 0, 0, 0], &table()), vec![6, 6, 0]);
    }

    #[test]
    fn no_merges_leave_bytes() {
        assert_eq!(merge(&[2, 2, 1], &table()), vec![2, 2, 1]);
        assert_eq!(merge(&[], &table()), Vec::<u32>::new());
    }
}
