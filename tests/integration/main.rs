//! End-to-end tests on real chain data from `../shared/datasets`.

mod util;

#[path = "../support/anvil.rs"]
mod anvil;

mod cli;
mod cluster;
mod ethereum_decode;
mod ethereum_node;
mod ethereum_trace;
mod heuristics;
mod ingest_errors;
mod ingest_esplora;
mod ingest_mainnet;
mod ingest_regtest;
mod ingest_rpc;
mod labels;
mod memory;
mod python_readers;
mod report;
mod resume;
mod rpc_node;
mod serve;
mod share;
mod simulate;
mod spark;
mod stats;
mod trace;
mod watch;
