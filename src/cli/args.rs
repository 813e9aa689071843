//! Command-line arguments (clap derive). Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Follow cryptocurrency through public blockchains.
///
/// chaintrace ingests public chain data into an exact, partitioned Parquet dataset, clusters
/// addresses into entities, traces funds from flagged wallets under named taint models and
/// writes flow charts and reproducible evidence reports. Amounts are integer satoshi/wei.
#[derive(Debug, Parser)]
#[command(
    name = "chaintrace",
    version = crate::VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Print results as JSON on stdout (progress and messages stay on stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// Do not draw progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Memory budget: bytes, or a number with K, M, G or T (binary units; 1.5G allowed);
    /// at least 16M. Honoured so far by the index build (`cluster index`, or the build
    /// that cluster, trace, stats and serve start when the dataset changed): its address
    /// table within half of it, in as many passes over the outputs as that takes, sorts
    /// and reads sized by it, the same files whatever the budget. Also by `cluster
    /// bitcoin`'s per-cluster figures (its union-find, 9-13 bytes an address, is not
    /// bounded), and by `ingest bitcoin`'s UTXO set (past half of it, its records move to a
    /// scratch file in the dataset's folder; the dataset is the same bytes). A trace stops
    /// with an error, writing nothing, once its heap reaches three quarters of it (narrow
    /// the trace or raise the budget). Stats do not read it: their heap is
    /// the labels and the rows found. Memory-mapped pages
    /// (page cache) are not counted. Default: CHAINTRACE_MEMORY, else half the RAM.
    #[arg(
        long,
        global = true,
        value_name = "SIZE",
        value_parser = parse_memory,
        allow_hyphen_values = true
    )]
    pub memory: Option<crate::memory::Budget>,

    #[command(subcommand)]
    pub command: Command,
}

fn parse_memory(s: &str) -> Result<crate::memory::Budget, String> {
    crate::memory::Budget::parse(s).map_err(|e| e.0)
}

/// The commands of DESIGN.md §2.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest chain data into the Parquet dataset.
    #[command(subcommand)]
    Ingest(Box<IngestCommand>),
    /// Import labels: GraphSense TagPacks, OFAC lists, CSV.
    #[command(subcommand)]
    Labels(LabelsCommand),
    /// A case folder as evidence: metadata, notes, its audit trail and its verification.
    ///
    /// Every trace and report run on a case appends to CASE/audit.jsonl, an append-only,
    /// hash-chained log (each entry holds the sha256 of the line before it) with the time,
    /// tool version and commit, the command as typed and the sha256 of every input and output.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Cluster addresses into entities; explain and show clusters.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Trace funds from seeds, forward or backward, under taint models.
    ///
    /// Seeds: an address, a txid (all its outputs), TXID:VOUT, cluster:ADDRESS (every address
    /// of its cluster, after `chaintrace cluster bitcoin`), or @FILE with one seed per line
    /// (a CSV's first column; a header line is skipped). Writes CASE/trace.json,
    /// CASE/edges.parquet and CASE/ends.parquet: the same trace on the same dataset gives the
    /// same bytes.
    ///
    /// With --chain ethereum: one asset (--token eth, USDT, ... or a contract) traced through
    /// account balances in chain order; seeds are accounts (their whole balance), transaction
    /// hashes (what they moved) or cluster:0x... (after `chaintrace cluster ethereum`); fees,
    /// failed transactions and reverted calls are accounted for; tiho does not apply.
    Trace(Box<TraceArgs>),
    /// Render a trace as charts, an evidence report and exports.
    ///
    /// Reads CASE/trace.json (from `chaintrace trace --out CASE`) and writes into
    /// CASE/report (or --out): flow.svg/png (a layered flow chart: seeds left, exits right),
    /// sankey.svg/png (where the value ended), timeline.svg/png (amounts per day or month),
    /// report.html (self-contained evidence report: question, answer, every transfer,
    /// methodology, provenance with the sha256 of every file), nodes.csv, edges.csv,
    /// graph.graphml, graph.dot, report.json and SHA256SUMS. Same case and options, same
    /// bytes (pin the generation time with --timestamp).
    Report(ReportArgs),
    /// Research aggregates over labelled entities and time (polars over the dataset).
    ///
    /// An entity's addresses are those tagged with it (with --via-clusters, every address
    /// of a cluster holding a tagged one). A receipt is an output paid to the entity by a
    /// transaction with none of its inputs (change is not income); a sending is an output of
    /// a transaction the entity funded, paid to someone else. Amounts are integer satoshi.
    #[command(subcommand)]
    Stats(StatsCommand),
    /// Measure against ground truth: clusterings (eval clusters) and traces (eval trace).
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Generate a synthetic economy in Bitcoin Core's file format with ground truth.
    ///
    /// Writes OUT/blocks/blk*.dat (regtest framing, with xor.dat), readable by
    /// `chaintrace ingest bitcoin --blocks-dir OUT/blocks`, and OUT/truth/*.parquet: who owns
    /// every address (addresses), every entity and its category (entities), the kind of every
    /// transaction (transactions), the flagged entities (flagged) and the true transfers of
    /// the flagged entities' coins to others (flows). Same seed and options, same bytes.
    Simulate(SimulateArgs),
    /// Check a dataset against the node: is it complete?
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run the whole pipeline on built-in data.
    ///
    /// Generates a small simulated world (seeded), ingests it and the bundled real regtest
    /// chain (datasets/regtest-world-a), clusters both, labels the flagged vendor and the
    /// exchanges from the ground truth, traces the vendor's funds forward under all five
    /// taint models and writes the charts and evidence reports into OUT.
    Demo(DemoArgs),
    /// Investigate in the browser: a local graph canvas over the dataset and a case.
    ///
    /// Serves a page and a JSON API on 127.0.0.1 only (never another interface), behind a
    /// random token made for this run: every request must carry it (the printed URL holds
    /// it once, after `#token=`; scripts send `Authorization: Bearer TOKEN`). The page
    /// searches an address, txid or label, shows the address page (received, sent,
    /// balance, first/last seen, its cluster and why it was merged, its tags, its
    /// transactions page by page), puts addresses on a canvas, expands them one hop at a
    /// time, runs traces (the report's flow chart, the models side by side), annotates
    /// nodes and edges and saves: into --case, the same files as `chaintrace trace --out
    /// CASE` (byte for byte) plus annotations.json, each logged in CASE/audit.jsonl with
    /// every request. Bitcoin and Ethereum datasets. The API is documented in docs/API.md. Stop with
    /// Ctrl-C.
    Serve(ServeArgs),
    /// Share flagged addresses with a partner agency without revealing them.
    ///
    /// After FIU.net's Ma3tch: `export` turns the labelled addresses of some categories into
    /// keyed pseudorandom values (HMAC-SHA256 under a key shared with that one partner) in a
    /// binary fuse filter (.ctw; no address, label or case text in it, MAC'd); the partner
    /// runs `match` against its own dataset, labels and cases and learns only which of ITS
    /// addresses hit (each "possible" until revealed), each with a request reference;
    /// `reveal` tells the owner which tag a reference is. `deconflict` finds the flagged
    /// addresses two agencies share and nothing else (Diffie-Hellman PSI over ristretto255,
    /// three steps by files). Need-to-know categories (child_sexual_abuse and kin) are left
    /// out unless named. Nothing listens on a port. Format and limits: docs/SHARE.md.
    #[command(subcommand)]
    Share(ShareCommand),
    /// Follow the chain's tip and alert when a watched address or cluster receives, spends
    /// or pays an exchange.
    ///
    /// Sources: --rpc (Bitcoin Core), --esplora (an Esplora REST API) or --rpc-eth (an
    /// Ethereum node; top-level ETH transfers). Each poll reads the blocks since the last
    /// one seen; a reorganisation is rolled back and the alerts of blocks that left the
    /// chain are retracted. An alert is ALERTS/<time>-<txid>.json (what moved, from which
    /// watched item, to whom, amounts in sat or wei, confirmations, block hash, tool
    /// version, the transaction's inputs and outputs as a one-hop trace); each poll with
    /// news writes one digest and runs --alert-cmd DIGEST ALERT... once. ALERTS/state.json
    /// keeps what was seen: a restart neither loses nor repeats an alert. The first run
    /// starts at the tip. Nothing listens on a port.
    Watch(Box<WatchArgs>),
}

