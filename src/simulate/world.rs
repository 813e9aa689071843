//! The simulated economy: actors, their wallets and the transactions they make.
//!
//! Behaviour (all amounts in satoshi; parameters in [`Params`]):
//! - **miners** receive every coinbase at two reused pool addresses and, once coins mature
//!   (100 blocks), pay batched payouts to users and exchange hot wallets;
//! - **users** pay merchants, each other, exchanges (their own deposit address), the vendor
//!   and the mixer; change goes to a fresh address whose type matches the inputs with
//!   probability `change_type_match`; receive addresses are reused with `reuse_rate`;
//!   payments are round numbers with `round_payment`; they consolidate now and then;
//! - **exchanges** give every customer a unique deposit address, sweep deposits into a fresh
//!   hot-wallet address once enough accumulate, and pay withdrawals in batches;
//! - **merchants** take each payment on a fresh invoice address and cash out to an exchange;
//! - a custodial **mixer** takes deposits on fresh addresses and pays the same owner back
//!   from its pool, minus 2 %, after 5–30 blocks;
//! - **CoinJoin** rounds: Whirlpool-like (tx0 premix, then 5 × 5 equal denominations),
//!   Wasabi-like (many equal outputs, change, coordinator fee), JoinMarket-like (taker and
//!   makers, equal outputs, makers' change earns a fee);
//! - an **illicit vendor** (flagged) receives customer payments on per-order addresses,
//!   consolidates them, and peels the result to exchange deposit addresses (its own as a
//!   customer) in 6–12 hops, one per block;
//! - **ransomware** (flagged) receives victim payments, splits them into the mixer, and
//!   cashes the mixer's payouts out at an exchange.
//!
//! Every address is recorded with its owner when it is first paid; flagged entities'
//! transfers to other entities are recorded as true flows.

use std::collections::{HashMap, VecDeque};

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};

use super::keys::{Addr, AddrKind, Keys};
use super::rng::Rng;
use super::writer::{Col, TableWriter, boolc, s, s_opt, u32c, u64c};
use crate::ingest::bitcoin::script::classify;
use crate::store::StoreError;
use crate::types::{Network, ix, n32, n64};

/// Entity categories of the ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Miner,
    User,
    Exchange,
    Merchant,
    Mixer,
    Coinjoin,
    IllicitVendor,
    Ransomware,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Miner => "miner",
            Category::User => "user",
            Category::Exchange => "exchange",
            Category::Merchant => "merchant",
            Category::Mixer => "mixer",
            Category::Coinjoin => "coinjoin",
            Category::IllicitVendor => "illicit_vendor",
            Category::Ransomware => "ransomware",
        }
    }
}

/// Parameters of a world (see the module doc for what each drives).
#[derive(Clone, Debug)]
pub struct Params {
    pub txs_per_block: u32,
    pub users: u32,
    pub exchanges: u32,
    pub merchants: u32,
    pub miners: u32,
    pub reuse_rate: f64,
    pub change_type_match: f64,
    pub round_payment: f64,
    /// Relative weight of CoinJoin rounds among actions.
    pub coinjoin_weight: u32,
    /// Change takes the payment's address type (defeats same-type change detection).
    pub change_mimics_payment: f64,
    /// Exchanges send withdrawal change back to one reused hot address.
    pub exchange_reuses_hot: bool,
    /// Share of users who buy from the vendor.
    pub vendor_customer_share: f64,
    /// Entities run different wallet software, each with its transaction fingerprint
    /// ([`Software`]); without, every transaction has the same habits as before.
    pub wallet_software: bool,
}

/// Wallet software, as its transactions show it (Erhardt & Shigeya, "An Empirical Analysis
/// of the Bitcoin Wallet Ecosystem", 2019): Bitcoin Core (half the entities) — version 2,
/// nLockTime at the chain tip (one time in ten up to 100 blocks earlier), replace-by-fee
/// signalled, change at a random position; Electrum (a quarter) — version 2, lock time at
/// the tip, replace-by-fee, inputs and outputs in BIP 69 order; an older mobile wallet (a
/// quarter) — version 1, lock time 0, final sequences, change last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Software {
    Core,
    Electrum,
    Mobile,
}

type EntityId = u32;
const DUST: u64 = 546;
const COIN: u64 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Plain,
    ViaMixer,
}

#[derive(Clone, Copy, Debug)]
struct Utxo {
    txid: Txid,
    vout: u32,
    value: u64,
    addr: Addr,
    tag: Tag,
}

#[derive(Clone, Copy, Debug)]
enum Owner {
    Wallet(EntityId),
    Deposit { ex: usize },
    Premix { denom: usize, user: EntityId },
    Peel,
}

struct Out {
    script: ScriptBuf,
    value: u64,
    /// Who holds it, and as which address; `None` for OP_RETURN.
    owner: Option<(Owner, Addr, EntityId)>,
    tag: Tag,
}

struct Draft {
    kind: &'static str,
    from: EntityId,
    inputs: Vec<Utxo>,
    outs: Vec<Out>,
    /// Change output: receives in − out − fee; dropped below dust.
    change: Option<(EntityId, Addr, Owner)>,
    /// Without change, the fee comes out of this output (sendall-style); otherwise the fee
    /// is whatever inputs exceed outputs.
    fee_from_out: Option<usize>,
    feerate: u64,
    path: &'static str,
}

struct Wallet {
    utxos: Vec<Utxo>,
    recent: Vec<Addr>,
    kind: AddrKind,
}

struct Exchange {
    entity: EntityId,
    deposits: Vec<Utxo>,
    deposit_addr: HashMap<EntityId, Addr>,
    balance: HashMap<EntityId, u64>,
    customers: Vec<EntityId>,
    fixed_hot: Option<Addr>,
}

/// Counts of what was generated.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Generated {
    pub blocks: u64,
    pub transactions: u64,
    pub addresses: u64,
    pub flows: u64,
}

/// Ground-truth table writers.
pub struct Truth {
    pub addresses: TableWriter,
    pub transactions: TableWriter,
    pub flows: TableWriter,
}

impl std::fmt::Debug for Truth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Truth").finish_non_exhaustive()
    }
}

/// The world state.
pub struct World {
    pub params: Params,
    keys: Keys,
    rng: Rng,
    sig_rng: Rng,
    /// Draws of the wallet fingerprints (its own stream: the world's stays as it was).
    fp_rng: Rng,
    seed: u64,
    pub names: Vec<(String, Category)>,
    wallets: Vec<Wallet>,
    users: Vec<EntityId>,
    miners: Vec<EntityId>,
    merchants: Vec<EntityId>,
    exchanges: Vec<Exchange>,
    home_exchange: HashMap<EntityId, usize>,
    mixer: EntityId,
    coordinator: EntityId,
    pub vendor: EntityId,
    pub ransomware: EntityId,
    customers: Vec<EntityId>,
    pool_addrs: HashMap<EntityId, Vec<Addr>>,
    next_addr: u64,
    seen_pool: std::collections::HashSet<Addr>,
    immature: VecDeque<(u32, EntityId, Utxo)>,
    pending: Vec<(Owner, Utxo)>,
    premix: Vec<Vec<(EntityId, Utxo)>>,
    peel: Option<(Utxo, u32)>,
    mixer_queue: VecDeque<(u32, EntityId, u64)>,
    pub height: u32,
    block_txs: Vec<Transaction>,
    block_fees: u64,
    pub generated: Generated,
    truth: Truth,
    network: Network,
    /// The flagged entities' scripts (vendor, ransomware), for their monthly truth.
    flagged_scripts: HashMap<ScriptBuf, EntityId>,
    /// The block being built: each flagged entity's income and outflows, output by output
    /// (sat), valued in fiat when the block closes.
    block_flows: std::collections::BTreeMap<EntityId, (Vec<u64>, Vec<u64>)>,
    /// Each flagged entity's income and outflows per calendar month of the block time
    /// (`YYYY-MM`, UTC), sat, as `chaintrace stats flows` defines them: income is what a
    /// transaction none of whose inputs is the entity's pays to its addresses; outflows
    /// what a transaction all of whose inputs are its pays to others.
    pub monthly: std::collections::BTreeMap<(EntityId, String), MonthFlows>,
    /// With a calendar period (`[start, end)`, unix seconds), actors live in time: the
    /// vendor trades from 10 % to 90 % of the period (twice as busy in November and
    /// December) and cashes out at one exchange, then from mid-period at another;
    /// ransomware campaigns come in three waves (15-25 %, 45-55 %, 75-85 % of the period);
    /// exchanges batch withdrawals at 00:00-02:00 and 12:00-14:00 UTC. Without a period
    /// the world behaves as before (no clock).
    pub timeline: Option<(u32, u32)>,
    /// The block being built's time (with a timeline).
    pub now: u32,
    /// Daily prices (USD): with a timeline, a round payment is a round amount in dollars
    /// at the day's price when the day has one, and the monthly truth values each output
    /// at its block's day.
    pub prices: crate::report::fmt::Prices,
}

