//! `aik-apps`: the AI-powered dapps of the whitepaper's section 9, built on AI Kernel.
//!
//! Each example is a Solidity contract in `contracts/src/apps` that inherits the consumer base
//! (`AIKernelConsumer`) and a demo here that deploys it on a running network, drives it through
//! one or more prompts, waits for the committee's answer and checks that the contract did what
//! the answer called for (paid out, stored, executed, registered). `aik demo NAME` runs a demo
//! against `aik up`; the crate's tests run every demo on an in-process network with the real
//! model, and drive each contract's other paths (the other answer, refunds, reverts) with
//! scripted workers.
//!
//! - [`DEMOS`] lists the examples, [`run_demo`] runs one by name in a [`DemoEnv`] (the account,
//!   the kernel, the model, and where progress lines go) and returns its [`Outcome`].
//! - [`bindings`] holds the contracts' generated bindings.
//! - [`DemoEnv::answer`] waits for a prompt's end and returns its [`Answer`].
//! - [`name_in`] is the name `NameGenerator` reads out of a free-text answer, for clients that
//!   want to know what an answer registers.

pub mod bindings;
mod demos;
mod env;
mod error;

pub use demos::{DEMOS, DemoInfo, ens::name_in, run_demo};
pub use env::{Answer, DemoEnv, Outcome};
pub use error::{Error, Result};