/// `chaintrace watch`
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Bitcoin Core's JSON-RPC URL (e.g. http://127.0.0.1:8332).
    #[arg(long, value_name = "URL", help_heading = "Source", conflicts_with_all = ["esplora", "rpc_eth"])]
    pub rpc: Option<String>,
    /// An Esplora REST API (e.g. https://blockstream.info/api).
    #[arg(
        long,
        value_name = "URL",
        help_heading = "Source",
        conflicts_with = "rpc_eth"
    )]
    pub esplora: Option<String>,
    /// An Ethereum node's JSON-RPC URL.
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub rpc_eth: Option<String>,
    /// Bitcoin Core's cookie file for --rpc.
    #[arg(long, value_name = "FILE", help_heading = "Source", conflicts_with_all = ["rpc_user", "rpc_password"])]
    pub rpc_cookie: Option<PathBuf>,
    /// RPC user name (with --rpc-password).
    #[arg(
        long,
        value_name = "USER",
        help_heading = "Source",
        requires = "rpc_password"
    )]
    pub rpc_user: Option<String>,
    /// RPC password (with --rpc-user).
    #[arg(
        long,
        value_name = "PASSWORD",
        help_heading = "Source",
        requires = "rpc_user"
    )]
    pub rpc_password: Option<String>,
    #[command(flatten)]
    pub retry: RpcRetryArgs,
    /// Addresses to watch (repeatable): an address, or @FILE with one per line (a CSV's
    /// first column; a header line and # comments are skipped).
    #[arg(long, value_name = "ITEM")]
    pub watch: Vec<String>,
    /// Watch whole clusters: at start, every address of a watched address's cluster in
    /// --data (after `chaintrace cluster bitcoin`); while watching, every address spent
    /// together with a watched one (multi-input).
    #[arg(long)]
    pub watch_clusters: bool,
    /// A partner's watchlist (.ctw, from `chaintrace share export`) to watch too; with
    /// --key-file. Its hits are "possible" and carry the request reference.
    #[arg(long, value_name = "FILE", requires = "key_file")]
    pub share: Vec<PathBuf>,
    /// The key shared with the watchlist's sender.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// A dataset whose labels name exchanges (a watched spend paying one is an `exchange`
    /// alert) and whose clusters --watch-clusters reads.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Folder of alerts, digests and the watch's state (created).
    #[arg(long, value_name = "DIR")]
    pub alerts: PathBuf,
    /// Program run once per poll with news: its arguments are the digest's path, then the
    /// new alert and retraction files.
    #[arg(long, value_name = "CMD")]
    pub alert_cmd: Option<String>,
    /// Seconds between polls: an alert comes at most this long after its block.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub poll: f64,
    /// Poll once and exit (for cron and tests).
    #[arg(long)]
    pub once: bool,
}

/// `chaintrace share ...`
#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Make a key for one partner: 32 random bytes in a new file (mode 0600).
    Keygen(ShareKeygenArgs),
    /// Write a watchlist (.ctw) of your labelled addresses for one partner.
    Export(ShareExportArgs),
    /// Match a partner's watchlist against your dataset, labels and cases.
    Match(ShareMatchArgs),
    /// Which of your tags a partner's request reference (R-...) names.
    Reveal(ShareRevealArgs),
    /// The flagged addresses you and a partner share, and nothing else (three steps).
    ///
    /// Step 1, each side: `--out mine.ctd` (also writes mine.ctd.secret: keep it, never send
    /// it); exchange the .ctd files. Step 2, each side: `--mine mine.ctd --theirs theirs.ctd
    /// --out reply.ctd`; exchange the replies. Step 3, each side: `--mine mine.ctd --theirs
    /// theirs.ctd --reply their-reply.ctd`: prints your addresses the partner flags too.
    Deconflict(ShareDeconflictArgs),
}

/// Which labels a share command reads.
#[derive(Debug, Args)]
pub struct ShareLabels {
    /// Dataset directory whose labels (DATA/labels/tags.parquet) are read.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// A tags file to read instead (a tags.parquet written by `labels import`).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Categories to share (comma-separated; default: every category except the
    /// need-to-know ones, which are shared only when named here).
    #[arg(long, value_delimiter = ',')]
    pub category: Vec<String>,
    /// Share non-public tags too.
    #[arg(long)]
    pub include_private: bool,
}

/// `chaintrace share keygen`
#[derive(Debug, Args)]
pub struct ShareKeygenArgs {
    /// The new key file (never overwritten).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `chaintrace share export`
#[derive(Debug, Args)]
pub struct ShareExportArgs {
    #[command(flatten)]
    pub labels: ShareLabels,
    /// The partner's name, as agreed (written in clear in the file).
    #[arg(long = "for", value_name = "NAME")]
    pub for_partner: String,
    /// The key shared with that partner (`share keygen`).
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// The watchlist file to write (an existing file is refused unless --force).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}

/// `chaintrace share match`
#[derive(Debug, Args)]
pub struct ShareMatchArgs {
    /// The partner's watchlist (.ctw).
    pub file: PathBuf,
    /// The key shared with that partner.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// Your dataset: every address in it, and its labels, are matched.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Your case folders (repeatable): their seeds and traced addresses are matched, and a
    /// hit names the case.
    #[arg(long, value_name = "DIR")]
    pub case: Vec<PathBuf>,
    /// Report each hit's cluster (after `chaintrace cluster bitcoin`): its size and
    /// representative, so that a hit names an entity, not only an address.
    #[arg(long)]
    pub via_clusters: bool,
}

/// `chaintrace share reveal`
#[derive(Debug, Args)]
pub struct ShareRevealArgs {
    /// Request references quoted by the partner (R-...).
    #[arg(required = true, value_name = "REF")]
    pub references: Vec<String>,
    #[command(flatten)]
    pub labels: ShareLabels,
    /// The key shared with that partner.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// Fields of the tag to release (comma-separated): address, category, source,
    /// confidence, lastmod, label, entity.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "address,category,source,confidence,lastmod"
    )]
    pub fields: Vec<String>,
}

/// `chaintrace share deconflict`
#[derive(Debug, Args)]
pub struct ShareDeconflictArgs {
    #[command(flatten)]
    pub labels: ShareLabels,
    /// The key shared with that partner.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// Your round-1 message (step 2 and 3; its .secret file beside it).
    #[arg(long, value_name = "FILE")]
    pub mine: Option<PathBuf>,
    /// The partner's round-1 message (steps 2 and 3).
    #[arg(long, value_name = "FILE")]
    pub theirs: Option<PathBuf>,
    /// The partner's reply to your round 1 (step 3).
    #[arg(long, value_name = "FILE")]
    pub reply: Option<PathBuf>,
    /// The message to write (step 1: your round 1; step 2: your reply); an existing file
    /// is refused unless --force.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}

impl Command {
    /// The command's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ingest(i) if matches!(**i, IngestCommand::Bitcoin(_)) => "ingest bitcoin",
            Command::Ingest(_) => "ingest ethereum",
            Command::Labels(_) => "labels",
            Command::Case(_) => "case",
            Command::Cluster(ClusterCommand::Ethereum(_)) => "cluster ethereum",
            Command::Cluster(ClusterCommand::Bitcoin(_)) => "cluster bitcoin",
            Command::Cluster(ClusterCommand::Index(_)) => "cluster index",
            Command::Cluster(ClusterCommand::Explain(_)) => "cluster explain",
            Command::Cluster(ClusterCommand::Show(_)) => "cluster show",
            Command::Trace(_) => "trace",
            Command::Report(_) => "report",
            Command::Stats(_) => "stats",
            Command::Eval(EvalCommand::Clusters(_)) => "eval clusters",
            Command::Eval(EvalCommand::Trace(_)) => "eval trace",
            Command::Simulate(_) => "simulate",
            Command::Demo(_) => "demo",
            Command::Serve(_) => "serve",
            Command::Share(_) => "share",
            Command::Watch(_) => "watch",
            Command::Check(_) => "check ethereum",
        }
    }
}

