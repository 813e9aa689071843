//! Charts drawn with plotters, the same code for SVG and PNG: the flow chart, the Sankey
//! chart and the time series. Text uses the bundled DejaVu Sans (assets/fonts), so PNGs are
//! the same on every machine.

use std::sync::Once;

use super::ReportError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::graph::FlowGraph;
use super::layout::{BOX_H, BOX_W, FOOTER, HEADER, Layout, MARGIN, Rect};
use crate::trace::Amount;
use crate::types::{ix, n32};

const FONT: &str = "sans-serif";
static FONT_DATA: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the bundled font (once).
pub fn register_font() {
    REGISTER.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_DATA)
            .unwrap_or_else(|_| panic!("the bundled font is valid"));
    });
}

/// Width in pixels of `text` at `size`.
pub fn measure(text: &str, size: f64) -> i32 {
    register_font();
    (FONT, size).into_font().box_size(text).map_or(
        text.chars().count() as i32 * (size as i32) * 6 / 10,
        |(w, _)| w as i32,
    )
}

/// `text`, cut with an ellipsis to fit `width` pixels at `size`.
pub fn fit(text: &str, size: f64, width: i32) -> String {
    if measure(text, size) <= width {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let t: String = chars.iter().collect::<String>() + "…";
        if measure(&t, size) <= width {
            return t;
        }
    }
    String::new()
}

/// Texts around a chart.
#[derive(Clone, Debug)]
pub struct Frame {
    pub title: String,
    pub subtitle: String,
    pub footer: String,
}

/// An amount as the charts write it: every decimal of a unit with at most 8 (BTC:
/// 0.10000000, as the tables and exports write it), trailing zeros trimmed for longer ones
/// (wei: 18 decimals would crowd a label).
pub fn shown(units: Amount, decimals: u32) -> String {
    if decimals <= 8 {
        super::fmt::amount(units, decimals)
    } else {
        super::graph::trim(units, decimals)
    }
}

/// The colour of a category.
pub fn colour(category: &str) -> RGBColor {
    // A neutral palette: a category's colour says which tag it is, never a verdict. No
    // category is red and none is chosen by matching words in its name (a "supermarket"
    // merchant is not a darknet market); each label category gets a palette colour by a
    // stable hash of its exact name, so a case's charts agree with each other.
    match category {
        "seed" => RGBColor(38, 50, 56),
        "unlabelled" => RGBColor(96, 125, 139),
        "peel chain" => RGBColor(141, 110, 99),
        "other" | "not followed" => RGBColor(158, 158, 158),
        c => {
            const P: [RGBColor; 8] = [
                RGBColor(21, 101, 192),
                RGBColor(0, 131, 143),
                RGBColor(85, 139, 47),
                RGBColor(94, 53, 177),
                RGBColor(121, 85, 72),
                RGBColor(2, 119, 189),
                RGBColor(69, 90, 100),
                RGBColor(130, 119, 23),
            ];
            let h = c
                .to_ascii_lowercase()
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            P[ix(h % 8)]
        }
    }
}

fn tint(c: RGBColor, keep: f64) -> RGBColor {
    let m = |v: u8| (f64::from(v) * keep + 255.0 * (1.0 - keep)).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

fn text_style(size: f64, colour: &RGBColor, h: HPos) -> TextStyle<'static> {
    TextStyle {
        font: (FONT, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(h, VPos::Center),
    }
}

type R<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn frame<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &Frame, w: i32, h: i32) -> R<DB> {
    area.fill(&WHITE)?;
    let dark = RGBColor(33, 33, 33);
    area.draw(&Text::new(
        fit(&f.title, 18.0, w - 2 * MARGIN),
        (MARGIN, 22),
        text_style(18.0, &dark, HPos::Left),
    ))?;
    area.draw(&Text::new(
        fit(&f.subtitle, 12.0, w - 2 * MARGIN),
        (MARGIN, 46),
        text_style(12.0, &RGBColor(66, 66, 66), HPos::Left),
    ))?;
    area.draw(&Text::new(
        fit(&f.footer, 10.0, w - 2 * MARGIN),
        (MARGIN, h - FOOTER / 2),
        text_style(10.0, &RGBColor(97, 97, 97), HPos::Left),
    ))?;
    Ok(())
}

