//! Label import: TagPacks, OFAC lists and CSV into tags.parquet.

use chaintrace::labels::{read_tags, tags_path};

use crate::util::*;

fn labels_data(rel: &str) -> std::path::PathBuf {
    datasets().join("labels").join(rel)
}

#[test]
fn ofac_list_flags_the_address_paid_in_block_574200() {
    let d = tempfile::tempdir().unwrap();
    let list = labels_data("ofac/sanctioned_addresses_XBT.txt");
    let o = run(&[
        "labels",
        "import",
        list.to_str().unwrap(),
        "--data",
        d.path().to_str().unwrap(),
        "--json",
    ]);
    ok(&o);
    // The list holds one Tron address under XBT: rejected with its line.
    assert!(
        stderr(&o).contains("sanctioned_addresses_XBT.txt:355"),
        "{}",
        stderr(&o)
    );
    let tags = read_tags(&tags_path(d.path())).unwrap();
    assert_eq!(tags.len(), 434);
    let flagged: std::collections::HashSet<&str> =
        tags.iter().map(|(t, _)| t.address.as_str()).collect();
    assert!(flagged.contains("1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"));
    // Block 574,200 pays it: decode the real block and intersect its outputs with the list.
    let raw = std::fs::read(bitcoin_data(
        "mainnet-blocks/block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk",
    ))
    .unwrap();
    let b = chaintrace::ingest::bitcoin::decode::decode_block(
        &raw,
        574_200,
        None,
        chaintrace::types::Network::Bitcoin,
    )
    .unwrap();
    let hits: Vec<&str> = b
        .txs
        .iter()
        .flat_map(|t| &t.outputs)
        .filter_map(|o| o.address.as_deref())
        .filter(|a| flagged.contains(a))
        .collect();
    assert!(
        hits.contains(&"1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"),
        "{hits:?}"
    );
}

