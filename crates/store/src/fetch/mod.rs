//! Backends that download content into a [`LocalStore`], all behind the [`Fetch`] trait.
//!
//! A backend only moves bytes: it writes whatever arrives into an [`Incoming`], which hashes,
//! size-checks and stores it. So every backend gets the same guarantee for free: nothing that
//! does not match the expected sha256 is ever kept.

mod arweave;
mod http;
mod ipfs;
mod pypi;

use std::{future::Future, time::Duration};

pub use arweave::ArweaveGateway;
pub use http::HttpFetch;
pub use ipfs::{IpfsGateway, KuboRpc};
pub use pypi::PypiWheel;
use reqwest::Url;
use tracing::{info, warn};

use crate::{ContentId, Error, Expected, Incoming, LocalStore, Progress, Result, Uri};

/// One way of getting bytes for a URI.
///
/// Implementations stream into `sink` and report the announced length with
/// [`Incoming::announce_total`] when they know it; they do not verify anything themselves.
pub trait Fetch: Send + Sync {
    /// Streams the content at `uri` into `sink`. Fails with [`Error::UnsupportedUri`] for URI
    /// kinds this backend does not serve.
    fn fetch(&self, uri: &Uri, sink: &mut Incoming<'_>) -> impl Future<Output = Result<()>> + Send;
}

/// Endpoints and limits for [`Fetcher`].
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// IPFS HTTP gateways for `ipfs://`, tried in order (after the RPC API when one is set)
    /// until one yields content that verifies.
    pub ipfs_gateways: Vec<Url>,
    /// Kubo-compatible RPC API (`http://127.0.0.1:5001`); tried first for `ipfs://` when set.
    pub ipfs_rpc: Option<Url>,
    /// Filecoin retrieval endpoints for `fil://`, tried in order: anything that serves the
    /// trustless gateway protocol (`GET /ipfs/<cid>?format=car`), as storage providers'
    /// HTTP retrieval and retrieval gateways do. Empty: `fil://` cannot be fetched.
    pub filecoin_retrieval: Vec<Url>,
    /// Arweave gateway for `ar://`.
    pub arweave_gateway: Url,
    /// Other workers' store gateways (trustless HTTP), tried in order for a file named by its
    /// IPFS id once every listed URI failed: how workers share model files without a central
    /// server. Untrusted like any gateway: every block is checked.
    pub peer_gateways: Vec<Url>,
    /// Program and leading arguments that run pip, e.g. `["python3", "-m", "pip"]`.
    pub pip: Vec<String>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Longest silence tolerated while reading a response (not the whole transfer's duration,
    /// which for a model file can be long).
    pub read_timeout: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            ipfs_gateways: vec![Url::parse("https://ipfs.io").expect("valid URL")],
            ipfs_rpc: None,
            filecoin_retrieval: Vec::new(),
            arweave_gateway: Url::parse("https://arweave.net").expect("valid URL"),
            peer_gateways: Vec::new(),
            pip: vec!["python3".into(), "-m".into(), "pip".into()],
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Dispatches each URI to the backend for its scheme and keeps the result in a store.
#[derive(Debug, Clone)]
pub struct Fetcher {
    http: HttpFetch,
    /// For `ipfs://`: the RPC API if configured, then the gateways.
    ipfs: Vec<IpfsSource>,
    filecoin: Vec<IpfsSource>,
    arweave: ArweaveGateway,
    peers: Vec<IpfsSource>,
    pypi: PypiWheel,
}

/// One place an IPFS id can be fetched from.
#[derive(Debug, Clone)]
enum IpfsSource {
    Rpc(KuboRpc),
    Gateway(IpfsGateway),
}

impl IpfsSource {
    fn gateways(urls: &[Url], client: &reqwest::Client) -> Vec<Self> {
        urls.iter()
            .map(|url| Self::Gateway(IpfsGateway::with_client(url.clone(), client.clone())))
            .collect()
    }

    /// Where it is, for logs.
    fn base(&self) -> &Url {
        match self {
            Self::Rpc(rpc) => rpc.api(),
            Self::Gateway(gateway) => gateway.base(),
        }
    }
}

impl Fetch for IpfsSource {
    async fn fetch(&self, uri: &Uri, sink: &mut Incoming<'_>) -> Result<()> {
        match self {
            Self::Rpc(rpc) => rpc.fetch(uri, sink).await,
            Self::Gateway(gateway) => gateway.fetch(uri, sink).await,
        }
    }
}

/// What a download must turn out to be.
#[derive(Debug, Clone, Copy)]
enum Target<'e> {
    /// Content of a known sha256 (and maybe size and chunk roots).
    Expected(&'e Expected),
    /// The UnixFS file of this root, sha256 unknown: only a CAR verified block by block fills it.
    Dag(crate::Cid),
}

impl Target<'_> {
    async fn stage<'a>(
        self,
        store: &LocalStore,
        label: &str,
        progress: &'a dyn Progress,
    ) -> Result<Incoming<'a>> {
        match self {
            Self::Expected(expected) => store.stage(expected.clone(), label, progress).await,
            Self::Dag(root) => store.stage_dag(root, label, progress).await,
        }
    }
}

