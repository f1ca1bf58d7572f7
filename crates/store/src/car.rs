//! CAR v1 export of a file's UnixFS DAG: the archive `ipfs dag import` and trustless gateways
//! (`application/vnd.ipld.car`) exchange.
//!
//! Layout: `varint(len) header`, then per block `varint(len(cid) + len(block)) cid block`. The
//! header is the dag-cbor map `{"roots": [root], "version": 1}` (keys in dag-cbor's canonical
//! order, the root as tag 42 over `0x00 ‖ binary CID`). Blocks go root first, each node before
//! its children, each block once, as Kubo's `dag export` writes them. [`CarFileReader`] reads
//! such a CAR back from an untrusted peer, verifying every block as it arrives.

use std::{
    collections::HashMap,
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
};

use crate::{Cid, Codec, Error, Result, UnixFsFile, cid::read_varint, unixfs::put_varint};

/// The CAR v1 header naming `root`.
pub(crate) fn header(root: &[u8; 36]) -> Vec<u8> {
    let mut cbor = vec![0xa2]; // map of 2
    cbor.push(0x65); // text(5)
    cbor.extend_from_slice(b"roots");
    cbor.extend_from_slice(&[0x81, 0xd8, 0x2a, 0x58, 37, 0x00]); // [tag 42 bytes(37) 0x00 …]
    cbor.extend_from_slice(root);
    cbor.push(0x67); // text(7)
    cbor.extend_from_slice(b"version");
    cbor.push(0x01);
    let mut out = Vec::new();
    put_varint(&mut out, cbor.len() as u64);
    out.extend_from_slice(&cbor);
    out
}

