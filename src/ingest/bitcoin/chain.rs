//! Choosing the best chain among the blocks on disk.
//!
//! Two ways, both ending in the list of `(height, hash, position)` of the most-work chain
//! from genesis:
//! - from Bitcoin Core's block index (`blocks/index`, LevelDB), which records each block's
//!   height, status and file position;
//! - without it, by scanning every `blk*.dat` record, linking headers by previous hash from
//!   genesis and summing the proof of work.
//!
//! Stale and orphan blocks stored in the files are thereby never ingested.

use std::collections::HashMap;
use std::path::Path;

use bitcoin::BlockHash;
use bitcoin::block::Header;
use bitcoin::consensus::deserialize;
use bitcoin::hashes::Hash;
use bitcoin::pow::Work;

use super::blkfile::{BlockPos, BlocksDir};
use super::error::IngestError;
use super::leveldb;

/// One block of the chosen chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBlock {
    pub height: u32,
    pub hash: BlockHash,
    /// Where the block is stored, for a blocks-directory chain.
    pub pos: Option<BlockPos>,
}

/// The chosen chain and what was left out.
#[derive(Debug)]
pub struct BestChain {
    /// Blocks from genesis to the tip, in height order.
    pub blocks: Vec<ChainBlock>,
    /// Blocks present on disk but not on the best chain (stale forks).
    pub stale: usize,
    /// An error found on the way that the ingest must report after writing what it can:
    /// a truncated or corrupt file, or a block whose parent is missing.
    pub deferred: Option<IngestError>,
}

const BLOCK_HAVE_DATA: u64 = 8;
const BLOCK_HAVE_UNDO: u64 = 16;
const BLOCK_FAILED_MASK: u64 = 32 | 64;

/// An entry of Bitcoin Core's block index (`CDiskBlockIndex`).
#[derive(Clone, Debug)]
struct IndexEntry {
    height: u32,
    status: u64,
    pos: Option<BlockPos>,
    header: Header,
}

/// Bitcoin Core's `VARINT` (base-128, MSB first, with the "+1" per continuation byte).
fn core_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut n: u64 = 0;
    loop {
        let ch = *b.get(*pos)?;
        *pos += 1;
        n = n.checked_mul(128)? | u64::from(ch & 0x7f);
        if ch & 0x80 != 0 {
            n = n.checked_add(1)?;
        } else {
            return Some(n);
        }
    }
}

fn parse_index_entry(v: &[u8]) -> Option<IndexEntry> {
    let mut p = 0;
    let _client_version = core_varint(v, &mut p)?;
    let height = u32::try_from(core_varint(v, &mut p)?).ok()?;
    let status = core_varint(v, &mut p)?;
    let _n_tx = core_varint(v, &mut p)?;
    let file = if status & (BLOCK_HAVE_DATA | BLOCK_HAVE_UNDO) != 0 {
        Some(u32::try_from(core_varint(v, &mut p)?).ok()?)
    } else {
        None
    };
    let data_pos = if status & BLOCK_HAVE_DATA != 0 {
        Some(core_varint(v, &mut p)?)
    } else {
        None
    };
    if status & BLOCK_HAVE_UNDO != 0 {
        core_varint(v, &mut p)?;
    }
    let header: Header = deserialize(v.get(p..p + 80)?).ok()?;
    let pos = match (file, data_pos) {
        (Some(file), Some(data_pos)) => Some(BlockPos { file, data_pos }),
        _ => None,
    };
    Some(IndexEntry {
        height,
        status,
        pos,
        header,
    })
}

/// Picks the best chain from Bitcoin Core's block index in `index_dir`.
///
/// The tip is the block with the most cumulative work among blocks that are not marked
/// failed and whose ancestors all have data on disk; ties go to the block stored first.
///
/// # Errors
/// The index is unreadable or malformed, or it has no genesis block of the network.
pub fn from_index(dir: &BlocksDir, index_dir: &Path) -> Result<BestChain, IngestError> {
    let kv = leveldb::read_all(index_dir)?;
    let mut entries: HashMap<BlockHash, IndexEntry> = HashMap::new();
    for (k, v) in kv.range(b"b".to_vec()..b"c".to_vec()) {
        if k.len() != 33 {
            continue;
        }
        let hash = BlockHash::from_slice(&k[1..]).expect("32 bytes");
        let e = parse_index_entry(v).ok_or_else(|| IngestError::IndexEntry {
            key: hash.to_string(),
            what: "cannot decode the CDiskBlockIndex record".into(),
        })?;
        if e.header.block_hash() != hash {
            return Err(IngestError::IndexEntry {
                key: hash.to_string(),
                what: "stored header does not hash to its key".into(),
            });
        }
        entries.insert(hash, e);
    }
    let genesis = dir.network.genesis_hash();
    if !entries.contains_key(&genesis) {
        return Err(IngestError::NoGenesis {
            dir: dir.dir.clone(),
            network: dir.network,
        });
    }
    // Cumulative work, in height order so parents come first.
    let mut order: Vec<(&BlockHash, &IndexEntry)> = entries.iter().collect();
    order.sort_by_key(|(h, e)| (e.height, e.pos, **h));
    let mut work: HashMap<BlockHash, Work> = HashMap::new();
    let mut best: Option<(Work, BlockPos, BlockHash)> = None;
    for (hash, e) in &order {
        let usable = e.status & BLOCK_FAILED_MASK == 0 && e.status & BLOCK_HAVE_DATA != 0;
        let Some(pos) = e.pos.filter(|_| usable) else {
            continue;
        };
        let parent_work = if **hash == genesis {
            Some(Work::from_be_bytes([0; 32]))
        } else {
            work.get(&e.header.prev_blockhash).copied()
        };
        let Some(parent_work) = parent_work else {
            continue;
        };
        let w = parent_work + e.header.work();
        work.insert(**hash, w);
        let better = match &best {
            None => true,
            Some((bw, bpos, _)) => w > *bw || (w == *bw && pos < *bpos),
        };
        if better {
            best = Some((w, pos, **hash));
        }
    }
    let Some((_, _, tip)) = best else {
        return Err(IngestError::MissingData {
            height: 0,
            hash: genesis.to_string(),
        });
    };
    let mut blocks = Vec::new();
    let mut cur = tip;
    loop {
        let e = &entries[&cur];
        blocks.push(ChainBlock {
            height: e.height,
            hash: cur,
            pos: e.pos,
        });
        if cur == genesis {
            break;
        }
        cur = e.header.prev_blockhash;
    }
    blocks.reverse();
    let stale = entries.values().filter(|e| e.pos.is_some()).count() - blocks.len();
    Ok(BestChain {
        blocks,
        stale,
        deferred: None,
    })
}

