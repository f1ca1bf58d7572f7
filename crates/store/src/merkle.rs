//! Chunked files and the Merkle root of their chunk hashes.
//!
//! The rule, simple enough to re-implement in Solidity in a dozen lines:
//!
//! 1. Split the file into chunks of `chunk_size` bytes; the last chunk may be shorter. A file of
//!    `size` bytes has `max(1, ceil(size / chunk_size))` chunks: the empty file is one empty chunk.
//! 2. Each leaf is `sha256(chunk)`.
//! 3. Build the tree level by level: pair neighbours left to right, the parent of `(l, r)` is
//!    `sha256(l ‖ r)` (64 bytes in). An odd node at the end of a level is **promoted** unchanged
//!    to the next level (never duplicated). Stop when one node is left: that is the root.
//!    A one-chunk file's root is therefore its chunk hash, i.e. the sha256 of the file.
//!
//! Promotion gives the same tree shape as RFC 6962 (split at the largest power of two below the
//! leaf count) and avoids the Bitcoin duplication ambiguity where `[a, b, c]` and `[a, b, c, c]`
//! share a root. Leaves and inner nodes are not domain-separated, so a root alone does not fix
//! the leaf count: always check it together with the file size and chunk size (the
//! ModelFileSystem contract stores all three), which determine the number of leaves.

use std::{io::Read, path::Path};

use sha2::{Digest, Sha256};

use crate::{ContentHasher, ContentId, Error, Result};

/// Default chunk size: 1 MiB, so a 100 MB model has ~100 leaves and a 7-level proof.
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;

/// A 32-byte sha256 digest (a leaf, an inner node or a root).
pub type Hash32 = [u8; 32];

/// The Merkle root of `leaves` by the promote-odd rule described in the module docs.
///
/// Returns `None` for no leaves: by rule 1 every file has at least one chunk, so an empty leaf
/// list is a caller error rather than a tree.
pub fn merkle_root(leaves: &[Hash32]) -> Option<Hash32> {
    let mut level: Vec<Hash32> = leaves.to_vec();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => hash_pair(left, right),
                [odd] => *odd,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    Some(level[0])
}

/// `sha256(left ‖ right)`: the inner-node hash.
pub fn hash_pair(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Number of chunks a file of `size` bytes has (rule 1 of the module docs).
pub fn chunk_count(size: u64, chunk_size: u64) -> u64 {
    size.div_ceil(chunk_size).max(1)
}

/// A file's chunk hashes, Merkle root and whole-file id, as computed in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkManifest {
    /// File size in bytes.
    pub size: u64,
    /// Chunk size the leaves were cut at.
    pub chunk_size: u64,
    /// sha256 of each chunk, in file order.
    pub chunks: Vec<Hash32>,
    /// Merkle root of `chunks`.
    pub root: Hash32,
    /// sha256 of the whole file.
    pub content_id: ContentId,
}

impl ChunkManifest {
    /// Hashes an in-memory file.
    pub fn from_bytes(bytes: &[u8], chunk_size: u64) -> Result<Self> {
        let mut builder = ChunkHasher::new(chunk_size)?;
        builder.update(bytes);
        Ok(builder.finish())
    }

    /// Hashes everything `reader` yields; `name` says what it is, for error messages.
    pub fn from_reader(mut reader: impl Read, name: &str, chunk_size: u64) -> Result<Self> {
        let mut builder = ChunkHasher::new(chunk_size)?;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buffer).map_err(Error::io("read", name))?;
            if n == 0 {
                return Ok(builder.finish());
            }
            builder.update(&buffer[..n]);
        }
    }

    /// Hashes a file on disk (blocking: call it from `spawn_blocking` in async code).
    pub fn from_path(path: impl AsRef<Path>, chunk_size: u64) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(Error::io("open", path))?;
        Self::from_reader(file, &path.display().to_string(), chunk_size)
    }

    /// The Merkle proof for chunk `index`: sibling hashes from the leaf up, each with whether the
    /// sibling sits on the left. Promoted levels contribute no sibling.
    pub fn proof(&self, index: usize) -> Option<Vec<(Hash32, bool)>> {
        if index >= self.chunks.len() {
            return None;
        }
        let mut proof = Vec::new();
        let mut level = self.chunks.clone();
        let mut position = index;
        while level.len() > 1 {
            let sibling = position ^ 1;
            if sibling < level.len() {
                proof.push((level[sibling], sibling < position));
            }
            level = level
                .chunks(2)
                .map(|pair| if let [l, r] = pair { hash_pair(l, r) } else { pair[0] })
                .collect();
            position /= 2;
        }
        Some(proof)
    }
}