/// Arguments of a command that is not built yet: accepted so that `--help` lists the
/// command, refused when run.
#[derive(Debug, Args)]
pub struct PlannedArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// `chaintrace stats ...`
#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Money in and out of the entities of some categories, per period: revenue, payments,
    /// distinct payer addresses (input 0's; one customer may use many), where the money went
    /// (transactions funded by the entity alone). Writes OUT/flows/inflows, outflows,
    /// top_counterparties (.csv, .parquet) and charts (flows per --by bucket as
    /// daily_flows, weekly_flows, monthly_flows or yearly_flows; payment sizes; top
    /// counterparties).
    Flows(StatsFlowsArgs),
    /// One entity (by label) or address: revenue, spending, balance, counterparties and
    /// activity over time.
    Entity(StatsEntityArgs),
    /// For each entity of a category (e.g. exchanges): its inflow from others and the share
    /// that is illicit, directly (one hop, haircut) or as traced by a case (--case).
    Exposure(StatsExposureArgs),
}

/// Options shared by the stats commands.
#[derive(Debug, Args)]
pub struct StatsCommon {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Give a tag to every address of its cluster (needs `chaintrace cluster bitcoin`).
    #[arg(long)]
    pub via_clusters: bool,
    /// Use tags marked non-public too.
    #[arg(long)]
    pub include_private: bool,
    /// Which tag wins when an address carries disagreeing tags: sources or label files
    /// (path, file name or TagPack/CSV source) to prefer, strongest first. Without it, the
    /// higher GraphSense confidence wins, then the more recent lastmod (never the import day), then
    /// content order; `chaintrace labels conflicts` shows every decision.
    #[arg(long, value_delimiter = ',', value_name = "SOURCE|FILE")]
    pub prefer: Vec<String>,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "stats")]
    pub out: PathBuf,
}

/// The time buckets of `stats flows` and `stats entity`.
#[derive(Debug, Args)]
pub struct StatsPeriod {
    /// Time buckets: day, week, month or year.
    #[arg(long, default_value = "month", value_parser = ["day", "week", "month", "year"])]
    pub by: String,
}

/// `chaintrace stats flows`
#[derive(Debug, Args)]
pub struct StatsFlowsArgs {
    #[command(flatten)]
    pub common: StatsCommon,
    #[command(flatten)]
    pub period: StatsPeriod,
    /// Label categories (comma-separated), e.g. illicit_vendor,ransomware.
    #[arg(long, value_delimiter = ',', required = true)]
    pub category: Vec<String>,
    /// Fiat currency of --prices.
    #[arg(long, value_name = "CUR", default_value = "usd")]
    pub fiat: String,
    /// Daily price CSV (Date and Close columns) for fiat columns beside the satoshi.
    #[arg(long, value_name = "CSV")]
    pub prices: Option<PathBuf>,
}

/// `chaintrace stats entity`
#[derive(Debug, Args)]
pub struct StatsEntityArgs {
    #[command(flatten)]
    pub common: StatsCommon,
    #[command(flatten)]
    pub period: StatsPeriod,
    /// An entity name of the labels, or an address.
    #[arg(value_name = "ENTITY_OR_ADDRESS")]
    pub target: String,
}

/// `chaintrace stats exposure`
#[derive(Debug, Args)]
pub struct StatsExposureArgs {
    #[command(flatten)]
    pub common: StatsCommon,
    /// The category whose entities' inflow is examined.
    #[arg(long, default_value = "exchange")]
    pub category: String,
    /// Categories counted as illicit (comma-separated), for the direct measure.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "illicit_vendor,ransomware"
    )]
    pub illicit: Vec<String>,
    /// Use the exits of this trace case instead of the direct measure.
    #[arg(long, value_name = "CASE")]
    pub case: Option<PathBuf>,
    /// The case's taint model.
    #[arg(long, default_value = "haircut")]
    pub policy: String,
}

/// `chaintrace cluster ethereum`
#[derive(Debug, Args)]
pub struct ClusterEthereumArgs {
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Deposit addresses a hot wallet needs to count as one.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_deposits: u32,
    /// A sweep must leave within this many blocks of the last deposit it forwards (Victor's
    /// t_max).
    #[arg(long, value_name = "BLOCKS", default_value_t = 3200)]
    pub max_delay_blocks: u64,
    /// A sweep may forward this much less than the deposits since the previous sweep, in wei
    /// (the gas it pays; Victor's a_max, 0.01 ETH).
    #[arg(long, value_name = "WEI", default_value_t = 10_000_000_000_000_000)]
    pub max_amount_diff: u128,
}

/// `chaintrace report`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The case folder written by `chaintrace trace --out`.
    #[arg(value_name = "CASE", required_unless_present = "case_flag")]
    pub case: Option<PathBuf>,
    /// The case folder, as `serve` and `stats` take it (the same as CASE).
    #[arg(long = "case", value_name = "CASE", conflicts_with = "case")]
    pub case_flag: Option<PathBuf>,
    /// Output folder (default: CASE/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Formats to write (comma-separated): svg, png, html, csv, graphml, dot, json, and pdf
    /// (an A4 court exhibit; not written unless asked for).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "svg,png,html,csv,graphml,dot,json"
    )]
    pub format: Vec<String>,
    /// The taint model the charts and graph exports show (default: haircut if traced).
    #[arg(long, value_name = "MODEL")]
    pub policy: Option<String>,
    /// Collapse peel chains (unlabelled one-in, pass-on addresses) into one node each.
    #[arg(long)]
    pub collapse_peel_chains: bool,
    /// Shortest chain collapsed by --collapse-peel-chains.
    #[arg(long, default_value_t = 3, value_name = "HOPS")]
    pub min_peel_hops: usize,
    /// At most this many boxes on the flow chart; the smallest unlabelled flows are merged
    /// per column beyond it.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_nodes: usize,
    /// Flow chart columns: hop (first hop reaching the node) or time (its first day).
    #[arg(long, default_value = "hop", value_parser = ["hop", "time"])]
    pub columns: String,
    /// Fiat currency of --prices (a label for the values).
    #[arg(long, value_name = "CUR", default_value = "usd")]
    pub fiat: String,
    /// Daily price CSV (Date, ..., Close columns, as BTC-USD.csv) for fiat values beside
    /// the exact amounts.
    #[arg(long, value_name = "CSV")]
    pub prices: Option<PathBuf>,
    /// Generation time to print (YYYY-MM-DDTHH:MM:SSZ or unix seconds), for byte-identical
    /// reruns; default: now.
    #[arg(long, value_name = "TIME")]
    pub timestamp: Option<String>,
    /// At most this many rows in the HTML report's transfer table; the rest are in the
    /// appendix edges.csv beside it (the report says so).
    #[arg(long, default_value_t = 2_000, value_name = "N")]
    pub max_table_rows: usize,
    /// Also draw the path of these exits (numbers of the exits table: E3, or 3; repeat or
    /// separate with commas; `all` for every exit): one detail chart each, from the seed to
    /// the deposit, every transaction with its txid, block and what moved on. Written as
    /// path-E3.svg/.png and added to the HTML and PDF.
    #[arg(long, value_name = "EXITS")]
    pub path: Vec<String>,
}

