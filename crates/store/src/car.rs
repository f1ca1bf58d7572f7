//! CAR v1 export of a file's UnixFS DAG: the archive `ipfs dag import` and trustless gateways
//! (`application/vnd.ipld.car`) exchange.
//!
//! Layout: `varint(len) header`, then per block `varint(len(cid) + len(block)) cid block`. The
//! header is the dag-cbor map `{"roots": [root], "version": 1}` (keys in dag-cbor's canonical
//! order, the root as tag 42 over `0x00 ‖ binary CID`). Blocks go root first, each node before
//! its children, each block once, as Kubo's `dag export` writes them.

use std::{
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
};

use crate::{Error, Result, UnixFsFile, unixfs::put_varint};

/// The CAR v1 header naming `root`.
fn header(root: &[u8; 36]) -> Vec<u8> {
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
