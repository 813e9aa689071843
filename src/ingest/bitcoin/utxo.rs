//! The set of unspent outputs, kept compact so the whole mainnet chain fits in memory.
//!
//! Layout (≤ 48 bytes per unspent output is the target, issue 20):
//! - an **arena** of packed records, one per transaction that still has unspent outputs:
//!   `payload length (u32) | outputs | padding to 4 bytes`, each output
//!   `vout (LEB128) | value (LEB128) | script_type (1 byte) | payload` with payload
//!   `Hash20 -> 20 bytes, Hash32 -> 32, Witness -> version (1) | length (1) | program,
//!   None -> nothing`;
//! - an open-addressing **table** from the first 8 bytes of the txid to the record's
//!   offset (12 bytes a slot: a `u64` key and a `u32` offset in 4-byte units, so the arena
//!   may reach 16 GiB);
//! - a **fallback** map keyed by the whole txid, for a transaction whose 8-byte prefix is
//!   already taken by another live transaction (a 64-bit collision: expected about once in
//!   the whole chain's history, but never assumed away). A spend looks in the fallback
//!   first, by the whole txid, so every lookup is exact.
//!
//! The script itself is not kept: `(script_type, payload)` is exactly what the address and
//! the `script_type` column need. OP_RETURN outputs never enter the set. A spent output is
//! cut out of its record in place; the bytes freed are reclaimed by compacting the arena in
//! place when they pass an eighth of it. Bytes per unspent output are measured by
//! [`UtxoSet::heap_bytes`] (see the ingest benchmark and `cargo bench --bench scale`).
//!
//! **Within a memory budget** ([`UtxoSet::spill_to`]): once the heap it takes would pass
//! the limit, the arena moves to a scratch file mapped into memory. The kernel then keeps
//! as much of it in RAM as there is room for, writes the rest out and reads it back on a
//! spend: the heap stays the table's 12 bytes a slot. The file is unlinked as soon as it is
//! opened, so a killed run leaves nothing; its blocks are reserved (`posix_fallocate`)
//! before they are used, so a full disk is an error, not a bus fault.

use std::collections::HashMap;
use std::str::FromStr;

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

/// The transactions Bitcoin Core lets repeat while the first is unspent (BIP 30's two
/// exceptions: the coinbases of heights 91,842 and 91,880 repeat those of 91,812 and
/// 91,722); the repeat replaces the first, as in Bitcoin Core.
const BIP30_REPEATS: [&str; 2] = [
    "d5d27987d2a3dfc724e359870c6644b40e497bdc0589a033220fe15429d88599",
    "e3bf3d07d4b0375638d5f1db5255fe07ba2c4cb067cd81b84ee974b6585fb468",
];

/// Whether `txid` (internal byte order) is one of [`BIP30_REPEATS`]. Only asked when a
/// txid's prefix is already taken, so never on the common path.
fn is_bip30_repeat(txid: &[u8; 32]) -> bool {
    BIP30_REPEATS
        .iter()
        .any(|s| Txid::from_str(s).is_ok_and(|t| t.to_byte_array() == *txid))
}

/// The table's key of a txid: its first 8 bytes (txids are uniformly random). Key 0 marks
/// an empty slot, so a txid whose prefix is 0 lives in the fallback.
fn key_of(txid: &[u8; 32]) -> u64 {
    u64::from_le_bytes(txid[..8].try_into().expect("8 bytes"))
}

/// Open addressing with linear probing and backward-shift deletion, kept between 7/10 and
/// 7/8 full: it grows by a quarter (any capacity: a key's home slot is its fraction of the
/// table, Lemire's multiply-shift), so the spare slots stay few.
#[derive(Default)]
struct Table {
    keys: Vec<u64>,
    vals: Vec<u32>,
    len: usize,
}

impl Table {
    fn home(&self, k: u64) -> usize {
        let cap = u128::try_from(self.keys.len()).unwrap_or(u128::MAX);
        usize::try_from((u128::from(k) * cap) >> 64).unwrap_or(0)
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.keys.len() { 0 } else { i + 1 }
    }