/// `chaintrace demo`
#[derive(Clone, Debug, Args)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "demo-out")]
    pub out: PathBuf,
    /// The bundled regtest world (a Bitcoin Core blocks directory and its ground truth).
    #[arg(long, value_name = "DIR", default_value = "datasets/regtest-world-a")]
    pub regtest: PathBuf,
    /// Transactions of the simulated world.
    #[arg(long, default_value_t = 20_000)]
    pub txs: u64,
    /// Seed of the simulated world.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Daily price CSV (date,close in USD) for fiat values in the reports; the simulated
    /// world's round payments are then round dollar amounts on the days it covers (the
    /// world spans 2025).
    #[arg(long, value_name = "CSV")]
    pub prices: Option<PathBuf>,
    /// Generation time printed in the reports (default: now).
    #[arg(long, value_name = "TIME")]
    pub timestamp: Option<String>,
}

/// `chaintrace serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// A case folder to save traces and annotations into (created if missing); every
    /// request is logged in its audit trail. Without it the canvas explores but cannot
    /// save.
    #[arg(long, value_name = "DIR")]
    pub case: Option<PathBuf>,
    /// Port on 127.0.0.1 (0: any free port, printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The access token (default: 32 random hexadecimal digits made for this run). Give
    /// one only to script against a known token; anyone who has it can use the server.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Options shared by commands that read a dataset.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,

    /// Network (bitcoin, testnet, testnet4, signet, regtest); default: the only one in DATA.
    #[arg(long, value_name = "NET")]
    pub network: Option<String>,
}

/// `chaintrace cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Cluster Bitcoin addresses: builds or loads the address index, applies the
    /// heuristics with union-find and writes DATA/clusters/<network>/: address_cluster,
    /// clusters and merges (.parquet), cluster_of.bin and _meta.json (written last: a
    /// killed run leaves no clustering that loads). The merges are kept meanwhile in a
    /// scratch folder there (.scratch-*, 16 bytes a merge, removed at the end or by the
    /// next run). One clustering of a network at a time.
    Bitcoin(ClusterBitcoinArgs),
    /// Build the address index of a Bitcoin dataset now (cluster, trace, stats and serve
    /// build it when it is missing or the dataset changed): dense ids for transactions,
    /// outputs, inputs and addresses, and address -> outputs rows, in DATA/<network>/index.
    /// Within --memory: the address table in as many passes over the outputs as it needs,
    /// sorts in runs; the same files whatever the budget. When the dataset only grew
    /// (blocks appended by a later ingest) the index is extended by the new blocks, to the
    /// same files as a rebuild; a reorg, a re-ingested range or a gap rebuilds it.
    Index(ClusterIndexArgs),
    /// Cluster Ethereum accounts by deposit-address reuse (Victor 2020): senders to one
    /// exchange deposit address are one entity; deposit addresses join their hot wallet.
    /// Writes DATA/clusters/ethereum/{address_cluster,merges}.parquet and _meta.json.
    Ethereum(ClusterEthereumArgs),
    /// Why are these two addresses one entity? The shortest chain of merges, each with its
    /// transaction and heuristic.
    Explain(ExplainArgs),
    /// An address's cluster: size, balance, first/last seen, top counterparties, warnings.
    Show(ShowArgs),
}

/// `chaintrace cluster index`.
#[derive(Debug, Args)]
pub struct ClusterIndexArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,

    /// Build it from genesis even if the index is current (or could be extended).
    #[arg(long)]
    pub rebuild: bool,

    /// Check every index file against the sha256 recorded when it was built (reads the
    /// whole index): a damaged or altered file is named and the command exits 1; rebuild
    /// with --rebuild. `case verify` checks the same.
    #[arg(long)]
    pub verify: bool,
}

/// `chaintrace cluster bitcoin`.
#[derive(Debug, Args)]
pub struct ClusterBitcoinArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,

    /// Heuristics, comma-separated: multi-input; change rules change-one-time,
    /// change-type, change-optimal, change-round, change-fresh, change-single-use,
    /// change-decimals, change-round-fiat (with --prices) (precise on their own),
    /// change-spent-alone, change-peel,
    /// change-first-spent, change-foreign, change-batch, change-fingerprint
    /// (forward-looking or cluster-aware: votes), change-sweep (forward-looking, measured
    /// but not a vote), and change-vote (the votes' consensus). The default, multi-input,change-vote, is
    /// the set with the most recall at pairwise precision >= 0.97 on a real Bitcoin Core
    /// world and two simulated ones (docs/CLUSTERING.md). CoinJoins are always detected
    /// and excluded.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "multi-input,change-vote",
        value_delimiter = ','
    )]
    pub heuristics: Vec<String>,

    /// Collapse guard: hold back (do not apply, list in _meta.json) a change merge that
    /// would join two clusters both holding at least N addresses (docs/CLUSTERING.md: the
    /// default, 20, keeps pairwise precision >= 0.97 on every world measured, up to a
    /// 1 M-transaction one where 100 gave 0.966); 0 turns it off. Change
    /// merges joining differently labelled actors (see --labels) are always held back;
    /// multi-input merges joining them are applied and warned about.
    #[arg(long, value_name = "N", default_value_t = crate::cluster::DEFAULT_HOLD_SIZE)]
    pub hold_size: u64,

    /// Daily price CSV (Date and Close columns, USD per BTC, as Yahoo's BTC-USD.csv), for
    /// the change-round-fiat rule (a payment round in dollars at the day's close).
    #[arg(long, value_name = "CSV")]
    pub prices: Option<PathBuf>,

    /// Warn about clusters holding more than this share of all addresses.
    #[arg(long, value_name = "SHARE", default_value_t = 0.05)]
    pub max_share: f64,

    /// Labels to check merges against (CSV or Parquet with `address` and `actor`, `entity`
    /// or `label` columns): a change merge that would join two actors is held back and
    /// listed; a multi-input merge doing so is reported as a conflict. DATA/labels/tags.parquet
    /// is used when present.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
}

/// `chaintrace cluster explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// First address.
    pub address_a: String,
    /// Second address.
    pub address_b: String,
}

/// `chaintrace cluster show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// An address of the cluster.
    pub address: String,
    /// How many counterparties to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// `chaintrace eval ...`
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Pairwise precision/recall/F1 and homogeneity/completeness of clusterings against
    /// ground truth (address -> entity), one row per heuristic set.
    Clusters(EvalClustersArgs),
    /// The measured error of a trace: each model's exposure to a category (default:
    /// exchange) against ground truth — a simulator truth folder (flows.parquet) or a
    /// regtest world's peel_chain.csv — in total and per receiving entity, with the true
    /// flows found. Writes CASE/eval_trace.json, which the report shows.
    Trace(EvalTraceArgs),
}

/// `chaintrace eval trace`.
#[derive(Debug, Args)]
pub struct EvalTraceArgs {
    /// Case folder (from `chaintrace trace --out`).
    #[arg(value_name = "CASE")]
    pub case: PathBuf,
    /// Ground truth: a simulator truth folder or flows.parquet, or a regtest world's
    /// ground_truth folder or peel_chain.csv.
    #[arg(long, value_name = "PATH")]
    pub truth: PathBuf,
    /// The category whose exposure is measured.
    #[arg(long, default_value = "exchange")]
    pub category: String,
    /// The flagged entity whose flows the seeds are (when the truth has several).
    #[arg(long, value_name = "ENTITY")]
    pub flagged: Option<String>,
    /// Also run the case's recorded trace again at these hop limits (e.g. 1,5,20) and
    /// measure each: how the error grows or shrinks with the hops followed.
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub hops: Vec<u32>,
    /// Measure even when none of the truth's transactions appears in the case (by default
    /// refused: such a truth usually describes another dataset or flagged entity).
    #[arg(long)]
    pub allow_disjoint: bool,
}