/// Checks a chunk against a root with a proof from [`ChunkManifest::proof`].
pub fn verify_proof(chunk: &[u8], proof: &[(Hash32, bool)], root: &Hash32) -> bool {
    let mut node: Hash32 = Sha256::digest(chunk).into();
    for (sibling, sibling_is_left) in proof {
        node = if *sibling_is_left { hash_pair(sibling, &node) } else { hash_pair(&node, sibling) };
    }
    &node == root
}

/// Streaming builder of a [`ChunkManifest`]: feed bytes in any slicing, chunk boundaries are
/// found here.
#[derive(Debug, Clone)]
pub struct ChunkHasher {
    chunk_size: u64,
    whole: ContentHasher,
    current: Sha256,
    current_len: u64,
    chunks: Vec<Hash32>,
}

impl ChunkHasher {
    /// A builder cutting chunks of `chunk_size` bytes; zero is rejected.
    pub fn new(chunk_size: u64) -> Result<Self> {
        if chunk_size == 0 {
            return Err(Error::InvalidChunkSize { chunk_size });
        }
        Ok(Self {
            chunk_size,
            whole: ContentHasher::new(),
            current: Sha256::new(),
            current_len: 0,
            chunks: Vec::new(),
        })
    }

    /// Feeds the next bytes of the file; returns how many chunks are complete so far.
    pub fn update(&mut self, mut bytes: &[u8]) -> usize {
        self.whole.update(bytes);
        while !bytes.is_empty() {
            let room = (self.chunk_size - self.current_len) as usize;
            let take = room.min(bytes.len());
            self.current.update(&bytes[..take]);
            self.current_len += take as u64;
            bytes = &bytes[take..];
            if self.current_len == self.chunk_size {
                let done = std::mem::take(&mut self.current);
                self.chunks.push(done.finalize().into());
                self.current_len = 0;
            }
        }
        self.chunks.len()
    }

    /// Hashes of the chunks completed so far.
    pub fn completed(&self) -> &[Hash32] {
        &self.chunks
    }

    /// Bytes fed so far.
    pub const fn len(&self) -> u64 {
        self.whole.len()
    }

    /// True before any byte was fed.
    pub const fn is_empty(&self) -> bool {
        self.whole.is_empty()
    }