    fn find(&self, k: u64) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        let mut i = self.home(k);
        loop {
            match self.keys[i] {
                0 => return None,
                x if x == k => return Some(i),
                _ => i = self.next(i),
            }
        }
    }

    /// Inserts `k` (absent) with `v`.
    fn insert(&mut self, k: u64, v: u32) {
        if (self.len + 1) * 8 > self.keys.len() * 7 {
            let cap = (self.keys.len() + self.keys.len() / 4).max(1024);
            let keys = std::mem::replace(&mut self.keys, vec![0; cap]);
            let vals = std::mem::replace(&mut self.vals, vec![0; cap]);
            for (k, v) in keys.into_iter().zip(vals).filter(|(k, _)| *k != 0) {
                self.place(k, v);
            }
        }
        self.place(k, v);
        self.len += 1;
    }

    fn place(&mut self, k: u64, v: u32) {
        let mut i = self.home(k);
        while self.keys[i] != 0 {
            i = self.next(i);
        }
        self.keys[i] = k;
        self.vals[i] = v;
    }

    /// Removes the entry at slot `i`, shifting later entries of its probe run back.
    fn remove_at(&mut self, mut i: usize) {
        let mut j = i;
        loop {
            j = self.next(j);
            if self.keys[j] == 0 {
                break;
            }
            // Entry j may move to the hole at i when its home is not in (i, j].
            let h = self.home(self.keys[j]);
            let between = if i <= j {
                i < h && h <= j
            } else {
                i < h || h <= j
            };
            if !between {
                self.keys[i] = self.keys[j];
                self.vals[i] = self.vals[j];
                i = j;
            }
        }
        self.keys[i] = 0;
        self.len -= 1;
    }
}

/// The arena is compacted when its free bytes pass an eighth of it, once it is this large
/// (small in the unit tests, so they compact).
const COMPACT_FROM: usize = if cfg!(test) { 256 } else { 1 << 16 };

/// Bytes of a record with a payload of `len` bytes: the length, the payload, padding.
fn record_size(len: usize) -> usize {
    (4 + len).div_ceil(4) * 4
}

/// Where the arena spills, and the heap it may take before it does.
#[derive(Clone, Debug)]
struct Spill {
    dir: std::path::PathBuf,
    limit: u64,
}

/// The arena's bytes: on the heap, or in a scratch file mapped into memory
/// ([`UtxoSet::spill_to`]).
enum Arena {
    Heap(Vec<u8>),
    File {
        file: std::fs::File,
        /// The file's name when it was created (unlinked since), for errors.
        path: std::path::PathBuf,
        map: memmap2::MmapMut,
        len: usize,
    },
}

impl Default for Arena {
    fn default() -> Self {
        Arena::Heap(Vec::new())
    }
}

impl std::ops::Deref for Arena {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Arena::Heap(v) => v,
            Arena::File { map, len, .. } => &map[..*len],
        }
    }
}

impl std::ops::DerefMut for Arena {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Arena::Heap(v) => v,
            Arena::File { map, len, .. } => &mut map[..*len],
        }
    }
}

/// Reserves the blocks of `file` up to `len` bytes (and grows it to that length).
fn allocate(file: &std::fs::File, len: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: a plain system call on an open file descriptor.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}

impl Arena {
    fn capacity(&self) -> usize {
        match self {
            Arena::Heap(v) => v.capacity(),
            Arena::File { map, .. } => map.len(),
        }
    }

    fn on_heap(&self) -> bool {
        matches!(self, Arena::Heap(_))
    }

