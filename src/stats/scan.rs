//! Receipts and sendings of labelled entities in one pass over the memory-mapped address
//! index (DESIGN.md §4), instead of joins over the whole outputs and inputs tables: the
//! heap holds the labels and the rows found, not the chain (polars' joins held about 700
//! bytes per output of the dataset; docs/PERFORMANCE.md).
//!
//! The rows are those the definitions of the module above give (the same as the joins they
//! replace): a **receipt** is an output paid to an entity's address by a transaction none of
//! whose inputs (with an address) is that entity's; its payer is input 0's address. A
//! **sending** is an output, to an address not the entity's, of a transaction all of whose
//! inputs with an address are the entity's; its category is input 0's. Inputs spending
//! from before a height window carry their address as text (`before_*` in the index).

use std::collections::HashMap;

use polars::prelude::*;

use super::{Result, Source, StatsError, pe, strings};
use crate::index::{Index, Prev};
use crate::types::{AddrIx, TxIx, ix, n32};

/// Labels by address: `(entity, category)` as indices into `names`.
struct Labels {
    by_id: HashMap<u32, (u32, u32)>,
    /// Addresses the index has no id for (paid before a height window only).
    by_text: HashMap<String, (u32, u32)>,
}

/// Interned entity and category names.
#[derive(Default)]
struct Names {
    ix: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ix.get(s) {
            return i;
        }
        let i = n32(self.names.len());
        self.ix.insert(s.to_string(), i);
        self.names.push(s.to_string());
        i
    }
}

impl Labels {
    fn read(idx: &Index, df: &DataFrame, names: &mut Names) -> Result<Labels> {
        let (a, e, c) = (
            strings(df, "address")?,
            strings(df, "entity")?,
            strings(df, "category")?,
        );
        let addrs: Vec<&str> = a.iter().map(|x| x.as_deref().unwrap_or("")).collect();
        let ids = idx.address_ids_of(&addrs);
        let mut l = Labels {
            by_id: HashMap::with_capacity(addrs.len()),
            by_text: HashMap::new(),
        };
        for (i, id) in ids.into_iter().enumerate() {
            let (Some(en), Some(ca)) = (&e[i], &c[i]) else {
                continue;
            };
            let v = (names.get(en), names.get(ca));
            match id {
                Some(id) => {
                    l.by_id.insert(id.0, v);
                }
                None => {
                    l.by_text.insert(addrs[i].to_string(), v);
                }
            }
        }
        Ok(l)
    }

    fn of(&self, idx: &Index, a: &Addr) -> Option<(u32, u32)> {
        match a {
            Addr::Id(id) => self.by_id.get(&id.0).copied(),
            Addr::Text(s) => idx
                .address_id(s)
                .and_then(|id| self.by_id.get(&id.0))
                .or_else(|| self.by_text.get(*s))
                .copied(),
        }
    }
}

/// An input's address: an id of the index, or the text of one spent from before a window.
enum Addr<'a> {
    Id(AddrIx),
    Text(&'a str),
}

impl Addr<'_> {
    fn text<'i>(&'i self, idx: &'i Index) -> &'i str {
        match self {
            Addr::Id(id) => idx.address(*id),
            Addr::Text(s) => s,
        }
    }
}

/// The columns gathered.
#[derive(Default)]
struct Rows {
    height: Vec<u32>,
    txid: Vec<String>,
    vout: Vec<u32>,
    value: Vec<i64>,
    address: Vec<String>,
    entity: Vec<u32>,
    category: Vec<u32>,
    /// Receipts: the payer's address; sendings: the counterparty's entity.
    other: Vec<Option<String>>,
    /// Receipts: the payer's category; sendings: the counterparty's (or unlabelled).
    other_category: Vec<String>,
}

