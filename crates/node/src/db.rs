//! What a worker must remember across a crash, in an embedded redb database.
//!
//! Every job (one assignment: a prompt and its attempt) is written here before the transaction
//! that advances it is sent: the output and salt before the commit, the stage before each
//! reveal and finalize. After a restart the worker reads its jobs back and, checking the chain
//! for what was already mined, finishes them.

use std::path::{Path, PathBuf};

use alloy::primitives::{B256, U256};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const JOBS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("jobs");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const LAST_BLOCK: &str = "last_block";

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Assigned; the output is not computed yet.
    Assigned,
    /// Output and salt computed and saved; the commit may or may not have been mined.
    Computed,
    /// The commitment is on chain.
    Committed,
    /// The reveal is on chain.
    Revealed,
    /// Finalized, refunded or retried: nothing left to do.
    Done,
    /// The prompt could not be run (logged); nothing is sent for it.
    Failed,
    /// No answer by the commit deadline, for a reason of this worker's own (prompt data it
    /// could not read, a model it could not run; in `error`): it commits nothing, and still
    /// closes the prompt once finalize opens, so no prompt waits on it.
    Abstained,
}

/// One assignment of this worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The prompt.
    pub prompt_id: U256,
    /// 0 for the first committee, 1 for the retry.
    pub attempt: u8,
    /// This worker's index in the committee.
    pub member: u8,
    /// Last second to commit.
    pub commit_deadline: u64,
    /// Last second to reveal.
    pub reveal_deadline: u64,
    /// Where the job is.
    pub stage: Stage,
    /// Canonical output bytes (once computed).
    pub output: Vec<u8>,
    /// The commitment's salt (once computed).
    pub salt: B256,
    /// Why the job failed or abstained, for `Stage::Failed` and `Stage::Abstained`.
    pub error: Option<String>,
}

impl Job {
    fn key(prompt_id: U256, attempt: u8) -> [u8; 33] {
        let mut key = [0u8; 33];
        key[..32].copy_from_slice(&prompt_id.to_be_bytes::<32>());
        key[32] = attempt;
        key
    }
}

/// The worker's database file.
#[derive(Debug)]
pub struct NodeDb {
    db: Database,
    path: PathBuf,
}

impl NodeDb {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Self::error(path, e))?;
        }
        let db = Database::create(path).map_err(|e| Self::error(path, e))?;
        let this = Self { db, path: path.to_owned() };
        let tx = this.db.begin_write().map_err(|e| this.err(e))?;
        tx.open_table(JOBS).map_err(|e| this.err(e))?;
        tx.open_table(META).map_err(|e| this.err(e))?;
        tx.commit().map_err(|e| this.err(e))?;
        Ok(this)
    }

    fn error(path: &Path, e: impl std::fmt::Display) -> Error {
        Error::Database { path: path.display().to_string(), reason: e.to_string() }
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Self::error(&self.path, e)
    }

    /// Saves a job durably (redb commits are fsynced).
    pub fn put(&self, job: &Job) -> Result<()> {
        let value = serde_json::to_vec(job).map_err(|e| self.err(e))?;
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = tx.open_table(JOBS).map_err(|e| self.err(e))?;
            table
                .insert(Job::key(job.prompt_id, job.attempt).as_slice(), value.as_slice())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// A job, if known.
    pub fn get(&self, prompt_id: U256, attempt: u8) -> Result<Option<Job>> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(JOBS).map_err(|e| self.err(e))?;
        let key = Job::key(prompt_id, attempt);
        match table.get(key.as_slice()).map_err(|e| self.err(e))? {
            Some(value) => {
                Ok(Some(serde_json::from_slice(value.value()).map_err(|e| self.err(e))?))
            }
            None => Ok(None),
        }
    }

    /// Every job not yet done or failed, oldest prompt first.
    pub fn pending(&self) -> Result<Vec<Job>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|j| !matches!(j.stage, Stage::Done | Stage::Failed))
            .collect())
    }

    /// Every job, oldest prompt first.
    pub fn all(&self) -> Result<Vec<Job>> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(JOBS).map_err(|e| self.err(e))?;
        let mut jobs = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (_, value) = entry.map_err(|e| self.err(e))?;
            jobs.push(serde_json::from_slice::<Job>(value.value()).map_err(|e| self.err(e))?);
        }
        Ok(jobs)
    }

    /// The last block whose assignment events were processed.
    pub fn last_block(&self) -> Result<Option<u64>> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = tx.open_table(META).map_err(|e| self.err(e))?;
        Ok(table.get(LAST_BLOCK).map_err(|e| self.err(e))?.map(|v| v.value()))
    }

    /// Records that assignment events up to `block` were processed.
    pub fn set_last_block(&self, block: u64) -> Result<()> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = tx.open_table(META).map_err(|e| self.err(e))?;
            table.insert(LAST_BLOCK, block).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let job = Job {
            prompt_id: U256::from(7),
            attempt: 1,
            member: 2,
            commit_deadline: 100,
            reveal_deadline: 200,
            stage: Stage::Computed,
            output: b"Paris".to_vec(),
            salt: B256::repeat_byte(9),
            error: None,
        };
        {
            let db = NodeDb::open(&path).unwrap();
            db.put(&job).unwrap();
            db.put(&Job { prompt_id: U256::from(3), stage: Stage::Done, ..job.clone() }).unwrap();
            db.set_last_block(42).unwrap();
        }
        let db = NodeDb::open(&path).unwrap();
        assert_eq!(db.get(U256::from(7), 1).unwrap(), Some(job.clone()));
        assert_eq!(db.get(U256::from(7), 0).unwrap(), None);
        assert_eq!(db.pending().unwrap(), vec![job]);
        assert_eq!(db.all().unwrap().len(), 2);
        assert_eq!(db.last_block().unwrap(), Some(42));
    }
}