/// A cubic Bézier from `a` to `b` with horizontal tangents, as points.
fn curve(a: (i32, i32), b: (i32, i32)) -> Vec<(i32, i32)> {
    let (ax, ay, bx, by) = (
        f64::from(a.0),
        f64::from(a.1),
        f64::from(b.0),
        f64::from(b.1),
    );
    let mx = (ax + bx) / 2.0;
    (0..=20)
        .map(|i| {
            let t = f64::from(i) / 20.0;
            let u = 1.0 - t;
            let x = u * u * u * ax + 3.0 * u * u * t * mx + 3.0 * u * t * t * mx + t * t * t * bx;
            let y = u * u * u * ay + 3.0 * u * u * t * ay + 3.0 * u * t * t * by + t * t * t * by;
            (x.round() as i32, y.round() as i32)
        })
        .collect()
}

/// Facts the flow chart writes in its boxes.
#[derive(Clone, Debug)]
pub struct FlowText {
    pub unit: String,
    pub decimals: u32,
}

/// Draws the flow chart.
pub fn flow<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fg: &FlowGraph,
    l: &Layout,
    f: &Frame,
    t: &FlowText,
) -> R<DB> {
    frame(area, f, l.width, l.height)?;
    // Legend: the categories on the chart, then the edge scale.
    let mut cats: Vec<&str> = fg.nodes.iter().map(|n| n.category.as_str()).collect();
    cats.sort_unstable();
    cats.dedup();
    let mut x = MARGIN;
    for c in cats {
        let col = colour(c);
        area.draw(&Rectangle::new([(x, 66), (x + 14, 80)], col.filled()))?;
        area.draw(&Text::new(
            c.to_string(),
            (x + 19, 73),
            text_style(11.0, &RGBColor(33, 33, 33), HPos::Left),
        ))?;
        x += 19 + measure(c, 11.0) + 18;
    }
    area.draw(&Text::new(
        format!(
            "edge width ∝ √amount · label: amount {} · date of the first transfer",
            t.unit
        ),
        (x + 8, 73),
        text_style(11.0, &RGBColor(97, 97, 97), HPos::Left),
    ))?;
    // Column headers above each column's first box.
    for (layer, name) in fg.column_names.iter().enumerate() {
        let x = fg
            .nodes
            .iter()
            .zip(&l.boxes)
            .filter(|(n, _)| n.layer == layer)
            .map(|(_, b)| b.x)
            .min();
        if let Some(x) = x {
            area.draw(&Text::new(
                fit(name, 12.0, BOX_W),
                (x, HEADER - 12),
                text_style(12.0, &RGBColor(55, 71, 79), HPos::Left),
            ))?;
        }
    }
    // Edges under the boxes.
    for e in &l.edges {
        let fe = &fg.edges[e.edge];
        let col = colour(&fg.nodes[fe.from].category).mix(0.45);
        let mut pts: Vec<(i32, i32)> = Vec::new();
        for w in e.points.windows(2) {
            let seg = if w[0].1 == w[1].1 {
                vec![w[0], w[1]]
            } else {
                curve(w[0], w[1])
            };
            pts.extend(seg);
        }
        let style = ShapeStyle {
            color: col,
            filled: false,
            stroke_width: e.width,
        };
        if e.back {
            area.draw(&plotters::element::DashedPathElement::new(pts, 6, 4, style))?;
        } else {
            area.draw(&PathElement::new(pts, style))?;
        }
        let (tx, ty) = *e.points.last().expect("edges have two points");
        let s = 4 + e.width as i32 / 2;
        area.draw(&Polygon::new(
            vec![(tx, ty), (tx - 2 * s, ty - s), (tx - 2 * s, ty + s)],
            colour(&fg.nodes[fe.from].category).mix(0.8).filled(),
        ))?;
    }
    // Edge labels with a leader to their edge when moved.
    let grey = RGBColor(117, 117, 117);
    for e in &l.edges {
        let b = e.label_box;
        let cy = b.y + b.h / 2;
        if (cy - e.anchor.1).abs() > 3 {
            area.draw(&PathElement::new(
                vec![(e.anchor.0, e.anchor.1), (b.x + b.w / 2, cy)],
                grey.mix(0.6),
            ))?;
            area.draw(&Circle::new(e.anchor, 2, grey.filled()))?;
        }
        area.draw(&Rectangle::new(
            [(b.x, b.y), (b.x + b.w, b.y + b.h)],
            WHITE.mix(0.92).filled(),
        ))?;
        area.draw(&Rectangle::new(
            [(b.x, b.y), (b.x + b.w, b.y + b.h)],
            RGBColor(224, 224, 224),
        ))?;
        area.draw(&Text::new(
            e.label.clone(),
            (b.x + b.w / 2, cy),
            text_style(11.0, &RGBColor(33, 33, 33), HPos::Center),
        ))?;
    }
    for (n, b) in fg.nodes.iter().zip(&l.boxes) {
        draw_box(area, n, b, t)?;
    }
    Ok(())
}

