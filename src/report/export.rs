//! Exports of a trace: CSV (nodes, edges), GraphML (Gephi, yEd), DOT (Graphviz) and JSON.
//! They hold every transfer at address (or cluster) level, not the chart's grouping.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::case::{Case, PolicyResult};
use super::fmt;
use crate::trace::Amount;

/// A node of the exports: an address or cluster of the trace.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ExportNode {
    pub id: String,
    pub entity: Option<String>,
    pub category: Option<String>,
    pub seed: bool,
    /// Per policy: (sent, received).
    pub flows: BTreeMap<String, (Amount, Amount)>,
}

/// The nodes of all policies, in id order.
pub fn nodes(case: &Case) -> Vec<ExportNode> {
    let mut m: BTreeMap<String, ExportNode> = BTreeMap::new();
    let node = |m: &mut BTreeMap<String, ExportNode>, id: &str| {
        if !m.contains_key(id) {
            let l = case.node_labels.get(id);
            m.insert(
                id.to_string(),
                ExportNode {
                    id: id.to_string(),
                    entity: l.map(|l| l.entity.clone()),
                    category: l.map(|l| l.category.clone()),
                    seed: case.seed_nodes.iter().any(|s| s == id),
                    flows: BTreeMap::new(),
                },
            );
        }
    };
    for s in &case.seed_nodes {
        node(&mut m, s);
    }
    for r in &case.results {
        for e in &r.edges {
            node(&mut m, &e.from);
            node(&mut m, &e.to);
            if let Some(n) = m.get_mut(&*e.from) {
                n.flows.entry(r.policy.clone()).or_default().0 += e.amount;
            }
            if let Some(n) = m.get_mut(&*e.to) {
                n.flows.entry(r.policy.clone()).or_default().1 += e.amount;
            }
        }
    }
    m.into_values().collect()
}

/// Quotes a CSV field when needed.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `nodes.csv`: one row per node and policy.
pub fn nodes_csv(case: &Case, nodes: &[ExportNode]) -> String {
    let mut s =
        String::from("node,entity,category,seed,policy,sent_units,received_units,sent,received\n");
    for n in nodes {
        let policies: Vec<String> = if n.flows.is_empty() {
            vec![String::new()]
        } else {
            n.flows.keys().cloned().collect()
        };
        for p in policies {
            let (sent, rec) = n.flows.get(&p).copied().unwrap_or_default();
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{}",
                csv_field(&n.id),
                csv_field(n.entity.as_deref().unwrap_or("")),
                csv_field(n.category.as_deref().unwrap_or("")),
                n.seed,
                p,
                sent,
                rec,
                fmt::amount(sent, case.decimals()),
                fmt::amount(rec, case.decimals())
            );
        }
    }
    s
}

/// `edges.csv`: every transfer of every policy, with fiat when prices are given.
pub fn edges_csv(case: &Case, prices: Option<&fmt::Prices>) -> String {
    let mut s = String::from(
        "policy,txid,vout,height,time,from,from_address,to,to_address,amount_units,amount,output_value_units,hop",
    );
    if let Some(p) = prices {
        let _ = write!(s, ",value_{}", p.currency.to_ascii_lowercase());
    }
    s.push('\n');
    for r in &case.results {
        for e in &r.edges {
            let _ = write!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.policy,
                e.txid,
                e.vout,
                e.height,
                fmt::datetime(i64::from(e.time)),
                csv_field(&e.from),
                csv_field(if e.from_address.is_empty() {
                    &e.from
                } else {
                    &e.from_address
                }),
                csv_field(&e.to),
                csv_field(super::case::paid_address(e)),
                e.amount,
                fmt::amount(e.amount, case.decimals()),
                e.output_value.map_or_else(String::new, |v| v.to_string()),
                e.hop
            );
            if let Some(p) = prices {
                let v = p.cents(e.amount, case.decimals(), i64::from(e.time));
                let _ = write!(
                    s,
                    ",{}",
                    v.map(|c| fmt::cents(c).replace(',', ""))
                        .unwrap_or_default()
                );
            }
            s.push('\n');
        }
    }
    s
}

/// Escapes XML text.
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// The nodes that take part in `r`: an end of one of its transfers, or a seed.
fn in_result<'a>(
    case: &'a Case,
    r: &'a PolicyResult,
    nodes: &'a [ExportNode],
) -> impl Iterator<Item = &'a ExportNode> {
    let used: std::collections::BTreeSet<&str> = r
        .edges
        .iter()
        .flat_map(|e| [e.from.as_ref(), e.to.as_ref()])
        .chain(case.seed_nodes.iter().map(String::as_str))
        .collect();
    nodes.iter().filter(move |n| used.contains(n.id.as_str()))
}

