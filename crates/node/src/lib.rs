//! `aik-node`: the AI Kernel worker daemon (DESIGN §7), the hardware space of the whitepaper.
//!
//! A [`Worker`] is one staked account. It registers (and stakes) if it is not registered yet,
//! follows `CommitteeAssigned` events (woken by a WebSocket subscription, with polling as the
//! fallback), rebuilds each prompt's context from the chain ([`aik_kernel::load_context`]), runs
//! the model through an [`Engine`] (a [`ModelDriver`](aik_infer::ModelDriver) trait object, run
//! on a blocking thread), commits, reveals once every member committed or the commit deadline
//! passed, finalizes when it is the first agreeing member (or anyone after the reveal
//! deadline), and claims its fees. Its decisions are one pure function, [`next_step`], of the
//! job, the prompt's onchain record and the block time. A prompt that cannot run anywhere (its
//! context does not fit, its format has no answer…) is answered with the canonical failure
//! answer ([`canonical_failure`]); a prompt this worker alone cannot run (its data never
//! arrived) is abstained from, and closed once finalize opens.
//!
//! What it must remember across a crash lives in a [`NodeDb`] (redb), written before each
//! transaction is sent; every step first checks the chain for what was already mined, so a
//! worker killed at any point and restarted finishes its jobs. RPC errors are retried with
//! exponential backoff; a prompt the worker cannot answer fails alone, logged, never the node.
//!
//! [`fetch_model`] gets a registered model's file through `aik-store` (verified against its
//! sha256, size and chunk Merkle root). [`Deployment`] is the file that `aik up` writes and
//! other commands read. [`NodeFileConfig`] is the TOML form of a node's configuration.
//!
//! It is not a chain, a model or a store: those are `aik-devnet`, `aik-infer` and `aik-store`.

mod config;
pub mod dashboard;
mod db;
mod deployment;
mod engine;
mod error;
pub mod hardware;
mod model;
pub mod network;
mod step;
mod worker;

pub use config::{NodeFileConfig, Urls};
pub use db::{Job, NodeDb, Stage};
pub use deployment::Deployment;
pub use engine::{Answer, Engine, canonical_failure};
pub use error::{Error, Result};
pub use model::{
    RegisteredModel, drivers, fetch_model, load_driver, prompt_layout, registered_model,
};
pub use step::{Step, next_step};
pub use worker::{Worker, WorkerConfig};
