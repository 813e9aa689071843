//! Arrow schemas of the Bitcoin tables (DESIGN.md §3, documented in docs/SCHEMA.md).
//!
//! [`FORMAT_VERSION`] is stored in every manifest; a dataset written with another format
//! is refused rather than silently mixed.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the dataset layout and schemas. Bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// The Bitcoin tables, in the order they are written.
pub const BITCOIN_TABLES: [&str; 4] = ["blocks", "transactions", "inputs", "outputs"];

fn time() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// `blocks`: one row per block of the best chain.
pub fn blocks() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("height", DataType::UInt32, false),
        Field::new("hash", DataType::Utf8, false),
        Field::new("prev_hash", DataType::Utf8, false),
        Field::new("time", time(), false),
        Field::new("version", DataType::Int32, false),
        Field::new("merkle_root", DataType::Utf8, false),
        Field::new("bits", DataType::UInt32, false),
        Field::new("nonce", DataType::UInt32, false),
        Field::new("n_tx", DataType::UInt32, false),
        Field::new("size", DataType::UInt32, false),
        Field::new("stripped_size", DataType::UInt32, false),
        Field::new("weight", DataType::UInt32, false),
    ]))
}

/// `transactions`: one row per transaction, in block order.
pub fn transactions() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("height", DataType::UInt32, false),
        Field::new("tx_index", DataType::UInt32, false),
        Field::new("txid", DataType::Utf8, false),
        Field::new("time", time(), false),
        Field::new("version", DataType::Int32, false),
        Field::new("locktime", DataType::UInt32, false),
        Field::new("size", DataType::UInt32, false),
        Field::new("vsize", DataType::UInt32, false),
        Field::new("weight", DataType::UInt32, false),
        Field::new("n_inputs", DataType::UInt32, false),
        Field::new("n_outputs", DataType::UInt32, false),
        Field::new("is_coinbase", DataType::Boolean, false),
        Field::new("input_value", DataType::Int64, true),
        Field::new("output_value", DataType::Int64, false),
        Field::new("fee", DataType::Int64, true),
    ]))
}

/// `inputs`: one row per input; value/address/script_type resolved from the spent output.
/// A coinbase input has a row with null prev_txid/prev_vout/value/address/script_type.
pub fn inputs() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("height", DataType::UInt32, false),
        Field::new("txid", DataType::Utf8, false),
        Field::new("vin", DataType::UInt32, false),
        Field::new("prev_txid", DataType::Utf8, true),
        Field::new("prev_vout", DataType::UInt32, true),
        Field::new("value", DataType::Int64, true),
        Field::new("address", DataType::Utf8, true),
        Field::new("script_type", DataType::Utf8, true),
        Field::new("sequence", DataType::UInt32, false),
    ]))
}

/// `outputs`: one row per output.
pub fn outputs() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("height", DataType::UInt32, false),
        Field::new("txid", DataType::Utf8, false),
        Field::new("vout", DataType::UInt32, false),
        Field::new("value", DataType::Int64, false),
        Field::new("script_type", DataType::Utf8, false),
        Field::new("address", DataType::Utf8, true),
    ]))
}
