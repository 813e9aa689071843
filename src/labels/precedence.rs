//! Which tag counts when an address carries several: one documented precedence, used by
//! every stage (trace on both chains, stats, cluster conflicts, report, `labels conflicts`).
//!
//! Tags of one address are ranked by, in order:
//! 1. `--prefer`: the analyst's explicit list of sources or label files, earliest first. A
//!    tag matches an entry equal to its `source`, its file (as stored: the canonical path),
//!    or its file's name. Tags matching no entry rank after all that match one.
//! 2. Confidence level: the GraphSense TagPack confidence id's level
//!    ([`CONFIDENCE`], 14 ids on 9 levels); an id outside the table ranks lowest (0).
//! 3. Recency: the tag's `lastmod` date (TagPack `lastmod`, CSV `lastmod` column), newer
//!    first; a tag without one ranks after every dated tag (when or in which order files
//!    were imported never decides).
//! 4. A tie on all three is broken by the tag's own content — a tag with a category before
//!    one without, then category, entity, label, source in byte order — never by file name
//!    or import order, so renaming or reordering files cannot change an answer. Such ties
//!    are reported as conflicts "decided by tie".
//!
//! An address is *in conflict* when its tags (those in use: public ones, and private ones
//! with `--include-private`) disagree on the entity or the category, compared without case.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Tag;

/// GraphSense TagPack confidence ids and their levels (0–100), from the TagPack schema's
/// `confidence.csv` (graphsense-tagpack-tool): 14 ids on 9 levels.
pub const CONFIDENCE: [(&str, u8); 14] = [
    ("override", 100),
    ("ownership", 100),
    ("ledger_immanent", 100),
    ("manual_transaction", 90),
    ("service_api", 70),
    ("forensic_investigation", 70),
    ("authority_data", 60),
    ("trusted_provider", 50),
    ("service_data", 50),
    ("forensic", 50),
    ("untrusted_transaction", 40),
    ("web_crawl", 20),
    ("heuristic", 10),
    ("unknown", 5),
];

/// The level (0–100) of a GraphSense confidence id, or `None` for an id outside the table.
pub fn confidence_level(id: &str) -> Option<u8> {
    CONFIDENCE
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(id.trim()))
        .map(|&(_, level)| level)
}

/// Which tags are used and how conflicts are decided.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// Use tags marked non-public (TagPack `is_public: false`, CSV `is_public` false) too.
    pub include_private: bool,
    /// Sources or label files to prefer, strongest first (see the module docs).
    pub prefer: Vec<String>,
}

/// The rule that chose a tag over a disagreeing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Prefer,
    Confidence,
    Recency,
    Tie,
}

impl Rule {
    /// The rule in words.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Prefer => "--prefer",
            Rule::Confidence => "higher confidence",
            Rule::Recency => "more recent",
            Rule::Tie => "tie (content order)",
        }
    }
}

/// Tags of one address that disagree, with the one in use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conflict {
    pub chain: String,
    pub address: String,
    /// The tag in use.
    pub chosen: Tag,
    /// The rule that put `chosen` before the best disagreeing tag.
    pub decided_by: Rule,
    /// The other tags of the address, best first.
    pub others: Vec<Tag>,
}

/// The tags in use, one per address, after precedence.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Resolved {
    /// One tag per (chain, address), sorted by chain then address.
    pub chosen: Vec<Tag>,
    /// Addresses whose tags disagree, sorted by chain then address.
    pub conflicts: Vec<Conflict>,
    /// Tags left out because they are not public and `include_private` is off.
    pub private_ignored: usize,
    pub selection: Selection,
}

/// A category that only tags which lost a conflict carry ([`Resolved::lost_only`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostOnly {
    /// Addresses whose losing tags carry it.
    pub addresses: usize,
    /// One of them: `ADDRESS uses ENTITY [CATEGORY] instead`.
    pub example: String,
}

