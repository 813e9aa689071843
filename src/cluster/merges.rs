//! Where clustering keeps its merges while it works: in memory (small worlds, the library's
//! [`super::cluster_guarded`]) or in scratch files of 16-byte records (`cluster bitcoin`,
//! where a whole chain's ≈ 2 G merges would take 32 GB of RAM). Both keep them in the
//! order clustering needs — by transaction, then heuristic and addresses — so that they
//! are only ever appended and read through once, never sorted whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Merge;
use super::heuristics::Heuristic;

/// The order of merges within a stream: transaction, heuristic, addresses.
pub(super) fn key(m: &Merge) -> (u32, Heuristic, u32, u32) {
    (m.tx, m.heuristic, m.a, m.b)
}

/// A list of merges appended in [`key`] order.
#[derive(Debug)]
pub(super) enum MergeList {
    Memory(Vec<Merge>),
    File {
        path: PathBuf,
        out: Option<std::io::BufWriter<std::fs::File>>,
        map: Option<memmap2::Mmap>,
        len: usize,
    },
}

const RECORD: usize = 16;

fn encode(m: &Merge) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[0..4].copy_from_slice(&m.a.to_le_bytes());
    r[4..8].copy_from_slice(&m.b.to_le_bytes());
    r[8..12].copy_from_slice(&m.tx.to_le_bytes());
    r[12] = u8::try_from(
        Heuristic::ALL
            .iter()
            .position(|h| *h == m.heuristic)
            .expect("every heuristic is in ALL"),
    )
    .expect("at most 16 heuristics");
    r[14..16].copy_from_slice(&m.because.to_le_bytes());
    r
}

fn decode(r: &[u8]) -> Merge {
    let u32_at = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().expect("4 bytes"));
    Merge {
        a: u32_at(0),
        b: u32_at(4),
        tx: u32_at(8),
        heuristic: Heuristic::ALL[usize::from(r[12])],
        because: u16::from_le_bytes([r[14], r[15]]),
    }
}

impl MergeList {
    /// A list in `dir` (a scratch file named `name`), or in memory when `dir` is `None`.
    pub(super) fn new(dir: Option<&Path>, name: &str) -> std::io::Result<MergeList> {
        Ok(match dir {
            None => MergeList::Memory(Vec::new()),
            Some(d) => {
                let path = d.join(name);
                let f = std::fs::File::create(&path)?;
                MergeList::File {
                    path,
                    out: Some(std::io::BufWriter::with_capacity(1 << 20, f)),
                    map: None,
                    len: 0,
                }
            }
        })
    }

    pub(super) fn push(&mut self, m: &Merge) -> std::io::Result<()> {
        match self {
            MergeList::Memory(v) => v.push(*m),
            MergeList::File { out, len, .. } => {
                out.as_mut()
                    .expect("pushed before reading")
                    .write_all(&encode(m))?;
                *len += 1;
            }
        }
        Ok(())
    }

    pub(super) fn len(&self) -> usize {
        match self {
            MergeList::Memory(v) => v.len(),
            MergeList::File { len, .. } => *len,
        }
    }

    /// Ends the appending; the list can be read from now on.
    pub(super) fn seal(&mut self) -> std::io::Result<()> {
        if let MergeList::File { path, out, map, .. } = self
            && let Some(w) = out.take()
        {
            // A scratch file: flushed to be read back, not synced (nothing keeps it).
            drop(
                w.into_inner()
                    .map_err(std::io::IntoInnerError::into_error)?,
            );
            let f = std::fs::File::open(&*path)?;
            if f.metadata()?.len() > 0 {
                // SAFETY: the scratch file is this process's own, complete and no longer
                // written; nothing else changes it while it is mapped.
                *map = Some(unsafe { memmap2::Mmap::map(&f) }?);
            }
        }
        Ok(())
    }

    /// The merges, in the order appended (after [`MergeList::seal`]).
    pub(super) fn iter(&self) -> Box<dyn Iterator<Item = Merge> + '_> {
        match self {
            MergeList::Memory(v) => Box::new(v.iter().copied()),
            MergeList::File { map, .. } => Box::new(
                map.as_deref()
                    .unwrap_or(&[])
                    .chunks_exact(RECORD)
                    .map(decode),
            ),
        }
    }

    /// Sorts a list appended out of [`key`] order (transactions clustered in a permuted
    /// order, as the property tests do), dropping repeats. Memory lists only.
    pub(super) fn sort(&mut self) {
        match self {
            MergeList::Memory(v) => {
                v.sort_by_key(key);
                v.dedup();
            }
            MergeList::File { .. } => {
                unreachable!("scratch lists are only filled in chain order")
            }
        }
    }
}

