//! chaintrace: follow cryptocurrency through public blockchains.
//!
//! The pipeline (see `DESIGN.md`): **ingest** public chain data into a partitioned Parquet
//! dataset ([`ingest`], [`store`]), then cluster, trace and report on it. The command line
//! lives in [`cli`]; everything it does is available as a library.

#![warn(missing_debug_implementations)]

pub mod cli;
pub mod cluster;
pub mod index;
pub mod ingest;
pub mod labels;
pub mod report;
pub mod simulate;
pub mod stats;
pub mod store;
pub mod trace;
pub mod types;
