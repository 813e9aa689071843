//! `chaintrace serve`: the investigation canvas's API over a Bitcoin dataset, as plain
//! functions returning JSON values ([`Api`]), and the HTTP server that exposes them on
//! 127.0.0.1 only, behind a per-run token ([`http`]).
//!
//! Every answer is computed by the library the command line uses: an address's cluster is
//! [`crate::cluster::show`]'s (the numbers `chaintrace cluster show --json` prints), a trace
//! is run from the same command line `chaintrace trace` parses, and a saved trace writes the
//! case folder that command writes, byte for byte. Amounts are integer satoshi (JSON
//! numbers), with the BTC text beside them for display only.

pub mod bitcoin;
pub mod ethereum;
pub mod http;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};

/// The canvas's notes in a case folder (written by `POST /api/save`; kept by traces).
pub const ANNOTATIONS_FILE: &str = "annotations.json";
/// Most rows one page of a list returns (an exchange address has hundreds of thousands of
/// transactions: the client pages through them).
pub const MAX_PAGE: usize = 200;
/// Most transactions `expand` reads around one address.
pub const MAX_EXPAND: usize = 500;
/// Most hops a trace through the API may follow.
pub const MAX_HOPS: u32 = 50;
/// Most seeds a trace through the API may start from.
pub const MAX_SEEDS: usize = 1000;

/// An API error: the HTTP status, and the JSON body `{"error": {"kind", "message",
/// "hint"}}` the command line prints with `--json` (kind: `input`, `not_found`, `limit`,
/// `auth`, `internal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub hint: String,
}

impl ApiError {
    /// A 400: the request is malformed or names something of the wrong kind.
    pub fn input(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "input",
            message: message.into(),
            hint: hint.into(),
        }
    }
    /// A 404: a well-formed address, txid or label the dataset does not hold.
    pub fn not_found(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            kind: "not_found",
            message: message.into(),
            hint: hint.into(),
        }
    }
    /// A 422: a request beyond the server's limits (pages, hops, seeds).
    pub fn limit(message: impl Into<String>, hint: impl Into<String>) -> ApiError {
        ApiError {
            status: 422,
            kind: "limit",
            message: message.into(),
            hint: hint.into(),
        }
    }
    /// A 500: chaintrace failed (a file it cannot read, a bug).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            kind: "internal",
            message: message.into(),
            hint: "see the server's terminal; this may be a bug in chaintrace".into(),
        }
    }
    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": {"kind": self.kind, "message": self.message, "hint": self.hint}})
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

/// A trace asked of the API: the fields of `chaintrace trace`'s flags (JSON body of
/// `POST /api/trace` and `POST /api/save`).
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// `--seed` (each an address, txid, TXID:VOUT or cluster:ADDRESS).
    pub seeds: Vec<String>,
    /// `--policy`: poison, haircut, fifo, lifo, tiho or all (default haircut).
    #[serde(default)]
    pub policy: Vec<String>,
    /// `--max-hops` (default 20, at most [`MAX_HOPS`]).
    #[serde(default)]
    pub max_hops: Option<u32>,
    /// `--min-value` (e.g. `0.001btc`, `10000sat`).
    #[serde(default)]
    pub min_value: Option<String>,
    /// `--stop-at` categories (or `none`).
    #[serde(default)]
    pub stop_at: Vec<String>,
    /// `--direction` forward or backward.
    #[serde(default)]
    pub direction: Option<String>,
    /// `--level` address or cluster.
    #[serde(default)]
    pub level: Option<String>,
    /// `--token` (Ethereum: eth, a symbol or an ERC-20 contract; default eth).
    #[serde(default)]
    pub token: Option<String>,
}

/// The dataset behind the canvas.
#[derive(Debug)]
pub enum Backend {
    Bitcoin(Box<bitcoin::Btc>),
    Ethereum(Box<ethereum::Eth>),
}

