//! The set of unspent outputs, kept compact so the whole mainnet chain fits in memory.
//!
//! Layout: one hash-map entry per transaction that still has unspent outputs, keyed by the
//! full 32-byte txid (so lookups are exact; no truncated-hash collisions), holding a packed
//! byte string of its unspent outputs:
//!
//! ```text
//! per output: vout (LEB128) | value (LEB128) | script_type (1 byte) | payload
//! payload:    Hash20 -> 20 bytes, Hash32 -> 32 bytes,
//!             Witness -> version (1) | length (1) | program, None -> nothing
//! ```
//!
//! The script itself is not kept: `(script_type, payload)` is exactly what the address and
//! the `script_type` column need. Spent outputs are removed at once, and a transaction's
//! entry is dropped when its last output is spent. OP_RETURN outputs never enter the set.
//! Bytes per unspent output are measured by [`UtxoSet::heap_bytes`] (see the ingest
//! benchmark and README).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use bitcoin::Txid;
use bitcoin::hashes::Hash;

use super::script::{Payload, ScriptType};
use crate::types::{ix, n32, n64};

/// An unspent output as the ingest needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coin {
    pub value: u64,
    pub script_type: ScriptType,
    pub payload: Payload,
}

/// Txids are already uniformly random: use 8 of their bytes as the hash.
#[derive(Default, Debug)]
pub struct TxidHasher(u64);

impl Hasher for TxidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only called with the 32 txid bytes (see `Key`'s Hash impl).
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(b);
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct Key([u8; 32]);

impl std::hash::Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0[8..16]);
    }
}

/// The unspent output set.
#[derive(Default)]
pub struct UtxoSet {
    map: HashMap<Key, Box<[u8]>, BuildHasherDefault<TxidHasher>>,
    outputs: u64,
    packed_bytes: u64,
}

impl std::fmt::Debug for UtxoSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtxoSet")
            .field("outputs", &self.outputs)
            .field("txs", &self.map.len())
            .finish()
    }
}

impl UtxoSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of unspent outputs held.
    pub fn len(&self) -> u64 {
        self.outputs
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.outputs == 0
    }

    /// Number of transactions with at least one unspent output.
    pub fn tx_count(&self) -> usize {
        self.map.len()
    }

    /// Estimated heap bytes: the hash table (key, boxed slice pointer, control byte per
    /// bucket) plus the packed records rounded up to the allocator's 16-byte granularity.
    pub fn heap_bytes(&self) -> u64 {
        let buckets = n64(self.map.capacity()) * 8 / 7;
        let slot = (std::mem::size_of::<Key>() + std::mem::size_of::<Box<[u8]>>() + 1) as u64;
        // glibc malloc: 8 bytes of header, 16-byte alignment, 32-byte minimum chunk.
        let records: u64 = self
            .map
            .values()
            .map(|b| ((n64(b.len()) + 8).div_ceil(16) * 16).max(32))
            .sum();
        buckets * slot + records
    }

    /// Bytes of packed output records alone.
    pub fn packed_bytes(&self) -> u64 {
        self.packed_bytes
    }

    /// Adds the spendable outputs of transaction `txid`: `(vout, coin)` pairs.
    /// A transaction whose txid is already present (the two BIP 30 duplicate coinbases of
    /// mainnet) replaces the earlier one, as in Bitcoin Core.
    pub fn add_tx(&mut self, txid: &Txid, outs: impl Iterator<Item = (u32, Coin)>) {
        let mut buf = Vec::new();
        let mut n = 0;
        for (vout, coin) in outs {
            if coin.script_type.is_unspendable() {
                continue;
            }
            leb(&mut buf, u64::from(vout));
            leb(&mut buf, coin.value);
            buf.push(coin.script_type as u8);
            match &coin.payload {
                Payload::None => {}
                Payload::Hash20(h) => buf.extend_from_slice(h),
                Payload::Hash32(h) => buf.extend_from_slice(h),
                Payload::Witness { version, program } => {
                    buf.push(*version);
                    buf.push(
                        u8::try_from(program.len()).expect("witness programs are at most 40 bytes"),
                    );
                    buf.extend_from_slice(program);
                }
            }
            n += 1;
        }
        if n == 0 {
            return;
        }
        self.packed_bytes += n64(buf.len());
        self.outputs += n;
        if let Some(old) = self
            .map
            .insert(Key(txid.to_byte_array()), buf.into_boxed_slice())
        {
            self.packed_bytes -= n64(old.len());
            self.outputs -= count_records(&old);
        }
    }

    /// Removes and returns output `vout` of `txid`, or `None` if it is not unspent.
    pub fn spend(&mut self, txid: &Txid, vout: u32) -> Option<Coin> {
        let key = Key(txid.to_byte_array());
        let rec = self.map.get_mut(&key)?;
        let mut pos = 0;
        while pos < rec.len() {
            let start = pos;
            let (v, coin) = read_record(rec, &mut pos);
            if v == u64::from(vout) {
                self.outputs -= 1;
                let removed = pos - start;
                self.packed_bytes -= n64(removed);
                if removed == rec.len() {
                    self.map.remove(&key);
                } else {
                    let mut rest = Vec::with_capacity(rec.len() - removed);
                    rest.extend_from_slice(&rec[..start]);
                    rest.extend_from_slice(&rec[pos..]);
                    *rec = rest.into_boxed_slice();
                }
                return Some(coin);
            }
        }
        None
    }
}