    /// The bytes so far, moved to a new scratch file in `dir` of `capacity` bytes.
    fn spilled(&self, dir: &std::path::Path, capacity: usize) -> std::io::Result<Arena> {
        let path = dir.join(format!(".utxo-spill-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        // Unlinked at once: the open file lives on, and nothing is left if the run dies.
        let _ = std::fs::remove_file(&path);
        allocate(&file, capacity.max(self.len()))?;
        // SAFETY: the file was created and unlinked here: no other process maps it.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }?;
        map[..self.len()].copy_from_slice(self);
        Ok(Arena::File {
            file,
            path,
            map,
            len: self.len(),
        })
    }

    /// Room for `additional` more bytes: a larger heap block, or a longer file mapped anew.
    fn reserve_exact(&mut self, additional: usize) -> std::io::Result<()> {
        match self {
            Arena::Heap(v) => {
                v.reserve_exact(additional);
                Ok(())
            }
            Arena::File { file, map, len, .. } => {
                if *len + additional <= map.len() {
                    return Ok(());
                }
                // In steps of an eighth (at least 4 MiB): each is a remap.
                let cap = (*len + additional).max(map.len() + (map.len() / 8).max(4 << 20));
                allocate(file, cap)?;
                // SAFETY: as in `spilled`; the old mapping is dropped when replaced.
                *map = unsafe { memmap2::MmapMut::map_mut(&*file) }?;
                Ok(())
            }
        }
    }

    /// Appends `a`, then `b`, then zeros up to `size` bytes in all (the capacity reserved).
    fn append(&mut self, a: &[u8], b: &[u8], size: usize) {
        match self {
            Arena::Heap(v) => {
                let at = v.len();
                v.extend_from_slice(a);
                v.extend_from_slice(b);
                v.resize(at + size, 0);
            }
            Arena::File { map, len, .. } => {
                let at = *len;
                map[at..at + a.len()].copy_from_slice(a);
                map[at + a.len()..at + a.len() + b.len()].copy_from_slice(b);
                map[at + a.len() + b.len()..at + size].fill(0);
                *len = at + size;
            }
        }
    }

    fn truncate(&mut self, to: usize) {
        match self {
            Arena::Heap(v) => {
                v.truncate(to);
                v.shrink_to(to + to / 8);
            }
            Arena::File { len, .. } => *len = to.min(*len),
        }
    }
}

/// The unspent output set.
#[derive(Default)]
pub struct UtxoSet {
    table: Table,
    arena: Arena,
    spill: Option<Spill>,
    /// Arena bytes no record uses any more.
    garbage: usize,
    fallback: HashMap<[u8; 32], Box<[u8]>>,
    /// Prefixes that ever had a transaction in the fallback, and the transactions of those
    /// prefixes spent in full since: a spend of one of these finds nothing, instead of
    /// the coin of another transaction with its prefix.
    contested: std::collections::HashSet<u64>,
    gone: std::collections::HashSet<[u8; 32]>,
    outputs: u64,
    packed_bytes: u64,
}

impl std::fmt::Debug for UtxoSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtxoSet")
            .field("outputs", &self.outputs)
            .field("txs", &self.tx_count())
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
        self.table.len + self.fallback.len()
    }

    /// Keeps the set's heap within `limit` bytes where it can: once the arena would take
    /// it past `limit`, the arena moves to a scratch file in `dir` ([module docs](self)).
    /// The table and the rare 8-byte-prefix collisions stay on the heap.
    pub fn spill_to(&mut self, dir: &std::path::Path, limit: u64) {
        self.spill = Some(Spill {
            dir: dir.to_path_buf(),
            limit,
        });
    }

    /// Bytes of records in the arena's scratch file, with the gaps not compacted yet (0
    /// while the arena is on the heap). The file itself is up to an eighth larger: room
    /// reserved for the records to come.
    pub fn spilled_bytes(&self) -> u64 {
        if self.arena.on_heap() {
            0
        } else {
            n64(self.arena.len())
        }
    }

    /// The scratch file's path as created (unlinked since), once the arena spilled.
    pub fn spill_path(&self) -> Option<&std::path::Path> {
        match &self.arena {
            Arena::File { path, .. } => Some(path),
            Arena::Heap(_) => None,
        }
    }

    /// Heap bytes: the table's arrays, the arena while it is on the heap (with its free
    /// bytes and spare capacity) and the fallback's entries (key, boxed slice and control
    /// byte per bucket, records rounded up to the allocator's 16-byte granularity).
    pub fn heap_bytes(&self) -> u64 {
        let table = n64(self.table.keys.capacity() * 8 + self.table.vals.capacity() * 4);
        let arena = if self.arena.on_heap() {
            n64(self.arena.capacity())
        } else {
            0
        };
        let buckets = n64(self.fallback.capacity()) * 8 / 7;
        let fallback: u64 = buckets * 49
            + self
                .fallback
                .values()
                .map(|b| ((n64(b.len()) + 8).div_ceil(16) * 16).max(32))
                .sum::<u64>();
        table + arena + fallback
    }

    /// Bytes of packed output records alone.
    pub fn packed_bytes(&self) -> u64 {
        self.packed_bytes
    }

