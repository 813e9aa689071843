//! Builds the [`Ledger`] of one asset from an Ethereum dataset (`data/ethereum`).
//!
//! - **ETH**: per transaction, in block and index order: its fee (gas used × effective gas
//!   price, or gas price where the receipt has none), paid by the sender even when it failed;
//!   its value to `to` (or to the contract it created) when it succeeded (status 1, or no
//!   status before Byzantium); then its internal transfers in call order (trace address),
//!   those that moved value: calls (not delegatecall, staticcall or callcode, which move
//!   none between accounts), creations and self-destructs, with status 1 (neither the frame
//!   nor one enclosing it failed).
//! - **A token** (ERC-20): its `Transfer` events in block and log order. Mints come from and
//!   burns go to the zero address, which is an account like any other here.
//!
//! A transfer from an account to itself moves nothing and is left out (under FIFO it would
//! otherwise requeue the account's oldest units as its newest); its fee stays.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow_array::Array;

use super::Amount;
use super::account::{FEE, Ledger, Transfer, UNKNOWN};
use crate::store::reader::{Cols, ReadError, each_batch, each_batch_of, part_files};
use crate::types::{ix, n32};

/// Why the transfers of an Ethereum dataset cannot be traced.
#[derive(Debug, thiserror::Error)]
pub enum EthTraceError {
    #[error(
        "--token {given:?}: use eth, a token symbol ({known}) or the token contract's 0x address"
    )]
    Token { given: String, known: String },
    #[error("{what}: amount {value} is not an integer below 2^128, which tracing needs")]
    Amount { what: String, value: String },
    #[error("{0}: the fee overflows")]
    FeeOverflow(String),
    #[error("{0}")]
    UnknownFee(String),
    #[error(
        "{0} is an ERC-721 (NFT) contract: its transfers move token ids, not amounts, so taint models do not apply"
    )]
    Nft(String),
    #[error(
        "the dataset holds no transfer of token {0}: check the address, or ingest the blocks where it moves"
    )]
    NoTokenTransfer(String),
    #[error("the dataset holds no ETH transfer: ingest blocks first")]
    NoEthTransfer,
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// What to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asset {
    Eth,
    /// An ERC-20 contract (lowercase 0x address).
    Token {
        contract: String,
        symbol: String,
        decimals: Option<u32>,
    },
}

/// Well-known Ethereum mainnet tokens: symbol, contract, decimals.
pub const KNOWN_TOKENS: [(&str, &str, u32); 5] = [
    ("USDT", "0xdac17f958d2ee523a2206206994597c13d831ec7", 6),
    ("USDC", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", 6),
    ("DAI", "0x6b175474e89094c44da98b954eedeac495271d0f", 18),
    ("WETH", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", 18),
    ("WBTC", "0x2260fac5e5542a773aa44fbb8fedb9e09f3a3e3c", 8),
];

impl Asset {
    /// Parses `--token`: `eth`, a known symbol, or a contract address.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(
        s: &str,
        decimals: Option<u32>,
        symbol: Option<&str>,
    ) -> Result<Asset, EthTraceError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("eth") {
            return Ok(Asset::Eth);
        }
        if let Some(k) = KNOWN_TOKENS.iter().find(|k| k.0.eq_ignore_ascii_case(t)) {
            return Ok(Asset::Token {
                contract: k.1.to_string(),
                symbol: k.0.to_string(),
                decimals: Some(decimals.unwrap_or(k.2)),
            });
        }
        if let Some(k) = KNOWN_TOKENS.iter().find(|k| k.1.eq_ignore_ascii_case(t)) {
            return Ok(Asset::Token {
                contract: k.1.to_string(),
                symbol: k.0.to_string(),
                decimals: Some(decimals.unwrap_or(k.2)),
            });
        }
        if is_address(t) {
            return Ok(Asset::Token {
                contract: t.to_ascii_lowercase(),
                symbol: symbol.unwrap_or_default().to_string(),
                decimals,
            });
        }
        Err(EthTraceError::Token {
            given: s.to_string(),
            known: KNOWN_TOKENS.map(|k| k.0).join(", "),
        })
    }

    /// The unit shown with amounts (ETH, USDT, or the contract's short address).
    pub fn unit(&self) -> String {
        match self {
            Asset::Eth => "ETH".into(),
            Asset::Token { symbol, .. } if !symbol.is_empty() => symbol.clone(),
            Asset::Token { contract, .. } => format!("{}…{}", &contract[..6], &contract[38..]),
        }
    }

    /// Decimal places of the unit (18 for ETH; a token's own, or 0 when unknown: raw units).
    pub fn decimals(&self) -> u32 {
        match self {
            Asset::Eth => 18,
            Asset::Token { decimals, .. } => decimals.unwrap_or(0),
        }
    }
}