/// GraphML of one policy's transfers (one edge per transfer).
pub fn graphml(case: &Case, r: &PolicyResult, nodes: &[ExportNode]) -> String {
    let mut s = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" ",
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ",
        "xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
        "  <key id=\"label\" for=\"node\" attr.name=\"label\" attr.type=\"string\"/>\n",
        "  <key id=\"entity\" for=\"node\" attr.name=\"entity\" attr.type=\"string\"/>\n",
        "  <key id=\"category\" for=\"node\" attr.name=\"category\" attr.type=\"string\"/>\n",
        "  <key id=\"seed\" for=\"node\" attr.name=\"seed\" attr.type=\"boolean\"/>\n",
        "  <key id=\"received\" for=\"node\" attr.name=\"received_units\" attr.type=\"long\"/>\n",
        "  <key id=\"sent\" for=\"node\" attr.name=\"sent_units\" attr.type=\"long\"/>\n",
        "  <key id=\"txid\" for=\"edge\" attr.name=\"txid\" attr.type=\"string\"/>\n",
        "  <key id=\"height\" for=\"edge\" attr.name=\"height\" attr.type=\"long\"/>\n",
        "  <key id=\"time\" for=\"edge\" attr.name=\"time\" attr.type=\"string\"/>\n",
        "  <key id=\"amount\" for=\"edge\" attr.name=\"amount_units\" attr.type=\"long\"/>\n",
        "  <key id=\"hop\" for=\"edge\" attr.name=\"hop\" attr.type=\"long\"/>\n",
    ));
    let _ = writeln!(
        s,
        "  <graph id=\"{}\" edgedefault=\"directed\">",
        xml(&format!("{} {}", case.network, r.policy))
    );
    for n in in_result(case, r, nodes) {
        let (sent, rec) = n.flows.get(&r.policy).copied().unwrap_or_default();
        let _ = writeln!(s, "    <node id=\"{}\">", xml(&n.id));
        let label = n.entity.clone().unwrap_or_else(|| n.id.clone());
        let _ = writeln!(s, "      <data key=\"label\">{}</data>", xml(&label));
        if let Some(e) = &n.entity {
            let _ = writeln!(s, "      <data key=\"entity\">{}</data>", xml(e));
        }
        if let Some(c) = &n.category {
            let _ = writeln!(s, "      <data key=\"category\">{}</data>", xml(c));
        }
        let _ = writeln!(s, "      <data key=\"seed\">{}</data>", n.seed);
        let _ = writeln!(s, "      <data key=\"received\">{rec}</data>");
        let _ = writeln!(s, "      <data key=\"sent\">{sent}</data>");
        s.push_str("    </node>\n");
    }
    for (i, e) in r.edges.iter().enumerate() {
        let _ = writeln!(
            s,
            "    <edge id=\"e{i}\" source=\"{}\" target=\"{}\">",
            xml(&e.from),
            xml(&e.to)
        );
        let _ = writeln!(s, "      <data key=\"txid\">{}</data>", e.txid);
        let _ = writeln!(s, "      <data key=\"height\">{}</data>", e.height);
        let _ = writeln!(
            s,
            "      <data key=\"time\">{}</data>",
            fmt::datetime(i64::from(e.time))
        );
        let _ = writeln!(s, "      <data key=\"amount\">{}</data>", e.amount);
        let _ = writeln!(s, "      <data key=\"hop\">{}</data>", e.hop);
        s.push_str("    </edge>\n");
    }
    s.push_str("  </graph>\n</graphml>\n");
    s
}

/// DOT of one policy's transfers.
pub fn dot(case: &Case, r: &PolicyResult, nodes: &[ExportNode]) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut s = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box, fontname=\"DejaVu Sans\"];\n",
        q(&format!("{} {}", case.network, r.policy))
    );
    for n in in_result(case, r, nodes) {
        let label = match (&n.entity, &n.category) {
            (Some(e), Some(c)) => format!("{e}\n{c}\n{}", n.id),
            _ => n.id.clone(),
        };
        let colour = if n.seed {
            ", color=red"
        } else if n.entity.is_some() {
            ", color=blue"
        } else {
            ""
        };
        let _ = writeln!(s, "  {} [label={}{colour}];", q(&n.id), q(&label));
    }
    for e in &r.edges {
        let label = format!(
            "{} {}\n{}\n{}",
            fmt::amount(e.amount, case.decimals()),
            case.unit(),
            fmt::date(i64::from(e.time)),
            &e.txid[..16.min(e.txid.len())]
        );
        let _ = writeln!(s, "  {} -> {} [label={}];", q(&e.from), q(&e.to), q(&label));
    }
    s.push_str("}\n");
    s
}