/// One flagged entity's flows in one calendar month (see [`World::monthly`]). The fiat
/// values are each output valued at its block's day's close (cents, rounded half up per
/// output, as `stats flows` values them); outputs on days without a price are counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonthFlows {
    /// Income, sat.
    pub income: u64,
    /// Outflows, sat.
    pub outflows: u64,
    /// Income in US cents (priced outputs only).
    pub income_cents: u128,
    /// Outflows in US cents (priced outputs only).
    pub outflows_cents: u128,
    /// Income outputs on days without a price.
    pub income_unpriced: u64,
    /// Outflow outputs on days without a price.
    pub outflows_unpriced: u64,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("height", &self.height)
            .field("generated", &self.generated)
            .finish()
    }
}

const WHIRLPOOL: [u64; 3] = [100_000, 1_000_000, 5_000_000];
const PREMIX_FEE: u64 = 1_500;

impl World {
    /// A new world for `seed`.
    pub fn new(seed: u64, params: Params, truth: Truth) -> World {
        let mut rng = Rng::new(seed, 1);
        let mut names = Vec::new();
        let mut wallets = Vec::new();
        let kinds = [
            AddrKind::P2pkh,
            AddrKind::P2shP2wpkh,
            AddrKind::P2wpkh,
            AddrKind::P2wpkh,
            AddrKind::P2tr,
        ];
        let mut add = |name: String, cat: Category, kind: AddrKind| -> EntityId {
            names.push((name, cat));
            wallets.push(Wallet {
                utxos: Vec::new(),
                recent: Vec::new(),
                kind,
            });
            (names.len() - 1) as EntityId
        };
        let miners: Vec<EntityId> = (0..params.miners)
            .map(|i| {
                add(
                    format!("miner{:02}", i + 1),
                    Category::Miner,
                    AddrKind::P2wpkh,
                )
            })
            .collect();
        let exchanges: Vec<EntityId> = (0..params.exchanges)
            .map(|i| {
                add(
                    format!("exchange{:02}", i + 1),
                    Category::Exchange,
                    AddrKind::P2wpkh,
                )
            })
            .collect();
        // Some merchants keep their coins in 2-of-3 P2WSH multisig.
        let merchant_kinds = [
            AddrKind::P2wpkh,
            AddrKind::P2wshMultisig,
            AddrKind::P2shP2wpkh,
            AddrKind::P2tr,
            AddrKind::P2pkh,
        ];
        let merchants: Vec<EntityId> = (0..params.merchants)
            .map(|i| {
                let k = merchant_kinds[ix(i) % merchant_kinds.len()];
                add(format!("merchant{:03}", i + 1), Category::Merchant, k)
            })
            .collect();
        let mixer = add("mixer".into(), Category::Mixer, AddrKind::P2wpkh);
        let coordinator = add("coinjoin".into(), Category::Coinjoin, AddrKind::P2wpkh);
        let vendor = add("vendor".into(), Category::IllicitVendor, AddrKind::P2wpkh);
        let ransomware = add("ransomware".into(), Category::Ransomware, AddrKind::P2wpkh);
        let users: Vec<EntityId> = (0..params.users)
            .map(|i| {
                let k = kinds[rng.index(kinds.len())];
                add(format!("user{:06}", i + 1), Category::User, k)
            })
            .collect();
        let customers: Vec<EntityId> = users
            .iter()
            .copied()
            .filter(|_| rng.chance(params.vendor_customer_share))
            .collect();
        let mut home_exchange = HashMap::new();
        for &u in users.iter().chain(&merchants).chain([&vendor, &ransomware]) {
            home_exchange.insert(u, rng.index(exchanges.len()));
        }
        let exchanges = exchanges
            .into_iter()
            .map(|entity| Exchange {
                entity,
                deposits: Vec::new(),
                deposit_addr: HashMap::new(),
                balance: HashMap::new(),
                customers: Vec::new(),
                fixed_hot: None,
            })
            .collect();
        // Someone must buy from the vendor, even in a tiny world.
        let customers = if customers.is_empty() {
            vec![users[0]]
        } else {
            customers
        };
        World {
            params,
            keys: Keys::new(seed),
            rng,
            sig_rng: Rng::new(seed, 2),
            fp_rng: Rng::new(seed, 6),
            seed,
            names,
            wallets,
            users,
            miners,
            merchants,
            exchanges,
            home_exchange,
            mixer,
            coordinator,
            vendor,
            ransomware,
            customers,
            pool_addrs: HashMap::new(),
            next_addr: 0,
            seen_pool: Default::default(),
            immature: VecDeque::new(),
            pending: Vec::new(),
            premix: vec![Vec::new(); WHIRLPOOL.len()],
            peel: None,
            mixer_queue: VecDeque::new(),
            height: 0,
            block_txs: Vec::new(),
            block_fees: 0,
            generated: Generated::default(),
            truth,
            network: Network::Regtest,
            flagged_scripts: HashMap::new(),
            block_flows: Default::default(),
            monthly: Default::default(),
            timeline: None,
            now: 0,
            prices: Default::default(),
        }
    }

    /// Where the clock is in the period, 0 to 1 (`None` without a timeline).
    fn phase(&self) -> Option<f64> {
        self.timeline.map(|(s, e)| {
            f64::from(self.now.saturating_sub(s)) / f64::from(e.saturating_sub(s).max(1))
        })
    }

    /// The exchange the vendor cashes out at: the first, then from mid-period the second.
    fn vendor_exchange(&self) -> Option<usize> {
        let p = self.phase()?;
        Some(usize::from(p >= 0.5) % self.exchanges.len().max(1))
    }

    /// The action weights at this time (see [`World::timeline`]).
    fn timed(&self, mut w: [(u32, u8); 15]) -> [(u32, u8); 15] {
        let Some(p) = self.phase() else {
            return w;
        };
        let t = chrono::DateTime::from_timestamp(i64::from(self.now), 0).unwrap_or_default();
        let (month, hour) = (chrono::Datelike::month(&t), chrono::Timelike::hour(&t));
        for (weight, action) in &mut w {
            match action {
                // Vendor orders: open 10 % to 90 % of the period, a busy season at the year's end.
                6 if !(0.1..0.9).contains(&p) => *weight = 0,
                6 if month >= 11 => *weight *= 2,
                // Ransom payments: in waves.
                8 if ![(0.15, 0.25), (0.45, 0.55), (0.75, 0.85)]
                    .iter()
                    .any(|(a, b)| (*a..*b).contains(&p)) =>
                {
                    *weight = 0;
                }
                // Exchange withdrawal batches: twice a day.
                3 if !matches!(hour, 0 | 1 | 12 | 13) => *weight = 0,
                3 => *weight *= 3,
                _ => {}
            }
        }
        w
    }

    /// Finishes the truth tables.
    pub fn into_truth(self) -> Truth {
        self.truth
    }

    fn cat(&self, e: EntityId) -> Category {
        self.names[ix(e)].1
    }

    // ----- addresses -------------------------------------------------------------------

    /// A fresh address for `owner`, recorded in the truth when it is created (it is paid
    /// in the transaction being built, so every recorded address appears on chain).
    fn fresh(
        &mut self,
        owner: EntityId,
        kind: AddrKind,
        role: &str,
        is_change: bool,
    ) -> Result<Addr, StoreError> {
        self.next_addr += 1;
        let a = Addr {
            kind,
            id: self.next_addr,
        };
        self.record_addr(owner, a, role, is_change)?;
        Ok(a)
    }

