//! `chaintrace labels import|list|search|remove|conflicts`.

use std::collections::BTreeMap;

use super::args::{
    LabelFormatArg, LabelsConflictsArgs, LabelsImportArgs, LabelsListArgs, LabelsRemoveArgs,
    LabelsSearchArgs,
};
use super::{Cli, CliError, print_json};
use crate::labels::{self, Format, Selection, Tag};

/// `category N, category N, ...`, largest first.
fn by_category(counts: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<(&String, &usize)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(c, n)| format!("{} {n}", if c.is_empty() { "(none)" } else { c }))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn import(cli: &Cli, a: &LabelsImportArgs) -> Result<(), CliError> {
    let format = a.format.map(|f| match f {
        LabelFormatArg::Tagpack => Format::Tagpack,
        LabelFormatArg::Ofac => Format::Ofac,
        LabelFormatArg::Csv => Format::Csv,
    });
    let now_ms = match &a.imported_at {
        Some(t) => crate::report::fmt::parse_timestamp(t).map_err(CliError::user)?,
        None => super::now_secs(),
    }
    .saturating_mul(1000);
    let report = match labels::import(&a.files, format, &a.data, now_ms) {
        Ok(r) => r,
        Err(e) => {
            if let labels::LabelError::NothingImported { reports, .. } = &e {
                print_rejected(reports);
            }
            return Err(CliError::user(e));
        }
    };
    print_rejected(&report.files);
    if cli.json {
        print_json(&report);
        return Ok(());
    }
    print_import(&a.data, &report);
    Ok(())
}

pub(crate) fn print_rejected(reports: &[labels::FileReport]) {
    for r in reports {
        for rej in &r.rejected {
            eprintln!(
                "chaintrace: warning: {}:{}: rejected {:?}: {}",
                r.file, rej.line, rej.address, rej.reason
            );
        }
        if r.imported == 0 {
            eprintln!(
                "chaintrace: warning: {}: no tag imported from this file",
                r.file
            );
        }
    }
}

pub(crate) fn print_import(data: &std::path::Path, report: &labels::ImportReport) {
    for r in &report.files {
        let unsupported: usize = r.unsupported.values().sum();
        println!(
            "{}: {} tag(s) imported, {} rejected, {} of unsupported currencies {:?}, {} zero address(es) dropped{}",
            r.file,
            r.imported,
            r.rejected.len(),
            unsupported,
            r.unsupported.keys().collect::<Vec<_>>(),
            r.zero_address_dropped,
            r.delimiter
                .as_deref()
                .map(|d| format!(" ({d}-separated)"))
                .unwrap_or_default(),
        );
        if r.imported > 0 {
            println!("  by category: {}", by_category(&r.categories));
        }
        if r.replaced > 0 {
            println!(
                "  replaced {} tag(s) of an earlier import of this file (same path or content)",
                r.replaced
            );
        }
        if r.private > 0 {
            println!(
                "  {} tag(s) are not public: traces and stats use them only with --include-private",
                r.private
            );
        }
        if r.without_confidence > 0 {
            println!(
                "  {} row(s) without a confidence: recorded as `unknown` (GraphSense level 5); add a confidence column or use --prefer to make them win conflicts",
                r.without_confidence
            );
        }
    }
    println!(
        "labels in {}: {} tag(s): {}",
        report.tags_file,
        report.loaded,
        by_category(&report.loaded_by_category)
    );
    // Tags of Bitcoin networks no dataset here holds: say so (traces will not use them).
    let present: Vec<&str> = ["bitcoin", "testnet", "testnet4", "signet", "regtest"]
        .into_iter()
        .filter(|n| data.join(n).join("_manifest.json").is_file())
        .collect();
    if !present.is_empty()
        && let Ok(tags) = labels::read_tags(&labels::tags_path(data))
    {
        let elsewhere = tags
            .iter()
            .filter(|(t, _)| &*t.chain == "bitcoin")
            .filter(|(t, _)| !present.iter().any(|n| labels::on_network(t, n)))
            .count();
        if elsewhere > 0 {
            println!(
                "{elsewhere} Bitcoin tag(s) are for networks this dataset does not hold (it holds {}): traces here do not use them",
                present.join(", ")
            );
        }
    }
    let conflicts: usize = report.conflicts.values().sum();
    if conflicts > 0 {
        println!(
            "{conflicts} address(es) carry disagreeing tags ({}); see `chaintrace labels conflicts --data {}` for the tag used and why",
            report
                .conflicts
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            data.display()
        );
    }
}

