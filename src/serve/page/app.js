// chaintrace canvas: a page over the JSON API of `chaintrace serve` (docs/API.md).
// No library: the graph is SVG drawn here, with the report's box size, palette and
// left-to-right layering; a trace is drawn from the report's own layout, computed by the
// server. Amounts arrive as integers (sat) and are shown with the text the API gives.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const BOX_W = 210, BOX_H = 46, COL_GAP = 150, ROW_GAP = 16;

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const state = {
  info: null,
  // The explore graph: address → {address, label, cluster, layer, row}; edges keyed from→to.
  nodes: new Map(),
  edges: new Map(),
  selected: null,        // {kind: "node"|"edge", key}
  view: "explore",       // or a model name of the last trace
  trace: null,           // the last /api/trace answer
  traceQuery: null,
  annotations: { nodes: {}, edges: {} },
  zoom: 1, panX: 0, panY: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") e.addEventListener("click", v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function say(text, error) {
  const m = $("message");
  m.textContent = text;
  m.className = error ? "error" : "";
  m.hidden = !text;
}

async function api(path, body) {
  const opts = { headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/api/" + path, opts);
  const v = await r.json().catch(() => ({ error: { message: "the server answered " + r.status, hint: "" } }));
  if (!r.ok || v.error) {
    const e = v.error || {};
    throw new Error((e.message || "error " + r.status) + (e.hint ? " — " + e.hint : ""));
  }
  return v;
}

// An integer amount of base units (sat, wei) as text in the dataset's unit, exact.
function btc(units) {
  const d = state.info ? state.info.decimals : 8;
  const unit = state.info ? state.info.unit : "BTC";
  const s = BigInt(units), p = 10n ** BigInt(d);
  let frac = (s % p).toString().padStart(d, "0");
  if (d > 8) frac = frac.replace(/0+$/, "") || "0";
  return (s / p).toString() + "." + frac + " " + unit;
}

function baseUnit() {
  return state.info && state.info.unit === "ETH" ? "wei" : "sat";
}

function date(t) {
  return t ? new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") : "";
}

function colour(category) {
  const p = state.info && state.info.palette;
  return (p && p[category]) || (p && p.unlabelled) || "#607d8b";
}

// Mixes a colour with white, keeping `keep` of it (the report's tint).
function tint(hex, keep) {
  const n = parseInt(hex.slice(1), 16);
  const m = (v) => Math.round(v * keep + 255 * (1 - keep));
  return `rgb(${m(n >> 16)},${m((n >> 8) & 255)},${m(n & 255)})`;
}

function short(a) {
  return a.length <= 16 ? a : a.slice(0, 8) + "…" + a.slice(-6);
}

function link(text, fn) {
  return el("a", { onclick: (ev) => { ev.preventDefault(); fn(); } }, text);
}

// ---------------------------------------------------------------- panel pages

function tagChip(category) {
  const c = el("span", { class: "tag" }, category);
  c.style.background = colour(category);
  return c;
}

async function showAddress(address, offset) {
  say("");
  let v;
  try { v = await api("address/" + encodeURIComponent(address) + "?limit=25&offset=" + (offset || 0)); }
  catch (e) { say(e.message, true); return; }
  const p = $("panel");
  p.replaceChildren();
  p.append(el("h2", {}, "Address"), el("div", { class: "mono", id: "page-address" }, v.address));
  p.append(el("div", {},
    el("button", { id: "add-node", type: "button", onclick: () => addNode(v.address, 0, true) }, "Put on canvas"), " ",
    el("button", { id: "expand-forward", type: "button", onclick: () => expand(v.address, "forward") }, "Expand →"), " ",
    el("button", { id: "expand-backward", type: "button", onclick: () => expand(v.address, "backward") }, "← Expand"), " ",
    el("button", { id: "trace-from", type: "button", onclick: () => { $("trace-seeds").value = v.address; } }, "Trace from here")));
  const rows = [
    ["Received", v.received.text, "received"],
    ["Sent", v.sent.text, "sent"],
    [v.balance_is ? "Net change" : "Balance", v.balance.text, "balance"],
    [v.unspent_outputs == null ? "Transfers" : "Outputs", v.unspent_outputs == null ? v.outputs : `${v.outputs} (${v.unspent_outputs} unspent)`, "outputs"],
    ["Transactions", v.transactions, "transactions"],
    ["First seen", v.first_seen ? `${date(v.first_seen.time)} (height ${v.first_seen.height})` : "-", "first"],
    ["Last seen", v.last_seen ? `${date(v.last_seen.time)} (height ${v.last_seen.height})` : "-", "last"],
  ];
  p.append(el("table", {}, ...rows.map(([k, val, id]) => el("tr", {}, el("th", {}, k), el("td", { class: "num", id: "addr-" + id }, val)))));
  if (v.balance_is) p.append(el("p", { class: "muted" }, "Net change: " + v.balance_is + "."));
  p.append(el("h3", {}, "Tags"));
  if (!v.tags.length) p.append(el("p", { class: "muted" }, "No tag on this address."));
  for (const t of v.tags) {
    p.append(el("div", {}, tagChip(t.category), " ", t.entity, t.label && t.label !== t.entity ? ` (${t.label})` : "",
      el("div", { class: "muted" }, `source ${t.source} · confidence ${t.confidence || "-"}${t.is_public ? "" : " · private"}${t.lastmod ? " · checked " + t.lastmod : ""}`)));
  }
  p.append(el("h3", {}, "Cluster"));
  if (!v.cluster) {
    p.append(el("p", { class: "muted" }, "The dataset is not clustered (run chaintrace cluster bitcoin)."));
  } else {
    const c = v.cluster;
    p.append(el("table", {},
      el("tr", {}, el("th", {}, "Cluster"), el("td", { id: "cluster-id" }, `${c.stats.cluster_id} (${short(c.representative)})`)),
      el("tr", {}, el("th", {}, "Addresses"), el("td", { class: "num", id: "cluster-size" }, c.stats.size)),
      ...(c.stats.total_received == null ? [] : [
        el("tr", {}, el("th", {}, "Received"), el("td", { class: "num" }, btc(c.stats.total_received))),
        el("tr", {}, el("th", {}, "Balance"), el("td", { class: "num" }, btc(c.stats.balance)))])));
    const why = Object.entries(c.merges_by_rule || {}).map(([h, n]) => `${h} ${n}`).join(", ");
    p.append(el("div", { id: "cluster-why" }, "Why merged: ", why || "a single address (no merge)"));
    if (c.weakest_link) {
      const w = c.weakest_link;
      const prec = w.precision_ppm == null ? "precision not measured" : `merge precision ${(w.precision_ppm / 1e6).toFixed(4)}, ${w.rate}`;
      p.append(el("div", { class: "muted" }, `Weakest link: ${w.heuristic} [${w.because}] (${prec}) in tx `, link(short(w.txid), () => showTx(w.txid))));
    }
    if ((c.labels || []).length) p.append(el("h3", {}, `Labels in this cluster (${c.labels.length})`));
    for (const l of c.labels || []) p.append(el("div", {}, tagChip(l.category), " ", l.entity, " on ", link(short(l.address), () => showAddress(l.address))));
    const actors = new Set((c.labels || []).map((l) => l.entity).filter(Boolean));
    if (actors.size > 1) p.append(el("div", { class: "muted" }, `Warning: this cluster holds ${actors.size} labelled actors; a merge may be wrong.`));
  }
  p.append(el("h3", {}, `Transactions (${v.page.offset + 1}–${Math.min(v.page.offset + v.page.limit, v.page.total)} of ${v.page.total})`));
  p.append(el("table", { id: "addr-txs" },
    el("tr", {}, el("th", {}, "Time"), el("th", {}, "Transaction"), el("th", { class: "num" }, `In (${baseUnit()})`), el("th", { class: "num" }, `Out (${baseUnit()})`)),
    ...v.txs.map((t) => el("tr", {}, el("td", {}, date(t.time)), el("td", { class: "mono" }, link(short(t.txid), () => showTx(t.txid))),
      el("td", { class: "num" }, t.received), el("td", { class: "num" }, t.sent)))));
  const nav = el("div", {});
  if (v.page.offset > 0) nav.append(el("button", { type: "button", onclick: () => showAddress(v.address, Math.max(0, v.page.offset - v.page.limit)) }, "← newer pages"), " ");
  if (v.page.offset + v.page.limit < v.page.total) nav.append(el("button", { id: "next-page", type: "button", onclick: () => showAddress(v.address, v.page.offset + v.page.limit) }, "more →"));
  p.append(nav);
}

async function showTx(txid) {
  say("");
  let v;
  try { v = await api("tx/" + encodeURIComponent(txid)); } catch (e) { say(e.message, true); return; }
  const p = $("panel");
  p.replaceChildren(el("h2", {}, "Transaction"), el("div", { class: "mono" }, v.txid),
    el("p", {}, `height ${v.height} · ${date(v.time)}${v.fee != null ? " · fee " + v.fee + " " + baseUnit() : " · coinbase"}`));
  if (v.transfers) {
    const who = (a, l) => el("span", {}, a === "fee" || a === "unknown" ? a : link(short(a), () => showAddress(a)), l ? el("div", {}, tagChip(l.category), " ", l.entity) : "");
    p.append(el("h3", {}, "Transfers"), el("table", {}, el("tr", {}, el("th", {}, "From"), el("th", {}, "To"), el("th", { class: "num" }, "wei")),
      ...v.transfers.map((t) => el("tr", {}, el("td", { class: "mono" }, who(t.from, t.from_label)), el("td", { class: "mono" }, who(t.to, t.to_label)), el("td", { class: "num" }, t.value)))));
    return;
  }
  const side = (title, items, isIn) => {
    p.append(el("h3", {}, title));
    p.append(el("table", {}, ...items.map((x) => el("tr", {},
      el("td", { class: "mono" }, x.coinbase ? "coinbase" : x.address ? link(short(x.address), () => showAddress(x.address)) : "(no address)",
        x.label ? el("div", {}, tagChip(x.label.category), " ", x.label.entity) : ""),
      el("td", { class: "num" }, x.value != null ? x.value + " sat" : ""),
      el("td", { class: "mono" }, isIn ? "" : x.spent_by ? link("spent →", () => showTx(x.spent_by)) : "unspent")))));
  };
  side("Inputs", v.inputs, true);
  side("Outputs", v.outputs, false);
}

function showEdge(key) {
  const p = $("panel");
  p.replaceChildren();
  let txs = [];
  let title = "";
  if (state.view === "explore") {
    const e = state.edges.get(key);
    if (!e) return;
    title = `${short(e.from)} → ${short(e.to)}: ${btc(e.amount)}`;
    txs = e.txids.map((t) => ({ txid: t }));
    p.append(el("table", { id: "edge-txs" }, el("tr", {}, el("th", {}, "Transaction")),
      ...txs.map((t) => el("tr", {}, el("td", { class: "mono" }, link(short(t.txid), () => showTx(t.txid)))))));
    if (e.shared) p.append(el("p", { class: "muted" }, "Some of these transactions had other funders too: the amount is what the outputs paid, not all of it this address's. Run a trace for the exact share."));
  } else {
    const m = currentModel();
    const e = m && m.graph.edges.find((x) => x.from + "→" + x.to === key);
    if (!e) return;
    title = `${m.graph.nodes[e.from].title} → ${m.graph.nodes[e.to].title}: ${e.amount_text}`;
    txs = e.transfers;
  }
  p.prepend(el("h2", {}, "Transfers"), el("p", { id: "edge-title" }, title));
  if (state.view !== "explore") p.append(el("table", { id: "edge-txs" },
    el("tr", {}, el("th", {}, "Transaction"), el("th", { class: "num" }, `Amount (${baseUnit()})`), el("th", {}, "Hop")),
    ...txs.map((t) => el("tr", {}, el("td", { class: "mono" }, link(short(t.txid) + (t.vout != null ? ":" + t.vout : ""), () => showTx(t.txid))),
      el("td", { class: "num" }, t.amount || ""), el("td", {}, t.hop != null ? t.hop : "")))));
  annotationBox("edges", key);
}

function annotationBox(kind, key) {
  const p = $("panel");
  p.append(el("h3", {}, "Note"));
  const ta = el("textarea", { class: "note", id: "note", rows: 3, placeholder: "Your note on this " + (kind === "nodes" ? "node" : "edge") + "; saved with the case" });
  ta.value = state.annotations[kind][key] || "";
  ta.addEventListener("input", () => {
    if (ta.value) state.annotations[kind][key] = ta.value;
    else delete state.annotations[kind][key];
    draw();
  });
  p.append(ta);
}

// ---------------------------------------------------------------- explore graph

function addNode(address, layer, select) {
  if (!state.nodes.has(address)) {
    const row = [...state.nodes.values()].filter((n) => n.layer === layer).length;
    state.nodes.set(address, { address, layer, row, label: null, cluster: null });
  }
  state.view = "explore";
  if (select) state.selected = { kind: "node", key: address };
  draw();
  if (select) fit();
}

async function expand(address, direction) {
  say("");
  let v;
  try { v = await api(`expand?address=${encodeURIComponent(address)}&direction=${direction}&limit=100`); }
  catch (e) { say(e.message, true); return; }
  const from = state.nodes.get(v.address) || { layer: 0 };
  if (!state.nodes.has(v.address)) addNode(v.address, 0, false);
  const layer = from.layer + (direction === "forward" ? 1 : -1);
  for (const n of v.nodes) {
    if (!state.nodes.has(n.address)) addNode(n.address, layer, false);
    const node = state.nodes.get(n.address);
    node.label = n.label;
    node.cluster = n.cluster;
  }
  for (const e of v.edges) {
    const key = e.from + "→" + e.to;
    const old = state.edges.get(key);
    if (old) {
      for (const t of e.txids) if (!old.txids.includes(t)) { old.txids.push(t); }
      old.amount = String(BigInt(old.amount) < BigInt(e.amount) ? e.amount : old.amount);
    } else {
      state.edges.set(key, { from: e.from, to: e.to, amount: String(e.amount), txids: e.txids.slice(), shared: e.shared });
    }
  }
  if (v.truncated) say(`${v.address}: ${v.transactions} transactions, the first ${v.read} read (expand shows at most ${state.info.limits.expand}); run a trace to follow all of them.`);
  else if (!v.edges.length) say(`${short(v.address)}: nothing ${direction === "forward" ? "spent onward" : "paid it"} in this dataset.`);
  state.view = "explore";
  draw();
  fit();
}

function exploreLayout() {
  // Columns by layer, rows in the order nodes arrived; leftmost layer at x = 30.
  const layers = [...state.nodes.values()].map((n) => n.layer);
  const min = Math.min(0, ...layers);
  const pos = new Map();
  for (const n of state.nodes.values()) {
    pos.set(n.address, { x: 30 + (n.layer - min) * (BOX_W + COL_GAP), y: 40 + n.row * (BOX_H + ROW_GAP) });
  }
  return pos;
}

function currentModel() {
  return state.trace && state.trace.models.find((m) => m.policy === state.view);
}

// ---------------------------------------------------------------- drawing

function boxGroup(key, x, y, w, h, category, title, line2, line3, selected, noted) {
  const c = colour(category);
  const g = svg("g", { class: "node", "data-key": key, transform: `translate(${x},${y})`, cursor: "pointer" },
    svg("rect", { width: w, height: h, fill: tint(c, 0.12), stroke: selected ? "#212121" : c, "stroke-width": selected ? 3 : 2 }),
    svg("rect", { width: 6, height: h, fill: c }),
    svg("text", { x: 11, y: 16, "font-size": 13, fill: "#212121" }, title),
    svg("text", { x: 11, y: 30, "font-size": 11, fill: "#37474f" }, line2),
    svg("text", { x: 11, y: h - 6, "font-size": 10, fill: "#616161" }, line3));
  if (noted) g.append(svg("text", { x: w - 16, y: 16, "font-size": 13, fill: "#37474f" }, "✎"));
  g.addEventListener("click", (ev) => { ev.stopPropagation(); selectNode(key); });
  g.addEventListener("dblclick", (ev) => { ev.stopPropagation(); if (state.view === "explore") expand(key, "forward"); });
  return g;
}

function curvePath(pts) {
  let d = `M${pts[0][0]},${pts[0][1]}`;
  for (let i = 1; i < pts.length; i++) {
    const [ax, ay] = pts[i - 1], [bx, by] = pts[i];
    if (ay === by) d += ` L${bx},${by}`;
    else { const mx = (ax + bx) / 2; d += ` C${mx},${ay} ${mx},${by} ${bx},${by}`; }
  }
  return d;
}

function edgeGroup(key, pts, colourHex, width, label, labelBox, dashed, selected, noted) {
  const g = svg("g", { class: "edge", "data-key": key, cursor: "pointer" });
  g.append(svg("path", { d: curvePath(pts), fill: "none", stroke: colourHex, "stroke-opacity": selected ? 0.9 : 0.45, "stroke-width": Math.max(1, width), "stroke-dasharray": dashed ? "6 4" : null }));
  g.append(svg("path", { d: curvePath(pts), fill: "none", stroke: "transparent", "stroke-width": Math.max(10, width) }));
  const [tx, ty] = pts[pts.length - 1];
  const s = 4 + Math.floor(width / 2);
  g.append(svg("polygon", { points: `${tx},${ty} ${tx - 2 * s},${ty - s} ${tx - 2 * s},${ty + s}`, fill: colourHex, "fill-opacity": 0.8 }));
  const [bx, by, bw, bh] = labelBox;
  g.append(svg("rect", { x: bx, y: by, width: bw, height: bh, fill: "#ffffff", "fill-opacity": 0.92, stroke: selected ? "#212121" : "#e0e0e0" }));
  g.append(svg("text", { x: bx + bw / 2, y: by + bh / 2 + 4, "font-size": 11, "text-anchor": "middle", fill: "#212121", class: "edge-label" }, label + (noted ? " ✎" : "")));
  g.addEventListener("click", (ev) => { ev.stopPropagation(); state.selected = { kind: "edge", key }; draw(); showEdge(key); });
  return g;
}

function draw() {
  const host = $("canvas");
  const root = svg("svg", { xmlns: SVGNS, id: "graph", "font-family": "DejaVu Sans, sans-serif" });
  const world = svg("g", { id: "world", transform: `translate(${state.panX},${state.panY}) scale(${state.zoom})` });
  root.append(svg("rect", { x: -1e5, y: -1e5, width: 2e5, height: 2e5, fill: "#ffffff" }), world);
  const sel = state.selected || {};
  $("view-explore").className = state.view === "explore" ? "on" : "";
  for (const b of $("model-tabs").children) b.className = b.dataset.policy === state.view ? "on" : "";
  if (state.view === "explore") {
    const pos = exploreLayout();
    for (const [key, e] of state.edges) {
      const a = pos.get(e.from), b = pos.get(e.to);
      if (!a || !b) continue;
      const back = b.x <= a.x;
      const p0 = [a.x + BOX_W, a.y + BOX_H / 2], p1 = [b.x, b.y + BOX_H / 2];
      // A transaction with other funders: its outputs' value, not all this address's.
      const text = (e.shared ? "shared tx, ≤ " : "") + btc(e.amount) + (e.txids.length > 1 ? ` · ${e.txids.length} tx` : "");
      const w = text.length * 6.2 + 10;
      const mx = (p0[0] + p1[0]) / 2, my = (p0[1] + p1[1]) / 2;
      const n = state.nodes.get(e.from);
      const cat = n && n.label ? n.label.category : "unlabelled";
      const whole = Number(BigInt(e.amount) / 10n ** BigInt(Math.max(0, state.info.decimals - 2))) / 100;
      world.append(edgeGroup(key, [p0, p1], colour(cat), Math.min(12, 1 + Math.sqrt(whole)), text,
        [mx - w / 2, my - 8, w, 15], back || e.shared, sel.kind === "edge" && sel.key === key, key in state.annotations.edges));
    }
    for (const n of state.nodes.values()) {
      const p = pos.get(n.address);
      const cat = n.label ? n.label.category : "unlabelled";
      const title = n.label ? n.label.entity : short(n.address);
      world.append(boxGroup(n.address, p.x, p.y, BOX_W, BOX_H, cat, title, n.label ? short(n.address) : "",
        n.cluster != null ? `${cat} · cluster ${n.cluster}` : cat, sel.kind === "node" && sel.key === n.address, n.address in state.annotations.nodes));
    }
  } else {
    const m = currentModel();
    const g = m.graph;
    g.columns.forEach((name, layer) => {
      const xs = g.nodes.filter((n) => n.layer === layer).map((n) => n.box[0]);
      if (xs.length) world.append(svg("text", { x: Math.min(...xs), y: 92, "font-size": 12, fill: "#37474f" }, name));
    });
    for (const e of g.edges) {
      const key = e.from + "→" + e.to;
      world.append(edgeGroup(key, e.points, e.colour, e.width, e.label, e.label_box, e.back, sel.kind === "edge" && sel.key === key, key in state.annotations.edges));
    }
    const unit = state.trace.unit;
    for (const n of g.nodes) {
      const [x, y, w, h] = n.box;
      const held = n.seed ? n.sent : n.received;
      const line2 = `${n.seed ? "sent" : "received"} ${amountText(held)} ${unit}`;
      world.append(boxGroup(n.key, x, y, w, h, n.category, n.title, line2, n.detail ? `${n.category} · ${n.detail}` : n.category,
        sel.kind === "node" && sel.key === n.key, n.key in state.annotations.nodes));
    }
  }
  root.addEventListener("click", () => { state.selected = null; draw(); });
  host.replaceChildren(root);
}

function amountText(units) {
  const d = state.trace ? state.trace.decimals : 8;
  const s = BigInt(units);
  const p = 10n ** BigInt(d);
  return d ? (s / p).toString() + "." + (s % p).toString().padStart(d, "0") : s.toString();
}

function selectNode(key) {
  state.selected = { kind: "node", key };
  draw();
  if (state.view === "explore") {
    showAddress(key).then(() => annotationBox("nodes", key));
  } else {
    const m = currentModel();
    const n = m.graph.nodes.find((x) => x.key === key);
    if (n && n.members.length === 1 && !n.members[0].startsWith("cluster")) {
      showAddress(n.members[0]).then(() => annotationBox("nodes", key));
    } else if (n) {
      const p = $("panel");
      p.replaceChildren(el("h2", {}, n.title), el("p", {}, `${n.category}${n.detail ? " · " + n.detail : ""}`),
        el("h3", {}, "Members"), ...n.members.map((a) => el("div", { class: "mono" }, link(a, () => showAddress(a)))));
      annotationBox("nodes", key);
    }
  }
}

function fit() {
  const g = $("world");
  const host = $("canvas");
  if (!g || !host.clientWidth) return;
  state.zoom = 1; state.panX = 0; state.panY = 0;
  draw();
  const b = $("world").getBBox();
  if (!b.width) return;
  // Fit, but not so small that the text is unreadable: then pan (drag, arrows).
  state.zoom = Math.max(0.02, Math.min(1.5, (host.clientWidth - 20) / b.width, (host.clientHeight - 20) / b.height));
  state.panX = 10 - b.x * state.zoom;
  state.panY = 10 - b.y * state.zoom;
  draw();
}

// ---------------------------------------------------------------- trace

function traceQuery() {
  const seeds = $("trace-seeds").value.split(/\s+/).filter(Boolean);
  const q = { seeds, policy: [$("trace-policy").value], max_hops: Number($("trace-hops").value) || 20,
    direction: $("trace-direction").value, level: $("trace-level").value };
  const token = $("trace-token").value.trim();
  if (token && state.info.chain === "ethereum") q.token = token;
  const min = $("trace-min").value.trim();
  if (min) q.min_value = min;
  const stop = $("trace-stop").value.trim();
  if (stop) q.stop_at = stop.split(",").map((s) => s.trim()).filter(Boolean);
  return q;
}

async function runTrace() {
  const q = traceQuery();
  if (!q.seeds.length) { say("Give at least one seed (or select a node and press “Use selected node”).", true); return; }
  say("Tracing…");
  $("trace-run").disabled = true;
  try {
    const v = await api("trace", q);
    state.trace = v;
    state.traceQuery = q;
    state.view = v.models[0].policy;
    state.selected = null;
    say("");
    showTraceResult();
    draw();
    fit();
  } catch (e) {
    // The old answer is not this question's: take it off the screen.
    state.trace = null; state.traceQuery = null; state.view = "explore"; state.selected = null;
    $("model-tabs").replaceChildren(); $("spread").replaceChildren();
    $("trace-result").replaceChildren(el("p", { class: "muted" }, "No answer: the trace was refused (see the message above)."));
    draw();
    say(e.message, true);
  }
  finally { $("trace-run").disabled = false; }
}

function showTraceResult() {
  const v = state.trace;
  const tabs = $("model-tabs");
  tabs.replaceChildren(...v.models.map((m) => {
    const b = el("button", { type: "button", role: "tab", "data-policy": m.policy }, m.policy);
    b.addEventListener("click", () => { state.view = m.policy; state.selected = null; showTraceResult(); draw(); fit(); });
    return b;
  }));
  const m = currentModel() || v.models[0];
  const r = $("trace-result");
  r.replaceChildren(el("h3", {}, `Answer (${m.policy})`), el("p", { class: "headline", id: "headline" }, m.headline));
  r.append(el("h3", {}, "Exits by entity"));
  if (!m.exits.length) r.append(el("p", { class: "muted" }, "No labelled exit reached."));
  for (const x of m.exits) {
    r.append(el("div", { class: "exit" }, tagChip(x.category), " ", el("strong", {}, x.entity), " ", el("span", { class: "exit-amount" }, x.amount_text)));
    for (const d of x.deposit_addresses) r.append(el("div", { class: "mono" }, "deposit ", link(short(d.address), () => showAddress(d.address)), " ", el("span", { class: "nowrap" }, btc(d.amount)), ` in ${d.payments} payment${d.payments === 1 ? "" : "s"}`));
  }
  // The spread between models: each entity's exposure under each model.
  const policies = v.models.map((x) => x.policy);
  const sp = $("spread");
  sp.replaceChildren();
  const entities = Object.keys(v.spread);
  if (entities.length && policies.length > 1) {
    sp.append(el("table", { id: "spread-table" },
      el("tr", {}, el("th", {}, "Exposure (sat)"), ...policies.map((p) => el("th", { class: "num" }, p))),
      ...entities.map((e) => el("tr", {}, el("td", {}, e), ...policies.map((p) => el("td", { class: "num" }, v.spread[e][p] || "0"))))));
  }
}

async function save() {
  if (!state.traceQuery) { say("Run a trace first: saving writes the trace into the case, with your notes.", true); return; }
  const body = { trace: state.traceQuery, annotations: state.annotations };
  try {
    let v;
    try { v = await api("save", body); }
    catch (e) {
      if (!/replace/.test(e.message) || !confirm("The case holds a different trace. Replace it? (Its audit trail keeps both.)")) throw e;
      v = await api("save", Object.assign(body, { replace: true }));
    }
    say(`Saved into ${v.case}: ${v.files.join(", ")} (logged in audit.jsonl).`);
  } catch (e) { say(e.message, true); }
}

// ---------------------------------------------------------------- export

function exportSvgText() {
  const s = $("graph").cloneNode(true);
  const b = $("world").getBBox();
  s.setAttribute("viewBox", `${Math.floor(b.x * state.zoom + state.panX) - 10} ${Math.floor(b.y * state.zoom + state.panY) - 10} ${Math.ceil(b.width * state.zoom) + 20} ${Math.ceil(b.height * state.zoom) + 20}`);
  s.setAttribute("width", Math.ceil(b.width * state.zoom) + 20);
  s.setAttribute("height", Math.ceil(b.height * state.zoom) + 20);
  // What the picture is, written in it: dataset, view, case and time of export.
  const i = state.info;
  const what = state.view === "explore" ? "explore canvas" : `${state.view} trace from ${state.trace.seeds.join(", ")}`;
  const caption = `chaintrace · ${i.chain} ${i.network} (${i.data}) · ${what}${i.case ? " · case " + i.case : ""} · exported ${new Date().toISOString().slice(0, 19)}Z`;
  const vb = s.getAttribute("viewBox").split(" ").map(Number);
  s.setAttribute("viewBox", `${vb[0]} ${vb[1] - 24} ${vb[2]} ${vb[3] + 24}`);
  s.setAttribute("height", vb[3] + 24);
  s.append(svg("text", { x: vb[0] + 10, y: vb[1] - 8, "font-size": 12, fill: "#37474f" }, caption));
  return new XMLSerializer().serializeToString(s);
}

function download(name, blob) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

function exportPng() {
  const text = exportSvgText();
  const img = new Image();
  img.onload = () => {
    const c = document.createElement("canvas");
    c.width = img.width * 2; c.height = img.height * 2;
    const ctx = c.getContext("2d");
    ctx.scale(2, 2);
    ctx.drawImage(img, 0, 0);
    c.toBlob((b) => download("chaintrace-canvas.png", b), "image/png");
  };
  img.src = URL.createObjectURL(new Blob([text], { type: "image/svg+xml" }));
}

// ---------------------------------------------------------------- search, keys, start

async function search(text, offset) {
  const q = text.trim();
  if (!q) return;
  say("");
  let v;
  try { v = await api("search?limit=50&q=" + encodeURIComponent(q) + "&offset=" + (offset || 0)); } catch (e) { say(e.message, true); return; }
  if (v.kind === "address") return showAddress(v.address);
  if (v.kind === "tx") return showTx(v.txid);
  const p = $("panel");
  p.replaceChildren(el("h2", {}, `Labels matching “${q}”`), el("p", { class: "muted" }, `${v.total} tag(s)`),
    ...v.matches.map((t) => el("div", {}, tagChip(t.category), " ", t.entity, " ",
      t.in_dataset ? link(short(t.address), () => showAddress(t.address)) : el("span", { class: "mono muted" }, short(t.address) + " (not in this dataset)"))));
  p.querySelector("p").textContent = `${v.total} tag(s); ${v.offset + 1}–${v.offset + v.matches.length} shown`;
  const nav = el("div", {});
  if (v.offset > 0) nav.append(el("button", { type: "button", onclick: () => search(q, Math.max(0, v.offset - 50)) }, "← previous"), " ");
  if (v.offset + v.matches.length < v.total) nav.append(el("button", { type: "button", onclick: () => search(q, v.offset + 50) }, "more →"));
  p.append(nav);
}

function removeSelected() {
  const s = state.selected;
  if (!s || state.view !== "explore") return;
  if (s.kind === "node") {
    state.nodes.delete(s.key);
    for (const k of [...state.edges.keys()]) { const e = state.edges.get(k); if (e.from === s.key || e.to === s.key) state.edges.delete(k); }
  } else state.edges.delete(s.key);
  state.selected = null;
  draw();
}

function keys(ev) {
  if (ev.target.matches("input, textarea, select")) { if (ev.key === "Escape") ev.target.blur(); return; }
  const s = state.selected;
  switch (ev.key) {
    case "/": ev.preventDefault(); $("search").focus(); break;
    case "e": if (s && s.kind === "node" && state.view === "explore") expand(s.key, "forward"); break;
    case "b": if (s && s.kind === "node" && state.view === "explore") expand(s.key, "backward"); break;
    case "Delete": case "Backspace": removeSelected(); break;
    case "+": case "=": state.zoom *= 1.2; draw(); break;
    case "-": state.zoom /= 1.2; draw(); break;
    case "ArrowLeft": state.panX += 40; draw(); break;
    case "ArrowRight": state.panX -= 40; draw(); break;
    case "ArrowUp": state.panY += 40; draw(); break;
    case "ArrowDown": state.panY -= 40; draw(); break;
    case "f": fit(); break;
    case "Escape": state.selected = null; draw(); break;
    default: return;
  }
}

function panAndZoom() {
  const host = $("canvas");
  let drag = null;
  host.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, px: state.panX, py: state.panY, moved: false }; });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (drag.moved) { state.panX = drag.px + dx; state.panY = drag.py + dy; $("world").setAttribute("transform", `translate(${state.panX},${state.panY}) scale(${state.zoom})`); }
  });
  window.addEventListener("mouseup", () => { drag = null; });
  host.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = host.getBoundingClientRect();
    const f = ev.deltaY < 0 ? 1.1 : 1 / 1.1;
    const mx = ev.clientX - r.left, my = ev.clientY - r.top;
    state.panX = mx - (mx - state.panX) * f; state.panY = my - (my - state.panY) * f; state.zoom *= f;
    $("world").setAttribute("transform", `translate(${state.panX},${state.panY}) scale(${state.zoom})`);
  }, { passive: false });
}