impl Fetcher {
    /// Builds the backends described by `config`, sharing one HTTP connection pool.
    pub fn new(config: &FetchConfig) -> Result<Self> {
        let client = http_client(config)?;
        let rpc = config
            .ipfs_rpc
            .clone()
            .map(|api| IpfsSource::Rpc(KuboRpc::with_client(api, client.clone())));
        Ok(Self {
            http: HttpFetch::with_client(client.clone()),
            ipfs: rpc
                .into_iter()
                .chain(IpfsSource::gateways(&config.ipfs_gateways, &client))
                .collect(),
            filecoin: IpfsSource::gateways(&config.filecoin_retrieval, &client),
            arweave: ArweaveGateway::with_client(config.arweave_gateway.clone(), client.clone()),
            peers: IpfsSource::gateways(&config.peer_gateways, &client),
            pypi: PypiWheel::new(config.pip.clone()),
        })
    }

    /// Makes sure `expected` is in `store`, downloading it from `uri` if it is not.
    ///
    /// Returns at once when the content is already stored (after re-hashing it if the store
    /// verifies on read; a corrupt copy is downloaded again). Otherwise the bytes are verified
    /// against `expected` as they arrive; on any error nothing is kept.
    pub async fn fetch_into(
        &self,
        store: &LocalStore,
        uri: &Uri,
        expected: &Expected,
        progress: &dyn Progress,
    ) -> Result<ContentId> {
        if store.has(&expected.id) {
            if !store.verifies_on_read() {
                return Ok(expected.id);
            }
            match store.verify(&expected.id).await {
                Ok(()) => return Ok(expected.id),
                // A corrupt copy is replaced by a fresh download rather than served.
                Err(error @ Error::Corrupt { .. }) => {
                    warn!(%error, "replacing a corrupt stored copy");
                    store.remove(&expected.id).await?;
                }
                Err(error) => return Err(error),
            }
        }
        match uri {
            Uri::Filecoin { cid } => {
                return self.fetch_filecoin(store, *cid, expected, progress).await;
            }
            Uri::Ipfs { .. } => {
                self.check_ipfs_sources(uri)?;
                let mut failures = Vec::new();
                let target = Target::Expected(expected);
                let label = uri.to_string();
                let found =
                    first_source(&self.ipfs, store, uri, &label, target, progress, &mut failures)
                        .await?;
                return found.ok_or_else(|| Error::all_failed(failures));
            }
            _ => {}
        }
        let mut incoming = store.stage(expected.clone(), &uri.to_string(), progress).await?;
        self.fetch(uri, &mut incoming).await?;
        let id = incoming.finish().await?;
        info!(%uri, %id, "fetched and verified");
        Ok(id)
    }

    /// `fil://cid` from each retrieval endpoint in turn until one yields the expected content.
    async fn fetch_filecoin(
        &self,
        store: &LocalStore,
        cid: crate::Cid,
        expected: &Expected,
        progress: &dyn Progress,
    ) -> Result<ContentId> {
        if self.filecoin.is_empty() {
            return Err(Error::UnsupportedUri {
                backend: "Filecoin retrieval (no endpoint configured)",
                uri: format!("fil://{cid}"),
            });
        }
        let as_ipfs = Uri::Ipfs { cid: cid.to_string(), path: String::new() };
        let mut failures = Vec::new();
        let label = format!("fil://{cid}");
        let target = Target::Expected(expected);
        let found =
            first_source(&self.filecoin, store, &as_ipfs, &label, target, progress, &mut failures)
                .await?;
        found.ok_or_else(|| Error::all_failed(failures))
    }

