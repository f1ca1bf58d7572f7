//! The chain backend: state, blocks, mining, calls. Knows nothing of JSON-RPC or sockets.
//!
//! One [`Chain`] owns the world state (a revm [`CacheDB`]), every mined block with its
//! transactions and receipts, the pool of waiting transactions (interval mining only), the clock
//! and the snapshots. It is used behind one mutex: execution is short and sequential, as on a
//! real node, so no finer locking is worth its complexity.

pub(crate) mod exec;
pub(crate) mod randao;
pub(crate) mod store;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use alloy::consensus::transaction::Recovered;
use alloy::{
    consensus::{
        EMPTY_OMMER_ROOT_HASH, Header, Receipt, ReceiptEnvelope, Transaction as _, TxEnvelope,
        TxType, constants::EMPTY_WITHDRAWALS, proofs,
    },
    eips::{BlockId, BlockNumberOrTag, eip1559::BaseFeeParams, eip7685::EMPTY_REQUESTS_HASH},
    primitives::{Address, B64, B256, Bloom, Bytes, TxKind, U256, keccak256},
    rpc::types::{FeeHistory, Filter, FilterBlockOption, TransactionRequest},
    trie::{EMPTY_ROOT_HASH, TrieAccount, root::state_root_unhashed, root::storage_root_unhashed},
};
use revm::{
    DatabaseCommit,
    database::{AccountState, CacheDB, EmptyDB},
    primitives::KECCAK_EMPTY,
    state::{AccountInfo, Bytecode},
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::{
    DevnetConfig, Error, Hardfork, Result,
    chain::{
        exec::{BlockContext, EvmRules, Mode},
        randao::Randao,
        store::{StateChanges, Store},
    },
    config::INITIAL_BASE_FEE,
};

/// A transaction as mined: the signed envelope, its sender and its receipt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MinedTx {
    pub(crate) envelope: TxEnvelope,
    pub(crate) sender: Address,
    pub(crate) receipt: ReceiptEnvelope,
    pub(crate) gas_used: u64,
    pub(crate) effective_gas_price: u128,
    pub(crate) contract_address: Option<Address>,
}

impl MinedTx {
    pub(crate) fn hash(&self) -> B256 {
        *self.envelope.tx_hash()
    }
}

/// A mined block: the consensus header (hashed for real), and its transactions in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MinedBlock {
    pub(crate) header: Header,
    pub(crate) hash: B256,
    pub(crate) txs: Vec<MinedTx>,
}

impl MinedBlock {
    pub(crate) fn number(&self) -> u64 {
        self.header.number
    }
}

/// Everything `evm_revert` restores. Not the prevrandao stream: blocks mined again after a
/// revert get fresh values, otherwise a snapshot and revert would reveal the next block's.
#[derive(Debug)]
struct Snapshot {
    state: CacheDB<EmptyDB>,
    storage_roots: HashMap<Address, B256>,
    block_count: usize,
    time_offset: i64,
    next_timestamp: Option<u64>,
    pool: Vec<Recovered<TxEnvelope>>,
}