/// Writes the CAR of `dag` to `out`, reading its leaves from `file` (the file the DAG was built
/// from; every leaf read is checked against its id, so a file changed since is an error, never
/// a wrong archive). Returns the bytes written.
pub fn write_car(dag: &UnixFsFile, file: &Path, out: &mut impl Write) -> Result<u64> {
    let write_err = |e: std::io::Error| Error::Io {
        action: "write CAR".into(),
        path: file.to_path_buf(),
        source: e,
    };
    let mut source = std::fs::File::open(file).map_err(Error::io("open", file))?;
    let mut written = 0u64;
    let mut emit = |bytes: &[u8], out: &mut dyn Write| -> Result<()> {
        out.write_all(bytes).map_err(write_err)?;
        written += bytes.len() as u64;
        Ok(())
    };
    emit(&header(&dag.root.to_bytes()), out)?;
    let mut leaf = Vec::new();
    for cid in dag.blocks() {
        let block: &[u8] = match dag.nodes.get(&cid) {
            Some(node) => &node.bytes,
            None => {
                let &(offset, length) =
                    dag.leaves.get(&cid).expect("every block of the DAG is a node or a leaf");
                leaf.resize(length, 0);
                source
                    .seek(SeekFrom::Start(offset))
                    .and_then(|_| source.read_exact(&mut leaf))
                    .map_err(Error::io("read", file))?;
                if !cid.verifies(&leaf) {
                    return Err(Error::Changed {
                        path: file.to_path_buf(),
                        offset,
                        block: cid.to_string(),
                    });
                }
                &leaf
            }
        };
        let cid_bytes = cid.to_bytes();
        let mut prefix = Vec::new();
        put_varint(&mut prefix, (cid_bytes.len() + block.len()) as u64);
        emit(&prefix, out)?;
        emit(&cid_bytes, out)?;
        emit(block, out)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_canonical_dag_cbor() {
        let root = crate::Cid::raw(crate::ContentId::of(b"hello world")).to_bytes();
        let bytes = header(&root);
        // 1 varint byte + 59 bytes of dag-cbor.
        assert_eq!(bytes[0] as usize, bytes.len() - 1);
        assert_eq!(&bytes[1..8], &[0xa2, 0x65, b'r', b'o', b'o', b't', b's']);
        assert_eq!(&bytes[bytes.len() - 9..], b"\x67version\x01");
    }

    /// The byte ranges of a CAR's sections: the header, then each block's.
    fn sections(car: &[u8]) -> Vec<std::ops::Range<usize>> {
        let mut ranges = Vec::new();
        let mut at = 0;
        while at < car.len() {
            let mut rest = &car[at..];
            let before = rest.len();
            let length = read_varint(&mut rest).unwrap() as usize;
            let end = at + before - rest.len() + length;
            ranges.push(at..end);
            at = end;
        }
        ranges
    }

    /// Reads a CAR through [`CarFileReader`] in `step`-byte pieces into the file's bytes.
    fn read_back(root: Cid, car: &[u8], step: usize) -> std::result::Result<Vec<u8>, String> {
        let mut reader = CarFileReader::new(root);
        let mut pieces = Vec::new();
        for piece in car.chunks(step) {
            reader.feed(piece, &mut pieces)?;
        }
        reader.finish(&mut pieces)?;
        let mut file = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Bytes(bytes) => file.extend_from_slice(&bytes),
                Piece::Repeat { offset, len } => {
                    let start = offset as usize;
                    file.extend_from_within(start..start + len as usize);
                }
            }
        }
        Ok(file)
    }

    /// A file of four chunks, the first and third equal, its DAG and its CAR.
    fn sample() -> (Vec<u8>, UnixFsFile, Vec<u8>) {
        let chunk = |n: u8| vec![n; crate::unixfs::CHUNK_SIZE];
        let bytes = [chunk(1), chunk(2), chunk(1), vec![3; 100]].concat();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &bytes).unwrap();
        let dag = UnixFsFile::of_file(&path).unwrap();
        let mut car = Vec::new();
        write_car(&dag, &path, &mut car).unwrap();
        (bytes, dag, car)
    }

    #[test]
    fn a_car_reads_back_block_by_block_whatever_the_piece_size() {
        let (bytes, dag, car) = sample();
        // The repeated leaf is sent once: root + three distinct leaves.
        assert_eq!(dag.blocks().len(), 4);
        for step in [1, 7, 4096, car.len()] {
            assert_eq!(read_back(dag.root, &car, step).unwrap(), bytes, "pieces of {step}");
        }
    }

    #[test]
    fn a_wrong_missing_extra_or_huge_block_is_refused() {
        let (_, dag, car) = sample();
        let last = dag.blocks().len() - 1;
        // Section boundaries: header, then each block.
        let bounds: Vec<usize> = sections(&car).iter().map(|r| r.end).collect();
        let fail = |car: &[u8]| read_back(dag.root, car, 1000).unwrap_err();

        let mut wrong = car.clone();
        wrong[bounds[last + 1] - 1] ^= 1;
        assert!(fail(&wrong).contains("does not hash to its id"), "{}", fail(&wrong));
        let truncated = &car[..bounds[last]];
        assert!(fail(truncated).contains("never came"), "{}", fail(truncated));
        let cut = &car[..car.len() - 5];
        assert!(fail(cut).contains("ends inside a section"), "{}", fail(cut));
        // A block the file does not hold, after the whole file.
        let mut extra = car.clone();
        let stray = vec![4u8; 10];
        put_varint(&mut extra, (36 + stray.len()) as u64);
        extra.extend_from_slice(&Cid::raw(crate::ContentId::of(&stray)).to_bytes());
        extra.extend_from_slice(&stray);
        assert!(fail(&extra).contains("extra block"), "{}", fail(&extra));
        // A leaf the file holds, sent again after the whole file (`dups=y` resends the repeated
        // first leaf): nothing new, nothing refused.
        let mut again = car.clone();
        again.extend_from_slice(&car[bounds[1]..bounds[2]]);
        assert_eq!(read_back(dag.root, &again, 1000).unwrap(), sample().0);
        let mut huge = car[..bounds[0]].to_vec();
        put_varint(&mut huge, (MAX_BLOCK + 1000) as u64);
        assert!(fail(&huge).contains("larger than"), "{}", fail(&huge));
        // The second leaf where the first is due, and the first never sent.
        let mut swapped = car[..bounds[1]].to_vec();
        swapped.extend_from_slice(&car[bounds[2]..bounds[3]]);
        assert!(fail(&swapped).contains("never came"), "{}", fail(&swapped));
        // A block of another file among the right ones: held in case, then refused as extra.
        let mut stranger = car[..bounds[1]].to_vec();
        let mut foreign = Vec::new();
        let leaf = vec![3u8; 10];
        let cid = Cid::raw(crate::ContentId::of(&leaf));
        put_varint(&mut foreign, (36 + leaf.len()) as u64);
        foreign.extend_from_slice(&cid.to_bytes());
        foreign.extend_from_slice(&leaf);
        stranger.extend_from_slice(&foreign);
        stranger.extend_from_slice(&car[bounds[1]..]);
        let err = fail(&stranger);
        assert!(err.contains(&format!("extra block {cid}")), "{err}");
        // Another file's CAR.
        let other = UnixFsFile::of(&vec![9u8; 2 * crate::unixfs::CHUNK_SIZE]).root;
        let err = read_back(other, &car, 1000).unwrap_err();
        assert!(err.contains(&format!("does not name {other}")), "{err}");
    }

    /// Blocks in any order (breadth-first, leaves shuffled: the trustless gateway protocol's
    /// `order=unk`, Helia's CAR export) read back to the same bytes, in file order; holding
    /// blocks for later is bounded.
    #[test]
    fn a_car_in_another_order_reads_back_within_the_bound() {
        let bytes: Vec<u8> =
            (0..6 * crate::unixfs::CHUNK_SIZE + 9).map(|i| (i * 7 % 251) as u8).collect();
        let dag = UnixFsFile::of(&bytes);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &bytes).unwrap();
        let mut dfs = Vec::new();
        write_car(&dag, &path, &mut dfs).unwrap();
        // Cut the CAR into header and sections, then reorder the sections: the root first, the
        // leaves last to first.
        let sections: Vec<Vec<u8>> = sections(&dfs).into_iter().map(|r| dfs[r].to_vec()).collect();
        let (header, blocks) = sections.split_first().unwrap();
        let (root, leaves) = blocks.split_first().unwrap();
        let mut reversed = [header.clone(), root.clone()].concat();
        for leaf in leaves.iter().rev() {
            reversed.extend_from_slice(leaf);
        }
        for step in [1000, reversed.len()] {
            assert_eq!(read_back(dag.root, &reversed, step).unwrap(), bytes, "pieces of {step}");
        }
        // Six leaves held at once: refused under a bound of five.
        let mut reader =
            CarFileReader::new(dag.root).with_ahead_limit(5 * crate::unixfs::CHUNK_SIZE);
        let err = reader.feed(&reversed, &mut Vec::new()).unwrap_err();
        assert!(err.contains("ahead of the order"), "{err}");
    }

    #[test]
    fn a_changed_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; crate::unixfs::CHUNK_SIZE + 5]).unwrap();
        let dag = UnixFsFile::of_file(&path).unwrap();
        let mut car = Vec::new();
        let written = write_car(&dag, &path, &mut car).unwrap();
        assert_eq!(written, car.len() as u64);
        std::fs::write(&path, vec![8u8; crate::unixfs::CHUNK_SIZE + 5]).unwrap();
        let err = write_car(&dag, &path, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("changed since its UnixFS DAG was built"), "{err}");
    }
}

