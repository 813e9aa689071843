//! Labels: flagged wallets and entity tags, imported from GraphSense TagPacks (YAML), OFAC
//! `sanctioned_addresses_<ASSET>.txt` lists and CSV into `data/labels/tags.parquet`.
//!
//! Every address is validated and normalised for its chain (Bitcoin: parsed and re-encoded,
//! bech32 in lower case; Ethereum: `0x` + 40 hex digits, lower case; the zero address is
//! dropped). Invalid ones are rejected with file and line; the rest is imported. A file is
//! known by its canonical path and by the sha256 of its content: importing it again, under
//! any spelling of its path or as a copy elsewhere, replaces the rows that came from it, so
//! nothing is doubled. When one address carries disagreeing tags, [`precedence`] decides
//! which is used, the same way in every stage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt32Type};
use arrow_array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array,
};
use arrow_schema::Schema;
use bitcoin::hashes::Hash as _;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use yaml_rust2::{Yaml, YamlLoader};

use crate::store::{StoreError, sink};

mod csv_list;
pub mod precedence;

pub use csv_list::{Lines, delimiter_name, sniff_delimiter};
pub use precedence::{Conflict, LostOnly, Resolved, Rule, Selection, confidence_level, resolve};

/// The format version of `tags.parquet`, kept in its metadata under [`FORMAT_KEY`].
/// 2: `lastmod` and `file_sha256` columns; files are canonical paths. Version 1 files (no
/// key) are still read.
pub const TAGS_FORMAT: &str = "2";
/// The Parquet/Arrow metadata key holding [`TAGS_FORMAT`].
pub const FORMAT_KEY: &str = "chaintrace.tags.format";

/// An error that stops an import.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LabelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {what}")]
    Format {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error(
        "{path}: cannot tell the format; name it *.yaml (TagPack), sanctioned_addresses_<ASSET>.txt (OFAC) or *.csv, or pass --format"
    )]
    UnknownFormat { path: PathBuf },
    #[error(
        "nothing imported from {files}: {why}; see the rejected rows above (only BTC, ETH and Ethereum tokens are supported)"
    )]
    NothingImported {
        files: String,
        why: String,
        /// What reading each file found (its rejected rows).
        reports: Vec<FileReport>,
    },
    #[error(
        "{path} was written by a newer chaintrace (tags format {found}, this one reads up to {TAGS_FORMAT}); upgrade chaintrace"
    )]
    TagsFormat { path: PathBuf, found: String },
    #[error(
        "{path}: column {column} is missing or has the wrong type; import the label files again into a new --data, or remove {path}"
    )]
    TagsColumn { path: PathBuf, column: &'static str },
    #[error(
        "--prefer {what:?} is no source or label file of the imported tags; `chaintrace labels list` shows the files and `chaintrace labels search` the sources"
    )]
    PreferUnknown { what: String },
    #[error(
        "no imported label file matches {what:?}; `chaintrace labels list` shows the files (give the path, the file name or at least 8 hex digits of its sha256)"
    )]
    NoSuchFile { what: String },
    #[error(
        "{what:?} matches {n} imported label files ({names}); give the full path or a longer sha256 prefix"
    )]
    Ambiguous {
        what: String,
        n: usize,
        names: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Tagpack,
    Ofac,
    Csv,
}

