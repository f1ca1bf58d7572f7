//! A running dev chain: the chain, its JSON-RPC server and (optionally) the interval miner.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{
    DevAccount, DevnetConfig, Result, accounts::derive_dev_accounts, chain::Chain, rpc::Api, server,
};

/// A dev chain serving JSON-RPC on a local socket. Dropping it stops the chain, like
/// [`Devnet::shutdown`] without waiting.
///
/// Must be spawned inside a Tokio runtime; the server runs as tasks on that runtime.
#[derive(Debug)]
pub struct Devnet {
    local_addr: SocketAddr,
    accounts: Vec<DevAccount>,
    chain_id: u64,
    api: Arc<Api>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    miner: Option<JoinHandle<()>>,
}

impl Devnet {
    /// Opens (or creates) the chain, binds `config.host:config.port` and starts serving.
    pub async fn spawn(config: DevnetConfig) -> Result<Self> {
        config.validate()?;
        let accounts = derive_dev_accounts(&config.mnemonic, config.accounts)?;
        let addresses: Vec<_> = accounts.iter().map(|a| a.address).collect();
        let chain = Arc::new(Mutex::new(Chain::open(&config, &addresses)?));
        let api = Arc::new(Api::new(chain, accounts.clone()));
        let listener = TcpListener::bind((config.host, config.port)).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {}:{}: {e}", config.host, config.port),
            )
        })?;
        let local_addr = listener.local_addr()?;
        let router = server::router(api.clone(), config.max_body_bytes);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::error!(%err, "JSON-RPC server stopped");
            }
        });
        let miner = config.block_time.map(|interval| spawn_miner(api.clone(), interval));
        tracing::info!(%local_addr, chain_id = config.chain_id, "dev chain listening");
        Ok(Self {
            local_addr,
            accounts,
            chain_id: config.chain_id,
            api,
            stop: Some(stop),
            server: Some(server),
            miner,
        })
    }

    /// The address the server listens on (with the real port when 0 was asked for).
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://host:port`, for `ProviderBuilder::connect_http` or ethers' `JsonRpcProvider`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// `ws://host:port`, for subscriptions.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.local_addr)
    }

    /// The prefunded dev accounts with their signers, in derivation order.
    pub fn accounts(&self) -> &[DevAccount] {
        &self.accounts
    }

    /// The chain id.
    pub const fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Number of the latest block, without a JSON-RPC round trip.
    pub fn block_number(&self) -> u64 {
        self.api.chain().latest().number()
    }

    /// Stops serving and waits (at most a second) for the server to finish. The state
    /// database is closed when this returns, so the same `state_dir` can be reopened.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop_tasks();
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), server).await.is_err() {
                abort.abort();
            }
        }
        Ok(())
    }

    fn stop_tasks(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(miner) = self.miner.take() {
            miner.abort();
        }
        // Ends WebSocket sessions and releases the database even if connections linger.
        self.api.chain().close();
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.stop_tasks();
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn spawn_miner(api: Arc<Api>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(err) = api.chain().mine_pool(None) {
                tracing::error!(%err, "interval mining failed");
            }
        }
    })
}