/// The largest block a CAR may carry: 2 MiB, IPFS's own limit (our leaves are 256 KiB, our
/// nodes a few KiB). A larger announced section is refused before it is buffered.
pub const MAX_BLOCK: usize = 2 << 20;

/// What a verified CAR says to write next, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The bytes of a leaf that just arrived.
    Bytes(Vec<u8>),
    /// A leaf that arrived earlier (a CAR sends each block once): `len` bytes already written
    /// at `offset`.
    Repeat {
        /// Where the earlier copy starts in the output.
        offset: u64,
        /// Its length.
        len: u64,
    },
}

/// Reads the CAR of a UnixFS file as it streams in, block by block: the header must name the
/// root the caller asked for and nothing else, every block must hash to its id, and the blocks
/// must make exactly the DAG under the root. What comes out is the file's bytes ([`Piece`]s), in
/// file order, never a byte of an unverified block; a wrong, extra, missing or oversized block
/// is an error naming it.
///
/// Depth-first order (what Kubo's `dag export` and trustless gateways asked for `order=dfs`
/// send) streams through. A CAR in another order (the trustless gateway protocol allows
/// `order=unk`; Helia's CAR export walks breadth-first) is read too: a block that arrives before
/// the DAG needs it is held until it does, up to [`MAX_AHEAD`] bytes, and one the DAG never
/// needs is an extra block.
#[derive(Debug)]
pub struct CarFileReader {
    root: Cid,
    buffer: Vec<u8>,
    header_read: bool,
    /// Blocks still to come, next on top.
    wanted: Vec<Cid>,
    /// Links of every node seen, to walk a node a CAR does not send twice.
    nodes: HashMap<Cid, Vec<Cid>>,
    /// Where each leaf seen was written: offset and length.
    leaves: HashMap<Cid, (u64, u64)>,
    written: u64,
    blocks: u64,
    /// Blocks verified since the last [`take_verified`](Self::take_verified), when kept.
    verified: Option<Vec<(Cid, Vec<u8>)>>,
    /// The file's size, once the root block is verified.
    file_size: Option<u64>,
    /// Blocks that hashed to their ids but arrived before the DAG needed them.
    ahead: HashMap<Cid, Vec<u8>>,
    /// What `ahead` costs: its blocks' bytes plus [`AHEAD_ENTRY_COST`] each.
    ahead_bytes: usize,
    ahead_limit: usize,
}