fn draw_box<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    n: &super::graph::Node,
    b: &Rect,
    t: &FlowText,
) -> R<DB> {
    let col = colour(&n.category);
    area.draw(&Rectangle::new(
        [(b.x, b.y), (b.x + b.w, b.y + b.h)],
        tint(col, 0.12).filled(),
    ))?;
    area.draw(&Rectangle::new(
        [(b.x, b.y), (b.x + b.w, b.y + b.h)],
        col.stroke_width(2),
    ))?;
    area.draw(&Rectangle::new(
        [(b.x, b.y), (b.x + 6, b.y + b.h)],
        col.filled(),
    ))?;
    let (held, verb) = if n.seed {
        (n.sent, "sent")
    } else {
        (n.received, "received")
    };
    let inner = b.w - 16;
    let dark = RGBColor(33, 33, 33);
    area.draw(&Text::new(
        fit(&n.title, 13.0, inner),
        (b.x + 11, b.y + 11),
        text_style(13.0, &dark, HPos::Left),
    ))?;
    let amount = format!("{verb} {} {}", shown(held, t.decimals), t.unit);
    area.draw(&Text::new(
        fit(&amount, 11.0, inner),
        (b.x + 11, b.y + 26),
        text_style(11.0, &RGBColor(55, 71, 79), HPos::Left),
    ))?;
    let detail = if n.detail.is_empty() {
        n.category.clone()
    } else {
        format!("{} · {}", n.category, n.detail)
    };
    area.draw(&Text::new(
        fit(&detail, 10.0, inner),
        (b.x + 11, b.y + BOX_H - 9),
        text_style(10.0, &RGBColor(97, 97, 97), HPos::Left),
    ))?;
    Ok(())
}

/// One band of the Sankey chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// 0: first to second column; 1: second to third.
    pub col: usize,
    pub from: String,
    pub to: String,
    pub amount: Amount,
    pub category: String,
}

