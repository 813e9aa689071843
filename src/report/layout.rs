//! A layered left-to-right layout (Sugiyama et al. 1981): columns from the graph's layers,
//! long edges routed through dummy points, crossings reduced by barycenter sweeps, and edge
//! labels stacked in the gaps between columns so that none overlaps another.

use super::graph::FlowGraph;

pub const BOX_W: i32 = 210;
pub const BOX_H: i32 = 46;
const VGAP: i32 = 16;
const DUMMY_PITCH: i32 = 12;
pub const LABEL_H: i32 = 15;
const MIN_GAP: i32 = 90;
pub const MARGIN: i32 = 30;
pub const HEADER: i32 = 104;
pub const FOOTER: i32 = 44;

/// A box on the canvas (top-left corner, size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

/// How one edge is drawn.
#[derive(Clone, Debug)]
pub struct EdgeDraw {
    pub edge: usize,
    /// Points the curve passes through (box border, dummy points, box border).
    pub points: Vec<(i32, i32)>,
    pub label: String,
    /// The label's box.
    pub label_box: Rect,
    /// Where the label's leader meets the edge.
    pub anchor: (i32, i32),
    pub width: u32,
    /// Goes to an earlier or the same column.
    pub back: bool,
}

/// The layout.
#[derive(Clone, Debug)]
pub struct Layout {
    pub width: i32,
    pub height: i32,
    pub boxes: Vec<Rect>,
    pub edges: Vec<EdgeDraw>,
    pub crossings: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Item {
    Node(usize),
    Dummy(usize, usize),
}

fn pitch(it: Item) -> i32 {
    match it {
        Item::Node(_) => BOX_H + VGAP,
        Item::Dummy(..) => DUMMY_PITCH,
    }
}

/// Crossings between two adjacent layers, given the segments as (upper pos, lower pos).
fn crossings_between(segs: &mut [(usize, usize)]) -> usize {
    segs.sort_unstable();
    let mut c = 0;
    for i in 0..segs.len() {
        for j in i + 1..segs.len() {
            if segs[i].0 != segs[j].0 && segs[j].1 < segs[i].1 {
                c += 1;
            }
        }
    }
    c
}

/// Lays out `fg`; `measure(text, size)` gives a text's width in pixels; `label(e)` gives
/// edge `e`'s label text.
pub fn layout(
    fg: &FlowGraph,
    measure: &dyn Fn(&str, f64) -> i32,
    label: &dyn Fn(usize) -> String,
) -> Layout {
    let layers = fg.nodes.iter().map(|n| n.layer).max().map_or(1, |l| l + 1);
    let mut order: Vec<Vec<Item>> = vec![Vec::new(); layers];
    let mut by_key: Vec<usize> = (0..fg.nodes.len()).collect();
    by_key.sort_by(|&a, &b| {
        (!fg.nodes[a].seed, &fg.nodes[a].key).cmp(&(!fg.nodes[b].seed, &fg.nodes[b].key))
    });
    for i in by_key {
        order[fg.nodes[i].layer].push(Item::Node(i));
    }
    // Segments between adjacent layers, through dummies; each segment (upper, lower).
    let mut segs: Vec<(Item, Item)> = Vec::new();
    for (ei, e) in fg.edges.iter().enumerate() {
        let (la, lb) = (fg.nodes[e.from].layer, fg.nodes[e.to].layer);
        if lb <= la {
            continue;
        }
        let mut prev = Item::Node(e.from);
        for (l, layer) in order.iter_mut().enumerate().take(lb).skip(la + 1) {
            let d = Item::Dummy(ei, l);
            layer.push(d);
            segs.push((prev, d));
            prev = d;
        }
        segs.push((prev, Item::Node(e.to)));
    }
    let layer_of = |it: Item| match it {
        Item::Node(i) => fg.nodes[i].layer,
        Item::Dummy(_, l) => l,
    };
    let pos_map = |order: &[Vec<Item>]| {
        let mut m = std::collections::HashMap::new();
        for layer in order {
            for (p, &it) in layer.iter().enumerate() {
                m.insert(it, p);
            }
        }
        m
    };
    let count = |order: &[Vec<Item>]| {
        let pos = pos_map(order);
        let mut per: Vec<Vec<(usize, usize)>> = vec![Vec::new(); layers];
        for &(a, b) in &segs {
            per[layer_of(a)].push((pos[&a], pos[&b]));
        }
        per.iter_mut().map(|s| crossings_between(s)).sum::<usize>()
    };
    let mut upper: std::collections::HashMap<Item, Vec<Item>> = std::collections::HashMap::new();
    let mut lower: std::collections::HashMap<Item, Vec<Item>> = std::collections::HashMap::new();
    for &(a, b) in &segs {
        upper.entry(b).or_default().push(a);
        lower.entry(a).or_default().push(b);
    }
    let neighbours = |it: Item, down: bool| -> &[Item] {
        let m = if down { &upper } else { &lower };
        m.get(&it).map_or(&[], Vec::as_slice)
    };
    let mut best = order.clone();
    let mut best_c = count(&order);
    for iter in 0..24 {
        if best_c == 0 {
            break;
        }
        let pos = pos_map(&order);
        let down = iter % 2 == 0;
        let range: Vec<usize> = if down {
            (1..layers).collect()
        } else {
            (0..layers.saturating_sub(1)).rev().collect()
        };
        let mut pos = pos;
        for l in range {
            let mut bary: Vec<(f64, usize, Item)> = order[l]
                .iter()
                .enumerate()
                .map(|(p, &it)| {
                    let nb: Vec<usize> = neighbours(it, down).iter().map(|x| pos[x]).collect();
                    let v = if nb.is_empty() {
                        p as f64
                    } else {
                        nb.iter().sum::<usize>() as f64 / nb.len() as f64
                    };
                    (v, p, it)
                })
                .collect();
            bary.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            order[l] = bary.into_iter().map(|b| b.2).collect();
            for (p, &it) in order[l].iter().enumerate() {
                pos.insert(it, p);
            }
        }
        let c = count(&order);
        if c < best_c {
            best_c = c;
            best = order.clone();
        }
    }
    let order = best;
    // Edge labels sit in the gap after the source column.
    let gap_of = |ei: usize| {
        let l = fg.nodes[fg.edges[ei].from].layer;
        l.min(layers.saturating_sub(2))
    };
    let labels: Vec<String> = (0..fg.edges.len()).map(label).collect();
    let label_w: Vec<i32> = labels.iter().map(|t| measure(t, 11.0) + 8).collect();
    let mut gap_w = vec![MIN_GAP; layers.saturating_sub(1).max(1)];
    let mut gap_n = vec![0i32; gap_w.len()];
    for (ei, w) in label_w.iter().enumerate() {
        let g = gap_of(ei);
        gap_w[g] = gap_w[g].max(w + 40);
        gap_n[g] += 1;
    }
    let mut col_x = vec![MARGIN; layers];
    for l in 1..layers {
        col_x[l] = col_x[l - 1] + BOX_W + gap_w[l - 1];
    }
    let stack = |l: &Vec<Item>| l.iter().map(|&it| pitch(it)).sum::<i32>();
    let plot_h = order
        .iter()
        .map(stack)
        .chain(gap_n.iter().map(|n| n * LABEL_H))
        .max()
        .unwrap_or(0)
        .max(BOX_H)
        + 2 * VGAP;
    let top = HEADER;
    let bottom = top + plot_h;
    // y of each item's centre: stacked and centred, then pulled towards its neighbours.
    let mut y: std::collections::HashMap<Item, i32> = std::collections::HashMap::new();
    for l in &order {
        let mut at = top + (plot_h - stack(l)) / 2;
        for &it in l {
            y.insert(it, at + pitch(it) / 2);
            at += pitch(it);
        }
    }
    for round in 0..6 {
        let down = round % 2 == 0;
        for l in &order {
            let want: Vec<i32> = l
                .iter()
                .map(|&it| {
                    let nb: Vec<i32> = neighbours(it, down).iter().map(|x| y[x]).collect();
                    if nb.is_empty() {
                        y[&it]
                    } else {
                        nb.iter().sum::<i32>() / nb.len() as i32
                    }
                })
                .collect();
            let placed = pack(
                &want,
                &l.iter().map(|&it| pitch(it)).collect::<Vec<_>>(),
                top + VGAP / 2,
                bottom - VGAP / 2,
            );
            for (&it, p) in l.iter().zip(placed) {
                y.insert(it, p);
            }
        }
    }
    let boxes: Vec<Rect> = fg
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Rect {
            x: col_x[n.layer],
            y: y[&Item::Node(i)] - BOX_H / 2,
            w: BOX_W,
            h: BOX_H,
        })
        .collect();
    let max_amount = fg.edges.iter().map(|e| e.amount).max().unwrap_or(1).max(1);
    let mut edges: Vec<EdgeDraw> = Vec::new();
    for (ei, e) in fg.edges.iter().enumerate() {
        let (a, b) = (&boxes[e.from], &boxes[e.to]);
        let (la, lb) = (fg.nodes[e.from].layer, fg.nodes[e.to].layer);
        let mut points = vec![(a.x + a.w, a.y + a.h / 2)];
        for l in la + 1..lb {
            let dy = y[&Item::Dummy(ei, l)];
            points.push((col_x[l], dy));
            points.push((col_x[l] + BOX_W, dy));
        }
        points.push((b.x, b.y + b.h / 2));
        let g = gap_of(ei);
        let gx = col_x[g] + BOX_W + gap_w[g] / 2;
        let (p0, p1) = (points[0], points[1]);
        // Where the edge crosses the middle of the gap (back edges: at their start).
        let anchor_y = if p1.0 <= p0.0 {
            p0.1
        } else {
            let y =
                p0.1 + ((p1.1 - p0.1) as i64 * (gx - p0.0) as i64 / (p1.0 - p0.0) as i64) as i32;
            y.clamp(p0.1.min(p1.1), p0.1.max(p1.1))
        };
        let frac = (e.amount as f64 / max_amount as f64).sqrt();
        edges.push(EdgeDraw {
            edge: ei,
            points,
            label: labels[ei].clone(),
            label_box: Rect {
                x: gx - label_w[ei] / 2,
                y: anchor_y - LABEL_H / 2,
                w: label_w[ei],
                h: LABEL_H - 1,
            },
            anchor: (gx, anchor_y),
            width: 1 + (frac * 9.0).round() as u32,
            back: lb <= la,
        });
    }
    // Stack the labels of each gap apart.
    for g in 0..gap_w.len() {
        let mut idx: Vec<usize> = (0..edges.len())
            .filter(|&i| gap_of(edges[i].edge) == g)
            .collect();
        idx.sort_by_key(|&i| (edges[i].anchor.1, edges[i].edge));
        let want: Vec<i32> = idx.iter().map(|&i| edges[i].anchor.1).collect();
        let placed = pack(&want, &vec![LABEL_H; want.len()], top, bottom);
        for (&i, yc) in idx.iter().zip(placed) {
            edges[i].label_box.y = yc - LABEL_H / 2;
        }
    }
    // Trim the empty band above and below the drawing.
    let ys = boxes
        .iter()
        .flat_map(|b| [b.y, b.y + b.h])
        .chain(edges.iter().flat_map(|e| {
            e.points
                .iter()
                .map(|p| p.1)
                .chain([e.label_box.y, e.label_box.y + e.label_box.h])
        }));
    let (min_y, max_y) = ys.fold((i32::MAX, i32::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let shift = if min_y == i32::MAX {
        0
    } else {
        min_y - (top + VGAP / 2)
    };
    let bottom = if min_y == i32::MAX {
        bottom
    } else {
        max_y - shift + VGAP
    };
    let mut boxes = boxes;
    for b in &mut boxes {
        b.y -= shift;
    }
    for e in &mut edges {
        for p in &mut e.points {
            p.1 -= shift;
        }
        e.label_box.y -= shift;
        e.anchor.1 -= shift;
    }
    let width = col_x[layers - 1] + BOX_W + MARGIN;
    Layout {
        width: width.max(900),
        height: bottom + FOOTER,
        boxes,
        edges,
        crossings: best_c,
    }
}

/// Places items of the given pitches in order as close as possible to their wanted
/// centres, without overlap, inside `[lo, hi]` (centres returned).
fn pack(want: &[i32], pitches: &[i32], lo: i32, hi: i32) -> Vec<i32> {
    let n = want.len();
    let mut c = vec![0i32; n];
    let mut at = lo;
    for i in 0..n {
        let min_c = at + pitches[i] / 2;
        c[i] = want[i].max(min_c);
        at = c[i] - pitches[i] / 2 + pitches[i];
    }
    // Push back up from the bottom.
    let mut limit = hi;
    for i in (0..n).rev() {
        let max_c = limit - (pitches[i] - pitches[i] / 2);
        if c[i] > max_c {
            c[i] = max_c;
        }
        limit = c[i] - pitches[i] / 2;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::graph::{Edge, Node};

    fn overlap(a: &Rect, b: &Rect) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    /// 200 nodes in 9 columns with 400 edges (some long, some backwards): no box overlaps
    /// another, no label overlaps a label or a box, everything stays inside the canvas.
    #[test]
    fn two_hundred_nodes_stay_legible() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % crate::types::n64(n)) as usize
        };
        let nodes: Vec<Node> = (0..200)
            .map(|i| Node {
                key: format!("n{i:03}"),
                title: format!("n{i:03}"),
                detail: String::new(),
                category: "unlabelled".into(),
                members: vec![format!("n{i:03}")],
                seed: i == 0,
                received: 0,
                sent: 0,
                layer: if i == 0 { 0 } else { 1 + i % 8 },
                first_time: 0,
            })
            .collect();
        let mut edges = Vec::new();
        for _ in 0..400 {
            let (a, b) = (rnd(200), rnd(200));
            if a != b {
                edges.push(Edge {
                    from: a,
                    to: b,
                    amount: 1 + rnd(1000) as u128,
                    first_time: 0,
                    last_time: 0,
                    transfers: 1,
                });
            }
        }
        let fg = FlowGraph {
            nodes,
            edges,
            ..FlowGraph::default()
        };
        let measure = |t: &str, size: f64| (t.chars().count() as f64 * size * 0.6) as i32;
        let l = layout(&fg, &measure, &|e| {
            format!("{} BTC · 2026-01-01", fg.edges[e].amount)
        });
        assert_eq!(l.boxes.len(), 200);
        for i in 0..l.boxes.len() {
            for j in i + 1..l.boxes.len() {
                assert!(
                    !overlap(&l.boxes[i], &l.boxes[j]),
                    "boxes {i} and {j} overlap"
                );
            }
        }
        for (i, a) in l.edges.iter().enumerate() {
            assert!(a.label_box.y >= HEADER && a.label_box.y + a.label_box.h <= l.height - FOOTER);
            for b in &l.edges[i + 1..] {
                assert!(
                    !overlap(&a.label_box, &b.label_box),
                    "labels {:?} and {:?} overlap",
                    a.label,
                    b.label
                );
            }
            for bx in &l.boxes {
                assert!(
                    !overlap(&a.label_box, bx),
                    "label {:?} covers a box",
                    a.label
                );
            }
        }
        for b in &l.boxes {
            assert!(b.y >= HEADER && b.y + b.h <= l.height - FOOTER && b.x + b.w <= l.width);
        }
    }

    #[test]
    fn packing_never_overlaps_and_stays_inside() {
        let want = [50, 50, 52, 300, 299, 1000];
        let p = [10, 20, 10, 10, 10, 10];
        let c = pack(&want, &p, 0, 400);
        for i in 1..c.len() {
            assert!(
                c[i] - p[i] / 2 >= c[i - 1] - p[i - 1] / 2 + p[i - 1],
                "{c:?}"
            );
        }
        assert!(c[5] + 5 <= 400);
        assert!(c[0] - 5 >= 0);
        assert_eq!(pack(&[100], &[10], 0, 400), vec![100]);
    }
}
