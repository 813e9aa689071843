//! CSV label lists as analysts write them, often from a spreadsheet: a header naming
//! `address`, `label` and `category` (optionally `source`, `actor`/`entity`, `currency`,
//! `confidence`, `lastmod`, `is_public`), RFC 4180 quoting, a UTF-8 byte-order mark, and
//! `,`, `;` or tab as the delimiter (the one the header uses most, outside quotes).

use std::collections::BTreeMap;
use std::path::Path;

use super::precedence::{CONFIDENCE, confidence_level};
use super::{Collect, LabelError, Rejected};

/// The delimiter a header line uses: the most frequent of `,`, `;` and tab outside
/// quotes (`,` on a tie or when none occurs).
pub fn sniff_delimiter(header: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in header.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
            c.1 += 1;
        }
    }
    counts
        .iter()
        .fold((b',', 0), |best, &c| if c.1 > best.1 { c } else { best })
        .0
}

/// Where the lines of a text start, to tell which line a CSV record starts on (1-based)
/// from its byte offset: the reader's own line count is off by one on CRLF files, and the
/// offset it gives may be that of the line end before the record, or of blank lines the
/// reader skipped before it. Built once per file (counting from the start for each record
/// made a 14,000-row import take 71 s in a debug build).
#[derive(Debug)]
pub struct Lines<'a> {
    text: &'a [u8],
    newlines: Vec<usize>,
}

impl<'a> Lines<'a> {
    /// The newline offsets of `text` (what the reader read, after any BOM).
    pub fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text: text.as_bytes(),
            newlines: text
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// The 1-based line `record` starts on (0 when the reader gives no position).
    pub fn of(&self, record: &csv::StringRecord) -> usize {
        record.position().map_or(0, |p| {
            let mut at = usize::try_from(p.byte()).unwrap_or(usize::MAX);
            // Past the line ends (of the line before, and of blank lines) to the record's
            // first byte: a record never starts with one.
            while self
                .text
                .get(at)
                .is_some_and(|b| matches!(b, b'\r' | b'\n'))
            {
                at += 1;
            }
            1 + self.newlines.partition_point(|&n| n < at)
        })
    }
}

/// The delimiter's name for messages.
pub fn delimiter_name(d: u8) -> &'static str {
    match d {
        b';' => "semicolon",
        b'\t' => "tab",
        _ => "comma",
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "1" | "public" => Some(true),
        "false" | "no" | "0" | "private" => Some(false),
        _ => None,
    }
}

/// Reads the rows of a CSV label list into `c`.
///
/// # Errors
/// A header without the mandatory columns (the error shows the header that was read), or
/// a file the CSV reader cannot read at all.
pub(super) fn read(path: &Path, text: &str, c: &mut Collect<'_>) -> Result<(), LabelError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = sniff_delimiter(text.lines().next().unwrap_or(""));
    c.report.delimiter = Some(delimiter_name(delimiter).to_string());
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let fmt = |line: u64, what: String| LabelError::Format {
        path: path.to_path_buf(),
        line: usize::try_from(line).unwrap_or(usize::MAX),
        what,
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| fmt(1, format!("cannot read the header: {e}")))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |n: &str| header.iter().position(|h| h == n);
    let (Some(ai), Some(li), Some(ci)) = (col("address"), col("label"), col("category")) else {
        return Err(fmt(
            1,
            format!(
                "the header must name address, label and category (optionally source, actor, currency, confidence, lastmod, is_public); read {} column(s) split by {}: {}",
                header.len(),
                delimiter_name(delimiter),
                header
                    .iter()
                    .map(|h| format!("{h:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let opt: BTreeMap<&str, Option<usize>> = [
        "source",
        "actor",
        "entity",
        "currency",
        "confidence",
        "lastmod",
        "is_public",
    ]
    .into_iter()
    .map(|n| (n, col(n)))
    .collect();
    let lines = Lines::new(text);
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                return Err(fmt(line, format!("not valid CSV: {e}")));
            }
        };
        let line = lines.of(&record);
        if record.iter().all(str::is_empty) {
            continue; // an empty spreadsheet row (";;;")
        }
        let get = |ix: Option<usize>| ix.and_then(|x| record.get(x)).unwrap_or("");
        let address = get(Some(ai));
        let mut reject = |reason: String| {
            c.report.rejected.push(Rejected {
                line,
                address: address.to_string(),
                reason,
            });
        };
        if record.len() != header.len() {
            reject(format!(
                "{} fields, the header has {}: {}",
                record.len(),
                header.len(),
                if record.len() > header.len() {
                    format!(
                        "quote a value that holds the {} delimiter",
                        delimiter_name(delimiter)
                    )
                } else {
                    "a value is missing (an empty value still needs its delimiter)".to_string()
                }
            ));
            continue;
        }
        if get(Some(ci)).is_empty() {
            reject("the category is empty (a tag must say what the address is)".into());
            continue;
        }
        let Some(is_public) = parse_bool(get(opt["is_public"])) else {
            reject(format!(
                "is_public {:?} is neither true nor false",
                get(opt["is_public"])
            ));
            continue;
        };
        let confidence = match get(opt["confidence"]) {
            "" => "unknown".to_string(),
            id if confidence_level(id).is_some() => id.to_ascii_lowercase(),
            id => {
                reject(format!(
                    "confidence {id:?} is not a GraphSense confidence id ({})",
                    CONFIDENCE.map(|c| c.0).join(", ")
                ));
                continue;
            }
        };
        let lastmod = match super::parse_date(get(opt["lastmod"])) {
            Ok(d) => d,
            Err(reason) => {
                reject(reason);
                continue;
            }
        };
        let currency = match get(opt["currency"]) {
            "" if address.starts_with("0x") || address.starts_with("0X") => "ETH",
            "" => "BTC",
            cur => cur,
        };
        let actor = [get(opt["actor"]), get(opt["entity"])]
            .into_iter()
            .find(|a| !a.is_empty());
        let imported = c.report.imported;
        c.add(super::Entry {
            line,
            address,
            currency,
            label: get(Some(li)),
            actor,
            category: get(Some(ci)),
            confidence: &confidence,
            is_public,
            source: get(opt["source"]),
            lastmod,
        });
        if c.report.imported > imported && get(opt["confidence"]).is_empty() {
            c.report.without_confidence += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_headers_most_frequent_outside_quotes() {
        assert_eq!(sniff_delimiter("address,label,category"), b',');
        assert_eq!(sniff_delimiter("address;label;category"), b';');
        assert_eq!(sniff_delimiter("address\tlabel\tcategory"), b'\t');
        assert_eq!(sniff_delimiter("\"a;b\",label,category"), b',');
        assert_eq!(sniff_delimiter("address"), b',');
    }
}
