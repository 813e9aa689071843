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
}
