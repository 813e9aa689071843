//! `chaintrace share keygen|export|match|reveal|deconflict` (see [`crate::share`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::anyhow;
use serde_json::{Value, json};

use super::args::{ShareCommand, ShareLabels};
use super::{Cli, CliError, print_json};
use crate::labels::Tag;
use crate::share::{self, Key, Watchlist, psi};

pub(crate) fn run(cli: &Cli, c: &ShareCommand) -> Result<(), CliError> {
    match c {
        ShareCommand::Keygen(a) => keygen(cli, &a.out),
        ShareCommand::Export(a) => export(cli, a),
        ShareCommand::Match(a) => matches(cli, a),
        ShareCommand::Reveal(a) => reveal(cli, a),
        ShareCommand::Deconflict(a) => deconflict(cli, a),
    }
}

fn user(e: impl Into<anyhow::Error>) -> CliError {
    CliError::user(e)
}

fn keygen(cli: &Cli, out: &Path) -> Result<(), CliError> {
    let key = Key::generate()
        .map_err(|e| user(anyhow!("cannot read the system's random source: {e}")))?;
    key.write_new(out).map_err(|e| match e {
        share::ShareError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            user(anyhow!(
                "{} exists: a key is never overwritten (choose another --out)",
                out.display()
            ))
        }
        e => user(e),
    })?;
    if cli.json {
        print_json(&json!({"key_file": out, "key_id": key.id()}));
    } else {
        println!(
            "wrote {} (key id {}): give it to ONE partner by a channel you trust; both sides use it for export, match, reveal and deconflict",
            out.display(),
            key.id()
        );
    }
    Ok(())
}