#[test]
fn tagpacks_inherit_header_fields_and_drop_the_zero_address() {
    let d = tempfile::tempdir().unwrap();
    let packs = labels_data("graphsense-tagpacks/packs");
    let files = [
        packs.join("ofac.yaml"),
        packs.join("exchange-wallets-bitfinexcom.yaml"),
        packs.join("usdt_blacklist.yaml"),
    ];
    let mut args = vec![
        "labels",
        "import",
        "--data",
        d.path().to_str().unwrap(),
        "--json",
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let o = run(&args);
    ok(&o);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let reports = &report["files"];
    assert_eq!(reports[2]["zero_address_dropped"], 1);
    assert!(
        !reports[1]["unsupported"].as_object().unwrap().is_empty(),
        "Theta/Algorand/... tags are not ours"
    );
    let tags = read_tags(&tags_path(d.path())).unwrap();
    assert!(
        tags.iter()
            .all(|(t, _)| t.address != "0x0000000000000000000000000000000000000000")
    );
    let ofac = tags
        .iter()
        .find(|(t, _)| t.address == "3K35dyL85fR9ht7UgzPfd1gLRRXQtNTqE3")
        .unwrap();
    assert_eq!(
        &*ofac.0.label,
        "Asset listed under US Treasury OFAC Sanctions List"
    );
    assert_eq!(&*ofac.0.category, "user");
    assert_eq!(
        &*ofac.0.source,
        "https://www.treasury.gov/ofac/downloads/sdnlist.txt"
    );
    assert_eq!(ofac.0.line, 9, "the line of the tag in the file");
    let bfx = tags
        .iter()
        .find(|(t, _)| t.address == "1Kr6QSydW9bFQG1mXiPNNu6WpJGmUa9i1g")
        .unwrap();
    assert_eq!(
        (&*bfx.0.entity, &*bfx.0.category, &*bfx.0.confidence),
        ("bitfinex", "exchange", "service_data")
    );
    assert_eq!(
        &*bfx.0.label, "bitfinex BTC hot wallet",
        "a tag's own field wins over the header"
    );
    let eth = tags
        .iter()
        .find(|(t, _)| t.address == "0x77134cbc06cb00b66f4c7e623d5fdbf6777635ec")
        .unwrap();
    assert_eq!(&*eth.0.chain, "ethereum");

    // Importing the same files again replaces their rows.
    let n = tags.len();
    ok(&run(&args));
    assert_eq!(read_tags(&tags_path(d.path())).unwrap().len(), n);
}

#[test]
fn bad_label_files_are_reported_with_lines() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().to_str().unwrap();
    let yaml = d.path().join("broken.yaml");
    std::fs::write(&yaml, "title: x\nlabel: y\ntags:\n- address: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n  currency: [BTC\n").unwrap();
    let o = run(&["labels", "import", yaml.to_str().unwrap(), "--data", data]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("broken.yaml:") && stderr(&o).contains("not valid YAML"),
        "{}",
        stderr(&o)
    );

    let csv = d.path().join("list.csv");
    std::fs::write(&csv, "address,label,category,source\n1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,genesis,miner,lore\nnot-an-address,x,y,z\n0x8589427373D6D84E98730D7795D8f6f8731FDA16,dex,exchange,\n").unwrap();
    let o = run(&["labels", "import", csv.to_str().unwrap(), "--data", data]);
    ok(&o);
    assert!(
        stderr(&o).contains("list.csv:3: rejected \"not-an-address\""),
        "{}",
        stderr(&o)
    );
    let tags = read_tags(&tags_path(d.path())).unwrap();
    assert_eq!(tags.len(), 2);
    assert!(
        tags.iter()
            .any(|(t, _)| t.address == "0x8589427373d6d84e98730d7795d8f6f8731fda16")
    );

    let bad = d.path().join("bad.csv");
    std::fs::write(&bad, "addr,name\n1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,x\n").unwrap();
    let o = run(&["labels", "import", bad.to_str().unwrap(), "--data", data]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.csv:1:"), "{}", stderr(&o));

    // A tag without a currency (none in the header either) is rejected with its line.
    let nocur = d.path().join("nocurrency.yaml");
    std::fs::write(
        &nocur,
        "title: t\ncreator: c\nlabel: l\ntags:\n- address: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n",
    )
    .unwrap();
    // ... and a file that imports nothing fails (exit 1) and writes nothing.
    let o = run(&["labels", "import", nocur.to_str().unwrap(), "--data", data]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("nocurrency.yaml:5: rejected")
            && stderr(&o).contains("no currency")
            && stderr(&o).contains("nothing imported"),
        "{}",
        stderr(&o)
    );

    let private = d.path().join("private.yaml");
    std::fs::write(&private, "title: p\ncreator: me\nlabel: informant\ncategory: user\ncurrency: BTC\nis_public: false\nsource: case file\ntags:\n- address: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n").unwrap();
    ok(&run(&[
        "labels",
        "import",
        private.to_str().unwrap(),
        "--data",
        data,
    ]));
    let tags = read_tags(&tags_path(d.path())).unwrap();
    assert!(
        tags.iter()
            .any(|(t, _)| &*t.label == "informant" && !t.is_public)
    );
}

#[test]
fn spreadsheet_csv_quirks_are_read_or_named() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().to_str().unwrap();
    // A byte-order mark, a quoted comma, and a row with one field too many.
    let csv = d.path().join("exchanges.csv");
    std::fs::write(
        &csv,
        "\u{feff}address,label,actor,category\n\
         1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,\"ExampleExchange, Inc.\",\"ExampleExchange, Inc.\",exchange\n\
         1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d,ExampleExchange, Inc.,ExampleExchange,exchange\n",
    )
    .unwrap();
    let o = run(&["labels", "import", csv.to_str().unwrap(), "--data", data]);
    ok(&o);
    assert!(
        stderr(&o).contains("exchanges.csv:3: rejected")
            && stderr(&o).contains("5 fields, the header has 4"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("by category: exchange 1"),
        "{}",
        stdout(&o)
    );
    let tags = read_tags(&tags_path(d.path())).unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(
        (&*tags[0].0.category, &*tags[0].0.entity),
        ("exchange", "ExampleExchange, Inc.")
    );

    // A row without a category is no tag (it would win ties and hide a real exit).
    let nocat = d.path().join("nocat.csv");
    std::fs::write(
        &nocat,
        "address,label,category\n3K35dyL85fR9ht7UgzPfd1gLRRXQtNTqE3,x,\n1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,y,miner\n",
    )
    .unwrap();
    let o = run(&["labels", "import", nocat.to_str().unwrap(), "--data", data]);
    ok(&o);
    assert!(
        stderr(&o).contains("nocat.csv:2: rejected") && stderr(&o).contains("category is empty"),
        "{}",
        stderr(&o)
    );

    // Windows line ends: the rejected row is named by its line in the file; categories are
    // one vocabulary whatever their case.
    let crlf = d.path().join("crlf.csv");
    std::fs::write(
        &crlf,
        "address,label,category\r\n3K35dyL85fR9ht7UgzPfd1gLRRXQtNTqE3,x, Exchange \r\n,,\r\nbad,y,exchange\r\n",
    )
    .unwrap();
    let o = run(&["labels", "import", crlf.to_str().unwrap(), "--data", data]);
    ok(&o);
    assert!(
        stderr(&o).contains("crlf.csv:4: rejected \"bad\""),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("crlf.csv:3"),
        "an empty row is skipped: {}",
        stderr(&o)
    );
    let tags = read_tags(&tags_path(d.path())).unwrap();
    let t = tags
        .iter()
        .find(|(t, _)| t.file.ends_with("crlf.csv"))
        .unwrap();
    assert_eq!((&*t.0.category, t.0.line), ("exchange", 2));

    // Blank lines (a spreadsheet's empty rows, CRLF or LF) do not shift the lines named:
    // the reader skips them and placed the next row on the blank line (a trial found
    // "blank.csv:2" for a row on line 3).
    for (name, nl) in [("blank-crlf.csv", "\r\n"), ("blank-lf.csv", "\n")] {
        let f = d.path().join(name);
        std::fs::write(
            &f,
            format!(
                "address,label,category{nl}{nl}bad1,x,exchange{nl}{nl}{nl}3K35dyL85fR9ht7UgzPfd1gLRRXQtNTqE3,x,mixer{nl}bcrt1qnotanaddress,y,exchange{nl}"
            ),
        )
        .unwrap();
        let o = run(&["labels", "import", f.to_str().unwrap(), "--data", data]);
        ok(&o);
        for want in [
            format!("{name}:3: rejected \"bad1\""),
            // An address shaped as bech32 is blamed on bech32, with the character (it
            // said "base58 error").
            format!(
                "{name}:7: rejected \"bcrt1qnotanaddress\": not a Bitcoin address: it starts as a bech32 (SegWit) address"
            ),
        ] {
            assert!(stderr(&o).contains(&want), "{want}: {}", stderr(&o));
        }
        assert!(
            stderr(&o).contains("invalid character (code=o)"),
            "{}",
            stderr(&o)
        );
        let tags = read_tags(&tags_path(d.path())).unwrap();
        let t = tags.iter().find(|(t, _)| t.file.ends_with(name)).unwrap();
        assert_eq!(t.0.line, 6, "{name}");
    }

    // Semicolons and tabs, as spreadsheets export them.
    for (name, sep, word) in [("semi.csv", ";", "semicolon"), ("tab.csv", "\t", "tab")] {
        let f = d.path().join(name);
        std::fs::write(
            &f,
            format!("address{sep}label{sep}category\n3K35dyL85fR9ht7UgzPfd1gLRRXQtNTqE3{sep}mixer X{sep}mixer\n"),
        )
        .unwrap();
        let o = run(&[
            "labels",
            "import",
            f.to_str().unwrap(),
            "--data",
            data,
            "--json",
        ]);
        ok(&o);
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["files"][0]["delimiter"], word);
        assert_eq!(v["files"][0]["categories"]["mixer"], 1);
    }

    // Missing columns: the error shows the header that was read.
    let bad = d.path().join("bad.csv");
    std::fs::write(
        &bad,
        "Adresse;Bezeichnung\n1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa;x\n",
    )
    .unwrap();
    let o = run(&["labels", "import", bad.to_str().unwrap(), "--data", data]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("\"adresse\", \"bezeichnung\"") && stderr(&o).contains("semicolon"),
        "{}",
        stderr(&o)
    );
    // An unknown confidence id and an impossible date are rejected with their line.
    let conf = d.path().join("conf.csv");
    std::fs::write(
        &conf,
        "address,label,category,confidence,lastmod\n\
         1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,a,exchange,high,\n\
         1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,a,exchange,service_data,2024-02-31\n\
         1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,a,exchange,service_data,2024-02-29\n",
    )
    .unwrap();
    let o = run(&["labels", "import", conf.to_str().unwrap(), "--data", data]);
    ok(&o);
    assert!(
        stderr(&o).contains("conf.csv:2: rejected")
            && stderr(&o).contains("not a GraphSense confidence id")
    );
    assert!(stderr(&o).contains("conf.csv:3: rejected") && stderr(&o).contains("2024-02-31"));
}