/// `chaintrace eval clusters`.
#[derive(Debug, Args)]
pub struct EvalClustersArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Ground truth: a simulator truth directory, its addresses.parquet, or a CSV with
    /// address and entity columns (e.g. regtest-world-a/ground_truth/addresses.csv).
    #[arg(long, value_name = "PATH")]
    pub truth: PathBuf,
    /// Heuristic sets to score, each a '+'-joined list; default: multi-input, then each
    /// change heuristic added to it, then all.
    #[arg(long = "set", value_name = "SET")]
    pub sets: Vec<String>,
    /// The collapse guard each set is clustered with, as `cluster bitcoin --hold-size`
    /// (0: off), so that the scores are those of the clustering a user gets.
    #[arg(long, value_name = "N", default_value_t = crate::cluster::DEFAULT_HOLD_SIZE)]
    pub hold_size: u64,

    /// Daily price CSV (Date and Close columns, USD per BTC, as Yahoo's BTC-USD.csv), for
    /// the change-round-fiat rule (a payment round in dollars at the day's close).
    #[arg(long, value_name = "CSV")]
    pub prices: Option<PathBuf>,
}

/// `chaintrace trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// Chain: bitcoin (UTXO model) or ethereum (account model: one asset at a time, see
    /// --token; poison, haircut, fifo, lifo).
    #[arg(long, default_value = "bitcoin", value_parser = ["bitcoin", "ethereum"])]
    pub chain: String,
    /// Ethereum: the asset to trace: eth, a token symbol (USDT, USDC, DAI, WETH, WBTC: their
    /// mainnet contracts) or an ERC-20 contract address.
    #[arg(long, default_value = "eth", value_name = "ASSET")]
    pub token: String,
    /// Ethereum: decimal places of a token given by address (for display; amounts stay exact
    /// integers). Without it such a token is shown in raw units.
    #[arg(long, value_name = "N")]
    pub token_decimals: Option<u32>,
    /// Ethereum: the symbol to show for a token given by address (e.g. TUSD).
    #[arg(long, value_name = "SYMBOL")]
    pub token_symbol: Option<String>,
    /// Seeds (repeatable): ADDRESS, TXID, TXID:VOUT, cluster:ADDRESS or @FILE (Bitcoin); an
    /// 0x account, an 0x transaction hash, cluster:0xADDRESS or @FILE (Ethereum).
    #[arg(long = "seed", required = true, value_name = "SEED")]
    pub seeds: Vec<String>,
    /// forward: where the money went; backward: where it came from.
    #[arg(long, default_value = "forward", value_parser = ["forward", "backward"])]
    pub direction: String,
    /// Taint model: poison, haircut, fifo, lifo, tiho, or all (comma-separated list allowed;
    /// on Ethereum, all means the four that apply to accounts).
    #[arg(long, default_value = "haircut", value_delimiter = ',')]
    pub policy: Vec<String>,
    /// Transactions to follow from the seeds at most.
    #[arg(long, default_value_t = 20)]
    pub max_hops: u32,
    /// Bitcoin without a dataset: `esplora:URL` (an Esplora REST API, e.g.
    /// esplora:https://blockstream.info/api). Only the transactions the trace needs are
    /// fetched, hop by hop from the seeds (addresses, txids, TXID:VOUT), stopping at
    /// --stop-at labels, --max-hops and --min-value, into --data as a neighbourhood dataset;
    /// the trace then runs on it. Replies are cached in DATA/.fetch-cache, so a rerun or a
    /// wider trace asks only for what is missing. The case and report say the data is a
    /// neighbourhood fetched from that API at that time. --ca-cert, --proxy (e.g.
    /// socks5h://127.0.0.1:9050 for Tor), --rpc-header, --concurrency and --max-rps apply.
    #[arg(long, value_name = "SOURCE", help_heading = "Source")]
    pub source: Option<String>,
    /// Ethereum (ETH): take every account's opening balance from this JSON-RPC node
    /// (eth_getBalance at the block before the dataset's first; an archive node for old
    /// blocks) instead of the least balance that explains what the dataset shows it
    /// sending. A genesis allocation or an older balance then counts: it dilutes haircut
    /// shares and is spent first under FIFO. The node must follow the dataset's chain.
    /// What it answers is kept in DATA/ethereum/opening_balances.json: `cached` uses that
    /// (offline; `case verify` replays with it). --ca-cert, --proxy and --rpc-header apply.
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub opening_balances: Option<String>,
    /// With --source: requests in flight.
    #[arg(long, value_name = "K", default_value_t = 4, help_heading = "Source")]
    pub concurrency: usize,
    /// With --source: at most this many requests per second (0: no limit).
    #[arg(
        long,
        value_name = "RPS",
        default_value_t = 0.0,
        help_heading = "Source"
    )]
    pub max_rps: f64,
    #[command(flatten)]
    pub retry: RpcRetryArgs,
    /// Stop following outputs (transfers) carrying less taint than this: a unit-suffixed
    /// amount (Bitcoin: 0.001btc, 100000sat; Ethereum: 0.5eth, 20gwei, 1000wei) or a bare
    /// integer of base units (satoshi, wei, token base units). Exact: more decimals than the
    /// unit has are refused.
    #[arg(long, default_value = "0", value_name = "AMOUNT", value_parser = crate::trace::request::parse_min_value)]
    pub min_value: crate::trace::request::MinValue,
    /// Label categories where the trace stops (default: exchange, when a loaded label has
    /// it; `none`: nowhere): the points where a subpoena can reveal a person. A category that
    /// no loaded label of the chain has is an error naming the categories present.
    /// Need-to-know categories (child_sexual_abuse and kin) appear as need_to_know in the
    /// answer, the case and its report unless named here.
    #[arg(long, value_delimiter = ',', value_name = "CATEGORY")]
    pub stop_at: Vec<String>,
    /// Follow transactions from this height on.
    #[arg(long, default_value_t = 0)]
    pub from_height: u64,
    /// Follow transactions up to this height (Ethereum: block number; default: the
    /// dataset's last).
    #[arg(long, value_name = "HEIGHT")]
    pub to_height: Option<u64>,
    /// Follow transactions from this time on (YYYY-MM-DD or unix seconds, UTC).
    #[arg(long, value_name = "TIME")]
    pub from_time: Option<String>,
    /// Follow transactions up to this time (YYYY-MM-DD, inclusive, or unix seconds, UTC).
    #[arg(long, value_name = "TIME")]
    pub to_time: Option<String>,
    /// Use tags marked non-public (TagPack is_public: false) too.
    #[arg(long)]
    pub include_private: bool,
    /// Leave exits carrying less than this percentage of their deposit out of the answer's
    /// lists (they stay in the totals and the case files); e.g. 1 or 0.5.
    #[arg(long, value_name = "PERCENT", default_value = "0", value_parser = crate::trace::parse_min_share)]
    pub min_share: crate::trace::MinShare,
    /// Follow taint through transactions chaintrace detects as CoinJoins (JoinMarket,
    /// Whirlpool, equal-output), splitting them by the model like any other. Without it,
    /// taint that reaches a CoinJoin ends there as "entered a CoinJoin" (with its amount and
    /// the CoinJoin's txid): a model's split of a CoinJoin would taint innocent participants.
    #[arg(long)]
    pub through_coinjoins: bool,
    /// Seed with a cluster:ADDRESS even when `chaintrace cluster` flagged that cluster (a
    /// merge joining differently labelled actors, or a collapse beyond --max-share) or it
    /// is larger than --max-seed-cluster.
    #[arg(long)]
    pub allow_conflicted_cluster: bool,
    /// A cluster:ADDRESS seed of more addresses than this is refused (a service or a
    /// collapse, not one actor) unless --allow-conflicted-cluster.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_seed_cluster: usize,
    /// Which tag wins when an address carries disagreeing tags: sources or label files
    /// (path, file name or TagPack/CSV source) to prefer, strongest first. Without it, the
    /// higher GraphSense confidence wins, then the more recent lastmod (never the import day), then
    /// content order; `chaintrace labels conflicts` shows every decision.
    #[arg(long, value_delimiter = ',', value_name = "SOURCE|FILE")]
    pub prefer: Vec<String>,
    /// Nodes of the result: addresses, or clusters (named by their representative address;
    /// transfers inside a cluster are left out). Needs `chaintrace cluster bitcoin|ethereum` first.
    #[arg(long, default_value = "address", value_parser = ["address", "cluster"])]
    pub level: String,
    /// Case directory to write: new, empty, or a case of this same command (rerunning it
    /// reproduces the case).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace a case of another command in --out (its report/ is removed too).
    #[arg(long)]
    pub force: bool,
}

