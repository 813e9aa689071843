//! Sharing what an agency flags without revealing it (`chaintrace share`), after the EU
//! FIU.net's "Ma3tch": each flagged address becomes a keyed pseudorandom value, the values
//! go into a probabilistic filter, and a partner holding the same key tests **its own**
//! addresses against the filter; it learns which of them are flagged and nothing else, and
//! asks the owner, by a request reference, for what the owner chooses to reveal.
//!
//! - **Items**: `CHAIN:ADDRESS` with the address normalised as labels are
//!   ([`crate::labels::normalise`]: bech32 in lower case, Ethereum in lower case).
//! - **Keyed values**: HMAC-SHA256 (RFC 2104) under a 32-byte key shared by one pair of
//!   partners, with a domain string per use ([`Key::prf`]); a filter key is the first 8
//!   bytes of `PRF("ctw1/item", item)`, a request reference `R-` and 12 hexadecimal digits
//!   of `PRF("ctw1/ref", item)`.
//! - **Filter**: a binary fuse filter with 32-bit fingerprints (Graf and Lemire, "Binary
//!   Fuse Filters: Fast and Smaller Than Xor Filters", JEA 2022; crate `xorf`): about 36
//!   bits per item, no false negatives, a false-positive rate of 2^-32 per lookup.
//! - **File** (`.ctw`, [`Watchlist`]): magic, a JSON header (no address, label or case
//!   text), the filter, and an HMAC over all of it, so that a changed byte or another key is
//!   detected. The key is never in the file. Layout in `docs/SHARE.md`.
//!
//! What it does not hide: anyone holding the key can test any address they know. A
//! partner whose dataset covers the whole chain learns which chain addresses are flagged
//! (never why, by whom or in which case). Share a key with one partner only, and use
//! [`psi`] to compare lists without that exposure.

pub mod psi;

use std::io::Write;
use std::path::{Path, PathBuf};

use bitcoin::hashes::{Hash, HashEngine, hmac, sha256};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use xorf::{DmaSerializable, Filter, FilterRef};

/// The watchlist file's first bytes.
pub const MAGIC: &[u8; 8] = b"CTWATCH1";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// False-positive rate per lookup of the filter (32-bit fingerprints).
pub const FALSE_POSITIVE_RATE: f64 = 1.0 / 4_294_967_296.0;

/// Categories that are need-to-know (after GraphSense's concepts taxonomy): left out of an
/// export unless asked for by name.
pub const SENSITIVE: [&str; 4] = [
    "child_sexual_abuse",
    "child_sexual_abuse_material",
    "csam",
    "sexual_abuse",
];

/// Whether `category` is need-to-know ([`SENSITIVE`]; any case, `-` or `_`).
pub fn is_sensitive(category: &str) -> bool {
    let c = category.to_ascii_lowercase().replace('-', "_");
    SENSITIVE.contains(&c.as_str())
}

/// An error of sharing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ShareError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a key file: {why}")]
    Key { path: PathBuf, why: String },
    #[error("{path}: {why}")]
    Format { path: PathBuf, why: String },
    #[error(
        "{path} was made with another key (key id {file}, this key's id {ours}): use the key file agreed with the partner who sent it"
    )]
    WrongKey {
        path: PathBuf,
        file: String,
        ours: String,
    },
    #[error(
        "{path} has been changed since it was written (its MAC does not match): ask the sender for the file again"
    )]
    Tampered { path: PathBuf },
    #[error("nothing to share: {0}")]
    Empty(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ShareError + '_ {
    move |source| ShareError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A 32-byte key shared by one pair of partners. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id {})", self.id())
    }
}

