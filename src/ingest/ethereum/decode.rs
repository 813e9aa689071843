//! `eth_getBlockByNumber(N, true)` replies → block and transaction rows, exactly: quantities
//! that can exceed 64 bits (wei values, gas prices, difficulty) are kept as decimal text
//! converted digit by digit from the hex quantity, never through a float. Every transaction
//! type is read: legacy (0), access list (1, EIP-2930), dynamic fee (2, EIP-1559), blob (3,
//! EIP-4844) and set-code (4, EIP-7702); a missing `to` is a contract creation.

use crate::types::{n32, n64};
use serde_json::Value;

/// A reply that does not decode, with where.
#[derive(Debug, thiserror::Error)]
#[error("block {block}: {what}")]
pub struct DecodeError {
    /// The block number or hash, as far as known.
    pub block: String,
    pub what: String,
}

/// A block row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub number: u64,
    pub hash: String,
    pub parent_hash: String,
    pub timestamp: u64,
    pub miner: String,
    pub gas_limit: u64,
    pub gas_used: u64,
    /// EIP-1559 base fee (London and later), decimal wei.
    pub base_fee_per_gas: Option<String>,
    pub size: Option<u64>,
    pub difficulty: String,
    pub nonce: Option<String>,
    pub tx_count: u32,
    pub withdrawal_count: Option<u32>,
    pub blob_gas_used: Option<u64>,
    /// Log indexes of the block's `Transfer` logs that no known shape decodes (set by the
    /// ingest from the receipts): kept, never silently dropped.
    pub unparsed_transfer_logs: Vec<u64>,
    /// Validator withdrawals (EIP-4895), in block order; empty before Shanghai (then
    /// `withdrawal_count` is `None`).
    pub withdrawals: Vec<Withdrawal>,
    /// The hashes of the uncle (ommer) headers the block includes (proof of work only).
    pub uncles: Vec<String>,
}

/// A validator withdrawal (EIP-4895): ETH the consensus layer credits to `address`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    pub index: u64,
    pub validator_index: u64,
    pub address: String,
    /// Wei, exact decimal text: the block's gwei × 10^9.
    pub amount_wei: String,
}

/// A transaction row (receipt fields come from the receipts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub block_number: u64,
    pub block_hash: String,
    pub tx_index: u32,
    pub hash: String,
    pub nonce: u64,
    pub from: String,
    /// `None`: a contract creation.
    pub to: Option<String>,
    /// Decimal wei.
    pub value: String,
    pub gas: u64,
    pub gas_price: Option<String>,
    pub max_fee_per_gas: Option<String>,
    pub max_priority_fee_per_gas: Option<String>,
    pub max_fee_per_blob_gas: Option<String>,
    pub tx_type: u8,
    /// The first four bytes of the input (`0x` + 8 hex digits), if any.
    pub input_selector: Option<String>,
    pub input_bytes: u32,
    pub blob_hashes: u32,
    pub timestamp: u64,
}

/// Hex quantity (`0x…`) → decimal text, for any width.
///
/// # Errors
/// Not a `0x`-prefixed hex string.
pub fn hex_to_decimal(s: &str) -> Result<String, crate::types::InvalidValue> {
    let h = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("{s:?} is not a hex quantity"))?;
    if h.is_empty() || h.len() > 64 {
        return Err(format!("{s:?} is not a 256-bit hex quantity").into());
    }
    // Base-10^9 limbs, least significant first.
    let mut limbs: Vec<u64> = vec![0];
    for c in h.chars() {
        let d = c.to_digit(16).ok_or_else(|| format!("{s:?} is not hex"))? as u64;
        let mut carry = d;
        for l in &mut limbs {
            let v = *l * 16 + carry;
            *l = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    let mut out = limbs.last().copied().unwrap_or(0).to_string();
    for l in limbs.iter().rev().skip(1) {
        out.push_str(&format!("{l:09}"));
    }
    Ok(out)
}

struct Fields<'a> {
    v: &'a Value,
    block: String,
}