/// The Sankey chart: seeds → where the value ended → categories (three columns).
pub fn sankey<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (w, h): (i32, i32),
    columns: &[Vec<(String, Amount, String)>; 3],
    flows: &[Flow],
    f: &Frame,
    t: &FlowText,
) -> R<DB> {
    frame(area, f, w, h)?;
    let top = 80;
    let plot_h = h - top - FOOTER - 20;
    let node_w = 18;
    let xs = [MARGIN + 10, w / 2 - node_w / 2, w - MARGIN - 260];
    let gap = 12;
    let total = columns
        .iter()
        .map(|c| (c.iter().map(|x| x.1).sum::<Amount>(), c.len() as i32))
        .map(|(s, n)| s as f64 / f64::from((plot_h - gap * (n - 1).max(0)).max(1)))
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let scale = |v: Amount| (v as f64 / total).max(1.0);
    // Node rectangles; each node keeps (top, used by incoming bands, used by outgoing bands).
    let mut spans: Vec<std::collections::BTreeMap<String, (f64, f64, f64)>> = Vec::new();
    for (ci, col) in columns.iter().enumerate() {
        let mut y = f64::from(top);
        let mut m = std::collections::BTreeMap::new();
        for (name, v, cat) in col {
            let hgt = scale(*v);
            let x = xs[ci];
            area.draw(&Rectangle::new(
                [(x, y as i32), (x + node_w, (y + hgt) as i32)],
                colour(cat).filled(),
            ))?;
            m.insert(name.clone(), (y, y, y));
            y += hgt + f64::from(gap);
        }
        spans.push(m);
    }
    // Bands, stacked at both ends in order.
    for fl in flows {
        let ci = fl.col.min(1);
        let hgt = scale(fl.amount);
        let Some(&(_, _, a)) = spans[ci].get(&fl.from) else {
            continue;
        };
        let Some(&(_, b, _)) = spans[ci + 1].get(&fl.to) else {
            continue;
        };
        let (x0, x1) = (xs[ci] + node_w, xs[ci + 1]);
        let upper = curve((x0, a as i32), (x1, b as i32));
        let lower = curve((x0, (a + hgt) as i32), (x1, (b + hgt) as i32));
        let mut poly = upper;
        poly.extend(lower.into_iter().rev());
        area.draw(&Polygon::new(poly, colour(&fl.category).mix(0.35).filled()))?;
        if let Some(s) = spans[ci].get_mut(&fl.from) {
            s.2 += hgt;
        }
        if let Some(s) = spans[ci + 1].get_mut(&fl.to) {
            s.1 += hgt;
        }
    }
    // Labels last, on a white ground, so that bands never hide them.
    for (ci, col) in columns.iter().enumerate() {
        for (name, v, _) in col {
            let (y0, ..) = spans[ci][name];
            let label = fit(
                &format!("{name} · {} {}", shown(*v, t.decimals), t.unit),
                11.0,
                250,
            );
            let (x, yc) = (xs[ci] + node_w + 6, (y0 + scale(*v) / 2.0) as i32);
            let w = measure(&label, 11.0);
            area.draw(&Rectangle::new(
                [(x - 2, yc - 8), (x + w + 3, yc + 8)],
                WHITE.mix(0.85).filled(),
            ))?;
            area.draw(&Text::new(
                label,
                (x, yc),
                text_style(11.0, &RGBColor(33, 33, 33), HPos::Left),
            ))?;
        }
    }
    Ok(())
}