impl std::fmt::Display for LostOnly {
    /// What an analyst asking for the category is told, and what to do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "only tags that lost a conflict carry it, at {} address(es) (e.g. {}); `chaintrace labels conflicts` shows them and the rule that decided each; add --prefer SOURCE|FILE to use those tags",
            self.addresses, self.example
        )
    }
}

impl Resolved {
    /// The categories the losing tags of conflicts carry where the chosen tag does not,
    /// by category: asking for one is then explained (it lost), never reported absent.
    pub fn lost_only(&self) -> BTreeMap<String, LostOnly> {
        let mut out: BTreeMap<String, LostOnly> = BTreeMap::new();
        for c in &self.conflicts {
            let lost: std::collections::BTreeSet<&str> = c
                .others
                .iter()
                .map(|o| &*o.category)
                .filter(|o| *o != &*c.chosen.category)
                .collect();
            for cat in lost {
                out.entry(cat.to_string())
                    .or_insert_with(|| LostOnly {
                        addresses: 0,
                        example: format!(
                            "{} uses {} [{}] instead",
                            c.address, c.chosen.entity, c.chosen.category
                        ),
                    })
                    .addresses += 1;
            }
        }
        out
    }

    /// The conflicts of the given addresses (of `chain`), in address order.
    pub fn conflicts_of<'a>(
        &'a self,
        chain: &'a str,
        addresses: &'a std::collections::BTreeSet<String>,
    ) -> impl Iterator<Item = &'a Conflict> + 'a {
        self.conflicts
            .iter()
            .filter(move |c| c.chain == chain && addresses.contains(&c.address))
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn days(date: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(
        d.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?)
            .num_days(),
    )
}

/// The rank of a tag: smaller is stronger. Its parts are the four rules, in order.
type Rank<'a> = (
    usize,
    Reverse<u8>,
    Reverse<i64>,
    bool,
    (&'a str, &'a str, &'a str, &'a str),
);

fn rank<'a>(t: &'a Tag, prefer: &[String]) -> Rank<'a> {
    let file_name = std::path::Path::new(&*t.file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let preferred = prefer
        .iter()
        .position(|p| {
            **p == *t.source || **p == *t.file || (!file_name.is_empty() && p == file_name)
        })
        .unwrap_or(prefer.len());
    let recency = t.lastmod.as_deref().and_then(days).unwrap_or(i64::MIN);
    (
        preferred,
        Reverse(confidence_level(&t.confidence).unwrap_or(0)),
        Reverse(recency),
        // A tag without a category never wins a tie over one that has one.
        t.category.trim().is_empty(),
        (&t.category, &t.entity, &t.label, &t.source),
    )
}

fn same_attribution(a: &Tag, b: &Tag) -> bool {
    a.entity.trim().eq_ignore_ascii_case(b.entity.trim())
        && a.category.trim().eq_ignore_ascii_case(b.category.trim())
}

/// Applies the precedence to stored tags (`(tag, imported_at_ms)`, any order; the import
/// time is not used) of `chain`
/// (`bitcoin` or `ethereum`; `None`: both).
pub fn resolve(tags: &[(Tag, i64)], chain: Option<&str>, selection: &Selection) -> Resolved {
    let (chosen, mut out) = resolve_indices(tags, chain, selection);
    out.chosen = chosen.into_iter().map(|i| tags[i].0.clone()).collect();
    out
}

/// [`resolve`] taking the tags: the chosen ones are moved, not copied (a label file's tags
/// are then in memory once, not twice).
pub fn resolve_owned(
    tags: Vec<(Tag, i64)>,
    chain: Option<&str>,
    selection: &Selection,
) -> Resolved {
    let (chosen, mut out) = resolve_indices(&tags, chain, selection);
    let mut keep = vec![false; tags.len()];
    for &i in &chosen {
        keep[i] = true;
    }
    let mut kept: Vec<Tag> = tags
        .into_iter()
        .zip(keep)
        .filter_map(|((t, _), k)| k.then_some(t))
        .collect();
    // One chosen tag per (chain, address): this is the order of `chosen`.
    kept.sort_unstable_by(|a, b| (&a.chain, &a.address).cmp(&(&b.chain, &b.address)));
    out.chosen = kept;
    out
}