impl Fields<'_> {
    fn err(&self, what: String) -> DecodeError {
        DecodeError {
            block: self.block.clone(),
            what,
        }
    }
    fn str_opt(&self, k: &str) -> Result<Option<String>, DecodeError> {
        match self.v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.to_ascii_lowercase())),
            Some(x) => Err(self.err(format!("{k} is {x}, not a string"))),
        }
    }
    fn str(&self, k: &str) -> Result<String, DecodeError> {
        self.str_opt(k)?
            .ok_or_else(|| self.err(format!("{k} is missing")))
    }
    fn u64_opt(&self, k: &str) -> Result<Option<u64>, DecodeError> {
        let Some(s) = self.str_opt(k)? else {
            return Ok(None);
        };
        let h = s
            .strip_prefix("0x")
            .ok_or_else(|| self.err(format!("{k} = {s:?} is not a hex quantity")))?;
        u64::from_str_radix(if h.is_empty() { "0" } else { h }, 16)
            .map(Some)
            .map_err(|_| self.err(format!("{k} = {s:?} is not a 64-bit quantity")))
    }
    fn u64(&self, k: &str) -> Result<u64, DecodeError> {
        self.u64_opt(k)?
            .ok_or_else(|| self.err(format!("{k} is missing")))
    }
    fn dec_opt(&self, k: &str) -> Result<Option<String>, DecodeError> {
        self.str_opt(k)?
            .map(|s| hex_to_decimal(&s).map_err(|e| self.err(format!("{k}: {e}"))))
            .transpose()
    }
}

