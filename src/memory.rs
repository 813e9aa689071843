//! The memory budget (`--memory SIZE`): how much RAM a long-running stage may use.
//!
//! A stage sizes what grows with the chain to the budget: the index build interns
//! addresses in as many passes over the outputs as its address table needs to stay within
//! half the budget (the files are the same bytes whatever the budget); the ingest's UTXO
//! set and buffered rows are checked against it. The default is half of the machine's RAM
//! (`MemTotal` of `/proc/meminfo`), 4 GiB where that cannot be read.
//!
//! The budget is process-wide: the command line sets it once ([`set`]) and the stages read
//! it ([`budget`]); a library user may set it the same way before calling them.

use std::sync::OnceLock;

/// A memory budget in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Budget(u64);

/// The smallest budget accepted: below it the fixed costs (the binary, Parquet readers'
/// buffers) exceed it and no stage could honour it.
pub const MIN: Budget = Budget(16 << 20);

impl Budget {
    /// A budget of `bytes` bytes.
    #[must_use]
    pub const fn of_bytes(bytes: u64) -> Budget {
        Budget(bytes)
    }

    /// The budget in bytes.
    #[must_use]
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The budget as a `usize` (saturating on 32-bit targets).
    #[must_use]
    pub fn bytes_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    /// Parses a size as `--memory` takes it: a number of bytes, or with a unit `K`, `M`,
    /// `G`, `T` (binary: 1 K = 1024 bytes, as in `sort -S` and `ulimit`), optionally
    /// followed by `iB` or `B`, with a fraction allowed (`1.5G`). Case-insensitive.
    ///
    /// # Errors
    /// Not a size, or smaller than [`MIN`] (16 MiB).
    pub fn parse(text: &str) -> Result<Budget, crate::types::InvalidValue> {
        let n = parse_size::Config::new()
            .with_binary()
            .parse_size(text.trim())
            .map_err(|e| {
                crate::types::InvalidValue(format!(
                    "memory budget {text:?} is not a size ({e}): give bytes or a number with K, M, G or T, e.g. 8G or 512M"
                ))
            })?;
        if n < MIN.0 {
            return Err(crate::types::InvalidValue(format!(
                "memory budget {text:?} is {}, under the least chaintrace can honour ({}): give at least 16M",
                show(n),
                show(MIN.0)
            )));
        }
        Ok(Budget(n))
    }

    /// Half of the machine's RAM (`MemTotal` in `/proc/meminfo`), or 4 GiB if it cannot be
    /// read; never under [`MIN`].
    #[must_use]
    pub fn half_of_ram() -> Budget {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kib| kib * 1024);
        Budget(total.map_or(4 << 30, |t| t / 2).max(MIN.0))
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&show(self.0))
    }
}

/// `n` bytes in the largest binary unit that keeps one decimal (`1.5 GiB`, `64 MiB`).
#[must_use]
pub fn show(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024 && u + 1 < UNITS.len() {
        v /= 1024;
        u += 1;
    }
    if u == 0 {
        return format!("{n} B");
    }
    let tenths = u128::from(n) * 10 / (1u128 << (10 * u));
    if tenths.is_multiple_of(10) {
        format!("{} {}", tenths / 10, UNITS[u])
    } else {
        format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[u])
    }
}

static BUDGET: OnceLock<Budget> = OnceLock::new();

/// Sets the process's budget; the first call wins (later calls return `false`).
pub fn set(b: Budget) -> bool {
    BUDGET.set(b).is_ok()
}

/// The process's budget: the one [`set`], else the `CHAINTRACE_MEMORY` environment
/// variable's (if it parses: the command line refuses one that does not, before any
/// stage runs), else [`Budget::half_of_ram`].
#[must_use]
pub fn budget() -> Budget {
    *BUDGET.get_or_init(|| {
        std::env::var("CHAINTRACE_MEMORY")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| Budget::parse(&v).ok())
            .unwrap_or_else(Budget::half_of_ram)
    })
}

/// The process's anonymous resident memory (`RssAnon` of `/proc/self/status`: its heap and
/// other private allocations, not the memory-mapped index or dataset files), in bytes;
/// `None` where that cannot be read (not Linux).
#[must_use]
pub fn heap_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// A stage whose working set grows with its input (a trace's edges and taint) watched
/// against the budget: how much the process's anonymous memory ([`heap_bytes`]) has grown
/// since the watch began. Reading it costs a read of `/proc/self/status` (tens of µs), so
/// [`Watch::grown_over`] reads it once every [`Watch::EVERY`] calls.
#[derive(Debug, Clone)]
pub struct Watch {
    start: Option<u64>,
    limit: u64,
    calls: u32,
    interruptible: bool,
}

