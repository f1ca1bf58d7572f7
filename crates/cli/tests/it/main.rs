//! End-to-end tests of the `aik` binary: real OS processes against a chain in the test process.

mod base_model;
mod bench;
mod challenge;
mod dashboard;
mod demo;
mod eval;
mod model;
mod node_restart;
mod operator;
mod prompt;
mod store;
mod support;
