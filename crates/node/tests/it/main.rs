//! End-to-end tests of the worker node: on the embedded dev chain with the real model, on `npx
//! hardhat node` with a generated tiny one, and the exact token ids a worker feeds the model.

mod capacity;
mod context_tokens;
mod e2e;
mod hardhat;
mod layout;
mod resilience;
