//! The court exhibit as a PDF (A4): a title page with the case, the question, the answer
//! and the method; the exits and the deposit addresses to request records for; the
//! transfers as an appendix (or a reference to `edges.csv` when they are many). Every page
//! carries its number and the sha256 of the case's `trace.json`. Written with `pdf-writer`
//! and the PDF standard fonts (Helvetica, Courier), so nothing is embedded or fetched.

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};

use super::case::{Case, End, PolicyResult};
use super::fmt;
use crate::trace::Amount;

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const TOP: f32 = PAGE_H - 60.0;
const BOTTOM: f32 = 60.0;

/// Fonts of the exhibit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    fn name(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
            Font::Mono => Name(b"F3"),
        }
    }
    /// A width per character that no glyph of the font exceeds much (for wrapping).
    fn char_width(self, size: f32) -> f32 {
        match self {
            Font::Mono => 0.6 * size,
            Font::Regular => 0.52 * size,
            Font::Bold => 0.58 * size,
        }
    }
}

/// One line placed on a page: font, size (pt), x and y (pt from the bottom left), text.
type Line = (Font, f32, f32, f32, String);

/// A drawing on a page (pt from the bottom left): a box (x, y, width, height), or a line
/// through points (a cubic Bézier when it has four), with an arrowhead at its end.
enum Shape {
    Box(f32, f32, f32, f32),
    Line(Vec<(f32, f32)>),
}

/// Lines laid out on pages, top to bottom, and the drawings of each page.
struct Layout {
    pages: Vec<Vec<Line>>,
    shapes: Vec<Vec<Shape>>,
    y: f32,
}

/// `text` cut with "..." to fit `width` pt in `font` at `size`.
fn clip(font: Font, size: f32, width: f32, text: &str) -> String {
    let t = to_ascii(text);
    let max = (width / font.char_width(size)) as usize;
    if t.len() <= max {
        t
    } else {
        format!("{}...", &t[..max.saturating_sub(3)])
    }
}

impl Layout {
    fn new() -> Layout {
        Layout {
            pages: vec![Vec::new()],
            shapes: vec![Vec::new()],
            y: TOP,
        }
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.shapes.push(Vec::new());
        self.y = TOP;
    }

    /// One line of text at a fixed place on the current page, cut to `width` pt.
    fn place(&mut self, font: Font, size: f32, (x, y): (f32, f32), width: f32, text: &str) {
        let t = clip(font, size, width, text);
        self.pages
            .last_mut()
            .expect("a page")
            .push((font, size, x, y, t));
    }

    /// A titled box (title in bold 8 pt, detail in 7 pt) with its top-left corner at
    /// (x, top).
    fn titled_box(&mut self, x: f32, top: f32, (w, h): (f32, f32), title: &str, detail: &str) {
        self.shapes
            .last_mut()
            .expect("a page")
            .push(Shape::Box(x, top - h, w, h));
        self.place(Font::Bold, 8.0, (x + 5.0, top - 11.0), w - 10.0, title);
        let font = if detail.starts_with("txid ") {
            Font::Mono
        } else {
            Font::Regular
        };
        self.place(font, 7.0, (x + 5.0, top - 22.0), w - 10.0, detail);
    }

    fn line(&mut self, points: Vec<(f32, f32)>) {
        self.shapes
            .last_mut()
            .expect("a page")
            .push(Shape::Line(points));
    }