    /// Adds the spendable outputs of transaction `txid`: `(vout, coin)` pairs.
    /// A transaction whose txid is already present replaces the earlier one, as in Bitcoin
    /// Core: only BIP 30's two exceptions do that on mainnet.
    ///
    /// # Errors
    /// Only a spilled set ([`UtxoSet::spill_to`]) fails: its scratch file cannot be created
    /// or grown (a full disk).
    pub fn add_tx(
        &mut self,
        txid: &Txid,
        outs: impl Iterator<Item = (u32, Coin)>,
    ) -> std::io::Result<()> {
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
            return Ok(());
        }
        self.insert(&txid.to_byte_array(), &buf, true)
    }

    /// Adds a record: in the table under its prefix, or in the fallback when the prefix
    /// belongs to another live transaction. `repeats`: a repeat of a present txid replaces
    /// it as in Bitcoin Core (only BIP 30's exceptions, [`is_bip30_repeat`]: in the table,
    /// the prefix's entry is then taken to be that txid); off when loading a snapshot.
    fn insert(&mut self, txid: &[u8; 32], payload: &[u8], repeats: bool) -> std::io::Result<()> {
        self.outputs += count_records(payload);
        self.packed_bytes += n64(payload.len());
        let key = key_of(txid);
        if !self.gone.is_empty() {
            self.gone.remove(txid);
        }
        if let Some(old) = self.fallback.get(txid) {
            self.outputs -= count_records(old);
            self.packed_bytes -= n64(old.len());
            self.fallback.insert(*txid, payload.into());
            return Ok(());
        }
        match (key, self.table.find(key)) {
            (0, _) => {
                self.contested.insert(key);
                self.fallback.insert(*txid, payload.into());
            }
            (_, None) => {
                let off = self.push_record(payload)?;
                self.table.insert(key, off);
            }
            (_, Some(slot)) if repeats && is_bip30_repeat(txid) => {
                let (start, len) = self.record(self.table.vals[slot]);
                let old = &self.arena[start..start + len];
                self.outputs -= count_records(old);
                self.packed_bytes -= n64(len);
                self.garbage += record_size(len);
                let off = self.push_record(payload)?;
                self.table.vals[slot] = off;
            }
            (_, Some(_)) => {
                self.contested.insert(key);
                self.fallback.insert(*txid, payload.into());
            }
        }
        Ok(())
    }

    /// Appends a record, returning its offset in 4-byte units.
    fn push_record(&mut self, payload: &[u8]) -> std::io::Result<u32> {
        let at = self.arena.len();
        let size = record_size(payload.len());
        if at + size > self.arena.capacity() {
            // Grow by an eighth, not double: the spare capacity is heap too (glibc moves
            // large blocks with mremap, so the copies are cheap).
            let grow = size.max(self.arena.capacity() / 8).max(4096);
            if let Some(s) = &self.spill
                && self.arena.on_heap()
                && self.heap_bytes() + n64(grow) > s.limit
            {
                let spilled = self.arena.spilled(&s.dir, at + grow).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("the UTXO set's scratch file in {}: {e}", s.dir.display()),
                    )
                })?;
                self.arena = spilled;
            }
            self.arena.reserve_exact(grow).map_err(|e| {
                let at = self.spill_path().map(|p| p.display().to_string());
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "the UTXO set's scratch file {}: {e}",
                        at.unwrap_or_default()
                    ),
                )
            })?;
        }
        assert!(
            at / 4 < u32::MAX as usize,
            "the UTXO arena outgrew 16 GiB of records"
        );
        self.arena
            .append(&n32(payload.len()).to_le_bytes(), payload, size);
        Ok(n32(at / 4))
    }

    /// The payload's start and length of the record at `off`.
    fn record(&self, off: u32) -> (usize, usize) {
        let at = ix(off) * 4;
        let len = u32::from_le_bytes(self.arena[at..at + 4].try_into().expect("4 bytes"));
        (at + 4, ix(len))
    }

    /// Removes and returns output `vout` of `txid`, or `None` if it is not unspent.
    ///
    /// Exact for every unspent output. For an outpoint that does not exist (never created,
    /// or spent already), `None` — unless another unspent transaction shares the txid's
    /// first 8 bytes, when its coin of that `vout` may be returned: only an invalid chain
    /// spends such an outpoint (a node never serves one), and a random txid meets a live
    /// prefix with a probability of about 10^-11 at mainnet's size.
    pub fn spend(&mut self, txid: &Txid, vout: u32) -> Option<Coin> {
        let bytes = txid.to_byte_array();
        let key = key_of(&bytes);
        let contested = !self.contested.is_empty() && self.contested.contains(&key);
        if contested && self.gone.contains(&bytes) {
            return None;
        }
        if !self.fallback.is_empty()
            && let Some(rec) = self.fallback.get_mut(&bytes)
        {
            let (start, end, coin) = find_output(rec, vout)?;
            self.outputs -= 1;
            self.packed_bytes -= n64(end - start);
            if end - start == rec.len() {
                self.fallback.remove(&bytes);
                self.gone.insert(bytes);
            } else {
                let mut rest = Vec::with_capacity(rec.len() - (end - start));
                rest.extend_from_slice(&rec[..start]);
                rest.extend_from_slice(&rec[end..]);
                *rec = rest.into_boxed_slice();
            }
            return Some(coin);
        }
        let slot = self.table.find(key)?;
        let (at, len) = self.record(self.table.vals[slot]);
        let (start, end, coin) = find_output(&self.arena[at..at + len], vout)?;
        let removed = end - start;
        self.outputs -= 1;
        self.packed_bytes -= n64(removed);
        if removed == len {
            self.table.remove_at(slot);
            self.garbage += record_size(len);
            if contested {
                self.gone.insert(bytes);
            }
        } else {
            self.arena.copy_within(at + end..at + len, at + start);
            let left = len - removed;
            self.arena[at - 4..at].copy_from_slice(&n32(left).to_le_bytes());
            self.garbage += record_size(len) - record_size(left);
        }
        if self.garbage * 8 > self.arena.len() && self.arena.len() > COMPACT_FROM {
            self.compact();
        }
        Some(coin)
    }

    /// Moves every live record down over the free bytes, in arena order, in place.
    fn compact(&mut self) {
        let mut live: Vec<(u32, u32)> = (0..self.table.keys.len())
            .filter(|&i| self.table.keys[i] != 0)
            .map(|i| (self.table.vals[i], n32(i)))
            .collect();
        live.sort_unstable();
        let mut w = 0usize;
        for (off, slot) in live {
            let (at, len) = self.record(off);
            let size = record_size(len);
            self.arena.copy_within(at - 4..at - 4 + size, w);
            self.table.vals[ix(slot)] = n32(w / 4);
            w += size;
        }
        self.arena.truncate(w);
        self.garbage = 0;
    }
}

