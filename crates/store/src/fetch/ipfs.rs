//! IPFS, through an HTTP gateway or a Kubo-compatible RPC API.

use std::path::Path;

use reqwest::{
    Url,
    header::ACCEPT,
    multipart::{Form, Part},
};
use serde::Deserialize;

use crate::{
    Cid, Codec, Error, Incoming, Result, Uri,
    fetch::{
        CAR_MEDIA_TYPE, Fetch, RAW_MEDIA_TYPE, fetch_dag, join_url, read_block, send_ok, snippet,
        stream_response,
    },
};

/// The UnixFS root a URI names, when it names a whole multi-block file (`ipfs://bafybei…`, no
/// path): such a file is fetched as a CAR and checked block by block.
fn dag_root(cid: &str, path: &str) -> Option<Cid> {
    cid.parse::<Cid>().ok().filter(|cid| path.is_empty() && cid.codec() == Codec::DagPb)
}

/// Reads `ipfs://CID[/path]` from a gateway: `GET {gateway}/ipfs/{cid}/{path}`.
///
/// A whole UnixFS file (`bafybei…`) is asked for as a CAR (the trustless gateway protocol:
/// `?format=car`, `Accept: application/vnd.ipld.car; order=dfs; dups=y`) and every block is
/// checked against its id as it arrives; a gateway that answers with plain bytes instead is
/// read as such. Either way the file is checked against the expected sha256, so a gateway
/// needs no trust.
#[derive(Debug, Clone)]
pub struct IpfsGateway {
    base: Url,
    client: reqwest::Client,
}

impl IpfsGateway {
    /// A gateway at `base` (e.g. `https://ipfs.io` or `http://127.0.0.1:8080`).
    pub fn new(base: Url) -> Self {
        Self::with_client(base, reqwest::Client::new())
    }

    /// A gateway at `base` sharing `client`.
    pub const fn with_client(base: Url, client: reqwest::Client) -> Self {
        Self { base, client }
    }

    /// Where the gateway is.
    pub const fn base(&self) -> &Url {
        &self.base
    }
}

impl Fetch for IpfsGateway {
    async fn fetch(&self, uri: &Uri, sink: &mut Incoming<'_>) -> Result<()> {
        let Uri::Ipfs { cid, path } = uri else {
            return Err(Error::UnsupportedUri { backend: "IPFS gateway", uri: uri.to_string() });
        };
        let mut url = join_url(&self.base, &["ipfs", cid, path]);
        let Some(root) = dag_root(cid, path) else {
            sink.set_source(format!("{uri} via {url}"));
            return stream_response(self.client.get(url.clone()), url.as_str(), sink).await;
        };
        url.query_pairs_mut().append_pair("format", "car");
        sink.set_source(format!("{uri} via {url}"));
        let accept = format!("{CAR_MEDIA_TYPE}; version=1; order=dfs; dups=y");
        let whole = || send_ok(self.client.get(url.clone()).header(ACCEPT, accept), url.as_str());
        let block = |cid: Cid| async move {
            let mut url = join_url(&self.base, &["ipfs", &cid.to_string()]);
            url.query_pairs_mut().append_pair("format", "raw");
            let request = self.client.get(url.clone()).header(ACCEPT, RAW_MEDIA_TYPE);
            read_block(send_ok(request, url.as_str()).await?, url.as_str()).await
        };
        fetch_dag(url.as_str(), root, sink, false, whole, block).await
    }
}

/// The Kubo RPC API (`/api/v0/…`, also served by js-ipfs): reads a whole UnixFS file as the
/// CAR of `dag/export` (every block checked against its id as it arrives), anything else with
/// `cat`; publishes with `add`.
#[derive(Debug, Clone)]
pub struct KuboRpc {
    api: Url,
    client: reqwest::Client,
}

/// What `add` answers, one JSON object per added file.
#[derive(Debug, Deserialize)]
struct AddResponse {
    #[serde(rename = "Hash")]
    hash: String,
}

impl KuboRpc {
    /// An RPC API at `api` (e.g. `http://127.0.0.1:5001`).
    pub fn new(api: Url) -> Self {
        Self::with_client(api, reqwest::Client::new())
    }