/// The chain. See the module docs.
#[derive(Debug)]
pub(crate) struct Chain {
    rules: EvmRules,
    gas_limit: u64,
    state: CacheDB<EmptyDB>,
    /// Storage root per account, refreshed for the accounts a block touches.
    storage_roots: HashMap<Address, B256>,
    blocks: Vec<Arc<MinedBlock>>,
    block_numbers: HashMap<B256, u64>,
    tx_locations: HashMap<B256, (u64, usize)>,
    pool: Vec<Recovered<TxEnvelope>>,
    auto_mine: bool,
    time_offset: i64,
    next_timestamp: Option<u64>,
    snapshots: BTreeMap<u64, Snapshot>,
    next_snapshot_id: u64,
    store: Option<Store>,
    heads: broadcast::Sender<Arc<MinedBlock>>,
    /// Secret source of each mined block's prevrandao; persisted in the store's meta.
    randao: Randao,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Suggested priority fee (1 gwei), as geth and Hardhat suggest on an idle chain.
pub(crate) const SUGGESTED_PRIORITY_FEE: u128 = 1_000_000_000;

/// The deterministic deployment proxy (github.com/Arachnid/deterministic-deployment-proxy):
/// called with `salt ‖ initcode`, it CREATE2s the contract and returns its 20-byte address.
pub(crate) const DETERMINISTIC_DEPLOYER: Address =
    alloy::primitives::address!("4e59b44847b379578588920ca78fbf26c0b4956c");

/// Its runtime code.
const DETERMINISTIC_DEPLOYER_CODE: [u8; 69] = alloy::primitives::hex!(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe03601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3"
);

impl Chain {
    /// Opens the chain: loads it from `config.state_dir` when that holds one, otherwise creates
    /// the genesis block with the dev accounts funded.
    pub(crate) fn open(config: &DevnetConfig, funded: &[Address]) -> Result<Self> {
        let rules = EvmRules { chain_id: config.chain_id, hardfork: config.hardfork };
        let store = config.state_dir.as_deref().map(Store::open).transpose()?;
        let (heads, _) = broadcast::channel(1024);
        let mut chain = Self {
            rules,
            gas_limit: config.gas_limit,
            state: CacheDB::default(),
            storage_roots: HashMap::new(),
            blocks: Vec::new(),
            block_numbers: HashMap::new(),
            tx_locations: HashMap::new(),
            pool: Vec::new(),
            auto_mine: config.block_time.is_none(),
            time_offset: 0,
            next_timestamp: None,
            snapshots: BTreeMap::new(),
            next_snapshot_id: 1,
            store,
            heads,
            randao: Randao::from_os()?,
        };
        if let Some(loaded) = chain.store.as_ref().map(Store::load).transpose()?.flatten() {
            if loaded.meta.chain_id != config.chain_id {
                return Err(Error::Config(format!(
                    "state dir holds chain {}, but chain id {} was asked for",
                    loaded.meta.chain_id, config.chain_id
                )));
            }
            chain.time_offset = loaded.meta.time_offset;
            match loaded.meta.randao {
                Some(state) => chain.randao = Randao::restore(state),
                // Written before the secret existed: keep the fresh one; the next block stores it.
                None => tracing::info!("state dir has no prevrandao secret; starting a new one"),
            }
            for (address, info) in loaded.accounts {
                chain.state.insert_account_info(address, info);
            }
            for (address, slot, value) in loaded.storage {
                chain
                    .state
                    .insert_account_storage(address, slot, value)
                    .map_err(|e| Error::Store(e.to_string()))?;
            }
            for block in loaded.blocks {
                chain.index_block(Arc::new(block));
            }
            let addresses: Vec<Address> = chain.state.cache.accounts.keys().copied().collect();
            chain.refresh_storage_roots(addresses.iter());
            tracing::info!(blocks = chain.blocks.len(), "loaded chain from state dir");
            return Ok(chain);
        }
        for address in funded {
            chain.state.insert_account_info(
                *address,
                AccountInfo { balance: config.balance, ..Default::default() },
            );
        }
        // The standard deterministic CREATE2 deployer, as on every public chain (and anvil), so
        // contracts deployed through it get the same address here as anywhere.
        let code = Bytecode::new_raw(Bytes::from_static(&DETERMINISTIC_DEPLOYER_CODE));
        chain.state.insert_account_info(
            DETERMINISTIC_DEPLOYER,
            AccountInfo { code_hash: code.hash_slow(), code: Some(code), ..Default::default() },
        );
        let genesis = chain.build_header(None, now_secs(), 0, &[], &[]);
        let hash = genesis.hash_slow();
        let block = Arc::new(MinedBlock { header: genesis, hash, txs: Vec::new() });
        if let Some(store) = &chain.store {
            let changes = StateChanges::full(&chain.state);
            store.write_block(&block, &changes, &chain.meta())?;
        }
        chain.index_block(block);
        Ok(chain)
    }

    fn meta(&self) -> store::Meta {
        store::Meta {
            chain_id: self.rules.chain_id,
            time_offset: self.time_offset,
            randao: Some(self.randao.state()),
        }
    }

    fn index_block(&mut self, block: Arc<MinedBlock>) {
        let number = block.number();
        self.block_numbers.insert(block.hash, number);
        for (index, tx) in block.txs.iter().enumerate() {
            self.tx_locations.insert(tx.hash(), (number, index));
        }
        self.state.cache.block_hashes.insert(U256::from(number), block.hash);
        self.blocks.push(block);
    }

    /// Subscribes to every block mined from now on.
    pub(crate) fn subscribe_heads(&self) -> broadcast::Receiver<Arc<MinedBlock>> {
        self.heads.subscribe()
    }

    pub(crate) const fn chain_id(&self) -> u64 {
        self.rules.chain_id
    }

    pub(crate) const fn hardfork(&self) -> Hardfork {
        self.rules.hardfork
    }

    pub(crate) fn latest(&self) -> &Arc<MinedBlock> {
        self.blocks.last().expect("the chain always holds its genesis block")
    }

    pub(crate) fn block(&self, number: u64) -> Option<&Arc<MinedBlock>> {
        usize::try_from(number).ok().and_then(|n| self.blocks.get(n))
    }

    pub(crate) fn block_by_hash(&self, hash: &B256) -> Option<&Arc<MinedBlock>> {
        self.block_numbers.get(hash).and_then(|n| self.block(*n))
    }

    /// The block and index of a mined transaction.
    pub(crate) fn tx_location(&self, hash: &B256) -> Option<(&Arc<MinedBlock>, usize)> {
        let (number, index) = self.tx_locations.get(hash)?;
        Some((self.block(*number)?, *index))
    }