/// Magic and version of the snapshot format (version 1, keyed by whole txids, is still
/// read).
const SNAPSHOT_MAGIC: &[u8; 8] = b"CTUTXO02";
const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"CTUTXO01";

impl UtxoSet {
    /// Serialises the set: the table's records sorted by key, then the fallback's sorted
    /// by txid (the same set always gives the same bytes), followed by the sha256 of
    /// everything before it.
    pub fn snapshot_bytes(&self, height: u32, hash: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ix(self.packed_bytes) + 12 * self.table.len + 64);
        self.write_snapshot(&mut out, height, hash)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// [`UtxoSet::snapshot_bytes`] written to `w` as they are made: the set is not copied
    /// (the heap it takes is 8 bytes a transaction, for the order of the keys).
    ///
    /// # Errors
    /// `w`'s.
    pub fn write_snapshot(
        &self,
        w: &mut dyn std::io::Write,
        height: u32,
        hash: &[u8; 32],
    ) -> std::io::Result<()> {
        use bitcoin::hashes::HashEngine;
        let mut slots: Vec<usize> = (0..self.table.keys.len())
            .filter(|&i| self.table.keys[i] != 0)
            .collect();
        slots.sort_by_key(|&i| self.table.keys[i]);
        let mut txids: Vec<&[u8; 32]> = self.fallback.keys().collect();
        txids.sort();
        let mut engine = bitcoin::hashes::sha256::Hash::engine();
        let mut put = |b: &[u8]| {
            engine.input(b);
            w.write_all(b)
        };
        put(SNAPSHOT_MAGIC)?;
        put(&height.to_le_bytes())?;
        put(hash)?;
        put(&(n64(slots.len())).to_le_bytes())?;
        for i in slots {
            let (at, len) = self.record(self.table.vals[i]);
            put(&self.table.keys[i].to_le_bytes())?;
            put(&(n32(len)).to_le_bytes())?;
            put(&self.arena[at..at + len])?;
        }
        put(&(n64(txids.len())).to_le_bytes())?;
        for t in txids {
            let rec = &self.fallback[t];
            put(t)?;
            put(&(n32(rec.len())).to_le_bytes())?;
            put(rec)?;
        }
        let digest = bitcoin::hashes::sha256::Hash::from_engine(engine);
        w.write_all(digest.as_byte_array())
    }