    /// Fetches the UnixFS file whose id is `root` when its sha256 is not known (`aik store get
    /// bafybei…`): as a CAR (Kubo RPC when configured, else the gateway), every block checked
    /// against `root`, then kept under the sha256 of the verified bytes and indexed by `root`.
    pub async fn fetch_unixfs(
        &self,
        store: &LocalStore,
        root: crate::Cid,
        progress: &dyn Progress,
    ) -> Result<ContentId> {
        if let Some(id) = store.resolve(&root).await? {
            return Ok(id);
        }
        let uri: Uri = format!("ipfs://{root}").parse()?;
        let id = match root.as_content_id() {
            Some(id) => self.fetch_into(store, &uri, &Expected::id(id), progress).await?,
            None => {
                self.check_ipfs_sources(&uri)?;
                let (mut failures, label) = (Vec::new(), uri.to_string());
                let target = Target::Dag(root);
                first_source(&self.ipfs, store, &uri, &label, target, progress, &mut failures)
                    .await?
                    .ok_or_else(|| Error::all_failed(failures))?
            }
        };
        info!(%uri, %id, "fetched and verified block by block");
        Ok(id)
    }

    /// An error naming `uri` when no IPFS source is configured.
    fn check_ipfs_sources(&self, uri: &Uri) -> Result<()> {
        if self.ipfs.is_empty() {
            return Err(Error::UnsupportedUri {
                backend: "IPFS (no gateway or RPC API configured)",
                uri: uri.to_string(),
            });
        }
        Ok(())
    }

    /// Tries each URI in order until one yields the expected content, then each peer gateway
    /// for the first URI that names an IPFS id (`ipfs://CID`, `fil://CID`); a model lists
    /// several mirrors so that one dead gateway does not stop a node.
    pub async fn fetch_first(
        &self,
        store: &LocalStore,
        uris: &[Uri],
        expected: &Expected,
        progress: &dyn Progress,
    ) -> Result<ContentId> {
        let mut failures = Vec::new();
        for uri in uris {
            match self.fetch_into(store, uri, expected, progress).await {
                Ok(id) => return Ok(id),
                Err(error) => {
                    warn!(%uri, %error, "source failed, trying the next");
                    failures.push(error);
                }
            }
        }
        let named = uris.iter().find_map(|uri| match uri {
            Uri::Ipfs { cid, path } if path.is_empty() => Some(cid.clone()),
            Uri::Filecoin { cid } => Some(cid.to_string()),
            _ => None,
        });
        if let Some(cid) = named {
            let as_ipfs = Uri::Ipfs { cid, path: String::new() };
            let label = as_ipfs.to_string();
            let target = Target::Expected(expected);
            let found =
                first_source(&self.peers, store, &as_ipfs, &label, target, progress, &mut failures)
                    .await?;
            if let Some(id) = found {
                return Ok(id);
            }
        }
        Err(Error::AllSourcesFailed { failures })
    }
}

/// Tries `uri` on each source in turn (the IPFS RPC API and gateways, Filecoin retrieval
/// endpoints, peers' stores), each into a fresh staging, until one yields `target`; a source's
/// failure (a wrong block, a dead host, a hash mismatch) is logged, kept in `failures` and the
/// next one tried, resuming from the blocks earlier ones verified. `Ok(None)` when none did.
async fn first_source(
    sources: &[IpfsSource],
    store: &LocalStore,
    uri: &Uri,
    label: &str,
    target: Target<'_>,
    progress: &dyn Progress,
    failures: &mut Vec<Error>,
) -> Result<Option<ContentId>> {
    for gateway in sources {
        let mut incoming = target.stage(store, label, progress).await?;
        let attempt = match gateway.fetch(uri, &mut incoming).await {
            Ok(()) => incoming.finish().await,
            Err(error) => Err(error),
        };
        match attempt {
            Ok(id) => {
                info!(%label, gateway = %gateway.base(), %id, "fetched and verified");
                return Ok(Some(id));
            }
            Err(error) => {
                warn!(%label, gateway = %gateway.base(), %error, "gateway failed, trying the next");
                failures.push(error);
            }
        }
    }
    Ok(None)
}

