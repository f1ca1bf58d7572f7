//! Persistence of the chain in an embedded redb database (`--state-dir`).
//!
//! Every mined block is written in one redb write transaction together with the state it
//! changed, and the transaction is committed with redb's default immediate durability. A
//! process killed at any moment therefore leaves either the state before or after a block,
//! never half of one: on restart, every block whose RPC call returned is still there.
//!
//! Layout (all keys and values are fixed binary encodings, blocks are JSON of the alloy types):
//! - `blocks`: block number → block (header, transactions, receipts)
//! - `accounts`: address → nonce (8 bytes BE) ‖ balance (32) ‖ code hash (32)
//! - `storage`: address ‖ slot (52 bytes) → value (32)
//! - `code`: code hash → bytecode
//! - `meta`: `chain_id`, `time_offset`, and `randao`: the secret prevrandao seed (32 bytes) ‖
//!   its stream position (16 bytes BE), see `chain::randao`. A database written before `randao`
//!   existed has no such key; the chain then starts a fresh secret stream.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::Arc,
};

use alloy::primitives::{Address, B256, Bytes, U256};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use revm::{
    database::{AccountState, CacheDB, EmptyDB},
    primitives::KECCAK_EMPTY,
    state::{AccountInfo, Bytecode},
};

use crate::{
    Error, Result,
    chain::{MinedBlock, randao::RandaoState},
};

const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
const ACCOUNTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("accounts");
const STORAGE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("storage");
const CODE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("code");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

/// Chain-wide values kept next to the blocks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    pub(crate) chain_id: u64,
    pub(crate) time_offset: i64,
    /// The prevrandao stream; `None` only when read from a database that predates it.
    pub(crate) randao: Option<RandaoState>,
}

/// What a restart reads back.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) meta: Meta,
    pub(crate) blocks: Vec<MinedBlock>,
    pub(crate) accounts: Vec<(Address, AccountInfo)>,
    pub(crate) storage: Vec<(Address, U256, U256)>,
}

/// The state a block changed, ready to write.
#[derive(Debug, Default)]
pub(crate) struct StateChanges {
    /// `None` deletes the account.
    accounts: Vec<(Address, Option<AccountInfo>)>,
    /// Accounts whose storage is dropped before `storage` is applied.
    wiped: Vec<Address>,
    /// A zero value deletes the slot.
    storage: Vec<(Address, U256, U256)>,
    code: Vec<(B256, Bytes)>,
}

impl StateChanges {
    /// The whole state, for the genesis block and after `evm_revert`.
    pub(crate) fn full(state: &CacheDB<EmptyDB>) -> Self {
        let mut changes = Self::default();
        for (address, account) in &state.cache.accounts {
            if matches!(account.account_state, AccountState::NotExisting) {
                continue;
            }
            changes.accounts.push((*address, Some(account.info.clone())));
            for (slot, value) in &account.storage {
                changes.storage.push((*address, *slot, *value));
            }
        }
        for (hash, code) in &state.cache.contracts {
            if *hash != KECCAK_EMPTY && *hash != B256::ZERO {
                changes.code.push((*hash, code.original_bytes()));
            }
        }
        changes
    }

    /// The accounts and slots a block touched, read back from the committed state.
    pub(crate) fn collect(
        state: &CacheDB<EmptyDB>,
        touched: &HashMap<Address, HashSet<U256>>,
        new_code: Vec<(B256, Bytecode)>,
    ) -> Self {
        let mut changes = Self::default();
        for (address, slots) in touched {
            let Some(account) = state.cache.accounts.get(address) else { continue };
            match account.account_state {
                AccountState::NotExisting => {
                    changes.accounts.push((*address, None));
                    changes.wiped.push(*address);
                }
                AccountState::StorageCleared => {
                    changes.accounts.push((*address, Some(account.info.clone())));
                    changes.wiped.push(*address);
                    for (slot, value) in &account.storage {
                        changes.storage.push((*address, *slot, *value));
                    }
                }
                _ => {
                    changes.accounts.push((*address, Some(account.info.clone())));
                    for slot in slots {
                        let value = account.storage.get(slot).copied().unwrap_or_default();
                        changes.storage.push((*address, *slot, value));
                    }
                }
            }
        }
        changes.code = new_code.into_iter().map(|(h, c)| (h, c.original_bytes())).collect();
        changes
    }
}

/// The open database.
#[derive(Debug)]
pub(crate) struct Store {
    db: Database,
}

fn account_bytes(info: &AccountInfo) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..8].copy_from_slice(&info.nonce.to_be_bytes());
    out[8..40].copy_from_slice(&info.balance.to_be_bytes::<32>());
    out[40..].copy_from_slice(info.code_hash.as_slice());
    out
}

fn storage_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut out = [0u8; 52];
    out[..20].copy_from_slice(address.as_slice());
    out[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    out
}

fn corrupt(what: &str) -> Error {
    Error::Store(format!("corrupt state database: bad {what} record"))
}