#[test]
fn an_import_of_nothing_fails_and_a_file_is_known_by_content() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().to_str().unwrap();
    let trx = d.path().join("tron.csv");
    std::fs::write(
        &trx,
        "address,label,category,currency\nTXYZ,x,exchange,TRX\nbad,y,exchange,BTC\n",
    )
    .unwrap();
    let o = run(&["labels", "import", trx.to_str().unwrap(), "--data", data]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing imported"), "{}", stderr(&o));
    assert!(!tags_path(d.path()).exists(), "nothing is written");

    let dir = d.path().join("lists");
    std::fs::create_dir(&dir).unwrap();
    let f = dir.join("vendors.csv");
    std::fs::write(
        &f,
        "address,label,category\n1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa,v,illicit_vendor\n",
    )
    .unwrap();
    let copy = d.path().join("copy-of-vendors.csv");
    std::fs::copy(&f, &copy).unwrap();
    let spellings = [
        f.clone(),
        dir.join(".").join("vendors.csv"),
        dir.join("..").join("lists").join("vendors.csv"),
        copy,
    ];
    for p in &spellings {
        ok(&run(&[
            "labels",
            "import",
            p.to_str().unwrap(),
            "--data",
            data,
        ]));
    }
    assert_eq!(
        read_tags(&tags_path(d.path())).unwrap().len(),
        1,
        "imported once"
    );

    // list, search, remove.
    let o = run(&["labels", "list", "--data", data, "--json"]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    assert_eq!(v["by_category"]["illicit_vendor"], 1);
    let sha = v["files"][0]["sha256"].as_str().unwrap().to_string();
    let o = run(&["labels", "search", "VENDOR", "--data", data, "--json"]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["matches"], 1);
    assert_eq!(v["tags"][0]["in_use"], true);
    let o = run(&["labels", "remove", "deadbeefdead", "--data", data]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("labels list"), "{}", stderr(&o));
    ok(&run(&["labels", "remove", &sha[..12], "--data", data]));
    assert!(read_tags(&tags_path(d.path())).unwrap().is_empty());
}

#[test]
fn the_confidence_table_is_graphsenses() {
    let text =
        std::fs::read_to_string(labels_data("graphsense-tagpacks/schema/confidence.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut n = 0;
    for r in rdr.records() {
        let r = r.unwrap();
        let level: u8 = r[3].trim().parse().unwrap();
        assert_eq!(
            chaintrace::labels::confidence_level(&r[0]),
            Some(level),
            "{}",
            &r[0]
        );
        n += 1;
    }
    assert_eq!(n, chaintrace::labels::precedence::CONFIDENCE.len());
}
