//! Arweave: a transaction's data through a gateway (`GET {gateway}/{txid}`).

use reqwest::Url;

use crate::{
    Error, Incoming, Result, Uri,
    fetch::{Fetch, join_url, stream_response},
};

/// Reads `ar://TXID` from an Arweave gateway (arweave.net, or arlocal in tests).
#[derive(Debug, Clone)]
pub struct ArweaveGateway {
    base: Url,
    client: reqwest::Client,
}

impl ArweaveGateway {
    /// A gateway at `base` (e.g. `https://arweave.net`).
    pub fn new(base: Url) -> Self {
        Self::with_client(base, reqwest::Client::new())
    }

    /// A gateway at `base` sharing `client`.
    pub const fn with_client(base: Url, client: reqwest::Client) -> Self {
        Self { base, client }
    }

    /// The URL the data of `tx` is read from.
    pub fn data_url(&self, tx: &str) -> Url {
        join_url(&self.base, &[tx])
    }
}

impl Fetch for ArweaveGateway {
    async fn fetch(&self, uri: &Uri, sink: &mut Incoming<'_>) -> Result<()> {
        let Uri::Arweave { tx } = uri else {
            return Err(Error::UnsupportedUri { backend: "Arweave gateway", uri: uri.to_string() });
        };
        let url = self.data_url(tx);
        sink.set_source(format!("{uri} via {url}"));
        stream_response(self.client.get(url.clone()), url.as_str(), sink).await
    }
}
