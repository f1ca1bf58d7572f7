//! Plain `https://` and `http://` downloads.

use crate::{
    Error, Incoming, Result, Uri,
    fetch::{Fetch, stream_response},
};

/// GETs `http(s)://` URIs as they are.
#[derive(Debug, Clone, Default)]
pub struct HttpFetch {
    client: reqwest::Client,
}

impl HttpFetch {
    /// Uses `client` (its timeouts, its connection pool).
    pub const fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

impl Fetch for HttpFetch {
    async fn fetch(&self, uri: &Uri, sink: &mut Incoming<'_>) -> Result<()> {
        let Uri::Http(url) = uri else {
            return Err(Error::UnsupportedUri { backend: "HTTP", uri: uri.to_string() });
        };
        sink.set_source(url.as_str());
        stream_response(self.client.get(url.clone()), url.as_str(), sink).await
    }
}
