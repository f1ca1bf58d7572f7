//! End-to-end tests of the worker node on the embedded dev chain with the real model.

mod e2e;
mod resilience;