/// The time series: amount moved per bucket (bars) and cumulative amount reaching exits
/// (line), with bucket names on the x axis.
pub fn timeline<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (w, h): (i32, i32),
    buckets: &[(String, Amount, Amount)],
    f: &Frame,
    t: &FlowText,
) -> R<DB> {
    frame(area, f, w, h)?;
    let inner = area.margin(70, FOOTER, 10, 20);
    let (upper, lower) = inner.split_vertically((h - 70 - FOOTER) / 2);
    let coin = |v: Amount| v as f64 / 10f64.powi(t.decimals as i32);
    let n = buckets.len().max(1) as i32;
    let names: Vec<String> = buckets.iter().map(|b| b.0.clone()).collect();
    let fmt_x = |x: &SegmentValue<i32>| match x {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            names.get(ix(*i)).cloned().unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    };
    let per = if names.first().is_some_and(|s| s.len() == 7) {
        "month"
    } else {
        "day"
    };
    let labels = buckets.len().clamp(1, 16);
    let panel = |a: &DrawingArea<DB, Shift>, caption: String, max: f64| {
        ChartBuilder::on(a)
            .caption(caption, (FONT, 13))
            .x_label_area_size(28)
            .y_label_area_size(80)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..max)
    };
    let max_moved = buckets
        .iter()
        .map(|b| coin(b.1))
        .fold(0.0, f64::max)
        .max(1e-8)
        * 1.1;
    let mut c = panel(
        &upper,
        format!("moved in traced transfers per {per} ({})", t.unit),
        max_moved,
    )?;
    let mesh = |c: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<
            plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32>,
            plotters::coord::types::RangedCoordf64,
        >,
    >| {
        c.configure_mesh()
            .x_labels(labels)
            .x_label_formatter(&fmt_x)
            .y_desc(t.unit.as_str())
            .label_style((FONT, 10))
            .light_line_style(TRANSPARENT)
            .disable_x_mesh()
            .draw()
    };
    mesh(&mut c)?;
    c.draw_series(buckets.iter().enumerate().map(|(i, b)| {
        let i = i as i32;
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), coin(b.1)),
            ],
            colour("seed").mix(0.7).filled(),
        );
        r.set_margin(0, 0, 4, 4);
        r
    }))?;
    let max_cum = buckets
        .iter()
        .map(|b| coin(b.2))
        .fold(0.0, f64::max)
        .max(1e-8)
        * 1.1;
    let mut c2 = panel(
        &lower,
        format!("cumulative amount reaching exits ({})", t.unit),
        max_cum,
    )?;
    mesh(&mut c2)?;
    let blue = colour("exchange");
    let at = |i: usize| SegmentValue::CenterOf(i as i32);
    c2.draw_series(LineSeries::new(
        buckets.iter().enumerate().map(|(i, b)| (at(i), coin(b.2))),
        blue.stroke_width(2),
    ))?;
    c2.draw_series(
        buckets
            .iter()
            .enumerate()
            .map(|(i, b)| Circle::new((at(i), coin(b.2)), 3, blue.filled())),
    )?;
    Ok(())
}

/// Grouped bars; each series is (name, category for its colour, values per x).
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (w, h): (i32, i32),
    f: &Frame,
    x: &[String],
    series: &[(String, String, Vec<f64>)],
    y_desc: &str,
) -> R<DB> {
    frame(area, f, w, h)?;
    let inner = area.margin(64, FOOTER, 10, 20);
    let n = x.len().max(1);
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0, f64::max)
        .max(1e-8)
        * 1.1;
    // Group i is centred on x = i; its bars share 80 % of the unit width.
    let fmt_x = |v: &f64| {
        let r = v.round();
        if (v - r).abs() < 1e-6 && r >= 0.0 {
            x.get(r as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let mut c = ChartBuilder::on(&inner)
        .x_label_area_size(34)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..max)?;
    c.configure_mesh()
        .x_labels(n.clamp(1, 24))
        .x_label_formatter(&fmt_x)
        .y_desc(y_desc)
        .label_style((FONT, 10))
        .light_line_style(TRANSPARENT)
        .disable_x_mesh()
        .draw()?;
    let k = series.len().max(1) as f64;
    let bar = 0.8 / k;
    for (si, (name, cat, vals)) in series.iter().enumerate() {
        let col = colour(cat);
        let left = -0.4 + si as f64 * bar;
        c.draw_series(vals.iter().enumerate().map(|(i, v)| {
            let x0 = i as f64 + left;
            Rectangle::new([(x0, 0.0), (x0 + bar * 0.95, *v)], col.mix(0.8).filled())
        }))?
        .label(name.clone())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], col.filled()));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 11))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .draw()?;
    Ok(())
}