/// What holding one block ahead costs beyond its bytes (its id, the map entry, the allocation),
/// counted so that a flood of tiny blocks meets the bound too.
const AHEAD_ENTRY_COST: usize = 128;

/// The most bytes of blocks a [`CarFileReader`] holds for later because they arrived before the
/// DAG needed them (a CAR not in depth-first order), each block counted with a fixed overhead:
/// 64 MiB.
pub const MAX_AHEAD: usize = 64 << 20;

impl CarFileReader {
    /// A reader for the file whose UnixFS id is `root`.
    pub fn new(root: Cid) -> Self {
        Self {
            root,
            buffer: Vec::new(),
            header_read: false,
            wanted: vec![root],
            nodes: HashMap::new(),
            leaves: HashMap::new(),
            written: 0,
            blocks: 0,
            verified: None,
            file_size: None,
            ahead: HashMap::new(),
            ahead_bytes: 0,
            ahead_limit: MAX_AHEAD,
        }
    }

    /// A reader holding at most `bytes` of blocks ahead of the DAG's order (default
    /// [`MAX_AHEAD`]).
    pub fn with_ahead_limit(mut self, bytes: usize) -> Self {
        self.ahead_limit = bytes;
        self
    }

    /// A reader that hands every block it verified to [`take_verified`](Self::take_verified)
    /// as well (to keep them for a resume).
    pub fn keeping_blocks(mut self) -> Self {
        self.verified = Some(Vec::new());
        self
    }

    /// The blocks verified since the last call, in order (none unless
    /// [`keeping_blocks`](Self::keeping_blocks)).
    pub fn take_verified(&mut self) -> Vec<(Cid, Vec<u8>)> {
        self.verified.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The block the file needs next (after writing out what earlier blocks already give), or
    /// `None` once the file is complete: how a transfer block by block walks the DAG, passing
    /// each block to [`take_block`](Self::take_block) instead of a CAR to
    /// [`feed`](Self::feed).
    pub fn next_wanted(&mut self, out: &mut Vec<Piece>) -> Option<Cid> {
        // Blocks held ahead were checked when they came; placing one fails only for a malformed
        // node, which stays wanted: the walk asks for it again by its id (and refuses it).
        if self.settle(out).is_err() {
            self.ahead.clear();
            self.ahead_bytes = 0;
        }
        self.wanted.last().copied()
    }

    /// Takes one block that came on its own (not inside a CAR): it must be the one
    /// [`next_wanted`](Self::next_wanted) named and hash to its id.
    pub fn take_block(
        &mut self,
        cid: Cid,
        block: &[u8],
        out: &mut Vec<Piece>,
    ) -> std::result::Result<(), String> {
        self.header_read = true;
        self.verify_block(cid, block, out)
    }

    /// The size of the whole file, as its root block (verified) records it: known once the
    /// root has come, so a transfer can show progress before it knows anything else.
    pub const fn file_size(&self) -> Option<u64> {
        self.file_size
    }

    /// File bytes written so far.
    pub const fn written(&self) -> u64 {
        self.written
    }

    /// Feeds the next bytes of the CAR; appends what to write to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Piece>) -> std::result::Result<(), String> {
        self.buffer.extend_from_slice(bytes);
        let mut consumed = 0;
        loop {
            let mut rest = &self.buffer[consumed..];
            let before = rest.len();
            let Some(length) = read_varint(&mut rest) else {
                if before > 9 {
                    return Err("a section length is not a varint".into());
                }
                break;
            };
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            let limit = if self.header_read { MAX_BLOCK + 64 } else { 1024 };
            if length > limit {
                let what = if self.header_read { "section" } else { "header" };
                return Err(format!(
                    "a {what} of {length} bytes is larger than the {limit} allowed"
                ));
            }
            if rest.len() < length {
                break;
            }
            let section = rest[..length].to_vec();
            consumed += before - rest.len() + length;
            if self.header_read {
                self.block(&section, out)?;
            } else {
                let expected = header(&self.root.to_bytes());
                if expected[1..] != section[..] {
                    return Err(format!(
                        "the header does not name {} as its only root (CAR v1)",
                        self.root
                    ));
                }
                self.header_read = true;
            }
        }
        self.buffer.drain(..consumed);
        Ok(())
    }

