//! `eth_getBlockByNumber(N, true)` replies → block and transaction rows, exactly: quantities
//! that can exceed 64 bits (wei values, gas prices, difficulty) are kept as decimal text
//! converted digit by digit from the hex quantity, never through a float. Every transaction
//! type is read: legacy (0), access list (1, EIP-2930), dynamic fee (2, EIP-1559), blob (3,
//! EIP-4844) and set-code (4, EIP-7702); a missing `to` is a contract creation.

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
pub fn hex_to_decimal(s: &str) -> Result<String, String> {
    let h = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("{s:?} is not a hex quantity"))?;
    if h.is_empty() || h.len() > 64 {
        return Err(format!("{s:?} is not a 256-bit hex quantity"));
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
        tx_count: txs.len() as u32,
        withdrawal_count: v
            .get("withdrawals")
            .and_then(Value::as_array)
            .map(|w| w.len() as u32),
        blob_gas_used: f.u64_opt("blobGasUsed")?,
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
        let index = tf.u64_opt("transactionIndex")?.unwrap_or(i as u64);
        if index != i as u64 {
            return Err(tf.err(format!("transactionIndex {index} at position {i}")));
        }
        out.push(Transaction {
            block_number: number,
            block_hash: hash.clone(),
            tx_index: i as u32,
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
                .map_or(0, |a| a.len() as u32),
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
    fn malformed_blocks_are_named() {
        let e = decode_block(&serde_json::json!({"number": "0x10", "transactions": ["0xab"]}))
            .unwrap_err();
        assert!(e.to_string().starts_with("block 16"), "{e}");
        let e = decode_block(&serde_json::json!({"number": "0x10"})).unwrap_err();
        assert!(e.to_string().contains("full transactions"), "{e}");
    }
}
