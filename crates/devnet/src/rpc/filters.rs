//! Polling filters (`eth_newFilter`, `eth_newBlockFilter`, `eth_getFilterChanges`).
//!
//! A filter remembers the last block it reported; each poll returns what was mined since.
//! Filters not polled for five minutes are dropped, as geth and Anvil do, so clients that
//! forget to uninstall cannot grow memory without bound.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use alloy::{
    primitives::U256,
    rpc::types::{Filter, FilterBlockOption},
};
use serde_json::Value;

use crate::{Error, Result, chain::Chain};

/// Idle filters are dropped after this long.
const FILTER_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
enum Kind {
    Logs(Box<Filter>),
    Blocks,
    PendingTransactions,
}

#[derive(Debug)]
struct Installed {
    kind: Kind,
    /// Last block number already reported.
    reported: u64,
    last_poll: Instant,
}

/// The installed filters of one node.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    next_id: u64,
    installed: HashMap<U256, Installed>,
}

impl Filters {
    fn install(&mut self, kind: Kind, chain: &Chain) -> U256 {
        self.evict();
        self.next_id += 1;
        let id = U256::from(self.next_id);
        let reported = match &kind {
            // A log filter starting in the past reports the old logs on the first poll.
            Kind::Logs(filter) => match filter.block_option {
                FilterBlockOption::Range { from_block: Some(from), .. } => chain
                    .resolve_number(from)
                    .map(|n| n.saturating_sub(1))
                    .unwrap_or_else(|_| chain.latest().number()),
                _ => chain.latest().number(),
            },
            _ => chain.latest().number(),
        };
        self.installed.insert(id, Installed { kind, reported, last_poll: Instant::now() });
        id
    }

    pub(crate) fn new_log_filter(&mut self, filter: Filter, chain: &Chain) -> U256 {
        self.install(Kind::Logs(Box::new(filter)), chain)
    }

    pub(crate) fn new_block_filter(&mut self, chain: &Chain) -> U256 {
        self.install(Kind::Blocks, chain)
    }

    pub(crate) fn new_pending_transaction_filter(&mut self, chain: &Chain) -> U256 {
        self.install(Kind::PendingTransactions, chain)
    }

    pub(crate) fn uninstall(&mut self, id: U256) -> bool {
        self.installed.remove(&id).is_some()
    }

    fn evict(&mut self) {
        self.installed.retain(|_, f| f.last_poll.elapsed() < FILTER_TIMEOUT);
    }

    /// What changed since the last poll: block hashes, logs, or (always empty, since
    /// transactions are mined as they arrive or within one block interval) pending hashes.
    pub(crate) fn changes(&mut self, id: U256, chain: &Chain) -> Result<Value> {
        self.evict();
        let filter = self
            .installed
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("filter not found: {id:#x}")))?;
        filter.last_poll = Instant::now();
        let latest = chain.latest().number();
        let from = filter.reported + 1;
        let value = match &filter.kind {
            Kind::Blocks => {
                let hashes: Vec<_> =
                    (from..=latest).filter_map(|n| chain.block(n).map(|b| b.hash)).collect();
                serde_json::to_value(hashes)
            }
            Kind::PendingTransactions => Ok(Value::Array(Vec::new())),
            Kind::Logs(log_filter) => {
                let logs = if from > latest {
                    Vec::new()
                } else {
                    let mut window = (**log_filter).clone();
                    if let FilterBlockOption::Range { to_block, .. } = log_filter.block_option {
                        let to = to_block
                            .map(|t| chain.resolve_number(t).unwrap_or(latest))
                            .unwrap_or(latest);
                        window.block_option = FilterBlockOption::Range {
                            from_block: Some(from.into()),
                            to_block: Some(to.min(latest).into()),
                        };
                        if to < from { Vec::new() } else { chain.logs(&window)? }
                    } else {
                        // A block-hash filter reports its block once.
                        if filter.reported >= latest { Vec::new() } else { chain.logs(&window)? }
                    }
                };
                serde_json::to_value(logs)
            }
        };
        filter.reported = latest;
        value.map_err(|e| Error::Evm(format!("cannot encode filter changes: {e}")))
    }

    /// All logs matching a log filter (`eth_getFilterLogs`).
    pub(crate) fn logs(&mut self, id: U256, chain: &Chain) -> Result<Value> {
        let filter = self
            .installed
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("filter not found: {id:#x}")))?;
        filter.last_poll = Instant::now();
        match &filter.kind {
            Kind::Logs(log_filter) => serde_json::to_value(chain.logs(log_filter)?)
                .map_err(|e| Error::Evm(format!("cannot encode logs: {e}"))),
            _ => Err(Error::InvalidParams(format!("filter {id:#x} is not a log filter"))),
        }
    }
}
