//! A read-only IPFS trustless gateway over a [`LocalStore`], so workers share model files with
//! each other (and with any IPFS client) without a central server.
//!
//! `GET /ipfs/{cid}` answers, for a file the store holds under that id (its UnixFS id, or the raw
//! id of a file of one block):
//!
//! - a CAR of the file's DAG (`application/vnd.ipld.car; version=1; order=dfs; dups=n`) when the
//!   request asks for one (`?format=car` or an `Accept` naming that type): what
//!   [`Fetcher`](crate::Fetcher) asks for, checked block by block on the other side;
//! - the file's bytes otherwise (`application/octet-stream`), as a path gateway does.
//!
//! Anything else is an error status with a one-line reason: 400 for a malformed id or an
//! unsupported format, 404 for content the store does not hold (including the raw id of a
//! file larger than one block, which names no IPFS block). Nothing can be written.

use std::{io::Write, net::SocketAddr, path::PathBuf};

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
    Cid, Codec, LocalStore, UnixFsFile, car::write_car, fetch::CAR_MEDIA_TYPE, unixfs::CHUNK_SIZE,
};

/// The gateway's routes over `store`.
pub fn router(store: LocalStore) -> Router {
    Router::new().route("/ipfs/{cid}", get(get_ipfs)).with_state(store)
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
    State(store): State<LocalStore>,
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
    let car = match params.format.as_deref() {
        Some("car") => true,
        None => accept.contains(CAR_MEDIA_TYPE),
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("format {other} is not served (car, or none for the file)"),
            );
        }
    };
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
