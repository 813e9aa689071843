//! One transaction as the heuristics see it: its inputs' and outputs' addresses, values
//! and script types, and for each output address whether this transaction is where it was
//! first seen and how many times it ever receives. The index fills it
//! ([`TxView::of`]); a test writes one literally.

use crate::index::{Index, Prev};
use crate::ingest::bitcoin::script::ScriptType;
use crate::types::{AddrIx, TxIx};

/// An input: the output it spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input {
    /// Dense address id of the spent output, `None` when it has no address.
    pub address: Option<AddrIx>,
    /// Value of the spent output, in satoshi.
    pub value: u64,
    pub script: ScriptType,
}

/// The transaction that spends an output, as the forward-looking rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spender {
    /// Its number of inputs.
    pub inputs: u32,
    /// Its number of outputs.
    pub outputs: u32,
    /// Its block height.
    pub height: u32,
    /// Its transaction id in the index.
    pub tx: u32,
    /// Its wallet fingerprint ([`crate::cluster::fingerprint`]), when the dataset's were
    /// read.
    pub fingerprint: Option<u8>,
}

impl Spender {
    /// A spender of `inputs` inputs and `outputs` outputs at `height`.
    pub fn new(inputs: u32, outputs: u32, height: u32) -> Spender {
        Spender {
            inputs,
            outputs,
            height,
            tx: 0,
            fingerprint: None,
        }
    }
}

/// An output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Output {
    /// Dense address id, `None` for an output without an address (OP_RETURN, bare
    /// multisig, non-standard).
    pub address: Option<AddrIx>,
    /// Value, in satoshi.
    pub value: u64,
    pub script: ScriptType,
    /// This transaction is the first in the chain to pay the address.
    pub first_seen: bool,
    /// How many outputs ever pay the address (1: used once).
    pub receives: u64,
    /// The transaction spending it, in the dataset (`None`: unspent).
    pub spender: Option<Spender>,
    /// The address's cluster after the first pass (root, size in addresses), for the
    /// cluster-aware rules; `None` outside the second pass.
    pub cluster: Option<(u32, u64)>,
}

/// A transaction's inputs and outputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxView {
    /// A coinbase (it spends nothing).
    pub coinbase: bool,
    /// Some inputs spend outputs from outside the dataset: `inputs` lacks them,
    /// so no change rule may judge the transaction.
    pub partial: bool,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
    /// The first-pass cluster (root) of the first input's address, for the
    /// cluster-aware rules; `None` outside the second pass.
    pub sender_cluster: Option<u32>,
    /// Its wallet fingerprint ([`crate::cluster::fingerprint`]), when the dataset's were
    /// read.
    pub fingerprint: Option<u8>,
    /// The day's price of its block (micro-units of fiat per coin), when prices were given.
    pub price: Option<u128>,
}

impl TxView {
    /// Transaction `t` of `idx`.
    pub fn of(idx: &Index, t: TxIx) -> TxView {
        let mut v = TxView::default();
        v.load(idx, t);
        v
    }

    /// Refills this view with transaction `t` of `idx`, reusing its buffers (the
    /// clustering loop visits every transaction of a chain).
    pub fn load(&mut self, idx: &Index, t: TxIx) {
        // One pass over the inputs: what each spends.
        self.inputs.clear();
        let (mut coinbase, mut partial) = (false, false);
        for i in idx.inputs_of(t) {
            match idx.prev(i) {
                Prev::Coinbase => coinbase = true,
                Prev::BeforeWindow(_) => partial = true,
                Prev::Output(o) => self.inputs.push(Input {
                    address: idx.out_address(o),
                    value: idx.value(o).to_sat(),
                    script: idx.out_script_type(o),
                }),
            }
        }
        // The index's rule: a coinbase spends nothing, through its one input.
        self.coinbase = coinbase && self.inputs.is_empty() && !partial;
        self.partial = partial;
        self.outputs.clear();
        self.sender_cluster = None;
        self.fingerprint = None;
        self.price = None;
        self.outputs.extend(idx.outputs_of(t).map(|o| {
            let address = idx.out_address(o);
            Output {
                address,
                value: idx.value(o).to_sat(),
                script: idx.out_script_type(o),
                first_seen: address.is_some_and(|a| idx.first_tx_of(a) == t),
                receives: address.map_or(0, |a| idx.receives(a)),
                spender: idx.spender(o).map(|s| Spender {
                    inputs: crate::types::n32(idx.n_inputs(s)),
                    outputs: crate::types::n32(idx.n_outputs(s)),
                    height: idx.tx_height(s).0,
                    tx: s.0,
                    fingerprint: None,
                }),
                cluster: None,
            }
        }));
    }

    /// A view for tests: inputs as (address, value), outputs as (address, value,
    /// first_seen, receives), every script P2WPKH.
    pub fn literal(inputs: &[(u32, u64)], outputs: &[(u32, u64, bool, u64)]) -> TxView {
        TxView {
            coinbase: false,
            partial: false,
            inputs: inputs
                .iter()
                .map(|&(a, v)| Input {
                    address: Some(AddrIx(a)),
                    value: v,
                    script: ScriptType::P2wpkh,
                })
                .collect(),
            outputs: outputs
                .iter()
                .map(|&(a, v, first_seen, receives)| Output {
                    address: Some(AddrIx(a)),
                    value: v,
                    script: ScriptType::P2wpkh,
                    first_seen,
                    receives,
                    spender: None,
                    cluster: None,
                })
                .collect(),
            sender_cluster: None,
            fingerprint: None,
            price: None,
        }
    }
}
