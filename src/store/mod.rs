//! The Parquet dataset on disk (DESIGN.md §3): schemas, atomic part files, the manifest.

pub mod manifest;
pub mod reader;
pub mod schema;
pub mod sink;

use std::path::PathBuf;

use thiserror::Error;

/// An error reading or writing the dataset.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parquet error in {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("cannot build a record batch for {table}: {source}")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("{path} is not a chaintrace manifest: {source}; move it away to start a new dataset")]
    ManifestParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path} has dataset format {found}, this chaintrace writes format {expected}; ingest into a new --data directory"
    )]
    ManifestFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{path} is listed in the manifest but missing or changed; the dataset was modified by hand. Remove the {dir} directory and ingest again"
    )]
    PartDamaged { path: PathBuf, dir: PathBuf },
    /// An input file that cannot be used (nothing was written or removed).
    #[error("{path}: {what}")]
    Input { path: PathBuf, what: String },
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::manifest::{Manifest, Part, PartFile, Source};
    use super::*;

    fn source() -> Source {
        Source {
            kind: "blocks-dir".into(),
            location: "blocks".into(),
            chain_selection: None,
        }
    }

    fn part(from: u64, to: u64) -> Part {
        Part {
            from,
            to,
            first_hash: format!("h{from}"),
            last_hash: format!("h{to}"),
            files: BTreeMap::from([(
                "blocks".to_string(),
                PartFile {
                    file: sink::part_name(from, to),
                    rows: to - from + 1,
                    bytes: 1,
                    sha256: "00".into(),
                },
            )]),
        }
    }

    #[test]
    fn part_names_sort_in_height_order() {
        assert_eq!(
            sink::part_name(0, 999),
            "part-0000000000-0000000999.parquet"
        );
        assert!(sink::part_name(9_000, 9_999) < sink::part_name(10_000, 10_999));
        // Ethereum block numbers are u64: beyond 2^32 the name is exact and still sorts.
        assert_eq!(
            sink::part_name(4_294_967_296, 4_294_968_295),
            "part-4294967296-4294968295.parquet"
        );
        assert!(
            sink::part_name(4_294_966_296, 4_294_967_295)
                < sink::part_name(4_294_967_296, 4_294_968_295)
        );
    }

    #[test]
    fn a_manifest_saves_its_ranges_and_tip_and_loads_back() {
        let d = tempfile::tempdir().unwrap();
        let mut m = Manifest::new("bitcoin", "regtest", source(), 1000);
        m.parts = vec![part(2000, 2500), part(0, 999), part(1000, 1999)];
        m.save(d.path()).unwrap();
        let back = Manifest::load(d.path()).unwrap().unwrap();
        assert_eq!(back.ranges, vec![[0, 2500]]);
        assert_eq!(back.tip.as_ref().map(|t| t.height), Some(2500));
        assert!(back.lists("blocks", &sink::part_name(1000, 1999)));
        assert!(!back.lists("outputs", &sink::part_name(1000, 1999)));
        // A gap makes two ranges.
        m.parts = vec![part(0, 999), part(3000, 3999)];
        m.save(d.path()).unwrap();
        assert_eq!(
            Manifest::load(d.path()).unwrap().unwrap().ranges,
            vec![[0, 999], [3000, 3999]]
        );
        // Ethereum block numbers beyond 2^32 round-trip exactly.
        let big = 5_000_000_000u64;
        m.parts = vec![part(big, big + 999)];
        m.save(d.path()).unwrap();
        let back = Manifest::load(d.path()).unwrap().unwrap();
        assert_eq!(back.ranges, vec![[big, big + 999]]);
        assert_eq!(back.tip.map(|t| t.height), Some(big + 999));
        // Another format version is refused, naming both.
        let text = std::fs::read_to_string(Manifest::path(d.path())).unwrap();
        std::fs::write(
            Manifest::path(d.path()),
            text.replace("\"format_version\": 1", "\"format_version\": 9"),
        )
        .unwrap();
        let e = Manifest::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("format 9") && e.contains("format 1"), "{e}");
    }

    #[test]
    fn the_part_reader_reads_what_the_manifest_lists_only() {
        let d = tempfile::tempdir().unwrap();
        let blocks = d.path().join("blocks");
        std::fs::create_dir_all(&blocks).unwrap();
        let mut m = Manifest::new("bitcoin", "regtest", source(), 1000);
        m.parts = vec![part(0, 999)];
        m.save(d.path()).unwrap();
        std::fs::write(blocks.join(sink::part_name(0, 999)), b"x").unwrap();
        // A leftover of a killed run, not listed.
        std::fs::write(blocks.join(sink::part_name(1000, 1999)), b"x").unwrap();
        let files = reader::part_files(&blocks).unwrap();
        assert_eq!(files, vec![blocks.join(sink::part_name(0, 999))]);
        // A listed part that is gone is an error naming it.
        std::fs::remove_file(blocks.join(sink::part_name(0, 999))).unwrap();
        let e = reader::part_files(&blocks).unwrap_err().to_string();
        assert!(
            e.contains("part-0000000000-0000000999") && e.contains("listed"),
            "{e}"
        );
    }

    #[test]
    fn staged_files_are_hidden_until_committed() {
        use arrow_array::{RecordBatch, UInt32Array};
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("t.parquet");
        let schema =
            std::sync::Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
                "x",
                arrow_schema::DataType::UInt32,
                false,
            )]));
        let batch = RecordBatch::try_new(
            schema,
            vec![std::sync::Arc::new(UInt32Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let staged = sink::stage(&path, &batch).unwrap();
        assert!(!path.exists(), "not visible before the commit");
        assert_eq!(staged.rows, 3);
        sink::commit(std::slice::from_ref(&staged)).unwrap();
        assert!(path.is_file());
        assert_eq!(sink::sha256_file(&path).unwrap(), staged.sha256);
    }
}
