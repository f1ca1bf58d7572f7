//! What a download by UnixFS id has verified so far, kept across failures and restarts so that no
//! verified block is fetched twice.
//!
//! `<store>/partial/<root>.car` is a CAR v1 naming the file's root, holding the blocks in the
//! order they were verified (nodes and leaves). The next attempt from any source reads it back,
//! checking every section against its id again: a torn or wrong tail (a process killed
//! mid-write, a bad disk) is cut off, never used. An exclusive lock on the file keeps two
//! transfers of the same file from writing it at once (the second runs without resume state).
//! The file is deleted once the whole DAG has been verified.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use tracing::{debug, warn};

use crate::{
    Cid, Error, Result,
    car::{MAX_BLOCK, header},
    unixfs::put_varint,
};

/// Subdirectory of the store holding resume state.
pub(crate) const PARTIAL_DIR: &str = "partial";

/// The verified blocks of one interrupted download; see the module docs.
#[derive(Debug)]
pub(crate) struct PartialDag {
    path: PathBuf,
    /// Locked for this transfer; appended to.
    file: File,
    /// Where each block's bytes start in the file, and their length.
    blocks: HashMap<Cid, (u64, usize)>,
    /// The end of the last good section.
    end: u64,
}

impl PartialDag {
    /// Opens (or starts) the resume state of `root` under `store_root`. `Ok(None)` when another
    /// transfer of the same file holds it.
    pub(crate) fn open(store_root: &Path, root: Cid) -> Result<Option<Self>> {
        let dir = store_root.join(PARTIAL_DIR);
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let path = dir.join(format!("{root}.car"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                debug!(path = %path.display(), "another transfer holds the resume state");
                return Ok(None);
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path)(e)),
        }
        let mut partial = Self { path, file, blocks: HashMap::new(), end: 0 };
        partial.load(root)?;
        Ok(Some(partial))
    }

    /// Reads the sections back, keeps the good prefix and cuts off the rest.
    fn load(&mut self, root: Cid) -> Result<()> {
        let head = header(&root.to_bytes());
        let length = self.file.metadata().map_err(Error::io("stat", &self.path))?.len();
        let mut reader = BufReader::new(&self.file);
        let mut start = vec![0u8; head.len()];
        let header_ok =
            length >= head.len() as u64 && reader.read_exact(&mut start).is_ok() && start == head;
        if header_ok {
            self.end = head.len() as u64;
            let mut section = Vec::new();
            while let Some(size) = read_varint_from(&mut reader) {
                let Ok(size) = usize::try_from(size) else { break };
                if !(36..=MAX_BLOCK + 36).contains(&size) {
                    break;
                }
                section.resize(size, 0);
                if reader.read_exact(&mut section).is_err() {
                    break;
                }
                let Ok(cid) = Cid::from_binary(&section[..36]) else { break };
                if !cid.verifies(&section[36..]) {
                    break;
                }
                let prefix = varint_len(size as u64) as u64;
                self.blocks.insert(cid, (self.end + prefix + 36, size - 36));
                self.end += prefix + size as u64;
            }
        }
        drop(reader);
        if self.end < length {
            if header_ok {
                warn!(path = %self.path.display(), kept = self.blocks.len(), cut = length - self.end,
                    "cut off a torn or wrong tail of the resume state");
            }
            self.file.set_len(self.end).map_err(Error::io("truncate", &self.path))?;
        }
        if !header_ok {
            self.file.set_len(0).map_err(Error::io("truncate", &self.path))?;
            self.file.seek(SeekFrom::Start(0)).map_err(Error::io("seek", &self.path))?;
            self.file.write_all(&head).map_err(Error::io("write", &self.path))?;
            self.end = head.len() as u64;
        }
        Ok(())
    }

    /// Verified blocks held.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// The bytes of block `cid`, if held.
    pub(crate) fn get(&mut self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let Some(&(offset, len)) = self.blocks.get(cid) else { return Ok(None) };
        let mut block = vec![0u8; len];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut block))
            .map_err(Error::io("read", &self.path))?;
        Ok(Some(block))
    }

    /// Keeps a block the caller has verified against `cid` (once: a held block is not added
    /// again).
    pub(crate) fn append(&mut self, cid: &Cid, block: &[u8]) -> Result<()> {
        if self.blocks.contains_key(cid) {
            return Ok(());
        }
        let mut section = Vec::with_capacity(block.len() + 40);
        put_varint(&mut section, (36 + block.len()) as u64);
        let prefix = section.len() as u64;
        section.extend_from_slice(&cid.to_bytes());
        section.extend_from_slice(block);
        self.file
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| self.file.write_all(&section))
            .map_err(Error::io("write", &self.path))?;
        self.blocks.insert(*cid, (self.end + prefix + 36, block.len()));
        self.end += section.len() as u64;
        Ok(())
    }

    /// The whole DAG was verified: the resume state is no longer needed.
    pub(crate) fn complete(self) -> Result<()> {
        std::fs::remove_file(&self.path).map_err(Error::io("remove", &self.path))
    }
}

fn varint_len(value: u64) -> usize {
    let mut out = Vec::new();
    put_varint(&mut out, value);
    out.len()
}

/// A varint read byte by byte; `None` at the end of the input or on a malformed one.
fn read_varint_from(reader: &mut impl Read) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9 {
        let mut byte = [0u8];
        reader.read_exact(&mut byte).ok()?;
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContentId;

    fn raw(bytes: &[u8]) -> Cid {
        Cid::raw(ContentId::of(bytes))
    }

    #[test]
    fn blocks_survive_a_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let root = Cid::dag_pb([7; 32]);
        let (a, b) = (vec![1u8; 1000], vec![2u8; 300]);
        {
            let mut partial = PartialDag::open(dir.path(), root).unwrap().unwrap();
            assert_eq!(partial.len(), 0);
            partial.append(&raw(&a), &a).unwrap();
            partial.append(&raw(&b), &b).unwrap();
            partial.append(&raw(&a), &a).unwrap();
            assert_eq!(partial.len(), 2);
            // Held by this transfer: a second one gets no resume state.
            assert!(PartialDag::open(dir.path(), root).unwrap().is_none());
        }
        let path = dir.path().join(PARTIAL_DIR).join(format!("{root}.car"));
        let good = std::fs::metadata(&path).unwrap().len();
        // A killed writer: half a section at the end.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[0x90, 0x03, 1, 2, 3]).unwrap();
        drop(file);
        let mut partial = PartialDag::open(dir.path(), root).unwrap().unwrap();
        assert_eq!(partial.len(), 2);
        assert_eq!(partial.get(&raw(&a)).unwrap().unwrap(), a);
        assert_eq!(partial.get(&raw(&b)).unwrap().unwrap(), b);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good, "the torn tail is cut off");
        drop(partial);

        // A block whose bytes changed on disk: it and everything after it are dropped.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let mut partial = PartialDag::open(dir.path(), root).unwrap().unwrap();
        assert_eq!(partial.len(), 1);
        assert!(partial.get(&raw(&b)).unwrap().is_none());
        partial.complete().unwrap();
        assert!(!path.exists());

        // A file for another root (or garbage) is started afresh.
        std::fs::write(&path, b"not a car").unwrap();
        assert_eq!(PartialDag::open(dir.path(), root).unwrap().unwrap().len(), 0);
        assert_eq!(std::fs::read(&path).unwrap(), header(&root.to_bytes()));
    }
}