    /// Reads a snapshot written by [`UtxoSet::snapshot_bytes`] (or by the version before,
    /// keyed by whole txids): the set, its height and block hash, or `None` if the bytes
    /// are damaged or of another format.
    pub fn from_snapshot(bytes: &[u8]) -> Option<(UtxoSet, u32, [u8; 32])> {
        Self::from_snapshot_spilling(bytes, None)
    }

    /// [`UtxoSet::from_snapshot`] into a set that spills as [`UtxoSet::spill_to`] says
    /// (`(dir, limit)`), so a snapshot larger than the budget loads (from a memory-mapped
    /// file, say). A scratch file that cannot be made is `None`, as a damaged snapshot.
    pub fn from_snapshot_spilling(
        bytes: &[u8],
        spill: Option<(&std::path::Path, u64)>,
    ) -> Option<(UtxoSet, u32, [u8; 32])> {
        let body_len = bytes.len().checked_sub(32)?;
        let (body, digest) = bytes.split_at(body_len);
        let v1 = body.starts_with(SNAPSHOT_MAGIC_V1);
        if bitcoin::hashes::sha256::Hash::hash(body).as_byte_array() != digest
            || !(v1 || body.starts_with(SNAPSHOT_MAGIC))
        {
            return None;
        }
        let height = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
        let hash: [u8; 32] = body.get(12..44)?.try_into().ok()?;
        let mut set = UtxoSet::new();
        if let Some((dir, limit)) = spill {
            set.spill_to(dir, limit);
        }
        let mut pos = 44;
        // Entries: (key width, whether it is a whole txid): version 1 has one list of
        // whole txids; version 2 a list of 8-byte keys, then one of whole txids.
        let lists: &[usize] = if v1 { &[32] } else { &[8, 32] };
        for &width in lists {
            let n = u64::from_le_bytes(body.get(pos..pos + 8)?.try_into().ok()?);
            pos += 8;
            for _ in 0..n {
                let key = body.get(pos..pos + width)?;
                let len =
                    u32::from_le_bytes(body.get(pos + width..pos + width + 4)?.try_into().ok()?);
                let rec = body.get(pos + width + 4..pos + width + 4 + ix(len))?;
                pos += width + 4 + ix(len);
                if width == 32 {
                    set.insert(key.try_into().ok()?, rec, false).ok()?;
                } else {
                    let k = u64::from_le_bytes(key.try_into().ok()?);
                    if k == 0 || set.table.find(k).is_some() {
                        return None;
                    }
                    set.outputs += count_records(rec);
                    set.packed_bytes += n64(rec.len());
                    let off = set.push_record(rec).ok()?;
                    set.table.insert(k, off);
                }
            }
        }
        (pos == body.len()).then_some((set, height, hash))
    }
}

