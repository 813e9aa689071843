//! `chaintrace ingest ...`

use std::time::Duration;

use anyhow::anyhow;

use super::args::{ChainSelectionArg, IngestBitcoinArgs};
use super::{Cli, CliError, progress_bar};
use crate::ingest::bitcoin::rpc::RpcConfig;
use crate::ingest::bitcoin::{
    BlocksDirOptions, ChainSelection, IngestError, Summary, ingest_blocks_dir,
};

/// The lock file of a dataset directory: held (an OS file lock) by the one process writing
/// the dataset; it names that process. The OS releases it when the process ends, however.
pub(crate) const LOCK_FILE: &str = ".chaintrace.lock";

/// The lock on a dataset directory; dropped, it releases the lock and removes the
/// directory again when this run created it and left nothing in it but the lock file (a
/// failed first ingest leaves no stray folder).
pub(crate) struct DatasetLock {
    file: Option<std::fs::File>,
    created: Option<std::path::PathBuf>,
}

impl Drop for DatasetLock {
    fn drop(&mut self) {
        drop(self.file.take());
        if let Some(dir) = &self.created {
            let only_lock = std::fs::read_dir(dir).is_ok_and(|rd| {
                rd.filter_map(Result::ok)
                    .all(|e| e.file_name().to_string_lossy().ends_with(".lock"))
            });
            if only_lock {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Who is writing the dataset in `data` now (the holder of its write lock, as it wrote
/// itself into the lock file), `None` when no process is.
pub(crate) fn writer_of(data: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(data.join(LOCK_FILE)).ok()?;
    match f.try_lock_shared() {
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            Some(holder.trim().to_string())
        }
        _ => None,
    }
}

/// Refuses to build from a dataset another process is writing (an ingest replaces its
/// last part and adds new ones: a reader would see it shorter, or inputs whose outputs
/// are not written yet).
///
/// # Errors
/// Exit 1, naming the writer.
pub(crate) fn not_being_written(data: &std::path::Path) -> Result<(), CliError> {
    match writer_of(data) {
        Some(holder) => Err(CliError::user(anyhow!(
            "another chaintrace is writing the dataset {} ({holder}); the address index is built from a dataset once it is written: wait for it to finish, then run this again",
            data.display()
        ))),
        None => Ok(()),
    }
}

/// Takes the dataset's write lock, or says who holds it. Keep the file open while writing.
///
/// # Errors
/// Another process holds the lock (exit 1, naming it), or the directory cannot be created.
pub(crate) fn lock_dataset(data: &std::path::Path) -> Result<DatasetLock, CliError> {
    lock_in(data, LOCK_FILE, "writing the dataset")
}

/// [`lock_dataset`]'s lock, on the file `name` of `dir`, for a process `doing` something
/// there (named in the refusal).
///
/// # Errors
/// Another process holds the lock (exit 1, naming it), or the directory cannot be created.
pub(crate) fn lock_in(
    data: &std::path::Path,
    name: &str,
    doing: &str,
) -> Result<DatasetLock, CliError> {
    use std::io::{Read, Seek, Write};
    let created = (!data.exists()).then(|| data.to_path_buf());
    std::fs::create_dir_all(data)
        .map_err(|e| CliError::user(anyhow!("cannot create {}: {e}", data.display())))?;
    let path = data.join(name);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| CliError::user(anyhow!("cannot open {}: {e}", path.display())))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            return Err(CliError::user(anyhow!(
                "another chaintrace is {doing} {} ({}); wait for it to finish or stop it, then run this again",
                data.display(),
                holder.trim()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(CliError::user(anyhow!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    let me = format!(
        "pid {}: {}",
        std::process::id(),
        super::redact_args(std::env::args().collect()).join(" ")
    );
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = f.write_all(me.as_bytes());
    Ok(DatasetLock {
        file: Some(f),
        created,
    })
}

pub(crate) fn bitcoin(cli: &Cli, a: &IngestBitcoinArgs) -> Result<(), CliError> {
    let _lock = lock_dataset(&a.data)?;
    crate::ingest::stop_on_ctrl_c()
        .map_err(|e| CliError::user(anyhow!("cannot install the Ctrl-C handler: {e}")))?;
    if let Some(url) = &a.rpc {
        return rpc(cli, a, url);
    }
    if let Some(url) = &a.esplora {
        return esplora(cli, a, url);
    }
    let Some(blocks_dir) = a.blocks_dir.clone() else {
        return Err(CliError::user(anyhow!(
            "no source given; pass --blocks-dir DIR (Bitcoin Core's blocks directory, e.g. ~/.bitcoin/blocks), --rpc URL (a Bitcoin Core node) or --esplora URL (an Esplora API)"
        )));
    };
    if a.part_blocks == 0 {
        return Err(CliError::user(anyhow!("--part-blocks must be at least 1")));
    }
    if let (Some(f), Some(t)) = (a.from, a.to)
        && f > t
    {
        return Err(CliError::user(anyhow!("--from {f} is above --to {t}")));
    }
    if let Some(n) = a.threads {
        // Ignore the error of a pool already built (the library may be used twice in-process).
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
    let chain_selection = match (a.no_index, a.chain) {
        (true, _) | (_, ChainSelectionArg::Headers) => ChainSelection::HeaderLinks,
        (false, ChainSelectionArg::Index) => ChainSelection::Index,
        (false, ChainSelectionArg::Auto) => ChainSelection::Auto,
    };
    let opts = BlocksDirOptions {
        blocks_dir,
        chain_selection,
        range: range_options(a),
    };
    let pb = progress_bar(cli, "blocks");
    let mut summary = ingest_blocks_dir(&opts, &pb).map_err(classify)?;
    let error = summary.error.take();
    if error.is_none() || !cli.json {
        print_summary(cli, &summary, error.as_ref());
    }
    finish(&summary, error)
}

/// The exit of an ingest that stopped: 130 with what was saved and how to resume after
/// Ctrl-C; 1 for a bad block (what came before it is saved).
fn finish(summary: &Summary, error: Option<IngestError>) -> Result<(), CliError> {
    let saved = match &summary.tip {
        Some(t) => format!(
            "{} part(s) written by this run; the dataset {} now ends at height {} ({})",
            summary.parts_written,
            summary.dataset.display(),
            t.height,
            t.hash
        ),
        None => format!("the dataset {} is still empty", summary.dataset.display()),
    };
    match error {
        None => Ok(()),
        Some(IngestError::Interrupted) => Err(CliError {
            code: 130,
            error: anyhow!("interrupted: {saved}; run the same command again to resume from there"),
        }),
        Some(e) => Err(CliError::user(anyhow::Error::new(e).context(saved))),
    }
}

fn range_options(a: &IngestBitcoinArgs) -> crate::ingest::bitcoin::RangeOptions {
    warn_part_blocks(&a.data, a.part_blocks);
    crate::ingest::bitcoin::RangeOptions {
        data_dir: a.data.clone(),
        from: a.from,
        to: a.to,
        part_blocks: a.part_blocks,
        replace: a.replace,
        memory: crate::memory::budget(),
    }
}

/// Warns when `--part-blocks N` (not the default) is given for a dataset in `data` whose
/// parts already have another size: the grid is fixed when a dataset is first ingested
/// (part boundaries never depend on a run), so N would be ignored without a word.
fn warn_part_blocks(data: &std::path::Path, n: u32) {
    if n == crate::ingest::bitcoin::DEFAULT_PART_BLOCKS {
        return;
    }
    let Ok(dirs) = std::fs::read_dir(data) else {
        return;
    };
    for dir in dirs.filter_map(Result::ok).map(|e| e.path()) {
        if let Ok(Some(m)) = crate::store::manifest::Manifest::load(&dir)
            && m.chain == "bitcoin"
            && !m.parts.is_empty()
            && m.part_blocks != n
        {
            eprintln!(
                "chaintrace: warning: the dataset {} has parts of {} blocks (fixed when it was first ingested); --part-blocks {n} applies only to a new dataset and is ignored here (ingest into another --data, or --replace, for parts of {n})",
                dir.display(),
                m.part_blocks
            );
        }
    }
}

fn classify(e: IngestError) -> CliError {
    match e {
        IngestError::Interrupted => CliError {
            code: 130,
            error: e.into(),
        },
        e => CliError::user(e),
    }
}

pub(crate) fn print_summary(cli: &Cli, s: &Summary, error: Option<&IngestError>) {
    if cli.json {
        let mut v = serde_json::to_value(s).expect("summaries serialise");
        v["error"] = error.map(|e| e.to_string()).into();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("values serialise")
        );
        return;
    }
    let w = &s.written;
    println!(
        "{}: wrote {} blocks, {} transactions, {} inputs, {} outputs in {} part(s) ({} kept, {} replaced) in {:.1}s",
        s.dataset.display(),
        w.blocks,
        w.txs,
        w.inputs,
        w.outputs,
        s.parts_written,
        s.parts_kept,
        s.parts_removed,
        s.elapsed_secs
    );
    if let Some(r) = &s.reorg {
        eprintln!(
            "chaintrace: warning: the dataset's blocks after height {} (its tip was {} at height {}) are not on the source's best chain: a reorganisation of {} block(s); {} part(s) replaced ({}), recorded in the manifest's reorgs. If the source is another chain, not a reorganisation, ingest it into another --data",
            r.fork_height,
            r.old_tip.hash,
            r.old_tip.height,
            r.old_tip.height.saturating_sub(r.fork_height),
            r.removed_parts.len(),
            r.removed_parts.join(", ")
        );
    }
    if let Some(f) = s.from_beyond_tip {
        eprintln!(
            "chaintrace: warning: --from {f} is above the source's chain tip (height {}): no block from it exists, so nothing was re-ingested",
            s.chain_tip_height
        );
    }
    if let Some(f) = s.rewritten_from {
        eprintln!(
            "chaintrace: note: --from re-ingests whole parts: the dataset was rewritten from height {f}, the start of the part holding the height given"
        );
    }
    if let Some(t) = s.rewritten_to {
        eprintln!(
            "chaintrace: note: parts are re-ingested whole: the dataset was rewritten up to height {t}, the end of the part holding --to"
        );
    }
    match &s.tip {
        Some(t) => println!(
            "tip {} {} (chain tip {}, chosen by {}, {} stale block(s) skipped)",
            t.height, t.hash, s.chain_tip_height, s.chain_selection, s.stale_blocks_skipped
        ),
        None => println!("dataset is empty"),
    }
    if s.written.blocks > 0 && s.elapsed_secs > 0.0 {
        // A source with prevouts keeps no UTXO set.
        let utxo = if let (Some(n), Some(heap), Some(spilled)) =
            (s.utxo_outputs, s.utxo_heap_bytes, s.utxo_spilled_bytes)
            && n > 0
        {
            let in_file = if spilled > 0 {
                format!(
                    "; past half of --memory, {} MiB of them in a scratch file",
                    spilled >> 20
                )
            } else {
                String::new()
            };
            format!(
                ", {n} unspent outputs ({:.1} bytes each{in_file})",
                (heap + spilled) as f64 / n as f64
            )
        } else {
            String::new()
        };
        eprintln!(
            "chaintrace: {:.0} tx/s, {:.0} inputs/s{utxo}, peak memory {} MiB",
            w.txs as f64 / s.elapsed_secs,
            w.inputs as f64 / s.elapsed_secs,
            s.peak_rss_bytes.unwrap_or(0) / (1 << 20)
        );
    }
}

/// RPC credentials: the cookie file's `user:password`, or `--rpc-user:--rpc-password`.
pub(crate) fn rpc_auth(
    cookie: Option<&std::path::Path>,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<Option<String>, CliError> {
    Ok(match (cookie, user, password) {
        (Some(cookie), _, _) => {
            let text = std::fs::read_to_string(cookie).map_err(|e| {
                CliError::user(anyhow!(
                    "cannot read the cookie file {}: {e}; the node writes it into its data directory while it runs (e.g. ~/.bitcoin/.cookie, ~/.bitcoin/regtest/.cookie)",
                    cookie.display()
                ))
            })?;
            Some(text.trim().to_string())
        }
        (None, Some(u), Some(p)) => Some(format!("{u}:{p}")),
        _ => None,
    })
}

fn rpc(cli: &Cli, a: &IngestBitcoinArgs, url: &str) -> Result<(), CliError> {
    use crate::ingest::bitcoin::rpc::RpcClient;
    use crate::ingest::bitcoin::rpc_source::RpcSource;

    let auth = rpc_auth(
        a.rpc_cookie.as_deref(),
        a.rpc_user.as_deref(),
        a.rpc_password.as_deref(),
    )?;
    if a.part_blocks == 0 {
        return Err(CliError::user(anyhow!("--part-blocks must be at least 1")));
    }
    let cfg = rpc_config(url, auth, &a.retry)?;
    let client = RpcClient::new(cfg).map_err(CliError::user)?;
    let source = RpcSource::connect(client, a.concurrency).map_err(classify)?;
    follow(cli, a, &source, |pb| source.best_chain(pb))
}

/// `ingest bitcoin --esplora URL`.
fn esplora(cli: &Cli, a: &IngestBitcoinArgs, url: &str) -> Result<(), CliError> {
    use crate::ingest::bitcoin::esplora::EsploraSource;
    use crate::ingest::bitcoin::rpc::RpcClient;
    if a.part_blocks == 0 {
        return Err(CliError::user(anyhow!("--part-blocks must be at least 1")));
    }
    if !(a.max_rps.is_finite() && a.max_rps >= 0.0) {
        return Err(CliError::user(anyhow!(
            "--max-rps must be a number of requests per second (0: no limit)"
        )));
    }
    let cfg = rpc_config(url, None, &a.retry)?;
    let client = RpcClient::new(cfg).map_err(CliError::user)?;
    let source = EsploraSource::connect(client, a.concurrency, a.max_rps).map_err(classify)?;
    let opts = range_options(a);
    let chain_dir = a
        .data
        .join(crate::ingest::bitcoin::BlockSource::network(&source).as_str());
    let result = follow(cli, a, &source, |pb| {
        let manifest =
            crate::store::manifest::Manifest::load(&chain_dir).map_err(IngestError::from)?;
        source.best_chain(manifest.as_ref(), &opts, pb)
    });
    let (requests, bytes) = source.traffic();
    if !cli.json {
        eprintln!(
            "chaintrace: {requests} request(s) to {}, {:.1} MiB received",
            crate::ingest::bitcoin::rpc::redact(url),
            bytes as f64 / f64::from(1u32 << 20)
        );
    }
    result
}

/// Ingests the chain `best_chain` gives from `source` into the dataset; with `--follow`,
/// again every `--poll-secs` until `--polls` or Ctrl-C.
fn follow(
    cli: &Cli,
    a: &IngestBitcoinArgs,
    source: &dyn crate::ingest::bitcoin::BlockSource,
    best_chain: impl Fn(
        &indicatif::ProgressBar,
    ) -> Result<crate::ingest::bitcoin::chain::BestChain, IngestError>,
) -> Result<(), CliError> {
    use crate::ingest::bitcoin::ingest_chain;
    let secs = |s: f64, what: &str| {
        if s.is_finite() && s > 0.0 {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(CliError::user(anyhow!(
                "{what} must be a positive number of seconds"
            )))
        }
    };
    let poll = secs(a.poll_secs, "--poll-secs")?;
    let opts = range_options(a);
    let mut polls = 0u64;
    loop {
        let pb = progress_bar(cli, "blocks");
        let best = best_chain(&pb).map_err(classify)?;
        let mut summary = ingest_chain(source, best, &opts, &pb).map_err(classify)?;
        let error = summary.error.take();
        if (summary.parts_written > 0 || summary.parts_removed > 0 || !a.follow || error.is_some())
            && (error.is_none() || !cli.json)
        {
            print_summary(cli, &summary, error.as_ref());
        }
        if error.is_some() {
            return finish(&summary, error);
        }
        polls += 1;
        if !a.follow || a.polls.is_some_and(|n| polls >= n) {
            return Ok(());
        }
        let until = std::time::Instant::now() + poll;
        while std::time::Instant::now() < until {
            if crate::ingest::interrupted() {
                return finish(&summary, Some(IngestError::Interrupted));
            }
            std::thread::sleep(Duration::from_millis(100).min(poll));
        }
    }
}

/// `chaintrace ingest ethereum`.
pub(crate) fn ethereum(cli: &Cli, a: &super::args::IngestEthereumArgs) -> Result<(), CliError> {
    use crate::ingest::bitcoin::rpc::RpcClient;
    use crate::ingest::ethereum::ingest::{EthOptions, Traces, ingest};
    let _lock = lock_dataset(&a.data)?;
    crate::ingest::stop_on_ctrl_c()
        .map_err(|e| CliError::user(anyhow!("cannot install the Ctrl-C handler: {e}")))?;
    if a.part_blocks == 0 {
        return Err(CliError::user(anyhow!("--part-blocks must be at least 1")));
    }
    let cfg = rpc_config(&a.rpc, None, &a.retry)?;
    let client = RpcClient::new(cfg).map_err(CliError::user)?.jsonrpc2();
    let opts = EthOptions {
        data: a.data.clone(),
        from: a.from,
        to: a.to,
        concurrency: a.concurrency.max(1),
        traces: match a.traces.as_str() {
            "none" => Traces::None,
            "parity" => Traces::Parity,
            _ => Traces::Geth,
        },
        part_blocks: a.part_blocks,
        max_rps: a.max_rps.max(0.0),
        replace: a.replace,
    };
    let pb = progress_bar(cli, "blocks");
    let s = ingest(client, &opts, &pb).map_err(|e| CliError {
        code: if crate::ingest::interrupted() { 130 } else { 1 },
        error: e.into(),
    })?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("summaries serialise")
        );
    } else {
        println!(
            "{}: blocks {}..={} of chain {}: {} blocks, {} transactions, {} token transfers, {} internal transfers in {} part(s) ({} kept) in {:.1}s",
            s.chain_dir.display(),
            s.from,
            s.to,
            s.chain_id,
            s.blocks,
            s.transactions,
            s.token_transfers,
            s.internal_transfers,
            s.parts_written,
            s.parts_kept,
            s.seconds
        );
    }
    Ok(())
}

/// The RPC client settings of `--rpc-timeout-secs`, `--rpc-attempts` and
/// `--rpc-backoff-max-ms`.
pub(crate) fn rpc_config(
    url: &str,
    auth: Option<String>,
    r: &super::args::RpcRetryArgs,
) -> Result<RpcConfig, CliError> {
    if !(r.rpc_timeout_secs.is_finite() && r.rpc_timeout_secs > 0.0) {
        return Err(CliError::user(anyhow!(
            "--rpc-timeout-secs must be a positive number of seconds"
        )));
    }
    let backoff_max = Duration::from_millis(r.rpc_backoff_max_ms);
    // Headers from --rpc-header and CHAINTRACE_RPC_HEADERS ("Name: value", several
    // separated by newlines or ';'); keys kept out of the command line stay out of logs.
    let mut headers = Vec::new();
    let env = std::env::var("CHAINTRACE_RPC_HEADERS").unwrap_or_default();
    for h in r
        .rpc_header
        .iter()
        .map(String::as_str)
        .chain(env.split(['\n', ';']))
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        let Some((k, v)) = h.split_once(':') else {
            return Err(CliError::user(anyhow!(
                "a header is \"Name: value\"; one given has no ':' (its value is not shown)"
            )));
        };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(RpcConfig {
        url: url.to_string(),
        auth,
        timeout: Duration::from_secs_f64(r.rpc_timeout_secs),
        attempts: r.rpc_attempts.max(1),
        backoff_base: Duration::from_millis(100).min(backoff_max),
        backoff_max,
        ca_cert: r.ca_cert.clone(),
        proxy: r.proxy.clone(),
        headers,
    })
}

/// `chaintrace check ethereum`: balances reconciled against the node.
pub(crate) fn check_ethereum(
    cli: &Cli,
    a: &super::args::CheckEthereumArgs,
) -> Result<(), CliError> {
    use crate::ingest::bitcoin::rpc::RpcClient;
    use crate::ingest::ethereum::check::reconcile;
    let cfg = rpc_config(&a.rpc, None, &a.retry)?;
    let client = RpcClient::new(cfg).map_err(CliError::user)?.jsonrpc2();
    let pb = progress_bar(cli, "accounts");
    let r = reconcile(client, &a.data, a.sample, a.block, &pb).map_err(CliError::user)?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("reconciliations serialise")
        );
    } else {
        println!(
            "balances after block {} and after block {}: {} account(s){}, {} match the node exactly, {} differ",
            r.start_block,
            r.end_block,
            r.accounts,
            if r.accounts < r.accounts_touched {
                format!(
                    " (a sample of the {} the dataset touches: --sample takes the first in address order, an unbiased pick since addresses are hashes; --json lists them)",
                    r.accounts_touched
                )
            } else {
                String::new()
            },
            r.matched,
            r.differences.len()
        );
        if !r.has_traces {
            println!(
                "  the dataset has no call traces (ingested with --traces none): accounts reached only by internal calls are not even listed"
            );
        }
        for d in &r.differences {
            println!(
                "  {}: the dataset explains {} wei, the node's balances moved {} wei{}",
                d.account,
                d.computed_change,
                d.node_change,
                d.why
                    .as_deref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            );
        }
    }
    if r.differences.is_empty() && r.has_traces {
        Ok(())
    } else if cli.json {
        // The document above is the answer; exit 1 without a second one.
        Err(CliError::user(super::Reported))
    } else {
        Err(CliError::user(if r.has_traces {
            anyhow!(
                "{} of {} account(s) differ from the node: the dataset does not explain every balance",
                r.differences.len(),
                r.accounts
            )
        } else {
            anyhow!(
                "without call traces the dataset cannot be shown complete (internal transfers are missing); ingest with --traces geth or --traces parity"
            )
        }))
    }
}