/// Whether `s` is a 0x address (20 bytes of hex).
pub fn is_address(s: &str) -> bool {
    s.len() == 42 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn text(a: &arrow_array::StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn amount(s: &str, what: &dyn Fn() -> String) -> Result<Amount, EthTraceError> {
    s.parse::<Amount>().map_err(|_| EthTraceError::Amount {
        what: what(),
        value: s.to_string(),
    })
}

/// Text to dense id, hashed with foldhash (seeded per process, far faster than SipHash on
/// the many short keys a trace interns).
type Interned = HashMap<String, u32, foldhash::fast::RandomState>;

/// Account ids shared by every chunk of one trace.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    ids: Interned,
    /// Each account's address, by id.
    pub names: Vec<String>,
}

impl Accounts {
    fn intern(&mut self, a: &str) -> u32 {
        if let Some(&i) = self.ids.get(a) {
            return i;
        }
        let i = n32(self.names.len());
        self.names.push(a.to_string());
        self.ids.insert(a.to_string(), i);
        i
    }

    /// The id of `a`, if it has appeared.
    pub fn id(&self, a: &str) -> Option<u32> {
        self.ids.get(a).copied()
    }
}

/// Some consecutive transfers of one asset, in chain order: their transaction hashes (which
/// `Transfer::tx` indexes) and the ERC-721 transfers of the token that were passed over.
#[derive(Clone, Debug, Default)]
pub struct Chunk {
    pub txids: Vec<String>,
    pub transfers: Vec<Transfer>,
    pub nft: usize,
    /// Internal transfers whose value the node's trace did not give (a SELFDESTRUCT frame
    /// without beneficiary or value), described: not followed, and said in the case.
    pub incomplete: Vec<String>,
}

/// Interns transaction hashes (each text held once, by its map until the end); collects
/// transfers with their sort key.
struct Builder<'a> {
    accounts: &'a mut Accounts,
    txids: Interned,
    transfers: Vec<Transfer>,
    /// (block, tx_index, step, trace address) per transfer: the step is 0 for the fee, 1 for
    /// the value, 2 for internal transfers (ordered by trace address), or a token's log index.
    keys: Vec<(u64, u32, u32, Vec<u32>)>,
}

/// The sender of validator withdrawals in the account ledger: the consensus layer, not an
/// account (its ETH is clean: it was staked, not received from the traced value).
pub const WITHDRAWALS: &str = "(validator withdrawals)";

/// The sender of block and uncle rewards in the account ledger: newly minted ETH (clean).
pub const REWARDS: &str = "(block rewards)";

/// The id of `key` in `map`, a new one if it is not there yet.
fn intern(map: &mut Interned, key: &str) -> u32 {
    if let Some(&i) = map.get(key) {
        return i;
    }
    let i = n32(map.len());
    map.insert(key.to_string(), i);
    i
}

/// The keys of `map` in id order.
fn by_id(map: Interned) -> Vec<String> {
    let mut out = vec![String::new(); map.len()];
    for (k, i) in map {
        out[ix(i)] = k;
    }
    out
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        key: (u64, u32, u32, Vec<u32>),
        time: u32,
        tx: &str,
        from: &str,
        to: Option<&str>,
        value: Amount,
    ) {
        if to == Some(from) {
            return;
        }
        let tx = intern(&mut self.txids, tx);
        let from = self.accounts.intern(from);
        let to = to.map_or(FEE, |t| self.accounts.intern(t));
        self.transfers.push(Transfer {
            block: key.0,
            time,
            tx,
            from,
            to,
            value,
            unresolved: false,
        });
        self.keys.push(key);
    }

    /// An unresolved transfer: a SELFDESTRUCT of `from` whose value (or beneficiary `to`)
    /// the trace did not give.
    fn push_unresolved(
        &mut self,
        key: (u64, u32, u32, Vec<u32>),
        time: u32,
        tx: &str,
        from: &str,
        to: Option<&str>,
    ) {
        let tx = intern(&mut self.txids, tx);
        let from = self.accounts.intern(from);
        let to = to.map_or(UNKNOWN, |t| self.accounts.intern(t));
        self.transfers.push(Transfer {
            block: key.0,
            time,
            tx,
            from,
            to,
            value: 0,
            unresolved: true,
        });
        self.keys.push(key);
    }
    fn finish(self, nft: usize) -> Chunk {
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_by(|&a, &b| self.keys[a].cmp(&self.keys[b]).then(a.cmp(&b)));
        Chunk {
            txids: by_id(self.txids),
            transfers: order
                .into_iter()
                .map(|i| self.transfers[i].clone())
                .collect(),
            nft,
            incomplete: Vec::new(),
        }
    }
}