/// Horizontal bars with their names and values.
fn hbars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (w, h): (i32, i32),
    f: &Frame,
    items: &[(String, u64, String)],
    unit: &str,
) -> R<DB> {
    frame(area, f, w, h)?;
    let top = 72;
    let row = ((h - top - FOOTER - 10) / items.len().max(1) as i32).clamp(12, 30);
    let name_w = 330;
    let max = items.iter().map(|i| i.1).max().unwrap_or(1).max(1) as f64;
    let bar_max = f64::from(w - MARGIN * 2 - name_w - 220);
    let dark = RGBColor(33, 33, 33);
    for (k, (name, v, cat)) in items.iter().enumerate() {
        let y = top + k as i32 * row;
        area.draw(&Text::new(
            fit(name, 11.0, name_w - 10),
            (MARGIN, y + row / 2),
            text_style(11.0, &dark, HPos::Left),
        ))?;
        let len = (*v as f64 / max * bar_max).round().max(1.0) as i32;
        let x0 = MARGIN + name_w;
        area.draw(&Rectangle::new(
            [(x0, y + 2), (x0 + len, y + row - 2)],
            colour(cat).mix(0.8).filled(),
        ))?;
        area.draw(&Text::new(
            format!("{} {unit} · {cat}", shown(u128::from(*v), 8)),
            (x0 + len + 6, y + row / 2),
            text_style(10.0, &RGBColor(66, 66, 66), HPos::Left),
        ))?;
    }
    Ok(())
}

/// Colours of the summary and path charts' boxes: ink, line, fill.
const BOX_INK: RGBColor = RGBColor(55, 71, 79);
const BOX_LINE: RGBColor = RGBColor(120, 144, 156);
const BOX_FILL: RGBColor = RGBColor(236, 239, 241);

/// A box of the summary or a path chart at (x, y), `size` wide and high: a 13 px title and
/// a detail line at `detail_px`.
fn titled_box<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    (bw, bh): (i32, i32),
    (title, detail): (&str, &str),
    detail_px: f64,
) -> R<DB> {
    a.draw(&Rectangle::new(
        [(x, y), (x + bw, y + bh)],
        BOX_FILL.filled(),
    ))?;
    a.draw(&Rectangle::new(
        [(x, y), (x + bw, y + bh)],
        BOX_LINE.stroke_width(1),
    ))?;
    a.draw(&Text::new(
        fit(title, 13.0, bw - 16),
        (x + 8, y + 14),
        text_style(13.0, &RGBColor(33, 33, 33), HPos::Left),
    ))?;
    a.draw(&Text::new(
        fit(detail, detail_px, bw - 16),
        (x + 8, y + 33),
        text_style(detail_px, &BOX_INK, HPos::Left),
    ))?;
    Ok(())
}

/// The height of the summary chart for `n` receiving boxes.
pub fn summary_height(n: usize) -> i32 {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    (110 + n * 58 + FOOTER + 40).max(360)
}

#[allow(clippy::too_many_arguments)]
fn summary<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    size: (i32, i32),
    f: &Frame,
    seeds: (&str, &str),
    boxes: &[(String, String, String)],
    columns: (&str, &str),
    legend: &str,
) -> R<DB> {
    let (w, h) = size;
    frame(a, f, w, h)?;
    let (ink, line) = (BOX_INK, BOX_LINE);
    let (bw, bh) = (360, 46);
    let (lx, rx) = (MARGIN, w - MARGIN - bw);
    let top = 100;
    a.draw(&Text::new(
        columns.0.to_string(),
        (lx, top - 20),
        text_style(12.0, &ink, HPos::Left),
    ))?;
    a.draw(&Text::new(
        columns.1.to_string(),
        (rx, top - 20),
        text_style(12.0, &ink, HPos::Left),
    ))?;
    let n = i32::try_from(boxes.len()).unwrap_or(i32::MAX);
    let ly = top + (n.max(1) * 58 - 12) / 2 - bh / 2;
    let draw_box = |x: i32, y: i32, title: &str, detail: &str| {
        titled_box(a, (x, y), (bw, bh), (title, detail), 10.0)
    };
    draw_box(lx, ly, seeds.0, seeds.1)?;
    for (i, (title, detail, label)) in boxes.iter().enumerate() {
        let y = top + i32::try_from(i).unwrap_or(i32::MAX) * 58;
        let from = (lx + bw, ly + bh / 2);
        let to = (rx, y + bh / 2);
        a.draw(&PathElement::new(curve(from, to), line.stroke_width(2)))?;
        // The label sits on its own line's end, just before the box it names, where the
        // lines no longer cross.
        a.draw(&Text::new(
            fit(label, 10.0, (rx - lx - bw) / 2 - 12),
            (rx - 8, to.1 - 9),
            text_style(10.0, &ink, HPos::Right),
        ))?;
        draw_box(rx, y, title, detail)?;
    }
    a.draw(&Text::new(
        fit(legend, 10.0, w - 2 * MARGIN),
        (MARGIN, h - FOOTER - 16),
        text_style(10.0, &RGBColor(97, 97, 97), HPos::Left),
    ))?;
    Ok(())
}