    /// Closes the last (possibly short or, for an empty file, empty) chunk.
    pub fn finish(mut self) -> ChunkManifest {
        if self.current_len > 0 || self.chunks.is_empty() {
            self.chunks.push(self.current.finalize().into());
        }
        let root = merkle_root(&self.chunks).expect("at least one chunk");
        let size = self.whole.len();
        ChunkManifest {
            size,
            chunk_size: self.chunk_size,
            chunks: self.chunks,
            root,
            content_id: self.whole.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(bytes: &[u8]) -> Hash32 {
        Sha256::digest(bytes).into()
    }

    #[test]
    fn known_answers_for_small_trees() {
        // Leaves of "abcdefg" cut at 1 byte, hand-assembled with the promote rule.
        let [a, b, c, d, e, f, g] = [b"a", b"b", b"c", b"d", b"e", b"f", b"g"].map(|x| h(x));
        let pair = |l: &Hash32, r: &Hash32| {
            let mut joined = l.to_vec();
            joined.extend_from_slice(r);
            h(&joined)
        };
        let ab = pair(&a, &b);
        let cd = pair(&c, &d);
        let ef = pair(&e, &f);
        let abcd = pair(&ab, &cd);
        let cases: [(&[u8], Hash32); 7] = [
            (b"a", a),
            (b"ab", ab),
            (b"abc", pair(&ab, &c)),
            (b"abcd", abcd),
            (b"abcde", pair(&abcd, &e)),
            (b"abcdef", pair(&abcd, &ef)),
            (b"abcdefg", pair(&abcd, &pair(&ef, &g))),
        ];
        for (input, expected) in cases {
            let manifest = ChunkManifest::from_bytes(input, 1).unwrap();
            assert_eq!(manifest.root, expected, "root of {:?}", String::from_utf8_lossy(input));
            assert_eq!(manifest.chunks.len(), input.len());
            assert_eq!(manifest.content_id, ContentId::of(input));
        }
    }

    #[test]
    fn pinned_root_hex() {
        // "abc" in 1-byte chunks: sha256(sha256(sha256("a") ‖ sha256("b")) ‖ sha256("c")).
        // Pinned so a change of rule cannot slip through as a self-consistent refactor.
        let manifest = ChunkManifest::from_bytes(b"abc", 1).unwrap();
        // Computed independently with Python's hashlib.
        assert_eq!(
            data_encoding::HEXLOWER.encode(&manifest.root),
            "7075152d03a5cd92104887b476862778ec0c87be5c2fa1c0a90f87c49fad6eff"
        );
    }

    #[test]
    fn single_chunk_and_empty_file_roots_are_the_file_hash() {
        let empty = ChunkManifest::from_bytes(b"", DEFAULT_CHUNK_SIZE).unwrap();
        assert_eq!(empty.chunks.len(), 1);
        assert_eq!(empty.root, *ContentId::of(b"").digest());
        let small = ChunkManifest::from_bytes(b"hello world", DEFAULT_CHUNK_SIZE).unwrap();
        assert_eq!(small.root, *ContentId::of(b"hello world").digest());
        assert_eq!(chunk_count(0, 4), 1);
        assert_eq!(chunk_count(8, 4), 2);
        assert_eq!(chunk_count(9, 4), 3);
    }

    #[test]
    fn streaming_split_does_not_change_the_result() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let whole = ChunkManifest::from_bytes(&data, 512).unwrap();
        assert_eq!(whole.chunks.len(), 10);
        let mut builder = ChunkHasher::new(512).unwrap();
        for piece in data.chunks(77) {
            builder.update(piece);
        }
        assert_eq!(builder.finish(), whole);
        let from_reader = ChunkManifest::from_reader(&data[..], "memory", 512).unwrap();
        assert_eq!(from_reader, whole);
        // An exact multiple of the chunk size has no trailing empty chunk.
        assert_eq!(ChunkManifest::from_bytes(&data[..4096], 512).unwrap().chunks.len(), 8);
    }

    #[test]
    fn proofs_verify_every_chunk_and_reject_tampering() {
        let data: Vec<u8> = (0..700u32).map(|i| (i % 241) as u8).collect();
        for chunk_size in [64, 100, 700, 1000] {
            let manifest = ChunkManifest::from_bytes(&data, chunk_size).unwrap();
            for (index, chunk) in data.chunks(chunk_size as usize).enumerate() {
                let proof = manifest.proof(index).unwrap();
                assert!(
                    verify_proof(chunk, &proof, &manifest.root),
                    "chunk {index} size {chunk_size}"
                );
                let mut bad = chunk.to_vec();
                bad[0] ^= 1;
                assert!(!verify_proof(&bad, &proof, &manifest.root));
            }
            assert!(manifest.proof(manifest.chunks.len()).is_none());
        }
    }

    #[test]
    fn zero_chunk_size_is_an_error() {
        let message = ChunkHasher::new(0).unwrap_err().to_string();
        assert!(message.contains("chunk size 0"), "{message}");
        assert_eq!(merkle_root(&[]), None);
    }
}