impl Format {
    /// The format a file name implies.
    pub fn of(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?;
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            Some(Format::Tagpack)
        } else if name.starts_with("sanctioned_addresses_") && name.ends_with(".txt") {
            Some(Format::Ofac)
        } else if name.ends_with(".csv") || name.ends_with(".tsv") {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// A text a tag carries (its chain, network, label, entity, category, confidence, source,
/// file, file digest, date). Tags repeat a few such values, so each distinct value is held
/// once and shared: a tag then costs about 230 bytes in memory instead of about 670.
pub type Text = std::sync::Arc<str>;

/// Gives each distinct text once ([`Text`]): the tags of a file or table share them.
#[derive(Debug, Default)]
pub struct Interner(std::collections::HashSet<Text>);

impl Interner {
    /// The shared text equal to `s`, allocated the first time it is seen.
    pub fn text(&mut self, s: &str) -> Text {
        if let Some(t) = self.0.get(s) {
            return t.clone();
        }
        let t: Text = s.into();
        self.0.insert(t.clone());
        t
    }
}

/// One tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub address: String,
    /// `bitcoin` or `ethereum`.
    pub chain: Text,
    /// Bitcoin: `bitcoin`, `testnet` (also signet, testnet4) or `regtest`; Ethereum: `mainnet`.
    pub network: Text,
    pub label: Text,
    /// The actor (TagPack `actor`), or the label where none is given.
    pub entity: Text,
    pub category: Text,
    pub confidence: Text,
    pub is_public: bool,
    /// Where the tag's information comes from (TagPack `source`, or the file).
    pub source: Text,
    /// The file imported (its canonical path), and the line of the tag in it.
    pub file: Text,
    pub line: u32,
    /// When the tag's information was last checked, `YYYY-MM-DD` (TagPack `lastmod`, CSV
    /// `lastmod` column), if given.
    pub lastmod: Option<Text>,
    /// sha256 of the imported file's bytes, hex (empty in format-1 files).
    pub file_sha256: Text,
}

/// A rejected entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub line: usize,
    pub address: String,
    pub reason: String,
}

/// What importing one file did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FileReport {
    /// The file as given.
    pub file: String,
    /// Its canonical path: the `file` of its tags.
    pub path: String,
    pub sha256: String,
    pub format: Option<Format>,
    /// CSV only: the delimiter found (`comma`, `semicolon`, `tab`).
    pub delimiter: Option<String>,
    pub imported: usize,
    /// Imported tags per category.
    pub categories: BTreeMap<String, usize>,
    /// Imported tags that are not public (used only with `--include-private`).
    pub private: usize,
    /// CSV rows without a confidence column value, recorded as `unknown`.
    pub without_confidence: usize,
    /// Rows of an earlier import of the same file (same path or same content) replaced.
    pub replaced: usize,
    pub rejected: Vec<Rejected>,
    /// Tags of currencies chaintrace does not handle (e.g. TRX, LTC), by currency.
    pub unsupported: BTreeMap<String, usize>,
    pub zero_address_dropped: usize,
}

/// What an import did, and what is loaded afterwards.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    pub files: Vec<FileReport>,
    /// `tags.parquet`.
    pub tags_file: String,
    /// All tags loaded after the import.
    pub loaded: usize,
    /// All tags loaded, per category.
    pub loaded_by_category: BTreeMap<String, usize>,
    /// Addresses whose loaded tags disagree (private tags included), per chain.
    pub conflicts: BTreeMap<String, usize>,
}

/// Normalises `address` for `currency` (BTC, ETH and Ethereum tokens).
///
/// # Errors
/// The reason the address is invalid, or `Unsupported` for other currencies.
pub fn normalise(address: &str, currency: &str) -> Result<(String, String, String), Normalise> {
    let a = address.trim();
    match currency.to_ascii_uppercase().as_str() {
        "BTC" | "XBT" => {
            let parsed = bitcoin::Address::from_str(a).map_err(|e| {
                // An address that starts as bech32 does (bc1, tb1, bcrt1) fails as bech32;
                // the library's fallback to base58 would blame base58.
                let lower = a.to_ascii_lowercase();
                let segwit = ["bc1", "tb1", "bcrt1"].iter().any(|p| lower.starts_with(p));
                match bitcoin::bech32::segwit::decode(a) {
                    Err(b) if segwit => Normalise::Invalid(format!(
                        "not a Bitcoin address: it starts as a bech32 (SegWit) address, but {:#}",
                        anyhow::Error::new(b)
                    )),
                    // `{:#}`: the error with its causes (the top one says only "base58 error").
                    _ => Normalise::Invalid(format!(
                        "not a Bitcoin address: {:#}",
                        anyhow::Error::new(e)
                    )),
                }
            })?;
            let network = [
                (bitcoin::Network::Bitcoin, "bitcoin"),
                (bitcoin::Network::Regtest, "regtest"),
                (bitcoin::Network::Testnet, "testnet"),
            ]
            .into_iter()
            .find(|(n, _)| parsed.is_valid_for_network(*n))
            .map(|(_, name)| name)
            .ok_or_else(|| Normalise::Invalid("valid for no Bitcoin network".into()))?;
            Ok((
                parsed.assume_checked().to_string(),
                "bitcoin".into(),
                network.into(),
            ))
        }
        // Tokens live on many chains: only their Ethereum (0x) addresses are ours.
        t @ ("USDT" | "USDC" | "DAI" | "WETH") if !a.starts_with("0x") && !a.starts_with("0X") => {
            Err(Normalise::Unsupported(format!("{t} outside Ethereum")))
        }
        "ETH" | "USDT" | "USDC" | "DAI" | "WETH" => {
            let hex = a
                .strip_prefix("0x")
                .or_else(|| a.strip_prefix("0X"))
                .ok_or_else(|| Normalise::Invalid("an Ethereum address starts with 0x".into()))?;
            if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Normalise::Invalid(
                    "an Ethereum address has 40 hex digits after 0x".into(),
                ));
            }
            if !eip55_ok(hex) {
                return Err(Normalise::Invalid(
                    "the EIP-55 checksum of this mixed-case address fails: a character is mistyped"
                        .into(),
                ));
            }
            let lower = format!("0x{}", hex.to_ascii_lowercase());
            if lower == "0x0000000000000000000000000000000000000000" {
                return Err(Normalise::ZeroAddress);
            }
            Ok((lower, "ethereum".into(), "mainnet".into()))
        }
        other => Err(Normalise::Unsupported(other.to_string())),
    }
}