pub(crate) fn list(cli: &Cli, a: &LabelsListArgs) -> Result<(), CliError> {
    let files = labels::files(&a.data).map_err(CliError::user)?;
    let all = labels::load(
        &a.data,
        None,
        None,
        &Selection {
            include_private: true,
            prefer: Vec::new(),
        },
    )
    .map_err(CliError::user)?;
    let mut categories: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        for (c, n) in &f.categories {
            *categories.entry(c.clone()).or_default() += n;
        }
    }
    if cli.json {
        print_json(&serde_json::json!({
            "tags_file": labels::tags_path(&a.data),
            "files": files,
            "by_category": categories,
            "addresses": all.chosen.len(),
            "conflicts": all.conflicts.len(),
        }));
        return Ok(());
    }
    if files.is_empty() {
        println!(
            "no labels in {}; import some with `chaintrace labels import FILE --data {}`",
            labels::tags_path(&a.data).display(),
            a.data.display()
        );
        return Ok(());
    }
    for f in &files {
        println!(
            "{}  {} tag(s){}  sha256 {}  imported {}",
            f.file,
            f.tags,
            if f.private > 0 {
                format!(" ({} private)", f.private)
            } else {
                String::new()
            },
            f.sha256.get(..16).unwrap_or("(unknown)"),
            crate::report::fmt::date(f.imported_at.div_euclid(1000)),
        );
        println!("  {}", by_category(&f.categories));
    }
    println!(
        "{} file(s), {} tag(s) on {} address(es); tags by category: {}",
        files.len(),
        files.iter().map(|f| f.tags).sum::<usize>(),
        all.chosen.len(),
        by_category(&categories)
    );
    if !all.conflicts.is_empty() {
        println!(
            "{} address(es) carry disagreeing tags: `chaintrace labels conflicts --data {}`",
            all.conflicts.len(),
            a.data.display()
        );
    }
    Ok(())
}

fn describe(t: &Tag) -> String {
    format!(
        "{} [{}] {:?} confidence {}{}{} from {}:{}",
        t.entity,
        t.category,
        t.label,
        if t.confidence.is_empty() {
            "(none)"
        } else {
            &t.confidence
        },
        t.lastmod
            .as_deref()
            .map(|d| format!(" lastmod {d}"))
            .unwrap_or_default(),
        if t.is_public { "" } else { " private" },
        t.file,
        t.line
    )
}

pub(crate) fn search(cli: &Cli, a: &LabelsSearchArgs) -> Result<(), CliError> {
    let tags = labels::read_tags(&labels::tags_path(&a.data)).map_err(CliError::user)?;
    let in_use = labels::resolve(
        &tags,
        None,
        &Selection {
            include_private: true,
            prefer: Vec::new(),
        },
    );
    let needle = a.text.trim().to_lowercase();
    let hits: Vec<(&Tag, bool)> = tags
        .iter()
        .map(|(t, _)| t)
        .filter(|t| {
            [&*t.address, &*t.label, &*t.entity, &*t.category, &*t.source]
                .iter()
                .any(|f| f.to_lowercase().contains(&needle))
        })
        .map(|t| (t, in_use.chosen.iter().any(|c| c == t)))
        .collect();
    if cli.json {
        let v: Vec<serde_json::Value> = hits
            .iter()
            .take(a.limit)
            .map(|(t, used)| serde_json::json!({"tag": t, "in_use": used}))
            .collect();
        print_json(&serde_json::json!({"matches": hits.len(), "tags": v}));
        return Ok(());
    }
    for (t, used) in hits.iter().take(a.limit) {
        println!(
            "{} {} {}",
            if *used { "*" } else { " " },
            t.address,
            describe(t)
        );
    }
    println!(
        "{} tag(s) match {:?}{}; * marks the tag in use for its address",
        hits.len(),
        a.text,
        if hits.len() > a.limit {
            format!(" ({} shown; --limit for more)", a.limit)
        } else {
            String::new()
        }
    );
    Ok(())
}

pub(crate) fn remove(cli: &Cli, a: &LabelsRemoveArgs) -> Result<(), CliError> {
    let mut removed = Vec::new();
    for f in &a.files {
        let (file, n) = labels::remove(&a.data, f).map_err(CliError::user)?;
        if !cli.json {
            println!("removed {n} tag(s) of {file}");
        }
        removed.push(serde_json::json!({"file": file, "tags": n}));
    }
    if cli.json {
        print_json(&serde_json::json!({ "removed": removed }));
    }
    Ok(())
}

pub(crate) fn conflicts(cli: &Cli, a: &LabelsConflictsArgs) -> Result<(), CliError> {
    let selection = Selection {
        include_private: a.include_private,
        prefer: a.prefer.clone(),
    };
    let r = labels::load(&a.data, a.chain.map(|c| c.name()), None, &selection)
        .map_err(CliError::user)?;
    if cli.json {
        print_json(&serde_json::json!({
            "precedence": ["prefer", "confidence", "recency", "tie"],
            "selection": r.selection,
            "count": r.conflicts.len(),
            "private_ignored": r.private_ignored,
            "conflicts": r.conflicts.iter().take(a.limit).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    for c in r.conflicts.iter().take(a.limit) {
        println!("{} ({})", c.address, c.chain);
        println!(
            "  uses    {}  [by {}]",
            describe(&c.chosen),
            c.decided_by.describe()
        );
        for o in &c.others {
            println!("  over    {}", describe(o));
        }
    }
    println!(
        "{} address(es) with disagreeing tags{}. Precedence: --prefer, then higher confidence, then more recent lastmod (never the import day), then content order.",
        r.conflicts.len(),
        if r.conflicts.len() > a.limit {
            format!(" ({} shown; --limit for more)", a.limit)
        } else {
            String::new()
        }
    );
    if r.private_ignored > 0 {
        println!(
            "{} non-public tag(s) left out; add --include-private to use them",
            r.private_ignored
        );
    }
    Ok(())
}
