//! Content-addressed storage for AI Kernel: model files and prompt data, off chain.
//!
//! Content is named by the sha256 of its bytes ([`ContentId`]), shown as a CIDv1 raw string
//! (`bafkrei…`) so the same name addresses IPFS. This crate is the one implementation of content
//! ids for the project (the kernel SDK re-exports it). It provides:
//!
//! - [`LocalStore`]: a directory of files named by id, written atomically (temp file, fsync,
//!   rename) so a half-written file is never served;
//! - chunked hashing with a Merkle root ([`ChunkManifest`], [`merkle_root`]) matching what the
//!   ModelFileSystem contract records;
//! - download backends behind the [`Fetch`] trait: IPFS gateway ([`IpfsGateway`]), Kubo RPC API
//!   ([`KuboRpc`], which also publishes), Arweave ([`ArweaveGateway`]), plain HTTP(S)
//!   ([`HttpFetch`]) and files inside PyPI wheels ([`PypiWheel`]), dispatched on [`Uri`] by
//!   [`Fetcher`]. Every incoming byte is checked against its expected hash ([`Expected`]) before
//!   it is kept, and progress is reported through [`Progress`].
//!
//! It knows nothing of chains or models: callers say which id they expect and where to look.
//!
//! ```no_run
//! # async fn run() -> aik_store::Result<()> {
//! use aik_store::{ContentId, Expected, FetchConfig, Fetcher, LocalStore, NoProgress, Uri};
//!
//! let store = LocalStore::open(LocalStore::default_dir()).await?;
//! let id: ContentId = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e".parse()?;
//! let uri: Uri = "https://example.com/hello.txt".parse()?;
//! Fetcher::new(&FetchConfig::default())?.fetch_into(&store, &uri, &Expected::id(id), &NoProgress).await?;
//! assert_eq!(store.get(&id).await?, b"hello world");
//! # Ok(()) }
//! ```

pub mod arweave;
mod car;
mod cid;
mod error;
mod fetch;
pub mod gateway;
mod local;
mod merkle;
mod partial;
mod progress;
pub mod unixfs;
mod uri;

pub use arweave::{ArweaveUploader, ArweaveWallet};
pub use car::{CarFileReader, MAX_AHEAD, MAX_BLOCK, Piece, write_car};
pub use cid::{Cid, Codec, ContentHasher, ContentId};
pub use error::{Error, Result};
pub use fetch::{
    ArweaveGateway, Fetch, FetchConfig, Fetcher, HttpFetch, IpfsGateway, KuboRpc, PypiWheel,
    http_client, is_public_host,
};
pub use local::{ChunkCheck, Expected, Incoming, LocalStore};
pub use merkle::{
    ChunkHasher, ChunkManifest, DEFAULT_CHUNK_SIZE, Hash32, chunk_count, hash_pair, merkle_root,
    verify_proof,
};
pub use progress::{NoProgress, Progress};
/// The URL type of [`FetchConfig`] endpoints.
pub use reqwest::Url;
pub use unixfs::UnixFsFile;
pub use uri::Uri;
