//! Integration tests: real clients against an in-process dev chain on a free port.

mod alloy_client;
mod errors;
mod js;
mod mining;
mod persistence;
mod robustness;
mod subscriptions;
mod util;