/// Decodes one `eth_getBlockByNumber(N, true)` result object.
///
/// # Errors
/// A missing or malformed field, named with the block and the transaction.
pub fn decode_block(v: &Value) -> Result<(Block, Vec<Transaction>), DecodeError> {
    let label = v
        .get("number")
        .and_then(Value::as_str)
        .and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok())
        .map_or_else(|| "?".to_string(), |n| n.to_string());
    let f = Fields { v, block: label };
    if !v.is_object() {
        return Err(f.err(format!("the reply is {v}, not a block object")));
    }
    let txs = match v.get("transactions") {
        Some(Value::Array(a)) => a,
        _ => return Err(f.err("transactions is missing (ask with full transactions: true)".into())),
    };
    let number = f.u64("number")?;
    let timestamp = f.u64("timestamp")?;
    let hash = f.str("hash")?;
    let block = Block {
        number,
        hash: hash.clone(),
        parent_hash: f.str("parentHash")?,
        timestamp,
        miner: f.str("miner")?,
        gas_limit: f.u64("gasLimit")?,
        gas_used: f.u64("gasUsed")?,
        base_fee_per_gas: f.dec_opt("baseFeePerGas")?,
        size: f.u64_opt("size")?,
        difficulty: f.dec_opt("difficulty")?.unwrap_or_else(|| "0".into()),
        nonce: f.str_opt("nonce")?,
        tx_count: n32(txs.len()),
        withdrawal_count: v
            .get("withdrawals")
            .and_then(Value::as_array)
            .map(|w| n32(w.len())),
        blob_gas_used: f.u64_opt("blobGasUsed")?,
        unparsed_transfer_logs: Vec::new(),
        uncles: v
            .get("uncles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|u| {
                u.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| f.err(format!("an uncle hash is {u}, not a string")))
            })
            .collect::<Result<_, _>>()?,
        withdrawals: v
            .get("withdrawals")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|w| {
                let wf = Fields {
                    v: w,
                    block: f.block.clone(),
                };
                let gwei = u128::from(wf.u64("amount")?);
                Ok(Withdrawal {
                    index: wf.u64("index")?,
                    validator_index: wf.u64("validatorIndex")?,
                    address: wf.str("address")?.to_ascii_lowercase(),
                    amount_wei: (gwei * 1_000_000_000).to_string(),
                })
            })
            .collect::<Result<_, DecodeError>>()?,
    };
    let mut out = Vec::with_capacity(txs.len());
    for (i, t) in txs.iter().enumerate() {
        if !t.is_object() {
            return Err(f.err(format!(
                "transaction {i} is a hash, not an object (ask with full transactions: true)"
            )));
        }
        let tf = Fields {
            v: t,
            block: format!("{number} transaction {i}"),
        };
        let tx_type = tf.u64_opt("type")?.unwrap_or(0);
        if tx_type > 4 {
            return Err(tf.err(format!("unknown transaction type {tx_type}")));
        }
        let input = tf.str_opt("input")?.unwrap_or_else(|| "0x".into());
        let input_hex = input.strip_prefix("0x").unwrap_or(&input);
        let index = tf.u64_opt("transactionIndex")?.unwrap_or(n64(i));
        if index != n64(i) {
            return Err(tf.err(format!("transactionIndex {index} at position {i}")));
        }
        out.push(Transaction {
            block_number: number,
            block_hash: hash.clone(),
            tx_index: n32(i),
            hash: tf.str("hash")?,
            nonce: tf.u64("nonce")?,
            from: tf.str("from")?,
            to: tf.str_opt("to")?,
            value: tf.dec_opt("value")?.unwrap_or_else(|| "0".into()),
            gas: tf.u64("gas")?,
            gas_price: tf.dec_opt("gasPrice")?,
            max_fee_per_gas: tf.dec_opt("maxFeePerGas")?,
            max_priority_fee_per_gas: tf.dec_opt("maxPriorityFeePerGas")?,
            max_fee_per_blob_gas: tf.dec_opt("maxFeePerBlobGas")?,
            tx_type: tx_type as u8,
            input_selector: (input_hex.len() >= 8).then(|| format!("0x{}", &input_hex[..8])),
            input_bytes: (input_hex.len() / 2) as u32,
            blob_hashes: t
                .get("blobVersionedHashes")
                .and_then(Value::as_array)
                .map_or(0, |a| n32(a.len())),
            timestamp,
        });
    }
    Ok((block, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_quantities_become_exact_decimals() {
        assert_eq!(hex_to_decimal("0x0").unwrap(), "0");
        assert_eq!(
            hex_to_decimal("0x5f68e8131ecf80000").unwrap(),
            "110000000000000000000"
        );
        assert_eq!(
            hex_to_decimal(&format!("0x{}", "f".repeat(64))).unwrap(),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
        for v in [1u128, 255, 1 << 64, u128::MAX] {
            assert_eq!(hex_to_decimal(&format!("{v:#x}")).unwrap(), v.to_string());
        }
        assert!(hex_to_decimal("12").is_err());
        assert!(hex_to_decimal("0xzz").is_err());
        assert!(hex_to_decimal(&format!("0x{}", "1".repeat(65))).is_err());
    }

    #[test]
    fn erc1155_single_and_batch_give_one_row_per_id() {
        let w = |v: u64| format!("{v:064x}");
        let addr = |a: &str| format!("0x{a:0>64}");
        let (op, from, to) = ("aa", "bb", "cc");
        let log = |i: u64, topic: &str, data: String| Log {
            log_index: i,
            address: "0x76be3b62873462d2142405439777e971754e8e77".into(),
            topics: vec![topic.into(), addr(op), addr(from), addr(to)],
            data: format!("0x{data}"),
        };
        let single = log(3, TRANSFER_SINGLE_TOPIC, w(7) + &w(100));
        // ids [1, 2] at offset 0x40, amounts [10, 20] at offset 0xa0.
        let batch = log(
            4,
            TRANSFER_BATCH_TOPIC,
            [w(0x40), w(0xa0), w(2), w(1), w(2), w(2), w(10), w(20)].concat(),
        );
        // A batch whose arrays differ in length is not decoded, and is listed.
        let bad = log(
            5,
            TRANSFER_BATCH_TOPIC,
            [w(0x40), w(0x80), w(1), w(1), w(2), w(10), w(20)].concat(),
        );
        let logs = [single, batch, bad];
        let rows: Vec<(u64, String, String, String, String)> = erc1155_transfers("0xab", &logs)
            .into_iter()
            .map(|t| {
                assert_eq!(t.standard, "erc1155");
                assert_eq!(
                    t.operator.as_deref(),
                    Some("0x00000000000000000000000000000000000000aa")
                );
                assert_eq!(t.from, "0x00000000000000000000000000000000000000bb");
                (
                    t.log_index,
                    t.token_id.unwrap(),
                    t.value,
                    t.to.clone(),
                    t.token,
                )
            })
            .collect();
        let to = "0x00000000000000000000000000000000000000cc".to_string();
        let token = "0x76be3b62873462d2142405439777e971754e8e77".to_string();
        assert_eq!(
            rows,
            vec![
                (3, "7".into(), "100".into(), to.clone(), token.clone()),
                (4, "1".into(), "10".into(), to.clone(), token.clone()),
                (4, "2".into(), "20".into(), to, token),
            ]
        );
        assert_eq!(unparsed_transfers(&logs), vec![5]);
    }

    #[test]
    fn malformed_blocks_are_named() {
        let e = decode_block(&serde_json::json!({"number": "0x10", "transactions": ["0xab"]}))
            .unwrap_err();
        assert!(e.to_string().starts_with("block 16"), "{e}");
        let e = decode_block(&serde_json::json!({"number": "0x10"})).unwrap_err();
        assert!(e.to_string().contains("full transactions"), "{e}");
    }
}

/// A log of a receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    pub log_index: u64,
    pub address: String,
    pub topics: Vec<String>,
    pub data: String,
}

/// A receipt row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub tx_hash: String,
    pub tx_index: u32,
    pub block_number: u64,
    /// 1 success, 0 failure; `None` before Byzantium (a state root instead).
    pub status: Option<u8>,
    pub gas_used: u64,
    pub cumulative_gas_used: u64,
    pub effective_gas_price: Option<String>,
    pub contract_address: Option<String>,
    pub logs: Vec<Log>,
    /// EIP-4844 (type 3): blob gas used and wei per blob gas (decimal); `None` otherwise.
    pub blob_gas_used: Option<u64>,
    pub blob_gas_price: Option<String>,
}