impl Key {
    /// A new key from the operating system's random source.
    ///
    /// # Errors
    /// The source is not available.
    pub fn generate() -> std::io::Result<Key> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Key(b))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(b: [u8; 32]) -> Key {
        Key(b)
    }

    /// Reads a key file: 64 hexadecimal digits (whitespace and `#` comment lines ignored).
    ///
    /// # Errors
    /// An unreadable file, or one that does not hold exactly 32 bytes in hex.
    pub fn load(path: &Path) -> Result<Key, ShareError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let hex: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        let bad = |why: &str| ShareError::Key {
            path: path.to_path_buf(),
            why: why.into(),
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                "a key file holds 64 hexadecimal digits (make one with `chaintrace share keygen`)",
            ));
        }
        let mut b = [0u8; 32];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad("not hex"))?;
        }
        Ok(Key(b))
    }

    /// Writes the key to a new file `path`, readable by its owner only (mode 0600).
    ///
    /// # Errors
    /// The file exists (a key is never overwritten) or cannot be written.
    pub fn write_new(&self, path: &Path) -> Result<(), ShareError> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(path).map_err(io(path))?;
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(
            f,
            "# chaintrace share key {}: give it to one partner only, by a channel you trust\n{hex}",
            self.id()
        )
        .and_then(|()| f.sync_all())
        .map_err(io(path))
    }

    /// `HMAC-SHA256(key, domain || 0x00 || data)`.
    pub fn prf(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        let mut e = hmac::HmacEngine::<sha256::Hash>::new(&self.0);
        e.input(domain.as_bytes());
        e.input(&[0]);
        e.input(data);
        hmac::Hmac::<sha256::Hash>::from_engine(e).to_byte_array()
    }

    /// A public name of the key: 16 hexadecimal digits of `PRF("ctw1/key-id", "")`, so that
    /// partners can see they hold the same key without showing it.
    pub fn id(&self) -> String {
        self.prf("ctw1/key-id", b"")[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The item of an address: `CHAIN:ADDRESS` (`bitcoin:bc1q…`, `ethereum:0x…`).
pub fn item(chain: &str, address: &str) -> String {
    format!("{chain}:{address}")
}

/// The filter key of `item` under `key`.
pub fn filter_key(key: &Key, item: &str) -> u64 {
    let h = key.prf("ctw1/item", item.as_bytes());
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// The request reference of `item` under `key`: `R-` and 12 hexadecimal digits. The
/// partner quotes it; the owner finds the item by computing the references of its own.
pub fn reference(key: &Key, item: &str) -> String {
    let h = key.prf("ctw1/ref", item.as_bytes());
    let hex: String = h[..6].iter().map(|b| format!("{b:02X}")).collect();
    format!("R-{hex}")
}

/// The watchlist file's header: what can be said in clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// `chaintrace-watchlist`.
    pub format: String,
    pub version: u32,
    /// The partner it is for (a name the two agencies agreed).
    #[serde(rename = "for")]
    pub for_partner: String,
    /// UTC date it was made, `YYYY-MM-DD`.
    pub created: String,
    /// [`Key::id`] of the key it was made with.
    pub key_id: String,
    /// Distinct items in the filter.
    pub items: u64,
    /// `binary-fuse-32`.
    pub filter: String,
    /// Per-lookup false-positive rate, as text (`2^-32`).
    pub false_positive_rate: String,
    /// Bytes of the filter's descriptor and fingerprints that follow the header.
    pub descriptor_bytes: u64,
    pub fingerprint_bytes: u64,
}

/// A watchlist: its header and filter.
#[derive(Debug)]
pub struct Watchlist {
    pub header: Header,
    descriptor: Vec<u8>,
    fingerprints: Vec<u32>,
}

impl Watchlist {
    /// The watchlist of `items` (duplicates counted once) for `for_partner`, made `created`.
    ///
    /// # Errors
    /// No item, or a filter that cannot be built.
    pub fn build(
        key: &Key,
        for_partner: &str,
        created: &str,
        items: &[String],
    ) -> Result<Watchlist, ShareError> {
        let mut keys: Vec<u64> = items.iter().map(|i| filter_key(key, i)).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return Err(ShareError::Empty(
                "no address to put in the watchlist".into(),
            ));
        }
        let f = xorf::BinaryFuse32::try_from(&keys)
            .map_err(|e| ShareError::Empty(format!("the filter could not be built: {e}")))?;
        let mut descriptor = vec![0u8; xorf::BinaryFuse32::DESCRIPTOR_LEN];
        f.dma_copy_descriptor_to(&mut descriptor);
        let fingerprints = f.fingerprints.to_vec();
        Ok(Watchlist {
            header: Header {
                format: "chaintrace-watchlist".into(),
                version: VERSION,
                for_partner: for_partner.to_string(),
                created: created.to_string(),
                key_id: key.id(),
                items: keys.len() as u64,
                filter: "binary-fuse-32".into(),
                false_positive_rate: "2^-32".into(),
                descriptor_bytes: descriptor.len() as u64,
                fingerprint_bytes: (fingerprints.len() * 4) as u64,
            },
            descriptor,
            fingerprints,
        })
    }

    /// The file's bytes: `MAGIC`, the header's length (u32 little-endian) and JSON, the
    /// descriptor, the fingerprints (u32 little-endian), then `PRF("ctw1/mac", all of it)`.
    pub fn to_bytes(&self, key: &Key) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("headers serialise");
        let mut out = Vec::with_capacity(header.len() + self.fingerprints.len() * 4 + 80);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(
            &u32::try_from(header.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.descriptor);
        for f in &self.fingerprints {
            out.extend_from_slice(&f.to_le_bytes());
        }
        let mac = key.prf("ctw1/mac", &out);
        out.extend_from_slice(&mac);
        out
    }

    /// Reads a watchlist written by [`Watchlist::to_bytes`], checking its key id and MAC.
    ///
    /// # Errors
    /// Not a watchlist (magic, version, lengths), another key, a changed byte.
    pub fn from_bytes(bytes: &[u8], key: &Key, path: &Path) -> Result<Watchlist, ShareError> {
        let bad = |why: String| ShareError::Format {
            path: path.to_path_buf(),
            why,
        };
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(bad(
                "not a chaintrace watchlist: it does not start with CTWATCH1 (a .ctw file from `chaintrace share export`)"
                    .into(),
            ));
        }
        let cut = |have: usize, want: String| {
            bad(format!(
                "the watchlist is cut short ({have} bytes, {want}): ask the sender for the file again"
            ))
        };
        if bytes.len() < 12 + 32 {
            return Err(cut(bytes.len(), "at least 44 expected".into()));
        }
        let hlen = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        if 12 + hlen + 32 > bytes.len() {
            return Err(cut(bytes.len(), format!("its header alone is {hlen}")));
        }
        let header: Header = serde_json::from_slice(&bytes[12..12 + hlen])
            .map_err(|e| bad(format!("its header is not readable: {e}")))?;
        let want =
            12 + hlen + header.descriptor_bytes as usize + header.fingerprint_bytes as usize + 32;
        if bytes.len() < want {
            return Err(cut(bytes.len(), format!("{want} expected")));
        }
        let body_end = bytes.len() - 32;
        if header.version != VERSION || header.format != "chaintrace-watchlist" {
            return Err(bad(format!(
                "format {} version {}; this chaintrace reads version {VERSION}",
                header.format, header.version
            )));
        }
        if header.key_id != key.id() {
            return Err(ShareError::WrongKey {
                path: path.to_path_buf(),
                file: header.key_id,
                ours: key.id(),
            });
        }
        let mac = key.prf("ctw1/mac", &bytes[..body_end]);
        if mac[..] != bytes[body_end..] {
            return Err(ShareError::Tampered {
                path: path.to_path_buf(),
            });
        }
        let d = 12 + hlen;
        let (dl, fl) = (
            header.descriptor_bytes as usize,
            header.fingerprint_bytes as usize,
        );
        if dl != xorf::BinaryFuse32::DESCRIPTOR_LEN
            || d + dl + fl != body_end
            || !fl.is_multiple_of(4)
        {
            return Err(bad("its lengths do not add up".into()));
        }
        let descriptor = bytes[d..d + dl].to_vec();
        let fingerprints = bytes[d + dl..body_end]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(Watchlist {
            header,
            descriptor,
            fingerprints,
        })
    }

    /// Reads and checks the watchlist file `path`.
    ///
    /// # Errors
    /// As [`Watchlist::from_bytes`], and an unreadable file.
    pub fn read(path: &Path, key: &Key) -> Result<Watchlist, ShareError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        Watchlist::from_bytes(&bytes, key, path)
    }

    /// A matcher over the filter (borrowing its fingerprints).
    pub fn matcher(&self) -> Matcher<'_> {
        let bytes: &[u8] = bytemuck_u32(&self.fingerprints);
        Matcher(xorf::BinaryFuse32Ref::from_dma(&self.descriptor, bytes))
    }
}