    /// A transaction waiting in the pool (interval mining).
    pub(crate) fn pending_tx(&self, hash: &B256) -> Option<&Recovered<TxEnvelope>> {
        self.pool.iter().find(|tx| tx.tx_hash() == hash)
    }

    /// Resolves a tag or number to a mined block number.
    pub(crate) fn resolve_number(&self, tag: BlockNumberOrTag) -> Result<u64> {
        let latest = self.latest().number();
        match tag {
            BlockNumberOrTag::Earliest => Ok(0),
            BlockNumberOrTag::Number(n) if n <= latest => Ok(n),
            BlockNumberOrTag::Number(n) => {
                Err(Error::UnknownBlock(format!("block {n} is beyond the latest block {latest}")))
            }
            _ => Ok(latest),
        }
    }

    pub(crate) fn resolve_block(&self, id: BlockId) -> Result<&Arc<MinedBlock>> {
        match id {
            BlockId::Hash(hash) => self.block_by_hash(&hash.block_hash).ok_or_else(|| {
                Error::UnknownBlock(format!("no block with hash {}", hash.block_hash))
            }),
            BlockId::Number(tag) => {
                let number = self.resolve_number(tag)?;
                Ok(self.block(number).expect("resolved numbers are mined"))
            }
        }
    }

    /// State is kept for the latest block only; older blocks are refused with a clear error.
    fn check_state_block(&self, id: Option<BlockId>) -> Result<()> {
        let Some(id) = id else { return Ok(()) };
        let latest = self.latest().number();
        let requested = self.resolve_block(id)?.number();
        if requested != latest {
            return Err(Error::HistoricalState { requested, latest });
        }
        Ok(())
    }

    fn account(&self, address: &Address) -> Option<&AccountInfo> {
        self.state
            .cache
            .accounts
            .get(address)
            .filter(|acc| !matches!(acc.account_state, AccountState::NotExisting))
            .map(|acc| &acc.info)
    }

    pub(crate) fn balance(&self, address: Address, block: Option<BlockId>) -> Result<U256> {
        self.check_state_block(block)?;
        Ok(self.account(&address).map(|a| a.balance).unwrap_or_default())
    }

    /// The account nonce; for the `pending` tag it counts the pool too.
    pub(crate) fn nonce(&self, address: Address, block: Option<BlockId>) -> Result<u64> {
        if matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
            return Ok(self.pending_nonce(address));
        }
        self.check_state_block(block)?;
        Ok(self.account(&address).map(|a| a.nonce).unwrap_or_default())
    }

    pub(crate) fn pending_nonce(&self, address: Address) -> u64 {
        let state = self.account(&address).map(|a| a.nonce).unwrap_or_default();
        let queued = self.pool.iter().filter(|tx| tx.signer() == address).map(|tx| tx.nonce() + 1);
        queued.max().unwrap_or(state).max(state)
    }

    pub(crate) fn code(&self, address: Address, block: Option<BlockId>) -> Result<Bytes> {
        self.check_state_block(block)?;
        let Some(info) = self.account(&address) else { return Ok(Bytes::new()) };
        let code =
            info.code.clone().or_else(|| self.state.cache.contracts.get(&info.code_hash).cloned());
        Ok(code.map(|c| c.original_bytes()).unwrap_or_default())
    }

    pub(crate) fn storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> Result<B256> {
        self.check_state_block(block)?;
        let value = self
            .state
            .cache
            .accounts
            .get(&address)
            .and_then(|acc| acc.storage.get(&slot).copied())
            .unwrap_or_default();
        Ok(B256::from(value))
    }

    /// Base fee of the next block, from the latest header by the EIP-1559 rule.
    pub(crate) fn next_base_fee(&self) -> u64 {
        if !self.rules.hardfork.is_active(Hardfork::London) {
            return 0;
        }
        self.latest()
            .header
            .next_block_base_fee(BaseFeeParams::ethereum())
            .unwrap_or(INITIAL_BASE_FEE)
    }

    pub(crate) fn gas_price(&self) -> u128 {
        u128::from(self.next_base_fee()) + SUGGESTED_PRIORITY_FEE
    }

    /// The context of the next block, with the given prevrandao.
    fn next_block_context(&self, timestamp: u64, prevrandao: B256) -> BlockContext {
        BlockContext {
            number: self.latest().number() + 1,
            timestamp,
            base_fee: self.next_base_fee(),
            gas_limit: self.gas_limit,
            prevrandao,
            beneficiary: Address::ZERO,
        }
    }