    /// The summary chart: the seeds box on the left, a box per receiving entity on the
    /// right, an edge to each labelled with its exits' numbers; at most 18 boxes a page.
    fn summary_chart(&mut self, seeds: (&str, &str), boxes: &[(String, String, String)]) {
        let per_page = 18;
        let (sw, rw, bh, pitch) = (160.0, 240.0, 28.0, 34.0);
        let rx = PAGE_W - MARGIN - rw;
        for (pi, chunk) in boxes.chunks(per_page).enumerate() {
            if pi > 0 {
                self.new_page();
                self.heading("Summary chart (continued)");
            }
            self.gap(16.0);
            self.place(Font::Bold, 8.0, (MARGIN, self.y), sw, "seeds");
            self.place(
                Font::Bold,
                8.0,
                (rx, self.y),
                rw,
                "receiving entities (exits, any hop)",
            );
            let top = self.y - 8.0;
            let n = chunk.len() as f32;
            let sy = top - (n * pitch - (pitch - bh)) / 2.0 + bh / 2.0;
            self.titled_box(MARGIN, sy, (sw, bh), seeds.0, seeds.1);
            for (i, (title, detail, label)) in chunk.iter().enumerate() {
                let y = top - i as f32 * pitch;
                self.titled_box(rx, y, (rw, bh), title, detail);
                let from = (MARGIN + sw, sy - bh / 2.0);
                let to = (rx, y - bh / 2.0);
                let mid = (from.0 + to.0) / 2.0;
                self.line(vec![from, (mid, from.1), (mid, to.1), to]);
                self.place(Font::Regular, 7.0, (rx - 95.0, to.1 + 3.0), 90.0, label);
            }
            self.y = top - n * pitch - 4.0;
        }
    }

    /// One exit's path, top to bottom: a box per transaction, an arrow between with what
    /// moved on; a new page when the page is full.
    fn path_chart(&mut self, steps: &[(String, String, String)]) {
        let (w, bh, pitch) = (PAGE_W - 2.0 * MARGIN, 28.0, 50.0);
        // A path that fits on a page is not split across two.
        let need = steps.len() as f32 * pitch;
        if self.y - need < BOTTOM && need < TOP - BOTTOM - 40.0 {
            self.new_page();
        }
        for (i, (title, detail, arrow)) in steps.iter().enumerate() {
            if self.y - pitch < BOTTOM {
                self.new_page();
            }
            let top = self.y - 4.0;
            self.titled_box(MARGIN, top, (w, bh), title, detail);
            if i + 1 < steps.len() {
                let x = MARGIN + 20.0;
                self.line(vec![(x, top - bh), (x, top - pitch + 4.0)]);
                self.place(
                    Font::Regular,
                    7.0,
                    (x + 10.0, top - bh - 13.0),
                    w - 40.0,
                    arrow,
                );
            }
            self.y = top - pitch + 4.0;
        }
    }

    /// Text in `font` at `size` pt, wrapped to the page width, indented by `indent` pt.
    fn text(&mut self, font: Font, size: f32, indent: f32, text: &str) {
        let width = PAGE_W - 2.0 * MARGIN - indent;
        let per_line = ((width / font.char_width(size)) as usize).max(10);
        let ascii = to_ascii(text);
        let mut rest: &str = &ascii;
        loop {
            let take = if rest.len() <= per_line {
                rest.len()
            } else {
                rest[..per_line]
                    .rfind(' ')
                    .filter(|&i| i > per_line / 2)
                    .unwrap_or(per_line)
            };
            let (line, tail) = rest.split_at(take);
            if self.y - size < BOTTOM {
                self.new_page();
            }
            self.y -= size * 1.3;
            let page = self.pages.last_mut().expect("a page");
            page.push((
                font,
                size,
                MARGIN + indent,
                self.y,
                line.trim_end().to_string(),
            ));
            rest = tail.trim_start();
            if rest.is_empty() {
                break;
            }
        }
    }

    fn gap(&mut self, pt: f32) {
        self.y -= pt;
    }

    fn heading(&mut self, text: &str) {
        if self.y < BOTTOM + 80.0 {
            self.new_page();
        }
        self.gap(8.0);
        self.text(Font::Bold, 13.0, 0.0, text);
        self.gap(2.0);
    }
}

/// The exhibit's text in the standard fonts' repertoire: ASCII and Latin-1, with the
/// report's few other characters spelled out.
fn to_ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '→' => "->".to_string(),
            '–' | '—' => "-".to_string(),
            '·' => "|".to_string(),
            '…' => "...".to_string(),
            c if c.is_ascii() && !c.is_ascii_control() => c.to_string(),
            // Latin-1 letters (ö, é, ...) are WinAnsi's own.
            c if ('\u{a0}'..='\u{ff}').contains(&c) => c.to_string(),
            _ => "?".to_string(),
        })
        .collect()
}

