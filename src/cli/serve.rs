//! `chaintrace serve`: opens the dataset, binds 127.0.0.1, prints the URL with its token
//! and serves the canvas until Ctrl-C.

use std::sync::Arc;

use super::args::ServeArgs;
use super::{Cli, CliError};
use crate::serve::{Api, http};

pub(crate) fn run(cli: &Cli, a: &ServeArgs) -> Result<(), CliError> {
    let token = match &a.token {
        Some(t) if t.len() < 16 || !t.chars().all(|c| c.is_ascii_alphanumeric()) => {
            return Err(CliError::user(anyhow::anyhow!(
                "--token: give at least 16 letters or digits (or leave it out for a random one)"
            )));
        }
        Some(t) => t.clone(),
        None => http::new_token().map_err(|e| {
            CliError::user(anyhow::anyhow!(
                "cannot read the system's random source for the access token: {e}"
            ))
        })?,
    };
    if let Some(c) = &a.case
        && c.exists()
        && !c.is_dir()
    {
        return Err(CliError::user(anyhow::anyhow!(
            "--case {}: not a folder",
            c.display()
        )));
    }
    let scratch = std::env::temp_dir().join(format!("chaintrace-serve-{}", std::process::id()));
    if !cli.json {
        eprintln!("chaintrace: opening {}...", a.dataset.data.display());
    }
    let started = std::time::Instant::now();
    let api = Api::open(
        &a.dataset.data,
        a.dataset.network.as_deref(),
        a.case.as_deref(),
        &scratch,
    )
    .map_err(CliError::user)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::user(anyhow::anyhow!("cannot start the server's runtime: {e}")))?;
    let result = rt.block_on(async {
        let (listener, addr) = http::bind(a.port).await.map_err(|e| {
            CliError::user(anyhow::anyhow!(
                "cannot listen on 127.0.0.1:{}: {e}{}",
                a.port,
                if a.port != 0 {
                    " (choose another --port, or 0 for any free one)"
                } else {
                    ""
                }
            ))
        })?;
        let url = format!("http://127.0.0.1:{}/#token={token}", addr.port());
        let info = api.info();
        if cli.json {
            // One JSON line, so that a script can read the address and token.
            println!(
                "{}",
                serde_json::json!({"url": url, "address": addr.to_string(), "token": token,
                    "api": format!("http://127.0.0.1:{}/api/", addr.port()), "dataset": info})
            );
        } else {
            println!("{url}");
            eprintln!(
                "chaintrace: serving {} ({} {}, {} transactions, {} addresses{}{}) on {} in {:.1} s; open the URL above in a browser on this machine; Ctrl-C stops",
                a.dataset.data.display(),
                info["chain"].as_str().unwrap_or(""),
                info["network"].as_str().unwrap_or(""),
                info["transactions"],
                info["addresses"],
                match info["clustered"].as_str() {
                    Some(h) => format!(", clustered by {h}"),
                    None => ", not clustered".into(),
                },
                match &a.case {
                    Some(c) => format!(", saving into {}", c.display()),
                    None => ", no case (add --case DIR to save)".into(),
                },
                addr,
                started.elapsed().as_secs_f64()
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let shared = Arc::new(http::Shared {
            api,
            token,
            port: addr.port(),
        });
        http::serve(listener, shared)
            .await
            .map_err(|e| CliError::user(anyhow::anyhow!("the server failed: {e}")))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