/// Whether the 40 hex digits of an Ethereum address pass the EIP-55 mixed-case checksum
/// (all lower or all upper case carries no checksum and passes). Source: EIP-55.
pub fn eip55_ok(hex40: &str) -> bool {
    let has_lower = hex40.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex40.bytes().any(|b| b.is_ascii_uppercase());
    if !(has_lower && has_upper) {
        return true;
    }
    let lower = hex40.to_ascii_lowercase();
    let mut hash = [0u8; 32];
    let mut k = tiny_keccak::Keccak::v256();
    tiny_keccak::Hasher::update(&mut k, lower.as_bytes());
    tiny_keccak::Hasher::finalize(k, &mut hash);
    hex40.bytes().enumerate().all(|(i, c)| {
        let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
        !c.is_ascii_alphabetic() || (nibble >= 8) == c.is_ascii_uppercase()
    })
}

/// Why an address was not normalised.
#[derive(Debug, PartialEq, Eq)]
pub enum Normalise {
    Invalid(String),
    ZeroAddress,
    Unsupported(String),
}

/// `YYYY-MM-DD` (or a date-time starting with one) as `YYYY-MM-DD`; empty is `None`.
///
/// # Errors
/// The reason the text is not a real calendar date (31 February is refused).
pub fn parse_date(s: &str) -> Result<Option<String>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let day = s.get(..10).unwrap_or(s);
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|e| format!("lastmod {s:?} is not a YYYY-MM-DD date: {e}"))?;
    // A date in the future would win every recency tie.
    if d > chrono::Utc::now().date_naive() {
        return Err(format!("lastmod {s:?} is in the future"));
    }
    Ok(Some(d.format("%Y-%m-%d").to_string()))
}

/// One tag as read, before its address is normalised.
struct Entry<'a> {
    line: usize,
    address: &'a str,
    currency: &'a str,
    label: &'a str,
    actor: Option<&'a str>,
    category: &'a str,
    confidence: &'a str,
    is_public: bool,
    source: &'a str,
    lastmod: Option<String>,
}

struct Collect<'a> {
    report: FileReport,
    tags: Vec<Tag>,
    file: &'a str,
    texts: Interner,
}

