//! Integration tests of the kernel contracts and the SDK against the embedded dev chain
//! (and, in `hardhat`, against `npx hardhat node`).

mod callbacks;
mod context;
mod fixture;
mod gas;
mod lifecycle;
mod queue;
mod requests;
mod staking;