/// A frame's trace address (`0,2,1`) as a sort key; an unreadable step sorts last.
fn trace_address(s: &str) -> Vec<u32> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap_or(u32::MAX))
        .collect()
}

/// Block timestamps, by number.
///
/// # Errors
/// Unreadable parts.
pub fn block_times(chain_dir: &Path) -> Result<Vec<(u64, u32)>, EthTraceError> {
    let mut out = Vec::new();
    each_batch(&chain_dir.join("blocks"), &["number", "timestamp"], |b| {
        let c = Cols(b);
        let (n, t) = (c.u64("number")?, c.u64("timestamp")?);
        for i in 0..b.num_rows() {
            out.push((n.value(i), n32(t.value(i))));
        }
        Ok::<(), EthTraceError>(())
    })?;
    out.sort_unstable();
    Ok(out)
}

/// The rows of `address_cluster.parquet` in `dir` (`cluster ethereum`'s output).
///
/// # Errors
/// A missing or damaged file.
pub fn address_clusters(dir: &Path) -> Result<Vec<(String, u32)>, EthTraceError> {
    let mut out = Vec::new();
    each_batch_of(
        &[dir.join("address_cluster.parquet")],
        &["address", "cluster_id"],
        |b| {
            let c = Cols(b);
            let (a, id) = (c.str("address")?, c.u32("cluster_id")?);
            for i in 0..b.num_rows() {
                out.push((a.value(i).to_string(), id.value(i)));
            }
            Ok::<(), EthTraceError>(())
        },
    )?;
    Ok(out)
}

/// The part files (names) holding `asset`'s transfers, in block order: a trace reads them
/// one [`chunk`] at a time.
///
/// # Errors
/// The table is missing.
pub fn parts(chain_dir: &Path, asset: &Asset) -> Result<Vec<String>, EthTraceError> {
    let table = match asset {
        Asset::Eth => "transactions",
        Asset::Token { .. } => "token_transfers",
    };
    Ok(part_files(&chain_dir.join(table))?
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect())
}