/// Magic and version of the snapshot format.
const SNAPSHOT_MAGIC: &[u8; 8] = b"CTUTXO01";

impl UtxoSet {
    /// Serialises the set, entries sorted by txid (the same set always gives the same
    /// bytes), followed by the sha256 of everything before it.
    pub fn snapshot_bytes(&self, height: u32, hash: &[u8; 32]) -> Vec<u8> {
        let mut keys: Vec<&Key> = self.map.keys().collect();
        keys.sort_by_key(|k| k.0);
        let mut out = Vec::with_capacity(ix(self.packed_bytes) + 40 * keys.len() + 64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&height.to_le_bytes());
        out.extend_from_slice(hash);
        out.extend_from_slice(&(n64(keys.len())).to_le_bytes());
        for k in keys {
            let rec = &self.map[k];
            out.extend_from_slice(&k.0);
            out.extend_from_slice(&(n32(rec.len())).to_le_bytes());
            out.extend_from_slice(rec);
        }
        let digest = bitcoin::hashes::sha256::Hash::hash(&out);
        out.extend_from_slice(digest.as_byte_array());
        out
    }

    /// Reads a snapshot written by [`UtxoSet::snapshot_bytes`]: the set, its height and
    /// block hash, or `None` if the bytes are damaged or of another format.
    pub fn from_snapshot(bytes: &[u8]) -> Option<(UtxoSet, u32, [u8; 32])> {
        let body_len = bytes.len().checked_sub(32)?;
        let (body, digest) = bytes.split_at(body_len);
        if bitcoin::hashes::sha256::Hash::hash(body).as_byte_array() != digest
            || !body.starts_with(SNAPSHOT_MAGIC)
        {
            return None;
        }
        let height = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
        let hash: [u8; 32] = body.get(12..44)?.try_into().ok()?;
        let n = u64::from_le_bytes(body.get(44..52)?.try_into().ok()?);
        let mut set = UtxoSet::new();
        set.map.reserve(usize::try_from(n).ok()?);
        let mut pos = 52;
        for _ in 0..n {
            let key: [u8; 32] = body.get(pos..pos + 32)?.try_into().ok()?;
            let len = u32::from_le_bytes(body.get(pos + 32..pos + 36)?.try_into().ok()?) as usize;
            let rec = body.get(pos + 36..pos + 36 + len)?;
            pos += 36 + len;
            set.outputs += count_records(rec);
            set.packed_bytes += n64(len);
            set.map.insert(Key(key), rec.to_vec().into_boxed_slice());
        }
        (pos == body.len()).then_some((set, height, hash))
    }
}

fn leb(buf: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf.push(b);
            return;
        }
        buf.push(b | 0x80);
    }
}

