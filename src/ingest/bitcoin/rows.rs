//! Resolving inputs against the UTXO set, in chain order, and filling the column builders.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
    UInt32Builder,
};
use arrow_array::{ArrayRef, RecordBatch};

use super::decode::DecodedBlock;
use super::error::IngestError;
use super::script::address_of;
use super::utxo::{Coin, UtxoSet};
use crate::store::{StoreError, schema};
use crate::types::{Network, n32, n64};

/// Counts of what one block added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub blocks: u64,
    pub txs: u64,
    pub inputs: u64,
    pub outputs: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.blocks += o.blocks;
        self.txs += o.txs;
        self.inputs += o.inputs;
        self.outputs += o.outputs;
    }
}

fn sat(v: u64) -> i64 {
    // At most 21e14 satoshi exist; a larger value would be a consensus-invalid block.
    i64::try_from(v).expect("satoshi amounts fit in i64")
}

/// Block time (seconds) as the stored timestamp (milliseconds, which Parquet can type).
fn millis(secs: u32) -> i64 {
    i64::from(secs) * 1000
}

fn ts() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone("UTC")
}

/// Column builders for the four Bitcoin tables of one part.
pub struct Rows {
    network: Network,
    b_height: UInt32Builder,
    b_hash: StringBuilder,
    b_prev: StringBuilder,
    b_time: TimestampMillisecondBuilder,
    b_version: Int32Builder,
    b_merkle: StringBuilder,
    b_bits: UInt32Builder,
    b_nonce: UInt32Builder,
    b_ntx: UInt32Builder,
    b_size: UInt32Builder,
    b_stripped: UInt32Builder,
    b_weight: UInt32Builder,

    t_height: UInt32Builder,
    t_index: UInt32Builder,
    t_txid: StringBuilder,
    t_time: TimestampMillisecondBuilder,
    t_version: Int32Builder,
    t_locktime: UInt32Builder,
    t_size: UInt32Builder,
    t_vsize: UInt32Builder,
    t_weight: UInt32Builder,
    t_nin: UInt32Builder,
    t_nout: UInt32Builder,
    t_coinbase: BooleanBuilder,
    t_in_value: Int64Builder,
    t_out_value: Int64Builder,
    t_fee: Int64Builder,

    i_height: UInt32Builder,
    i_txid: StringBuilder,
    i_vin: UInt32Builder,
    i_prev_txid: StringBuilder,
    i_prev_vout: UInt32Builder,
    i_value: Int64Builder,
    i_address: StringBuilder,
    i_script_type: StringBuilder,
    i_sequence: UInt32Builder,

    o_height: UInt32Builder,
    o_txid: StringBuilder,
    o_vout: UInt32Builder,
    o_value: Int64Builder,
    o_script_type: StringBuilder,
    o_address: StringBuilder,

