//! Labels: flagged wallets and entity tags, imported from GraphSense TagPacks (YAML), OFAC
//! `sanctioned_addresses_<ASSET>.txt` lists and CSV into `data/labels/tags.parquet`.
//!
//! Every address is validated and normalised for its chain (Bitcoin: parsed and re-encoded,
//! bech32 in lower case; Ethereum: `0x` + 40 hex digits, lower case; the zero address is
//! dropped). Invalid ones are rejected with file and line; the rest is imported. Importing a
//! file again replaces the rows that came from it, so nothing is doubled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt32Type};
use arrow_array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde::Serialize;
use thiserror::Error;
use yaml_rust2::{Yaml, YamlLoader};

use crate::store::{StoreError, sink};

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
        } else if name.ends_with(".csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// One tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tag {
    pub address: String,
    /// `bitcoin` or `ethereum`.
    pub chain: String,
    /// Bitcoin: `bitcoin`, `testnet` (also signet, testnet4) or `regtest`; Ethereum: `mainnet`.
    pub network: String,
    pub label: String,
    /// The actor (TagPack `actor`), or the label where none is given.
    pub entity: String,
    pub category: String,
    pub confidence: String,
    pub is_public: bool,
    /// Where the tag's information comes from (TagPack `source`, or the file).
    pub source: String,
    /// The file imported, and the line of the tag in it.
    pub file: String,
    pub line: u32,
}

/// A rejected entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub line: usize,
    pub address: String,
    pub reason: String,
}

/// What importing one file did.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub format: Format,
    pub imported: usize,
    pub rejected: Vec<Rejected>,
    /// Tags of currencies chaintrace does not handle (e.g. TRX, LTC), by currency.
    pub unsupported: BTreeMap<String, usize>,
    pub zero_address_dropped: usize,
}

/// Normalises `address` for `currency` (BTC, ETH and Ethereum tokens).
///
/// # Errors
/// The reason the address is invalid, or `Unsupported` for other currencies.
pub fn normalise(address: &str, currency: &str) -> Result<(String, String, String), Normalise> {
    let a = address.trim();
    match currency.to_ascii_uppercase().as_str() {
        "BTC" | "XBT" => {
            let parsed = bitcoin::Address::from_str(a)
                .map_err(|e| Normalise::Invalid(format!("not a Bitcoin address: {e}")))?;
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
            let lower = format!("0x{}", hex.to_ascii_lowercase());
            if lower == "0x0000000000000000000000000000000000000000" {
                return Err(Normalise::ZeroAddress);
            }
            Ok((lower, "ethereum".into(), "mainnet".into()))
        }
        other => Err(Normalise::Unsupported(other.to_string())),
    }
}

/// Why an address was not normalised.
#[derive(Debug, PartialEq, Eq)]
pub enum Normalise {
    Invalid(String),
    ZeroAddress,
    Unsupported(String),
}

struct Collect<'a> {
    report: FileReport,
    tags: Vec<Tag>,
    file: &'a str,
}