fn read_leb(b: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn read_record(b: &[u8], pos: &mut usize) -> (u64, Coin) {
    let vout = read_leb(b, pos);
    let value = read_leb(b, pos);
    let script_type = ScriptType::from_code(b[*pos]).expect("only valid codes are written");
    *pos += 1;
    let payload = match script_type {
        ScriptType::P2pk | ScriptType::P2pkh | ScriptType::P2sh | ScriptType::P2wpkh => {
            let h: [u8; 20] = b[*pos..*pos + 20].try_into().expect("20 bytes");
            *pos += 20;
            Payload::Hash20(h)
        }
        ScriptType::P2wsh | ScriptType::P2tr => {
            let h: [u8; 32] = b[*pos..*pos + 32].try_into().expect("32 bytes");
            *pos += 32;
            Payload::Hash32(h)
        }
        ScriptType::WitnessUnknown => {
            let version = b[*pos];
            let len = usize::from(b[*pos + 1]);
            let program = b[*pos + 2..*pos + 2 + len].to_vec();
            *pos += 2 + len;
            Payload::Witness { version, program }
        }
        ScriptType::Multisig | ScriptType::OpReturn | ScriptType::Nonstandard => Payload::None,
    };
    (
        vout,
        Coin {
            value,
            script_type,
            payload,
        },
    )
}

fn count_records(b: &[u8]) -> u64 {
    let mut pos = 0;
    let mut n = 0;
    while pos < b.len() {
        read_record(b, &mut pos);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txid(n: u8) -> Txid {
        Txid::from_byte_array([n; 32])
    }

    #[test]
    fn spend_removes_exactly_one_output_and_drops_empty_entries() {
        let mut s = UtxoSet::new();
        let coins = vec![
            (
                0,
                Coin {
                    value: 5_000_000_000,
                    script_type: ScriptType::P2pkh,
                    payload: Payload::Hash20([1; 20]),
                },
            ),
            (
                1,
                Coin {
                    value: 0,
                    script_type: ScriptType::OpReturn,
                    payload: Payload::None,
                },
            ),
            (
                300,
                Coin {
                    value: 330,
                    script_type: ScriptType::WitnessUnknown,
                    payload: Payload::Witness {
                        version: 1,
                        program: vec![0x4e, 0x73],
                    },
                },
            ),
            (
                2,
                Coin {
                    value: 7,
                    script_type: ScriptType::P2tr,
                    payload: Payload::Hash32([9; 32]),
                },
            ),
        ];
        s.add_tx(&txid(1), coins.clone().into_iter());
        assert_eq!(s.len(), 3, "OP_RETURN never enters the set");
        assert_eq!(s.spend(&txid(1), 1), None);
        assert_eq!(s.spend(&txid(1), 300), Some(coins[2].1.clone()));
        assert_eq!(s.spend(&txid(1), 300), None, "spent twice");
        assert_eq!(s.spend(&txid(1), 0), Some(coins[0].1.clone()));
        assert_eq!(s.tx_count(), 1);
        assert_eq!(s.spend(&txid(1), 2), Some(coins[3].1.clone()));
        assert_eq!(s.tx_count(), 0);
        assert!(s.is_empty());
        assert_eq!(s.packed_bytes(), 0);
    }

    #[test]
    fn snapshots_round_trip_and_detect_damage() {
        let mut s = UtxoSet::new();
        for n in 0..50u8 {
            let c = Coin {
                value: u64::from(n) * 1000,
                script_type: ScriptType::P2wpkh,
                payload: Payload::Hash20([n; 20]),
            };
            s.add_tx(
                &txid(n),
                [(0, c.clone()), (u32::from(n) + 1, c)].into_iter(),
            );
        }
        s.spend(&txid(7), 0);
        let bytes = s.snapshot_bytes(42, &[9; 32]);
        let (back, h, hash) = UtxoSet::from_snapshot(&bytes).unwrap();
        assert_eq!(
            (h, hash, back.len(), back.tx_count()),
            (42, [9; 32], s.len(), s.tx_count())
        );
        assert_eq!(
            back.snapshot_bytes(42, &[9; 32]),
            bytes,
            "the same set gives the same bytes"
        );
        let mut back = back;
        assert_eq!(back.spend(&txid(7), 8).map(|c| c.value), Some(7000));
        let mut bad = bytes.clone();
        bad[60] ^= 1;
        assert!(UtxoSet::from_snapshot(&bad).is_none());
    }

    #[test]
    fn duplicate_txid_replaces_like_bip30() {
        let mut s = UtxoSet::new();
        let c = |v| Coin {
            value: v,
            script_type: ScriptType::P2pk,
            payload: Payload::Hash20([2; 20]),
        };
        s.add_tx(&txid(3), [(0, c(1))].into_iter());
        s.add_tx(&txid(3), [(0, c(2))].into_iter());
        assert_eq!(s.len(), 1);
        assert_eq!(s.spend(&txid(3), 0).map(|c| c.value), Some(2));
    }
}
