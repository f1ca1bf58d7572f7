//! UnixFS file ids: the content id `ipfs add --cid-version 1` gives a file, as Kubo computes it
//! by default, so a model or prompt file is fetchable by the same id from any IPFS node or
//! Filecoin storage provider.
//!
//! # The DAG
//!
//! - The file is cut into 256 KiB chunks ([`CHUNK_SIZE`]); each chunk is a *raw leaf* block
//!   (CIDv1, codec raw, sha2-256 of the chunk). An empty file is one empty leaf.
//! - A file of one chunk is that leaf: its id is the raw CID of the whole file (`bafkrei…`), which
//!   is also [`ContentId`]'s form, so small files keep their old ids.
//! - Otherwise the leaves are grouped, in order, 174 at a time ([`MAX_LINKS`]) under dag-pb
//!   nodes, and those nodes 174 at a time under the next level, until one node is left: the root
//!   (`bafybei…`). A group of one below the top still gets its own node (the balanced layout).
//! - A node is a dag-pb `PBNode` (links first, then data): one `PBLink` per child (`Hash` its
//!   binary CID, `Name` empty, `Tsize` the bytes of the child's whole subtree: a leaf's length,
//!   or a node's encoded length plus its children's `Tsize`), then `Data`, a UnixFS `Data`
//!   message `{Type: File, filesize, blocksizes: [file bytes under each child]}`.
//!
//! [`FileDag`] builds this from a stream of bytes and keeps the (small) nodes, so a CAR of the
//! file ([`crate::car`]) can be written later from the nodes and the file itself: the store
//! keeps each file once, never its blocks beside it.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::{Cid, ContentHasher, ContentId};

/// Bytes per leaf: Kubo's default chunker, `size-262144`.
pub const CHUNK_SIZE: usize = 262_144;

/// Most links per node: Kubo's balanced layout default.
pub const MAX_LINKS: usize = 174;

/// UnixFS `Data.Type` of a file.
const UNIXFS_FILE: u64 = 2;

/// A child of a node, as its parent links it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    cid: Cid,
    /// Bytes of the child's whole subtree (blocks as encoded).
    tsize: u64,
    /// File bytes under the child.
    filesize: u64,
}

/// A dag-pb node of a file: its encoded bytes and its children, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The encoded `PBNode`.
    pub bytes: Vec<u8>,
    /// Its children's ids, in file order.
    pub links: Vec<Cid>,
}

/// A file's UnixFS DAG, built from its bytes in order ([`FileDag::update`], [`FileDag::finish`]).
#[derive(Debug, Default)]
pub struct FileDag {
    /// Links waiting for a parent, per level (0: leaves).
    levels: Vec<Vec<Link>>,
    /// Every node made so far, by id.
    nodes: HashMap<Cid, Node>,
    /// Where each distinct leaf first occurs in the file: offset and length.
    leaves: HashMap<Cid, (u64, usize)>,
    /// The bytes of the chunk being filled.
    pending: Vec<u8>,
    /// File bytes seen.
    size: u64,
    sha256: ContentHasher,
}

/// A file's UnixFS DAG, complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixFsFile {
    /// The root id: what `ipfs add --cid-version 1` prints for the file.
    pub root: Cid,
    /// sha256 of the whole file (what the chain records).
    pub sha256: ContentId,
    /// File size in bytes.
    pub size: u64,
    /// The dag-pb nodes by id (none for a one-chunk file).
    pub nodes: HashMap<Cid, Node>,
    /// Where each distinct leaf first occurs in the file: byte offset and length.
    pub leaves: HashMap<Cid, (u64, usize)>,
}

impl UnixFsFile {
    /// The DAG of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut dag = FileDag::new();
        dag.update(bytes);
        dag.finish()
    }

    /// The DAG of the file at `path`, read in chunks.
    pub fn of_file(path: &std::path::Path) -> std::io::Result<Self> {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let mut dag = FileDag::new();
        let mut buffer = vec![0u8; CHUNK_SIZE];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                return Ok(dag.finish());
            }
            dag.update(&buffer[..read]);
        }
    }

    /// Every block id in depth-first pre-order (the root first, each node before its
    /// children), each once: the order Kubo's `dag export` and trustless gateways send.
    pub fn blocks(&self) -> Vec<Cid> {
        let mut order = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![self.root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            order.push(cid);
            if let Some(node) = self.nodes.get(&cid) {
                stack.extend(node.links.iter().rev());
            }
        }
        order
    }
}

impl FileDag {
    /// An empty file so far.
    pub fn new() -> Self {
        Self::default()
    }

    /// File bytes fed so far.
    pub const fn len(&self) -> u64 {
        self.sha256.len()
    }

    /// Whether no byte was fed yet.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.sha256.update(bytes);
        while !bytes.is_empty() {
            let take = (CHUNK_SIZE - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == CHUNK_SIZE {
                let chunk = std::mem::take(&mut self.pending);
                self.push_leaf(&chunk);
            }
        }
    }