    pub counts: Counts,
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Rows {
    /// Empty builders for `network`.
    pub fn new(network: Network) -> Rows {
        Rows {
            network,
            b_height: UInt32Builder::new(),
            b_hash: StringBuilder::new(),
            b_prev: StringBuilder::new(),
            b_time: ts(),
            b_version: Int32Builder::new(),
            b_merkle: StringBuilder::new(),
            b_bits: UInt32Builder::new(),
            b_nonce: UInt32Builder::new(),
            b_ntx: UInt32Builder::new(),
            b_size: UInt32Builder::new(),
            b_stripped: UInt32Builder::new(),
            b_weight: UInt32Builder::new(),
            t_height: UInt32Builder::new(),
            t_index: UInt32Builder::new(),
            t_txid: StringBuilder::new(),
            t_time: ts(),
            t_version: Int32Builder::new(),
            t_locktime: UInt32Builder::new(),
            t_size: UInt32Builder::new(),
            t_vsize: UInt32Builder::new(),
            t_weight: UInt32Builder::new(),
            t_nin: UInt32Builder::new(),
            t_nout: UInt32Builder::new(),
            t_coinbase: BooleanBuilder::new(),
            t_in_value: Int64Builder::new(),
            t_out_value: Int64Builder::new(),
            t_fee: Int64Builder::new(),
            i_height: UInt32Builder::new(),
            i_txid: StringBuilder::new(),
            i_vin: UInt32Builder::new(),
            i_prev_txid: StringBuilder::new(),
            i_prev_vout: UInt32Builder::new(),
            i_value: Int64Builder::new(),
            i_address: StringBuilder::new(),
            i_script_type: StringBuilder::new(),
            i_sequence: UInt32Builder::new(),
            o_height: UInt32Builder::new(),
            o_txid: StringBuilder::new(),
            o_vout: UInt32Builder::new(),
            o_value: Int64Builder::new(),
            o_script_type: StringBuilder::new(),
            o_address: StringBuilder::new(),
            counts: Counts::default(),
        }
    }

    /// Applies `block` to the UTXO set and, if `rows` is given, appends its rows.
    ///
    /// For each transaction in block order its inputs are resolved (and removed from the
    /// set) before its outputs are added, so spends within a block resolve too.
    ///
    /// # Errors
    /// An input spends an output that is not unspent.
    pub fn apply(
        block: &DecodedBlock,
        utxo: &mut UtxoSet,
        mut rows: Option<&mut Rows>,
    ) -> Result<Counts, IngestError> {
        let mut counts = Counts {
            blocks: 1,
            ..Counts::default()
        };
        let mut spent: Vec<Option<Coin>> = Vec::new();
        for (tx_index, tx) in block.txs.iter().enumerate() {
            spent.clear();
            let mut input_value: u64 = 0;
            if !tx.is_coinbase {
                for (vin, input) in tx.inputs.iter().enumerate() {
                    let coin = utxo
                        .spend(&input.prev_txid, input.prev_vout)
                        .ok_or_else(|| IngestError::UnknownPrevout {
                            height: block.height,
                            txid: tx.txid.to_string(),
                            vin: n32(vin),
                            prev_txid: input.prev_txid.to_string(),
                            prev_vout: input.prev_vout,
                        })?;
                    input_value += coin.value;
                    spent.push(Some(coin));
                }
            }
            // The genesis block's coinbase never enters the set (as in Bitcoin Core: it
            // cannot be spent); its rows are written as any block's.
            let spendable = if block.height == 0 {
                0
            } else {
                tx.outputs.len()
            };
            utxo.add_tx(
                &tx.txid,
                tx.outputs
                    .iter()
                    .take(spendable)
                    .enumerate()
                    .map(|(vout, o)| {
                        (
                            n32(vout),
                            Coin {
                                value: o.value,
                                script_type: o.class.script_type,
                                payload: o.class.payload.clone(),
                            },
                        )
                    }),
            )
            .map_err(|source| IngestError::UtxoSpill { source })?;
            counts.txs += 1;
            counts.inputs += n64(tx.inputs.len());
            counts.outputs += n64(tx.outputs.len());
            if let Some(r) = rows.as_deref_mut() {
                let position = block
                    .subset
                    .as_ref()
                    .map_or(n32(tx_index), |(_, at)| at[tx_index]);
                r.append_tx(block, position, tx, input_value, &spent);
            }
        }
        if let Some(r) = rows {
            r.append_block(block);
            r.counts += counts;
        }
        Ok(counts)
    }

    fn append_block(&mut self, b: &DecodedBlock) {
        self.b_height.append_value(b.height);
        self.b_hash.append_value(b.hash.to_string());
        self.b_prev.append_value(b.prev_hash.to_string());
        self.b_time.append_value(millis(b.time));
        self.b_version.append_value(b.version);
        self.b_merkle.append_value(&b.merkle_root);
        self.b_bits.append_value(b.bits);
        self.b_nonce.append_value(b.nonce);
        self.b_ntx
            .append_value(b.subset.as_ref().map_or(n32(b.txs.len()), |s| s.0));
        self.b_size.append_value(b.size);
        self.b_stripped.append_value(b.stripped_size);
        self.b_weight.append_value(b.weight);
    }

    fn append_tx(
        &mut self,
        b: &DecodedBlock,
        tx_index: u32,
        tx: &super::decode::DecodedTx,
        input_value: u64,
        spent: &[Option<Coin>],
    ) {
        let txid = tx.txid.to_string();
        let output_value: u64 = tx.outputs.iter().map(|o| o.value).sum();
        self.t_height.append_value(b.height);
        self.t_index.append_value(tx_index);
        self.t_txid.append_value(&txid);
        self.t_time.append_value(millis(b.time));
        self.t_version.append_value(tx.version);
        self.t_locktime.append_value(tx.locktime);
        self.t_size.append_value(tx.size);
        self.t_vsize.append_value(tx.vsize);
        self.t_weight.append_value(tx.weight);
        self.t_nin.append_value(n32(tx.inputs.len()));
        self.t_nout.append_value(n32(tx.outputs.len()));
        self.t_coinbase.append_value(tx.is_coinbase);
        self.t_out_value.append_value(sat(output_value));
        if tx.is_coinbase {
            self.t_in_value.append_null();
            self.t_fee.append_null();
        } else {
            self.t_in_value.append_value(sat(input_value));
            // Consensus guarantees inputs >= outputs for non-coinbase transactions.
            self.t_fee
                .append_value(sat(input_value) - sat(output_value));
        }
        for (vin, input) in tx.inputs.iter().enumerate() {
            self.i_height.append_value(b.height);
            self.i_txid.append_value(&txid);
            self.i_vin.append_value(n32(vin));
            self.i_sequence.append_value(input.sequence);
            match spent.get(vin).and_then(Option::as_ref) {
                Some(coin) => {
                    self.i_prev_txid.append_value(input.prev_txid.to_string());
                    self.i_prev_vout.append_value(input.prev_vout);
                    self.i_value.append_value(sat(coin.value));
                    self.i_address.append_option(address_of(
                        coin.script_type,
                        &coin.payload,
                        self.network,
                    ));
                    self.i_script_type.append_value(coin.script_type.as_str());
                }
                None => {
                    // Coinbase input: it spends nothing.
                    self.i_prev_txid.append_null();
                    self.i_prev_vout.append_null();
                    self.i_value.append_null();
                    self.i_address.append_null();
                    self.i_script_type.append_null();
                }
            }
        }
        for (vout, o) in tx.outputs.iter().enumerate() {
            self.o_height.append_value(b.height);
            self.o_txid.append_value(&txid);
            self.o_vout.append_value(n32(vout));
            self.o_value.append_value(sat(o.value));
            self.o_script_type
                .append_value(o.class.script_type.as_str());
            self.o_address.append_option(o.address.as_deref());
        }
    }

    /// Rows buffered in the builders (inputs + outputs, the big tables).
    pub fn buffered_rows(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        self.i_height.len() + self.o_height.len()
    }

    /// Returns the counts since the last call and resets them.
    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }

    /// Finishes the builders into one record batch per table, in [`schema::BITCOIN_TABLES`]
    /// order, and resets them.
    ///
    /// # Errors
    /// Only if the arrays do not match the schema (a bug).
    pub fn finish(&mut self) -> Result<[RecordBatch; 4], StoreError> {
        fn a(x: impl arrow_array::Array + 'static) -> ArrayRef {
            Arc::new(x)
        }
        let batch = |table: &'static str, schema, cols| {
            RecordBatch::try_new(schema, cols).map_err(|source| StoreError::Arrow { table, source })
        };
        let blocks = batch(
            "blocks",
            schema::blocks(),
            vec![
                a(self.b_height.finish()),
                a(self.b_hash.finish()),
                a(self.b_prev.finish()),
                a(self.b_time.finish()),
                a(self.b_version.finish()),
                a(self.b_merkle.finish()),
                a(self.b_bits.finish()),
                a(self.b_nonce.finish()),
                a(self.b_ntx.finish()),
                a(self.b_size.finish()),
                a(self.b_stripped.finish()),
                a(self.b_weight.finish()),
            ],
        )?;
        let transactions = batch(
            "transactions",
            schema::transactions(),
            vec![
                a(self.t_height.finish()),
                a(self.t_index.finish()),
                a(self.t_txid.finish()),
                a(self.t_time.finish()),
                a(self.t_version.finish()),
                a(self.t_locktime.finish()),
                a(self.t_size.finish()),
                a(self.t_vsize.finish()),
                a(self.t_weight.finish()),
                a(self.t_nin.finish()),
                a(self.t_nout.finish()),
                a(self.t_coinbase.finish()),
                a(self.t_in_value.finish()),
                a(self.t_out_value.finish()),
                a(self.t_fee.finish()),
            ],
        )?;
        let inputs = batch(
            "inputs",
            schema::inputs(),
            vec![
                a(self.i_height.finish()),
                a(self.i_txid.finish()),
                a(self.i_vin.finish()),
                a(self.i_prev_txid.finish()),
                a(self.i_prev_vout.finish()),
                a(self.i_value.finish()),
                a(self.i_address.finish()),
                a(self.i_script_type.finish()),
                a(self.i_sequence.finish()),
            ],
        )?;
        let outputs = batch(
            "outputs",
            schema::outputs(),
            vec![
                a(self.o_height.finish()),
                a(self.o_txid.finish()),
                a(self.o_vout.finish()),
                a(self.o_value.finish()),
                a(self.o_script_type.finish()),
                a(self.o_address.finish()),
            ],
        )?;
        Ok([blocks, transactions, inputs, outputs])
    }
}