/// Whether `url`'s host may be a peer's public address: a name, or an IP address that is not
/// loopback, private, link-local, unspecified, shared (100.64/10) or multicast. A node that takes
/// gateway addresses from the chain skips the others unless told to (dev networks on one
/// machine), so that a published URL cannot point it at services on its own machine or LAN. (A
/// name is not resolved here: one that resolves to such an address is not caught.)
pub fn is_public_host(url: &Url) -> bool {
    use std::net::IpAddr;
    let Some(host) = url.host_str() else { return false };
    let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
        return !host.eq_ignore_ascii_case("localhost");
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

impl Fetch for Fetcher {
    async fn fetch(&self, uri: &Uri, sink: &mut Incoming<'_>) -> Result<()> {
        let Uri::Concat(parts) = uri else { return self.fetch_one(uri, sink).await };
        for part in parts {
            sink.begin_part();
            self.fetch_one(part, sink).await?;
        }
        Ok(())
    }
}

impl Fetcher {
    /// Fetches a URI that is not a `concat://` (a part of one never is).
    async fn fetch_one(&self, uri: &Uri, sink: &mut Incoming<'_>) -> Result<()> {
        match uri {
            Uri::Http(_) => self.http.fetch(uri, sink).await,
            // A part of a `concat://` file: the first source (a whole file tries each in turn).
            Uri::Ipfs { .. } => match self.ipfs.first() {
                Some(source) => source.fetch(uri, sink).await,
                None => Err(Error::UnsupportedUri {
                    backend: "IPFS (no gateway or RPC API configured)",
                    uri: uri.to_string(),
                }),
            },
            Uri::Filecoin { cid } => match self.filecoin.first() {
                Some(endpoint) => {
                    let as_ipfs = Uri::Ipfs { cid: cid.to_string(), path: String::new() };
                    endpoint.fetch(&as_ipfs, sink).await
                }
                None => Err(Error::UnsupportedUri {
                    backend: "Filecoin retrieval (no endpoint configured)",
                    uri: uri.to_string(),
                }),
            },
            Uri::Arweave { .. } => self.arweave.fetch(uri, sink).await,
            Uri::Pypi { .. } => self.pypi.fetch(uri, sink).await,
            Uri::Concat(_) => {
                Err(Error::UnsupportedUri { backend: "a concat:// part", uri: uri.to_string() })
            }
        }
    }
}

/// An HTTP client with the configured timeouts, rustls and no proxy surprises.
pub fn http_client(config: &FetchConfig) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .user_agent(concat!("aik-store/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|cause| Error::Request { uri: "(building the HTTP client)".into(), cause })
}

/// Sends a request and streams a successful response body into `sink`.
///
/// Shared by every HTTP-based backend: maps connection failures, error statuses and short
/// bodies to their own errors, each naming `url`.
pub(crate) async fn stream_response(
    request: reqwest::RequestBuilder,
    url: &str,
    sink: &mut Incoming<'_>,
) -> Result<()> {
    let response = send_ok(request, url).await?;
    stream_body(response, url, sink).await
}

/// Streams a successful response's body into `sink`.
pub(crate) async fn stream_body(
    mut response: reqwest::Response,
    url: &str,
    sink: &mut Incoming<'_>,
) -> Result<()> {
    if let Some(root) = sink.dag() {
        return Err(Error::Car {
            source_uri: url.to_string(),
            reason: format!(
                "plain bytes, not a CAR: without a known sha256 the file {root} can be checked only block by block"
            ),
        });
    }
    // Read once: reqwest's value is a size hint that shrinks as the body is consumed.
    let announced = response.content_length();
    if let Some(length) = announced {
        sink.announce_total(length)?;
    }
    loop {
        match response.chunk().await {
            Ok(Some(bytes)) => sink.write(&bytes).await?,
            Ok(None) => return Ok(()),
            Err(source) => {
                let received = sink.received();
                return Err(match announced {
                    Some(announced) if received < announced => Error::Truncated {
                        source_uri: url.to_string(),
                        received,
                        announced,
                        reason: error_chain(&source),
                    },
                    _ => Error::Request { uri: url.to_string(), cause: source },
                });
            }
        }
    }
}

/// The media type of a CAR response (trustless gateways, Kubo's `dag export`).
pub(crate) const CAR_MEDIA_TYPE: &str = "application/vnd.ipld.car";
/// The media type of one block (trustless gateways, `?format=raw`).
pub(crate) const RAW_MEDIA_TYPE: &str = "application/vnd.ipld.raw";

/// Whether a response is a CAR, by its `Content-Type`.
pub(crate) fn is_car(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(CAR_MEDIA_TYPE))
}

/// Fetches the whole UnixFS file `root` for `sink`, every block verified against its id.
///
/// A first attempt asks `whole` for the file's CAR in one response (a source that answers with
/// plain bytes instead is read as such unless `car_only`); every block verified on the way is
/// kept in the store's resume state ([`PartialDag`](crate::partial::PartialDag)). When that state
/// already holds blocks (an earlier attempt from any source failed, or the process was killed),
/// the DAG is walked instead and only the blocks missing are asked of `block`, one by one: no
/// verified block is fetched twice.
pub(crate) async fn fetch_dag<W, B>(
    url: &str,
    root: crate::Cid,
    sink: &mut Incoming<'_>,
    car_only: bool,
    whole: impl FnOnce() -> W,
    block: impl Fn(crate::Cid) -> B,
) -> Result<()>
where
    W: Future<Output = Result<reqwest::Response>>,
    B: Future<Output = Result<Vec<u8>>>,
{
    let refused = |reason: String| Error::Car { source_uri: url.to_string(), reason };
    if sink.dag().is_some_and(|dag| dag != root) {
        return Err(refused(format!("the transfer is for {root}, not the file staged")));
    }
    let mut partial = sink.store().partial(root)?;
    let held = partial.as_ref().map_or(0, crate::partial::PartialDag::len);
    if held == 0 {
        let response = whole().await?;
        if !car_only && !is_car(&response) {
            // Plain bytes, checked against the sha256 as a whole: no blocks to keep.
            if let Some(partial) = partial {
                partial.complete()?;
            }
            return stream_body(response, url, sink).await;
        }
        stream_car(response, url, root, sink, partial.as_mut()).await?;
    } else {
        let partial = partial.as_mut().expect("blocks are held");
        info!(%root, held, "resuming: blocks verified earlier are not fetched again");
        let mut reader = crate::CarFileReader::new(root);
        let mut pieces = Vec::new();
        let mut fetched = 0usize;
        while let Some(cid) = reader.next_wanted(&mut pieces) {
            write_pieces(&mut pieces, sink).await?;
            let bytes = match partial.get(&cid)? {
                Some(bytes) => bytes,
                None => {
                    fetched += 1;
                    block(cid).await?
                }
            };
            reader.take_block(cid, &bytes, &mut pieces).map_err(refused)?;
            announce_file_size(&reader, sink)?;
            partial.append(&cid, &bytes)?;
        }
        reader.finish(&mut pieces).map_err(refused)?;
        write_pieces(&mut pieces, sink).await?;
        info!(%root, held, fetched, "resumed");
    }
    if let Some(partial) = partial {
        partial.complete()?;
    }
    Ok(())
}

/// Reads one block (at most [`MAX_BLOCK`](crate::MAX_BLOCK) bytes) from a successful
/// response.
pub(crate) async fn read_block(mut response: reqwest::Response, url: &str) -> Result<Vec<u8>> {
    let too_large = |size: u64| Error::Car {
        source_uri: url.to_string(),
        reason: format!("a block of {size} bytes is larger than the {} allowed", crate::MAX_BLOCK),
    };
    if let Some(length) = response.content_length().filter(|&l| l > crate::MAX_BLOCK as u64) {
        return Err(too_large(length));
    }
    let mut block = Vec::new();
    while let Some(bytes) =
        response.chunk().await.map_err(|cause| Error::Request { uri: url.to_string(), cause })?
    {
        block.extend_from_slice(&bytes);
        if block.len() > crate::MAX_BLOCK {
            return Err(too_large(block.len() as u64));
        }
    }
    Ok(block)
}

/// Streams the CAR of UnixFS file `root` from a response into `sink`, verifying every block
/// as it arrives ([`CarFileReader`](crate::CarFileReader)) and keeping each in `partial`; the
/// sink checks the whole file against its sha256 at the end as for any download.
async fn stream_car(
    mut response: reqwest::Response,
    url: &str,
    root: crate::Cid,
    sink: &mut Incoming<'_>,
    mut partial: Option<&mut crate::partial::PartialDag>,
) -> Result<()> {
    let refused = |reason: String| Error::Car { source_uri: url.to_string(), reason };
    let mut reader = crate::CarFileReader::new(root).keeping_blocks();
    let mut pieces = Vec::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|cause| refused(format!("the transfer failed: {}", error_chain(&cause))));
        let fed = match chunk {
            Ok(Some(bytes)) => reader.feed(&bytes, &mut pieces).map_err(refused),
            Ok(None) => break,
            Err(error) => Err(error),
        };
        // What was verified before a failure is kept for the next attempt.
        for (cid, block) in reader.take_verified() {
            if let Some(partial) = partial.as_deref_mut() {
                partial.append(&cid, &block)?;
            }
        }
        fed?;
        announce_file_size(&reader, sink)?;
        write_pieces(&mut pieces, sink).await?;
    }
    reader.finish(&mut pieces).map_err(refused)?;
    write_pieces(&mut pieces, sink).await
}