/// The fingerprints as bytes (native order, as the filter reads them; aligned, since they
/// are a `[u32]`).
fn bytemuck_u32(v: &[u32]) -> &[u8] {
    // SAFETY: a u32 slice is valid as bytes of 4 times its length, alignment 1.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// Tests items against a watchlist.
#[derive(Debug)]
pub struct Matcher<'a>(xorf::BinaryFuse32Ref<'a>);

impl Matcher<'_> {
    /// Whether `item` may be in the watchlist (false positives at [`FALSE_POSITIVE_RATE`]).
    pub fn contains(&self, key: &Key, item: &str) -> bool {
        self.0.contains(&filter_key(key, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; 32])
    }

    fn items(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| item("bitcoin", &format!("bc1qexample{i:06}")))
            .collect()
    }

    #[test]
    fn a_watchlist_round_trips_and_finds_its_items() {
        let k = key(7);
        let list = items(1000);
        let w = Watchlist::build(&k, "partner-b", "2026-12-01", &list).unwrap();
        let bytes = w.to_bytes(&k);
        let back = Watchlist::from_bytes(&bytes, &k, Path::new("x.ctw")).unwrap();
        assert_eq!(back.header, w.header);
        assert_eq!(back.header.items, 1000);
        let m = back.matcher();
        assert!(list.iter().all(|i| m.contains(&k, i)));
        assert!(!m.contains(&k, &item("bitcoin", "bc1qsomeoneelse")));
        // No item is in the file in clear.
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("bc1qexample"));
    }

    #[test]
    fn another_key_and_a_changed_byte_are_detected() {
        let k = key(7);
        let w = Watchlist::build(&k, "b", "2026-12-01", &items(50)).unwrap();
        let mut bytes = w.to_bytes(&k);
        let p = Path::new("x.ctw");
        assert!(matches!(
            Watchlist::from_bytes(&bytes, &key(8), p),
            Err(ShareError::WrongKey { .. })
        ));
        let n = bytes.len();
        bytes[n - 40] ^= 1;
        assert!(matches!(
            Watchlist::from_bytes(&bytes, &k, p),
            Err(ShareError::Tampered { .. })
        ));
        assert!(matches!(
            Watchlist::from_bytes(b"not a watchlist at all, no", &k, p),
            Err(ShareError::Format { .. })
        ));
    }

    #[test]
    fn a_million_random_addresses_give_no_more_false_hits_than_stated() {
        // 10,000 flagged items; 1,000,000 other addresses (keyed values of counters, as
        // random as HMAC-SHA256). At 2^-32 per lookup the expected count is 0.00023: more
        // than one would be a failure of the stated rate (chance about 3e-8).
        let k = key(5);
        let w = Watchlist::build(&k, "b", "2026-12-01", &items(10_000)).unwrap();
        let m = w.matcher();
        let false_hits = (0..1_000_000u32)
            .filter(|i| m.contains(&k, &item("bitcoin", &format!("random{i}"))))
            .count();
        assert!(false_hits <= 1, "{false_hits} false hits in 1,000,000");
    }

    #[test]
    fn references_are_stable_per_key_and_item() {
        let (a, b) = (key(1), key(2));
        let i = item("bitcoin", "bc1qx");
        assert_eq!(reference(&a, &i), reference(&a, &i));
        assert_ne!(reference(&a, &i), reference(&b, &i));
        assert_eq!(reference(&a, &i).len(), 14);
        assert!(is_sensitive("Child-Sexual-Abuse"));
        assert!(!is_sensitive("darknet_market"));
    }
}