/// Whether the index in `index_dir` can give a chain (genesis has data).
pub fn index_present(index_dir: &Path) -> bool {
    index_dir.join("CURRENT").is_file()
}

/// Picks the best chain by scanning every record of every `blk*.dat` and linking headers.
///
/// # Errors
/// I/O errors, or no genesis block of the network in the files. A truncated file, garbage
/// in a file, or blocks whose parent is missing are returned in [`BestChain::deferred`]
/// so the caller can ingest the chain before them first.
pub fn from_scan(
    dir: &BlocksDir,
    mut on_file: impl FnMut(usize),
) -> Result<BestChain, IngestError> {
    struct Node {
        prev: BlockHash,
        pos: BlockPos,
        work: Work,
    }
    let mut nodes: HashMap<BlockHash, Node> = HashMap::new();
    let mut deferred: Option<IngestError> = None;
    for (i, (file, _)) in dir.files.iter().enumerate() {
        let scan = dir.scan(*file)?;
        for r in scan.records {
            let header: Header =
                deserialize(&r.header).expect("80 bytes always decode as a header");
            nodes.entry(header.block_hash()).or_insert(Node {
                prev: header.prev_blockhash,
                pos: r.pos,
                work: header.work(),
            });
        }
        if deferred.is_none() {
            deferred = scan.stopped_by;
        }
        on_file(i + 1);
    }
    let genesis = dir.network.genesis_hash();
    if !nodes.contains_key(&genesis) {
        return Err(IngestError::NoGenesis {
            dir: dir.dir.clone(),
            network: dir.network,
        });
    }
    // Children lists, then a walk from genesis assigning height and cumulative work.
    let mut children: HashMap<BlockHash, Vec<BlockHash>> = HashMap::new();
    for (h, n) in &nodes {
        if *h != genesis {
            children.entry(n.prev).or_default().push(*h);
        }
    }
    let mut reached: HashMap<BlockHash, (u32, Work)> = HashMap::new();
    let mut stack = vec![(genesis, 0u32, nodes[&genesis].work)];
    let mut best = (nodes[&genesis].work, nodes[&genesis].pos, genesis, 0u32);
    while let Some((h, height, w)) = stack.pop() {
        reached.insert(h, (height, w));
        let pos = nodes[&h].pos;
        if w > best.0 || (w == best.0 && pos < best.1) {
            best = (w, pos, h, height);
        }
        for c in children.get(&h).into_iter().flatten() {
            stack.push((*c, height + 1, w + nodes[c].work));
        }
    }
    let mut blocks = Vec::with_capacity(best.3 as usize + 1);
    let mut cur = best.2;
    loop {
        let n = &nodes[&cur];
        blocks.push(ChainBlock {
            height: reached[&cur].0,
            hash: cur,
            pos: Some(n.pos),
        });
        if cur == genesis {
            break;
        }
        cur = n.prev;
    }
    blocks.reverse();
    // A block not reachable from genesis has a parent missing from the files.
    let mut orphans: Vec<(&BlockHash, &Node)> = nodes
        .iter()
        .filter(|(h, _)| !reached.contains_key(*h))
        .collect();
    orphans.sort_by_key(|(_, n)| n.pos);
    if let Some(first) = orphans.first() {
        // Report the one whose parent is missing (the root of its detached subtree).
        let root = orphans
            .iter()
            .find(|(_, o)| !nodes.contains_key(&o.prev))
            .unwrap_or(first);
        let err = IngestError::MissingParent {
            hash: root.0.to_string(),
            parent: root.1.prev.to_string(),
            path: dir.display_path(root.1.pos.file),
            offset: root.1.pos.data_pos - 8,
            reached: i64::from(best.3),
        };
        // A truncation found while scanning is the likelier root cause; keep it first.
        if deferred.is_none() {
            deferred = Some(err);
        }
    }
    let stale = reached.len() - blocks.len();
    Ok(BestChain {
        blocks,
        stale,
        deferred,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_varint_matches_bitcoin_core() {
        // Examples from Bitcoin Core's serialize.h comment.
        let cases: [(&[u8], u64); 6] = [
            (&[0x00], 0),
            (&[0x7f], 127),
            (&[0x80, 0x00], 128),
            (&[0x80, 0x7f], 255),
            (&[0x81, 0x00], 256),
            (&[0xfe, 0x7f], 16383),
        ];
        for (bytes, want) in cases {
            let mut p = 0;
            assert_eq!(core_varint(bytes, &mut p), Some(want));
            assert_eq!(p, bytes.len());
        }
        let mut p = 0;
        assert_eq!(core_varint(&[0x80], &mut p), None);
    }
}
