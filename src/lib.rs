//! chaintrace: follow cryptocurrency through public blockchains.
//!
//! The pipeline (see `DESIGN.md`): **ingest** public chain data into a partitioned Parquet
//! dataset ([`ingest`], [`store`]), then cluster, trace and report on it. The command line
//! lives in [`cli`]; everything it does is available as a library.

#![warn(missing_debug_implementations)]

/// The version, git commit and whether the source tree was modified, e.g.
/// `0.1.0 (2cd0205a1b2c, modified)`: what `--version` prints and every case and report
/// records.
pub const VERSION: &str = env!("CHAINTRACE_VERSION");

pub mod case;
pub mod cli;
pub mod cluster;
pub mod index;
pub mod ingest;
pub mod labels;
pub mod memory;
pub mod report;
pub mod serve;
pub mod share;
pub mod simulate;
pub mod stats;
pub mod store;
pub mod tables;
pub mod trace;
pub mod types;
pub mod watch;
