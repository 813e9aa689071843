//! `chaintrace labels import`.

use super::args::{LabelFormatArg, LabelsImportArgs};
use super::{Cli, CliError};
use crate::labels::{self, Format};

pub(crate) fn import(cli: &Cli, a: &LabelsImportArgs) -> Result<(), CliError> {
    let format = a.format.map(|f| match f {
        LabelFormatArg::Tagpack => Format::Tagpack,
        LabelFormatArg::Ofac => Format::Ofac,
        LabelFormatArg::Csv => Format::Csv,
    });
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let reports = labels::import(&a.files, format, &a.data, now_ms).map_err(CliError::user)?;
    for r in &reports {
        for rej in &r.rejected {
            eprintln!(
                "chaintrace: warning: {}:{}: rejected {:?}: {}",
                r.file, rej.line, rej.address, rej.reason
            );
        }
    }
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).expect("reports serialise")
        );
        return Ok(());
    }
    for r in &reports {
        let unsupported: usize = r.unsupported.values().sum();
        println!(
            "{}: {} tag(s) imported, {} rejected, {} of unsupported currencies {:?}, {} zero address(es) dropped",
            r.file,
            r.imported,
            r.rejected.len(),
            unsupported,
            r.unsupported.keys().collect::<Vec<_>>(),
            r.zero_address_dropped
        );
    }
    println!("labels in {}", labels::tags_path(&a.data).display());
    Ok(())
}