    fn record_addr(
        &mut self,
        owner: EntityId,
        a: Addr,
        role: &str,
        is_change: bool,
    ) -> Result<(), StoreError> {
        let script = self.keys.script_pubkey(a);
        if matches!(
            self.cat(owner),
            Category::IllicitVendor | Category::Ransomware
        ) {
            self.flagged_scripts.insert(script.clone(), owner);
        }
        let address = classify(&script).address(self.network);
        let (name, cat) = &self.names[ix(owner)];
        let (name, cat) = (name.clone(), cat.as_str());
        let t = &mut self.truth.addresses;
        let c: &mut [Col] = t.cols();
        s_opt(&mut c[0], address);
        s(&mut c[1], name);
        s(&mut c[2], cat);
        s(&mut c[3], role);
        s(&mut c[4], a.kind.script_type());
        s(&mut c[5], a.kind.wallet_type());
        boolc(&mut c[6], is_change);
        u32c(&mut c[7], self.height);
        t.row_done()?;
        self.generated.addresses += 1;
        Ok(())
    }

    /// A receive address of a user-like wallet: reused with the reuse rate, else fresh.
    fn receive(&mut self, e: EntityId, role: &str) -> Result<Addr, StoreError> {
        let w = &self.wallets[ix(e)];
        if !w.recent.is_empty() && self.rng.chance(self.params.reuse_rate) {
            let i = self.rng.index(w.recent.len());
            return Ok(w.recent[i]);
        }
        let kind = w.kind;
        let a = self.fresh(e, kind, role, false)?;
        let r = &mut self.wallets[ix(e)].recent;
        if r.len() >= 8 {
            r.remove(0);
        }
        r.push(a);
        Ok(a)
    }

    fn change_addr(
        &mut self,
        e: EntityId,
        inputs: &[Utxo],
        payee_kind: Option<AddrKind>,
    ) -> Result<Addr, StoreError> {
        let kind = match payee_kind {
            Some(k) if self.rng.chance(self.params.change_mimics_payment) => k,
            _ if self.rng.chance(self.params.change_type_match) && !inputs.is_empty() => {
                inputs[0].addr.kind
            }
            _ => self.wallets[ix(e)].kind,
        };
        self.fresh(e, kind, "change", true)
    }

    /// A reused pool address (miners' payout address, exchanges' fixed hot address):
    /// recorded the first time it is paid.
    fn pool_addr(&mut self, e: EntityId, i: usize, role: &str) -> Result<Addr, StoreError> {
        let n = self.pool_addrs.get(&e).map_or(0, Vec::len);
        if n <= i {
            for _ in n..=i {
                self.next_addr += 1;
                let a = Addr {
                    kind: if i.is_multiple_of(2) {
                        AddrKind::P2wpkh
                    } else {
                        AddrKind::P2pkh
                    },
                    id: self.next_addr,
                };
                self.pool_addrs.entry(e).or_default().push(a);
            }
        }
        let a = self.pool_addrs[&e][i];
        if self.seen_pool.insert(a) {
            self.record_addr(e, a, role, false)?;
        }
        Ok(a)
    }

    fn deposit_addr(&mut self, ex: usize, customer: EntityId) -> Result<Addr, StoreError> {
        if let Some(a) = self.exchanges[ex].deposit_addr.get(&customer) {
            return Ok(*a);
        }
        let kind = [
            AddrKind::P2wpkh,
            AddrKind::P2wpkh,
            AddrKind::P2shP2wpkh,
            AddrKind::P2pkh,
        ][self.rng.index(4)];
        let e = self.exchanges[ex].entity;
        let a = self.fresh(e, kind, "exchange_deposit", false)?;
        self.exchanges[ex].deposit_addr.insert(customer, a);
        Ok(a)
    }

    fn out(&self, a: Addr, value: u64, owner: Owner, entity: EntityId) -> Out {
        Out {
            script: self.keys.script_pubkey(a),
            value,
            owner: Some((owner, a, entity)),
            tag: Tag::Plain,
        }
    }

    // ----- coins -----------------------------------------------------------------------

    fn feerate(&mut self) -> u64 {
        self.rng.log_uniform(1, 40)
    }

    fn fee_estimate(feerate: u64, inputs: &[Utxo], n_outs: usize) -> u64 {
        let vb: u64 = 11
            + inputs
                .iter()
                .map(|u| u.addr.kind.input_vbytes())
                .sum::<u64>()
            + 43 * n64(n_outs);
        feerate * vb
    }

    /// Takes coins from `pool` (random order) until they cover `target` plus the fee of a
    /// transaction with `n_outs` outputs (and a change output above dust). Returns them, or
    /// puts them back and returns `None`.
    fn select(
        rng: &mut Rng,
        pool: &mut Vec<Utxo>,
        target: u64,
        feerate: u64,
        n_outs: usize,
        max_inputs: usize,
    ) -> Option<Vec<Utxo>> {
        let mut picked = Vec::new();
        let mut sum = 0u64;
        while !pool.is_empty() && picked.len() < max_inputs {
            let i = rng.index(pool.len());
            let u = pool.swap_remove(i);
            sum += u.value;
            picked.push(u);
            if sum >= target + Self::fee_estimate(feerate, &picked, n_outs + 1) + DUST {
                return Some(picked);
            }
        }
        pool.extend(picked);
        None
    }

    fn round(&mut self, v: u64) -> u64 {
        if v >= 10_000 && self.rng.chance(self.params.round_payment) {
            // A priced day: two significant digits in dollars ($120, $4,500), paid in sat.
            let day = i64::from(self.now) / 86_400;
            if let (Some(_), Some(&price)) = (self.timeline, self.prices.by_day.get(&day)) {
                let usd = u128::from(v) * price / 100_000_000; // micro-dollars
                if usd >= 1_000_000 {
                    let digits = usd.ilog10();
                    let mag = 10u128.pow(digits - 1);
                    let round_usd = (usd / mag) * mag;
                    let sat = round_usd * 100_000_000 / price;
                    if let Ok(sat) = u64::try_from(sat)
                        && sat >= DUST
                    {
                        return sat;
                    }
                }
            }
            let mag = 10u64.pow((v as f64).log10().floor() as u32 - 1);
            (v / mag).max(1) * mag
        } else {
            v
        }
    }

    fn balance_hint(&self, e: EntityId) -> u64 {
        self.wallets[ix(e)].utxos.iter().map(|u| u.value).sum()
    }

    // ----- building --------------------------------------------------------------------

