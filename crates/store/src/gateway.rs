//! A read-only IPFS trustless gateway over a [`LocalStore`], so workers share model files with
//! each other (and with any IPFS client) without a central server.
//!
//! `GET /ipfs/{cid}` answers, for a file the store holds under that id (its UnixFS id, or the raw
//! id of a file of one block):
//!
//! - a CAR of the file's DAG (`application/vnd.ipld.car; version=1; order=dfs; dups=n`) when the
//!   request asks for one (`?format=car` or an `Accept` naming that type): what
//!   [`Fetcher`](crate::Fetcher) asks for, checked block by block on the other side;
//! - one block (`application/vnd.ipld.raw`) for `?format=raw` or an `Accept` naming that type:
//!   any node or leaf of a stored file's DAG, which is how a download interrupted earlier
//!   fetches only the blocks it still lacks;
//! - the file's bytes otherwise (`application/octet-stream`), as a path gateway does.
//!
//! Anything else is an error status with a one-line reason: 400 for a malformed id or an
//! unsupported format, 404 for content the store does not hold (including the raw id of a
//! file larger than one block, which names no IPFS block). Nothing can be written.

use std::{
    collections::{HashMap, HashSet},
    io::{Read, Seek, SeekFrom, Write},
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures_util::stream;
use tokio::sync::mpsc;

use crate::{
    Cid, Codec, LocalStore, MAX_BLOCK, UnixFsFile,
    car::write_car,
    fetch::{CAR_MEDIA_TYPE, RAW_MEDIA_TYPE},
    unixfs::CHUNK_SIZE,
};

/// The gateway's routes over `store`.
pub fn router(store: LocalStore) -> Router {
    let state = Gateway { store, blocks: Arc::default() };
    Router::new().route("/ipfs/{cid}", get(get_ipfs)).with_state(state)
}

#[derive(Clone)]
struct Gateway {
    store: LocalStore,
    /// Where each block of the files indexed so far lives, built on the first `format=raw`
    /// request for a block not yet known (a DAG is rebuilt from its file once).
    blocks: Arc<Mutex<BlockIndex>>,
}

#[derive(Default)]
struct BlockIndex {
    roots: HashSet<Cid>,
    blocks: HashMap<Cid, BlockAt>,
}

enum BlockAt {
    Node(Arc<Vec<u8>>),
    Leaf { path: PathBuf, offset: u64, len: usize },
}

impl Gateway {
    /// The bytes of block `cid` of any stored file, checked against `cid`; `None` when no
    /// stored file has it.
    async fn block(&self, cid: Cid) -> crate::Result<Option<Vec<u8>>> {
        // A file of one block is that block.
        if let Some(id) = cid.as_content_id()
            && let Some(path) = self.store.path_of(&id).await?
            && std::fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_BLOCK as u64)
        {
            return self.store.get(&id).await.map(Some);
        }
        if !self.blocks.lock().expect("block index lock").blocks.contains_key(&cid) {
            for root in self.store.unixfs_roots().await? {
                if self.blocks.lock().expect("block index lock").roots.contains(&root) {
                    continue;
                }
                let Some((dag, path)) = self.store.unixfs(&root).await? else { continue };
                let mut index = self.blocks.lock().expect("block index lock");
                for (id, node) in dag.nodes {
                    index.blocks.insert(id, BlockAt::Node(Arc::new(node.bytes)));
                }
                for (id, (offset, len)) in dag.leaves {
                    index.blocks.insert(id, BlockAt::Leaf { path: path.clone(), offset, len });
                }
                index.roots.insert(root);
            }
        }
        let found = match self.blocks.lock().expect("block index lock").blocks.get(&cid) {
            None => return Ok(None),
            Some(BlockAt::Node(bytes)) => Ok(bytes.clone()),
            Some(BlockAt::Leaf { path, offset, len }) => Err((path.clone(), *offset, *len)),
        };
        let bytes = match found {
            Ok(node) => node.to_vec(),
            Err((path, offset, len)) => {
                let mut leaf = vec![0u8; len];
                std::fs::File::open(&path)
                    .and_then(|mut file| {
                        file.seek(SeekFrom::Start(offset))?;
                        file.read_exact(&mut leaf)
                    })
                    .map_err(crate::Error::io("read", &path))?;
                leaf
            }
        };
        // A file changed or removed since it was indexed serves nothing rather than a wrong block.
        Ok(cid.verifies(&bytes).then_some(bytes))
    }
}

/// Serves `store` on `address` until the task is dropped or aborted; returns the bound address
/// (port 0 picks a free one) and the server task.
pub async fn serve(
    store: LocalStore,
    address: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move { axum::serve(listener, router(store)).await });
    Ok((bound, task))
}

#[derive(serde::Deserialize)]
struct Params {
    format: Option<String>,
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, reason.into()).into_response()
}

async fn get_ipfs(
    State(gateway): State<Gateway>,
    Path(cid): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let Ok(cid) = cid.parse::<Cid>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("{cid} is not a CIDv1 (raw or dag-pb, sha2-256)"),
        );
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let raw = match params.format.as_deref() {
        Some("raw") => true,
        None => accept.contains(RAW_MEDIA_TYPE),
        _ => false,
    };
    if raw {
        return match gateway.block(cid).await {
            Ok(Some(block)) => ([(header::CONTENT_TYPE, RAW_MEDIA_TYPE)], block).into_response(),
            Ok(None) => refuse(StatusCode::NOT_FOUND, format!("block {cid} is not in this store")),
            Err(error) => refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        };
    }
    let car = match params.format.as_deref() {
        Some("car") => true,
        None => accept.contains(CAR_MEDIA_TYPE),
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("format {other} is not served (car, raw, or none for the file)"),
            );
        }
    };
    let store = &gateway.store;
    let found = match store.unixfs(&cid).await {
        Ok(found) => found,
        // The raw id of a file larger than one block: the file is here, but no block has that id.
        Err(crate::Error::UnixFsIndex { .. }) if cid.codec() == Codec::Raw => None,
        Err(error) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    let Some((dag, path)) = found else {
        return refuse(StatusCode::NOT_FOUND, format!("{cid} is not in this store"));
    };
    if cid.codec() == Codec::Raw && dag.size > CHUNK_SIZE as u64 {
        return refuse(StatusCode::NOT_FOUND, format!("{cid} names no block here"));
    }
    let (content_type, body) = if car {
        (format!("{CAR_MEDIA_TYPE}; version=1; order=dfs; dups=n"), stream_car(dag, path))
    } else {
        ("application/octet-stream".to_string(), stream_file(path))
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A body written by `produce` on a blocking thread, chunk by chunk.
fn blocking_body(
    produce: impl FnOnce(&mut ChannelWriter) -> std::io::Result<()> + Send + 'static,
) -> Body {
    let (sender, receiver) = mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter { sender: sender.clone(), buffer: Vec::new() };
        let result = produce(&mut writer).and_then(|()| writer.flush());
        if let Err(error) = result {
            let _ = sender.blocking_send(Err(error));
        }
    });
    Body::from_stream(stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    }))
}

fn stream_car(dag: UnixFsFile, path: PathBuf) -> Body {
    blocking_body(move |writer| {
        write_car(&dag, &path, writer).map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()))
    })
}

fn stream_file(path: PathBuf) -> Body {
    blocking_body(move |writer| {
        let mut file = std::fs::File::open(&path)?;
        std::io::copy(&mut file, writer).map(|_| ())
    })
}

/// Sends what is written, in pieces of at least 64 KiB, to the response body.
struct ChannelWriter {
    sender: mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= 64 << 10 {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::take(&mut self.buffer));
        self.sender.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}