/// The canvas's API over one dataset (see the module's documentation).
#[derive(Debug)]
pub struct Api {
    /// `--data` as given (recorded in a saved case's command line).
    pub data: PathBuf,
    /// The network of the dataset (`bitcoin`, `regtest`, ..., `mainnet` for Ethereum).
    pub network: String,
    /// `--case` as given: where `save` writes; `None` when none was opened.
    pub case: Option<PathBuf>,
    /// The program's path, the first word of a recorded command line.
    pub program: String,
    backend: Backend,
    scratch: PathBuf,
    traces: AtomicU64,
    one_trace: Mutex<()>,
}

/// `{"sat": n, "btc": "…", "text": "… BTC"}`.
pub(crate) fn amount_json(sat: u64) -> Value {
    let btc = crate::report::fmt::amount(u128::from(sat), 8);
    json!({"sat": sat, "text": format!("{btc} BTC"), "btc": btc})
}

/// The tags whose address, label, entity, category or source contains `q` (any case):
/// `{"kind": "labels", "total", "offset", "matches"}` with one page of them, or `None`
/// when none does.
pub(crate) fn search_labels(
    tags: &[crate::labels::Tag],
    q: &str,
    offset: usize,
    limit: usize,
    in_dataset: impl Fn(&str) -> bool,
) -> Option<Value> {
    let needle = q.to_lowercase();
    let hits: Vec<&crate::labels::Tag> = tags
        .iter()
        .filter(|t| {
            [&*t.address, &*t.label, &*t.entity, &*t.category, &*t.source]
                .iter()
                .any(|f| f.to_lowercase().contains(&needle))
        })
        .collect();
    if hits.is_empty() {
        return None;
    }
    let matches: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|t| {
            json!({"address": t.address, "label": t.label, "entity": t.entity,
                "category": t.category, "source": t.source, "confidence": t.confidence,
                "in_dataset": in_dataset(&t.address)})
        })
        .collect();
    Some(json!({"kind": "labels", "total": hits.len(), "offset": offset, "matches": matches}))
}

/// Whether `q` could be meant as an address (one word of 25+ letters and digits): then a
/// failed search says what is wrong with it as an address.
pub(crate) fn looks_like_address(q: &str) -> bool {
    q.len() >= 25 && q.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A tag as the address pages show it (every field an analyst weighs it by).
pub(crate) fn tag_json(t: &crate::labels::Tag) -> Value {
    json!({"label": t.label, "entity": t.entity, "category": t.category,
        "confidence": t.confidence, "source": t.source, "is_public": t.is_public,
        "lastmod": t.lastmod, "file": t.file, "line": t.line})
}

/// The tags of a dataset by address, looked up without a scan: `of(address)` gives its
/// tags, the first being the one shown as its label.
#[derive(Debug, Default)]
pub struct TagIndex {
    pub tags: Vec<crate::labels::Tag>,
    by_address: HashMap<String, Vec<usize>>,
}

impl TagIndex {
    /// Indexes `tags`.
    pub fn new(tags: Vec<crate::labels::Tag>) -> TagIndex {
        let mut by_address: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, t) in tags.iter().enumerate() {
            by_address.entry(t.address.clone()).or_default().push(i);
        }
        TagIndex { tags, by_address }
    }

    /// The tags of `address`.
    pub fn of<'a>(&'a self, address: &str) -> impl Iterator<Item = &'a crate::labels::Tag> + 'a {
        self.by_address
            .get(address)
            .into_iter()
            .flatten()
            .map(|&i| &self.tags[i])
    }

    /// `{"entity", "category", "source"}` of the label shown for `address`, or null.
    pub fn label_json(&self, address: &str) -> Value {
        self.of(address).next().map_or(
            Value::Null,
            |t| json!({"entity": t.entity, "category": t.category, "source": t.source}),
        )
    }
}

/// `forward` (also `out` or empty) → true, `backward` (`in`) → false.
pub(crate) fn parse_direction(d: &str) -> Result<bool, ApiError> {
    match d {
        "forward" | "out" | "" => Ok(true),
        "backward" | "in" => Ok(false),
        d => Err(ApiError::input(
            format!("direction {d:?}: give forward or backward"),
            "forward: where the money went; backward: where it came from",
        )),
    }
}