    fn block_context_for(&self, id: Option<BlockId>) -> Result<BlockContext> {
        match id {
            None | Some(BlockId::Number(BlockNumberOrTag::Pending)) => {
                // A stand-in, not the value the next block will get: that one is secret until
                // the block is mined, or a call could read it.
                let prevrandao = keccak256(self.latest().hash);
                Ok(self.next_block_context(self.peek_timestamp(), prevrandao))
            }
            Some(id) => {
                self.check_state_block(Some(id))?;
                let header = &self.latest().header;
                Ok(BlockContext {
                    number: header.number,
                    timestamp: header.timestamp,
                    base_fee: header.base_fee_per_gas.unwrap_or_default(),
                    gas_limit: header.gas_limit,
                    prevrandao: header.mix_hash,
                    beneficiary: header.beneficiary,
                })
            }
        }
    }

    /// The timestamp the next block will get, without consuming `evm_setNextBlockTimestamp`.
    fn peek_timestamp(&self) -> u64 {
        if let Some(ts) = self.next_timestamp {
            return ts;
        }
        let clock = now_secs().saturating_add_signed(self.time_offset);
        clock.max(self.latest().header.timestamp)
    }

    /// `eth_call`: runs on a throwaway overlay of the latest state.
    pub(crate) fn call(&self, req: &TransactionRequest, block: Option<BlockId>) -> Result<Bytes> {
        let ctx = self.block_context_for(block)?;
        let result = self.simulate(req, &ctx, req.gas.unwrap_or(ctx.gas_limit))?;
        exec::call_output(result)
    }

    fn simulate(
        &self,
        req: &TransactionRequest,
        ctx: &BlockContext,
        gas: u64,
    ) -> Result<revm::context::result::ExecutionResult> {
        let from = req.from.unwrap_or_default();
        let nonce = req.nonce.unwrap_or_else(|| self.pending_nonce(from));
        let mut env = exec::tx_env_from_request(req, gas, self.rules.chain_id, nonce);
        env.gas_limit = gas;
        let overlay = CacheDB::new(&self.state);
        Ok(exec::execute(overlay, self.rules, ctx, env, Mode::Call)?.result)
    }