    /// Builds, records and adds a transaction to the block being assembled.
    fn finish(&mut self, mut d: Draft) -> Result<(), StoreError> {
        let soft = self.params.wallet_software.then(|| self.software(d.from));
        // Bitcoin Core puts change at a random position; the old mobile wallet last.
        let change_pos = d.change.as_ref().map(|_| match soft {
            Some(Software::Mobile) => d.outs.len(),
            _ => self.rng.index(d.outs.len() + 1),
        });
        if soft == Some(Software::Electrum) {
            // BIP 69: inputs by previous txid (as displayed) and vout.
            d.inputs.sort_by_key(|u| (u.txid.to_string(), u.vout));
        }
        if let (Some((e, a, owner)), Some(pos)) = (d.change, change_pos) {
            let mut o = self.out(a, 0, owner, e);
            o.tag = d.inputs.first().map_or(Tag::Plain, |u| u.tag);
            d.outs.insert(pos, o);
        }
        let (version, locktime, sequence) = match soft {
            None => (
                Version::TWO,
                if self.rng.chance(0.7) { self.height } else { 0 },
                0xffff_fffd,
            ),
            Some(Software::Core) => {
                // Anti-fee-sniping: the tip, one time in ten up to 100 blocks earlier.
                let tip = self.height.saturating_sub(1);
                let back = if self.fp_rng.chance(0.1) {
                    n32(self.fp_rng.index(100))
                } else {
                    0
                };
                (Version::TWO, tip.saturating_sub(back), 0xffff_fffd)
            }
            Some(Software::Electrum) => (Version::TWO, self.height.saturating_sub(1), 0xffff_fffd),
            Some(Software::Mobile) => (Version::ONE, 0, 0xffff_ffff),
        };
        let input: Vec<TxIn> = d
            .inputs
            .iter()
            .map(|u| {
                let (script_sig, witness) = self.keys.spend_data(u.addr, &mut self.sig_rng);
                TxIn {
                    previous_output: OutPoint {
                        txid: u.txid,
                        vout: u.vout,
                    },
                    script_sig,
                    sequence: Sequence(sequence),
                    witness,
                }
            })
            .collect();
        let mut tx = Transaction {
            version,
            lock_time: LockTime::from_consensus(locktime),
            input,
            output: d
                .outs
                .iter()
                .map(|o| TxOut {
                    value: Amount::from_sat(o.value),
                    script_pubkey: o.script.clone(),
                })
                .collect(),
        };
        let in_sum: u64 = d.inputs.iter().map(|u| u.value).sum();
        let fee = d.feerate * n64(tx.vsize());
        if let Some(pos) = change_pos {
            let out_sum: u64 = d.outs.iter().map(|o| o.value).sum();
            let change = in_sum
                .checked_sub(out_sum + fee)
                .expect("selection covers outputs and fee");
            if change >= DUST {
                d.outs[pos].value = change;
                tx.output[pos].value = Amount::from_sat(change);
            } else {
                d.outs.remove(pos);
                tx.output.remove(pos);
            }
        } else if let Some(i) = d.fee_from_out {
            d.outs[i].value -= fee;
            tx.output[i].value = Amount::from_sat(d.outs[i].value);
        }
        if soft == Some(Software::Electrum) {
            // BIP 69: outputs by value, then script (the same weight in any order, so the
            // fee above holds).
            let mut order: Vec<usize> = (0..d.outs.len()).collect();
            order.sort_by(|&a, &b| {
                (d.outs[a].value, d.outs[a].script.as_bytes())
                    .cmp(&(d.outs[b].value, d.outs[b].script.as_bytes()))
            });
            let mut outs: Vec<Option<Out>> =
                std::mem::take(&mut d.outs).into_iter().map(Some).collect();
            d.outs = order.iter().filter_map(|&i| outs[i].take()).collect();
            tx.output = d
                .outs
                .iter()
                .map(|o| TxOut {
                    value: Amount::from_sat(o.value),
                    script_pubkey: o.script.clone(),
                })
                .collect();
        }
        let out_sum: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        let fee = in_sum - out_sum;
        let txid = tx.compute_txid();
        let flagged = matches!(
            self.cat(d.from),
            Category::IllicitVendor | Category::Ransomware
        );
        let via_mixer = d.inputs.iter().any(|u| u.tag == Tag::ViaMixer);
        for (vout, o) in d.outs.iter().enumerate() {
            let Some((owner, addr, entity)) = o.owner else {
                continue;
            };
            let u = Utxo {
                txid,
                vout: n32(vout),
                value: o.value,
                addr,
                tag: o.tag,
            };
            self.pending.push((owner, u));
            if flagged && entity != d.from {
                let path = if via_mixer { "via_mixer" } else { d.path };
                self.record_flow(d.from, txid, n32(vout), entity, o.value, path)?;
            }
        }
        self.record_tx(txid, d.kind, d.from)?;
        self.count_flagged_flows(&d.inputs, &tx);
        self.block_fees += fee;
        self.block_txs.push(tx);
        Ok(())
    }

    /// Adds `tx`'s income and outflows of each flagged entity to the block's.
    fn count_flagged_flows(&mut self, inputs: &[Utxo], tx: &Transaction) {
        if self.flagged_scripts.is_empty() {
            return;
        }
        let owners: Vec<Option<EntityId>> = inputs
            .iter()
            .map(|u| {
                self.flagged_scripts
                    .get(&self.keys.script_pubkey(u.addr))
                    .copied()
            })
            .collect();
        for f in [self.vendor, self.ransomware] {
            let mine = owners.iter().filter(|o| **o == Some(f)).count();
            let to_f = |o: &TxOut| self.flagged_scripts.get(&o.script_pubkey) == Some(&f);
            let income = mine == 0;
            if income || mine == owners.len() {
                let values: Vec<u64> = tx
                    .output
                    .iter()
                    .filter(|o| to_f(o) == income)
                    .map(|o| o.value.to_sat())
                    .collect();
                if !values.is_empty() {
                    let e = self.block_flows.entry(f).or_default();
                    if income { &mut e.0 } else { &mut e.1 }.extend(values);
                }
            }
        }
    }

    /// Spends `inputs` entirely into the single output `out`, the fee taken from it
    /// (a sweep, a consolidation, `sendall`).
    fn send_all(
        &mut self,
        kind: &'static str,
        from: EntityId,
        inputs: Vec<Utxo>,
        out: Out,
        feerate: u64,
        path: &'static str,
    ) -> Result<(), StoreError> {
        self.finish(Draft {
            kind,
            from,
            inputs,
            outs: vec![out],
            change: None,
            fee_from_out: Some(0),
            feerate,
            path,
        })
    }

    /// A payment: `outs`, and change back to `from` at `change`, fee at `feerate`.
    fn pay_with_change(
        &mut self,
        kind: &'static str,
        from: EntityId,
        inputs: Vec<Utxo>,
        outs: Vec<Out>,
        change: Addr,
        feerate: u64,
    ) -> Result<(), StoreError> {
        let change = Some((from, change, Owner::Wallet(from)));
        self.finish(Draft {
            kind,
            from,
            inputs,
            outs,
            change,
            fee_from_out: None,
            feerate,
            path: "direct",
        })
    }

    /// A CoinJoin round: the coordinator shuffles the outputs; the fee is whatever the
    /// participants' inputs exceed the outputs by.
    fn finish_round(
        &mut self,
        kind: &'static str,
        inputs: Vec<Utxo>,
        mut outs: Vec<Out>,
    ) -> Result<(), StoreError> {
        for i in (1..outs.len()).rev() {
            let j = self.rng.index(i + 1);
            outs.swap(i, j);
        }
        let from = self.coordinator;
        self.finish(Draft {
            kind,
            from,
            inputs,
            outs,
            change: None,
            fee_from_out: None,
            feerate: 0,
            path: "direct",
        })
    }

    fn record_tx(&mut self, txid: Txid, kind: &str, from: EntityId) -> Result<(), StoreError> {
        let name = self.names[ix(from)].0.clone();
        let t = &mut self.truth.transactions;
        let c = t.cols();
        s(&mut c[0], txid.to_string());
        u32c(&mut c[1], self.height);
        s(&mut c[2], kind);
        s(&mut c[3], name);
        t.row_done()?;
        self.generated.transactions += 1;
        Ok(())
    }

    fn record_flow(
        &mut self,
        from: EntityId,
        txid: Txid,
        vout: u32,
        to: EntityId,
        amount: u64,
        path: &str,
    ) -> Result<(), StoreError> {
        let (fname, tname, tcat) = (
            self.names[ix(from)].0.clone(),
            self.names[ix(to)].0.clone(),
            self.cat(to).as_str(),
        );
        let t = &mut self.truth.flows;
        let c = t.cols();
        s(&mut c[0], fname);
        s(&mut c[1], txid.to_string());
        u32c(&mut c[2], vout);
        u32c(&mut c[3], self.height);
        s(&mut c[4], tname);
        s(&mut c[5], tcat);
        u64c(&mut c[6], amount);
        s(&mut c[7], path);
        t.row_done()?;
        self.generated.flows += 1;
        Ok(())
    }

    // ----- blocks ----------------------------------------------------------------------

    /// Starts block `height`: matured coinbases become spendable.
    pub fn begin_block(&mut self, height: u32) {
        self.height = height;
        while let Some(&(h, e, u)) = self.immature.front() {
            if h + 100 > height {
                break;
            }
            self.immature.pop_front();
            self.wallets[ix(e)].utxos.push(u);
        }
    }

    /// Fills the block with up to `n` transactions (fewer if nobody can pay).
    pub fn fill_block(&mut self, n: u32) -> Result<(), StoreError> {
        let start = self.block_txs.len();
        let target = start + ix(n);
        let mut attempts = 0;
        if n > 0 {
            self.miner_payout()?;
            self.peel_hop()?;
        }
        while self.block_txs.len() < target && attempts < 4 * n + 20 {
            attempts += 1;
            let left = target - self.block_txs.len();
            self.action(left)?;
        }
        // Multi-transaction actions can overshoot; trim is never needed because `action`
        // only starts rounds that fit in `left`.
        Ok(())
    }