impl Collect<'_> {
    fn add(&mut self, e: Entry<'_>) {
        let (line, address) = (e.line, e.address);
        match normalise(address, e.currency) {
            Ok((address, chain, network)) => {
                // Categories are one vocabulary: "Exchange " and "exchange" are one.
                let category = e.category.trim().to_lowercase();
                *self.report.categories.entry(category.clone()).or_default() += 1;
                if !e.is_public {
                    self.report.private += 1;
                }
                let mut text = |s: &str| self.texts.text(s);
                let tag = Tag {
                    address,
                    chain: text(&chain),
                    network: text(&network),
                    label: text(e.label),
                    entity: text(e.actor.unwrap_or(e.label)),
                    category: text(&category),
                    confidence: text(e.confidence),
                    is_public: e.is_public,
                    source: text(if e.source.is_empty() {
                        self.file
                    } else {
                        e.source
                    }),
                    file: text(self.file),
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                    lastmod: e.lastmod.as_deref().map(&mut text),
                    file_sha256: text(&self.report.sha256),
                };
                self.tags.push(tag);
                self.report.imported += 1;
            }
            Err(Normalise::Invalid(reason)) => self.report.rejected.push(Rejected {
                line,
                address: address.to_string(),
                reason,
            }),
            Err(Normalise::ZeroAddress) => self.report.zero_address_dropped += 1,
            Err(Normalise::Unsupported(c)) => *self.report.unsupported.entry(c).or_default() += 1,
        }
    }
}

fn yaml_str(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads one file into tags and a report.
///
/// # Errors
/// The file is unreadable or malformed as a whole (bad YAML, no header, missing columns).
pub fn read_file(
    path: &Path,
    format: Option<Format>,
) -> Result<(Vec<Tag>, FileReport), LabelError> {
    let format = format
        .or_else(|| Format::of(path))
        .ok_or_else(|| LabelError::UnknownFormat {
            path: path.to_path_buf(),
        })?;
    let io = |source| LabelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|e| LabelError::Format {
        path: path.to_path_buf(),
        line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        what: "not UTF-8 text; save the file as UTF-8 (in a spreadsheet: CSV UTF-8)".into(),
    })?;
    let canonical = std::fs::canonicalize(path).map_err(io)?;
    let file = canonical.display().to_string();
    let fmt = |line: usize, what: String| LabelError::Format {
        path: path.to_path_buf(),
        line,
        what,
    };
    let mut c = Collect {
        report: FileReport {
            file: path.display().to_string(),
            path: file.clone(),
            sha256: bitcoin::hashes::sha256::Hash::hash(text.as_bytes()).to_string(),
            format: Some(format),
            ..FileReport::default()
        },
        tags: Vec::new(),
        file: &file,
        texts: Interner::default(),
    };
    match format {
        Format::Ofac => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let asset = name
                .trim_start_matches("sanctioned_addresses_")
                .trim_end_matches(".txt");
            for (i, line) in text.lines().enumerate() {
                let a = line.trim().trim_start_matches('\u{feff}');
                if a.is_empty() || a.starts_with('#') {
                    continue;
                }
                c.add(Entry {
                    line: i + 1,
                    address: a,
                    currency: asset,
                    label: "OFAC SDN list",
                    actor: Some("OFAC sanctioned"),
                    category: "sanctioned",
                    confidence: "authority_data",
                    is_public: true,
                    source: "https://www.treasury.gov/ofac/downloads/sdnlist.txt",
                    lastmod: None,
                });
            }
        }
        Format::Csv => csv_list::read(path, &text, &mut c)?,
        Format::Tagpack => {
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let docs = YamlLoader::load_from_str(text).map_err(|e| {
                fmt(
                    e.marker().line() + 1,
                    format!("not valid YAML: {}", e.info()),
                )
            })?;
            let doc = docs
                .into_iter()
                .next()
                .ok_or_else(|| fmt(1, "empty TagPack".into()))?;
            let Yaml::Hash(header) = &doc else {
                return Err(fmt(1, "a TagPack is a mapping with a `tags` list".into()));
            };
            let h = |k: &str| header.get(&Yaml::String(k.into())).and_then(yaml_str);
            let Some(Yaml::Array(tags)) = header.get(&Yaml::String("tags".into())) else {
                return Err(fmt(1, "the TagPack has no `tags` list".into()));
            };
            let header_public = header
                .get(&Yaml::String("is_public".into()))
                .and_then(Yaml::as_bool)
                .unwrap_or(true);
            // Line of each tag: the `address:` lines in order (the loader keeps no marks).
            let addr_lines: Vec<usize> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| {
                    l.trim_start()
                        .trim_start_matches("- ")
                        .trim_start()
                        .starts_with("address:")
                })
                .map(|(i, _)| i + 1)
                .collect();
            let mut next_line = 0usize;
            for (n, tag) in tags.iter().enumerate() {
                let Yaml::Hash(t) = tag else {
                    return Err(fmt(
                        addr_lines.get(n).copied().unwrap_or(1),
                        "a tag is a mapping".into(),
                    ));
                };
                let field = |k: &str| {
                    t.get(&Yaml::String(k.into()))
                        .and_then(yaml_str)
                        .or_else(|| h(k))
                };
                let Some(address) = t.get(&Yaml::String("address".into())).and_then(yaml_str)
                else {
                    continue; // a transaction tag (tx_hash): not an address label
                };
                let line = addr_lines.get(next_line).copied().unwrap_or(0);
                next_line += 1;
                let (Some(label), Some(currency)) = (field("label"), field("currency")) else {
                    let missing = if field("label").is_none() {
                        "label"
                    } else {
                        "currency"
                    };
                    let reason = format!("no {missing} (mandatory in a TagPack)");
                    c.report.rejected.push(Rejected {
                        line,
                        address,
                        reason,
                    });
                    continue;
                };
                let is_public = t
                    .get(&Yaml::String("is_public".into()))
                    .and_then(Yaml::as_bool)
                    .unwrap_or(header_public);
                let category = field("category")
                    .or_else(|| field("abuse"))
                    .unwrap_or_default();
                let confidence = field("confidence").unwrap_or_else(|| "unknown".into());
                let source = field("source").unwrap_or_default();
                let actor = field("actor");
                let lastmod = match parse_date(&field("lastmod").unwrap_or_default()) {
                    Ok(d) => d,
                    Err(reason) => {
                        c.report.rejected.push(Rejected {
                            line,
                            address,
                            reason,
                        });
                        continue;
                    }
                };
                c.add(Entry {
                    line,
                    address: &address,
                    currency: &currency,
                    label: &label,
                    actor: actor.as_deref(),
                    category: &category,
                    confidence: &confidence,
                    is_public,
                    source: &source,
                    lastmod,
                });
            }
        }
    }
    Ok((c.tags, c.report))
}

