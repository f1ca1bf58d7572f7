//! aik-store integration tests: the local store under concurrency and crashes, and every
//! backend against a real server running offline on 127.0.0.1 (js-ipfs, arlocal, a raw HTTP
//! server, the real `pip download`).

mod arweave;
mod common;
mod http;
mod ipfs;
mod local_store;
mod pypi;
mod unixfs;
