"""Writes src/cluster/calibration.rs and the tables of docs/CLUSTERING.md from three
`chaintrace --json eval clusters` outputs (world A, default preset, adversarial preset).
Usage: generate.py A.json DEFAULT.json ADVERSARIAL.json DATE  (run by run.sh)."""
import json
import re
import sys

a, d, adv, date = sys.argv[1:5]
W = [(a, "World A (real Bitcoin Core, regtest)",
      "regtest world A: real Bitcoin Core wallets (v30.99), 2,894 transactions, ground_truth/addresses.csv"),
     (d, "Simulated, default preset", "simulate --txs 50000 --seed 7 --preset default"),
     (adv, "Simulated, adversarial preset", "simulate --txs 50000 --seed 7 --preset adversarial")]
rows = [{r["heuristics"]: r for r in json.load(open(f))} for f, _, _ in W]
ORACLE = "multi-input+perfect-change (oracle)"
DEFAULT = "multi-input+change-vote"
names = [h["heuristics"].split("+")[-1] for h in json.load(open(a))
         if h["heuristics"].count("+") <= 1 and h["heuristics"] != ORACLE
         and not h["heuristics"].startswith("stored:")]


# The consensus's merges by kind of decision (precise rules agreed, or votes), measured in
# the default set's row.
KINDS = ["change-vote/precise", "change-vote/votes"]


def key(n):
    if n in KINDS:
        return DEFAULT
    return n if n == "multi-input" else f"multi-input+{n}"


def rule(w, n):
    return rows[w][key(n)]["by_rule"].get(n, {"merges": 0, "precision": 1.0})


out = ['''//! Measured error rates of the clustering heuristics: each rule's merge precision, and
//! pairwise scores of multi-input, the default set and the oracle of perfect change
//! detection, measured with `chaintrace eval clusters` on one real-node world and two
//! simulated ones (`contrib/calibrate/run.sh` writes this file). `merges.parquet` records a
//! merge's rule with these figures, `cluster show` names a cluster's weakest link by them,
//! and the evidence report prints them for the heuristics a case used. A test re-measures
//! world A and checks them.

/// When the figures were measured.''',
       f'pub const MEASURED_ON: &str = "{date}";', "",
       "/// The worlds measured, in the order of the figures below.",
       "pub const WORLDS: [&str; 3] = ["]
out += [f'    "{x}",' for _, _, x in W]
out.append('''];

/// A rule's merges on one world: how many joined two addresses of the truth, and the
/// share of those that joined one entity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleRate {
    pub merges: u64,
    pub precision: f64,
}

/// Pairwise scores of a heuristic set on one world.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SetRate {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub homogeneity: f64,
    pub completeness: f64,
    /// `None` for a row without merges of its own (the oracle).
    pub false_merges_per_1000: Option<f64>,
}

/// Each rule's merge precision on the three [`WORLDS`] (measured with multi-input plus
/// the rule alone), then the consensus's merges by kind of decision (`change-vote/precise`:
/// precise rules agreed; `change-vote/votes`: the votes decided), measured in the default
/// set.''')
out.append(f"pub const RULES: [(&str, [RuleRate; 3]); {len(names) + len(KINDS)}] = [")
for n in names + KINDS:
    out.append(f'    ("{n}", [')
    for w in range(3):
        r = rule(w, n)
        out.append(f"        RuleRate {{ merges: {r['merges']}, precision: {r['precision']:.4f} }},")
    out.append("    ]),")
out.append("];")
for label, k, const in [("multi-input alone", "multi-input", "MULTI_INPUT"),
                        ("the default set (multi-input + change-vote)", DEFAULT, "DEFAULT_SET"),
                        ("perfect change detection (the oracle: multi-input plus every true change output)", ORACLE, "ORACLE")]:
    out.append(f"\n/// Pairwise scores of {label} on the three [`WORLDS`].")
    out.append(f"pub const {const}: [SetRate; 3] = [")
    for w in range(3):
        r = rows[w][k]
        fm = r["false_merges_per_1000"]
        out.append("    SetRate { " + ", ".join(
            f"{f}: {r[f]:.4f}" for f in ["precision", "recall", "f1", "homogeneity", "completeness"])
            + (f", false_merges_per_1000: Some({fm:.4f})" if fm is not None else ", false_merges_per_1000: None") + " },")
    out.append("];")
