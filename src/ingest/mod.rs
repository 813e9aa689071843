//! Public chain data into the Parquet dataset.

pub mod bitcoin;
pub mod ethereum;

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks a running ingest to stop before its next block: parts already committed stay, the
/// part being written is dropped (the next run writes it again).
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether [`interrupt`] was called (or Ctrl-C pressed after [`stop_on_ctrl_c`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Makes SIGINT (Ctrl-C) and SIGTERM call [`interrupt`] instead of killing the process; a
/// second one ends it at once with exit code 130 (nothing committed is lost either way).
///
/// # Errors
/// The handlers cannot be installed.
pub fn stop_on_ctrl_c() -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, &INTERRUPTED)?;
        signal_hook::flag::register(sig, &INTERRUPTED)?;
    }
    Ok(())
}