    fn action(&mut self, left: usize) -> Result<bool, StoreError> {
        let cj = self.params.coinjoin_weight;
        let weights: [(u32, u8); 15] = [
            (30, 0),  // pay merchant
            (18, 1),  // pay user
            (9, 2),   // deposit to exchange
            (6, 3),   // exchange withdrawal batch
            (2, 4),   // exchange sweep
            (2, 5),   // merchant cashout
            (8, 6),   // vendor purchase
            (1, 7),   // vendor consolidation (+ peel start)
            (2, 8),   // ransom payment
            (1, 9),   // ransomware to mixer
            (2, 10),  // mixer payout
            (2, 11),  // user to mixer
            (1, 12),  // ransomware cashout
            (cj, 13), // coinjoin round
            (3, 14),  // self transfer
        ];
        let weights = self.timed(weights);
        let total: u32 = weights.iter().map(|w| w.0).sum();
        let mut r = self.rng.below(u64::from(total)) as u32;
        let mut which = 0;
        for (w, a) in weights {
            if r < w {
                which = a;
                break;
            }
            r -= w;
        }
        match which {
            0 => self.pay(PayKind::Merchant),
            1 => self.pay(PayKind::User),
            2 => self.user_deposit(),
            3 => self.withdrawal(),
            4 => self.sweep(),
            5 => self.merchant_cashout(),
            6 => self.pay(PayKind::Purchase),
            7 => self.vendor_consolidation(),
            8 => self.pay(PayKind::Ransom),
            9 => self.ransom_to_mixer(),
            10 => self.mixer_payout(),
            11 => self.user_to_mixer(),
            12 => self.ransom_cashout(),
            13 => self.coinjoin(left),
            _ => self.self_transfer(),
        }
    }