/// The tags file of a dataset.
pub fn tags_path(data_dir: &Path) -> PathBuf {
    data_dir.join("labels").join("tags.parquet")
}

fn schema() -> Arc<Schema> {
    use crate::tables::Table;
    let fields = crate::tables::label_tags::Tags::schema().fields().clone();
    Arc::new(Schema::new_with_metadata(
        fields,
        std::collections::HashMap::from([(FORMAT_KEY.to_string(), TAGS_FORMAT.to_string())]),
    ))
}

/// Reads `tags.parquet` (empty if absent), with each row's import time (ms since the
/// epoch). Format-1 files (without `lastmod` and `file_sha256`) are read too.
///
/// # Errors
/// An unreadable file, a newer format, or a missing column (each naming the file).
pub fn read_tags(path: &Path) -> Result<Vec<(Tag, i64)>, LabelError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LabelError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let pq = |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).map_err(pq)?;
    if let Some(found) = builder.schema().metadata().get(FORMAT_KEY)
        && found.parse::<u32>().map_or(true, |v| v > 2)
    {
        return Err(LabelError::TagsFormat {
            path: path.to_path_buf(),
            found: found.clone(),
        });
    }
    let reader = builder.build().map_err(pq)?;
    let missing = |column: &'static str| LabelError::TagsColumn {
        path: path.to_path_buf(),
        column,
    };
    let mut out = Vec::new();
    let mut texts = Interner::default();
    // Format-1 files have no digest.
    let no_sha = texts.text("");
    for batch in reader {
        let b = batch.map_err(|source| StoreError::Arrow {
            table: "tags",
            source,
        })?;
        let s = |n: &'static str| {
            b.column_by_name(n)
                .and_then(|c| c.as_string_opt::<i32>())
                .cloned()
                .ok_or_else(|| missing(n))
        };
        let (addr, chain, net, label, ent, cat, conf, src, file) = (
            s("address")?,
            s("chain")?,
            s("network")?,
            s("label")?,
            s("entity")?,
            s("category")?,
            s("confidence")?,
            s("source")?,
            s("file")?,
        );
        // Format 2 columns: absent in format-1 files.
        let (lastmod, sha) = (s("lastmod").ok(), s("file_sha256").ok());
        let public = b
            .column_by_name("is_public")
            .and_then(|c| c.as_boolean_opt())
            .cloned()
            .ok_or_else(|| missing("is_public"))?;
        let line = b
            .column_by_name("line")
            .and_then(|c| c.as_primitive_opt::<UInt32Type>())
            .cloned()
            .ok_or_else(|| missing("line"))?;
        let at = b
            .column_by_name("imported_at")
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .cloned()
            .ok_or_else(|| missing("imported_at"))?;
        for i in 0..b.num_rows() {
            let mut text = |c: &arrow_array::StringArray| texts.text(c.value(i));
            out.push((
                Tag {
                    address: addr.value(i).into(),
                    chain: text(&chain),
                    network: text(&net),
                    label: text(&label),
                    entity: text(&ent),
                    category: text(&cat),
                    confidence: text(&conf),
                    is_public: public.value(i),
                    source: text(&src),
                    file: text(&file),
                    line: line.value(i),
                    lastmod: lastmod
                        .as_ref()
                        .filter(|c| arrow_array::Array::is_valid(*c, i))
                        .map(&mut text),
                    file_sha256: sha.as_ref().map_or_else(|| no_sha.clone(), &mut text),
                },
                at.value(i),
            ));
        }
    }
    Ok(out)
}