/// Simulator presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// Few actors and 40-transaction blocks: for tests and the demo.
    Small,
    /// Realistic shares of behaviour, 1000-transaction blocks.
    Default,
    /// Hard for heuristics: many CoinJoins, change that mimics payments, reused exchange addresses.
    Adversarial,
}

/// `chaintrace simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Random seed: the same seed and options give byte-identical output.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,

    /// Number of transactions to generate (coinbases included). A target: the world ends
    /// with the block that reaches it, or with the period's last block, so the count can
    /// differ by a few (or fall short when a short period caps the blocks); the summary
    /// gives the count made.
    #[arg(long, default_value_t = 100_000)]
    pub txs: u64,

    /// Behaviour preset.
    #[arg(long, value_enum, default_value = "default")]
    pub preset: PresetArg,

    /// Output directory (blocks/ and truth/ inside are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// First day of the calendar period the world spans (YYYY-MM-DD, UTC; with --end or
    /// --days). Its blocks are spread over the whole period, one every 10 minutes when the
    /// size fills them, with daily and weekly rhythm and growth; the first 101 blocks hold
    /// only coinbases (their coins mature before trade begins) and the genesis block keeps
    /// regtest's 2011 time. Without a period the world is as dense as blocks allow, from
    /// 2026-01-01.
    #[arg(long, value_name = "DATE")]
    pub start: Option<String>,

    /// Last day of the period (YYYY-MM-DD, UTC, included).
    #[arg(long, value_name = "DATE", conflicts_with = "days")]
    pub end: Option<String>,

    /// Length of the period in days (from --start, or from 2024-01-01).
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,

    /// Daily price CSV (Date and Close columns, as Yahoo's BTC-USD.csv): with a period, a
    /// round payment on a day it prices is a round dollar amount ($120, $4,500) in sat, and
    /// truth/monthly.parquet gains the flagged entities' flows in US cents. Checked before
    /// anything in --out is replaced; a warning says when it prices none of the period.
    #[arg(long, value_name = "CSV")]
    pub prices: Option<PathBuf>,
}

/// Sources to ingest.
#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Ingest Bitcoin from Bitcoin Core's blocks directory or its JSON-RPC.
    ///
    /// --blocks-dir reads blk*.dat (with Bitcoin Core >= 28's xor.dat obfuscation), picks the
    /// best chain from the block index (blocks/index) or, without one, by linking headers and
    /// summing proof of work, and resolves every input against the UTXO set. --rpc asks a
    /// node (getblock verbosity 3 carries each input's prevout) and, with --follow, keeps the
    /// dataset at the tip, rolling back reorganisations. Both write
    /// DATA/<network>/{blocks,transactions,inputs,outputs}/part-*.parquet and _manifest.json,
    /// byte-identical for the same chain. Rerunning continues where the last run stopped; a
    /// killed run loses nothing.
    Bitcoin(Box<IngestBitcoinArgs>),
    /// Ingest Ethereum from a JSON-RPC node.
    ///
    /// Writes DATA/ethereum/{blocks,transactions,token_transfers,internal_transfers,
    /// withdrawals,rewards} (wei and token amounts as exact decimal text; pre-merge rewards
    /// from --traces parity, or on mainnet from the fork schedule) on a height-aligned part grid with a manifest: rerunning skips
    /// complete parts, a killed run loses nothing. `chaintrace check ethereum` then proves it
    /// complete against the node's balances.
    Ethereum(Box<IngestEthereumArgs>),
}

/// `chaintrace check` subcommands.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Reconcile balances: from the dataset alone, every account's balance change over the
    /// dataset's blocks (transaction values and fees: gas_used × effective_gas_price, the
    /// base fee burnt and the rest to the fee recipient; internal transfers; validator
    /// withdrawals), compared with the node's eth_getBalance before the first block and at
    /// the last. Prints the accounts that differ and what may explain it (no call traces,
    /// an incomplete SELFDESTRUCT frame); exits 1 if any differs. Blob fees (EIP-4844) are
    /// burnt; pre-merge block and uncle rewards count when the dataset has them.
    Ethereum(CheckEthereumArgs),
}

/// `chaintrace check ethereum`
#[derive(Debug, Args)]
pub struct CheckEthereumArgs {
    /// The node's JSON-RPC URL (an archive node: balances at past blocks).
    #[arg(long, value_name = "URL")]
    pub rpc: String,
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Check only the first K accounts (in address order) instead of every one touched (the
    /// output says it was a sample).
    #[arg(long, value_name = "K")]
    pub sample: Option<usize>,
    /// Reconcile the balances after this block (default: the dataset's last): the
    /// dataset's blocks up to it against the node's balances there.
    #[arg(long, value_name = "N")]
    pub block: Option<u64>,
    #[command(flatten)]
    pub retry: RpcRetryArgs,
}

/// `chaintrace ingest ethereum`
#[derive(Debug, Args)]
pub struct IngestEthereumArgs {
    /// The node's or provider's JSON-RPC URL: http://host:port[/path] or https://… (a key
    /// in the path is kept out of files and messages).
    #[arg(long, value_name = "URL")]
    pub rpc: String,
    /// First block (rounded down to its part's start).
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Last block (default: the node's tip).
    #[arg(long)]
    pub to: Option<u64>,
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Delete DATA/ethereum/ first when it holds another chain (the node's chain leaves it
    /// more than 100 blocks below its tip); without it such an ingest is refused.
    #[arg(long)]
    pub replace: bool,
    /// Requests in flight to the node.
    #[arg(long, value_name = "K", default_value_t = 4)]
    pub concurrency: usize,
    /// At most this many requests per second (0: no limit), for rate-limited providers.
    #[arg(long, value_name = "RPS", default_value_t = 0.0)]
    pub max_rps: f64,
    /// Internal transfers from call traces: geth (debug_traceBlockByNumber with callTracer:
    /// geth, reth, anvil), parity (trace_block: Erigon, Nethermind, OpenEthereum, anvil) or
    /// none.
    #[arg(long, default_value = "geth", value_parser = ["geth", "parity", "none"])]
    pub traces: String,
    /// Blocks per part file.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub part_blocks: u32,
    #[command(flatten)]
    pub retry: RpcRetryArgs,
}

/// How long to wait for a node and how often to retry (both ingest commands).
#[derive(Debug, Args)]
pub struct RpcRetryArgs {
    /// Seconds to wait for one RPC reply.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 60.0,
        help_heading = "RPC"
    )]
    pub rpc_timeout_secs: f64,

    /// Attempts per RPC call before giving up (transient failures are retried).
    #[arg(long, value_name = "N", default_value_t = 8, help_heading = "RPC")]
    pub rpc_attempts: u32,

    /// Upper bound of the exponential backoff between attempts, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 10_000,
        help_heading = "RPC"
    )]
    pub rpc_backoff_max_ms: u64,

    /// A PEM file of certificate authorities to trust for an https:// node or provider
    /// (besides the system's; SSL_CERT_FILE works too).
    #[arg(long, value_name = "FILE", help_heading = "RPC")]
    pub ca_cert: Option<PathBuf>,

    /// A proxy for every request: http://host:port, socks5://host:port, or socks5h://
    /// (names resolved through the proxy, as Tor needs: socks5h://127.0.0.1:9050). Without
    /// it HTTPS_PROXY, HTTP_PROXY and ALL_PROXY apply.
    #[arg(long, value_name = "URL", help_heading = "RPC")]
    pub proxy: Option<String>,

    /// An extra HTTP header for the provider, "Name: value" (repeatable), e.g. an API key;
    /// CHAINTRACE_RPC_HEADERS holds more (newline- or ';'-separated) and keeps keys out of
    /// the shell history. Header values never appear in files, logs or messages.
    #[arg(long, value_name = "HEADER", help_heading = "RPC")]
    pub rpc_header: Vec<String>,
}