impl Drop for MergeList {
    fn drop(&mut self) {
        if let MergeList::File { path, out, map, .. } = self {
            drop(out.take());
            drop(map.take());
            let _ = std::fs::remove_file(&*path);
        }
    }
}

/// Gathers the merges of one transaction, then appends them to their lists sorted by
/// [`key`] and without repeats.
#[derive(Debug, Default)]
pub(super) struct TxBuffer {
    tx: Option<u32>,
    buf: Vec<Merge>,
}

impl TxBuffer {
    /// Adds `m`; when `m` starts another transaction, the previous one's merges go first to
    /// `out` (each to the list `route` names, or nowhere).
    pub(super) fn add(
        &mut self,
        m: Merge,
        out: &mut impl FnMut(&Merge) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if self.tx != Some(m.tx) {
            self.flush(out)?;
            self.tx = Some(m.tx);
        }
        self.buf.push(m);
        Ok(())
    }

    pub(super) fn flush(
        &mut self,
        out: &mut impl FnMut(&Merge) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.buf.sort_by_key(key);
        self.buf.dedup();
        for m in &self.buf {
            out(m)?;
        }
        self.buf.clear();
        Ok(())
    }
}

/// Two lists in [`key`] order read as one (no key is in both).
pub(super) fn merged<'a>(
    a: impl Iterator<Item = Merge> + 'a,
    b: impl Iterator<Item = Merge> + 'a,
) -> impl Iterator<Item = Merge> + 'a {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) => {
            if key(x) <= key(y) {
                a.next()
            } else {
                b.next()
            }
        }
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

/// A scratch directory removed (with what is left in it) when dropped.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates `parent/.scratch-PID-N`.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn create(parent: &Path) -> std::io::Result<ScratchDir> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = parent.join(format!(".scratch-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(ScratchDir(p))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(tx: u32, h: Heuristic, a: u32, b: u32, because: u16) -> Merge {
        Merge {
            a,
            b,
            tx,
            heuristic: h,
            because,
        }
    }

    #[test]
    fn a_file_list_reads_back_what_was_pushed() {
        let d = ScratchDir::create(&std::env::temp_dir()).unwrap();
        let all: Vec<Merge> = Heuristic::ALL
            .iter()
            .enumerate()
            .map(|(i, h)| m(u32::MAX - 1, *h, 7, u32::try_from(i).unwrap(), 0xbeef))
            .collect();
        let mut f = MergeList::new(Some(d.path()), "x").unwrap();
        for x in &all {
            f.push(x).unwrap();
        }
        f.seal().unwrap();
        assert_eq!(f.len(), all.len());
        assert_eq!(f.iter().collect::<Vec<_>>(), all);
        let path = d.path().join("x");
        assert!(path.is_file());
        drop(f);
        assert!(!path.exists());
    }

    #[test]
    fn two_lists_merge_by_key_and_a_transaction_is_sorted_once() {
        let mi = Heuristic::MultiInput;
        let v = Heuristic::ChangeVote;
        let mut got = Vec::new();
        let mut b = TxBuffer::default();
        for x in [
            m(1, mi, 5, 9, 1),
            m(1, mi, 5, 3, 1),
            m(1, mi, 5, 9, 1),
            m(2, mi, 1, 2, 1),
        ] {
            b.add(x, &mut |y: &Merge| {
                got.push(*y);
                Ok(())
            })
            .unwrap();
        }
        b.flush(&mut |y: &Merge| {
            got.push(*y);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            vec![m(1, mi, 5, 3, 1), m(1, mi, 5, 9, 1), m(2, mi, 1, 2, 1)]
        );
        let other = [m(0, v, 1, 1, 2), m(1, v, 0, 0, 2), m(3, v, 0, 0, 2)];
        let all: Vec<Merge> = merged(got.iter().copied(), other.iter().copied()).collect();
        let mut want: Vec<Merge> = got.iter().chain(&other).copied().collect();
        want.sort_by_key(key);
        assert_eq!(all, want);
    }
}