    /// An RPC API at `api` sharing `client`.
    pub const fn with_client(api: Url, client: reqwest::Client) -> Self {
        Self { api, client }
    }

    /// Where the API is.
    pub const fn api(&self) -> &Url {
        &self.api
    }

    fn endpoint(&self, command: &str) -> Url {
        join_url(&self.api, &["api", "v0", command])
    }

    /// Adds and pins `bytes`; returns the CID IPFS assigned.
    ///
    /// Uses CIDv1 with raw leaves, so content that fits in one IPFS block (256 KiB) gets exactly
    /// its [`ContentId`](crate::ContentId) string; larger content gets a dag-pb root CID, which
    /// is what an `ipfs://` URI must then name.
    pub async fn add_bytes(&self, bytes: Vec<u8>) -> Result<String> {
        let len = bytes.len() as u64;
        self.add_part(Part::stream_with_length(bytes, len)).await
    }

    /// Adds and pins a file, streaming it from disk; see [`add_bytes`](Self::add_bytes).
    pub async fn add_file(&self, path: &Path) -> Result<String> {
        let file = tokio::fs::File::open(path).await.map_err(Error::io("open", path))?;
        let len = file.metadata().await.map_err(Error::io("stat", path))?.len();
        self.add_part(Part::stream_with_length(file, len)).await
    }

    async fn add_part(&self, part: Part) -> Result<String> {
        let mut url = self.endpoint("add");
        url.query_pairs_mut()
            .append_pair("cid-version", "1")
            // js-ipfs prints CIDv1 in base58btc unless told otherwise; Kubo defaults to base32.
            .append_pair("cid-base", "base32")
            .append_pair("raw-leaves", "true")
            .append_pair("pin", "true");
        // js-ipfs rejects parts without a content type.
        let part = part
            .file_name("data")
            .mime_str("application/octet-stream")
            .map_err(|cause| Error::Request { uri: url.to_string(), cause })?;
        let form = Form::new().part("file", part);
        let response = self
            .client
            .post(url.clone())
            .multipart(form)
            .send()
            .await
            .map_err(|cause| Error::Request { uri: url.to_string(), cause })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|cause| Error::Request { uri: url.to_string(), cause })?;
        if !status.is_success() {
            return Err(Error::HttpStatus {
                uri: url.to_string(),
                status: status.as_u16(),
                body: snippet(&body),
            });
        }
        // One JSON object per line; with a single file the last one is the file itself.
        let last = body.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or_default();
        let added: AddResponse = serde_json::from_str(last).map_err(|e| Error::IpfsRpc {
            uri: url.to_string(),
            message: format!("unexpected add response {:?}: {e}", snippet(&body)),
        })?;
        Ok(added.hash)
    }
}

impl Fetch for KuboRpc {
    async fn fetch(&self, uri: &Uri, sink: &mut Incoming<'_>) -> Result<()> {
        let Uri::Ipfs { cid, path } = uri else {
            return Err(Error::UnsupportedUri { backend: "IPFS RPC", uri: uri.to_string() });
        };
        if let Some(root) = dag_root(cid, path) {
            let mut url = self.endpoint("dag/export");
            url.query_pairs_mut().append_pair("arg", cid);
            sink.set_source(format!("{uri} via {url}"));
            let whole = || send_ok(self.client.post(url.clone()), url.as_str());
            let block = |cid: Cid| async move {
                let mut url = self.endpoint("block/get");
                url.query_pairs_mut().append_pair("arg", &cid.to_string());
                read_block(
                    send_ok(self.client.post(url.clone()), url.as_str()).await?,
                    url.as_str(),
                )
                .await
            };
            return fetch_dag(url.as_str(), root, sink, true, whole, block).await;
        }
        let mut url = self.endpoint("cat");
        let arg = if path.is_empty() { cid.clone() } else { format!("{cid}/{path}") };
        url.query_pairs_mut().append_pair("arg", &arg);
        sink.set_source(format!("{uri} via {url}"));
        stream_response(self.client.post(url.clone()), url.as_str(), sink).await
    }
}
