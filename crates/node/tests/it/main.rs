//! End-to-end tests of the worker node on the embedded dev chain with the real model.

mod capacity;
mod context_tokens;
mod e2e;
mod hardhat;
mod resilience;
