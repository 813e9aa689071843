//! The memory budget (`--memory`): the index is the same bytes whatever the budget, and
//! each long-running stage's peak (VmHWM of its process) stays under the budget plus a
//! fixed overhead.

use std::path::Path;

use chaintrace::index::Index;
use chaintrace::memory::Budget;

use crate::util::*;

/// A simulated world of `txs` transactions ingested into `dir/data`: the chain directory.
fn world(dir: &Path, txs: &str) -> std::path::PathBuf {
    simulate(&dir.join("world"), "21", txs, "default");
    let data = dir.join("data");
    ok(&ingest(&dir.join("world/blocks"), &data, &[]));
    data.join("regtest")
}

fn index_files(chain: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(&chain.join("index"))
}

/// With a budget far too small for the address table, the build interns the addresses in
/// many passes over the outputs, and writes the same bytes as with the table in one pass.
#[test]
fn an_index_built_in_many_passes_is_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let chain = world(d.path(), "3000");
    let one = Index::build(&chain, Budget::of_bytes(1 << 30)).unwrap();
    assert_eq!(one.passes, 1);
    let unbounded = index_files(&chain);
    assert!(unbounded.len() > 20, "{:?}", unbounded.keys());
    let many = Index::build(&chain, Budget::of_bytes(16 << 10)).unwrap();
    assert!(many.passes > 3, "{many:?}");
    let bounded = index_files(&chain);
    assert_eq!(
        bounded.keys().collect::<Vec<_>>(),
        unbounded.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &unbounded {
        assert!(bounded[name] == *bytes, "{name} differs after {many:?}");
    }
    // And the index answers: every address's outputs pay it.
    let ix = Index::load(&chain.join("index")).unwrap();
    assert!(ix.addresses() > 100);
    for a in ix.address_ids() {
        let s = ix.address(a).to_string();
        assert_eq!(ix.address_id(&s), Some(a));
        assert!(ix.outputs_paid(a).all(|o| ix.out_address(o) == Some(a)));
    }
}

/// `--memory` is read: a budget that is not a size, or under 16M, is refused by name.
#[test]
fn a_bad_memory_budget_is_refused() {
    for (given, says) in [("lots", "not a size"), ("2M", "at least 16M")] {
        let o = run(&[
            "--memory",
            given,
            "--json",
            "stats",
            "flows",
            "--data",
            "/nonexistent",
        ]);
        assert!(!o.status.success());
        let out = stdout(&o);
        assert!(out.contains(given) && out.contains(says), "{out}");
    }
}
