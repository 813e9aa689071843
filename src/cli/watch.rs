//! `chaintrace watch` (see [`crate::watch`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;

use super::args::WatchArgs;
use super::{Cli, CliError};
use crate::ingest::bitcoin::rpc::RpcClient;
use crate::watch::{self, State, Watched, source::Source};

/// An address checked for `chain` (checksum, network family), normalised.
fn checked(chain: &str, a: &str, at: &str) -> Result<String, CliError> {
    let currency = if chain == "ethereum" { "ETH" } else { "BTC" };
    crate::labels::normalise(a, currency)
        .map(|(n, _, _)| n)
        .map_err(|e| {
            let why = match e {
                crate::labels::Normalise::Invalid(w) | crate::labels::Normalise::Unsupported(w) => {
                    w
                }
                crate::labels::Normalise::ZeroAddress => "the zero address".into(),
            };
            CliError::user(anyhow!(
                "{at}: {a:?} is not {} address: {why}",
                if chain == "ethereum" {
                    "an Ethereum"
                } else {
                    "a Bitcoin"
                }
            ))
        })
}

/// The watched addresses of `--watch` items (addresses or @FILE), checked for `chain`.
fn watch_items(chain: &str, items: &[String]) -> Result<Vec<(String, String)>, CliError> {
    let mut out = Vec::new();
    for it in items {
        if let Some(f) = it.strip_prefix('@') {
            let text = std::fs::read_to_string(f)
                .map_err(|e| CliError::user(anyhow!("--watch @{f}: cannot read it: {e}")))?;
            let before = out.len();
            for (n, line) in text.lines().enumerate() {
                let first = line.split(',').next().unwrap_or("").trim();
                if first.is_empty()
                    || first.starts_with('#')
                    || first.eq_ignore_ascii_case("address")
                {
                    continue;
                }
                let at = format!("{f}:{}", n + 1);
                out.push((watch::normal(&checked(chain, first, &at)?), at));
            }
            if out.len() == before {
                return Err(CliError::user(anyhow!(
                    "--watch @{f}: the file lists no address"
                )));
            }
        } else if !it.trim().is_empty() {
            out.push((
                watch::normal(&checked(chain, it.trim(), "--watch")?),
                "--watch".into(),
            ));
        }
    }
    Ok(out)
}

/// Whether `cmd` can be run: a path to an executable file, or a name found on PATH.
fn runnable(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.contains('/') {
        return exec(Path::new(cmd));
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| exec(&d.join(cmd))))
}

fn source(a: &WatchArgs) -> Result<Source, CliError> {
    let client = |url: &str, auth: Option<String>| -> Result<RpcClient, CliError> {
        let cfg = super::ingest::rpc_config(url, auth, &a.retry)?;
        RpcClient::new(cfg).map_err(CliError::user)
    };
    match (&a.rpc, &a.esplora, &a.rpc_eth) {
        (Some(u), None, None) => {
            let auth = super::ingest::rpc_auth(
                a.rpc_cookie.as_deref(),
                a.rpc_user.as_deref(),
                a.rpc_password.as_deref(),
            )?;
            Ok(Source::BitcoinRpc(client(u, auth)?, Default::default()))
        }
        (None, Some(u), None) => Ok(Source::Esplora(crate::watch::source::Esplora::new(client(
            u, None,
        )?))),
        (None, None, Some(u)) => Ok(Source::Ethereum(client(u, None)?.jsonrpc2())),
        _ => Err(CliError::user(anyhow!(
            "give one source: --rpc URL (Bitcoin Core), --esplora URL or --rpc-eth URL (Ethereum)"
        ))),
    }
}