/// Labels subcommands.
#[derive(Debug, Subcommand)]
pub enum LabelsCommand {
    /// Import label files into DATA/labels/tags.parquet.
    ///
    /// GraphSense TagPack YAML (header fields inherited by each tag: label, category, actor,
    /// confidence, lastmod, is_public, currency), OFAC sanctioned_addresses_<ASSET>.txt lists
    /// (XBT, ETH) and CSV with a header naming address, label and category, optionally
    /// source, actor (or entity), currency, confidence (a GraphSense confidence id; default
    /// unknown), lastmod (YYYY-MM-DD) and is_public (true/false). CSV may come from a
    /// spreadsheet: quoted values, a UTF-8 byte-order mark, and comma, semicolon or tab as
    /// the delimiter are understood; a row whose field count differs from the header is
    /// rejected with its line. Addresses are validated and normalised per chain; invalid ones
    /// are reported with file and line and left out; the zero address is dropped. A file is
    /// known by its canonical path and its sha256: importing it again (under any path)
    /// replaces its rows. An import that imports nothing exits 1 and writes nothing.
    Import(LabelsImportArgs),
    /// The imported label files, their tags per category, and the conflicts.
    List(LabelsListArgs),
    /// Tags whose address, label, entity, category or source contains TEXT (any case),
    /// marking the tag in use where an address has several.
    Search(LabelsSearchArgs),
    /// Remove the tags of imported files, named by path, file name or sha256 prefix.
    Remove(LabelsRemoveArgs),
    /// Addresses whose tags disagree: the tag in use, the rule that chose it, the others.
    ///
    /// Precedence: --prefer (sources or files, strongest first), then the higher GraphSense
    /// confidence level, then the more recent lastmod (never the import day), then content order.
    /// trace, stats, cluster and report apply the same rule.
    Conflicts(LabelsConflictsArgs),
}

/// `chaintrace case ...`
#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// Write CASE/case.toml: the case number, examiner, agency and question (shown in the
    /// report and the log). The folder may be new; trace into it afterwards.
    Init(CaseInitArgs),
    /// Append a note to the case's audit trail (shown in the report).
    Note(CaseNoteArgs),
    /// Print the case's audit trail.
    Log(CaseDirArgs),
    /// Check the case: the audit trail's hash chain, the hashes of the files the last trace
    /// and report wrote, and (unless --no-rerun) run the recorded trace again on the recorded
    /// dataset to confirm the same bytes. Prints what differs; exits 1 if anything does.
    Verify(CaseVerifyArgs),
    /// Bundle what a defence expert or a partner agency needs to replay the case into one
    /// zip: the case folder, the inputs the trace recorded (dataset manifest with every
    /// part's sha256 and source, tags.parquet, seed files, clustering) and a README with the
    /// tool version and the replay command; --with-data adds the dataset's Parquet parts.
    Export(CaseExportArgs),
}

/// `chaintrace case export`.
#[derive(Debug, Args)]
pub struct CaseExportArgs {
    /// Case folder.
    #[arg(value_name = "CASE")]
    pub case: PathBuf,
    /// The zip file to write (it must not exist).
    #[arg(long, value_name = "FILE.zip")]
    pub bundle: PathBuf,
    /// Also add the dataset's Parquet parts (large), so the bundle replays on its own.
    #[arg(long)]
    pub with_data: bool,
    /// Where the dataset is now (default: as recorded by the trace).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Bundle even when the case's inputs (labels, clustering, seed files, manifest)
    /// changed since its trace read them; the bundle will then not verify.
    #[arg(long)]
    pub anyway: bool,
}

/// `chaintrace case init`.
#[derive(Debug, Args)]
pub struct CaseInitArgs {
    /// Case folder.
    #[arg(value_name = "CASE")]
    pub case: PathBuf,
    /// The agency's case or file number.
    #[arg(long)]
    pub number: Option<String>,
    /// The examiner who made the case (name, and badge or staff number as your agency
    /// writes it), shown with the case in its reports.
    #[arg(long)]
    pub examiner: Option<String>,
    /// The agency or unit the case belongs to, shown with the case in its reports.
    #[arg(long)]
    pub agency: Option<String>,
    /// The question the case answers.
    #[arg(long)]
    pub question: Option<String>,
    /// Change a field the case already records (the old and new values go into the audit
    /// trail); without it, a changed field is refused.
    #[arg(long)]
    pub amend: bool,
}

/// `chaintrace case note`.
#[derive(Debug, Args)]
pub struct CaseNoteArgs {
    /// Case folder.
    #[arg(value_name = "CASE")]
    pub case: PathBuf,
    /// The note.
    #[arg(value_name = "TEXT")]
    pub text: String,
}

/// `chaintrace case log`.
#[derive(Debug, Args)]
pub struct CaseDirArgs {
    /// Case folder.
    #[arg(value_name = "CASE")]
    pub case: PathBuf,
}

/// `chaintrace case verify`.
#[derive(Clone, Debug, Args)]
pub struct CaseVerifyArgs {
    /// Case folder.
    #[arg(value_name = "CASE")]
    pub case: PathBuf,
    /// Check the hashes only; do not run the trace again.
    #[arg(long)]
    pub no_rerun: bool,
    /// Where the dataset the trace read is now (default: where it was, as recorded): for a
    /// defence expert replaying a case on another machine.
    #[arg(long, value_name = "DIR")]
    pub data: Option<std::path::PathBuf>,
}

/// Label file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LabelFormatArg {
    Tagpack,
    Ofac,
    Csv,
}

/// `chaintrace labels import`.
#[derive(Debug, Args)]
pub struct LabelsImportArgs {
    /// Label files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Format of all files (default: from each file name).
    #[arg(long, value_enum)]
    pub format: Option<LabelFormatArg>,
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Record this import time (YYYY-MM-DDTHH:MM:SSZ or unix seconds) instead of now, so
    /// that a dataset rebuilt from the same files is byte-identical (the demo passes its
    /// --timestamp).
    #[arg(long, value_name = "TIME")]
    pub imported_at: Option<String>,
}

/// Chains of labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LabelChainArg {
    Bitcoin,
    Ethereum,
}

impl LabelChainArg {
    /// The chain's name in tags.parquet.
    pub fn name(self) -> &'static str {
        match self {
            LabelChainArg::Bitcoin => "bitcoin",
            LabelChainArg::Ethereum => "ethereum",
        }
    }
}

/// `chaintrace labels list`.
#[derive(Debug, Args)]
pub struct LabelsListArgs {
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
}

/// `chaintrace labels search`.
#[derive(Debug, Args)]
pub struct LabelsSearchArgs {
    /// Text to look for.
    #[arg(value_name = "TEXT")]
    pub text: String,
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Show at most this many tags.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// `chaintrace labels remove`.
#[derive(Debug, Args)]
pub struct LabelsRemoveArgs {
    /// Imported files: path, file name, or sha256 prefix (8+ hex digits), as `labels list`
    /// shows them.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
}

/// `chaintrace labels conflicts`.
#[derive(Debug, Args)]
pub struct LabelsConflictsArgs {
    /// Dataset directory.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// Only this chain's addresses.
    #[arg(long, value_enum)]
    pub chain: Option<LabelChainArg>,
    /// Use tags marked non-public too.
    #[arg(long)]
    pub include_private: bool,
    /// Sources or label files to prefer, strongest first (as for trace).
    #[arg(long, value_delimiter = ',', value_name = "SOURCE|FILE")]
    pub prefer: Vec<String>,
    /// Show at most this many conflicts (all are counted).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// How to choose the best chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChainSelectionArg {
    /// Block index if blocks/index exists, header links otherwise.
    Auto,
    /// Bitcoin Core's LevelDB block index.
    Index,
    /// Link block headers by previous hash; most work wins.
    Headers,
}

/// `chaintrace ingest bitcoin`.
#[derive(Debug, Args)]
pub struct IngestBitcoinArgs {
    /// Bitcoin Core's blocks directory (e.g. ~/.bitcoin/blocks), holding blk*.dat.
    #[arg(long, value_name = "DIR", help_heading = "Source")]
    pub blocks_dir: Option<PathBuf>,