/// A watched stage outgrew its share of the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgrown {
    /// How much the anonymous memory grew since the watch began, in bytes.
    pub grown: u64,
    /// The growth allowed, in bytes.
    pub limit: u64,
}

impl Watch {
    /// Calls of [`Watch::grown_over`] between two reads of the process's memory.
    pub const EVERY: u32 = 256;

    /// A watch from now, allowing a growth of `limit` bytes, and interrupted by Ctrl-C
    /// ([`Watch::interrupted`]).
    #[must_use]
    pub fn new(limit: u64) -> Watch {
        Watch {
            start: heap_bytes(),
            limit,
            calls: 0,
            interruptible: true,
        }
    }

    /// A watch from now that reports once the process's memory passes `total` bytes: it
    /// allows the growth of `total` less what the process holds now (one reading of it).
    #[must_use]
    pub fn up_to(total: u64) -> Watch {
        let mut w = Watch::new(0);
        w.limit = total.saturating_sub(w.start.unwrap_or(0));
        w
    }

    /// A watch that never reports, and is never interrupted (a library caller that sets
    /// no budget of its own).
    #[must_use]
    pub fn unlimited() -> Watch {
        Watch {
            start: None,
            limit: u64::MAX,
            calls: 0,
            interruptible: false,
        }
    }

    /// Whether the watched stage was asked to stop: Ctrl-C or SIGTERM once
    /// [`crate::ingest::stop_on_ctrl_c`] is installed, or [`crate::ingest::interrupt`];
    /// never for [`Watch::unlimited`].
    #[must_use]
    pub fn interrupted(&self) -> bool {
        self.interruptible && crate::ingest::interrupted()
    }

    /// Once every [`Watch::EVERY`] calls, whether the memory grew past the limit.
    ///
    /// # Errors
    /// [`Outgrown`] with the growth measured, when it passed the limit.
    pub fn grown_over(&mut self) -> Result<(), Outgrown> {
        self.calls += 1;
        if self.calls < Self::EVERY {
            return Ok(());
        }
        self.check()
    }

    /// Whether the memory grew past the limit, read now (for a stage that calls it seldom).
    ///
    /// # Errors
    /// [`Outgrown`] with the growth measured, when it passed the limit.
    pub fn check(&mut self) -> Result<(), Outgrown> {
        self.calls = 0;
        let (Some(start), Some(now)) = (self.start, heap_bytes()) else {
            return Ok(());
        };
        let grown = now.saturating_sub(start);
        if grown > self.limit {
            return Err(Outgrown {
                grown,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(Budget::parse("64M").unwrap().bytes(), 64 << 20);
        assert_eq!(Budget::parse("64MiB").unwrap().bytes(), 64 << 20);
        assert_eq!(Budget::parse("8g").unwrap().bytes(), 8 << 30);
        assert_eq!(Budget::parse("1.5G").unwrap().bytes(), 3 << 29);
        assert_eq!(Budget::parse("33554432").unwrap().bytes(), 32 << 20);
        let e = Budget::parse("8 potatoes").unwrap_err().to_string();
        assert!(e.contains("8 potatoes") && e.contains("8G"), "{e}");
        let e = Budget::parse("1M").unwrap_err().to_string();
        assert!(e.contains("16M"), "{e}");
        assert!(Budget::parse("-5G").is_err());
    }

    #[test]
    fn sizes_show_in_binary_units() {
        assert_eq!(show(64 << 20), "64 MiB");
        assert_eq!(show(3 << 29), "1.5 GiB");
        assert_eq!(show(1000), "1000 B");
        assert!(Budget::half_of_ram() >= MIN);
    }

    #[test]
    fn a_watch_reports_growth_past_its_limit() {
        // (Other tests of this process allocate too, so only the report is checked here;
        // the memory test of the trace checks a limit is not reported early.)
        let mut w = Watch::new(64 << 20);
        let mut held: Vec<Vec<u8>> = Vec::new();
        let mut over = None;
        for _ in 0..200 {
            // 1 MiB touched, so it is resident.
            held.push(vec![1u8; 1 << 20]);
            for _ in 0..Watch::EVERY {
                if let Err(e) = w.grown_over() {
                    over = Some(e);
                }
            }
            if over.is_some() {
                break;
            }
        }
        let e = over.expect("200 MiB held passes a 64 MiB limit");
        assert!(e.grown > 64 << 20 && e.limit == 64 << 20, "{e:?}");
        let mut u = Watch::unlimited();
        for _ in 0..Watch::EVERY * 2 {
            assert!(u.grown_over().is_ok());
        }
    }
}