/// Decodes one `eth_getTransactionReceipt` result (or one element of
/// `eth_getBlockReceipts`).
///
/// # Errors
/// A missing or malformed field.
pub fn decode_receipt(v: &Value) -> Result<Receipt, DecodeError> {
    let f = Fields {
        v,
        block: format!(
            "{} receipt of {}",
            v.get("blockNumber").and_then(Value::as_str).unwrap_or("?"),
            v.get("transactionHash")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
    };
    let mut logs = Vec::new();
    for l in v
        .get("logs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let lf = Fields {
            v: l,
            block: f.block.clone(),
        };
        logs.push(Log {
            log_index: lf.u64("logIndex")?,
            address: lf.str("address")?,
            topics: l
                .get("topics")
                .and_then(Value::as_array)
                .ok_or_else(|| lf.err("a log has no topics array".into()))?
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_ascii_lowercase)
                        .ok_or_else(|| lf.err("a topic is not a string".into()))
                })
                .collect::<Result<_, _>>()?,
            data: lf.str_opt("data")?.unwrap_or_else(|| "0x".into()),
        });
    }
    Ok(Receipt {
        tx_hash: f.str("transactionHash")?,
        tx_index: f.u64("transactionIndex")? as u32,
        block_number: f.u64("blockNumber")?,
        status: f.u64_opt("status")?.map(|s| s as u8),
        gas_used: f.u64("gasUsed")?,
        cumulative_gas_used: f.u64("cumulativeGasUsed")?,
        effective_gas_price: f.dec_opt("effectiveGasPrice")?,
        blob_gas_used: f.u64_opt("blobGasUsed")?,
        blob_gas_price: f.dec_opt("blobGasPrice")?,
        contract_address: f.str_opt("contractAddress")?,
        logs,
    })
}

/// `keccak256("Transfer(address,address,uint256)")`, the topic of ERC-20 and ERC-721
/// transfers.
pub const TRANSFER_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// A token transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenTransfer {
    pub tx_hash: String,
    pub log_index: u64,
    pub token: String,
    pub from: String,
    pub to: String,
    /// ERC-20: the amount; ERC-721: the token id (decimal).
    pub value: String,
    /// `erc20` (3 topics, the amount in the data) or `erc721` (4 topics, the id indexed;
    /// or 1 topic with from, to and id in the data, as pre-standard NFTs such as
    /// CryptoKitties emit it), or `erc1155` (`TransferSingle`/`TransferBatch`: `value` is
    /// the amount of `token_id`).
    pub standard: &'static str,
    /// ERC-1155: the token id (decimal); `None` for the other standards.
    pub token_id: Option<String>,
    /// ERC-1155: the operator who made the transfer.
    pub operator: Option<String>,
}

/// `keccak256("TransferSingle(address,address,address,uint256,uint256)")` (EIP-1155).
pub const TRANSFER_SINGLE_TOPIC: &str =
    "0xc3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62";
/// `keccak256("TransferBatch(address,address,address,uint256[],uint256[])")` (EIP-1155).
pub const TRANSFER_BATCH_TOPIC: &str =
    "0x4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb";

