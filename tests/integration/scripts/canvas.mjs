// Drives the canvas of `chaintrace serve` in headless Chromium (Debian's) through
// playwright-core: search the vendor, put it on the canvas, expand two hops, run a FIFO
// trace, read the exchange's exit; prints one JSON document, saves screenshots.
// Usage: node canvas.mjs URL VENDOR_ADDRESS HOP2_ADDRESS SCREENSHOT_DIR
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { chromium } = require(require.resolve("playwright-core", { paths: (process.env.NODE_PATH || "").split(":") }));

const [url, vendor, hop2, shots] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector("body[data-ready='1']", { timeout: 30000 });
  out.load_ms = Date.now() - t0;

  // Search the vendor's address: its page opens.
  await page.fill("#search", vendor);
  await page.click("#search-go");
  await page.waitForSelector("#page-address");
  out.page_address = await page.textContent("#page-address");
  out.received = await page.textContent("#addr-received");
  // On the canvas, expand forward; then the onward address, expanded forward too.
  await page.click("#add-node");
  await page.click("#expand-forward");
  await page.waitForSelector(`g.node[data-key='${hop2}']`);
  await page.click(`g.node[data-key='${hop2}']`);
  await page.waitForSelector(`#page-address:text-is('${hop2}')`);
  await page.click("#expand-forward");
  await page.waitForFunction((n) => document.querySelectorAll("g.node").length >= n, 5);
  out.explore_nodes = await page.$$eval("g.node", (g) => g.map((x) => x.dataset.key));
  await page.screenshot({ path: `${shots}/explore.png` });

  // A FIFO trace from the vendor.
  await page.fill("#search", vendor);
  await page.click("#search-go");
  await page.waitForSelector(`#page-address:text-is('${vendor}')`);
  await page.click("#trace-from");
  await page.selectOption("#trace-policy", "fifo");
  await page.click("#trace-run");
  await page.waitForSelector("#model-tabs button[data-policy='fifo']");
  await page.waitForSelector(".exit");
  out.exit = {
    entity: await page.textContent(".exit strong"),
    amount: await page.textContent(".exit .exit-amount"),
  };
  out.headline = await page.textContent("#headline");
  out.trace_boxes = await page.$$eval("g.node", (g) => g.map((x) => x.textContent));
  out.edge_labels = await page.$$eval("text.edge-label", (t) => t.map((x) => x.textContent));
  await page.screenshot({ path: `${shots}/canvas.png` });
  // Export the view as SVG: a download, captioned, with the chart's text.
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#export-svg")]);
  await dl.saveAs(`${shots}/export.svg`);
  out.export_name = dl.suggestedFilename();
  out.errors = errors;
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
