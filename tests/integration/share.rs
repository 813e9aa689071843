//! `chaintrace share`: a watchlist exported by one agency and matched by another on two
//! datasets of the regtest world; nothing readable in the file; reveal by reference;
//! tampering and the wrong key detected; need-to-know categories; deconfliction by PSI.

use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use serde_json::Value;

use crate::util::*;

/// The vendor's 227 flagged addresses (ground truth).
fn flagged() -> Vec<String> {
    std::fs::read_to_string(bitcoin_data("regtest-world-a/ground_truth/flagged.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

/// World A ingested into `dir/data` with `labels` (CSV rows `address,category,actor`).
fn dataset(dir: &Path, labels: &[(String, &str, &str)]) -> std::path::PathBuf {
    let data = dir.join("data");
    ok(&ingest(&bitcoin_data("regtest-world-a/blocks"), &data, &[]));
    let mut csv = String::from("address,label,category,actor,source\n");
    for (a, c, e) in labels {
        csv.push_str(&format!("{a},{e},{c},{e},agency file 2026-117\n"));
    }
    import_labels(&data, &csv);
    data
}

/// `chaintrace ARGS` run in `cwd`.
fn run_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn json_in(cwd: &Path, args: &[&str]) -> Value {
    let o = run_in(cwd, args);
    ok(&o);
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_watchlist_goes_from_one_agency_to_another_and_reveals_only_on_request() {
    let vendor = flagged();
    // Agency A flags the vendor (and, need-to-know, two addresses as CSAM).
    let a = tempfile::tempdir().unwrap();
    let mut a_labels: Vec<(String, &str, &str)> = vendor
        .iter()
        .map(|v| (v.clone(), "darknet_vendor", "Vendor Nightshade"))
        .collect();
    let csam = [
        "bcrt1q9fs8w3mauaf2wcrzj64np6vtr465gf6kh4x663",
        "bcrt1q8dy7wh07ktu8tnsfa80yrrgj5vfta83apjw35s",
    ];
    for c in csam {
        a_labels.push((c.to_string(), "child_sexual_abuse", "Operation Lantern"));
    }
    let a_data = dataset(a.path(), &a_labels);
    // Agency B: the same chain, its own label, and a case traced from a vendor address.
    let b = tempfile::tempdir().unwrap();
    let b_data = dataset(
        b.path(),
        &[(
            "bcrt1q8dy7wh07ktu8tnsfa80yrrgj5vfta83apjw35s".to_string(),
            "mining_pool",
            "Pool Q",
        )],
    );
    let case = b.path().join("case-2024-117");
    ok(&run(&[
        "trace",
        "--quiet",
        "--data",
        b_data.to_str().unwrap(),
        "--seed",
        &vendor[0],
        "--max-hops",
        "3",
        "--out",
        case.to_str().unwrap(),
    ]));

    // A makes the key and the watchlist (a bare file name: written in the working folder).
    ok(&run_in(a.path(), &["share", "keygen", "--out", "a-b.key"]));
    let key_text = std::fs::read_to_string(a.path().join("a-b.key")).unwrap();
    let e = json_in(
        a.path(),
        &[
            "share",
            "export",
            "--json",
            "--data",
            "data",
            "--for",
            "partner-b",
            "--key-file",
            "a-b.key",
            "--out",
            "a-to-b.ctw",
        ],
    );
    // Need-to-know left out unless named.
    assert_eq!(e["items"].as_u64(), Some(vendor.len() as u64), "{e}");
    assert_eq!(e["left_out"]["need-to-know category not named"], 2);
    let file = a.path().join("a-to-b.ctw");
    let bytes = std::fs::read(&file).unwrap();
    // No address (text, upper case, its text in hex, its script in binary and hex), label,
    // entity or case text in the file; nor the key.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let contains =
        |needle: &[u8]| !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle);
    for v in vendor.iter().chain(
        csam.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter(),
    ) {
        let script = bitcoin::Address::from_str(v)
            .unwrap()
            .assume_checked()
            .script_pubkey();
        for form in [
            v.as_bytes().to_vec(),
            v.to_uppercase().into_bytes(),
            hex(v.as_bytes()).into_bytes(),
            script.as_bytes().to_vec(),
            hex(script.as_bytes()).into_bytes(),
        ] {
            assert!(!contains(&form), "{v} readable in the watchlist");
        }
    }
    for text in [
        "darknet",
        "Nightshade",
        "child",
        "Lantern",
        "2026-117",
        "agency file",
    ] {
        assert!(
            !contains(text.as_bytes()),
            "{text} readable in the watchlist"
        );
    }
    let key_hex: String = key_text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!contains(key_hex.trim().as_bytes()));

    // B matches it against its dataset, labels and case.
    std::fs::copy(&file, b.path().join("a-to-b.ctw")).unwrap();
    std::fs::copy(a.path().join("a-b.key"), b.path().join("a-b.key")).unwrap();
    let m = json_in(
        b.path(),
        &[
            "share",
            "match",
            "a-to-b.ctw",
            "--json",
            "--key-file",
            "a-b.key",
            "--data",
            "data",
            "--case",
            "case-2024-117",
        ],
    );
    let hits = m["hits"].as_array().unwrap();
    let hit_addresses: std::collections::BTreeSet<&str> = hits
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    let want: std::collections::BTreeSet<&str> = vendor.iter().map(String::as_str).collect();
    assert_eq!(hit_addresses, want, "exactly the vendor's addresses hit");
    assert!(hits.iter().all(|h| h["status"] == "possible"));
    assert!(m["expected_false_hits"].as_f64().unwrap() < 1e-3);
    let seed_hit = hits
        .iter()
        .find(|h| h["address"] == vendor[0].as_str())
        .unwrap();
    assert!(
        seed_hit["found_in"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().contains("case-2024-117")),
        "{seed_hit}"
    );
    // With clusters: each hit names its cluster.
    ok(&run(&[
        "cluster",
        "bitcoin",
        "--data",
        b_data.to_str().unwrap(),
    ]));
    let mc = json_in(
        b.path(),
        &[
            "share",
            "match",
            "a-to-b.ctw",
            "--json",
            "--key-file",
            "a-b.key",
            "--data",
            "data",
            "--via-clusters",
        ],
    );
    assert!(mc["hits"][0]["cluster"]["size"].as_u64().unwrap() >= 1);

    // A reveals what a reference is, with the fields it chooses.
    let reference = seed_hit["reference"].as_str().unwrap();
    let r = json_in(
        a.path(),
        &[
            "share",
            "reveal",
            reference,
            "--json",
            "--data",
            "data",
            "--key-file",
            "a-b.key",
            "--fields",
            "address,category",
        ],
    );
    assert_eq!(r["revealed"][0]["tags"][0]["address"], vendor[0].as_str());
    assert_eq!(r["revealed"][0]["tags"][0]["category"], "darknet_vendor");
    assert!(
        r["revealed"][0]["tags"][0].get("source").is_none(),
        "only the fields asked"
    );

    // The wrong key and a changed byte are refused, naming the file.
    ok(&run_in(
        b.path(),
        &["share", "keygen", "--out", "other.key"],
    ));
    let o = run_in(
        b.path(),
        &[
            "share",
            "match",
            "a-to-b.ctw",
            "--key-file",
            "other.key",
            "--data",
            "data",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("a-to-b.ctw was made with another key"),
        "{}",
        stderr(&o)
    );
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n / 2] ^= 0x40;
    std::fs::write(b.path().join("bad.ctw"), &bad).unwrap();
    let o = run_in(
        b.path(),
        &[
            "share",
            "match",
            "bad.ctw",
            "--key-file",
            "a-b.key",
            "--data",
            "data",
        ],
    );
    assert!(
        stderr(&o).contains("bad.ctw has been changed"),
        "{}",
        stderr(&o)
    );
    // A watchlist is never written over an input or an existing file without --force; a
    // typo'd category names the ones there are; a file cut short says so.
    let o = run_in(
        a.path(),
        &[
            "share",
            "export",
            "--data",
            "data",
            "--for",
            "b",
            "--key-file",
            "a-b.key",
            "--out",
            "a-b.key",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is an input of this command"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(a.path().join("a-b.key")).unwrap(),
        key_text
    );
    let o = run_in(
        a.path(),
        &[
            "share",
            "export",
            "--data",
            "data",
            "--for",
            "b",
            "--key-file",
            "a-b.key",
            "--out",
            "a-to-b.ctw",
        ],
    );
    assert!(
        stderr(&o).contains("exists") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    ok(&run_in(
        a.path(),
        &[
            "share",
            "export",
            "--data",
            "data",
            "--for",
            "partner-b",
            "--key-file",
            "a-b.key",
            "--out",
            "a-to-b.ctw",
            "--force",
        ],
    ));
    let o = run_in(
        a.path(),
        &[
            "share",
            "export",
            "--data",
            "data",
            "--for",
            "b",
            "--key-file",
            "a-b.key",
            "--category",
            "darknet_vendr",
            "--out",
            "typo.ctw",
        ],
    );
    assert!(stderr(&o).contains("darknet_vendor"), "{}", stderr(&o));
    std::fs::write(b.path().join("short.ctw"), &bytes[..bytes.len() / 2]).unwrap();
    let o = run_in(
        b.path(),
        &[
            "share",
            "match",
            "short.ctw",
            "--key-file",
            "a-b.key",
            "--data",
            "data",
        ],
    );
    assert!(stderr(&o).contains("cut short"), "{}", stderr(&o));
    // A made-up or malformed reference releases nothing and fails.
    for r in ["R-DEADBEEF0000", "garbage"] {
        let o = run_in(
            a.path(),
            &[
                "share",
                "reveal",
                r,
                "--data",
                "data",
                "--key-file",
                "a-b.key",
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{r}");
    }
    // A key is never overwritten.
    let o = run_in(a.path(), &["share", "keygen", "--out", "a-b.key"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(a.path().join("a-b.key")).unwrap(),
        key_text
    );

    // Named, the need-to-know category is shared, and B finds both addresses.
    json_in(
        a.path(),
        &[
            "share",
            "export",
            "--json",
            "--data",
            "data",
            "--for",
            "partner-b",
            "--key-file",
            "a-b.key",
            "--category",
            "child_sexual_abuse",
            "--out",
            "csam.ctw",
        ],
    );
    std::fs::copy(a.path().join("csam.ctw"), b.path().join("csam.ctw")).unwrap();
    let m = json_in(
        b.path(),
        &[
            "share",
            "match",
            "csam.ctw",
            "--json",
            "--key-file",
            "a-b.key",
            "--data",
            "data",
        ],
    );
    assert_eq!(m["hits"].as_array().unwrap().len(), 2);
    drop(a_data);
}

#[test]
fn deconfliction_finds_the_shared_flagged_addresses_and_nothing_else() {
    let vendor = flagged();
    let d = tempfile::tempdir().unwrap();
    let labels = |dir: &str, rows: &[String]| {
        let data = d.path().join(dir);
        std::fs::create_dir_all(&data).unwrap();
        let mut csv = String::from("address,label,category,actor\n");
        for a in rows {
            csv.push_str(&format!("{a},V,darknet_vendor,V\n"));
        }
        import_labels(&data, &csv);
    };
    // A flags the first 150, B the last 127 and nothing else: 50 in common.
    labels("a", &vendor[..150]);
    labels("b", &vendor[100..]);
    ok(&run_in(d.path(), &["share", "keygen", "--out", "k"]));
    let step = |args: &[&str]| {
        json_in(
            d.path(),
            &[&["share", "deconflict", "--json", "--key-file", "k"], args].concat(),
        )
    };
    step(&["--data", "a", "--out", "a1.ctd"]);
    step(&["--data", "b", "--out", "b1.ctd"]);
    assert!(d.path().join("a1.ctd.secret").exists());
    step(&["--mine", "a1.ctd", "--theirs", "b1.ctd", "--out", "a2.ctd"]);
    step(&["--mine", "b1.ctd", "--theirs", "a1.ctd", "--out", "b2.ctd"]);
    let ra = step(&[
        "--mine", "a1.ctd", "--theirs", "b1.ctd", "--reply", "b2.ctd",
    ]);
    let rb = step(&[
        "--mine", "b1.ctd", "--theirs", "a1.ctd", "--reply", "a2.ctd",
    ]);
    let mut want: Vec<&str> = vendor[100..150].iter().map(String::as_str).collect();
    want.sort_unstable();
    for r in [&ra, &rb] {
        let mut got: Vec<&str> = r["shared"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, want);
    }
    // The messages carry no address.
    for f in ["a1.ctd", "b1.ctd", "a2.ctd", "b2.ctd"] {
        let b = std::fs::read(d.path().join(f)).unwrap();
        assert!(
            !vendor
                .iter()
                .any(|v| b.windows(v.len()).any(|w| w == v.as_bytes())),
            "{f}"
        );
    }
    // Our own round 1 as theirs, and theirs as ours, are refused.
    let o = run_in(
        d.path(),
        &[
            "share",
            "deconflict",
            "--key-file",
            "k",
            "--mine",
            "a1.ctd",
            "--theirs",
            "a1.ctd",
            "--reply",
            "b2.ctd",
        ],
    );
    assert!(stderr(&o).contains("your own round 1"), "{}", stderr(&o));
    let o = run_in(
        d.path(),
        &[
            "share",
            "deconflict",
            "--key-file",
            "k",
            "--mine",
            "b2.ctd",
            "--theirs",
            "b1.ctd",
            "--out",
            "x.ctd",
        ],
    );
    assert!(stderr(&o).contains("not your round 1"), "{}", stderr(&o));
    // A reply from another session is refused.
    step(&["--data", "a", "--out", "a1-again.ctd"]);
    let o = run_in(
        d.path(),
        &[
            "share",
            "deconflict",
            "--key-file",
            "k",
            "--mine",
            "a1-again.ctd",
            "--theirs",
            "b1.ctd",
            "--reply",
            "b2.ctd",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not the reply to this side's round 1"),
        "{}",
        stderr(&o)
    );
}