/// The byte range of output `vout` in a record's payload, and the coin.
fn find_output(rec: &[u8], vout: u32) -> Option<(usize, usize, Coin)> {
    let mut pos = 0;
    while pos < rec.len() {
        let start = pos;
        let (v, coin) = read_record(rec, &mut pos);
        if v == u64::from(vout) {
            return Some((start, pos, coin));
        }
    }
    None
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
        s.add_tx(&txid(1), coins.clone().into_iter()).unwrap();
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
            )
            .unwrap();
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

    fn coin(v: u64) -> Coin {
        Coin {
            value: v,
            script_type: ScriptType::P2pk,
            payload: Payload::Hash20([2; 20]),
        }
    }

    #[test]
    fn a_bip30_repeat_replaces_the_first() {
        let mut s = UtxoSet::new();
        let t = Txid::from_str(BIP30_REPEATS[1]).unwrap();
        s.add_tx(&t, [(0, coin(1))].into_iter()).unwrap();
        s.add_tx(&t, [(0, coin(2))].into_iter()).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.spend(&t, 0).map(|c| c.value), Some(2));
        assert!(s.is_empty());
    }

    /// Two live transactions with the same first 8 bytes (and one whose prefix is 0, the
    /// table's empty mark) are both kept, and each spend finds its own coin.
    #[test]
    fn txids_sharing_a_prefix_stay_apart() {
        let mut s = UtxoSet::new();
        let mut a = [7u8; 32];
        let mut b = [7u8; 32];
        a[31] = 1;
        b[31] = 2;
        let zero = [0u8; 32];
        let (a, b, zero) = (
            Txid::from_byte_array(a),
            Txid::from_byte_array(b),
            Txid::from_byte_array(zero),
        );
        s.add_tx(&a, [(0, coin(10)), (1, coin(11))].into_iter())
            .unwrap();
        s.add_tx(&b, [(0, coin(20))].into_iter()).unwrap();
        s.add_tx(&zero, [(5, coin(30))].into_iter()).unwrap();
        assert_eq!((s.len(), s.tx_count()), (4, 3));
        let snap = UtxoSet::from_snapshot(&s.snapshot_bytes(1, &[0; 32]))
            .unwrap()
            .0;
        for set in [&mut s, &mut { snap }] {
            assert_eq!(set.spend(&b, 1), None);
            assert_eq!(set.spend(&b, 0).map(|c| c.value), Some(20));
            assert_eq!(set.spend(&b, 0), None, "spent");
            assert_eq!(set.spend(&a, 1).map(|c| c.value), Some(11));
            assert_eq!(set.spend(&zero, 5).map(|c| c.value), Some(30));
            assert_eq!(set.spend(&a, 0).map(|c| c.value), Some(10));
            assert!(set.is_empty());
        }
    }

    /// Past its limit the arena moves to a scratch file: the heap no longer counts it, the
    /// coins are the same, nothing is left in the folder (the file is unlinked at once),
    /// and a snapshot loads into a set that spills too. A folder that cannot take the file
    /// is an error naming it.
    #[test]
    fn a_set_past_its_limit_spills_its_records_to_a_scratch_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut heap, mut spilled) = (UtxoSet::new(), UtxoSet::new());
        spilled.spill_to(dir.path(), 64 << 10);
        for n in 0..5000u32 {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&(n + 1).to_le_bytes());
            let outs = [(0, coin(u64::from(n))), (1, coin(7))];
            heap.add_tx(&Txid::from_byte_array(b), outs.clone().into_iter())
                .unwrap();
            spilled
                .add_tx(&Txid::from_byte_array(b), outs.into_iter())
                .unwrap();
        }
        assert_eq!(heap.spilled_bytes(), 0);
        assert!(spilled.spilled_bytes() >= heap.packed_bytes());
        assert!(spilled.spilled_bytes() <= n64(heap.arena.len()));
        assert!(
            spilled.heap_bytes() < heap.heap_bytes() / 2,
            "{} vs {}",
            spilled.heap_bytes(),
            heap.heap_bytes()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let snap = heap.snapshot_bytes(3, &[1; 32]);
        assert_eq!(spilled.snapshot_bytes(3, &[1; 32]), snap);
        let (mut back, _, _) =
            UtxoSet::from_snapshot_spilling(&snap, Some((dir.path(), 64 << 10))).unwrap();
        assert!(back.spilled_bytes() > 0);
        for n in (0..5000u32).step_by(7) {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&(n + 1).to_le_bytes());
            let t = Txid::from_byte_array(b);
            let want = heap.spend(&t, 0);
            assert_eq!(want.as_ref().map(|c| c.value), Some(u64::from(n)));
            assert_eq!(spilled.spend(&t, 0), want);
            assert_eq!(back.spend(&t, 0), want);
        }
        assert_eq!(
            spilled.snapshot_bytes(4, &[2; 32]),
            heap.snapshot_bytes(4, &[2; 32])
        );
        let mut nowhere = UtxoSet::new();
        let missing = dir.path().join("no-such-folder");
        nowhere.spill_to(&missing, 0);
        let e = nowhere
            .add_tx(&txid(1), [(0, coin(1))].into_iter())
            .unwrap_err();
        assert!(e.to_string().contains("no-such-folder"), "{e}");
    }

    /// A snapshot of the first format (records keyed by whole txids) still loads.
    #[test]
    fn a_version_1_snapshot_loads() {
        let mut body = Vec::new();
        body.extend_from_slice(SNAPSHOT_MAGIC_V1);
        body.extend_from_slice(&9u32.to_le_bytes());
        body.extend_from_slice(&[4; 32]);
        body.extend_from_slice(&2u64.to_le_bytes());
        for (n, value) in [(1u8, 500u64), (2, 600)] {
            let mut s = UtxoSet::new();
            s.add_tx(&txid(n), [(3, coin(value))].into_iter()).unwrap();
            let (at, len) = s.record(s.table.vals[s.table.find(key_of(&[n; 32])).unwrap()]);
            body.extend_from_slice(&[n; 32]);
            body.extend_from_slice(&n32(len).to_le_bytes());
            body.extend_from_slice(&s.arena[at..at + len]);
        }
        let digest = bitcoin::hashes::sha256::Hash::hash(&body);
        body.extend_from_slice(digest.as_byte_array());
        let (mut s, h, hash) = UtxoSet::from_snapshot(&body).unwrap();
        assert_eq!((h, hash, s.len()), (9, [4; 32], 2));
        assert_eq!(s.spend(&txid(2), 3).map(|c| c.value), Some(600));
        assert_eq!(s.spend(&txid(1), 3).map(|c| c.value), Some(500));
    }
}