/// Pitch of the steps of a path chart: a box and the arrow below it.
const STEP_PITCH: i32 = 86;

/// The height of a path chart of `n` steps.
pub fn path_height(n: usize) -> i32 {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX / STEP_PITCH);
    100 + n * STEP_PITCH + FOOTER + 20
}

/// One exit's path, top to bottom: a box per transaction (title, txid), an arrow with
/// what moved on, then the exit.
fn path<DB: DrawingBackend>(
    a: &DrawingArea<DB, Shift>,
    size: (i32, i32),
    f: &Frame,
    steps: &[(String, String, String)],
) -> R<DB> {
    let (w, h) = size;
    frame(a, f, w, h)?;
    let (ink, line) = (BOX_INK, BOX_LINE);
    let bw = w - 2 * MARGIN;
    let bh = 46;
    for (i, (title, detail, arrow)) in steps.iter().enumerate() {
        let y = 100 + i32::try_from(i).unwrap_or(i32::MAX / STEP_PITCH) * STEP_PITCH;
        titled_box(a, (MARGIN, y), (bw, bh), (title, detail), 11.0)?;
        if i + 1 < steps.len() {
            let x = MARGIN + 40;
            let (y0, y1) = (y + bh, y + STEP_PITCH);
            a.draw(&PathElement::new(
                vec![(x, y0), (x, y1 - 6)],
                line.stroke_width(2),
            ))?;
            a.draw(&Polygon::new(
                vec![(x, y1), (x - 6, y1 - 9), (x + 6, y1 - 9)],
                line.filled(),
            ))?;
            a.draw(&Text::new(
                fit(arrow, 11.0, bw - 80),
                (x + 16, (y0 + y1) / 2),
                text_style(11.0, &ink, HPos::Left),
            ))?;
        }
    }
    Ok(())
}

/// A chart to draw.
#[derive(Debug)]
pub enum Chart<'a> {
    Flow {
        graph: &'a FlowGraph,
        layout: &'a Layout,
        frame: &'a Frame,
        text: &'a FlowText,
    },
    Sankey {
        size: (i32, i32),
        columns: &'a [Vec<(String, Amount, String)>; 3],
        flows: &'a [Flow],
        frame: &'a Frame,
        text: &'a FlowText,
    },
    Timeline {
        size: (i32, i32),
        buckets: &'a [(String, Amount, Amount)],
        frame: &'a Frame,
        text: &'a FlowText,
    },
    /// Grouped vertical bars: one group per x name, one bar per series.
    Bars {
        size: (i32, i32),
        frame: &'a Frame,
        x: &'a [String],
        series: &'a [(String, String, Vec<f64>)],
        y_desc: &'a str,
    },
    /// The summary exhibit: one seeds box, one box per receiving entity (at most ~30),
    /// edges labelled with the exit numbers (E1…En) of the exits table. Neutral colours:
    /// a tag is shown as a tag, not as a verdict.
    Summary {
        size: (i32, i32),
        frame: &'a Frame,
        /// (title, detail) of the seeds box.
        seeds: (&'a str, &'a str),
        /// (title, detail, edge label) per receiving box, top to bottom.
        boxes: &'a [(String, String, String)],
        /// Column headers: (left, right).
        columns: (&'a str, &'a str),
        legend: &'a str,
    },
    /// One exit's path ([`super::path_steps`]): (title, detail, arrow) per step.
    Path {
        size: (i32, i32),
        frame: &'a Frame,
        steps: &'a [(String, String, String)],
    },
    /// Horizontal bars, largest first: (name, amount in base units, category).
    HBars {
        size: (i32, i32),
        frame: &'a Frame,
        items: &'a [(String, u64, String)],
        unit: &'a str,
    },
}