    /// Ends the CAR: every block the file needs must have come, and nothing else.
    pub fn finish(mut self, out: &mut Vec<Piece>) -> std::result::Result<u64, String> {
        if !self.buffer.is_empty() {
            return Err(format!(
                "the CAR ends inside a section ({} bytes left over)",
                self.buffer.len()
            ));
        }
        if !self.header_read {
            return Err("the CAR is empty (no header)".into());
        }
        self.settle(out)?;
        if let Some(missing) = self.wanted.last() {
            return Err(format!(
                "the CAR ends after {} blocks, but block {missing} never came",
                self.blocks
            ));
        }
        if let Some(extra) = self.ahead.keys().min() {
            return Err(format!("extra block {extra}: the file does not need it"));
        }
        Ok(self.written)
    }

    /// Walks past wanted blocks already seen (writing a leaf again, or expanding a node) or
    /// held ahead (placing them).
    fn settle(&mut self, out: &mut Vec<Piece>) -> std::result::Result<(), String> {
        while let Some(next) = self.wanted.last().copied() {
            if let Some(&(offset, len)) = self.leaves.get(&next) {
                self.wanted.pop();
                out.push(Piece::Repeat { offset, len });
                self.written += len;
            } else if let Some(links) = self.nodes.get(&next) {
                self.wanted.pop();
                self.wanted.extend(links.iter().rev());
            } else if let Some(block) = self.ahead.remove(&next) {
                self.ahead_bytes -= block.len() + AHEAD_ENTRY_COST;
                self.place(next, &block, out)?;
            } else {
                return Ok(());
            }
        }
        Ok(())
    }

    fn block(&mut self, section: &[u8], out: &mut Vec<Piece>) -> std::result::Result<(), String> {
        let (cid, block) = split_cid(section)?;
        self.verify_block(cid, block, out)
    }

    fn verify_block(
        &mut self,
        cid: Cid,
        block: &[u8],
        out: &mut Vec<Piece>,
    ) -> std::result::Result<(), String> {
        self.settle(out)?;
        if !cid.verifies(block) {
            return Err(format!("block {cid} does not hash to its id"));
        }
        let next = self.wanted.last().copied();
        if next != Some(cid) && (self.leaves.contains_key(&cid) || self.nodes.contains_key(&cid)) {
            // A block seen before (`dups=y` resends a leaf the file repeats, possibly after
            // its last new block): nothing new.
            return Ok(());
        }
        let Some(next) = next else {
            return Err(format!("extra block {cid} after the whole file"));
        };
        if cid != next {
            // Ahead of the DAG's order: held until it is needed.
            if !self.ahead.contains_key(&cid) {
                self.ahead_bytes += block.len() + AHEAD_ENTRY_COST;
                if self.ahead_bytes > self.ahead_limit {
                    return Err(format!(
                        "block {cid} came while the DAG needs {next}: more than {} bytes of blocks arrived ahead of the order the file needs them in",
                        self.ahead_limit
                    ));
                }
                self.ahead.insert(cid, block.to_vec());
            }
            return Ok(());
        }
        self.place(cid, block, out)?;
        self.settle(out)
    }