/// The `(id, amount)` pairs of an ERC-1155 log's data: one pair for `TransferSingle`
/// (two words), the two ABI-encoded arrays of `TransferBatch` (head: two offsets; each
/// array: its length, then its words). `None` if the data is not of that shape.
fn erc1155_pairs(batch: bool, data: &str) -> Option<Vec<(String, String)>> {
    let hex = data.strip_prefix("0x")?;
    let word = |k: usize| hex.get(64 * k..64 * (k + 1)).map(|w| format!("0x{w}"));
    let int = |k: usize| -> Option<usize> {
        let w = word(k)?;
        let v = u64::from_str_radix(w.get(w.len() - 16..)?, 16).ok()?;
        (w[2..w.len() - 16].bytes().all(|b| b == b'0')).then_some(usize::try_from(v).ok()?)
    };
    if !batch {
        if hex.len() != 128 {
            return None;
        }
        return Some(vec![(
            hex_to_decimal(&word(0)?).ok()?,
            hex_to_decimal(&word(1)?).ok()?,
        )]);
    }
    let (ids_at, values_at) = (int(0)?, int(1)?);
    if ids_at % 32 != 0 || values_at % 32 != 0 {
        return None;
    }
    let array = |at: usize| -> Option<Vec<String>> {
        let k = at / 32;
        let n = int(k)?;
        (0..n)
            .map(|j| hex_to_decimal(&word(k + 1 + j)?).ok())
            .collect()
    };
    let (ids, values) = (array(ids_at)?, array(values_at)?);
    (ids.len() == values.len()).then(|| ids.into_iter().zip(values).collect())
}

/// The ERC-1155 transfers among `logs` of transaction `tx_hash`: one per (id, amount) of
/// each `TransferSingle` and `TransferBatch` (EIP-1155); a log of another shape is listed by
/// [`unparsed_transfers`].
pub fn erc1155_transfers(tx_hash: &str, logs: &[Log]) -> Vec<TokenTransfer> {
    let mut out = Vec::new();
    for l in logs {
        let batch = match l.topics.first().map(String::as_str) {
            Some(TRANSFER_SINGLE_TOPIC) => false,
            Some(TRANSFER_BATCH_TOPIC) => true,
            _ => continue,
        };
        let (Some(op), Some(from), Some(to)) = (
            l.topics.get(1).and_then(|t| topic_address(t)),
            l.topics.get(2).and_then(|t| topic_address(t)),
            l.topics.get(3).and_then(|t| topic_address(t)),
        ) else {
            continue;
        };
        if l.topics.len() != 4 {
            continue;
        }
        for (id, amount) in erc1155_pairs(batch, &l.data).unwrap_or_default() {
            out.push(TokenTransfer {
                tx_hash: tx_hash.to_string(),
                log_index: l.log_index,
                token: l.address.clone(),
                from: from.clone(),
                to: to.clone(),
                value: amount,
                standard: "erc1155",
                token_id: Some(id),
                operator: Some(op.clone()),
            });
        }
    }
    out
}

fn topic_address(t: &str) -> Option<String> {
    let h = t.strip_prefix("0x")?;
    (h.len() == 64 && h[..24].bytes().all(|b| b == b'0')).then(|| format!("0x{}", &h[24..]))
}

/// A `Transfer` log's `(from, to, value, standard)` by its shape (topics + data words):
/// 3 topics and one data word (ERC-20: the amount), 4 topics and no data (ERC-721: the id
/// indexed), or 1 topic and three data words (a pre-standard NFT such as CryptoKitties:
/// from, to and id in the data; ethereum-etl's rule). `None` for any other shape.
fn transfer_shape(l: &Log) -> Option<(String, String, String, &'static str)> {
    let data = l.data.strip_prefix("0x")?;
    let word = |k: usize| data.get(64 * k..64 * (k + 1)).map(|w| format!("0x{w}"));
    match (l.topics.len(), data.len()) {
        (3, 64) => Some((
            topic_address(&l.topics[1])?,
            topic_address(&l.topics[2])?,
            hex_to_decimal(&l.data).ok()?,
            "erc20",
        )),
        (4, 0) => Some((
            topic_address(&l.topics[1])?,
            topic_address(&l.topics[2])?,
            hex_to_decimal(&l.topics[3]).ok()?,
            "erc721",
        )),
        (1, 192) => Some((
            topic_address(&word(0)?)?,
            topic_address(&word(1)?)?,
            hex_to_decimal(&word(2)?).ok()?,
            "erc721",
        )),
        _ => None,
    }
}