    /// `eth_estimateGas`: the smallest gas limit with which the call succeeds, by binary search
    /// as geth does. A call that fails at the cap returns the revert or halt error.
    pub(crate) fn estimate_gas(
        &self,
        req: &TransactionRequest,
        block: Option<BlockId>,
    ) -> Result<u64> {
        let ctx = self.block_context_for(block)?;
        let cap = req.gas.unwrap_or(ctx.gas_limit);
        let spent = match self.simulate(req, &ctx, cap)? {
            revm::context::result::ExecutionResult::Success { gas, .. } => gas.total_gas_spent(),
            revm::context::result::ExecutionResult::Revert { output, .. } => {
                return Err(exec::revert_error(output));
            }
            revm::context::result::ExecutionResult::Halt { reason, .. } => {
                return Err(exec::halt_error(reason));
            }
        };
        let succeeds = |gas: u64| -> Result<bool> {
            match self.simulate(req, &ctx, gas) {
                Ok(result) => Ok(result.is_success()),
                Err(Error::IntrinsicGasTooLow { .. }) => Ok(false),
                Err(err) => Err(err),
            }
        };
        // Gas spent before refunds is a lower bound; the 63/64 rule can require more.
        let mut lo = spent.saturating_sub(1);
        let mut hi = cap;
        let optimistic = (spent + 2_300).saturating_mul(64) / 63;
        if optimistic < hi && succeeds(optimistic)? {
            hi = optimistic;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if succeeds(mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi)
    }

    /// Accepts a signed transaction: with auto-mining it is mined into its own block now and
    /// any validation error is returned; with interval mining it is checked and queued.
    pub(crate) fn submit(&mut self, tx: Recovered<TxEnvelope>) -> Result<B256> {
        let hash = *tx.tx_hash();
        if let Some(chain_id) = tx.chain_id()
            && chain_id != self.rules.chain_id
        {
            return Err(Error::ChainId { got: chain_id, expected: self.rules.chain_id });
        }
        if self.tx_locations.contains_key(&hash) || self.pending_tx(&hash).is_some() {
            return Err(Error::InvalidTransaction(format!("already known: {hash}")));
        }
        if self.auto_mine {
            self.mine_block(vec![tx], None, true)?;
        } else {
            self.precheck(&tx)?;
            self.pool.push(tx);
        }
        Ok(hash)
    }

    /// The checks a pool does before queueing: nonce, gas limit, funds.
    fn precheck(&self, tx: &Recovered<TxEnvelope>) -> Result<()> {
        let sender = tx.signer();
        let (state_nonce, balance) =
            self.account(&sender).map(|a| (a.nonce, a.balance)).unwrap_or_default();
        if tx.nonce() < state_nonce {
            return Err(Error::NonceTooLow { tx: tx.nonce(), state: state_nonce });
        }
        if tx.gas_limit() > self.gas_limit {
            return Err(Error::GasLimitTooHigh {
                gas_limit: tx.gas_limit(),
                block_gas_limit: self.gas_limit,
            });
        }
        let intrinsic = 21_000u64;
        if tx.gas_limit() < intrinsic {
            return Err(Error::IntrinsicGasTooLow { gas_limit: tx.gas_limit(), intrinsic });
        }
        let cost = U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value();
        if cost > balance {
            return Err(Error::InsufficientFunds { address: sender, balance, cost });
        }
        Ok(())
    }

    /// Mines the pool (possibly empty) into one block.
    pub(crate) fn mine_pool(&mut self, timestamp: Option<u64>) -> Result<Arc<MinedBlock>> {
        let mut txs = std::mem::take(&mut self.pool);
        // Per sender in nonce order, senders in arrival order.
        txs.sort_by_key(|tx| tx.nonce());
        self.mine_block(txs, timestamp, false)
    }

    fn take_timestamp(&mut self, explicit: Option<u64>) -> u64 {
        let ts = explicit
            .or_else(|| self.next_timestamp.take())
            .unwrap_or_else(|| self.peek_timestamp());
        if explicit.is_some() || self.next_timestamp.is_none() {
            // A block at a chosen time moves the clock: later blocks continue from it.
            let wall = i64::try_from(now_secs()).unwrap_or(i64::MAX);
            let chosen = i64::try_from(ts).unwrap_or(i64::MAX);
            if chosen - wall > self.time_offset {
                self.time_offset = chosen - wall;
            }
        }
        ts
    }

    /// Executes `txs` in order into a new block. With `strict`, the first invalid transaction
    /// aborts the block and its error is returned; otherwise invalid ones are dropped.
    fn mine_block(
        &mut self,
        txs: Vec<Recovered<TxEnvelope>>,
        timestamp: Option<u64>,
        strict: bool,
    ) -> Result<Arc<MinedBlock>> {
        let saved_next = self.next_timestamp;
        let saved_offset = self.time_offset;
        let timestamp = self.take_timestamp(timestamp);
        // Drawn even if the block is then refused: the value was not revealed, and a stream
        // only moves forward.
        let prevrandao = self.randao.next_value();
        let ctx = self.next_block_context(timestamp, prevrandao);
        let mut mined = Vec::with_capacity(txs.len());
        let mut touched: HashMap<Address, HashSet<U256>> = HashMap::new();
        let mut new_code: Vec<(B256, Bytecode)> = Vec::new();
        let mut cumulative_gas = 0u64;
        for tx in txs {
            let sender = tx.signer();
            if cumulative_gas + tx.gas_limit() > ctx.gas_limit {
                if strict {
                    return Err(Error::GasLimitTooHigh {
                        gas_limit: tx.gas_limit(),
                        block_gas_limit: ctx.gas_limit,
                    });
                }
                // Does not fit: back to the pool for the next block.
                self.pool.push(tx);
                continue;
            }
            let env = exec::tx_env_from_envelope(tx.inner(), sender);
            let outcome = exec::execute(&mut self.state, self.rules, &ctx, env, Mode::Transact);
            let result_and_state = match outcome {
                Ok(r) => r,
                Err(err) => {
                    let err = match err {
                        Error::InsufficientFunds { balance, cost, .. } => {
                            Error::InsufficientFunds { address: sender, balance, cost }
                        }
                        other => other,
                    };
                    if strict {
                        self.next_timestamp = saved_next;
                        self.time_offset = saved_offset;
                        return Err(err);
                    }
                    tracing::warn!(tx = %tx.tx_hash(), %err, "dropping invalid pooled transaction");
                    continue;
                }
            };
            for (address, account) in &result_and_state.state {
                if !account.is_touched() {
                    continue;
                }
                let slots = touched.entry(*address).or_default();
                slots.extend(account.changed_storage_slots().map(|(slot, _)| *slot));
                if account.is_created()
                    && let Some(code) = &account.info.code
                {
                    new_code.push((account.info.code_hash, code.clone()));
                }
            }
            let result = result_and_state.result;
            self.state.commit(result_and_state.state);
            let gas_used = result.tx_gas_used();
            cumulative_gas += gas_used;
            let contract_address = match tx.kind() {
                TxKind::Create => Some(sender.create(tx.nonce())),
                TxKind::Call(_) => None,
            };
            let receipt = Receipt {
                status: result.is_success().into(),
                cumulative_gas_used: cumulative_gas,
                logs: result.into_logs(),
            };
            let ty: TxType = tx.tx_type();
            let effective_gas_price = tx.effective_gas_price(Some(ctx.base_fee));
            mined.push(MinedTx {
                envelope: tx.into_inner(),
                sender,
                receipt: ReceiptEnvelope::from_typed(ty, receipt.with_bloom()),
                gas_used,
                effective_gas_price,
                contract_address,
            });
        }
        self.refresh_storage_roots(touched.keys());
        let envelopes: Vec<&TxEnvelope> = mined.iter().map(|m| &m.envelope).collect();
        let receipts: Vec<&ReceiptEnvelope> = mined.iter().map(|m| &m.receipt).collect();
        let parent = Some(self.latest().clone());
        let mut header =
            self.build_header(parent.as_deref(), timestamp, cumulative_gas, &envelopes, &receipts);
        header.mix_hash = ctx.prevrandao;
        let hash = header.hash_slow();
        let block = Arc::new(MinedBlock { header, hash, txs: mined });
        if let Some(store) = &self.store {
            let changes = StateChanges::collect(&self.state, &touched, new_code);
            store.write_block(&block, &changes, &self.meta())?;
        }
        self.index_block(block.clone());
        // No receiver is fine: nobody subscribed.
        let _ = self.heads.send(block.clone());
        tracing::debug!(number = block.number(), txs = block.txs.len(), "mined block");
        Ok(block)
    }

    fn refresh_storage_roots<'a>(&mut self, addresses: impl Iterator<Item = &'a Address>) {
        for address in addresses {
            let root = match self.state.cache.accounts.get(address) {
                Some(acc) if !acc.storage.is_empty() => storage_root_unhashed(
                    acc.storage
                        .iter()
                        .filter(|(_, v)| !v.is_zero())
                        .map(|(k, v)| (B256::from(*k), *v)),
                ),
                _ => EMPTY_ROOT_HASH,
            };
            self.storage_roots.insert(*address, root);
        }
    }

