//! Arrow schemas of the Bitcoin tables, from the table registry ([`crate::tables`]).
//!
//! [`FORMAT_VERSION`] is stored in every manifest; a dataset written with another format
//! is refused rather than silently mixed.

use arrow_schema::SchemaRef;

use crate::tables::Table;
use crate::tables::btc_blocks::Blocks;
use crate::tables::btc_inputs::Inputs;
use crate::tables::btc_outputs::Outputs;
use crate::tables::btc_transactions::Transactions;

/// Version of the dataset layout and schemas. Bump on any incompatible change.
pub const FORMAT_VERSION: u32 = crate::tables::DATASET_FORMAT;

/// The Bitcoin tables, in the order they are written.
pub const BITCOIN_TABLES: [&str; 4] = ["blocks", "transactions", "inputs", "outputs"];

/// `blocks` ([`crate::tables::btc_blocks`]).
pub fn blocks() -> SchemaRef {
    Blocks::schema()
}

/// `transactions` ([`crate::tables::btc_transactions`]).
pub fn transactions() -> SchemaRef {
    Transactions::schema()
}

/// `inputs` ([`crate::tables::btc_inputs`]).
pub fn inputs() -> SchemaRef {
    Inputs::schema()
}

/// `outputs` ([`crate::tables::btc_outputs`]).
pub fn outputs() -> SchemaRef {
    Outputs::schema()
}