/// The log indexes of the transfer logs among `logs` (`Transfer`, ERC-1155
/// `TransferSingle`/`TransferBatch`) that [`token_transfers`] and [`erc1155_transfers`]
/// cannot decode (another shape): the ingest keeps them per block rather than drop them
/// unsaid.
pub fn unparsed_transfers(logs: &[Log]) -> Vec<u64> {
    logs.iter()
        .filter(|l| match l.topics.first().map(String::as_str) {
            Some(TRANSFER_TOPIC) => transfer_shape(l).is_none(),
            Some(t @ (TRANSFER_SINGLE_TOPIC | TRANSFER_BATCH_TOPIC)) => {
                l.topics.len() != 4
                    || l.topics[1..].iter().any(|x| topic_address(x).is_none())
                    || erc1155_pairs(t == TRANSFER_BATCH_TOPIC, &l.data).is_none()
            }
            _ => false,
        })
        .map(|l| l.log_index)
        .collect()
}

/// The ERC-20 and ERC-721 `Transfer` events among `logs` of transaction `tx_hash`, told apart
/// by their shape ([`transfer_shape`]). Other events are skipped; `Transfer` events of
/// another shape are listed by [`unparsed_transfers`].
pub fn token_transfers(tx_hash: &str, logs: &[Log]) -> Vec<TokenTransfer> {
    logs.iter()
        .filter(|l| l.topics.first().is_some_and(|t| t == TRANSFER_TOPIC))
        .filter_map(|l| {
            let (from, to, value, standard) = transfer_shape(l)?;
            Some(TokenTransfer {
                tx_hash: tx_hash.to_string(),
                log_index: l.log_index,
                token: l.address.clone(),
                from,
                to,
                value,
                standard,
                token_id: None,
                operator: None,
            })
        })
        .collect()
}

/// Whether a frame of `kind` (`call`, `create`, `suicide`) and `call_type` moves value when
/// it succeeds: calls of type `call` (not `delegatecall`, `callcode` or `staticcall`,
/// which move nothing to another account), creations and SELFDESTRUCTs. The one rule the
/// trace and the balance reconciliation both use.
pub fn frame_moves_value(kind: &str, call_type: Option<&str>) -> bool {
    match kind {
        "call" => call_type == Some("call"),
        _ => true,
    }
}

/// A call frame of a transaction (geth `callTracer`), flattened: an internal value transfer
/// when `value` is not zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub tx_index: u32,
    /// Position in the call tree (parity style): empty for the top call, `[0, 1]` for the
    /// second call made by the first sub-call.
    pub trace_address: Vec<u32>,
    /// `call`, `create` or `suicide`.
    pub kind: &'static str,
    /// `call`, `callcode`, `delegatecall`, `staticcall` for calls.
    pub call_type: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub value: String,
    pub gas: u64,
    pub gas_used: u64,
    pub subtraces: u32,
    /// The frame's own error.
    pub error: Option<String>,
    /// 1, or 0 when the frame or one enclosing it failed: its value did not move.
    pub status: u32,
    /// False when the node's trace left out what the frame moved: a SELFDESTRUCT frame
    /// without its beneficiary or value (geth's callTracer before late 2020, one reth
    /// release). Its `value` is then unknown — not 0 — and its row holds no value.
    pub complete: bool,
}

/// Flattens a `debug_traceBlockByNumber(N, {tracer: "callTracer"})` result (one element per
/// transaction, in block order) into frames, depth first.
///
/// # Errors
/// A malformed frame, named with the block and transaction; a transaction the node could
/// not trace (`{"error": …, "txHash": …}` in place of its result: a node that no longer
/// keeps the state of old blocks), with the node's message.
pub fn flatten_call_traces(block: u64, result: &Value) -> Result<Vec<Frame>, DecodeError> {
    let txs = result.as_array().ok_or_else(|| DecodeError {
        block: block.to_string(),
        what: "the trace reply is not an array".into(),
    })?;
    let mut out = Vec::new();
    for (i, t) in txs.iter().enumerate() {
        if let Some(e) = t.get("error").filter(|e| !e.is_null()) {
            let msg = e
                .as_str()
                .map(str::to_string)
                .or_else(|| e.get("message").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| e.to_string());
            return Err(DecodeError {
                block: block.to_string(),
                what: format!(
                    "the node could not trace transaction {i}{} ({msg:?}): it may no longer keep the state of this block; use an archive node, --traces parity if it offers trace_block, or --traces none",
                    t.get("txHash")
                        .and_then(Value::as_str)
                        .map(|h| format!(" {h}"))
                        .unwrap_or_default()
                ),
            });
        }
        let root = t.get("result").unwrap_or(t);
        walk(block, n32(i), root, &mut Vec::new(), false, None, &mut out)?;
    }
    Ok(out)
}