/// Labels of exchanges and (with --watch-clusters) the watched addresses' clusters, from
/// `--data`.
fn from_dataset(a: &WatchArgs, w: &mut Watched) -> Result<(), CliError> {
    let Some(data) = &a.data else {
        return Ok(());
    };
    for (t, _) in
        crate::labels::read_tags(&crate::labels::tags_path(data)).map_err(CliError::user)?
    {
        if &*t.category == "exchange" {
            w.exchanges
                .insert(watch::normal(&t.address), t.entity.to_string());
        }
    }
    if a.watch_clusters && a.rpc_eth.is_none() {
        let (dir, net) = crate::trace::request::chain_dir(data, None).map_err(CliError::user)?;
        let idx = super::cluster::open_index(&dir)?;
        let s =
            crate::cluster::load(&idx, &crate::cluster::clusters_dir(data, &net)).map_err(|e| {
                CliError::user(anyhow!(
                    "--watch-clusters: {e}; run `chaintrace cluster bitcoin --data {}` first",
                    data.display()
                ))
            })?;
        // The watched addresses' clusters, then every address of them in one pass.
        let roots: BTreeMap<u32, String> = w
            .addresses
            .keys()
            .filter_map(|x| {
                idx.address_id(x)
                    .map(|id| (s.cluster_of[id.ix()], x.clone()))
            })
            .collect();
        for id in idx.address_ids() {
            if let Some(root) = roots.get(&s.cluster_of[id.ix()]) {
                w.addresses
                    .entry(idx.address(id).to_string())
                    .or_insert_with(|| format!("cluster of {root} in {}", data.display()));
            }
        }
    }
    Ok(())
}