impl Store {
    /// Opens (or creates) `dir/chain.redb`.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Store(format!("cannot create state dir {}: {e}", dir.display())))?;
        let path = dir.join("chain.redb");
        let db = Database::create(&path)
            .map_err(|e| Error::Store(format!("cannot open {}: {e}", path.display())))?;
        Ok(Self { db })
    }

    /// Reads the whole chain back; `None` for an empty database.
    pub(crate) fn load(&self) -> Result<Option<Loaded>> {
        let read = self.db.begin_read()?;
        let blocks_table = match read.open_table(BLOCKS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let mut blocks = Vec::new();
        for entry in blocks_table.iter()? {
            let (number, bytes) = entry?;
            let block: MinedBlock = serde_json::from_slice(bytes.value()).map_err(|e| {
                Error::Store(format!("corrupt state database: block {}: {e}", number.value()))
            })?;
            if block.number() != blocks.len() as u64 {
                return Err(Error::Store(format!(
                    "corrupt state database: block {} follows block {}",
                    block.number(),
                    blocks.len() as i64 - 1
                )));
            }
            blocks.push(block);
        }
        if blocks.is_empty() {
            return Ok(None);
        }
        let meta_table = read.open_table(META)?;
        let read_u64 = |key: &str| -> Result<u64> {
            let value = meta_table.get(key)?.ok_or_else(|| corrupt(key))?;
            let bytes: [u8; 8] = value.value().try_into().map_err(|_| corrupt(key))?;
            Ok(u64::from_be_bytes(bytes))
        };
        let randao = match meta_table.get("randao")? {
            None => None,
            Some(value) => {
                Some(RandaoState::from_bytes(value.value()).ok_or_else(|| corrupt("randao"))?)
            }
        };
        let meta = Meta {
            chain_id: read_u64("chain_id")?,
            time_offset: read_u64("time_offset")? as i64,
            randao,
        };

        let code_table = read.open_table(CODE)?;
        let mut accounts = Vec::new();
        for entry in read.open_table(ACCOUNTS)?.iter()? {
            let (key, value) = entry?;
            let address = Address::try_from(key.value()).map_err(|_| corrupt("account key"))?;
            let value = value.value();
            if value.len() != 72 {
                return Err(corrupt("account"));
            }
            let nonce = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
            let balance = U256::from_be_slice(&value[8..40]);
            let code_hash = B256::from_slice(&value[40..]);
            let code = if code_hash == KECCAK_EMPTY || code_hash == B256::ZERO {
                None
            } else {
                let bytes = code_table.get(code_hash.as_slice())?.ok_or_else(|| corrupt("code"))?;
                Some(Bytecode::new_raw(Bytes::copy_from_slice(bytes.value())))
            };
            accounts.push((
                address,
                AccountInfo { balance, nonce, code_hash, code, ..Default::default() },
            ));
        }
        let mut storage = Vec::new();
        for entry in read.open_table(STORAGE)?.iter()? {
            let (key, value) = entry?;
            let key = key.value();
            if key.len() != 52 || value.value().len() != 32 {
                return Err(corrupt("storage"));
            }
            storage.push((
                Address::from_slice(&key[..20]),
                U256::from_be_slice(&key[20..]),
                U256::from_be_slice(value.value()),
            ));
        }
        Ok(Some(Loaded { meta, blocks, accounts, storage }))
    }

    /// Writes one block and the state it changed, atomically and durably.
    pub(crate) fn write_block(
        &self,
        block: &MinedBlock,
        changes: &StateChanges,
        meta: &Meta,
    ) -> Result<()> {
        let write = self.db.begin_write()?;
        {
            let mut blocks = write.open_table(BLOCKS)?;
            let json = serde_json::to_vec(block)
                .map_err(|e| Error::Store(format!("cannot encode block: {e}")))?;
            blocks.insert(block.number(), json.as_slice())?;
        }
        Self::apply(&write, changes, meta)?;
        write.commit()?;
        Ok(())
    }

    /// Replaces everything: the blocks kept after `evm_revert` and the full state.
    pub(crate) fn rewrite(
        &self,
        blocks: &[Arc<MinedBlock>],
        changes: &StateChanges,
        meta: &Meta,
    ) -> Result<()> {
        let write = self.db.begin_write()?;
        for table in [ACCOUNTS, STORAGE, CODE] {
            write.delete_table(table)?;
        }
        write.delete_table(BLOCKS)?;
        {
            let mut table = write.open_table(BLOCKS)?;
            for block in blocks {
                let json = serde_json::to_vec(block.as_ref())
                    .map_err(|e| Error::Store(format!("cannot encode block: {e}")))?;
                table.insert(block.number(), json.as_slice())?;
            }
        }
        Self::apply(&write, changes, meta)?;
        write.commit()?;
        Ok(())
    }

    fn apply(write: &redb::WriteTransaction, changes: &StateChanges, meta: &Meta) -> Result<()> {
        let mut accounts = write.open_table(ACCOUNTS)?;
        let mut storage = write.open_table(STORAGE)?;
        let mut code = write.open_table(CODE)?;
        let mut meta_table = write.open_table(META)?;
        for address in &changes.wiped {
            let start = storage_key(address, &U256::ZERO);
            let end = storage_key(address, &U256::MAX);
            storage.retain_in(start.as_slice()..=end.as_slice(), |_, _| false)?;
        }
        for (address, info) in &changes.accounts {
            match info {
                Some(info) => {
                    accounts.insert(address.as_slice(), account_bytes(info).as_slice())?;
                }
                None => {
                    accounts.remove(address.as_slice())?;
                }
            }
        }
        for (address, slot, value) in &changes.storage {
            let key = storage_key(address, slot);
            if value.is_zero() {
                storage.remove(key.as_slice())?;
            } else {
                storage.insert(key.as_slice(), value.to_be_bytes::<32>().as_slice())?;
            }
        }
        for (hash, bytes) in &changes.code {
            code.insert(hash.as_slice(), bytes.as_ref())?;
        }
        meta_table.insert("chain_id", meta.chain_id.to_be_bytes().as_slice())?;
        meta_table.insert("time_offset", (meta.time_offset as u64).to_be_bytes().as_slice())?;
        if let Some(randao) = meta.randao {
            meta_table.insert("randao", randao.to_bytes().as_slice())?;
        }
        Ok(())
    }
}