/// The bytes of text already limited to ASCII and Latin-1 (see [`to_ascii`]) in
/// WinAnsiEncoding, which agrees with Latin-1 on those.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// What the exhibit needs besides the case.
#[derive(Debug)]
pub struct PdfInput<'a> {
    pub case: &'a Case,
    pub result: &'a PolicyResult,
    pub headline: &'a str,
    pub generated: &'a str,
    pub meta: Option<&'a crate::case::Meta>,
    /// sha256 of `edges.csv` when it was written (the appendix points to it).
    pub edges_csv_sha256: Option<&'a str>,
    /// `eval_trace.json` of this trace, if measured.
    pub measured: Option<&'a serde_json::Value>,
    /// At most this many transfers in the appendix.
    pub max_rows: usize,
    /// The summary chart: the seeds box's title and detail, then (title, detail, exits'
    /// numbers) per receiving box.
    pub summary: (&'a str, &'a str, &'a [(String, String, String)]),
    /// The exits whose path to draw: (exit number, steps of [`super::path_steps`]).
    pub paths: &'a [(usize, Vec<super::ChartBox>)],
    /// The case's audit trail (notes included).
    pub audit: &'a [crate::case::Entry],
    /// The examiner's notes from the canvas: (on what, note).
    pub canvas_notes: &'a [(String, String)],
    /// Requests the canvas answered on this case (logged, not listed).
    pub canvas_requests: usize,
}

fn money(c: &Case, v: Amount) -> String {
    let text = format!("{} {}", fmt::amount(v, c.decimals()), c.unit());
    if c.asset.is_none() {
        format!("{text} ({v} sat)")
    } else {
        text
    }
}