/// A block or uncle reward (proof of work): ETH minted to `author`, with no transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reward {
    pub author: String,
    /// `block` or `uncle`.
    pub reward_type: String,
    /// Wei, exact decimal text.
    pub value: String,
}

/// The hash of Ethereum mainnet's genesis block: the fork schedule of
/// [`schedule_rewards`] is mainnet's, so it applies only to a chain with this block 0.
pub const MAINNET_GENESIS: &str =
    "0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3";

/// The first mainnet block of Byzantium (EIP-649: block reward 5 → 3 ETH), Constantinople
/// (EIP-1234: 3 → 2 ETH) and Paris (EIP-3675, the merge: no more block rewards).
pub const BYZANTIUM: u64 = 4_370_000;
/// See [`BYZANTIUM`].
pub const CONSTANTINOPLE: u64 = 7_280_000;
/// See [`BYZANTIUM`].
pub const PARIS: u64 = 15_537_394;

/// The block and uncle rewards of mainnet block `number` mined by `miner` that includes
/// `uncles` as (uncle number, uncle miner), computed from the fork schedule (Yellow Paper
/// §11.3, with EIP-649 and EIP-1234): the miner gets the base reward R (5, 3 or 2 ETH)
/// plus R/32 per uncle (`block`); each uncle's miner gets (uncle + 8 − number) × R / 8
/// (`uncle`). Nothing from Paris on. For nodes without `trace_block`'s reward traces; the
/// test holds it equal to them on recorded mainnet blocks.
pub fn schedule_rewards(number: u64, miner: &str, uncles: &[(u64, String)]) -> Vec<Reward> {
    const ETH: u128 = 1_000_000_000_000_000_000;
    let base = match number {
        0 => return Vec::new(),
        n if n < BYZANTIUM => 5 * ETH,
        n if n < CONSTANTINOPLE => 3 * ETH,
        n if n < PARIS => 2 * ETH,
        _ => return Vec::new(),
    };
    let mut out = vec![Reward {
        author: miner.to_ascii_lowercase(),
        reward_type: "block".into(),
        value: (base + base / 32 * u128::from(n64(uncles.len()))).to_string(),
    }];
    for (u, m) in uncles {
        let depth = u128::from((u + 8).saturating_sub(number));
        out.push(Reward {
            author: m.to_ascii_lowercase(),
            reward_type: "uncle".into(),
            value: (depth * base / 8).to_string(),
        });
    }
    out
}

/// The reward traces of a `trace_block` result (the ones [`flatten_parity_traces`] leaves
/// out).
///
/// # Errors
/// A malformed reward trace, named with the block and its position.
pub fn parity_rewards(block: u64, result: &Value) -> Result<Vec<Reward>, DecodeError> {
    let mut out = Vec::new();
    for (n, t) in result.as_array().into_iter().flatten().enumerate() {
        if t.get("type").and_then(Value::as_str) != Some("reward") {
            continue;
        }
        let action = Fields {
            v: t.get("action").unwrap_or(&Value::Null),
            block: format!("{block} trace {n}"),
        };
        out.push(Reward {
            author: action.str("author")?.to_ascii_lowercase(),
            reward_type: action.str("rewardType")?,
            value: action
                .dec_opt("value")?
                .ok_or_else(|| action.err("a reward trace has no value".into()))?,
        });
    }
    Ok(out)
}