    /// Bitcoin Core JSON-RPC URL, e.g. http://127.0.0.1:8332 or https://… behind a TLS
    /// proxy (uses getblock verbosity 3).
    #[arg(
        long,
        value_name = "URL",
        help_heading = "Source",
        conflicts_with = "blocks_dir"
    )]
    pub rpc: Option<String>,

    /// The node's cookie file (e.g. ~/.bitcoin/.cookie) for RPC authentication.
    #[arg(long, value_name = "FILE", help_heading = "RPC", conflicts_with_all = ["rpc_user", "rpc_password"])]
    pub rpc_cookie: Option<PathBuf>,

    /// RPC user name (with --rpc-password), instead of the cookie.
    #[arg(
        long,
        value_name = "USER",
        help_heading = "RPC",
        requires = "rpc_password"
    )]
    pub rpc_user: Option<String>,

    /// RPC password (with --rpc-user).
    #[arg(
        long,
        value_name = "PASSWORD",
        help_heading = "RPC",
        requires = "rpc_user"
    )]
    pub rpc_password: Option<String>,

    /// Requests in flight to the node.
    #[arg(long, value_name = "K", default_value_t = 4, help_heading = "RPC")]
    pub concurrency: usize,

    /// After catching up, keep polling for new blocks; reorganisations are rolled back.
    #[arg(long, help_heading = "RPC")]
    pub follow: bool,

    /// Seconds between polls with --follow.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10.0,
        help_heading = "RPC"
    )]
    pub poll_secs: f64,

    #[command(flatten)]
    pub retry: RpcRetryArgs,

    /// Stop --follow after this many polls (for scripts and tests; default: forever).
    #[arg(long, value_name = "N", help_heading = "RPC")]
    pub polls: Option<u64>,

    /// An Esplora REST API's base URL (Blockstream's esplora or mempool.space's electrs, e.g.
    /// https://blockstream.info/api): blocks by height with their prevouts, so --from H
    /// starts a height window there. --concurrency, --max-rps, --ca-cert, --proxy and
    /// --rpc-header apply; a key in the URL path or a header is never written anywhere.
    #[arg(long, value_name = "URL", help_heading = "Source", conflicts_with_all = ["blocks_dir", "rpc"])]
    pub esplora: Option<String>,

    /// At most this many requests per second to --rpc or --esplora (0: no limit), for
    /// public or rate-limited endpoints.
    #[arg(long, value_name = "RPS", default_value_t = 0.0, help_heading = "RPC")]
    pub max_rps: f64,

    /// How to pick the best chain among the blocks on disk.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Source")]
    pub chain: ChainSelectionArg,

    /// Ignore blocks/index and link headers instead (same as --chain headers).
    #[arg(long, help_heading = "Source")]
    pub no_index: bool,

    /// Dataset directory; data goes to DATA/<network>/.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "data",
        help_heading = "Dataset"
    )]
    pub data: PathBuf,

    /// Delete DATA/<network>/ first when it holds another chain (one the source's best chain
    /// leaves more than 100 blocks below its tip: another regtest or simulated world); without
    /// it such an ingest is refused and nothing is changed.
    #[arg(long, help_heading = "Dataset")]
    pub replace: bool,

    /// Re-ingest from this height, replacing the parts it touches (rounded down to a part
    /// start). With --rpc or --esplora, a dataset without the lower parts becomes a height
    /// window starting here (getblock 3 and Esplora carry the prevouts; nothing before it is
    /// fetched); later runs without --from extend it upward, a lower --from extends it
    /// downward.
    #[arg(long, value_name = "HEIGHT", help_heading = "Range")]
    pub from: Option<u32>,

    /// Stop at this height (default: the tip).
    #[arg(long, value_name = "HEIGHT", help_heading = "Range")]
    pub to: Option<u32>,

    /// Blocks per part file for a new dataset; parts cover [k*N, (k+1)*N-1].
    #[arg(long, value_name = "N", default_value_t = crate::ingest::bitcoin::DEFAULT_PART_BLOCKS, help_heading = "Dataset")]
    pub part_blocks: u32,

    /// Decoding threads (default: all cores).
    #[arg(long, value_name = "N", help_heading = "Performance")]
    pub threads: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ingest_bitcoin_flags_parse() {
        let cli = Cli::try_parse_from([
            "chaintrace",
            "ingest",
            "bitcoin",
            "--blocks-dir",
            "b",
            "--data",
            "d",
            "--from",
            "5",
            "--to",
            "9",
            "--part-blocks",
            "10",
            "--no-index",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        let a = bitcoin_args(cli);
        assert_eq!(a.blocks_dir.as_deref(), Some(std::path::Path::new("b")));
        assert_eq!(
            (a.from, a.to, a.part_blocks, a.no_index),
            (Some(5), Some(9), 10, true)
        );
        assert_eq!(a.chain, ChainSelectionArg::Auto);
    }

    fn bitcoin_args(cli: Cli) -> IngestBitcoinArgs {
        let Command::Ingest(i) = cli.command else {
            panic!("wrong command")
        };
        let IngestCommand::Bitcoin(a) = *i else {
            panic!("wrong command")
        };
        *a
    }

    #[test]
    fn rpc_flags_parse() {
        let a = bitcoin_args(
            Cli::try_parse_from([
                "chaintrace",
                "ingest",
                "bitcoin",
                "--rpc",
                "http://127.0.0.1:8332",
                "--rpc-user",
                "u",
                "--rpc-password",
                "p",
                "--follow",
                "--concurrency",
                "8",
                "--poll-secs",
                "2.5",
            ])
            .unwrap(),
        );
        assert_eq!(a.rpc.as_deref(), Some("http://127.0.0.1:8332"));
        assert_eq!(
            (a.rpc_user.as_deref(), a.rpc_password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert!(a.follow);
        assert_eq!(
            (a.concurrency, a.poll_secs, a.retry.rpc_attempts),
            (8, 2.5, 8)
        );
        // A user needs a password, and the cookie excludes both.
        assert!(
            Cli::try_parse_from([
                "chaintrace",
                "ingest",
                "bitcoin",
                "--rpc",
                "http://x:1",
                "--rpc-user",
                "u"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "chaintrace",
                "ingest",
                "bitcoin",
                "--rpc",
                "http://x:1",
                "--rpc-cookie",
                "c",
                "--rpc-user",
                "u",
                "--rpc-password",
                "p",
            ])
            .is_err()
        );
    }

    #[test]
    fn simulate_flags_parse() {
        let cli = Cli::try_parse_from([
            "chaintrace",
            "simulate",
            "--seed",
            "3",
            "--txs",
            "500",
            "--preset",
            "small",
            "--out",
            "w",
        ])
        .unwrap();
        let Command::Simulate(a) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!((a.seed, a.txs, a.preset), (3, 500, PresetArg::Small));
        assert!(
            Cli::try_parse_from(["chaintrace", "simulate", "--preset", "huge", "--out", "w"])
                .is_err()
        );
    }

    #[test]
    fn data_defaults_to_data() {
        let cli =
            Cli::try_parse_from(["chaintrace", "ingest", "bitcoin", "--blocks-dir", "b"]).unwrap();
        let a = bitcoin_args(cli);
        assert_eq!(a.data, PathBuf::from("data"));
        assert_eq!(a.part_blocks, crate::ingest::bitcoin::DEFAULT_PART_BLOCKS);
    }

    #[test]
    fn rpc_and_blocks_dir_conflict() {
        assert!(
            Cli::try_parse_from([
                "chaintrace",
                "ingest",
                "bitcoin",
                "--blocks-dir",
                "b",
                "--rpc",
                "http://x"
            ])
            .is_err()
        );
    }
}