/// Announces the file's size to `sink` (progress, and a limit on what may come) as soon as the
/// reader has verified the root that records it.
fn announce_file_size(reader: &crate::CarFileReader, sink: &mut Incoming<'_>) -> Result<()> {
    match reader.file_size() {
        Some(size) if sink.announced().is_none() => sink.announce_total(size),
        _ => Ok(()),
    }
}

async fn write_pieces(pieces: &mut Vec<crate::Piece>, sink: &mut Incoming<'_>) -> Result<()> {
    for piece in pieces.drain(..) {
        match piece {
            crate::Piece::Bytes(bytes) => sink.write(&bytes).await?,
            crate::Piece::Repeat { offset, len } => sink.repeat(offset, len).await?,
        }
    }
    Ok(())
}

/// Sends a request and fails on a non-success status, naming it with the body's start.
pub(crate) async fn send_ok(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response> {
    let response =
        request.send().await.map_err(|cause| Error::Request { uri: url.to_string(), cause })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(Error::HttpStatus {
            uri: url.to_string(),
            status: status.as_u16(),
            body: snippet(&body),
        });
    }
    Ok(response)
}

/// The start of an error body, on one line.
fn snippet(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line
    }
}

pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Joins path segments onto a base URL whose own path may or may not end in `/`.
pub(crate) fn join_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().expect("http(s) URLs have a path");
        path.pop_if_empty();
        for segment in segments {
            for part in segment.split('/').filter(|p| !p.is_empty()) {
                path.push(part);
            }
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_under_base_paths() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            join_url(&base, &["ipfs", "bafy", "a/b"]).as_str(),
            "http://127.0.0.1:8080/ipfs/bafy/a/b"
        );
        let base = Url::parse("https://gw.example/prefix/").unwrap();
        assert_eq!(join_url(&base, &["tx"]).as_str(), "https://gw.example/prefix/tx");
    }

    #[test]
    fn only_public_hosts_pass() {
        let public = |url: &str| is_public_host(&Url::parse(url).unwrap());
        for url in ["https://store.example", "http://8.8.8.8:8081", "http://[2001:4860::1]/"] {
            assert!(public(url), "{url}");
        }
        for url in [
            "http://127.0.0.1:8081",
            "http://localhost:8081",
            "http://10.1.2.3",
            "http://192.168.0.7",
            "http://172.16.0.1",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1",
            "http://0.0.0.0:80",
            "http://[::1]:8081",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(!public(url), "{url}");
        }
    }

    #[test]
    fn snippets_are_short_single_lines() {
        assert_eq!(snippet("a\n  b\tc"), "a b c");
        assert_eq!(snippet(&"x".repeat(400)).chars().count(), 301);
    }
}