out.append('''
/// The measured rates of rule `name`, if it was measured.
pub fn rule(name: &str) -> Option<&'static [RuleRate; 3]> {
    RULES.iter().find(|(n, _)| *n == name).map(|(_, r)| r)
}

/// The lowest merge precision of rule `name` over the worlds it fired on: the
/// conservative confidence of one of its merges. `None` for a rule never measured or one
/// that fired on none of the worlds (the round-in-fiat rule: they have no prices).
pub fn confidence(name: &str) -> Option<f64> {
    let fired: Vec<f64> = rule(name)?
        .iter()
        .filter(|x| x.merges > 0)
        .map(|x| x.precision)
        .collect();
    (!fired.is_empty()).then(|| fired.into_iter().fold(1.0, f64::min))
}''')
open("src/cluster/calibration.rs", "w").write("\n".join(out) + "\n")

T = [f"Measured on {date}.", "",
     "| set | " + " | ".join(f"{n}: precision · recall · false/1000" for _, n, _ in W) + " |",
     "|---|---|---|---|"]
for n in names + ["perfect-change (oracle)"]:
    k = ORACLE if n.startswith("perfect") else key(n)
    def fm(r):
        return "—" if r["false_merges_per_1000"] is None else f"{r['false_merges_per_1000']:.2f}"
    cells = [f"{rows[w][k]['precision']:.4f} · {rows[w][k]['recall']:.4f} · {fm(rows[w][k])}" for w in range(3)]
    label = "**+ change-vote (default)**" if n == "change-vote" else ("multi-input" if n == "multi-input" else "+ " + n)
    T.append(f"| {label} | " + " | ".join(cells) + " |")
T += ["", "The oracle links every true change output to its transaction's first input: what perfect",
      "change detection would reach. Half its gain over multi-input is the target of issue 19.", "",
      "| world | multi-input | default set | oracle | half the gain | met |", "|---|---|---|---|---|---|"]
for w, (_, n, _) in enumerate(W):
    mi, dd, o = rows[w]["multi-input"]["recall"], rows[w][DEFAULT]["recall"], rows[w][ORACLE]["recall"]
    p = rows[w][DEFAULT]["precision"]
    half = mi + 0.5 * (o - mi)
    T.append(f"| {n} | {mi:.4f} | {dd:.4f} (precision {p:.4f}) | {o:.4f} | {half:.4f} | "
             f"{'yes' if dd >= half and p >= 0.97 else 'no'} ({(dd - mi) / (o - mi) * 100:.0f} % of the gain) |")
T += ["", "Each rule's merge precision (its own merges only; the last two rows split the",
      "consensus's merges by what decided them, the confidence its merges record):", "",
      "| rule | " + " | ".join(f"{n}: merges · precision" for _, n, _ in W) + " | confidence (lowest) |",
      "|---|---|---|---|---|"]
for n in names + KINDS:
    cells, low = [], None
    for w in range(3):
        r = rule(w, n)
        if r["merges"] > 0:
            cells.append(f"{r['merges']:,} · {r['precision']:.4f}")
            low = r["precision"] if low is None else min(low, r["precision"])
        else:
            cells.append("0 · —")
    T.append(f"| {n} | " + " | ".join(cells) + f" | {'—' if low is None else f'{low:.4f}'} |")
doc = open("docs/CLUSTERING.md").read()
doc = re.sub(r"<!-- tables:begin -->.*<!-- tables:end -->",
             "<!-- tables:begin -->\n" + "\n".join(T) + "\n<!-- tables:end -->", doc, flags=re.S)
open("docs/CLUSTERING.md", "w").write(doc)