/// The tags in use in `data_dir` for `chain` (`None`: both chains), one per address,
/// after [`precedence`], with the conflicts found.
///
/// # Errors
/// As [`read_tags`].
pub fn load(
    data_dir: &Path,
    chain: Option<&str>,
    network: Option<&str>,
    selection: &Selection,
) -> Result<Resolved, LabelError> {
    let mut tags = read_tags(&tags_path(data_dir))?;
    for p in &selection.prefer {
        let matches = |t: &Tag| {
            **p == *t.source
                || **p == *t.file
                || Path::new(&*t.file).file_name().and_then(|n| n.to_str()) == Some(p.as_str())
        };
        if !tags.iter().any(|(t, _)| matches(t)) {
            return Err(LabelError::PreferUnknown { what: p.clone() });
        }
    }
    if let Some(n) = network {
        tags.retain(|(t, _)| on_network(t, n));
    }
    Ok(precedence::resolve_owned(tags, chain, selection))
}

/// Whether a tag applies to a dataset of Bitcoin network `network` (`bitcoin`, `testnet`,
/// `testnet4`, `signet`, `regtest`; any other name, e.g. Ethereum's, matches all). Base58
/// addresses of the test networks and regtest look alike: such a tag matches both.
pub fn on_network(t: &Tag, network: &str) -> bool {
    if &*t.chain != "bitcoin" {
        return true;
    }
    let bech32_regtest = t.address.starts_with("bcrt1");
    let bech32_testnet = t.address.starts_with("tb1");
    let tn = &*t.network;
    match network {
        "bitcoin" => tn == "bitcoin",
        "regtest" => tn == "regtest" || (tn == "testnet" && !bech32_testnet),
        "testnet" | "testnet4" | "signet" => {
            tn == "testnet" || (tn == "regtest" && !bech32_regtest)
        }
        _ => true,
    }
}

