//! Puts the version, the git commit and whether the tree was modified into
//! `CHAINTRACE_VERSION`, the string every case and report records.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let pkg = env!("CARGO_PKG_VERSION");
    println!("cargo:rerun-if-env-changed=CHAINTRACE_BUILD_VERSION");
    // A fixed version string, for comparing two builds' outputs byte for byte.
    let fixed = std::env::var("CHAINTRACE_BUILD_VERSION").ok();
    let version = match git(&["rev-parse", "--short=12", "HEAD"]) {
        _ if fixed.is_some() => format!("{pkg} ({})", fixed.unwrap_or_default()),
        Some(commit) => {
            let modified = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_none_or(|s| !s.is_empty());
            if modified {
                format!("{pkg} ({commit}, modified)")
            } else {
                format!("{pkg} ({commit})")
            }
        }
        None => format!("{pkg} (no git commit: built outside a checkout)"),
    };
    println!("cargo:rustc-env=CHAINTRACE_VERSION={version}");
    for p in [
        ".git/HEAD",
        ".git/index",
        "src",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
}