#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any sequence of adds and spends (over txids that often share their 8-byte
        /// prefix, enough of them to compact the arena) leaves the set holding exactly
        /// what a map of whole outpoints holds, and a snapshot round trip keeps it.
        #[test]
        fn the_set_behaves_like_a_map_of_outpoints(
            ops in proptest::collection::vec((0u8..40, 0u8..3, any::<bool>(), 0u32..6), 1..3000),
        ) {
            let mut set = UtxoSet::new();
            // The same operations on a set whose arena is in a scratch file from the start.
            let dir = tempfile::tempdir().unwrap();
            let mut spilled = UtxoSet::new();
            spilled.spill_to(dir.path(), 0);
            let mut model: BTreeMap<([u8; 32], u32), u64> = BTreeMap::new();
            let mut added = std::collections::BTreeSet::new();
            for (i, &(t, tail, add, vout)) in ops.iter().enumerate() {
                // The first 8 bytes depend on `t` only: `tail` makes prefix collisions.
                let mut bytes = [t; 32];
                bytes[31] = tail;
                let txid = Txid::from_byte_array(bytes);
                if add && added.insert(bytes) {
                    let value = u64::try_from(i).unwrap() * 1000 + u64::from(vout);
                    let outs: Vec<(u32, Coin)> = (0..=vout)
                        .map(|v| (v, Coin {
                            value: value + u64::from(v),
                            script_type: ScriptType::P2wpkh,
                            payload: Payload::Hash20([t; 20]),
                        }))
                        .collect();
                    for (v, c) in &outs {
                        model.insert((bytes, *v), c.value);
                    }
                    spilled.add_tx(&txid, outs.clone().into_iter()).unwrap();
                    set.add_tx(&txid, outs.into_iter()).unwrap();
                } else {
                    let want = model.remove(&(bytes, vout));
                    // An outpoint that does not exist finds nothing, unless a live
                    // transaction shares its txid's first 8 bytes (the contract of
                    // `spend`: only an invalid chain spends such an outpoint).
                    let shared = model.keys().any(|(b, _)| b[..8] == bytes[..8] && *b != bytes);
                    if want.is_some() || !shared {
                        let from_spilled = spilled.spend(&txid, vout);
                        prop_assert_eq!(&from_spilled, &set.spend(&txid, vout));
                        prop_assert_eq!(from_spilled.map(|c| c.value), want);
                    }
                }
                prop_assert_eq!(set.len(), u64::try_from(model.len()).unwrap());
            }
            prop_assert!(spilled.spilled_bytes() > 0 || added.is_empty());
            prop_assert_eq!(spilled.snapshot_bytes(1, &[0; 32]), set.snapshot_bytes(1, &[0; 32]));
            let mut back = UtxoSet::from_snapshot(&set.snapshot_bytes(1, &[0; 32])).unwrap().0;
            for ((bytes, vout), value) in model {
                let txid = Txid::from_byte_array(bytes);
                prop_assert_eq!(back.spend(&txid, vout).map(|c| c.value), Some(value));
            }
            prop_assert!(back.is_empty());
        }
    }
}