    /// Assembles the block: coinbase paying subsidy + fees (with the BIP 141 witness
    /// commitment), merkle root, and a header mined to the regtest target.
    pub fn seal_block(
        &mut self,
        prev: bitcoin::BlockHash,
        time: u32,
    ) -> Result<bitcoin::Block, StoreError> {
        let miner = self.miners[self.rng.index(self.miners.len())];
        let pool = self.rng.index(2);
        let addr = self.pool_addr(miner, pool, "miner")?;
        let halvings = self.height / self.network.halving_interval();
        let subsidy = if halvings >= 64 {
            0
        } else {
            (50 * COIN) >> halvings
        };
        let value = subsidy + self.block_fees;
        let height_push = bitcoin::script::Builder::new()
            .push_int(i64::from(self.height))
            .push_slice(b"chaintrace-sim")
            .into_script();
        let mut coinbase = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: height_push,
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(value),
                script_pubkey: self.keys.script_pubkey(addr),
            }],
        };
        let mut txdata = Vec::with_capacity(self.block_txs.len() + 1);
        let has_witness = self
            .block_txs
            .iter()
            .any(|t| t.input.iter().any(|i| !i.witness.is_empty()));
        txdata.push(coinbase.clone());
        txdata.append(&mut self.block_txs);
        let mut block = bitcoin::Block {
            header: bitcoin::block::Header {
                version: bitcoin::block::Version::from_consensus(0x2000_0000),
                prev_blockhash: prev,
                merkle_root: bitcoin::TxMerkleNode::all_zeros(),
                time,
                bits: bitcoin::CompactTarget::from_consensus(0x207f_ffff),
                nonce: 0,
            },
            txdata,
        };
        if has_witness {
            let reserved = [0u8; 32];
            let root = block.witness_root().expect("a block has a coinbase");
            let commitment = bitcoin::Block::compute_witness_commitment(&root, &reserved);
            let mut spk = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
            spk.extend_from_slice(commitment.as_byte_array());
            coinbase.output.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(spk),
            });
            coinbase.input[0].witness = Witness::from_slice(&[reserved]);
            block.txdata[0] = coinbase;
        }
        block.header.merkle_root = block
            .compute_merkle_root()
            .expect("a block has transactions");
        while block.header.validate_pow(block.header.target()).is_err() {
            block.header.nonce += 1;
        }
        let cb = &block.txdata[0];
        let cb_txid = cb.compute_txid();
        self.record_tx(cb_txid, "coinbase", miner)?;
        let u = Utxo {
            txid: cb_txid,
            vout: 0,
            value,
            addr,
            tag: Tag::Plain,
        };
        if value > 0 {
            self.immature.push_back((self.height, miner, u));
        }
        // Outputs created in this block become spendable in the next.
        for (owner, u) in std::mem::take(&mut self.pending) {
            match owner {
                Owner::Wallet(e) => self.wallets[ix(e)].utxos.push(u),
                Owner::Deposit { ex } => self.exchanges[ex].deposits.push(u),
                Owner::Premix { denom, user } => self.premix[denom].push((user, u)),
                Owner::Peel => {
                    let hops = self.peel.map_or(0, |p| p.1);
                    self.peel = Some((u, hops));
                }
            }
        }
        self.block_fees = 0;
        self.generated.blocks += 1;
        let month = chrono::DateTime::from_timestamp(i64::from(time), 0)
            .unwrap_or_default()
            .format("%Y-%m")
            .to_string();
        for (f, (income, out)) in std::mem::take(&mut self.block_flows) {
            let m = self.monthly.entry((f, month.clone())).or_default();
            for v in income {
                m.income += v;
                match self.prices.cents(v.into(), 8, time.into()) {
                    Some(c) => m.income_cents += c,
                    None => m.income_unpriced += 1,
                }
            }
            for v in out {
                m.outflows += v;
                match self.prices.cents(v.into(), 8, time.into()) {
                    Some(c) => m.outflows_cents += c,
                    None => m.outflows_unpriced += 1,
                }
            }
        }
        Ok(block)
    }

    // ----- actions ---------------------------------------------------------------------

    /// The wallet software of entity `e`: a fixed function of the seed and the entity, so
    /// that it draws nothing from the world's random stream.
    fn software(&self, e: EntityId) -> Software {
        let h = (u64::from(e) ^ self.seed.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        match h >> 62 {
            0 | 1 => Software::Core,
            2 => Software::Electrum,
            _ => Software::Mobile,
        }
    }

    fn random_user(&mut self) -> EntityId {
        self.users[self.rng.index(self.users.len())]
    }

    fn miner_payout(&mut self) -> Result<bool, StoreError> {
        let m = self.miners[self.rng.index(self.miners.len())];
        if self.wallets[ix(m)].utxos.is_empty() {
            return Ok(false);
        }
        let take = self.wallets[ix(m)].utxos.len().min(2);
        let inputs: Vec<Utxo> = self.wallets[ix(m)].utxos.drain(..take).collect();
        let total: u64 = inputs.iter().map(|u| u.value).sum();
        let n = ix(self.rng.range(10, 40));
        let budget = total.saturating_sub(Self::fee_estimate(40, &inputs, n + 1) + DUST) * 9 / 10;
        if budget < (n64(n)) * 10_000 {
            self.wallets[ix(m)].utxos.extend(inputs);
            return Ok(false);
        }
        let mut outs = Vec::new();
        for i in 0..n {
            let share = budget / n64(n);
            if i % 6 == 0 {
                let ex = self.rng.index(self.exchanges.len());
                let e = self.exchanges[ex].entity;
                let a = self.fresh(e, AddrKind::P2wpkh, "exchange_hot", false)?;
                outs.push(self.out(a, share, Owner::Wallet(e), e));
            } else {
                let u = self.random_user();
                let a = self.receive(u, "receive")?;
                let v = self.rng.range(share / 4, share);
                outs.push(self.out(a, v, Owner::Wallet(u), u));
            }
        }
        let change = self.pool_addr(m, 0, "miner")?;
        let feerate = self.feerate();
        self.pay_with_change("mining_payout", m, inputs, outs, change, feerate)?;
        Ok(true)
    }

    fn pay(&mut self, kind: PayKind) -> Result<bool, StoreError> {
        let payer = match kind {
            PayKind::Purchase => self.customers[self.rng.index(self.customers.len())],
            _ => self.random_user(),
        };
        if self.wallets[ix(payer)].utxos.is_empty() {
            return Ok(false);
        }
        let (amount, payee) = match kind {
            PayKind::Merchant => (
                self.rng.log_uniform(5_000, 5_000_000),
                self.merchants[self.rng.index(self.merchants.len())],
            ),
            PayKind::User => (self.rng.log_uniform(10_000, 20_000_000), self.random_user()),
            PayKind::Purchase => (self.rng.log_uniform(50_000, 3_000_000), self.vendor),
            PayKind::Ransom => (self.rng.log_uniform(2_000_000, 60_000_000), self.ransomware),
        };
        if payee == payer {
            return Ok(false);
        }
        let amount = self.round(amount);
        let feerate = self.feerate();
        let memo = kind == PayKind::User && self.rng.chance(0.01);
        let mut pool = std::mem::take(&mut self.wallets[ix(payer)].utxos);
        let picked = Self::select(
            &mut self.rng,
            &mut pool,
            amount,
            feerate,
            1 + usize::from(memo),
            50,
        );
        self.wallets[ix(payer)].utxos = pool;
        let Some(inputs) = picked else {
            return Ok(false);
        };
        let (role, kind_name) = match kind {
            PayKind::Merchant => ("invoice", "payment"),
            PayKind::User => ("receive", "payment"),
            PayKind::Purchase => ("order", "purchase"),
            PayKind::Ransom => ("ransom", "ransom_payment"),
        };
        let to = match kind {
            PayKind::User => self.receive(payee, role)?,
            _ => {
                let k = self.wallets[ix(payee)].kind;
                let k = if kind == PayKind::Purchase && self.rng.chance(0.2) {
                    AddrKind::P2shP2wpkh
                } else {
                    k
                };
                self.fresh(payee, k, role, false)?
            }
        };
        let mut outs = vec![self.out(to, amount, Owner::Wallet(payee), payee)];
        if memo {
            let mut data = [0u8; 20];
            self.rng.fill(&mut data);
            let spk = ScriptBuf::new_op_return(data);
            outs.push(Out {
                script: spk,
                value: 0,
                owner: None,
                tag: Tag::Plain,
            });
        }
        let change = self.change_addr(payer, &inputs, Some(to.kind))?;
        self.pay_with_change(
            if memo { "op_return" } else { kind_name },
            payer,
            inputs,
            outs,
            change,
            feerate,
        )?;
        Ok(true)
    }

    fn user_deposit(&mut self) -> Result<bool, StoreError> {
        let u = self.random_user();
        self.deposit_from(u, "deposit", None)
    }

    /// `e` sends coins to its own deposit address at its exchange. With `take_all`, it
    /// sends the given coins entirely (fee from the output), else a random amount.
    fn deposit_from(
        &mut self,
        e: EntityId,
        kind: &'static str,
        take_all: Option<(Vec<Utxo>, &'static str)>,
    ) -> Result<bool, StoreError> {
        let ex = self.home_exchange[&e];
        let feerate = self.feerate();
        let (inputs, path) = match take_all {
            Some((inputs, path)) => (inputs, path),
            None => {
                let bal = self.balance_hint(e);
                if bal < 200_000 {
                    return Ok(false);
                }
                let amount = {
                    let x = self.rng.range(bal / 5, bal * 4 / 5);
                    self.round(x)
                };
                let mut pool = std::mem::take(&mut self.wallets[ix(e)].utxos);
                let picked = Self::select(&mut self.rng, &mut pool, amount, feerate, 1, 50);
                self.wallets[ix(e)].utxos = pool;
                let Some(inputs) = picked else {
                    return Ok(false);
                };
                let a = self.deposit_addr(ex, e)?;
                let ch = self.change_addr(e, &inputs, Some(a.kind))?;
                let ex_e = self.exchanges[ex].entity;
                self.credit(ex, e, amount);
                let outs = vec![self.out(a, amount, Owner::Deposit { ex }, ex_e)];
                self.finish(Draft {
                    kind,
                    from: e,
                    inputs,
                    outs,
                    change: Some((e, ch, Owner::Wallet(e))),
                    fee_from_out: None,
                    feerate,
                    path: "direct",
                })?;
                return Ok(true);
            }
        };
        let total: u64 = inputs.iter().map(|u| u.value).sum();
        if total < Self::fee_estimate(feerate, &inputs, 1) + DUST {
            self.wallets[ix(e)].utxos.extend(inputs);
            return Ok(false);
        }
        let a = self.deposit_addr(ex, e)?;
        let ex_e = self.exchanges[ex].entity;
        self.credit(ex, e, total);
        let mut out = self.out(a, total, Owner::Deposit { ex }, ex_e);
        out.tag = inputs[0].tag;
        self.finish(Draft {
            kind,
            from: e,
            inputs,
            outs: vec![out],
            change: None,
            fee_from_out: Some(0),
            feerate,
            path,
        })?;
        Ok(true)
    }

    fn credit(&mut self, ex: usize, e: EntityId, amount: u64) {
        let x = &mut self.exchanges[ex];
        let b = x.balance.entry(e).or_insert(0);
        if *b == 0 {
            x.customers.push(e);
        }
        *b += amount;
    }

    fn withdrawal(&mut self) -> Result<bool, StoreError> {
        let ex = self.rng.index(self.exchanges.len());
        let e = self.exchanges[ex].entity;
        let n = ix(self.rng.range(1, 12));
        let mut payees: Vec<(EntityId, u64)> = Vec::new();
        for _ in 0..n {
            let x = &self.exchanges[ex];
            if !x.customers.is_empty() && self.rng.chance(0.6) {
                let i = self.rng.index(x.customers.len());
                let c = x.customers[i];
                let bal = x.balance.get(&c).copied().unwrap_or(0);
                if bal > 50_000 && !payees.iter().any(|p| p.0 == c) {
                    let v = self.rng.range(bal / 3, bal);
                    payees.push((c, v));
                }
            } else {
                // A customer who bought coins with fiat.
                let u = self.random_user();
                let v = {
                    let x = self.rng.log_uniform(100_000, 50_000_000);
                    self.round(x)
                };
                payees.push((u, v));
            }
        }
        if payees.is_empty() {
            return Ok(false);
        }
        let total: u64 = payees.iter().map(|p| p.1).sum();
        let feerate = self.feerate();
        let mut pool = std::mem::take(&mut self.wallets[ix(e)].utxos);
        let picked = Self::select(&mut self.rng, &mut pool, total, feerate, payees.len(), 100);
        self.wallets[ix(e)].utxos = pool;
        let Some(inputs) = picked else {
            return Ok(false);
        };
        let mut outs = Vec::new();
        for (u, v) in payees {
            if let Some(b) = self.exchanges[ex].balance.get_mut(&u) {
                *b = b.saturating_sub(v);
            }
            let cat = self.cat(u);
            let role = if cat == Category::User {
                "receive"
            } else {
                "withdrawal"
            };
            let a = if cat == Category::User {
                self.receive(u, role)?
            } else {
                self.fresh(u, AddrKind::P2wpkh, role, false)?
            };
            outs.push(self.out(a, v, Owner::Wallet(u), u));
        }
        let x = &mut self.exchanges[ex];
        let balance = &x.balance;
        x.customers
            .retain(|c| balance.get(c).is_some_and(|b| *b > 0));
        let change = if self.params.exchange_reuses_hot {
            match self.exchanges[ex].fixed_hot {
                Some(a) => a,
                None => {
                    let a = self.fresh(e, AddrKind::P2wpkh, "exchange_hot", true)?;
                    self.exchanges[ex].fixed_hot = Some(a);
                    a
                }
            }
        } else {
            self.fresh(e, AddrKind::P2wpkh, "exchange_hot", true)?
        };
        self.pay_with_change("withdrawal", e, inputs, outs, change, feerate)?;
        Ok(true)
    }

    fn sweep(&mut self) -> Result<bool, StoreError> {
        let ex = self.rng.index(self.exchanges.len());
        if self.exchanges[ex].deposits.len() < 9 {
            return Ok(false);
        }
        let n = self.exchanges[ex]
            .deposits
            .len()
            .min(ix(self.rng.range(9, 150)));
        let inputs: Vec<Utxo> = self.exchanges[ex].deposits.drain(..n).collect();
        let e = self.exchanges[ex].entity;
        let feerate = self.feerate();
        let total: u64 = inputs.iter().map(|u| u.value).sum();
        if total < Self::fee_estimate(feerate, &inputs, 1) + DUST {
            self.exchanges[ex].deposits.extend(inputs);
            return Ok(false);
        }
        let a = self.fresh(e, AddrKind::P2wpkh, "exchange_hot", false)?;
        let out = self.out(a, total, Owner::Wallet(e), e);
        self.send_all("sweep", e, inputs, out, feerate, "direct")?;
        Ok(true)
    }

    /// Takes up to `max` coins of `e` if it holds at least `min`.
    fn take_coins(
        &mut self,
        e: EntityId,
        min: usize,
        max: usize,
        tag: Option<Tag>,
    ) -> Option<Vec<Utxo>> {
        let w = &mut self.wallets[ix(e)].utxos;
        let matching = w.iter().filter(|u| tag.is_none_or(|t| u.tag == t)).count();
        if matching < min {
            return None;
        }
        let mut taken = Vec::new();
        let mut i = 0;
        while i < w.len() && taken.len() < max {
            if tag.is_none_or(|t| w[i].tag == t) {
                taken.push(w.swap_remove(i));
            } else {
                i += 1;
            }
        }
        Some(taken)
    }

    fn merchant_cashout(&mut self) -> Result<bool, StoreError> {
        let m = self.merchants[self.rng.index(self.merchants.len())];
        let Some(coins) = self.take_coins(m, 10, 100, None) else {
            return Ok(false);
        };
        self.deposit_from(m, "merchant_cashout", Some((coins, "direct")))
    }

    fn vendor_consolidation(&mut self) -> Result<bool, StoreError> {
        if self.peel.is_some() {
            return Ok(false);
        }
        let v = self.vendor;
        let Some(inputs) = self.take_coins(v, 30, 400, None) else {
            return Ok(false);
        };
        let feerate = self.feerate();
        let total: u64 = inputs.iter().map(|u| u.value).sum();
        if total < Self::fee_estimate(feerate, &inputs, 1) + 10 * DUST {
            self.wallets[ix(v)].utxos.extend(inputs);
            return Ok(false);
        }
        let a = self.fresh(v, AddrKind::P2wpkh, "peel_hop", false)?;
        let out = self.out(a, total, Owner::Peel, v);
        let hops = n32(self.rng.range(6, 12));
        self.peel = Some((
            Utxo {
                txid: Txid::all_zeros(),
                vout: 0,
                value: 0,
                addr: a,
                tag: Tag::Plain,
            },
            hops,
        ));
        self.send_all("vendor_consolidation", v, inputs, out, feerate, "direct")?;
        Ok(true)
    }

    fn peel_hop(&mut self) -> Result<bool, StoreError> {
        let Some((u, hops)) = self.peel else {
            return Ok(false);
        };
        if u.value == 0 {
            return Ok(false); // the consolidation is still in the block being built
        }
        let v = self.vendor;
        let feerate = self.feerate();
        let ex = match self.vendor_exchange() {
            Some(ex) => ex,
            None => self.rng.index(self.exchanges.len()),
        };
        let ex_e = self.exchanges[ex].entity;
        let dep = self.deposit_addr(ex, v)?;
        if hops <= 1 || u.value < 200_000 {
            self.peel = None;
            let mut out = self.out(dep, u.value, Owner::Deposit { ex }, ex_e);
            out.tag = u.tag;
            self.credit(ex, v, u.value);
            self.finish(Draft {
                kind: "peel",
                from: v,
                inputs: vec![u],
                outs: vec![out],
                change: None,
                fee_from_out: Some(0),
                feerate,
                path: "peel_chain_end",
            })?;
            return Ok(true);
        }
        let pct = self.rng.range(3, 8);
        let pay = self.round(u.value * pct / 100);
        let rest = u.value - pay;
        let (payee, pay_addr, owner) = if self.rng.chance(0.15) {
            let usr = self.random_user();
            let a = self.receive(usr, "receive")?;
            (usr, a, Owner::Wallet(usr))
        } else {
            self.credit(ex, v, pay);
            (ex_e, dep, Owner::Deposit { ex })
        };
        let next = self.fresh(v, AddrKind::P2wpkh, "peel_hop", false)?;
        let outs = vec![
            self.out(pay_addr, pay, owner, payee),
            self.out(next, rest, Owner::Peel, v),
        ];
        self.peel = Some((Utxo { value: 0, ..u }, hops - 1));
        self.finish(Draft {
            kind: "peel",
            from: v,
            inputs: vec![u],
            outs,
            change: None,
            fee_from_out: Some(1),
            feerate,
            path: "peel_chain",
        })?;
        Ok(true)
    }

    fn ransom_to_mixer(&mut self) -> Result<bool, StoreError> {
        let r = self.ransomware;
        let Some(inputs) = self.take_coins(r, 3, 60, Some(Tag::Plain)) else {
            return Ok(false);
        };
        let feerate = self.feerate();
        let total: u64 = inputs.iter().map(|u| u.value).sum();
        let k = self.rng.range(2, 4);
        if total < Self::fee_estimate(feerate, &inputs, ix(k)) + k * 100_000 {
            self.wallets[ix(r)].utxos.extend(inputs);
            return Ok(false);
        }
        let mut outs = Vec::new();
        for i in 0..k {
            let part = if i + 1 == k {
                total - (total / k) * (k - 1)
            } else {
                total / k
            };
            let a = self.fresh(self.mixer, AddrKind::P2wpkh, "mixer_deposit", false)?;
            outs.push(self.out(a, part, Owner::Wallet(self.mixer), self.mixer));
            let due = self.height + n32(self.rng.range(5, 30));
            self.mixer_queue.push_back((due, r, part / 100 * 98));
        }
        self.finish(Draft {
            kind: "ransom_to_mixer",
            from: r,
            inputs,
            outs,
            change: None,
            fee_from_out: Some(ix(k) - 1),
            feerate,
            path: "to_mixer",
        })?;
        Ok(true)
    }

    fn user_to_mixer(&mut self) -> Result<bool, StoreError> {
        let u = self.random_user();
        let bal = self.balance_hint(u);
        if bal < 500_000 {
            return Ok(false);
        }
        let amount = {
            let x = self.rng.range(bal / 4, bal / 2);
            self.round(x)
        };
        let feerate = self.feerate();
        let mut pool = std::mem::take(&mut self.wallets[ix(u)].utxos);
        let picked = Self::select(&mut self.rng, &mut pool, amount, feerate, 1, 30);
        self.wallets[ix(u)].utxos = pool;
        let Some(inputs) = picked else {
            return Ok(false);
        };
        let a = self.fresh(self.mixer, AddrKind::P2wpkh, "mixer_deposit", false)?;
        let outs = vec![self.out(a, amount, Owner::Wallet(self.mixer), self.mixer)];
        let ch = self.change_addr(u, &inputs, Some(a.kind))?;
        let due = self.height + n32(self.rng.range(5, 30));
        self.mixer_queue.push_back((due, u, amount / 100 * 98));
        self.pay_with_change("mixer_deposit", u, inputs, outs, ch, feerate)?;
        Ok(true)
    }

    fn mixer_payout(&mut self) -> Result<bool, StoreError> {
        let Some(&(due, to, amount)) = self.mixer_queue.front() else {
            return Ok(false);
        };
        if due > self.height {
            return Ok(false);
        }
        let mx = self.mixer;
        let feerate = self.feerate();
        let mut pool = std::mem::take(&mut self.wallets[ix(mx)].utxos);
        let picked = Self::select(&mut self.rng, &mut pool, amount, feerate, 1, 40);
        self.wallets[ix(mx)].utxos = pool;
        let Some(inputs) = picked else {
            return Ok(false);
        };
        self.mixer_queue.pop_front();
        let a = if self.cat(to) == Category::User {
            self.receive(to, "receive")?
        } else {
            self.fresh(to, AddrKind::P2wpkh, "mixer_payout", false)?
        };
        let mut out = self.out(a, amount, Owner::Wallet(to), to);
        if self.cat(to) == Category::Ransomware {
            out.tag = Tag::ViaMixer;
        }
        let ch = self.fresh(mx, AddrKind::P2wpkh, "mixer_pool", true)?;
        self.pay_with_change("mixer_payout", mx, inputs, vec![out], ch, feerate)?;
        Ok(true)
    }

    fn ransom_cashout(&mut self) -> Result<bool, StoreError> {
        let r = self.ransomware;
        let Some(coins) = self.take_coins(r, 1, 20, Some(Tag::ViaMixer)) else {
            return Ok(false);
        };
        self.deposit_from(r, "ransom_cashout", Some((coins, "via_mixer")))
    }

    fn self_transfer(&mut self) -> Result<bool, StoreError> {
        let u = self.random_user();
        let Some(inputs) = self.take_coins(u, 6, 30, None) else {
            return Ok(false);
        };
        let feerate = self.feerate();
        let total: u64 = inputs.iter().map(|u| u.value).sum();
        if total < Self::fee_estimate(feerate, &inputs, 1) + DUST {
            self.wallets[ix(u)].utxos.extend(inputs);
            return Ok(false);
        }
        let k = self.wallets[ix(u)].kind;
        let a = self.fresh(u, k, "consolidation", true)?;
        let out = self.out(a, total, Owner::Wallet(u), u);
        self.send_all("self_transfer", u, inputs, out, feerate, "direct")?;
        Ok(true)
    }

    fn coinjoin(&mut self, left: usize) -> Result<bool, StoreError> {
        match self.rng.below(3) {
            0 => self.whirlpool(left),
            1 => self.equal_output_round(left, false),
            _ => self.equal_output_round(left, true),
        }
    }

    /// Whirlpool-like: a user's tx0 splits coins into premix outputs of one denomination
    /// (plus a coordinator fee and change); once five users' premixes wait, a 5-in/5-out
    /// mix of equal outputs follows.
    fn whirlpool(&mut self, left: usize) -> Result<bool, StoreError> {
        let d = self.rng.index(WHIRLPOOL.len());
        let denom = WHIRLPOOL[d];
        let mut distinct: Vec<usize> = Vec::new();
        for (i, (u, _)) in self.premix[d].iter().enumerate() {
            if !distinct.iter().any(|&j| self.premix[d][j].0 == *u) {
                distinct.push(i);
            }
            if distinct.len() == 5 {
                break;
            }
        }
        if distinct.len() == 5 && left >= 1 {
            let mut picked: Vec<(EntityId, Utxo)> = Vec::new();
            for &i in distinct.iter().rev() {
                picked.push(self.premix[d].remove(i));
            }
            picked.reverse();
            let inputs: Vec<Utxo> = picked.iter().map(|p| p.1).collect();
            let mut outs = Vec::new();
            for (u, _) in &picked {
                let a = self.fresh(*u, AddrKind::P2wpkh, "postmix", false)?;
                outs.push(self.out(a, denom, Owner::Wallet(*u), *u));
            }
            self.finish_round("coinjoin_whirlpool", inputs, outs)?;
            return Ok(true);
        }
        // Otherwise a tx0 from a user who can afford a few premix outputs.
        let u = self.random_user();
        let n = self.rng.range(1, 3);
        let need = n * (denom + PREMIX_FEE) + denom / 20;
        let feerate = self.feerate();
        let mut pool = std::mem::take(&mut self.wallets[ix(u)].utxos);
        let picked = Self::select(&mut self.rng, &mut pool, need, feerate, ix(n) + 1, 20);
        self.wallets[ix(u)].utxos = pool;
        let Some(inputs) = picked else {
            return Ok(false);
        };
        let mut outs = Vec::new();
        for _ in 0..n {
            let a = self.fresh(u, AddrKind::P2wpkh, "premix", false)?;
            outs.push(self.out(
                a,
                denom + PREMIX_FEE,
                Owner::Premix { denom: d, user: u },
                u,
            ));
        }
        let c = self.coordinator;
        let fee_addr = self.pool_addr(c, 0, "coordinator")?;
        outs.push(self.out(fee_addr, denom / 20, Owner::Wallet(c), c));
        let ch = self.change_addr(u, &inputs, None)?;
        self.pay_with_change("whirlpool_tx0", u, inputs, outs, ch, feerate)?;
        Ok(true)
    }

    /// Wasabi-like (many participants, one denomination, coordinator fee) or
    /// JoinMarket-like (a taker and a few makers; makers' change earns a fee).
    fn equal_output_round(&mut self, left: usize, joinmarket: bool) -> Result<bool, StoreError> {
        if left < 1 {
            return Ok(false);
        }
        let n = if joinmarket {
            self.rng.range(3, 8)
        } else {
            self.rng.range(10, 40)
        } as usize;
        let denom = if joinmarket {
            {
                let x = self.rng.log_uniform(200_000, 5_000_000);
                self.round(x)
            }
        } else {
            [1_000_000, 10_000_000][self.rng.index(2)]
        };
        let feerate = self.feerate();
        let maker_fee = denom / 1000;
        let mut parts: Vec<(EntityId, Vec<Utxo>)> = Vec::new();
        let mut tries = 0;
        while parts.len() < n && tries < n * 6 {
            tries += 1;
            let u = if self.rng.chance(0.03) {
                self.vendor
            } else {
                self.random_user()
            };
            if parts.iter().any(|p| p.0 == u) {
                continue;
            }
            let mut pool = std::mem::take(&mut self.wallets[ix(u)].utxos);
            let picked = Self::select(
                &mut self.rng,
                &mut pool,
                denom + maker_fee * n64(n),
                feerate,
                2,
                3,
            );
            self.wallets[ix(u)].utxos = pool;
            if let Some(p) = picked {
                parts.push((u, p));
            }
        }
        if parts.len() < 3 {
            for (u, p) in parts {
                self.wallets[ix(u)].utxos.extend(p);
            }
            return Ok(false);
        }
        let c = self.coordinator;
        let mut outs = Vec::new();
        let mut changes = Vec::new();
        let mut inputs = Vec::new();
        let taker = 0;
        let k = n64(parts.len());
        let coord_fee = if joinmarket { 0 } else { denom * 3 / 1000 };
        for (i, (u, p)) in parts.iter().enumerate() {
            let in_sum: u64 = p.iter().map(|x| x.value).sum();
            let my_fee = Self::fee_estimate(feerate, p, 2);
            let fees_paid = if joinmarket {
                if i == taker {
                    my_fee + maker_fee * (k - 1)
                } else {
                    0
                }
            } else {
                my_fee + coord_fee / k
            };
            let earned = if joinmarket && i != taker {
                maker_fee
            } else {
                0
            };
            let change = (in_sum + earned).saturating_sub(denom + fees_paid);
            let a = self.fresh(*u, AddrKind::P2wpkh, "coinjoin_participant", false)?;
            outs.push(self.out(a, denom, Owner::Wallet(*u), *u));
            if change >= DUST {
                let kind = self.wallets[ix(*u)].kind;
                let ca = self.fresh(*u, kind, "change", true)?;
                changes.push(self.out(ca, change, Owner::Wallet(*u), *u));
            }
            inputs.extend(p.iter().copied());
        }
        if coord_fee > 0 {
            let fa = self.pool_addr(c, 0, "coordinator")?;
            changes.push(self.out(fa, coord_fee, Owner::Wallet(c), c));
        }
        outs.append(&mut changes);
        let kind = if joinmarket {
            "coinjoin_joinmarket"
        } else {
            "coinjoin_wasabi"
        };
        self.finish_round(kind, inputs, outs)?;
        Ok(true)
    }

    /// Mature and pending coins counted for a consistency check: total value held.
    pub fn held_value(&self) -> u64 {
        let w: u64 = self
            .wallets
            .iter()
            .flat_map(|w| &w.utxos)
            .map(|u| u.value)
            .sum();
        let d: u64 = self
            .exchanges
            .iter()
            .flat_map(|x| &x.deposits)
            .map(|u| u.value)
            .sum();
        let p: u64 = self.premix.iter().flatten().map(|x| x.1.value).sum();
        let i: u64 = self.immature.iter().map(|x| x.2.value).sum();
        w + d + p + i + self.peel.map_or(0, |p| p.0.value)
    }

    /// Live coins held by actors (memory is bounded by this, not by chain length).
    pub fn live_coins(&self) -> usize {
        self.wallets.iter().map(|w| w.utxos.len()).sum::<usize>()
            + self
                .exchanges
                .iter()
                .map(|x| x.deposits.len())
                .sum::<usize>()
            + self.premix.iter().map(Vec::len).sum::<usize>()
            + self.immature.len()
    }

    /// Transactions in the block being built.
    pub fn block_len(&self) -> usize {
        self.block_txs.len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PayKind {
    Merchant,
    User,
    Purchase,
    Ransom,
}