    fn state_root(&self) -> B256 {
        let accounts = self.state.cache.accounts.iter().filter_map(|(address, acc)| {
            if matches!(acc.account_state, AccountState::NotExisting) {
                return None;
            }
            let trie_account = TrieAccount {
                nonce: acc.info.nonce,
                balance: acc.info.balance,
                storage_root: self.storage_roots.get(address).copied().unwrap_or(EMPTY_ROOT_HASH),
                code_hash: if acc.info.code_hash == B256::ZERO {
                    KECCAK_EMPTY
                } else {
                    acc.info.code_hash
                },
            };
            Some((*address, trie_account))
        });
        state_root_unhashed(accounts)
    }

    fn build_header(
        &self,
        parent: Option<&MinedBlock>,
        timestamp: u64,
        gas_used: u64,
        txs: &[&TxEnvelope],
        receipts: &[&ReceiptEnvelope],
    ) -> Header {
        let fork = self.rules.hardfork;
        let logs_bloom = receipts.iter().fold(Bloom::ZERO, |mut bloom, r| {
            bloom.accrue_bloom(r.logs_bloom());
            bloom
        });
        let base_fee = match parent {
            None => INITIAL_BASE_FEE,
            Some(_) => self.next_base_fee(),
        };
        let parent_hash = parent.map(|p| p.hash).unwrap_or_default();
        let txs: Vec<TxEnvelope> = txs.iter().map(|t| (*t).clone()).collect();
        let receipts: Vec<ReceiptEnvelope> = receipts.iter().map(|r| (*r).clone()).collect();
        Header {
            parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: Address::ZERO,
            state_root: self.state_root(),
            transactions_root: proofs::calculate_transaction_root(&txs),
            receipts_root: proofs::calculate_receipt_root(&receipts),
            logs_bloom,
            difficulty: U256::ZERO,
            number: parent.map(|p| p.number() + 1).unwrap_or_default(),
            gas_limit: self.gas_limit,
            gas_used,
            timestamp,
            extra_data: Bytes::new(),
            mix_hash: keccak256(parent_hash),
            nonce: B64::ZERO,
            base_fee_per_gas: fork.is_active(Hardfork::London).then_some(base_fee),
            withdrawals_root: fork.is_active(Hardfork::Shanghai).then_some(EMPTY_WITHDRAWALS),
            blob_gas_used: fork.is_active(Hardfork::Cancun).then_some(0),
            excess_blob_gas: fork.is_active(Hardfork::Cancun).then_some(0),
            parent_beacon_block_root: fork.is_active(Hardfork::Cancun).then_some(B256::ZERO),
            requests_hash: fork.is_active(Hardfork::Prague).then_some(EMPTY_REQUESTS_HASH),
            ..Default::default()
        }
    }

    /// Logs matching `filter`, in chain order, with their block and transaction positions.
    pub(crate) fn logs(&self, filter: &Filter) -> Result<Vec<alloy::rpc::types::Log>> {
        let (from, to) = match filter.block_option {
            FilterBlockOption::AtBlockHash(hash) => {
                let block = self
                    .block_by_hash(&hash)
                    .ok_or_else(|| Error::UnknownBlock(format!("no block with hash {hash}")))?;
                (block.number(), block.number())
            }
            FilterBlockOption::Range { from_block, to_block } => {
                let latest = self.latest().number();
                let from = from_block
                    .map(|t| self.resolve_number(t).unwrap_or(latest + 1))
                    .unwrap_or(latest);
                let to =
                    to_block.map(|t| self.resolve_number(t).unwrap_or(latest)).unwrap_or(latest);
                (from, to)
            }
        };
        let mut out = Vec::new();
        for number in from..=to.min(self.latest().number()) {
            let block = self.block(number).expect("numbers up to latest are mined");
            if !filter.matches_bloom(block.header.logs_bloom) {
                continue;
            }
            block_logs(block, |log| filter.matches(&log.inner), &mut out);
        }
        Ok(out)
    }