impl Collect<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        line: usize,
        address: &str,
        currency: &str,
        label: &str,
        actor: Option<&str>,
        category: &str,
        confidence: &str,
        is_public: bool,
        source: &str,
    ) {
        match normalise(address, currency) {
            Ok((address, chain, network)) => {
                self.tags.push(Tag {
                    address,
                    chain,
                    network,
                    label: label.to_string(),
                    entity: actor.unwrap_or(label).to_string(),
                    category: category.to_string(),
                    confidence: confidence.to_string(),
                    is_public,
                    source: if source.is_empty() {
                        self.file.to_string()
                    } else {
                        source.to_string()
                    },
                    file: self.file.to_string(),
                    line: line as u32,
                });
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
    let text = std::fs::read_to_string(path).map_err(|source| LabelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let fmt = |line: usize, what: String| LabelError::Format {
        path: path.to_path_buf(),
        line,
        what,
    };
    let mut c = Collect {
        report: FileReport {
            file: file.clone(),
            format,
            imported: 0,
            rejected: Vec::new(),
            unsupported: BTreeMap::new(),
            zero_address_dropped: 0,
        },
        tags: Vec::new(),
        file: &file,
    };
    match format {
        Format::Ofac => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let asset = name
                .trim_start_matches("sanctioned_addresses_")
                .trim_end_matches(".txt");
            for (i, line) in text.lines().enumerate() {
                let a = line.trim();
                if a.is_empty() || a.starts_with('#') {
                    continue;
                }
                c.add(
                    i + 1,
                    a,
                    asset,
                    "OFAC SDN list",
                    Some("OFAC sanctioned"),
                    "sanctioned",
                    "authority_data",
                    true,
                    "https://www.treasury.gov/ofac/downloads/sdnlist.txt",
                );
            }
        }
        Format::Csv => {
            let mut lines = text.lines().enumerate();
            let header: Vec<String> = lines
                .next()
                .map(|(_, h)| {
                    h.split(',')
                        .map(|x| x.trim().to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            let col = |n: &str| header.iter().position(|h| h == n);
            let (Some(ai), Some(li), Some(ci)) = (col("address"), col("label"), col("category"))
            else {
                return Err(fmt(1, "the header must name address, label and category (and optionally source, actor, currency)".into()));
            };
            let (si, acti, curi) = (col("source"), col("actor"), col("currency"));
            for (i, line) in lines {
                if line.trim().is_empty() {
                    continue;
                }
                let f: Vec<&str> = line.split(',').map(str::trim).collect();
                let get = |ix: Option<usize>| ix.and_then(|x| f.get(x)).copied().unwrap_or("");
                if f.len() < header.len().min(3) {
                    return Err(fmt(
                        i + 1,
                        format!("{} fields, the header has {}", f.len(), header.len()),
                    ));
                }
                let address = get(Some(ai));
                let currency = match get(curi) {
                    "" if address.starts_with("0x") => "ETH",
                    "" => "BTC",
                    c => c,
                };
                let actor = Some(get(acti)).filter(|a| !a.is_empty());
                c.add(
                    i + 1,
                    address,
                    currency,
                    get(Some(li)),
                    actor,
                    get(Some(ci)),
                    "user_import",
                    true,
                    get(si),
                );
            }
        }
        Format::Tagpack => {
            let docs = YamlLoader::load_from_str(&text).map_err(|e| {
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
                let confidence = field("confidence").unwrap_or_default();
                let source = field("source").unwrap_or_default();
                let actor = field("actor");
                c.add(
                    line,
                    &address,
                    &currency,
                    &label,
                    actor.as_deref(),
                    &category,
                    &confidence,
                    is_public,
                    &source,
                );
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
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        s("address"),
        s("chain"),
        s("network"),
        s("label"),
        s("entity"),
        s("category"),
        s("confidence"),
        Field::new("is_public", DataType::Boolean, false),
        s("source"),
        s("file"),
        Field::new("line", DataType::UInt32, false),
        Field::new(
            "imported_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// Reads `tags.parquet` (empty if absent), with each row's import time.
///
/// # Errors
/// An unreadable file.
pub fn read_tags(path: &Path) -> Result<Vec<(Tag, i64)>, StoreError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let pq = |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.build())
        .map_err(pq)?;
    let mut out = Vec::new();
    for batch in reader {
        let b = batch.map_err(|source| StoreError::Arrow {
            table: "tags",
            source,
        })?;
        let s = |n: &str| {
            b.column_by_name(n)
                .expect("tags columns")
                .as_string::<i32>()
                .clone()
        };
        let (addr, chain, net, label, ent, cat, conf, src, file) = (
            s("address"),
            s("chain"),
            s("network"),
            s("label"),
            s("entity"),
            s("category"),
            s("confidence"),
            s("source"),
            s("file"),
        );
        let public = b
            .column_by_name("is_public")
            .expect("tags columns")
            .as_boolean()
            .clone();
        let line = b
            .column_by_name("line")
            .expect("tags columns")
            .as_primitive::<UInt32Type>()
            .clone();
        let at = b
            .column_by_name("imported_at")
            .expect("tags columns")
            .as_primitive::<TimestampMillisecondType>()
            .clone();
        for i in 0..b.num_rows() {
            out.push((
                Tag {
                    address: addr.value(i).into(),
                    chain: chain.value(i).into(),
                    network: net.value(i).into(),
                    label: label.value(i).into(),
                    entity: ent.value(i).into(),
                    category: cat.value(i).into(),
                    confidence: conf.value(i).into(),
                    is_public: public.value(i),
                    source: src.value(i).into(),
                    file: file.value(i).into(),
                    line: line.value(i),
                },
                at.value(i),
            ));
        }
    }
    Ok(out)
}

/// Imports `files` into `data_dir/labels/tags.parquet`, replacing earlier imports of the
/// same files. `now_ms` is the import time recorded.
///
/// # Errors
/// A file that cannot be read as a whole; nothing is written then.
pub fn import(
    files: &[PathBuf],
    format: Option<Format>,
    data_dir: &Path,
    now_ms: i64,
) -> Result<Vec<FileReport>, LabelError> {
    let mut new: Vec<(Tag, i64)> = Vec::new();
    let mut reports = Vec::new();
    for f in files {
        let (tags, report) = read_file(f, format)?;
        new.extend(tags.into_iter().map(|t| (t, now_ms)));
        reports.push(report);
    }
    let path = tags_path(data_dir);
    let replaced: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut all: Vec<(Tag, i64)> = read_tags(&path)?
        .into_iter()
        .filter(|(t, _)| !replaced.contains(&t.file))
        .collect();
    all.extend(new);
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
        ],
    )
    .map_err(|source| StoreError::Arrow {
        table: "tags",
        source,
    })?;
    let staged = sink::stage(&path, &batch)?;
    sink::commit(std::slice::from_ref(&staged))?;
    Ok(reports)
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