pub(crate) fn page_bounds(offset: usize, limit: usize) -> Result<(usize, usize), ApiError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::limit(
            format!("limit {limit}: a page holds 1 to {MAX_PAGE} rows"),
            "page through with offset",
        ));
    }
    Ok((offset, limit))
}

impl Api {
    /// Opens the dataset in `data`: Bitcoin (`--network`, or the only network present) or,
    /// when it holds only an Ethereum dataset (or `network` is `ethereum`), Ethereum;
    /// `scratch` is a private folder for traces that are not saved.
    ///
    /// # Errors
    /// No dataset in `data`, an index that cannot be built, unreadable clusters or labels.
    pub fn open(
        data: &Path,
        network: Option<&str>,
        case: Option<&Path>,
        scratch: &Path,
    ) -> anyhow::Result<Api> {
        let eth_dir = crate::ingest::ethereum::ingest::chain_dir(data);
        let btc = crate::trace::request::chain_dir(data, network.filter(|n| *n != "ethereum"));
        let (backend, network) = match btc {
            Ok((chain_dir, net)) if network != Some("ethereum") => (
                Backend::Bitcoin(Box::new(bitcoin::Btc::open(data, &chain_dir, &net)?)),
                net,
            ),
            Err(e) if network.is_some() && network != Some("ethereum") => return Err(e.into()),
            Err(e) if !eth_dir.exists() => return Err(e.into()),
            _ => (
                Backend::Ethereum(Box::new(ethereum::Eth::open(data, &eth_dir)?)),
                "mainnet".to_string(),
            ),
        };
        std::fs::create_dir_all(scratch)?;
        Ok(Api {
            data: data.to_path_buf(),
            network,
            case: case.map(Path::to_path_buf),
            program: std::env::args()
                .next()
                .unwrap_or_else(|| "chaintrace".into()),
            backend,
            scratch: scratch.to_path_buf(),
            traces: AtomicU64::new(0),
            one_trace: Mutex::new(()),
        })
    }