/// The receipts and the sendings of the entities of `ents` (`address, entity, category`),
/// with the counterparties' labels from `all`, in one pass over the address index: each
/// `height, txid, vout, value, address, entity, category`, then `payer, from_category`
/// (receipts) or `to_entity, to_category` (sendings). Opens (or builds) the dataset's
/// address index.
///
/// # Errors
/// An index that cannot be built, or a polars error.
pub(super) fn scan(
    src: &Source,
    ents: LazyFrame,
    all: LazyFrame,
) -> Result<(LazyFrame, LazyFrame)> {
    let (idx, _) = Index::open_or_build(&src.chain_dir)
        .map_err(|e| StatsError::Input(format!("the address index: {e}")))?;
    let mut names = Names::default();
    let ents = Labels::read(&idx, &ents.collect().map_err(pe)?, &mut names)?;
    let all = Labels::read(&idx, &all.collect().map_err(pe)?, &mut names)?;
    let unlabelled = "unlabelled".to_string();
    let (mut rec, mut send) = (Rows::default(), Rows::default());
    let mut ins: Vec<Option<Addr>> = Vec::new();
    let mut input_entities: Vec<u32> = Vec::new();
    for t in idx.tx_ids() {
        ins.clear();
        ins.extend(idx.inputs_of(t).map(|i| {
            match idx.prev(i) {
                Prev::Coinbase => None,
                Prev::Output(o) => idx.out_address(o).map(Addr::Id),
                Prev::BeforeWindow(k) => Some(idx.before_address(k))
                    .filter(|s| !s.is_empty())
                    .map(Addr::Text),
            }
        }));
        // The entities of the inputs with an address.
        let with_address = ins.iter().flatten().count();
        input_entities.clear();
        input_entities.extend(
            ins.iter()
                .flatten()
                .filter_map(|a| ents.of(&idx, a).map(|(e, _)| e)),
        );
        let vin0 = ins.first().and_then(Option::as_ref);
        // Receipts: outputs to an entity none of whose addresses is an input.
        for o in idx.outputs_of(t) {
            let Some(a) = idx.out_address(o) else {
                continue;
            };
            let Some((e, c)) = ents.by_id.get(&a.0).copied() else {
                continue;
            };
            if input_entities.contains(&e) {
                continue;
            }
            let from = vin0
                .and_then(|p| all.of(&idx, p))
                .map_or(&unlabelled, |(_, c)| &names.names[ix(c)]);
            let payer = vin0.map(|p| p.text(&idx).to_string());
            rec.push(&idx, t, o, a, (e, c), payer, from);
        }
        // Sendings: every input with an address is one entity's, and input 0 has one (its
        // category is the sending's).
        let Some(&e) = input_entities.first() else {
            continue;
        };
        if input_entities.len() != with_address || input_entities.iter().any(|&x| x != e) {
            continue;
        }
        let Some((_, c)) = vin0.and_then(|p| ents.of(&idx, p)).filter(|(x, _)| *x == e) else {
            continue;
        };
        for o in idx.outputs_of(t) {
            let Some(a) = idx.out_address(o) else {
                continue;
            };
            let to = all.by_id.get(&a.0).copied();
            if to.is_some_and(|(x, _)| x == e) {
                continue;
            }
            let to_category = to.map_or(&unlabelled, |(_, tc)| &names.names[ix(tc)]);
            let to_entity = to.map(|(x, _)| names.names[ix(x)].clone());
            send.push(&idx, t, o, a, (e, c), to_entity, to_category);
        }
    }
    Ok((
        rec.frame(&names.names, "payer", "from_category")?,
        send.frame(&names.names, "to_entity", "to_category")?,
    ))
}

impl Rows {
    /// The rows as a frame; `other` and `other_category` name the counterparty columns.
    fn frame(self, names: &[String], other: &str, other_category: &str) -> Result<LazyFrame> {
        let name_col =
            |v: &[u32]| -> Vec<&str> { v.iter().map(|&i| names[ix(i)].as_str()).collect() };
        let df = DataFrame::new(
            self.height.len(),
            vec![
                Column::new("height".into(), self.height),
                Column::new("txid".into(), self.txid),
                Column::new("vout".into(), self.vout),
                Column::new("value".into(), self.value),
                Column::new("address".into(), self.address),
                Column::new("entity".into(), name_col(&self.entity)),
                Column::new("category".into(), name_col(&self.category)),
                Column::new(other.into(), self.other),
                Column::new(other_category.into(), self.other_category),
            ],
        )
        .map_err(pe)?;
        Ok(df.lazy())
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        idx: &Index,
        t: TxIx,
        o: crate::types::OutIx,
        a: AddrIx,
        (e, c): (u32, u32),
        other: Option<String>,
        other_category: &str,
    ) {
        self.height.push(idx.tx_height(t).0);
        self.txid.push(idx.txid(t).to_string());
        self.vout.push(idx.vout(o));
        self.value
            .push(i64::try_from(idx.value(o).to_sat()).expect("a Bitcoin amount fits i64 satoshi"));
        self.address.push(idx.address(a).to_string());
        self.entity.push(e);
        self.category.push(c);
        self.other.push(other);
        self.other_category.push(other_category.to_string());
    }
}
