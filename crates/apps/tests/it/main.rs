//! Integration tests of the example dapps: scripted committees for every path of each
//! contract, and each demo on an in-process network with the real model.

mod agent;
mod calls;
mod credit;
mod dao;
mod ens;
mod fantasy;
mod hello;
mod net;
mod oracle;
mod wallet;
