//! Integration tests of the kernel contracts and the SDK against the embedded dev chain
//! (and, in `hardhat`, against `npx hardhat node`).

mod attacks;
mod callbacks;
mod challenges;
mod context;
mod directory;
mod draw;
mod finalize_gas;
mod fixture;
mod formats;
mod fuzz;
mod gas;
mod governance;
mod hardhat;
mod lifecycle;
mod params;
mod queue;
mod registry;
mod requests;
mod staking;
mod views;