/// Writes `all` (sorted here) as `tags.parquet`, atomically.
fn write_tags(path: &Path, mut all: Vec<(Tag, i64)>) -> Result<(), LabelError> {
    all.sort_by(|a, b| {
        (&a.0.chain, &a.0.address, &a.0.file, a.0.line).cmp(&(
            &b.0.chain,
            &b.0.address,
            &b.0.file,
            b.0.line,
        ))
    });
    let col = |f: fn(&Tag) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(
            all.iter().map(|(t, _)| f(t)).collect::<Vec<_>>(),
        ))
    };
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            col(|t| &t.address),
            col(|t| &t.chain),
            col(|t| &t.network),
            col(|t| &t.label),
            col(|t| &t.entity),
            col(|t| &t.category),
            col(|t| &t.confidence),
            Arc::new(BooleanArray::from(
                all.iter().map(|(t, _)| t.is_public).collect::<Vec<_>>(),
            )),
            col(|t| &t.source),
            col(|t| &t.file),
            Arc::new(UInt32Array::from(
                all.iter().map(|(t, _)| t.line).collect::<Vec<_>>(),
            )),
            Arc::new(
                TimestampMillisecondArray::from(all.iter().map(|(_, at)| *at).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(
                all.iter()
                    .map(|(t, _)| t.lastmod.as_deref())
                    .collect::<Vec<_>>(),
            )),
            col(|t| &t.file_sha256),
        ],
    )
    .map_err(|source| StoreError::Arrow {
        table: "tags",
        source,
    })?;
    let staged = sink::stage(path, &batch)?;
    sink::commit(std::slice::from_ref(&staged))?;
    Ok(())
}

fn count_by_category<'a>(tags: impl Iterator<Item = &'a Tag>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in tags {
        *out.entry(t.category.to_string()).or_default() += 1;
    }
    out
}

/// Imports `files` into `data_dir/labels/tags.parquet`, replacing earlier imports of the
/// same files (same canonical path, or same content under another path). `now_ms` is the
/// import time recorded.
///
/// # Errors
/// A file that cannot be read as a whole, or an import that would import no tag at all;
/// nothing is written then.
pub fn import(
    files: &[PathBuf],
    format: Option<Format>,
    data_dir: &Path,
    now_ms: i64,
) -> Result<ImportReport, LabelError> {
    let mut new: Vec<(Tag, i64)> = Vec::new();
    let mut reports = Vec::new();
    for f in files {
        let (tags, report) = read_file(f, format)?;
        // The same file twice in one import (another spelling, or a copy): once.
        if reports
            .iter()
            .any(|r: &FileReport| r.path == report.path || r.sha256 == report.sha256)
        {
            continue;
        }
        new.extend(tags.into_iter().map(|t| (t, now_ms)));
        reports.push(report);
    }
    if new.is_empty() {
        let rejected: usize = reports.iter().map(|r| r.rejected.len()).sum();
        let unsupported: usize = reports.iter().flat_map(|r| r.unsupported.values()).sum();
        let zero: usize = reports.iter().map(|r| r.zero_address_dropped).sum();
        return Err(LabelError::NothingImported {
            files: reports
                .iter()
                .map(|r| r.file.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            why: format!(
                "{rejected} row(s) rejected, {unsupported} of unsupported currencies, {zero} zero address(es)"
            ),
            reports,
        });
    }
    let path = tags_path(data_dir);
    let mut all: Vec<(Tag, i64)> = Vec::new();
    for (t, at) in read_tags(&path)? {
        match reports.iter_mut().find(|r| {
            *r.path == *t.file || (!t.file_sha256.is_empty() && *r.sha256 == *t.file_sha256)
        }) {
            Some(r) => r.replaced += 1,
            None => all.push((t, at)),
        }
    }
    all.extend(new);
    let conflicts = resolve(
        &all,
        None,
        &Selection {
            include_private: true,
            prefer: Vec::new(),
        },
    )
    .conflicts
    .iter()
    .fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c.chain.clone()).or_default() += 1;
        m
    });
    let loaded_by_category = count_by_category(all.iter().map(|(t, _)| t));
    let loaded = all.len();
    write_tags(&path, all)?;
    Ok(ImportReport {
        files: reports,
        tags_file: path.display().to_string(),
        loaded,
        loaded_by_category,
        conflicts,
    })
}

/// One imported label file, as `tags.parquet` records it.
#[derive(Clone, Debug, Serialize)]
pub struct LoadedFile {
    /// Canonical path at import.
    pub file: String,
    pub sha256: String,
    pub tags: usize,
    pub private: usize,
    /// Import time, ms since the epoch.
    pub imported_at: i64,
    pub categories: BTreeMap<String, usize>,
    pub chains: BTreeMap<String, usize>,
}

