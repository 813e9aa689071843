//! The self-contained HTML evidence report: the question, the answer, the charts (inline
//! SVG), every transfer, the methodology and the provenance. No script, no stylesheet
//! link, no image fetch: the file is the whole report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::case::Case;
use super::export::xml;
use super::fmt;
use crate::trace::Amount;

/// What the HTML report needs besides the case.
#[derive(Debug)]
pub struct HtmlInput<'a> {
    pub case: &'a Case,
    /// `eval_trace.json` of this very trace (`chaintrace eval trace`), if measured.
    pub measured: Option<&'a serde_json::Value>,
    /// `case.toml`: case number, examiner, agency, question.
    pub meta: Option<&'a crate::case::Meta>,
    /// The case's audit trail (the traces and notes are shown).
    pub audit: &'a [crate::case::Entry],
    pub policy: &'a str,
    pub headline: &'a str,
    pub generated: &'a str,
    pub command: &'a [String],
    pub prices: Option<&'a fmt::Prices>,
    pub prices_sha256: Option<&'a str>,
    /// (title, inline SVG) of each chart.
    pub charts: Vec<(&'a str, &'a str)>,
    /// (file, sha256, bytes) of every other file produced.
    pub files: &'a [(String, String, u64)],
    pub chart_notes: &'a str,
    /// Warnings on the figures (fiat on a test network, price gaps), shown with the answer.
    pub warnings: &'a [String],
    /// At most this many rows in the transfers table.
    pub max_rows: usize,
    /// The examiner's notes from the canvas: (on what, note).
    pub canvas_notes: &'a [(String, String)],
    /// Requests the canvas answered on this case (logged, not listed).
    pub canvas_requests: usize,
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:24px auto;max-width:1280px;color:#212121;line-height:1.45}\
h1{font-size:24px}h2{font-size:19px;border-bottom:2px solid #c62828;padding-bottom:3px;margin-top:34px}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}\
th{background:#f5f5f5}td.n{text-align:right;font-family:'DejaVu Sans Mono',monospace;white-space:nowrap}\
code,.mono{font-family:'DejaVu Sans Mono',monospace;font-size:12px;word-break:break-all}.chart{overflow-x:auto;border:1px solid #eee;margin:10px 0}\
.chart svg{display:block}.headline{font-size:17px;background:#fff8e1;border-left:5px solid #ff8f00;padding:8px 12px}\
small{color:#616161}details{margin:6px 0}@media print{body{margin:0;max-width:none;font-size:10pt}.chart{overflow:visible}table{page-break-inside:auto}tr{page-break-inside:avoid}h2{page-break-after:avoid}.printmark{display:block;position:fixed;bottom:0;right:0;font-size:8pt;background:#fff}}.printmark{display:none}.warn{background:#ffebee;border-left:5px solid #c62828;padding:6px 10px}";

fn money(case: &Case, units: Amount) -> String {
    format!("{} {}", fmt::amount(units, case.decimals()), case.unit())
}

fn num_cell(s: &mut String, text: &str) {
    let _ = write!(s, "<td class=\"n\">{}</td>", xml(text));
}

/// The HTML text.
pub fn render(h: &HtmlInput) -> String {
    let c = h.case;
    let mut s = String::with_capacity(1 << 20);
    let title = format!(
        "chaintrace evidence report — {} trace on {} {}",
        c.param("direction"),
        c.chain,
        c.network
    );
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"headline\">{}</p>\n",
        xml(&title),
        xml(&title),
        xml(h.headline)
    );
    // A test network's coins are not money: say so at the top.
    if !matches!(c.network.as_str(), "bitcoin" | "mainnet") {
        let _ = writeln!(
            s,
            "<p class=\"warn\"><b>Test data:</b> this case is on the {} network{}: its coins have no market value and its entities are simulated or made for testing.</p>",
            xml(&c.network),
            if c.network == "regtest" {
                " (a private regression-test chain, or a simulated world)"
            } else {
                ""
            }
        );
        // Printed, every page carries the mark (a fixed element repeats on each page).
        let _ = writeln!(
            s,
            "<div class=\"printmark\">TEST DATA ({}) · trace.json sha256 {}</div>",
            xml(&c.network),
            c.trace_sha256
        );
    }
    if let Some(m) = h.meta {
        s.push_str("<table>\n");
        for (k, v) in m.fields() {
            if let Some(v) = v {
                let _ = writeln!(s, "<tr><th>{k}</th><td>{}</td></tr>", xml(v));
            }
        }
        s.push_str("</table>\n");
    }
    // 1. The question.
    s.push_str("<h2>1. The question asked</h2>\n<table>\n");
    let account = c.asset.is_some();
    let seeded = if account {
        (
            "Seed accounts and transactions",
            format!(
                "{} account(s), {} transaction(s)",
                c.param("seed_accounts"),
                c.param("seed_transactions")
            ),
        )
    } else {
        ("Seed outputs", c.param("seed_outputs"))
    };
    let asset = match &c.asset {
        Some(a) => format!(
            "{} ({}; {} decimals)",
            a.unit,
            a.contract
                .as_deref()
                .unwrap_or("ether, the chain's own coin"),
            a.decimals
        ),
        None => c.unit().to_string(),
    };
    let rows = [
        ("Asset traced", asset),
        ("Seeds (as given)", c.param("seeds")),
        seeded,
        (
            if c.asset.is_some() {
                "Accounts holding the seeded value (seed accounts, or those the seed transactions paid)"
            } else {
                "Seed addresses or clusters"
            },
            c.seed_nodes.len().to_string(),
        ),
        ("Direction", c.param("direction")),
        ("Taint models", c.param("policies")),
        ("Maximum hops", c.param("max_hops")),
        ("Minimum value followed (base units)", c.param("min_value")),
        (
            "Heights followed",
            c.param("followed_heights").replace(", ", " to "),
        ),
        (
            "Time window",
            match (c.param("from_time"), c.param("to_time")) {
                (f, t) if f.is_empty() && t.is_empty() => "none (all heights followed)".to_string(),
                (f, t) => format!("{f} – {t}"),
            },
        ),
        ("Stop at categories (exits)", c.param("stop_at")),
        ("Level", c.param("level")),
        ("Labels on addresses in the dataset", c.param("labels")),
        ("Private labels included", c.param("include_private")),
        (
            "Non-public tags left out",
            c.param("labels_private_ignored"),
        ),
        ("Sources preferred on conflicts", c.param("prefer")),
        (
            "CoinJoins",
            if c.asset.is_some() {
                "not applicable (account model)".to_string()
            } else if c.param("through_coinjoins") == "true" {
                "followed through like any transaction (--through-coinjoins)".to_string()
            } else {
                "not followed: taint ends where it enters a detected CoinJoin".to_string()
            },
        ),
        (
            "Addresses with disagreeing tags",
            c.label_conflicts.len().to_string(),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", xml(k), xml(&v));
    }
    s.push_str(if c.asset.is_some() {
        "</table>\n<details><summary>Accounts holding the seeded value</summary><p class=\"mono\">"
    } else {
        "</table>\n<details><summary>Seed addresses or clusters</summary><p class=\"mono\">"
    });
    for n in &c.seed_nodes {
        let _ = write!(s, "{}<br>", xml(n));
    }
    s.push_str("</p></details>\n");
    // 2. The answer.
    let account = c.asset.is_some();
    let backward = c.param("direction") == "backward";
    let _ = write!(
        s,
        "<h2>2. The answer</h2>\n<h3>{}, per taint model</h3>\n<table>\n<tr><th>model</th><th>entered the seeds from outside</th><th>{}</th>",
        if backward {
            "Where the traced value came from"
        } else {
            "Where the traced value ended"
        },
        if account {
            "seeded (the seeds' balances)"
        } else {
            "seeded (all seed outputs)"
        }
    );
    // Each chain's own ends: CoinJoins and outputs from outside a height window are
    // Bitcoin's, unresolved transfers Ethereum's.
    let shown = |name: &str| match name {
        "through an unresolved transfer" => account,
        "spent outside the window" | "entered a CoinJoin" | "from outside the dataset" => !account,
        _ => true,
    };
    for (name, _) in crate::trace::Totals::default().ends() {
        if !shown(name) {
            continue;
        }
        // The account model's words for the same ends.
        let name = match (account, backward, name) {
            (true, true, "held (unspent)") => "from balances held before the window",
            (true, false, "held (unspent)") => "held (still in an account)",
            (true, _, "mined") => "minted, withdrawn from validators or block rewards",
            (_, true, "reached exits") => "came from exits",
            _ => name,
        };
        let _ = write!(s, "<th>{name}</th>");
    }
    s.push_str("</tr>\n");
    // Poison is not an amount that moved: it has its own table below, never beside these.
    for r in c.results.iter().filter(|r| r.policy != "poison") {
        let t = &r.totals;
        let _ = write!(s, "<tr><th>{}</th>", xml(&r.policy));
        num_cell(&mut s, &money(c, t.entered_seeds));
        num_cell(&mut s, &money(c, t.seeded));
        for (name, v) in t.ends() {
            if shown(name) {
                num_cell(&mut s, &money(c, v));
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n<p><small>For the models the columns after \"seeded\" add up to the seeded amount exactly (checked when the trace ran).");
    if c.asset.is_none() {
        s.push_str(" \"Seeded\" counts every seed output in full, so value that moved from one seed address to another is in it twice; \"entered the seeds from outside\" counts it once — each seed output's share of its transaction's inputs that were not seed outputs (all of a coinbase; none of a seed's own coin coming back out of a CoinJoin), the same under every model — and every share is of that amount.");
    }
    let opening = c
        .parameters
        .get("opening_balances")
        .filter(|v| !v.is_null());
    match opening {
        Some(o) if c.asset.is_some() => {
            let _ = write!(
                s,
                " Account model: every account's opening balance is the node's (eth_getBalance at block {} from {}), so a genesis allocation or an older balance counts: \"seeded\" is the seed accounts' whole balance, or what the seed transactions moved.",
                o["at_block"],
                xml(o["node"].as_str().unwrap_or("?"))
            );
        }
        _ if c.asset.is_some() => s.push_str(" Account model: \"seeded\" is what the seed transactions moved, or the seed accounts' balance as the dataset shows it (what they received in the window and the least opening balance that explains what they sent: a genesis allocation or an older balance that the dataset does not show is not in it; trace --opening-balances URL takes them from a node)."),
        _ => {}
    }
    s.push_str("</small></p>\n");
    if let Some(p) = c.results.iter().find(|r| r.policy == "poison") {
        let (touched, value) = crate::trace::touched(
            p.edges.iter().map(|e| {
                (
                    e.txid.as_ref(),
                    e.vout,
                    e.from_address.as_ref(),
                    e.to_address.as_ref(),
                    e.output_value.unwrap_or(e.amount),
                )
            }),
            c.asset.is_some(),
        );
        let exits: Vec<&super::case::End> = p.ends.iter().filter(|e| e.kind == "exit").collect();
        let what = if c.asset.is_some() {
            "transfers"
        } else {
            "outputs"
        };
        let _ = writeln!(
            s,
            "<h3>Poison: {what} touched (an upper bound, not an amount that moved)</h3>\n<table>\n<tr><th>{what} the taint touched</th><td class=\"n\">{}</td></tr>\n<tr><th>their whole value</th><td class=\"n\">{}</td></tr>\n<tr><th>of them at stop categories (exits)</th><td class=\"n\">{} worth {}</td></tr>\n</table>",
            touched,
            money(c, value),
            exits.len(),
            money(c, exits.iter().map(|e| e.amount).sum())
        );
    }
    let entities: BTreeSet<&String> = c
        .results
        .iter()
        .flat_map(|r| r.exposure_entity.keys())
        .collect();
    let cat_of: BTreeMap<&str, &str> = c
        .results
        .iter()
        .flat_map(|r| r.ends.iter())
        .filter_map(|e| Some((e.entity.as_deref()?, e.category.as_deref()?)))
        .collect();
    let times: BTreeMap<(&str, &str), u32> = c
        .results
        .iter()
        .flat_map(|r| r.edges.iter())
        .map(|e| ((e.txid.as_ref(), super::case::paid_address(e)), e.time))
        .collect();
    s.push_str("<h3>Exposure per entity</h3>\n");
    if entities.is_empty() {
        s.push_str("<p>No traced value reached a labelled entity.</p>\n");
    } else {
        s.push_str("<table>\n<tr><th>entity</th><th>category</th>");
        // The conserving models only: poison's figure is not an amount that moved, and
        // has its own table below.
        for r in c.results.iter().filter(|r| r.policy != "poison") {
            let _ = write!(s, "<th>{}</th>", xml(&r.policy));
        }
        s.push_str("</tr>\n");
        for ent in &entities {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td>",
                xml(ent),
                xml(cat_of.get(ent.as_str()).copied().unwrap_or(""))
            );
            for r in c.results.iter().filter(|r| r.policy != "poison") {
                let v = r.exposure_entity.get(*ent).copied().unwrap_or(0);
                let mut cell = money(c, v);
                if let Some(p) = h.prices {
                    // Each arrival valued at its day's price, then summed.
                    let mut total = 0u128;
                    let mut missing = 0;
                    for e in r
                        .ends
                        .iter()
                        .filter(|e| e.entity.as_deref() == Some(ent.as_str()))
                    {
                        let t = times.get(&(e.txid.as_str(), e.address.as_str())).copied();
                        match t.and_then(|t| p.cents(e.amount, c.decimals(), i64::from(t))) {
                            Some(v) => total += v,
                            None => missing += 1,
                        }
                    }
                    let priced = r
                        .ends
                        .iter()
                        .filter(|e| e.entity.as_deref() == Some(ent.as_str()))
                        .count()
                        > missing;
                    let _ = write!(
                        cell,
                        " ({}{})",
                        if priced {
                            format!("{} {}", fmt::cents(total), p.currency)
                        } else {
                            "no price".to_string()
                        },
                        if missing > 0 && priced {
                            format!(", {missing} arrival(s) without a price")
                        } else {
                            String::new()
                        }
                    );
                }
                num_cell(&mut s, &cell);
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
        if let Some(r) = c.results.iter().find(|r| r.policy == "poison") {
            s.push_str(if c.asset.is_some() { "<h3>Poison per entity: transfers touched (an upper bound, not an amount that moved)</h3>" } else { "<h3>Poison per entity: outputs touched (an upper bound, not an amount that moved)</h3>" });
            s.push_str("\n<table>\n<tr><th>entity</th><th>category</th><th>deposits the taint touched</th><th>their whole value</th></tr>\n");
            for ent in &entities {
                let touched: Vec<&super::case::End> = r
                    .ends
                    .iter()
                    .filter(|e| e.kind == "exit" && e.entity.as_deref() == Some(ent.as_str()))
                    .collect();
                if touched.is_empty() {
                    continue;
                }
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td>",
                    xml(ent),
                    xml(cat_of.get(ent.as_str()).copied().unwrap_or("")),
                    touched.len()
                );
                num_cell(
                    &mut s,
                    &money(
                        c,
                        touched
                            .iter()
                            .map(|e| e.output_value.unwrap_or(e.amount))
                            .sum(),
                    ),
                );
                s.push_str("</tr>\n");
            }
            s.push_str("</table>\n");
        }
        if let Some(p) = h.prices {
            let _ = writeln!(
                s,
                "<p><small>Fiat values: each arrival at the daily close of its block's UTC day from <code>{}</code> (sha256 <code>{}</code>), computed in integers and rounded half up to the cent.</small></p>",
                xml(&p.file),
                h.prices_sha256.unwrap_or("")
            );
            for w in h.warnings {
                let _ = writeln!(s, "<p class=\"warn\"><b>Note:</b> {}</p>", xml(w));
            }
        }
    }
    if let Some(m) = h.measured {
        let _ = writeln!(
            s,
            "<h3>Measured error of this trace</h3>\n<p><small>Each model's exposure to {} against the ground truth <code>{}</code> (sha256 <code>{}</code>), measured {} with <code>chaintrace eval trace</code>. Positive: the model attributes more to them than the truth lists. An exit matching no true flow is either a model's error or a true payment the truth does not list (a peel chain lists only its own payouts): each is named below the table.</small></p>\n<table>\n<tr><th>model</th><th>traced</th><th>true</th><th>signed error</th><th>true flows found</th><th>exits matching no true flow</th></tr>",
            xml(m["category"].as_str().unwrap_or("")),
            xml(m["truth"].as_str().unwrap_or("")),
            xml(m["truth_sha256"].as_str().unwrap_or("")),
            xml(m["measured_at"].as_str().unwrap_or(""))
        );
        for r in m["models"].as_array().into_iter().flatten() {
            let amount = |k: &str| {
                r[k].as_u64()
                    .map_or_else(|| r[k].to_string(), |v| money(c, Amount::from(v)))
            };
            let err = crate::trace::eval::percent(r["signed_error_ppm"].as_i64().map(i128::from));
            let _ = writeln!(
                s,
                "<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{} of {}</td><td class=\"n\">{}</td></tr>",
                xml(r["policy"].as_str().unwrap_or("")),
                amount("traced"),
                amount("truth"),
                err,
                r["flows_found"],
                r["flows_true"],
                r["exits_unmatched"]
            );
        }
        s.push_str("</table>\n");
        let unmatched: BTreeSet<&str> = m["models"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["unmatched"].as_array().into_iter().flatten())
            .filter_map(serde_json::Value::as_str)
            .collect();
        if !unmatched.is_empty() {
            s.push_str("<p><small>Exits matching no true flow (txid:vout amount): ");
            let list: Vec<String> = unmatched.iter().map(|u| xml(u)).collect();
            s.push_str(&list.join("; "));
            s.push_str("</small></p>\n");
        }
        let sweep = m["by_hops"].as_array().map_or(&[][..], Vec::as_slice);
        if !sweep.is_empty() {
            s.push_str("<p><small>The same trace run again at other hop limits (signed error per model):</small></p>\n<table>\n<tr><th>hops</th><th>signed error per model</th></tr>\n");
            for row in sweep {
                let cells: Vec<String> = row["models"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let e = crate::trace::eval::percent(
                            r["signed_error_ppm"].as_i64().map(i128::from),
                        );
                        format!("{} {e}", r["policy"].as_str().unwrap_or(""))
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "<tr><td class=\"n\">{}</td><td>{}</td></tr>",
                    row["hops"],
                    xml(&cells.join(", "))
                );
            }
            s.push_str("</table>\n");
        }
    }
    // 3. Charts.
    s.push_str("<h2>3. Charts</h2>\n");
    let _ = writeln!(s, "<p><small>{}</small></p>", xml(h.chart_notes));
    for (t, svg) in &h.charts {
        let body = svg
            .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
            .trim();
        let _ = writeln!(s, "<h3>{}</h3>\n<div class=\"chart\">{body}</div>", xml(t));
    }
    // 4. Transfers.
    transfers(&mut s, h);
    // 5. Exits.
    let _ = writeln!(
        s,
        "<h2>5. Where the {} trace ended at labelled addresses</h2>",
        xml(h.policy)
    );
    if let Some(r) = c.results.iter().find(|r| r.policy == h.policy) {
        deposit_addresses(&mut s, h, r);
        let joins: Vec<&super::case::End> =
            r.ends.iter().filter(|e| e.kind == "coinjoin").collect();
        if !joins.is_empty() {
            s.push_str("<h3>Taint that entered a CoinJoin (not followed)</h3>\n<table>\n<tr><th>output</th><th>address</th><th>amount</th><th>CoinJoin</th></tr>\n");
            for e in joins {
                let _ = write!(
                    s,
                    "<tr><td class=\"mono\">{}:{}</td><td class=\"mono\">{}</td>",
                    e.txid,
                    e.vout,
                    xml(&e.address)
                );
                num_cell(&mut s, &money(c, e.amount));
                let _ = writeln!(
                    s,
                    "<td class=\"mono\">{}</td></tr>",
                    xml(e.coinjoin.as_deref().unwrap_or(""))
                );
            }
            s.push_str("</table>\n");
        }
        let account = c.asset.is_some();
        let _ = write!(
            s,
            "<h3>Every exit</h3>\n<table>\n<tr><th>exit</th><th>{}</th>",
            if account { "transaction" } else { "output" }
        );
        s.push_str("<th>address paid</th><th>its cluster</th><th>attribution (inference: the tag, its source, confidence and file:line)</th><th>category</th><th>traced amount, of the deposit (share): on-chain, the deposit; per the model, the traced part</th><th>hop (transactions on the path)</th><th>path (transactions from a seed)</th></tr>\n");
        let mut exit_no = 0;
        for e in r.ends.iter().filter(|e| e.entity.is_some()) {
            let key = if e.kind == "exit" {
                exit_no += 1;
                format!("E{exit_no}")
            } else {
                e.kind.clone()
            };
            let _ = write!(s, "<tr><td>{}</td>", xml(&key));
            let _ = write!(
                s,
                "<td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td>",
                if account {
                    e.txid.clone()
                } else {
                    format!("{}:{}", e.txid, e.vout)
                },
                xml(&e.address),
                xml(e.cluster.as_deref().unwrap_or("—")),
                xml(&match c.attributions.get(&e.address) {
                    Some(t) => format!(
                        "tag: {} ({}, confidence {}, {})",
                        t.entity, t.source, t.confidence, t.tag
                    ),
                    None => e.entity.clone().unwrap_or_default(),
                }),
                xml(e.category.as_deref().unwrap_or(""))
            );
            let of = match e
                .output_value
                .and_then(|w| Some((w, crate::trace::percent_text(e.amount, w, 2)?)))
            {
                Some((w, p)) => {
                    format!("{} of a {} deposit ({p})", money(c, e.amount), money(c, w))
                }
                None => money(c, e.amount),
            };
            num_cell(&mut s, &of);
            let _ = writeln!(
                s,
                "<td class=\"n\">{}</td><td class=\"mono\">{}</td></tr>",
                e.hop,
                e.path.join(" → ")
            );
        }
        s.push_str("</table>\n");
    }
    limitations(&mut s, h);
    methodology(&mut s, h);
    provenance(&mut s, h);
    s.push_str("</body>\n</html>\n");
    s
}

/// (height, txid, vout, from node, an input address of it, to node, paid address) of a
/// transfer row: one row per paid output and sending node.
type TransferKey<'a> = (u64, &'a str, u32, &'a str, &'a str, &'a str, &'a str);

fn transfers(s: &mut String, h: &HtmlInput) {
    let c = h.case;
    let mut rows: BTreeMap<TransferKey, (u32, BTreeMap<&str, Amount>)> = BTreeMap::new();
    for r in &c.results {
        for e in &r.edges {
            let row = rows
                .entry((
                    e.height,
                    e.txid.as_ref(),
                    e.vout,
                    e.from.as_ref(),
                    if e.from_address.is_empty() {
                        e.from.as_ref()
                    } else {
                        e.from_address.as_ref()
                    },
                    e.to.as_ref(),
                    super::case::paid_address(e),
                ))
                .or_insert((e.time, BTreeMap::new()));
            *row.1.entry(r.policy.as_str()).or_default() += e.amount;
        }
    }
    let conserving: Vec<&str> = c
        .results
        .iter()
        .map(|r| r.policy.as_str())
        .filter(|p| *p != "poison")
        .collect();
    let poison = c.results.iter().any(|r| r.policy == "poison");
    let total = rows.len();
    let _ = writeln!(
        s,
        "<h2>4. Every transfer of the trace ({total} rows)</h2>\n<p><small>Amount of traced value each model assigns to the transfer (its share of the transaction's value), in {} with all decimals; — when the model does not follow it.{}</small></p>",
        c.unit(),
        if total > h.max_rows {
            format!(
                " <b>This table shows the first {} rows in chain order; all {total} are in edges.csv</b> (its sha256 is in section 7).",
                h.max_rows
            )
        } else {
            String::new()
        }
    );
    // The account model has transactions and accounts, not outputs and input addresses.
    let account = c.asset.is_some();
    if account {
        s.push_str("<table>\n<tr><th>transaction (its transfers: value, internal calls, SELFDESTRUCTs, token events)</th><th>height</th><th>block time (UTC)</th><th>from (the sending account; its cluster)</th><th>account paid (its cluster)</th>");
    } else {
        s.push_str("<table>\n<tr><th>output (txid:vout)</th><th>height</th><th>block time (UTC)</th><th>from (an input address of the sender; its cluster)</th><th>address paid (its cluster)</th>");
    }
    for p in &conserving {
        let _ = write!(s, "<th>{}</th>", xml(p));
    }
    if poison {
        s.push_str("<th>touched by poison</th>");
    }
    if let Some(p) = h.prices {
        let _ = write!(s, "<th>{} value ({})</th>", xml(h.policy), p.currency);
    }
    s.push_str("</tr>\n");
    for ((height, txid, vout, from, from_addr, to, paid), (time, amounts)) in
        rows.iter().take(h.max_rows)
    {
        let lf = |a: &str| match c.node_labels.get(a) {
            Some(l) => format!(
                "{}<br><small>{} ({})</small>",
                xml(a),
                xml(&l.entity),
                xml(&l.category)
            ),
            None => xml(a),
        };
        let node_cell = |addr: &str, node: &str| {
            if addr == node {
                lf(node)
            } else {
                format!("{}<br><small>cluster {}</small>", xml(addr), lf(node))
            }
        };
        let to_cell = node_cell(paid, to);
        let from_cell = node_cell(from_addr, from);
        let id = if account {
            txid.to_string()
        } else {
            format!("{txid}:{vout}")
        };
        let _ = write!(
            s,
            "<tr><td class=\"mono\">{id}</td><td class=\"n\">{height}</td><td class=\"n\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{to_cell}</td>",
            fmt::datetime(i64::from(*time)),
            from_cell,
        );
        for p in &conserving {
            match amounts.get(p) {
                Some(v) => num_cell(s, &fmt::amount(*v, c.decimals())),
                None => num_cell(s, "—"),
            }
        }
        if poison {
            let _ = write!(
                s,
                "<td>{}</td>",
                if amounts.contains_key("poison") {
                    "yes"
                } else {
                    "—"
                }
            );
        }
        if let Some(p) = h.prices {
            let v = amounts
                .get(h.policy)
                .and_then(|v| p.cents(*v, c.decimals(), i64::from(*time)));
            num_cell(s, &v.map_or_else(|| "no price".to_string(), fmt::cents));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
}

fn methodology(s: &mut String, h: &HtmlInput) {
    let c = h.case;
    s.push_str("<h2>6. Methodology</h2>\n<h3>Taint models</h3>\n<table>\n<tr><th>model</th><th>definition and source</th></tr>\n");
    for r in &c.results {
        // The definition stored with the case, as the trace used it; older cases: this
        // version's.
        let def = c.methodology.get(&r.policy).map_or_else(
            || {
                crate::trace::policy::Policy::from_name(&r.policy).map_or("", |p| {
                    if c.asset.is_some() {
                        p.account_definition()
                    } else {
                        p.definition()
                    }
                })
            },
            String::as_str,
        );
        let _ = writeln!(
            s,
            "<tr><th>{}</th><td>{}</td></tr>",
            xml(&r.policy),
            xml(def)
        );
    }
    if c.asset.is_some() {
        let from_node = c
            .parameters
            .get("opening_balances")
            .is_some_and(|v| !v.is_null());
        let seedbal = if from_node {
            "A seed account's whole balance is tainted: the node's opening balance and everything it received in the window; a seed transaction taints what it moved."
        } else {
            "A seed account's balance as the dataset shows it is tainted: everything it received in the window and that least opening balance (a genesis allocation the dataset does not show is not part of it); a seed transaction taints what it moved."
        };
        let opening = if from_node {
            "is counted as clean balance held from the start: the node's own balance at the block before the dataset's first (eth_getBalance, --opening-balances), so a genesis allocation or an older balance counts in full"
        } else {
            "is counted as clean balance held from the start, the least that explains what the account sent"
        };
        s.push_str(&"</table>\n<p>Account model: an account has one balance, not coins, so the models act on that balance. The transfers of the traced asset are replayed in chain order (block, transaction, then inside the transaction: the fee, the transaction's value, its internal transfers in call order; token events in log order), and each account keeps how much of its balance is tainted. Validator withdrawals and (with --traces parity) block rewards are clean inflows at their block. Value the dataset does not show an account receiving (genesis allocations, anything before the first ingested block) OPENING. Fees (gas used × effective gas price) are paid by the sender even when the transaction failed. Failed transactions and reverted calls move no value. SEEDBAL Every traced unit ends as an exit (a transfer into an account whose label category is a stop category), a fee, a holding (still in an account), below the minimum value, beyond the hop limit, or back in a seed. Backward, the transfers are undone newest first from the balances at the end of the window: FIFO and LIFO exactly invert the forward replay; haircut shares an account's tainted units among its earlier receipts by the balance each arrived to; taint still in an account when the window's first block is undone came from before the window (held) or, for a token, was minted (mined).</p>\n<h3>Address clustering</h3>\n".replace("OPENING", opening).replace("SEEDBAL", seedbal));
    } else {
        s.push_str("</table>\n<p>Transactions are visited in chain order (forward) or reverse chain order (backward), so each sees all the taint that reaches it before passing it on. Amounts are integers in base units; proportional splits use the largest-remainder rule. Every traced unit ends as an exit (an output at an address whose label category is a stop category, however small), a fee, a holding (unspent), spent outside the height/time window, below the minimum value, beyond the hop limit, mined, back in a seed, or entering a detected CoinJoin (unless CoinJoins were followed).</p>\n<h3>Address clustering</h3>\n");
    }
    match c.clustering.as_ref().filter(|v| !v.is_null()) {
        None => s.push_str("<p>No address clustering was used: every node of this trace is a single address.</p>\n"),
        Some(cl) => {
            let hs: Vec<String> = cl["heuristics"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let coinjoins = match cl.get("coinjoins").filter(|v| !v.is_null()) {
                Some(n) => format!("; CoinJoins detected and excluded from merging: {n}"),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "<p>Clusters: {} over {} addresses{}.</p>\n<table>\n<tr><th>heuristic</th><th>rule and source</th></tr>",
                cl["clusters"],
                cl["addresses"],
                xml(&coinjoins)
            );
            for name in &hs {
                let d = crate::cluster::heuristics::Heuristic::ALL
                    .iter()
                    .find(|x| x.name() == name)
                    .map_or_else(
                        || {
                            if name == crate::cluster::ethereum::NAME {
                                crate::cluster::ethereum::DESCRIPTION
                            } else {
                                ""
                            }
                        },
                        |x| x.description(),
                    );
                let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", xml(name), xml(d));
            }
            s.push_str("</table>\n");
            calibration_table(s, &hs);
            // Conflicts (a merge joining differently labelled actors) and collapses that
            // `chaintrace cluster` found: a defence expert's first question about a cluster.
            let warnings = cl["warnings"].as_array().map_or(&[][..], Vec::as_slice);
            if !warnings.is_empty() {
                let _ = writeln!(
                    s,
                    "<p class=\"warn\"><b>{} cluster warning(s)</b> from <code>chaintrace cluster</code>:</p>\n<ul>",
                    warnings.len()
                );
                for w in warnings {
                    let _ = writeln!(
                        s,
                        "<li>{}: {}</li>",
                        xml(w["kind"].as_str().unwrap_or("")),
                        xml(w["message"].as_str().unwrap_or(""))
                    );
                }
                s.push_str("</ul>\n");
            }
            match cl.get("evaluation").filter(|v| !v.is_null()) {
                None => s.push_str("<p>No accuracy measurement is stored for these clusters (run <code>chaintrace eval clusters</code> against a ground truth to add one).</p>\n"),
                Some(ev) => {
                    let _ = writeln!(s, "<p>Measured accuracy (<code>chaintrace eval clusters</code> against <code>{}</code>; pairwise precision and recall):</p>\n<table>\n<tr><th>heuristics</th><th>addresses</th><th>precision</th><th>recall</th><th>F1</th></tr>", xml(ev["truth"].as_str().unwrap_or("")));
                    // Only the rows of the set this case used (and the oracle): `eval
                    // clusters` may have scored other sets since.
                    let used = hs.join("+");
                    let rows: Vec<&serde_json::Value> = ev["scores"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| {
                            r["heuristics"].as_str().is_some_and(|h| {
                                h == used || h.ends_with("(oracle)") || h == "multi-input"
                            })
                        })
                        .collect();
                    if !rows.iter().any(|r| r["heuristics"].as_str() == Some(used.as_str())) {
                        let _ = writeln!(s, "<p>(The stored measurement did not score this case's set, {}; run <code>chaintrace eval clusters --set {}</code>.)</p>", xml(&used), xml(&used));
                    }
                    for row in rows {
                        let f = |k: &str| row[k].as_f64().map_or_else(String::new, |v| format!("{v:.4}"));
                        let _ = writeln!(s, "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>", xml(row["heuristics"].as_str().unwrap_or("")), row["addresses"], f("precision"), f("recall"), f("f1"));
                    }
                    s.push_str("</table>\n");
                }
            }
        }
    }
    s.push_str("<h3>Labels</h3>\n<p>Entity labels come from the tags imported with <code>chaintrace labels import</code> (TagPacks, OFAC lists, CSV); each tag keeps its source file and line in <code>labels/tags.parquet</code> of the dataset.</p>\n");
    let prefer = c.param("prefer");
    let _ = writeln!(
        s,
        "<p>Where an address carries disagreeing tags, one tag is used, chosen by this precedence: the analyst's <code>--prefer</code> list ({}), then the higher GraphSense TagPack confidence level, then the more recent <code>lastmod</code> (never the import day), then the tags' content in byte order (never file names or import order).</p>",
        xml(if prefer.is_empty() || prefer == "[]" {
            "none given"
        } else {
            &prefer
        })
    );
    if c.label_conflicts.is_empty() {
        s.push_str("<p>No address of this trace carries disagreeing tags.</p>\n");
    } else {
        let _ = writeln!(
            s,
            "<p>{} address(es) of this trace carry disagreeing tags:</p>\n<table>\n<tr><th>address</th><th>tag used</th><th>decided by</th><th>other tags</th></tr>",
            c.label_conflicts.len()
        );
        let tag = |t: &crate::labels::Tag| {
            format!(
                "{} [{}], confidence {}, {}:{}",
                t.entity, t.category, t.confidence, t.file, t.line
            )
        };
        for k in &c.label_conflicts {
            let others: Vec<String> = k.others.iter().map(tag).collect();
            let _ = writeln!(
                s,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                xml(&k.address),
                xml(&tag(&k.chosen)),
                xml(k.decided_by.describe()),
                xml(&others.join("; "))
            );
        }
        s.push_str("</table>\n");
    }
}

/// The measured error rates of the heuristics `hs` ([`crate::cluster::calibration`]): each
/// rule's merge precision on the calibration worlds and, for the default set, its
/// pairwise scores beside multi-input alone and perfect change detection.
fn calibration_table(s: &mut String, hs: &[String]) {
    use crate::cluster::calibration as cal;
    // The consensus's rates, then those of its two kinds of decision.
    let rules: Vec<(&str, &[cal::RuleRate; 3])> = hs
        .iter()
        .flat_map(|h| {
            let kinds: &[&str] = if h == "change-vote" {
                &[crate::cluster::VOTE_PRECISE, crate::cluster::VOTE_VOTES]
            } else {
                &[]
            };
            std::iter::once(h.as_str()).chain(kinds.iter().copied())
        })
        .filter_map(|h| cal::rule(h).map(|r| (h, r)))
        .collect();
    if rules.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "<p>Measured error rates of these heuristics (<code>chaintrace eval clusters</code>, {}): the share of each rule's merges that joined addresses of one entity, on worlds with a known truth (1) {}, (2) {}, (3) {}. A merge's confidence in <code>merges.parquet</code> is its rule's lowest figure.</p>\n<table>\n<tr><th>heuristic</th><th>merges (1)</th><th>precision (1)</th><th>merges (2)</th><th>precision (2)</th><th>merges (3)</th><th>precision (3)</th></tr>",
        cal::MEASURED_ON,
        xml(cal::WORLDS[0]),
        xml(cal::WORLDS[1]),
        xml(cal::WORLDS[2])
    );
    for (h, r) in &rules {
        let _ = write!(s, "<tr><th>{}</th>", xml(h));
        for x in r.iter() {
            let _ = write!(
                s,
                "<td class=\"n\">{}</td><td class=\"n\">{:.4}</td>",
                x.merges, x.precision
            );
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    let default: Vec<&str> = crate::cluster::heuristics::Heuristic::DEFAULT
        .iter()
        .map(|h| h.name())
        .collect();
    if hs.iter().map(String::as_str).eq(default.iter().copied()) {
        s.push_str("<p>Pairwise scores of this set beside multi-input alone and perfect change detection (every true change output linked):</p>\n<table>\n<tr><th>world</th><th>set</th><th>precision</th><th>recall</th><th>F1</th><th>false merges per 1,000</th></tr>\n");
        for (w, world) in cal::WORLDS.iter().enumerate() {
            for (name, rows) in [
                ("multi-input", &cal::MULTI_INPUT),
                ("this set", &cal::DEFAULT_SET),
                ("perfect change (oracle)", &cal::ORACLE),
            ] {
                let r = rows[w];
                let _ = writeln!(
                    s,
                    "<tr><td>({}) {}</td><td>{}</td><td class=\"n\">{:.4}</td><td class=\"n\">{:.4}</td><td class=\"n\">{:.4}</td><td class=\"n\">{}</td></tr>",
                    w + 1,
                    xml(world),
                    name,
                    r.precision,
                    r.recall,
                    r.f1,
                    r.false_merges_per_1000
                        .map_or_else(|| "—".to_string(), |f| format!("{f:.2}"))
                );
            }
        }
        s.push_str("</table>\n");
    }
}

/// What the case cannot show, in one list a reader sees before the methodology.
fn limitations(s: &mut String, h: &HtmlInput) {
    s.push_str("<h2>Limitations</h2>\n<ul>\n");
    for i in limitation_items(h.case, h.policy) {
        let _ = writeln!(s, "<li>{}</li>", xml(&i));
    }
    s.push_str("</ul>\n");
}

/// What a case cannot show, as sentences (the HTML and PDF exhibits list them).
pub fn limitation_items(c: &Case, policy: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    items.push(format!(
        "Only the chain data in the dataset was read (heights followed: {}; dataset manifest sha256 {}): transactions outside it, and anything off-chain, are not seen.",
        c.param("followed_heights"),
        c.dataset_manifest_sha256
    ));
    if let Some(list) = c
        .parameters
        .get("incomplete_internal_transfers")
        .and_then(|v| v.as_array())
    {
        let shown: Vec<&str> = list.iter().filter_map(|v| v.as_str()).take(10).collect();
        items.push(format!(
            "{} internal transfer(s) moved an amount the node's call traces did not give (old geth and one reth release leave it out of SELFDESTRUCT frames): {}{}. Each emptied its contract by an amount the dataset does not know: taint that reached one ends there, counted as \"through an unresolved transfer\" in the totals, and is not followed to the beneficiary. Re-ingest with a node whose traces are complete (or --traces parity) to close this.",
            list.len(),
            shown.join("; "),
            if list.len() > shown.len() { "; …" } else { "" }
        ));
    }
    if c.parameters.get("call_traces").and_then(|v| v.as_str()) == Some("none") {
        items.push("The dataset was ingested without call traces (--traces none): ETH moved by internal calls (contracts forwarding it, SELFDESTRUCTs) is not in it, so a contract may appear to hold value it passed on. Re-ingest with --traces geth or --traces parity, and check it with chaintrace check ethereum.".into());
    }
    if let Some(n) = c.parameters.get("dataset_neighbourhood") {
        let s = |k: &str| n[k].as_str().unwrap_or("?").to_string();
        items.push(format!(
            "The dataset is a neighbourhood fetched from the third-party Esplora API {} at {} (its tip then: block {} {}): only the transactions within {} hops {} of the seeds, following every output or input except those at stop-category addresses{}. The API's answers were checked for form and each transaction against its raw bytes, not against a node of your own. Clusters, balances and labels beyond the neighbourhood are not seen; no change heuristic judged a transaction with inputs from outside it.",
            s("api"),
            s("fetched_at"),
            n["tip_height"],
            s("tip_hash"),
            n["max_hops"],
            s("direction"),
            match n["min_value"].as_u64() {
                Some(0) | None => String::new(),
                Some(v) => format!(" or below {v} sat"),
            }
        ));
    } else if let Some(h) = c
        .parameters
        .get("dataset_first_height")
        .and_then(|v| v.as_u64())
    {
        items.push(format!(
            "The dataset is a height window starting at block {h}: inputs spending older outputs have no origin in it (a backward trace ends there, as \"from outside the dataset\", naming the outpoint), clusters hold only what the window shows (their sizes and balances cover it only), and no change heuristic judged a transaction with such inputs."
        ));
    }
    items.push("On-chain facts (which transaction paid which address how much) are exact. Attributions (which entity an address belongs to) are inferences from the tags' sources, each with its confidence; clusters are inferences from heuristics. Amounts per model are attributions of a model, not facts: the models disagree where the money was mixed.".to_string());
    match c.clustering.as_ref().filter(|v| !v.is_null()) {
        Some(cl) if cl.get("evaluation").is_some_and(|e| !e.is_null()) => items.push(
            "Clustering's error was measured against a ground truth (see Methodology); on other data it may differ.".into(),
        ),
        Some(_) => items.push(
            "Clustering was used but its error rate was not measured on this data (run chaintrace eval clusters against a ground truth).".into(),
        ),
        None => {}
    }
    if let Some(r) = c.results.iter().find(|r| r.policy == policy) {
        let t = &r.totals;
        let open: Vec<String> = [
            ("still held", t.holdings),
            ("spent outside the window", t.outside_window),
            ("from outside the dataset", t.before_window),
            ("through an unresolved transfer", t.unresolved),
            ("beyond the hop limit", t.hop_limit),
            ("below the minimum value", t.below_min),
            ("entered CoinJoins", t.coinjoins),
        ]
        .iter()
        .filter(|x| x.1 > 0)
        .map(|(w, v)| format!("{} {w}", money(c, *v)))
        .collect();
        if !open.is_empty() {
            items.push(format!(
                "Under {}, value the trace did not follow to an end: {}.",
                policy,
                open.join("; ")
            ));
        }
    }
    if c.param("include_private") != "true" && c.param("labels_private_ignored") != "0" {
        items.push(format!(
            "{} non-public tag(s) were left out.",
            c.param("labels_private_ignored")
        ));
    }
    if !c.label_conflicts.is_empty() {
        items.push(format!(
            "{} address(es) of the trace carry disagreeing tags; one was used by the stated precedence (see Labels).",
            c.label_conflicts.len()
        ));
    }
    items
}

/// Per receiving entity, the addresses it was paid at (deposit addresses: where a
/// records request to the service names a customer), with the traced amount, the number of
/// payments and the first and last day.
fn deposit_addresses(s: &mut String, h: &HtmlInput, r: &super::case::PolicyResult) {
    let c = h.case;
    let d = super::deposits(c, r);
    if d.entities.is_empty() {
        return;
    }
    s.push_str("<h3>Deposit addresses to request records for</h3>\n<p><small>Each address the traced value was paid to at a labelled entity (on-chain fact: these transactions paid these addresses; the entity is the label's attribution), largest first. A records request to the entity for an address names the customer it belongs to.</small></p>\n");
    if d.thin.0 > 0 {
        let _ = writeln!(
            s,
            "<p class=\"warn\">{} exit(s) carry under 1 % of their deposit ({} in all): the model spread the seeds' value thinly there; read them with care.</p>",
            d.thin.0,
            money(c, d.thin.1)
        );
    }
    if d.hidden.0 > 0 {
        let _ = writeln!(
            s,
            "<p>{} exit(s) below --min-share {} % ({}) are left out of this list (not out of the totals).</p>",
            d.hidden.0,
            xml(&c.param("min_share_percent")),
            money(c, d.hidden.1)
        );
    }
    for ((ent, cat), total, addrs) in &d.entities {
        let _ = writeln!(
            s,
            "<h4>{} ({}) — {} to {} address(es)</h4>\n<table>\n<tr><th>address</th><th>traced amount</th><th>payments</th><th>first (UTC)</th><th>last (UTC)</th></tr>",
            xml(ent),
            xml(cat),
            xml(&money(c, *total)),
            addrs.len()
        );
        for x in addrs {
            let _ = write!(s, "<tr><td class=\"mono\">{}</td>", xml(x.address));
            num_cell(s, &money(c, x.amount));
            let _ = writeln!(
                s,
                "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                x.payments,
                fmt::datetime(i64::from(x.first)),
                fmt::datetime(i64::from(x.last))
            );
        }
        s.push_str("</table>\n");
    }
}

fn provenance(s: &mut String, h: &HtmlInput) {
    let c = h.case;
    if !h.canvas_notes.is_empty() {
        s.push_str("<h2>Examiner's notes on the chart</h2>\n<p><small>Written on the canvas (<code>chaintrace serve</code>) and saved in the case's <code>annotations.json</code>, whose sha256 the audit trail records.</small></p>\n<table>\n<tr><th>on</th><th>note</th></tr>\n");
        for (on, note) in h.canvas_notes {
            let _ = writeln!(
                s,
                "<tr><td class=\"mono\">{}</td><td>{}</td></tr>",
                xml(on),
                xml(note)
            );
        }
        s.push_str("</table>\n");
    }
    let shown: Vec<&crate::case::Entry> = h.audit.iter().filter(|e| e.action != "report").collect();
    if !shown.is_empty() {
        s.push_str("<h2>Audit trail</h2>\n<p><small>From the case's <code>audit.jsonl</code>, an append-only log in which each entry holds the sha256 of the one before it (<code>chaintrace case verify</code> checks the chain, the files' hashes, and runs the trace again). Reports are logged there too.</small></p>\n<table>\n<tr><th>#</th><th>time (UTC)</th><th>action</th><th>command or note</th><th>tool</th></tr>\n");
        for e in shown {
            let what = match &e.note {
                Some(n) => n.clone(),
                None => crate::cli::shell_words(&e.command),
            };
            let _ = writeln!(
                s,
                "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                e.seq,
                xml(&e.time),
                xml(&e.action),
                xml(&what),
                xml(&e.tool)
            );
        }
        s.push_str("</table>\n");
        if h.canvas_requests > 0 {
            let _ = writeln!(
                s,
                "<p><small>The canvas answered {} request(s) on this case, each logged in <code>audit.jsonl</code> (<code>chaintrace case log</code> lists them).</small></p>",
                h.canvas_requests
            );
        }
    }
    s.push_str("<h2>7. Provenance</h2>\n<table>\n");
    let rows = [
        (
            "Report written by",
            format!("chaintrace {}", crate::VERSION),
        ),
        ("Trace written by", c.tool.clone()),
        ("Trace command", c.command.join(" ")),
        ("Report command", h.command.join(" ")),
        ("Dataset", c.data.clone().unwrap_or_default()),
        ("Dataset manifest sha256", c.dataset_manifest_sha256.clone()),
        ("trace.json sha256", c.trace_sha256.clone()),
        ("Generated", h.generated.to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(
            s,
            "<tr><th>{}</th><td class=\"mono\">{}</td></tr>",
            xml(k),
            xml(&v)
        );
    }
    for (name, hash) in &c.inputs {
        let _ = writeln!(
            s,
            "<tr><th>Input read by the trace: {}</th><td class=\"mono\">sha256 {hash}</td></tr>",
            xml(name)
        );
    }
    s.push_str("</table>\n<h3>Files produced with this report</h3>\n<table>\n<tr><th>file</th><th>bytes</th><th>sha256</th></tr>\n");
    for (f, h2, n) in h.files {
        let _ = writeln!(
            s,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{n}</td><td class=\"mono\">{h2}</td></tr>",
            xml(f)
        );
    }
    s.push_str("</table>\n<p><small>This file's own hash is in <code>SHA256SUMS</code> beside it. Running the same report command on the same case gives byte-identical files; only the generation time differs unless it is pinned with <code>--timestamp</code>.</small></p>\n");
}