/// The PDF's bytes.
pub fn render(p: &PdfInput) -> Vec<u8> {
    let c = p.case;
    let r = p.result;
    let mut l = Layout::new();
    l.text(Font::Bold, 18.0, 0.0, "Evidence report: tracing of funds");
    l.text(
        Font::Regular,
        10.0,
        0.0,
        &format!(
            "{} trace on {} {}, {} model; generated {} by chaintrace {}",
            c.param("direction"),
            c.chain,
            c.network,
            r.policy,
            p.generated,
            crate::VERSION
        ),
    );
    let test_data = !matches!(c.network.as_str(), "bitcoin" | "mainnet");
    if test_data {
        l.gap(4.0);
        l.text(
            Font::Bold,
            10.0,
            0.0,
            &format!(
                "TEST DATA: this case is on the {} network; its coins have no market value.",
                c.network
            ),
        );
    }
    l.heading("Case");
    if let Some(m) = p.meta {
        for (k, v) in m.fields() {
            if let Some(v) = v {
                l.text(Font::Regular, 10.0, 0.0, &format!("{k}: {v}"));
            }
        }
    }
    if p.meta.and_then(|m| m.number.as_ref()).is_none() {
        l.text(
            Font::Regular,
            10.0,
            0.0,
            "Case number: not recorded (chaintrace case init CASE --number N --examiner NAME records it).",
        );
    }
    l.heading("The question");
    for (k, v) in [
        ("Seeds (as given)", c.param("seeds")),
        ("Direction", c.param("direction")),
        ("Taint models", c.param("policies")),
        ("Maximum hops", c.param("max_hops")),
        (
            "Heights followed",
            c.param("followed_heights").replace(", ", " to "),
        ),
        ("Stop at categories", c.param("stop_at")),
        ("Level", c.param("level")),
        (
            "CoinJoins",
            if c.param("through_coinjoins") == "true" {
                "followed through (--through-coinjoins): the model carried taint on through the CoinJoins chaintrace detected".to_string()
            } else {
                "a CoinJoin chaintrace detected ends the trace; the taint that entered it is listed with the exits".to_string()
            },
        ),
    ] {
        l.text(Font::Regular, 10.0, 0.0, &format!("{k}: {v}"));
    }
    l.heading("The answer");
    l.text(Font::Regular, 11.0, 0.0, p.headline);
    // Every model's figure, so the exhibit does not show one model's answer only.
    l.heading("Exposure per model");
    l.text(
        Font::Regular,
        8.0,
        0.0,
        "What each conserving model attributes to the labelled entities (the charts and exits below show the model named above); poison is an upper bound: the whole value of every output the taint touched, not an amount that moved.",
    );
    for x in &c.results {
        let total: Amount = x.exposure_entity.values().sum();
        let entities: Vec<String> = {
            let mut v: Vec<(&String, &Amount)> = x.exposure_entity.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            v.iter()
                .take(4)
                .map(|(e, a)| format!("{e} {}", money(c, **a)))
                .collect()
        };
        l.text(
            Font::Regular,
            9.0,
            12.0,
            &format!(
                "{}{}: {} in all{}",
                x.policy,
                if x.policy == "poison" {
                    " (upper bound, outputs touched)"
                } else {
                    ""
                },
                money(c, total),
                if entities.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", entities.join("; "))
                }
            ),
        );
    }
    l.heading("The method");
    let def = c
        .methodology
        .get(&r.policy)
        .cloned()
        .or_else(|| {
            crate::trace::policy::Policy::from_name(&r.policy).map(|x| x.definition().to_string())
        })
        .unwrap_or_default();
    l.text(Font::Regular, 9.0, 0.0, &format!("{}: {def}", r.policy));
    l.text(
        Font::Regular,
        9.0,
        0.0,
        "On-chain facts (which transaction paid which address how much) are exact. Attributions (which entity an address belongs to) are inferences from the tags' sources; amounts per model are the model's attribution of mixed value.",
    );

    if let Some(m) = p.measured {
        l.heading("Measured error of this trace");
        l.text(
            Font::Regular,
            9.0,
            0.0,
            &format!(
                "Exposure to {} against {} (sha256 {}), measured {}:",
                m["category"].as_str().unwrap_or(""),
                m["truth"].as_str().unwrap_or(""),
                m["truth_sha256"].as_str().unwrap_or(""),
                m["measured_at"].as_str().unwrap_or("")
            ),
        );
        for row in m["models"].as_array().into_iter().flatten() {
            l.text(
                Font::Mono,
                8.0,
                12.0,
                &format!(
                    "{:<8} error {:>9}  true flows found {}/{} (exact {})  exits matching no flow {}{}",
                    row["policy"].as_str().unwrap_or(""),
                    crate::trace::eval::percent(row["signed_error_ppm"].as_i64().map(i128::from)),
                    row["flows_found"],
                    row["flows_true"],
                    row["flows_exact"],
                    row["exits_unmatched"],
                    if row["policy"] == "poison" {
                        "  (poison: an upper bound by design)"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    l.heading("Limitations");
    for item in super::html::limitation_items(c, &r.policy) {
        l.text(Font::Regular, 9.0, 0.0, &format!("- {item}"));
    }
    // The summary chart, on this page when it fits.
    let rows = p.summary.2.len().min(18) as f32;
    if l.y - (90.0 + rows * 34.0) < BOTTOM {
        l.new_page();
    }
    l.heading("Summary: where the seeds' value went");
    l.text(
        Font::Regular,
        8.0,
        0.0,
        &format!(
            "Each line: the value the {} model attributes from the seeds to the entity, intermediate transactions collapsed; E-numbers are the rows of the exits table (txid:vout) on the next page. Boxes name tags, not verdicts.",
            r.policy
        ),
    );
    let (seeds_title, seeds_detail, boxes) = p.summary;
    l.summary_chart((seeds_title, seeds_detail), boxes);
    if let Some(n) = super::rest_note(c, r) {
        l.text(Font::Regular, 8.0, 0.0, &n);
    }
    // Exits.
    l.new_page();
    l.heading(&format!(
        "Where the {} trace ended at labelled addresses",
        r.policy
    ));
    let exits: Vec<&End> = r.ends.iter().filter(|e| e.kind == "exit").collect();
    if exits.is_empty() {
        l.text(Font::Regular, 10.0, 0.0, "No exit.");
    }
    let deposits = super::deposits(c, r);
    if deposits.thin.0 > 0 {
        l.text(
            Font::Bold,
            9.0,
            0.0,
            &format!(
                "{} exit(s) carry under 1 % of their deposit ({} in all): the model spread the seeds' value thinly there; read them with care.",
                deposits.thin.0,
                money(c, deposits.thin.1)
            ),
        );
    }
    let min_bp =
        crate::trace::parse_min_share(&c.param("min_share_percent")).map_or(0, |m| m.basis_points);
    if deposits.hidden.0 > 0 {
        l.text(
            Font::Regular,
            9.0,
            0.0,
            &format!(
                "{} exit(s) below --min-share {} % ({}) are not listed here (they stay in every total); their numbers are skipped.",
                deposits.hidden.0,
                c.param("min_share_percent"),
                money(c, deposits.hidden.1)
            ),
        );
    }
    for (i, e) in exits.iter().enumerate() {
        if crate::trace::share_bp(e.amount, e.output_value) < min_bp {
            continue;
        }
        let tag = c.attributions.get(&e.address).map_or_else(
            || e.entity.clone().unwrap_or_default(),
            |t| {
                format!(
                    "tag: {} ({}, confidence {}, {})",
                    t.entity, t.source, t.confidence, t.tag
                )
            },
        );
        let share = e
            .output_value
            .filter(|w| *w > 0)
            .map_or_else(String::new, |w| {
                format!(
                    " of a {} deposit ({})",
                    money(c, w),
                    crate::trace::percent_text(e.amount, w, 2).unwrap_or_default()
                )
            });
        l.text(
            Font::Bold,
            9.0,
            0.0,
            &format!("E{} {}", i + 1, money(c, e.amount)),
        );
        l.text(Font::Regular, 8.0, 12.0, &format!("{share}; {tag}"));
        l.text(Font::Mono, 7.0, 12.0, &format!("{}:{}", e.txid, e.vout));
        if let Some(cl) = &e.cluster {
            l.text(Font::Mono, 7.0, 12.0, &format!("its cluster {cl}"));
        }
        l.text(
            Font::Mono,
            7.0,
            12.0,
            &format!("paid address {}", e.address),
        );
    }
    // Taint that entered a CoinJoin.
    let joins: Vec<&End> = r.ends.iter().filter(|e| e.kind == "coinjoin").collect();
    if !joins.is_empty() {
        l.heading("Taint that entered a CoinJoin (not followed)");
        for e in joins {
            l.text(
                Font::Mono,
                7.0,
                0.0,
                &format!(
                    "{}:{} {} -> CoinJoin {}",
                    e.txid,
                    e.vout,
                    money(c, e.amount),
                    e.coinjoin.as_deref().unwrap_or("")
                ),
            );
        }
    }
    // Deposit addresses per entity, largest first, with their first and last payment.
    l.heading("Deposit addresses to request records for");
    l.text(
        Font::Regular,
        8.0,
        0.0,
        "On-chain fact: these transactions paid these addresses; the entity is the label's attribution. Per address: traced amount, payments, first and last payment (UTC).",
    );
    for ((ent, cat), total, addrs) in &deposits.entities {
        l.text(
            Font::Bold,
            10.0,
            0.0,
            &format!(
                "{ent} ({cat}): {} to {} address(es)",
                money(c, *total),
                addrs.len()
            ),
        );
        for x in addrs {
            l.text(
                Font::Mono,
                7.0,
                12.0,
                &format!(
                    "{}  {}  {} payment(s)  {} to {}",
                    x.address,
                    money(c, x.amount),
                    x.payments,
                    fmt::datetime(i64::from(x.first)),
                    fmt::datetime(i64::from(x.last))
                ),
            );
        }
    }
    // The paths asked for.
    if !p.paths.is_empty() {
        l.new_page();
    }
    for (n, steps) in p.paths {
        // The heading stays with its chart: a new page when not even two steps fit.
        if l.y - (70.0 + 2.0 * 50.0) < BOTTOM {
            l.new_page();
        }
        l.heading(&format!("Path of exit E{n}, from a seed"));
        l.text(
            Font::Regular,
            8.0,
            0.0,
            "On-chain facts: each transaction on the path (block, time, txid) and the amount the model moved on along it; the last box is the exit.",
        );
        l.path_chart(steps);
    }
    // Appendix: the transfers.
    l.new_page();
    l.heading(&format!(
        "Appendix: every transfer of the {} trace",
        r.policy
    ));
    let n = r.edges.len();
    if n <= p.max_rows
        && let Some(h) = p.edges_csv_sha256
    {
        l.text(
            Font::Regular,
            9.0,
            0.0,
            &format!("All {n} transfers, with every model's amounts, are also in edges.csv beside this file (sha256 {h})."),
        );
    }
    if n > p.max_rows {
        l.text(
            Font::Regular,
            9.0,
            0.0,
            &format!(
                "{n} transfers: the first {} are listed; all are in edges.csv beside this file{}.",
                p.max_rows,
                p.edges_csv_sha256
                    .map(|h| format!(" (sha256 {h})"))
                    .unwrap_or_default()
            ),
        );
    }
    l.text(
        Font::Bold,
        7.0,
        0.0,
        &format!(
            "Each transfer: {}, traced amount ({}){}.",
            if c.asset.is_some() {
                "transaction, block height, block time (UTC), the sending account -> the account paid"
            } else {
                "output (txid:vout), block height, block time (UTC), an input address of the sender -> the address paid"
            },
            c.unit(),
            if c.param("level") == "cluster" {
                "; the sending and receiving clusters are in edges.csv"
            } else {
                ""
            }
        ),
    );
    for e in r.edges.iter().take(p.max_rows) {
        l.text(
            Font::Mono,
            7.0,
            0.0,
            &format!(
                "{} h{} {} {} -> {} {}",
                if c.asset.is_some() {
                    e.txid.to_string()
                } else {
                    format!("{}:{}", e.txid, e.vout)
                },
                e.height,
                fmt::datetime(i64::from(e.time)),
                if e.from_address.is_empty() {
                    &e.from
                } else {
                    &e.from_address
                },
                super::case::paid_address(e),
                fmt::amount(e.amount, c.decimals())
            ),
        );
    }
    // Provenance: what made the case, and its history.
    l.new_page();
    l.heading("Provenance");
    l.text(
        Font::Regular,
        8.0,
        0.0,
        &format!("Trace made by {} with the command:", c.tool),
    );
    l.text(Font::Mono, 7.0, 12.0, &crate::cli::shell_words(&c.command));
    l.text(
        Font::Regular,
        8.0,
        0.0,
        &format!(
            "Dataset manifest sha256 {} (it lists every Parquet part's sha256 and source). Inputs read besides the parts:",
            c.dataset_manifest_sha256
        ),
    );
    for (name, h) in &c.inputs {
        l.text(Font::Mono, 7.0, 12.0, &format!("{h}  {name}"));
    }
    l.heading("Notes and audit trail");
    l.text(
        Font::Regular,
        8.0,
        0.0,
        "From the case's audit.jsonl, an append-only log in which each entry holds the sha256 of the one before it; chaintrace case verify checks it, every recorded hash, and runs the trace again.",
    );
    for e in p.audit {
        let what = e
            .note
            .clone()
            .unwrap_or_else(|| crate::cli::shell_words(&e.command));
        l.text(
            Font::Regular,
            8.0,
            0.0,
            &format!("#{} {} {}: {what}", e.seq, e.time, e.action),
        );
    }
    if p.canvas_requests > 0 {
        l.text(
            Font::Regular,
            8.0,
            0.0,
            &format!(
                "The canvas answered {} request(s) on this case, each logged in audit.jsonl (chaintrace case log lists them).",
                p.canvas_requests
            ),
        );
    }
    if !p.canvas_notes.is_empty() {
        l.heading("Examiner's notes on the chart");
        for (on, note) in p.canvas_notes {
            l.text(Font::Regular, 8.0, 0.0, &format!("{on}: {note}"));
        }
    }

    // Write the pages, each with its footer.
    let total = l.pages.len();
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let fonts = [Ref::new(3), Ref::new(4), Ref::new(5)];
    let mut next = 6;
    let mut page_ids = Vec::new();
    let mut content_ids = Vec::new();
    for _ in 0..total {
        page_ids.push(Ref::new(next));
        content_ids.push(Ref::new(next + 1));
        next += 2;
    }
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(i32::try_from(total).unwrap_or(i32::MAX));
    for (id, base) in fonts
        .iter()
        .zip([&b"Helvetica"[..], b"Helvetica-Bold", b"Courier"])
    {
        pdf.type1_font(*id)
            .base_font(Name(base))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let number = p
        .meta
        .and_then(|m| m.number.clone())
        .map_or_else(String::new, |n| format!("case {n} | "));
    for (i, lines) in l.pages.iter().enumerate() {
        let mut content = Content::new();
        content.set_line_width(0.8);
        content.set_stroke_rgb(0.47, 0.56, 0.61);
        content.set_fill_rgb(0.93, 0.94, 0.95);
        for shape in &l.shapes[i] {
            match shape {
                Shape::Box(x, y, w, h) => {
                    content.rect(*x, *y, *w, *h);
                    content.fill_nonzero_and_stroke();
                }
                Shape::Line(pts) => {
                    let (Some(&first), Some(&last)) = (pts.first(), pts.last()) else {
                        continue;
                    };
                    content.move_to(first.0, first.1);
                    if let [_, a, b, c] = pts.as_slice() {
                        content.cubic_to(a.0, a.1, b.0, b.1, c.0, c.1);
                    } else {
                        for p in &pts[1..] {
                            content.line_to(p.0, p.1);
                        }
                    }
                    content.stroke();
                    // The arrowhead, along the last segment.
                    let prev = pts[pts.len() - 2];
                    let (dx, dy) = (last.0 - prev.0, last.1 - prev.1);
                    let len = (dx * dx + dy * dy).sqrt().max(f32::EPSILON);
                    let (ux, uy) = (dx / len, dy / len);
                    content.set_fill_rgb(0.47, 0.56, 0.61);
                    content.move_to(last.0, last.1);
                    content.line_to(last.0 - 6.0 * ux - 3.0 * uy, last.1 - 6.0 * uy + 3.0 * ux);
                    content.line_to(last.0 - 6.0 * ux + 3.0 * uy, last.1 - 6.0 * uy - 3.0 * ux);
                    content.close_path();
                    content.fill_nonzero();
                    content.set_fill_rgb(0.93, 0.94, 0.95);
                }
            }
        }
        content.set_fill_rgb(0.0, 0.0, 0.0);
        for (font, size, x, y, text) in lines {
            content.begin_text();
            content.set_font(font.name(), *size);
            content.next_line(*x, *y);
            content.show(Str(&win_ansi(text)));
            content.end_text();
        }
        let footer = to_ascii(&format!(
            "{}{number}trace.json sha256 {} | page {} of {total}",
            if test_data {
                format!("TEST DATA ({}) | ", c.network)
            } else {
                String::new()
            },
            c.trace_sha256,
            i + 1
        ));
        content.begin_text();
        content.set_font(Font::Regular.name(), 7.0);
        content.next_line(MARGIN, 30.0);
        content.show(Str(&win_ansi(&footer)));
        content.end_text();
        pdf.stream(content_ids[i], &content.finish());
        let mut page = pdf.page(page_ids[i]);
        page.parent(tree)
            .media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .contents(content_ids[i]);
        let mut res = page.resources();
        let mut f = res.fonts();
        for (font, id) in [Font::Regular, Font::Bold, Font::Mono].iter().zip(fonts) {
            f.pair(font.name(), id);
        }
    }
    pdf.finish()
}