    /// `eth_feeHistory` over the `count` blocks ending at `newest`.
    pub(crate) fn fee_history(
        &self,
        count: u64,
        newest: BlockNumberOrTag,
        percentiles: &[f64],
    ) -> Result<FeeHistory> {
        let newest = self.resolve_number(newest)?;
        let count = count.clamp(1, 1024).min(newest + 1);
        let oldest = newest + 1 - count;
        let mut history = FeeHistory { oldest_block: oldest, ..Default::default() };
        let mut rewards = Vec::new();
        for number in oldest..=newest {
            let block = self.block(number).expect("in range");
            let base_fee = block.header.base_fee_per_gas.unwrap_or_default();
            history.base_fee_per_gas.push(u128::from(base_fee));
            history
                .gas_used_ratio
                .push(block.header.gas_used as f64 / block.header.gas_limit as f64);
            history.base_fee_per_blob_gas.push(1);
            history.blob_gas_used_ratio.push(0.0);
            rewards.push(block_rewards(block, base_fee, percentiles));
        }
        let next = if newest == self.latest().number() {
            u128::from(self.next_base_fee())
        } else {
            u128::from(
                self.block(newest + 1).and_then(|b| b.header.base_fee_per_gas).unwrap_or_default(),
            )
        };
        history.base_fee_per_gas.push(next);
        history.base_fee_per_blob_gas.push(1);
        if !percentiles.is_empty() {
            history.reward = Some(rewards);
        }
        Ok(history)
    }

    pub(crate) fn increase_time(&mut self, seconds: u64) -> i64 {
        self.time_offset =
            self.time_offset.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX));
        self.time_offset
    }

    pub(crate) fn set_next_timestamp(&mut self, timestamp: u64) -> Result<()> {
        let parent = self.latest().header.timestamp;
        if timestamp < parent {
            return Err(Error::InvalidParams(format!(
                "timestamp {timestamp} is lower than the latest block's timestamp {parent}"
            )));
        }
        self.next_timestamp = Some(timestamp);
        Ok(())
    }

    pub(crate) fn snapshot(&mut self) -> u64 {
        let id = self.next_snapshot_id;
        self.next_snapshot_id += 1;
        self.snapshots.insert(
            id,
            Snapshot {
                state: self.state.clone(),
                storage_roots: self.storage_roots.clone(),
                block_count: self.blocks.len(),
                time_offset: self.time_offset,
                next_timestamp: self.next_timestamp,
                pool: self.pool.clone(),
            },
        );
        id
    }

    /// Restores snapshot `id`; it and every later snapshot are consumed, as in Hardhat.
    pub(crate) fn revert(&mut self, id: u64) -> Result<bool> {
        let Some(snapshot) = self.snapshots.remove(&id) else { return Ok(false) };
        self.snapshots.retain(|k, _| *k < id);
        for block in self.blocks.drain(snapshot.block_count..) {
            self.block_numbers.remove(&block.hash);
            for tx in &block.txs {
                self.tx_locations.remove(&tx.hash());
            }
        }
        self.state = snapshot.state;
        self.storage_roots = snapshot.storage_roots;
        self.time_offset = snapshot.time_offset;
        self.next_timestamp = snapshot.next_timestamp;
        self.pool = snapshot.pool;
        if let Some(store) = &self.store {
            store.rewrite(&self.blocks, &StateChanges::full(&self.state), &self.meta())?;
        }
        Ok(true)
    }

    /// Releases the database and ends every head subscription; the node is stopping.
    pub(crate) fn close(&mut self) {
        self.store = None;
        self.heads = broadcast::channel(1).0;
    }
}

/// Appends the block's logs that pass `keep`, with their positions filled in.
pub(crate) fn block_logs(
    block: &MinedBlock,
    mut keep: impl FnMut(&alloy::rpc::types::Log) -> bool,
    out: &mut Vec<alloy::rpc::types::Log>,
) {
    let mut log_index = 0u64;
    for (tx_index, tx) in block.txs.iter().enumerate() {
        for log in tx.receipt.logs() {
            let rpc_log = alloy::rpc::types::Log {
                inner: log.clone(),
                block_hash: Some(block.hash),
                block_number: Some(block.number()),
                block_timestamp: Some(block.header.timestamp),
                transaction_hash: Some(tx.hash()),
                transaction_index: Some(tx_index as u64),
                log_index: Some(log_index),
                removed: false,
            };
            log_index += 1;
            if keep(&rpc_log) {
                out.push(rpc_log);
            }
        }
    }
}