/// Flattens a `trace_block` (Parity/OpenEthereum/Erigon/anvil) result into the same frames
/// as [`flatten_call_traces`]. Block and uncle rewards (no transaction) are left out.
///
/// # Errors
/// A malformed trace, named with the block and its position.
pub fn flatten_parity_traces(block: u64, result: &Value) -> Result<Vec<Frame>, DecodeError> {
    let traces = result.as_array().ok_or_else(|| DecodeError {
        block: block.to_string(),
        what: "the trace reply is not an array".into(),
    })?;
    let mut out = Vec::new();
    // Whether each frame failed, by (transaction, trace address): a frame inside a failed
    // one failed too. Parents come before their children.
    let mut failed: std::collections::HashMap<(u32, Vec<u32>), bool> = Default::default();
    for (n, t) in traces.iter().enumerate() {
        let fl = Fields {
            v: t,
            block: format!("{block} trace {n}"),
        };
        let ty = fl.str("type")?;
        if ty == "reward" {
            continue;
        }
        let Some(tx) = t.get("transactionPosition").and_then(Value::as_u64) else {
            return Err(fl.err("transactionPosition is missing".into()));
        };
        let tx = n32(tx);
        let at: Vec<u32> = t
            .get("traceAddress")
            .and_then(Value::as_array)
            .ok_or_else(|| fl.err("traceAddress is missing".into()))?
            .iter()
            .map(|x| x.as_u64().map(n32))
            .collect::<Option<_>>()
            .ok_or_else(|| fl.err("traceAddress holds a non-number".into()))?;
        let action = Fields {
            v: t.get("action").unwrap_or(&Value::Null),
            block: fl.block.clone(),
        };
        let res = Fields {
            v: t.get("result").unwrap_or(&Value::Null),
            block: fl.block.clone(),
        };
        let (kind, call_type, from, to, value) = match ty.as_str() {
            "call" => (
                "call",
                action.str_opt("callType")?,
                action.str_opt("from")?,
                action.str_opt("to")?,
                action.dec_opt("value")?,
            ),
            "create" => (
                "create",
                None,
                action.str_opt("from")?,
                res.str_opt("address")?,
                action.dec_opt("value")?,
            ),
            "suicide" | "selfdestruct" => (
                "suicide",
                None,
                action.str_opt("address")?,
                action.str_opt("refundAddress")?,
                action.dec_opt("balance")?,
            ),
            other => return Err(fl.err(format!("unknown trace type {other:?}"))),
        };
        let error = t.get("error").and_then(Value::as_str).map(str::to_string);
        let parent = at
            .split_last()
            .is_some_and(|(_, p)| failed.get(&(tx, p.to_vec())).copied().unwrap_or(false));
        let fail = parent || error.is_some();
        failed.insert((tx, at.clone()), fail);
        let complete = kind != "suicide" || (value.is_some() && to.is_some());
        out.push(Frame {
            complete,
            tx_index: tx,
            trace_address: at,
            kind,
            call_type,
            from,
            to,
            value: value.unwrap_or_else(|| "0".into()),
            gas: action.u64_opt("gas")?.unwrap_or(0),
            gas_used: res.u64_opt("gasUsed")?.unwrap_or(0),
            subtraces: n32(t.get("subtraces").and_then(Value::as_u64).unwrap_or(0)),
            error,
            status: u32::from(!fail),
        });
    }
    Ok(out)
}

/// `reverted`: an enclosing frame failed, so this one's effects were undone too.
fn walk(
    block: u64,
    tx: u32,
    f: &Value,
    at: &mut Vec<u32>,
    reverted: bool,
    parent_to: Option<&str>,
    out: &mut Vec<Frame>,
) -> Result<(), DecodeError> {
    let fl = Fields {
        v: f,
        block: format!("{block} transaction {tx} trace {at:?}"),
    };
    let ty = fl.str("type")?;
    let calls: &[Value] = f
        .get("calls")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let (kind, call_type) = match ty.as_str() {
        "create" | "create2" => ("create", None),
        "selfdestruct" | "suicide" => ("suicide", None),
        c => ("call", Some(c.to_string())),
    };
    let error = f.get("error").and_then(Value::as_str).map(str::to_string);
    let failed = reverted || error.is_some();
    let (to, value) = (fl.str_opt("to")?, fl.dec_opt("value")?);
    // A SELFDESTRUCT frame without its sender is the contract its parent called.
    let from = match fl.str_opt("from")? {
        None if kind == "suicide" => parent_to.map(str::to_string),
        f => f,
    };
    out.push(Frame {
        tx_index: tx,
        trace_address: at.clone(),
        kind,
        call_type,
        from,
        complete: kind != "suicide" || (value.is_some() && to.is_some()),
        to: to.clone(),
        value: value.unwrap_or_else(|| "0".into()),
        gas: fl.u64_opt("gas")?.unwrap_or(0),
        gas_used: fl.u64_opt("gasUsed")?.unwrap_or(0),
        subtraces: n32(calls.len()),
        error,
        status: u32::from(!failed),
    });
    let me = f.get("to").and_then(Value::as_str);
    for (k, c) in calls.iter().enumerate() {
        at.push(n32(k));
        walk(block, tx, c, at, failed, me, out)?;
        at.pop();
    }
    Ok(())
}
