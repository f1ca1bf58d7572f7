//! Integration tests of the example dapps: scripted committees for every path of each
//! contract, and each demo on an in-process network with the real model.

mod credit;
mod dao;
mod ens;
mod fantasy;
mod hello;
mod net;