    /// `GET /api/info`: the dataset (chain, network, heights, counts, unit), whether it is
    /// clustered and labelled, the open case, the limits, and the palette of the report's
    /// charts (category → `#rrggbb`).
    pub fn info(&self) -> Value {
        let mut v = match &self.backend {
            Backend::Bitcoin(b) => b.info(),
            Backend::Ethereum(e) => e.info(),
        };
        let mut cats: BTreeSet<String> = v["categories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        cats.extend(["seed", "unlabelled", "peel chain", "other"].map(String::from));
        let palette: BTreeMap<String, String> = cats
            .into_iter()
            .map(|c| (colour(&c), c))
            .map(|(h, c)| (c, h))
            .collect();
        v["tool"] = json!(format!("chaintrace {}", crate::VERSION));
        v["data"] = json!(self.data.display().to_string());
        v["case"] = json!(self.case.as_ref().map(|c| c.display().to_string()));
        v["limits"] = json!({"page": MAX_PAGE, "expand": MAX_EXPAND, "max_hops": MAX_HOPS, "seeds": MAX_SEEDS});
        v["palette"] = json!(palette);
        v["policies"] = match &self.backend {
            Backend::Bitcoin(_) => json!(["poison", "haircut", "fifo", "lifo", "tiho"]),
            Backend::Ethereum(_) => json!(["poison", "haircut", "fifo", "lifo"]),
        };
        v
    }

    /// `GET /api/address/ADDRESS?offset=&limit=` (see [`bitcoin::Btc::address`] and
    /// [`ethereum::Eth::address`]).
    ///
    /// # Errors
    /// Not an address of the dataset (404 when well-formed but unseen), a page over
    /// [`MAX_PAGE`].
    pub fn address(&self, text: &str, offset: usize, limit: usize) -> Result<Value, ApiError> {
        match &self.backend {
            Backend::Bitcoin(b) => b.address(text, offset, limit),
            Backend::Ethereum(e) => e.address(text, offset, limit),
        }
    }

    /// `GET /api/cluster/ADDRESS?top=N`.
    ///
    /// # Errors
    /// Not an address of the dataset; the dataset was never clustered (404).
    pub fn cluster(&self, text: &str, top: usize) -> Result<Value, ApiError> {
        match &self.backend {
            Backend::Bitcoin(b) => b.cluster(text, top),
            Backend::Ethereum(e) => e.cluster(text, top),
        }
    }

    /// `GET /api/tx/TXID`.
    ///
    /// # Errors
    /// Not a transaction id (400), not in the dataset (404).
    pub fn tx(&self, text: &str) -> Result<Value, ApiError> {
        match &self.backend {
            Backend::Bitcoin(b) => b.tx(text),
            Backend::Ethereum(e) => e.tx(text),
        }
    }

    /// `GET /api/search?q=TEXT`.
    ///
    /// # Errors
    /// An empty query (400), nothing found (404).
    pub fn search(&self, q: &str, offset: usize, limit: usize) -> Result<Value, ApiError> {
        match &self.backend {
            Backend::Bitcoin(b) => b.search(q, offset, limit),
            Backend::Ethereum(e) => e.search(q, offset, limit),
        }
    }

    /// `GET /api/expand?address=A&direction=forward|backward&limit=N`.
    ///
    /// # Errors
    /// Not an address of the dataset, a bad direction, a limit over [`MAX_EXPAND`].
    pub fn expand(&self, text: &str, direction: &str, limit: usize) -> Result<Value, ApiError> {
        match &self.backend {
            Backend::Bitcoin(b) => b.expand(text, direction, limit),
            Backend::Ethereum(e) => e.expand(text, direction, limit),
        }
    }

    /// The `chaintrace trace` command line of `q`, writing into `out`.
    pub fn trace_argv(&self, q: &TraceQuery, out: &Path) -> Result<Vec<String>, ApiError> {
        if q.seeds.is_empty() {
            return Err(ApiError::input("no seeds", "give at least one seed"));
        }
        if q.seeds.len() > MAX_SEEDS {
            return Err(ApiError::limit(
                format!("{} seeds: at most {MAX_SEEDS} per trace", q.seeds.len()),
                "trace a cluster (cluster:ADDRESS) or use the command line with @FILE",
            ));
        }
        if let Some(h) = q.max_hops
            && h > MAX_HOPS
        {
            return Err(ApiError::limit(
                format!("max_hops {h}: at most {MAX_HOPS} through the canvas"),
                "use `chaintrace trace` for longer traces",
            ));
        }
        let mut argv = vec![
            self.program.clone(),
            "trace".to_string(),
            "--data".to_string(),
            self.data.display().to_string(),
        ];
        match &self.backend {
            Backend::Bitcoin(_) => {
                if q.token.is_some() {
                    return Err(ApiError::input(
                        "token: Ethereum only",
                        "a Bitcoin trace follows bitcoin; leave token out",
                    ));
                }
                argv.extend(["--network".to_string(), self.network.clone()]);
            }
            Backend::Ethereum(_) => {
                argv.extend(["--chain".to_string(), "ethereum".to_string()]);
                if let Some(t) = &q.token {
                    argv.extend(["--token".to_string(), t.clone()]);
                }
            }
        }
        // A value is never a flag: `-q` as a seed would otherwise be read as an option.
        let values = q
            .seeds
            .iter()
            .chain(&q.policy)
            .chain(&q.stop_at)
            .chain(&q.min_value)
            .chain(&q.direction)
            .chain(&q.level)
            .chain(&q.token);
        if let Some(v) = values.into_iter().find(|v| v.trim().starts_with('-')) {
            return Err(ApiError::input(
                format!("{v:?} is not a value (it starts with '-')"),
                "give seeds, models, categories and amounts as values",
            ));
        }
        for s in &q.seeds {
            if s.trim().starts_with('@') {
                return Err(ApiError::input(
                    format!("seed {s:?}: a file of seeds is not read through the API"),
                    "give the seeds themselves",
                ));
            }
            argv.push("--seed".into());
            argv.push(s.trim().to_string());
        }
        if !q.policy.is_empty() {
            argv.push("--policy".into());
            argv.push(q.policy.join(","));
        }
        if let Some(h) = q.max_hops {
            argv.push("--max-hops".into());
            argv.push(h.to_string());
        }
        if let Some(m) = &q.min_value {
            argv.push("--min-value".into());
            argv.push(m.clone());
        }
        if !q.stop_at.is_empty() {
            argv.push("--stop-at".into());
            argv.push(q.stop_at.join(","));
        }
        if let Some(d) = &q.direction {
            argv.push("--direction".into());
            argv.push(d.clone());
        }
        if let Some(l) = &q.level {
            argv.push("--level".into());
            argv.push(l.clone());
        }
        argv.push("--out".into());
        argv.push(out.display().to_string());
        Ok(argv)
    }

    /// `POST /api/trace`: runs the trace `q` as `chaintrace trace` would (the same command
    /// line parsed by the same code) into a scratch folder, and answers with each model's
    /// totals, exposure, exits by entity with their deposit addresses, the plain-words
    /// headline of the report, and its flow chart laid out as the report's (boxes, edges,
    /// colours, column names), every chart edge with the transfers (txids) behind it.
    ///
    /// # Errors
    /// What `chaintrace trace` would refuse (400), a request over the limits (422).
    pub fn trace(&self, q: &TraceQuery) -> Result<Value, ApiError> {
        let n = self.traces.fetch_add(1, Ordering::Relaxed);
        let out = self.scratch.join(format!("trace-{n}"));
        let argv = self.trace_argv(q, &out)?;
        let _ = std::fs::remove_dir_all(&out);
        let run = self.run_trace(&argv, &out);
        let answer = run.and_then(|()| case_answer(&out));
        let _ = std::fs::remove_dir_all(&out);
        let mut v = answer?;
        v["command"] = json!(argv);
        Ok(v)
    }

    /// Runs `argv` (a `chaintrace trace` command line) writing its case into `out`, as
    /// that command does (its audit trail included when `out` is a case).
    fn run_trace(&self, argv: &[String], out: &Path) -> Result<(), ApiError> {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(argv).map_err(|e| {
            let text = e.render().to_string();
            ApiError::input(
                text.split("\n\nUsage:")
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                "see `chaintrace trace --help` for the fields",
            )
        })?;
        let crate::cli::Command::Trace(a) = &cli.command else {
            return Err(ApiError::internal("not a trace command line"));
        };
        // One trace at a time: the recorded command line is process-wide.
        let _one = self.one_trace.lock().unwrap_or_else(|p| p.into_inner());
        crate::cli::set_command_line(Some(argv.to_vec()));
        let r = crate::cli::trace::run_quietly(a, out);
        crate::cli::set_command_line(None);
        r.map(|_| ()).map_err(|e| {
            let msg = crate::cli::error_text(&e.error);
            if e.code == 2 {
                ApiError::internal(msg)
            } else if msg.contains("not in the dataset") || msg.contains("never") {
                ApiError::not_found(msg, "check the seeds")
            } else {
                ApiError::input(msg, "see `chaintrace trace --help`")
            }
        })
    }

    /// `POST /api/save`: writes the trace `q` into the open case as `chaintrace trace
    /// --out CASE` does (the same files, byte for byte, and an entry in its audit trail),
    /// then `annotations` (the canvas's notes on nodes and edges, any JSON object) into
    /// `CASE/annotations.json`, logged in the audit trail as an `annotate` entry.
    ///
    /// # Errors
    /// No case open (409), what the trace would refuse.
    pub fn save(
        &self,
        q: &TraceQuery,
        annotations: &Value,
        replace: bool,
    ) -> Result<Value, ApiError> {
        let Some(case) = &self.case else {
            return Err(ApiError {
                status: 409,
                kind: "input",
                message: "no case is open".into(),
                hint: "restart with `chaintrace serve --case DIR` to save into a case folder"
                    .into(),
            });
        };
        if !annotations.is_object() && !annotations.is_null() {
            return Err(ApiError::input(
                "annotations must be a JSON object",
                "send {\"nodes\": {...}, \"edges\": {...}}",
            ));
        }
        let mut argv = self.trace_argv(q, case)?;
        if replace {
            // `--force`, before `--out` as a user would type it.
            argv.insert(argv.len() - 2, "--force".into());
        }
        self.run_trace(&argv, case).map_err(|mut e| {
            if e.message.contains("--force") {
                e.status = 409;
                e.message = format!(
                    "the case {} holds a different trace",
                    case.display()
                );
                e.hint = "save with \"replace\": true to replace the case's trace (its audit trail keeps both), or restart with another --case".into();
            }
            e
        })?;
        let mut files = vec!["trace.json", "edges.parquet", "ends.parquet"];
        if annotations.is_object() {
            let mut bytes = serde_json::to_vec_pretty(annotations)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            bytes.push(b'\n');
            let path = case.join(ANNOTATIONS_FILE);
            crate::store::sink::write_atomic(&path, &bytes)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let outputs = crate::case::hashes([(ANNOTATIONS_FILE.to_string(), &path)])
                .map_err(|e| ApiError::internal(e.to_string()))?;
            crate::case::append(
                case,
                crate::case::Action {
                    action: "annotate",
                    command: vec![
                        self.program.clone(),
                        "serve".into(),
                        "POST /api/save".into(),
                    ],
                    outputs,
                    time: crate::cli::now_secs(),
                    ..Default::default()
                },
            )
            .map_err(|e| ApiError::internal(e.to_string()))?;
            files.push(ANNOTATIONS_FILE);
        }
        let mut v = case_answer(case)?;
        v["command"] = json!(argv);
        v["case"] = json!(case.display().to_string());
        v["files"] = json!(files);
        Ok(v)
    }

    /// `GET /api/annotations`: the open case's `annotations.json` (`{}` when none), so that
    /// a reloaded page keeps the notes saved before.
    ///
    /// # Errors
    /// An unreadable or damaged file.
    pub fn annotations(&self) -> Result<Value, ApiError> {
        let Some(case) = &self.case else {
            return Ok(json!({"case": null, "annotations": {}}));
        };
        let path = case.join(ANNOTATIONS_FILE);
        let v = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<Value>(&b)
                .map_err(|e| ApiError::internal(format!("{} is damaged: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(json!({"case": case.display().to_string(), "annotations": v}))
    }

    /// Logs one request in the open case's audit trail (`action: "request"`).
    ///
    /// # Errors
    /// The trail cannot be written.
    pub fn log_request(&self, method: &str, path: &str) -> Result<(), ApiError> {
        let Some(case) = &self.case else {
            return Ok(());
        };
        std::fs::create_dir_all(case).map_err(|e| {
            ApiError::internal(format!(
                "cannot create the case folder {}: {e}",
                case.display()
            ))
        })?;
        crate::case::append(
            case,
            crate::case::Action {
                action: "request",
                command: vec![
                    self.program.clone(),
                    "serve".into(),
                    format!("{method} {path}"),
                ],
                time: crate::cli::now_secs(),
                ..Default::default()
            },
        )
        .map(|_| ())
        .map_err(|e| ApiError::internal(e.to_string()))
    }
}

/// `#rrggbb` of a category in the report's palette.
pub fn colour(category: &str) -> String {
    let c = crate::report::draw::colour(category);
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The answer of the case in `dir`: per model, its totals, exposure, exits by entity
/// (deposit addresses), headline and flow chart (see [`Api::trace`]).
fn case_answer(dir: &Path) -> Result<Value, ApiError> {
    use crate::report::{draw, graph, layout};
    let case =
        crate::report::case::Case::load(dir).map_err(|e| ApiError::internal(e.to_string()))?;
    let dec = case.decimals();
    let unit = case.unit().to_string();
    let mut models = Vec::new();
    for r in &case.results {
        let fg = graph::build(&case, r, &graph::GraphOptions::default());
        let label = |ei: usize| {
            let e = &fg.edges[ei];
            let mut s = format!("{} {}", draw::shown(e.amount, dec), unit);
            if e.transfers > 1 {
                s.push_str(&format!(" · {} tx", e.transfers));
            }
            s
        };
        let lay = layout::layout(&fg, &draw::measure, &label);
        // Which chart node each address (or cluster) of the trace is drawn in.
        let mut node_of: HashMap<&str, usize> = HashMap::new();
        for (i, n) in fg.nodes.iter().enumerate() {
            node_of.insert(n.key.as_str(), i);
            for m in &n.members {
                node_of.insert(m.as_str(), i);
            }
        }
        let mut transfers: HashMap<(usize, usize), Vec<Value>> = HashMap::new();
        for e in &r.edges {
            let (Some(&f), Some(&t)) = (node_of.get(e.from.as_ref()), node_of.get(e.to.as_ref()))
            else {
                continue;
            };
            transfers.entry((f, t)).or_default().push(json!({
                "txid": e.txid, "vout": e.vout, "height": e.height, "time": e.time,
                "from": e.from_address, "to": e.to_address, "amount": e.amount.to_string(),
                "hop": e.hop}));
        }
        let nodes: Vec<Value> = fg
            .nodes
            .iter()
            .zip(&lay.boxes)
            .map(|(n, b)| {
                json!({"key": n.key, "title": n.title, "detail": n.detail,
                    "category": n.category, "colour": colour(&n.category), "members": n.members,
                    "seed": n.seed, "received": n.received.to_string(), "sent": n.sent.to_string(),
                    "layer": n.layer, "box": [b.x, b.y, b.w, b.h]})
            })
            .collect();
        let edges: Vec<Value> = lay
            .edges
            .iter()
            .map(|d| {
                let e = &fg.edges[d.edge];
                json!({"from": e.from, "to": e.to, "amount": e.amount.to_string(),
                    "amount_text": format!("{} {unit}", draw::shown(e.amount, dec)),
                    "transfers": transfers.get(&(e.from, e.to)).cloned().unwrap_or_default(),
                    "points": d.points, "label": d.label,
                    "label_box": [d.label_box.x, d.label_box.y, d.label_box.w, d.label_box.h],
                    "anchor": [d.anchor.0, d.anchor.1], "width": d.width, "back": d.back,
                    "colour": colour(&fg.nodes[e.from].category)})
            })
            .collect();
        let deposits = crate::report::deposits(&case, r);
        let exits: Vec<Value> = deposits
            .entities
            .iter()
            .map(|((entity, category), total, addrs)| {
                json!({"entity": entity, "category": category, "amount": total.to_string(),
                    "amount_text": format!("{} {unit}", draw::shown(*total, dec)),
                    "deposit_addresses": addrs.iter().map(|d| json!({
                        "address": d.address, "amount": d.amount.to_string(),
                        "payments": d.payments, "first": d.first, "last": d.last})).collect::<Vec<_>>()})
            })
            .collect();
        models.push(json!({
            "policy": r.policy,
            "headline": crate::report::headline(&case, r),
            "totals": r.totals,
            "exposure_category": r.exposure_category,
            "exposure_entity": r.exposure_entity,
            "exits": exits,
            "graph": {"width": lay.width, "height": lay.height, "columns": fg.column_names,
                "nodes": nodes, "edges": edges, "merged_small": fg.merged_small},
        }));
    }
    // The spread between models: each entity's exposure under each model.
    let mut spread: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    for r in &case.results {
        for (e, v) in &r.exposure_entity {
            spread
                .entry(e.as_str())
                .or_default()
                .insert(r.policy.as_str(), v.to_string());
        }
    }
    Ok(
        json!({"unit": unit, "decimals": dec, "seeds": case.seed_nodes, "models": models,
        "spread": spread}),
    )
}
