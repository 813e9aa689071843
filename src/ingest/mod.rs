//! Public chain data into the Parquet dataset.

pub mod bitcoin;
pub mod ethereum;