/// A tag with its rank and its index in the tags given.
type Ranked<'a> = (Rank<'a>, &'a Tag, usize);

/// The indices (into `tags`) of the chosen tags, in chain then address order, and the rest
/// of the [`Resolved`] (conflicts, ignored private tags).
fn resolve_indices(
    tags: &[(Tag, i64)],
    chain: Option<&str>,
    selection: &Selection,
) -> (Vec<usize>, Resolved) {
    // The tags in play, grouped by (chain, address) by sorting their indices: 8 bytes a tag,
    // where a map of per-address vectors took about 400 (measured on 250 k tags).
    let mut private_ignored = 0;
    let mut in_play: Vec<usize> = Vec::with_capacity(tags.len());
    // The import time is never a rank: when or in which order files came must not decide.
    for (i, (t, _imported_at)) in tags.iter().enumerate() {
        if chain.is_some_and(|c| c != &*t.chain) {
            continue;
        }
        if !t.is_public && !selection.include_private {
            private_ignored += 1;
            continue;
        }
        in_play.push(i);
    }
    let key = |i: usize| (&*tags[i].0.chain, tags[i].0.address.as_str());
    in_play.sort_unstable_by(|&a, &b| key(a).cmp(&key(b)).then(a.cmp(&b)));
    let mut out = Resolved {
        private_ignored,
        selection: selection.clone(),
        ..Resolved::default()
    };
    let mut chosen = Vec::new();
    for group in in_play.chunk_by(|&a, &b| key(a) == key(b)) {
        if let [only] = group {
            chosen.push(*only);
            continue;
        }
        let (chain, address) = key(group[0]);
        let mut ranked: Vec<Ranked<'_>> = group
            .iter()
            .map(|&i| (rank(&tags[i].0, &selection.prefer), &tags[i].0, i))
            .collect();
        // The file and line make the order total; they only order tags that agree.
        ranked.sort_by(|a, b| (&a.0, &a.1.file, a.1.line).cmp(&(&b.0, &b.1.file, b.1.line)));
        let (best_rank, best, best_ix) = &ranked[0];
        if let Some((rival_rank, _, _)) = ranked[1..]
            .iter()
            .find(|(_, t, _)| !same_attribution(best, t))
        {
            let decided_by = if best_rank.0 != rival_rank.0 {
                Rule::Prefer
            } else if best_rank.1 != rival_rank.1 {
                Rule::Confidence
            } else if best_rank.2 != rival_rank.2 {
                Rule::Recency
            } else {
                Rule::Tie
            };
            out.conflicts.push(Conflict {
                chain: chain.to_string(),
                address: address.to_string(),
                chosen: (*best).clone(),
                decided_by,
                others: ranked[1..].iter().map(|(_, t, _)| (*t).clone()).collect(),
            });
        }
        chosen.push(*best_ix);
    }
    (chosen, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    fn tag(file: &str, entity: &str, category: &str, confidence: &str) -> Tag {
        Tag {
            address: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa".into(),
            chain: "bitcoin".into(),
            network: "bitcoin".into(),
            label: entity.into(),
            entity: entity.into(),
            category: category.into(),
            confidence: confidence.into(),
            is_public: true,
            source: format!("src-{file}").into(),
            file: format!("/labels/{file}").into(),
            line: 2,
            lastmod: None,
            file_sha256: "".into(),
        }
    }

    #[test]
    fn the_table_has_14_ids_on_9_levels() {
        let levels: std::collections::BTreeSet<u8> = CONFIDENCE.iter().map(|c| c.1).collect();
        assert_eq!((CONFIDENCE.len(), levels.len()), (14, 9));
        assert_eq!(confidence_level("Authority_Data"), Some(60));
        assert_eq!(confidence_level("user_import"), None);
    }

    #[test]
    fn file_names_and_order_do_not_decide() {
        let a = tag("aa_exchange.csv", "ExampleExchange", "exchange", "unknown");
        let mut z = tag("zz_other.csv", "Somebody", "user", "unknown");
        for (x, y) in [(&a, &z), (&z, &a)] {
            let r = resolve(
                &[(x.clone(), 0), (y.clone(), 0)],
                None,
                &Selection::default(),
            );
            assert_eq!(r.chosen.len(), 1);
            assert_eq!(
                &*r.chosen[0].entity, "ExampleExchange",
                "category order decides a tie"
            );
            assert_eq!(r.conflicts[0].decided_by, Rule::Tie);
        }
        // Renaming the files swaps their name order but not the answer.
        z.file = "/labels/00_other.csv".into();
        let r = resolve(
            &[(z.clone(), 0), (a.clone(), 0)],
            None,
            &Selection::default(),
        );
        assert_eq!(&*r.chosen[0].entity, "ExampleExchange");
    }

    #[test]
    fn prefer_then_confidence_then_recency() {
        let low = tag("crawl.yaml", "Mixer", "mixer", "web_crawl");
        let high = tag("ofac.txt", "OFAC", "sanctioned", "authority_data");
        let r = resolve(
            &[(low.clone(), 0), (high.clone(), 0)],
            Some("bitcoin"),
            &Selection::default(),
        );
        assert_eq!(&*r.chosen[0].entity, "OFAC");
        assert_eq!(r.conflicts[0].decided_by, Rule::Confidence);
        assert_eq!(&*r.conflicts[0].others[0].entity, "Mixer");

        let sel = Selection {
            prefer: vec!["crawl.yaml".into()],
            ..Selection::default()
        };
        let r = resolve(&[(low.clone(), 0), (high.clone(), 0)], None, &sel);
        assert_eq!(&*r.chosen[0].entity, "Mixer");
        assert_eq!(r.conflicts[0].decided_by, Rule::Prefer);

        let mut old = tag("a.yaml", "Old", "exchange", "service_data");
        old.lastmod = Some("2021-01-01".into());
        let mut new = tag("b.yaml", "New", "exchange", "service_data");
        new.lastmod = Some("2023-06-30".into());
        let r = resolve(&[(new, 0), (old.clone(), DAY_MS * 30_000)], None, &sel);
        assert_eq!(&*r.chosen[0].entity, "New");
        assert_eq!(r.conflicts[0].decided_by, Rule::Recency);
        // An undated tag never wins by being imported later.
        let undated = tag("c.csv", "Undated", "darknet", "service_data");
        let r = resolve(&[(undated, DAY_MS * 40_000), (old, 0)], None, &sel);
        assert_eq!(&*r.chosen[0].entity, "Old");
    }

    #[test]
    fn agreeing_tags_are_no_conflict_and_private_ones_are_counted() {
        let a = tag("a.csv", "Binance", "exchange", "service_data");
        let b = tag("b.csv", "binance", "Exchange", "web_crawl");
        let mut p = tag("p.csv", "Informant", "user", "ownership");
        p.is_public = false;
        let r = resolve(
            &[(a, 0), (b, 0), (p.clone(), 0)],
            None,
            &Selection::default(),
        );
        assert!(r.conflicts.is_empty());
        assert_eq!((r.chosen.len(), r.private_ignored), (1, 1));
        let r = resolve(
            &[(p, 0)],
            Some("ethereum"),
            &Selection {
                include_private: true,
                ..Selection::default()
            },
        );
        assert!(r.chosen.is_empty(), "another chain's tags are left out");
    }
}