    /// The DAG of everything fed.
    pub fn finish(mut self) -> UnixFsFile {
        let leaves_made = self.size;
        if !self.pending.is_empty() || leaves_made == 0 && self.leaves.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.push_leaf(&chunk);
        }
        let mut level = 0;
        let root = loop {
            let higher = self.levels[level + 1..].iter().any(|links| !links.is_empty());
            let links = std::mem::take(&mut self.levels[level]);
            match links.len() {
                0 => {}
                1 if !higher => break links[0],
                _ => self.push(level + 1, links),
            }
            level += 1;
        };
        UnixFsFile {
            root: root.cid,
            sha256: self.sha256.finish(),
            size: self.size,
            nodes: self.nodes,
            leaves: self.leaves,
        }
    }

    fn push_leaf(&mut self, chunk: &[u8]) {
        let cid = Cid::raw(ContentId::of(chunk));
        self.leaves.entry(cid).or_insert((self.size, chunk.len()));
        self.size += chunk.len() as u64;
        let length = chunk.len() as u64;
        self.add(0, Link { cid, tsize: length, filesize: length });
    }

    /// Adds a link at `level`, making a parent as soon as the level holds [`MAX_LINKS`].
    fn add(&mut self, level: usize, link: Link) {
        if self.levels.len() <= level + 1 {
            self.levels.resize_with(level + 2, Vec::new);
        }
        self.levels[level].push(link);
        if self.levels[level].len() == MAX_LINKS {
            let links = std::mem::take(&mut self.levels[level]);
            self.push(level + 1, links);
        }
    }

    /// Makes the node over `links` and adds its link at `level`.
    fn push(&mut self, level: usize, links: Vec<Link>) {
        let (node, link) = encode_node(&links);
        self.nodes.insert(link.cid, node);
        self.add(level, link);
    }
}

/// Encodes the file node over `links` and the link to it.
fn encode_node(links: &[Link]) -> (Node, Link) {
    let filesize: u64 = links.iter().map(|l| l.filesize).sum();
    let mut data = Vec::new();
    put_varint_field(&mut data, 1, UNIXFS_FILE);
    put_varint_field(&mut data, 3, filesize);
    for link in links {
        put_varint_field(&mut data, 4, link.filesize);
    }
    let mut bytes = Vec::new();
    for link in links {
        let mut pb_link = Vec::new();
        put_bytes_field(&mut pb_link, 1, &link.cid.to_bytes());
        put_bytes_field(&mut pb_link, 2, b"");
        put_varint_field(&mut pb_link, 3, link.tsize);
        put_bytes_field(&mut bytes, 2, &pb_link);
    }
    put_bytes_field(&mut bytes, 1, &data);
    let cid = Cid::dag_pb(Sha256::digest(&bytes).into());
    let tsize = bytes.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
    let node = Node { bytes, links: links.iter().map(|l| l.cid).collect() };
    (node, Link { cid, tsize, filesize })
}

/// Appends an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A protobuf varint field (wire type 0).
fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_varint(out, field << 3);
    put_varint(out, value);
}

/// A protobuf length-delimited field (wire type 2).
fn put_bytes_field(out: &mut Vec<u8>, field: u64, value: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9u32;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    }

    #[test]
    fn a_one_chunk_file_is_its_raw_leaf() {
        for len in [0, 1, 1000, CHUNK_SIZE] {
            let bytes = pattern(len);
            let dag = UnixFsFile::of(&bytes);
            assert_eq!(dag.root, Cid::raw(ContentId::of(&bytes)), "{len} bytes");
            assert!(dag.nodes.is_empty());
            assert_eq!((dag.size, dag.sha256), (len as u64, ContentId::of(&bytes)));
        }
    }

    #[test]
    fn levels_follow_the_balanced_layout() {
        // Two chunks: one node over two leaves.
        let dag = UnixFsFile::of(&pattern(CHUNK_SIZE + 1));
        assert_eq!(dag.root.codec(), crate::Codec::DagPb);
        assert_eq!(dag.nodes[&dag.root].links.len(), 2);
        assert_eq!(dag.blocks().len(), 3);
        // Feeding in odd pieces gives the same DAG as feeding at once.
        let bytes = pattern(3 * CHUNK_SIZE + 17);
        let mut pieces = FileDag::new();
        for piece in bytes.chunks(100_003) {
            pieces.update(piece);
        }
        assert_eq!(pieces.finish(), UnixFsFile::of(&bytes));
    }

    #[test]
    fn a_node_encodes_links_then_data() {
        let leaf = |n: u8| Link { cid: Cid::raw(ContentId::of(&[n])), tsize: 1, filesize: 1 };
        let (node, link) = encode_node(&[leaf(1), leaf(2)]);
        // PBLink: 0x12 len { 0x0a 36 cid, 0x12 0 (empty name), 0x18 1 (tsize) }.
        assert_eq!(&node.bytes[..4], &[0x12, 42, 0x0a, 36]);
        assert_eq!(&node.bytes[40..44], &[0x12, 0x00, 0x18, 0x01]);
        // Data: Type File, filesize 2, blocksizes 1 and 1.
        assert_eq!(&node.bytes[88..], &[0x0a, 8, 0x08, 2, 0x18, 2, 0x20, 1, 0x20, 1]);
        assert_eq!(link.tsize, node.bytes.len() as u64 + 2);
        assert_eq!(link.filesize, 2);
    }
}