    /// Takes block `cid` (verified, and the one the DAG needs next) into the walk.
    fn place(
        &mut self,
        cid: Cid,
        block: &[u8],
        out: &mut Vec<Piece>,
    ) -> std::result::Result<(), String> {
        debug_assert_eq!(self.wanted.last(), Some(&cid));
        // A malformed node fails here, before anything changes: it stays the block wanted.
        let links = match cid.codec() {
            Codec::Raw => None,
            Codec::DagPb => Some(node_links(block).map_err(|e| format!("node {cid}: {e}"))?),
        };
        if cid == self.root {
            self.file_size = Some(match cid.codec() {
                Codec::Raw => block.len() as u64,
                Codec::DagPb => node_file_size(block).map_err(|e| format!("root {cid}: {e}"))?,
            });
        }
        self.wanted.pop();
        self.blocks += 1;
        match links {
            None => {
                let len = block.len() as u64;
                self.leaves.insert(cid, (self.written, len));
                self.written += len;
                out.push(Piece::Bytes(block.to_vec()));
            }
            Some(links) => {
                self.wanted.extend(links.iter().rev());
                self.nodes.insert(cid, links);
            }
        }
        if let Some(verified) = &mut self.verified {
            verified.push((cid, block.to_vec()));
        }
        Ok(())
    }
}

/// Splits a section into its CID (CIDv1, sha2-256) and block.
fn split_cid(section: &[u8]) -> std::result::Result<(Cid, &[u8]), String> {
    if section.len() < 36 {
        return Err(format!(
            "a section of {} bytes cannot hold a CIDv1 with sha2-256",
            section.len()
        ));
    }
    let (id, block) = section.split_at(36);
    let cid = Cid::from_binary(id)?;
    Ok((cid, block))
}

/// The child ids of a dag-pb node, in order.
fn node_links(block: &[u8]) -> std::result::Result<Vec<Cid>, String> {
    let mut links = Vec::new();
    let mut rest = block;
    while !rest.is_empty() {
        let (field, value) = read_field(&mut rest)?;
        if field == 2 {
            let mut link = value;
            let mut hash = None;
            while !link.is_empty() {
                let (field, value) = read_field(&mut link)?;
                if field == 1 {
                    hash = Some(Cid::from_binary(value)?);
                }
            }
            links.push(hash.ok_or("a link without a Hash")?);
        }
    }
    Ok(links)
}

/// The `filesize` a dag-pb node's UnixFS `Data` (field 1, its own field 3) records.
fn node_file_size(block: &[u8]) -> std::result::Result<u64, String> {
    let mut rest = block;
    while !rest.is_empty() {
        let (field, data) = read_field(&mut rest)?;
        if field != 1 {
            continue;
        }
        let mut data = data;
        while !data.is_empty() {
            let key = read_varint(&mut data).ok_or("truncated UnixFS field key")?;
            match key & 7 {
                0 => {
                    let value = read_varint(&mut data).ok_or("truncated UnixFS varint")?;
                    if key >> 3 == 3 {
                        return Ok(value);
                    }
                }
                2 => {
                    let len = usize::try_from(read_varint(&mut data).ok_or("truncated length")?)
                        .map_err(|_| "UnixFS field length overflows")?;
                    data = data.get(len..).ok_or("a UnixFS field runs past the end")?;
                }
                other => return Err(format!("wire type {other} in UnixFS data")),
            }
        }
    }
    Err("no UnixFS filesize in the node".into())
}

/// Reads one protobuf field: its number and, for wire type 2, its bytes (other wire types: the
/// varint's bytes are skipped and an empty slice returned).
fn read_field<'a>(input: &mut &'a [u8]) -> std::result::Result<(u64, &'a [u8]), String> {
    let key = read_varint(input).ok_or("truncated field key")?;
    match key & 7 {
        0 => {
            read_varint(input).ok_or("truncated varint field")?;
            Ok((key >> 3, &[]))
        }
        2 => {
            let len = usize::try_from(read_varint(input).ok_or("truncated field length")?)
                .map_err(|_| "field length overflows")?;
            if input.len() < len {
                return Err("a field runs past the end of the node".into());
            }
            let (value, rest) = input.split_at(len);
            *input = rest;
            Ok((key >> 3, value))
        }
        other => Err(format!("wire type {other} is not used by dag-pb")),
    }
}