async function start() {
  if (!token) { say("This page needs the URL `chaintrace serve` printed (it ends with #token=…).", true); return; }
  try { state.info = await api("info"); } catch (e) { say(e.message, true); return; }
  const i = state.info;
  $("dataset").textContent = `${i.chain} ${i.network} · ${i.transactions} transactions · ${i.addresses} addresses · ${i.clustered ? "clustered (" + i.clustered + ")" : "not clustered"} · ${i.tags} tags`;
  $("case").textContent = i.case ? "case: " + i.case : "no case open (read-only)";
  $("save").disabled = !i.case;
  $("save").title = i.case ? "Write the trace and your notes into " + i.case : "Start chaintrace serve with --case DIR to save";
  if (i.case) {
    // The notes saved before (a reloaded page must not save over them with none).
    try { state.annotations = Object.assign({ nodes: {}, edges: {} }, (await api("annotations")).annotations); }
    catch (e) { say(e.message, true); }
  }
  if (i.chain === "ethereum") {
    $("trace-token-row").hidden = false;
    for (const o of [...$("trace-policy").options]) if (!i.policies.includes(o.value) && o.value !== "all") o.remove();
    $("trace-policy").options[0].textContent = `all ${i.policies.length} (compare)`;
  }
  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search($("search").value); });
  $("trace-run").addEventListener("click", runTrace);
  $("save").addEventListener("click", save);
  $("seeds-from-canvas").addEventListener("click", () => {
    const s = state.selected;
    if (s && s.kind === "node" && state.view === "explore") $("trace-seeds").value = s.key;
    else say("Select an address on the explore canvas first.", true);
  });
  $("view-explore").addEventListener("click", () => { state.view = "explore"; state.selected = null; draw(); fit(); });
  $("fit").addEventListener("click", fit);
  $("clear").addEventListener("click", () => { state.nodes.clear(); state.edges.clear(); state.view = "explore"; state.selected = null; draw(); });
  $("export-svg").addEventListener("click", () => download("chaintrace-canvas.svg", new Blob([exportSvgText()], { type: "image/svg+xml" })));
  $("export-png").addEventListener("click", exportPng);
  document.addEventListener("keydown", keys);
  panAndZoom();
  draw();
  document.body.dataset.ready = "1";
}

start();