/// Reads the transfers of `asset` in the part files named `parts` (see [`parts`]) up to
/// block `last`, in chain order; block times come from `times`.
///
/// # Errors
/// Damaged parts, or amounts beyond u128 (named by transaction and block).
pub fn chunk(
    chain_dir: &Path,
    asset: &Asset,
    parts: &[String],
    last: u64,
    times: &HashMap<u64, u32>,
    accounts: &mut Accounts,
) -> Result<Chunk, EthTraceError> {
    let time = |b: u64| times.get(&b).copied().unwrap_or(0);
    let files = |table: &str| -> Vec<PathBuf> {
        parts
            .iter()
            .map(|p| chain_dir.join(table).join(p))
            .filter(|p| p.is_file())
            .collect()
    };
    let mut l = Builder {
        accounts,
        txids: Interned::default(),
        transfers: Vec::new(),
        keys: Vec::new(),
    };
    let mut nft = 0usize;
    let mut incomplete: Vec<String> = Vec::new();
    match asset {
        Asset::Eth => {
            // Which transactions failed, for their internal transfers.
            let mut failed: std::collections::HashSet<String> = Default::default();
            each_batch_of(
                &files("transactions"),
                &[
                    "block_number",
                    "tx_index",
                    "hash",
                    "from",
                    "to",
                    "value",
                    "status",
                    "gas_used",
                    "gas_price",
                    "effective_gas_price",
                    "contract_address",
                    "blob_gas_used",
                    "blob_gas_price",
                ],
                |b| {
                    let c = Cols(b);
                    let (num, idx, hash) =
                        (c.u64("block_number")?, c.u32("tx_index")?, c.str("hash")?);
                    let (from, to, value) = (c.str("from")?, c.str("to")?, c.str("value")?);
                    let status = c.u32("status")?;
                    let created = c.str("contract_address")?;
                    let fees = c.tx_fees()?;
                    for i in 0..b.num_rows() {
                        let block = num.value(i);
                        if block > last {
                            continue;
                        }
                        let h = hash.value(i);
                        let what = || format!("transaction {h} (block {block})");
                        // Gas and (EIP-4844) blob gas both leave the traced value as fees; a
                        // fee the dataset does not give is an error, never 0.
                        let fee = fees
                            .fee(i)?
                            .ok_or_else(|| {
                                EthTraceError::UnknownFee(
                                    crate::ingest::ethereum::check::unknown_fee(&what()),
                                )
                            })?
                            .total()
                            .ok_or_else(|| EthTraceError::FeeOverflow(what()))?;
                        let key = |step| (block, idx.value(i), step, Vec::new());
                        if fee > 0 {
                            l.push(key(0), time(block), h, from.value(i), None, fee);
                        }
                        let ok = status.is_null(i) || status.value(i) == 1;
                        if !ok {
                            failed.insert(h.to_string());
                            continue;
                        }
                        let v = amount(value.value(i), &what)?;
                        if let (true, Some(dest)) = (v > 0, text(to, i).or(text(created, i))) {
                            l.push(key(1), time(block), h, from.value(i), Some(dest), v);
                        }
                    }
                    Ok::<(), EthTraceError>(())
                },
            )?;
            {
                each_batch_of(
                    &files("internal_transfers"),
                    &[
                        "block_number",
                        "tx_index",
                        "tx_hash",
                        "trace_address",
                        "kind",
                        "call_type",
                        "from",
                        "to",
                        "value",
                        "error",
                        "status",
                        "complete",
                    ],
                    |b| {
                        let c = Cols(b);
                        let (num, idx, hash) = (
                            c.u64("block_number")?,
                            c.u32("tx_index")?,
                            c.str("tx_hash")?,
                        );
                        let (ta, kind, ct) =
                            (c.str("trace_address")?, c.str("kind")?, c.str("call_type")?);
                        let (from, to, value) = (c.str("from")?, c.str("to")?, c.str("value")?);
                        // Datasets from before the status column: a frame's own error only.
                        let status = c.u32("status").ok();
                        // Datasets from before the complete column hold complete frames.
                        let complete = b
                            .column_by_name("complete")
                            .and_then(|x| arrow_array::cast::AsArray::as_boolean_opt(x));
                        let error = c.str("error")?;
                        for i in 0..b.num_rows() {
                            let h = hash.value(i);
                            let ok = match status {
                                Some(s) => s.value(i) == 1,
                                None => error.is_null(i),
                            };
                            let moves = crate::ingest::ethereum::decode::frame_moves_value(
                                kind.value(i),
                                text(ct, i),
                            );
                            if !ok || !moves || failed.contains(h) {
                                continue;
                            }
                            if complete.is_some_and(|x| !x.value(i)) || value.is_null(i) {
                                // What it moved is unknown: listed, never taken as 0, and
                                // replayed as an unresolved transfer that empties the sender.
                                let block = num.value(i);
                                if block > last {
                                    continue;
                                }
                                incomplete.push(format!(
                                    "block {block} transaction {h} frame [{}] (a SELFDESTRUCT of {} to {})",
                                    ta.value(i),
                                    text(from, i).unwrap_or("an unknown contract"),
                                    text(to, i).unwrap_or("an unknown beneficiary"),
                                ));
                                if let Some(f) = text(from, i) {
                                    let at = trace_address(ta.value(i));
                                    l.push_unresolved(
                                        (block, idx.value(i), 2, at),
                                        time(block),
                                        h,
                                        f,
                                        text(to, i),
                                    );
                                }
                                continue;
                            }
                            let (Some(f), Some(t)) = (text(from, i), text(to, i)) else {
                                continue;
                            };
                            let block = num.value(i);
                            if block > last {
                                continue;
                            }
                            let what = || format!("internal transfer of {h} (block {block})");
                            let v = amount(value.value(i), &what)?;
                            let at = trace_address(ta.value(i));
                            if v > 0 {
                                l.push((block, idx.value(i), 2, at), time(block), h, f, Some(t), v);
                            }
                        }
                        Ok::<(), EthTraceError>(())
                    },
                )?;
            }
            // Credits with no transaction and no sender account, after the block's
            // transactions: validator withdrawals (EIP-4895, from the consensus layer) and
            // pre-merge block and uncle rewards (minted). Both are clean ETH.
            let mut k = 0u32;
            for (table, sender, step) in [("withdrawals", WITHDRAWALS, 3), ("rewards", REWARDS, 4)]
            {
                each_batch_of(
                    &files(table),
                    &["block_number", "index", "address", "amount"],
                    |b| {
                        let c = Cols(b);
                        let (num, address, value) =
                            (c.u64("block_number")?, c.str("address")?, c.str("amount")?);
                        // A withdrawal is named by its consensus-layer index; a reward by its
                        // block and place in the file.
                        let index = c.u64("index").ok();
                        for i in 0..b.num_rows() {
                            k += 1;
                            let block = num.value(i);
                            if block > last {
                                continue;
                            }
                            // What the case names as the credit's transaction.
                            let id = match index {
                                Some(x) => format!("withdrawal {}", x.value(i)),
                                None => format!("reward {block}/{k}"),
                            };
                            let what = || format!("{id} to {}", address.value(i));
                            let v = amount(value.value(i), &what)?;
                            if v > 0 {
                                l.push(
                                    (block, u32::MAX, step, vec![k]),
                                    time(block),
                                    &id,
                                    sender,
                                    Some(address.value(i)),
                                    v,
                                );
                            }
                        }
                        Ok::<(), EthTraceError>(())
                    },
                )?;
            }
        }
        Asset::Token { contract, .. } => {
            each_batch_of(
                &files("token_transfers"),
                &[
                    "block_number",
                    "tx_index",
                    "tx_hash",
                    "log_index",
                    "token",
                    "from",
                    "to",
                    "value",
                    "standard",
                ],
                |b| {
                    let c = Cols(b);
                    let (num, idx, hash, li) = (
                        c.u64("block_number")?,
                        c.u32("tx_index")?,
                        c.str("tx_hash")?,
                        c.u64("log_index")?,
                    );
                    let (token, from, to, value, std) = (
                        c.str("token")?,
                        c.str("from")?,
                        c.str("to")?,
                        c.str("value")?,
                        c.str("standard")?,
                    );
                    for i in 0..b.num_rows() {
                        if token.value(i) != contract {
                            continue;
                        }
                        if std.value(i) != "erc20" {
                            nft += 1;
                            continue;
                        }
                        let block = num.value(i);
                        if block > last {
                            continue;
                        }
                        let h = hash.value(i);
                        let what = || format!("token transfer in {h} (block {block})");
                        let v = amount(value.value(i), &what)?;
                        let key = (block, idx.value(i), n32(li.value(i)), Vec::new());
                        l.push(key, time(block), h, from.value(i), Some(to.value(i)), v);
                    }
                    Ok::<(), EthTraceError>(())
                },
            )?;
        }
    }
    let mut c = l.finish(nft);
    c.incomplete = incomplete;
    Ok(c)
}

/// Why a dataset gives `asset` nothing to trace (no ERC-20 transfer of the token).
pub fn nothing_to_trace(asset: &Asset, nft: usize) -> EthTraceError {
    match asset {
        Asset::Token { contract, .. } if nft > 0 => EthTraceError::Nft(contract.clone()),
        Asset::Token { contract, .. } => EthTraceError::NoTokenTransfer(contract.clone()),
        Asset::Eth => EthTraceError::NoEthTransfer,
    }
}

/// Every transfer of `asset` up to block `last` as one [`Ledger`].
///
/// # Errors
/// As [`chunk`], and a dataset with nothing to trace.
pub fn ledger(chain_dir: &Path, asset: &Asset, last: u64) -> Result<Ledger, EthTraceError> {
    let times: HashMap<u64, u32> = block_times(chain_dir)?.into_iter().collect();
    let mut accounts = Accounts::default();
    let c = chunk(
        chain_dir,
        asset,
        &parts(chain_dir, asset)?,
        last,
        &times,
        &mut accounts,
    )?;
    if c.transfers.is_empty() {
        return Err(nothing_to_trace(asset, c.nft));
    }
    Ok(Ledger {
        accounts: accounts.names,
        txids: c.txids,
        transfers: c.transfers,
    })
}