/// The tags `l` selects: its categories (need-to-know ones only when named), public
/// unless `--include-private`; with what was left out, by reason.
fn selected(l: &ShareLabels) -> Result<(Vec<Tag>, BTreeMap<&'static str, usize>), CliError> {
    let path = l
        .labels
        .clone()
        .unwrap_or_else(|| crate::labels::tags_path(&l.data));
    if !path.is_file() {
        return Err(user(anyhow!(
            "{} does not exist: import labels first (`chaintrace labels import FILE --data {}`) or give --labels",
            path.display(),
            l.data.display()
        )));
    }
    let tags = crate::labels::read_tags(&path).map_err(user)?;
    let named: BTreeSet<String> = l
        .category
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    if !l.category.is_empty() && named.is_empty() {
        return Err(user(anyhow!(
            "--category: no category given (leave it out to share every category but the need-to-know ones)"
        )));
    }
    // A named category no tag has is a typo, not a wish.
    let present: BTreeSet<String> = tags
        .iter()
        .map(|(t, _)| t.category.to_ascii_lowercase())
        .collect();
    if let Some(c) = named.iter().find(|c| !present.contains(*c)) {
        return Err(user(anyhow!(
            "--category {c}: no tag of {} has it; the categories are: {}",
            path.display(),
            present.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let mut left: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (t, _) in tags {
        let cat = t.category.to_ascii_lowercase();
        if !named.is_empty() && !named.contains(&cat) {
            *left.entry("other category").or_default() += 1;
        } else if named.is_empty() && share::is_sensitive(&cat) {
            *left.entry("need-to-know category not named").or_default() += 1;
        } else if !t.is_public && !l.include_private {
            *left.entry("private").or_default() += 1;
        } else {
            out.push(t);
        }
    }
    if out.is_empty() {
        let cats: BTreeSet<&str> = named.iter().map(String::as_str).collect();
        return Err(user(anyhow!(
            "no tag of {} to share{}; left out: {}",
            path.display(),
            if cats.is_empty() {
                String::new()
            } else {
                format!(
                    " in categories {}",
                    cats.into_iter().collect::<Vec<_>>().join(",")
                )
            },
            if left.is_empty() {
                "nothing (the file is empty)".to_string()
            } else {
                left.iter()
                    .map(|(k, v)| format!("{v} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    Ok((out, left))
}

fn load_key(path: &Path) -> Result<Key, CliError> {
    Key::load(path).map_err(|e| match e {
        share::ShareError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::InvalidData =>
        {
            user(anyhow!(
                "{} is not a key file (it is not text; make one with `chaintrace share keygen`)",
                path.display()
            ))
        }
        e => user(e),
    })
}

/// Refuses to write `out` over an existing file (unless `force`) or over one of `inputs`.
fn check_out(out: &Path, force: bool, inputs: &[&Path]) -> Result<(), CliError> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    };
    if let Some(i) = inputs.iter().find(|i| same(out, i)) {
        return Err(user(anyhow!(
            "--out {} is an input of this command ({}): choose another file",
            out.display(),
            i.display()
        )));
    }
    if out.exists() && !force {
        return Err(user(anyhow!(
            "--out {} exists: choose another file, or add --force to replace it",
            out.display()
        )));
    }
    Ok(())
}

fn export(cli: &Cli, a: &super::args::ShareExportArgs) -> Result<(), CliError> {
    let key = load_key(&a.key_file)?;
    let labels_file = a
        .labels
        .labels
        .clone()
        .unwrap_or_else(|| crate::labels::tags_path(&a.labels.data));
    check_out(&a.out, a.force, &[&a.key_file, &labels_file])?;
    if a.for_partner.trim().is_empty() {
        return Err(user(anyhow!("--for: give the partner's agreed name")));
    }
    let (tags, left) = selected(&a.labels)?;
    let items: Vec<String> = tags
        .iter()
        .map(|t| share::item(&t.chain, &t.address))
        .collect();
    let created = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let w = Watchlist::build(&key, &a.for_partner, &created, &items).map_err(user)?;
    let bytes = w.to_bytes(&key);
    crate::store::sink::write_atomic(&a.out, &bytes).map_err(user)?;
    let cats: BTreeMap<&str, usize> = tags.iter().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(&*t.category).or_default() += 1;
        m
    });
    if cli.json {
        print_json(
            &json!({"file": a.out, "for": a.for_partner, "items": w.header.items,
            "bytes": bytes.len(), "key_id": key.id(), "categories": cats, "left_out": left,
            "false_positive_rate": w.header.false_positive_rate}),
        );
    } else {
        println!(
            "wrote {} for {}: {} address(es) ({}) in {} bytes, key id {}; a lookup's false-positive rate is 2^-32",
            a.out.display(),
            a.for_partner,
            w.header.items,
            cats.iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            bytes.len(),
            key.id()
        );
        for (why, n) in &left {
            println!("left out: {n} tag(s), {why}");
        }
        println!(
            "no address, label or case is readable from the file; the partner, holding the key, can test addresses it knows against it"
        );
    }
    Ok(())
}

/// The addresses to test: `item → where it was found` (dataset, labels, case names).
fn candidates(
    a: &super::args::ShareMatchArgs,
) -> Result<BTreeMap<String, BTreeSet<String>>, CliError> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |item: String, from: String| {
        out.entry(item).or_default().insert(from);
    };
    let mut any = false;
    for net in crate::types::Network::ALL.iter().map(|n| n.as_str()) {
        let dir = a.data.join(net);
        if !dir.join("_manifest.json").is_file() {
            continue;
        }
        any = true;
        let idx = super::cluster::open_index(&dir)?;
        for id in idx.address_ids() {
            add(share::item("bitcoin", idx.address(id)), "dataset".into());
        }
    }
    let eth = crate::ingest::ethereum::ingest::chain_dir(&a.data);
    if eth.join("_manifest.json").is_file() {
        any = true;
        let ledger =
            crate::trace::ethereum::ledger(&eth, &crate::trace::ethereum::Asset::Eth, u64::MAX)
                .map_err(user)?;
        for acc in &ledger.accounts {
            add(share::item("ethereum", acc), "dataset".into());
        }
    }
    for (t, _) in crate::labels::read_tags(&crate::labels::tags_path(&a.data)).map_err(user)? {
        any = true;
        add(share::item(&t.chain, &t.address), "labels".into());
    }
    for c in &a.case {
        let case = crate::report::case::Case::load(c).map_err(|e| {
            user(anyhow!(
                "--case {}: not a case folder with a trace ({e})",
                c.display()
            ))
        })?;
        let chain = case.chain.clone();
        let name = format!("case {}", c.display());
        let mut addrs: BTreeSet<&str> = case.seed_nodes.iter().map(String::as_str).collect();
        for r in &case.results {
            for e in &r.edges {
                addrs.insert(e.from_address.as_ref());
                addrs.insert(e.to_address.as_ref());
            }
            for e in &r.ends {
                addrs.insert(e.address.as_str());
            }
        }
        for ad in addrs.into_iter().filter(|x| !x.is_empty()) {
            add(share::item(&chain, ad), name.clone());
        }
        any = true;
    }
    if !any {
        return Err(user(anyhow!(
            "nothing to match: {} holds no dataset and no labels, and no --case was given",
            a.data.display()
        )));
    }
    Ok(out)
}

fn matches(cli: &Cli, a: &super::args::ShareMatchArgs) -> Result<(), CliError> {
    let key = load_key(&a.key_file)?;
    let w = Watchlist::read(&a.file, &key).map_err(user)?;
    let m = w.matcher();
    let cands = candidates(a)?;
    let tested = cands.len();
    let tags = crate::labels::read_tags(&crate::labels::tags_path(&a.data)).map_err(user)?;
    // Clusters of the Bitcoin dataset, for --via-clusters.
    let clusters = if a.via_clusters {
        let (dir, net) = crate::trace::request::chain_dir(&a.data, None).map_err(user)?;
        let idx = super::cluster::open_index(&dir)?;
        let s = crate::cluster::load(&idx, &crate::cluster::clusters_dir(&a.data, &net)).map_err(
            |e| {
                user(anyhow!(
                    "--via-clusters: {e}; run `chaintrace cluster bitcoin --data {}` first",
                    a.data.display()
                ))
            },
        )?;
        Some((idx, s))
    } else {
        None
    };
    // Once, not per hit: the local labels by address and the clusters' sizes.
    let mut local_of: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (t, _) in &tags {
        local_of
            .entry(t.address.as_str())
            .or_default()
            .push(json!({"entity": t.entity, "category": t.category, "source": t.source}));
    }
    let sizes: BTreeMap<u32, usize> = clusters.as_ref().map_or_else(BTreeMap::new, |(_, s)| {
        s.cluster_of.iter().fold(BTreeMap::new(), |mut m, &c| {
            *m.entry(c).or_default() += 1;
            m
        })
    });
    let mut hits = Vec::new();
    for (item, from) in &cands {
        if !m.contains(&key, item) {
            continue;
        }
        let (chain, address) = item.split_once(':').unwrap_or(("", item));
        let local = local_of.get(address).cloned().unwrap_or_default();
        let cluster = clusters.as_ref().and_then(|(idx, s)| {
            let id = idx.address_id(address)?;
            let c = s.cluster_of[id.ix()];
            let size = sizes.get(&c).copied().unwrap_or(0);
            Some(json!({"cluster_id": c, "size": size,
                "representative": idx.address(crate::types::AddrIx(c))}))
        });
        hits.push(
            json!({"address": address, "chain": chain, "status": "possible",
            "reference": share::reference(&key, item), "found_in": from,
            "local_labels": local, "cluster": cluster}),
        );
    }
    let expected = tested as f64 * share::FALSE_POSITIVE_RATE;
    if cli.json {
        print_json(
            &json!({"file": a.file, "for": w.header.for_partner, "created": w.header.created,
            "items": w.header.items, "tested": tested, "expected_false_hits": expected,
            "false_positive_rate": w.header.false_positive_rate, "hits": hits}),
        );
        return Ok(());
    }
    println!(
        "{}: a watchlist of {} address(es) for {}, made {}; {} of your address(es) tested: {} possible hit(s)",
        a.file.display(),
        w.header.items,
        w.header.for_partner,
        w.header.created,
        tested,
        hits.len()
    );
    for h in &hits {
        let found: Vec<&str> = h["found_in"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let cluster = match &h["cluster"] {
            Value::Null => String::new(),
            c => format!(
                " · cluster {} of {} address(es) ({})",
                c["cluster_id"],
                c["size"],
                c["representative"].as_str().unwrap_or("")
            ),
        };
        let labels: Vec<String> = h["local_labels"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|l| {
                        format!(
                            "{} [{}]",
                            l["entity"].as_str().unwrap_or(""),
                            l["category"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "  {} {} — in your {}{}{}; request reference {}",
            h["chain"].as_str().unwrap_or(""),
            h["address"].as_str().unwrap_or(""),
            found.join(", "),
            if labels.is_empty() {
                String::new()
            } else {
                format!(" · your labels: {}", labels.join(", "))
            },
            cluster,
            h["reference"].as_str().unwrap_or("")
        );
    }
    println!(
        "each hit is possible until the sender reveals it: quote its request reference. Expected false hits among {tested} tested: {expected:.2e} (2^-32 per address)"
    );
    Ok(())
}

fn reveal(cli: &Cli, a: &super::args::ShareRevealArgs) -> Result<(), CliError> {
    let key = load_key(&a.key_file)?;
    let (tags, _) = selected(&a.labels)?;
    const FIELDS: [&str; 7] = [
        "address",
        "category",
        "source",
        "confidence",
        "lastmod",
        "label",
        "entity",
    ];
    if let Some(f) = a.fields.iter().find(|f| !FIELDS.contains(&f.as_str())) {
        return Err(user(anyhow!(
            "--fields {f}: choose among {}",
            FIELDS.join(", ")
        )));
    }
    let mut out = Vec::new();
    for r in &a.references {
        let want = r.trim().to_ascii_uppercase();
        let well_formed = want.len() == 14
            && want.starts_with("R-")
            && want[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(user(anyhow!(
                "{r:?} is not a request reference (R- and 12 hexadecimal digits, as `share match` prints them)"
            )));
        }
        let found: Vec<&Tag> = tags
            .iter()
            .filter(|t| share::reference(&key, &share::item(&t.chain, &t.address)) == want)
            .collect();
        let released: Vec<Value> = found
            .iter()
            .map(|t| {
                let mut v = serde_json::Map::new();
                for f in &a.fields {
                    let val = match f.as_str() {
                        "address" => json!(t.address),
                        "category" => json!(t.category),
                        "source" => json!(t.source),
                        "confidence" => json!(t.confidence),
                        "lastmod" => json!(t.lastmod),
                        "label" => json!(t.label),
                        _ => json!(t.entity),
                    };
                    v.insert(f.clone(), val);
                }
                Value::Object(v)
            })
            .collect();
        out.push(json!({"reference": want, "tags": released}));
    }
    if cli.json {
        print_json(&json!({"revealed": out}));
        return Ok(());
    }
    for o in &out {
        let tags = o["tags"].as_array().map_or(&[][..], Vec::as_slice);
        if tags.is_empty() {
            println!(
                "{}: none of the selected tags has this reference (another key, another selection of categories, or a tag removed since the export)",
                o["reference"].as_str().unwrap_or("")
            );
        }
        for t in tags {
            let fields: Vec<String> = t
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("-")))
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{}: {}",
                o["reference"].as_str().unwrap_or(""),
                fields.join(" · ")
            );
        }
    }
    println!(
        "released fields: {} (choose with --fields)",
        a.fields.join(",")
    );
    let unmatched = out
        .iter()
        .filter(|o| o["tags"].as_array().is_none_or(Vec::is_empty))
        .count();
    if unmatched > 0 {
        return Err(user(anyhow!(
            "{unmatched} reference(s) name none of the selected tags: nothing released for them"
        )));
    }
    Ok(())
}

fn deconflict(cli: &Cli, a: &super::args::ShareDeconflictArgs) -> Result<(), CliError> {
    let key = load_key(&a.key_file)?;
    match (&a.mine, &a.theirs, &a.reply, &a.out) {
        // Step 1: our round 1.
        (None, None, None, Some(out)) => {
            check_out(out, a.force, &[&a.key_file])?;
            let (tags, left) = selected(&a.labels)?;
            let items: Vec<String> = tags
                .iter()
                .map(|t| share::item(&t.chain, &t.address))
                .collect();
            let (msg, state) = psi::start(&key, &items)
                .map_err(|e| user(anyhow!("cannot read the system's random source: {e}")))?;
            let sp = psi::state_path(out);
            state.write_new(&sp).map_err(|e| match e {
                share::ShareError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    user(anyhow!(
                        "{} exists (a session's secret is never overwritten): choose another --out",
                        sp.display()
                    ))
                }
                e => user(e),
            })?;
            crate::store::sink::write_atomic(out, &msg.to_bytes(&key)).map_err(user)?;
            if cli.json {
                print_json(
                    &json!({"step": 1, "message": out, "secret": sp, "items": msg.header.points, "session": msg.header.session, "left_out": left}),
                );
            } else {
                println!(
                    "step 1: wrote {} ({} blinded address(es), session {}) — send it to the partner; keep {} (never send it)",
                    out.display(),
                    msg.header.points,
                    msg.header.session,
                    sp.display()
                );
                for (why, n) in &left {
                    println!("left out: {n} tag(s), {why}");
                }
                println!(
                    "step 2, once theirs arrives: chaintrace share deconflict --key-file {} --mine {} --theirs THEIRS.ctd --out reply.ctd",
                    a.key_file.display(),
                    out.display()
                );
            }
            Ok(())
        }
        // Step 2: our reply to their round 1.
        (Some(mine), Some(theirs), None, Some(out)) => {
            check_out(out, a.force, &[mine, theirs, &a.key_file])?;
            let state = my_state(mine, &key)?;
            let t = round1(theirs, &key)?;
            not_mine(&state, &t, theirs)?;
            let r = psi::reply(&key, &state, &t, theirs).map_err(user)?;
            crate::store::sink::write_atomic(out, &r.to_bytes(&key)).map_err(user)?;
            if cli.json {
                print_json(&json!({"step": 2, "reply": out, "points": r.header.points}));
            } else {
                println!(
                    "step 2: wrote {} (their {} address(es) blinded again) — send it to the partner",
                    out.display(),
                    r.header.points
                );
                println!(
                    "step 3, once their reply arrives: chaintrace share deconflict --key-file {} --mine {} --theirs {} --reply THEIR-REPLY.ctd",
                    a.key_file.display(),
                    mine.display(),
                    theirs.display()
                );
            }
            Ok(())
        }
        // Step 3: the intersection.
        (Some(mine), Some(theirs), Some(reply), None) => {
            let state = my_state(mine, &key)?;
            let t = round1(theirs, &key)?;
            not_mine(&state, &t, theirs)?;
            let r = psi::Message::read(reply, &key).map_err(user)?;
            let both = psi::finish(&state, &t, &r, reply).map_err(user)?;
            if cli.json {
                print_json(
                    &json!({"step": 3, "ours": state.items.len(), "theirs": t.points.len(),
                    "shared": both.iter().map(|i| i.split_once(':').map_or(i.as_str(), |x| x.1)).collect::<Vec<_>>()}),
                );
            } else {
                println!(
                    "{} of your {} flagged address(es) are flagged by the partner too (they have {}):",
                    both.len(),
                    state.items.len(),
                    t.points.len()
                );
                for i in &both {
                    println!("  {i}");
                }
            }
            Ok(())
        }
        _ => Err(CliError::user(anyhow!(
            "give --out (step 1), --mine, --theirs and --out (step 2), or --mine, --theirs and --reply (step 3); see chaintrace share deconflict --help"
        ))),
    }
}

/// Our state of `mine` (its .secret beside it), or what is wrong with `--mine`.
fn my_state(mine: &Path, key: &Key) -> Result<psi::State, CliError> {
    let sp = psi::state_path(mine);
    if !sp.exists() {
        return Err(user(anyhow!(
            "--mine {}: no {} beside it, so it is not your round 1 (--mine is the file your step 1 wrote; the partner's goes to --theirs)",
            mine.display(),
            sp.display()
        )));
    }
    psi::State::read(&sp, key).map_err(user)
}

/// Refuses our own round 1 given as theirs (an easy slip that would answer wrongly).
fn not_mine(state: &psi::State, theirs: &psi::Message, path: &Path) -> Result<(), CliError> {
    if theirs.header.session == state.session {
        return Err(user(anyhow!(
            "--theirs {} is your own round 1 (session {}): give the round 1 the partner sent you",
            path.display(),
            state.session
        )));
    }
    Ok(())
}

fn round1(path: &Path, key: &Key) -> Result<psi::Message, CliError> {
    let m = psi::Message::read(path, key).map_err(user)?;
    if m.header.round != 1 {
        return Err(user(anyhow!(
            "{} is a round-{} message; --theirs takes the partner's round 1 (step 1's file)",
            path.display(),
            m.header.round
        )));
    }
    Ok(m)
}