fn block_rewards(block: &MinedBlock, base_fee: u64, percentiles: &[f64]) -> Vec<u128> {
    if percentiles.is_empty() {
        return Vec::new();
    }
    let mut tips: Vec<(u128, u64)> = block
        .txs
        .iter()
        .map(|tx| (tx.envelope.effective_tip_per_gas(base_fee).unwrap_or_default(), tx.gas_used))
        .collect();
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable();
    let total: u64 = tips.iter().map(|(_, gas)| gas).sum();
    percentiles
        .iter()
        .map(|p| {
            let threshold = (total as f64 * p / 100.0) as u64;
            let mut sum = 0u64;
            for (tip, gas) in &tips {
                sum += gas;
                if sum >= threshold {
                    return *tip;
                }
            }
            tips.last().map(|(tip, _)| *tip).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use redb::{Database, TableDefinition};

    use super::*;

    fn chain(state_dir: Option<&std::path::Path>) -> Chain {
        let config = DevnetConfig { state_dir: state_dir.map(Into::into), ..DevnetConfig::test() };
        Chain::open(&config, &[]).unwrap()
    }

    /// Mines `n` empty blocks and returns their prevrandao values.
    fn mine(chain: &mut Chain, n: usize) -> Vec<B256> {
        (0..n).map(|_| chain.mine_pool(None).unwrap().header.mix_hash).collect()
    }

    #[test]
    fn two_chains_draw_different_prevrandao() {
        let (mut a, mut b) = (chain(None), chain(None));
        let (a1, b1) = (mine(&mut a, 1)[0], mine(&mut b, 1)[0]);
        assert_ne!(a1, b1);
        // Not the old public formula either.
        assert_ne!(a1, keccak256(a.block(0).unwrap().hash));
        assert_ne!(b1, keccak256(b.block(0).unwrap().hash));
    }

    #[test]
    fn consecutive_blocks_get_distinct_prevrandao() {
        let mut chain = chain(None);
        let values = mine(&mut chain, 8);
        let distinct: HashSet<B256> = values.iter().copied().collect();
        assert_eq!(distinct.len(), values.len(), "{values:?}");
        for number in 1..=8u64 {
            let block = chain.block(number).unwrap();
            assert_ne!(block.header.mix_hash, B256::ZERO);
            assert_ne!(block.header.mix_hash, keccak256(block.header.parent_hash));
            // The block hash covers the secret value.
            assert_eq!(block.hash, block.header.hash_slow());
        }
    }

    #[test]
    fn reloaded_chain_continues_the_secret_stream() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = chain(Some(dir.path()));
        let before = mine(&mut first, 3);
        let mut expected = first.randao.clone();
        first.close();
        drop(first);

        let mut reloaded = chain(Some(dir.path()));
        assert_eq!(reloaded.latest().number(), 3);
        assert!(reloaded.randao.state() == expected.state(), "same secret, same position");
        let after = mine(&mut reloaded, 2);
        assert_eq!(after, vec![expected.next_value(), expected.next_value()]);
        for value in &after {
            assert!(!before.contains(value), "the stream was reset");
        }
    }

    #[test]
    fn state_dir_without_secret_gets_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = chain(Some(dir.path()));
        let before = mine(&mut old, 2);
        old.close();
        drop(old);
        // What a database written before the secret existed looks like.
        let db = Database::open(dir.path().join("chain.redb")).unwrap();
        let write = db.begin_write().unwrap();
        {
            let meta: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
            let mut meta = write.open_table(meta).unwrap();
            assert!(meta.remove("randao").unwrap().is_some());
        }
        write.commit().unwrap();
        drop(db);

        let mut upgraded = chain(Some(dir.path()));
        assert_eq!(upgraded.latest().number(), 2);
        let next = mine(&mut upgraded, 1)[0];
        assert!(!before.contains(&next));
        let mut expected = upgraded.randao.clone();
        upgraded.close();
        drop(upgraded);

        // The new secret was stored with the block: the stream goes on after another restart.
        let mut reloaded = chain(Some(dir.path()));
        assert_eq!(mine(&mut reloaded, 1)[0], expected.next_value());
    }

    #[test]
    fn revert_does_not_rewind_prevrandao() {
        let mut chain = chain(None);
        let id = chain.snapshot();
        let first = mine(&mut chain, 1)[0];
        assert!(chain.revert(id).unwrap());
        assert_eq!(chain.latest().number(), 0);
        let again = mine(&mut chain, 1)[0];
        assert_eq!(chain.latest().number(), 1);
        assert_ne!(first, again);
    }

    #[test]
    fn pending_calls_do_not_see_the_next_prevrandao() {
        let mut chain = chain(None);
        let pending = chain.block_context_for(None).unwrap().prevrandao;
        let mined = mine(&mut chain, 1)[0];
        assert_ne!(pending, mined);
    }
}