/// The label files loaded in `data_dir`, by path.
///
/// # Errors
/// As [`read_tags`].
pub fn files(data_dir: &Path) -> Result<Vec<LoadedFile>, LabelError> {
    let mut by_file: BTreeMap<String, LoadedFile> = BTreeMap::new();
    for (t, at) in read_tags(&tags_path(data_dir))? {
        let f = by_file
            .entry(t.file.to_string())
            .or_insert_with(|| LoadedFile {
                file: t.file.to_string(),
                sha256: t.file_sha256.to_string(),
                tags: 0,
                private: 0,
                imported_at: at,
                categories: BTreeMap::new(),
                chains: BTreeMap::new(),
            });
        f.tags += 1;
        f.private += usize::from(!t.is_public);
        f.imported_at = f.imported_at.max(at);
        *f.categories.entry(t.category.to_string()).or_default() += 1;
        *f.chains.entry(t.chain.to_string()).or_default() += 1;
    }
    Ok(by_file.into_values().collect())
}

/// Removes the tags of one imported file, named by its path as stored, its path as given
/// now (canonicalised), its file name, or a prefix of its sha256 (at least 8 digits).
/// Returns the file removed and how many tags.
///
/// # Errors
/// No file or several files match; or as [`read_tags`].
pub fn remove(data_dir: &Path, what: &str) -> Result<(String, usize), LabelError> {
    let loaded = files(data_dir)?;
    let canonical = std::fs::canonicalize(what)
        .ok()
        .map(|p| p.display().to_string());
    let matches: Vec<&LoadedFile> = loaded
        .iter()
        .filter(|f| {
            f.file == what
                || canonical.as_deref() == Some(f.file.as_str())
                || Path::new(&f.file).file_name().and_then(|n| n.to_str()) == Some(what)
                || (what.len() >= 8 && !f.sha256.is_empty() && f.sha256.starts_with(what))
        })
        .collect();
    let file = match matches.as_slice() {
        [] => {
            return Err(LabelError::NoSuchFile {
                what: what.to_string(),
            });
        }
        [one] => one.file.clone(),
        many => {
            return Err(LabelError::Ambiguous {
                what: what.to_string(),
                n: many.len(),
                names: many
                    .iter()
                    .map(|f| f.file.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    let path = tags_path(data_dir);
    let (gone, kept): (Vec<_>, Vec<_>) = read_tags(&path)?
        .into_iter()
        .partition(|(t, _)| *t.file == *file);
    write_tags(&path, kept)?;
    Ok((file, gone.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_per_chain() {
        let (a, chain, net) =
            normalise("BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ", "BTC").unwrap();
        assert_eq!(
            (a.as_str(), chain.as_str(), net.as_str()),
            (
                "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
                "bitcoin",
                "bitcoin"
            )
        );
        assert_eq!(
            normalise("bcrt1q9fs8w3mauaf2wcrzj64np6vtr465gf6kh4x663", "BTC")
                .unwrap()
                .2,
            "regtest"
        );
        assert!(matches!(
            normalise("1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53e", "XBT"),
            Err(Normalise::Invalid(_))
        ));
        let (e, chain, _) = normalise("0x8589427373D6D84E98730D7795D8f6f8731FDA16", "ETH").unwrap();
        assert_eq!(
            (e.as_str(), chain.as_str()),
            ("0x8589427373d6d84e98730d7795d8f6f8731fda16", "ethereum")
        );
        assert_eq!(
            normalise("0x0000000000000000000000000000000000000000", "USDT"),
            Err(Normalise::ZeroAddress)
        );
        assert!(matches!(
            normalise("0x123", "ETH"),
            Err(Normalise::Invalid(_))
        ));
        // EIP-55's own example, and the same address with one letter's case flipped.
        assert!(eip55_ok("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"));
        assert!(!eip55_ok("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"));
        assert!(eip55_ok("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
        assert!(matches!(
            normalise("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "ETH"),
            Err(Normalise::Invalid(_))
        ));
        assert_eq!(
            normalise("TXYZ", "TRX"),
            Err(Normalise::Unsupported("TRX".into()))
        );
        assert!(matches!(
            normalise("1KYiKJEfdJtap9QX2v9BXJMpz2SfU4pgZw", "USDT"),
            Err(Normalise::Unsupported(_))
        ));
    }
}