pub(crate) fn run(cli: &Cli, a: &WatchArgs) -> Result<(), CliError> {
    if !(a.poll.is_finite() && a.poll > 0.0) {
        return Err(CliError::user(anyhow!(
            "--poll must be a positive number of seconds"
        )));
    }
    let src = source(a)?;
    if let Some(cmd) = &a.alert_cmd
        && !runnable(cmd)
    {
        return Err(CliError::user(anyhow!(
            "--alert-cmd {cmd}: not an executable file (nor a program on PATH); chmod +x it or give its path"
        )));
    }
    let mut w = Watched {
        clusters: a.watch_clusters,
        ..Watched::default()
    };
    for (addr, why) in watch_items(src.chain(), &a.watch)? {
        w.addresses.insert(addr, why);
    }
    if !a.share.is_empty() {
        let kf = a
            .key_file
            .as_ref()
            .ok_or_else(|| CliError::user(anyhow!("--share needs --key-file")))?;
        let key = crate::share::Key::load(kf).map_err(CliError::user)?;
        for f in &a.share {
            let list = crate::share::Watchlist::read(f, &key).map_err(CliError::user)?;
            w.lists.push((f.display().to_string(), key.clone(), list));
        }
    }
    from_dataset(a, &mut w)?;
    if w.addresses.is_empty() && w.lists.is_empty() {
        return Err(CliError::user(anyhow!(
            "nothing to watch: give --watch ADDRESS, --watch @FILE or --share FILE.ctw"
        )));
    }
    // One watch per alerts folder (the lock names the process holding it).
    let _lock = super::ingest::lock_dataset(&a.alerts)?;
    let mut state = State::load(&a.alerts)
        .map_err(CliError::user)?
        .unwrap_or_else(|| State {
            version: 1,
            source: src.shown(),
            chain: src.chain().to_string(),
            ..State::default()
        });
    if state.chain != src.chain() {
        return Err(CliError::user(anyhow!(
            "{} holds the state of another watch ({} chain, {}); use another --alerts folder for {}",
            a.alerts.display(),
            state.chain,
            state.source,
            src.shown()
        )));
    }
    let tool = format!("chaintrace {}", crate::VERSION);
    crate::ingest::stop_on_ctrl_c()
        .map_err(|e| CliError::user(anyhow!("cannot install the Ctrl-C handler: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::user(anyhow!("cannot start the runtime: {e}")))?;
    // A Bitcoin address of another network never matches: refused, not watched in vain.
    if let Some(net) = rt.block_on(src.bitcoin_network()).map_err(CliError::user)? {
        for (addr, why) in &w.addresses {
            let ok = addr
                .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
                .is_ok_and(|x| x.is_valid_for_network(net.to_bitcoin()));
            if !ok {
                return Err(CliError::user(anyhow!(
                    "{why}: {addr} is not an address of {}, the network of {}",
                    net.as_str(),
                    src.shown()
                )));
            }
        }
    }
    if !cli.json {
        eprintln!(
            "chaintrace: watching {} address(es){}{} on {}; alerts in {}",
            w.addresses.len(),
            if w.lists.is_empty() {
                String::new()
            } else {
                format!(" and {} partner watchlist(s)", w.lists.len())
            },
            if a.watch_clusters {
                ", growing clusters"
            } else {
                ""
            },
            src.shown(),
            a.alerts.display()
        );
    }
    loop {
        let started = std::time::Instant::now();
        let polled = rt.block_on(watch::poll(
            &src,
            &w,
            &mut state,
            &a.alerts,
            a.alert_cmd.as_deref(),
            &tool,
        ));
        match polled {
            Ok(p) => {
                report(cli, &p, &a.alerts, a.once);
                if let Some(f) = &p.failure {
                    if a.once {
                        return Err(CliError::user(anyhow!(
                            "{f}; the blocks before it are done and saved: run again to go on"
                        )));
                    }
                    eprintln!(
                        "chaintrace: warning: {f}; the blocks before it are done, the rest at the next poll"
                    );
                }
                if a.alert_cmd.is_none() && !state.pending.is_empty() {
                    eprintln!(
                        "chaintrace: warning: {} digest(s) wait for an --alert-cmd (a command failed earlier): give one to deliver them",
                        state.pending.len()
                    );
                }
                if let Some(e) = &p.delivery_error {
                    if a.once {
                        return Err(CliError::user(anyhow!(
                            "{e}; the alerts are written and their digest stays pending in {}: the next run delivers it",
                            a.alerts.join("state.json").display()
                        )));
                    }
                    eprintln!("chaintrace: warning: {e}; retried at the next poll");
                }
            }
            // --once reports the failure; a continuous watch rides out an outage.
            Err(e) if a.once => return Err(CliError::user(e)),
            Err(e) => eprintln!(
                "chaintrace: warning: poll failed ({}); retrying in {} s",
                super::error_text(&e),
                a.poll
            ),
        }
        if a.once {
            return Ok(());
        }
        let wait = std::time::Duration::from_secs_f64(a.poll).saturating_sub(started.elapsed());
        let until = std::time::Instant::now() + wait;
        loop {
            if crate::ingest::interrupted() {
                return Err(stopped(&state, &a.alerts));
            }
            if std::time::Instant::now() >= until {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200).min(wait));
        }
    }
}

/// Ctrl-C: exit 130, saying where the watch stopped.
fn stopped(state: &State, dir: &Path) -> CliError {
    CliError {
        code: 130,
        error: anyhow!(
            "stopped at block {}; the state is saved in {}: run the same command to go on",
            state.tip().map_or("-".to_string(), |t| t.0.to_string()),
            dir.join("state.json").display()
        ),
    }
}

fn report(cli: &Cli, p: &watch::Poll, dir: &Path, once: bool) {
    let names = |v: &[std::path::PathBuf]| -> Vec<String> {
        v.iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect()
    };
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"tip": p.tip, "blocks": p.blocks, "alerts": names(&p.alerts),
                "retracted": names(&p.retracted),
                "digest": p.digest.as_ref().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned())})
        );
    } else if once || p.digest.is_some() || p.blocks > 0 {
        println!(
            "tip {}: {} new block(s), {} alert(s), {} retraction(s){}",
            p.tip,
            p.blocks,
            p.alerts.len(),
            p.retracted.len(),
            p.digest
                .as_ref()
                .map(|d| format!(" — digest {}", d.display()))
                .unwrap_or_else(|| format!(" (in {})", dir.display()))
        );
    }
}