impl Chart<'_> {
    /// Width and height in pixels.
    pub fn size(&self) -> (i32, i32) {
        match self {
            Chart::Flow { layout, .. } => (layout.width, layout.height),
            Chart::Sankey { size, .. }
            | Chart::Timeline { size, .. }
            | Chart::Bars { size, .. }
            | Chart::Summary { size, .. }
            | Chart::Path { size, .. }
            | Chart::HBars { size, .. } => *size,
        }
    }

    fn draw<DB: DrawingBackend>(&self, a: &DrawingArea<DB, Shift>) -> R<DB> {
        match *self {
            Chart::Flow {
                graph,
                layout,
                frame,
                text,
            } => flow(a, graph, layout, frame, text),
            Chart::Sankey {
                size,
                columns,
                flows,
                frame,
                text,
            } => sankey(a, size, columns, flows, frame, text),
            Chart::Timeline {
                size,
                buckets,
                frame,
                text,
            } => timeline(a, size, buckets, frame, text),
            Chart::Bars {
                size,
                frame,
                x,
                series,
                y_desc,
            } => bars(a, size, frame, x, series, y_desc),
            Chart::HBars {
                size,
                frame,
                items,
                unit,
            } => hbars(a, size, frame, items, unit),
            Chart::Summary {
                size,
                frame: f,
                seeds,
                boxes,
                columns,
                legend,
            } => summary(a, size, f, seeds, boxes, columns, legend),
            Chart::Path {
                size,
                frame: f,
                steps,
            } => path(a, size, f, steps),
        }
    }

    /// The chart as SVG text.
    ///
    /// # Errors
    /// A drawing failure.
    pub fn svg(&self) -> Result<String, ReportError> {
        register_font();
        let (w, h) = self.size();
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, (n32(w), n32(h))).into_drawing_area();
            self.draw(&root).map_err(|e| ReportError::Draw {
                what: "SVG".into(),
                why: format!("{e:?}"),
            })?;
            root.present().map_err(|e| ReportError::Draw {
                what: "SVG".into(),
                why: format!("{e:?}"),
            })?;
        }
        s.push('\n');
        Ok(s)
    }

    /// The chart as PNG bytes, drawn through a temporary file in `dir`.
    ///
    /// # Errors
    /// A drawing or file failure.
    pub fn png(&self, dir: &std::path::Path) -> Result<Vec<u8>, ReportError> {
        register_font();
        let (w, h) = self.size();
        let tmp = dir.join(format!(".tmp-{}.png", std::process::id()));
        let r = (|| {
            let root = BitMapBackend::new(&tmp, (n32(w), n32(h))).into_drawing_area();
            self.draw(&root).map_err(|e| ReportError::Draw {
                what: "PNG".into(),
                why: format!("{e:?}"),
            })?;
            root.present().map_err(|e| ReportError::Draw {
                what: format!("PNG into {}", tmp.display()),
                why: format!("{e:?}"),
            })?;
            drop(root);
            std::fs::read(&tmp).map_err(|source| ReportError::Io {
                what: "cannot read",
                path: tmp.clone(),
                source,
            })
        })();
        let _ = std::fs::remove_file(&tmp);
        r
    }
}

#[cfg(test)]
mod palette_tests {
    use super::*;

    #[test]
    fn no_category_is_coloured_as_a_verdict() {
        for c in [
            "illicit_vendor",
            "ransomware",
            "darknet market",
            "sanctioned",
            "scam",
            "exchange",
            "supermarket",
        ] {
            let RGBColor(r, g, b) = colour(c);
            assert!(!(r > 150 && g < 90 && b < 90), "{c} is red");
        }
        assert_eq!(colour("Exchange"), colour("exchange"));
    }
}
