// Draws /api/snapshot into the page every REFRESH_MS, without reloading it.
// Values from the store are set as text (never HTML); charts are plain SVG.
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#58a6ff", "#f0883e", "#a371f7", "#3fb950", "#f85149", "#d29922", "#79c0ff", "#ff7b72"];
let selected = null;

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  if (digits !== undefined) return v.toFixed(digits);
  if (a !== 0 && (a < 0.01 || a >= 1e6)) return v.toExponential(2);
  return v.toFixed(a >= 100 ? 1 : 3);
}
function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : "–"; }
function table(id, header, rows) {
  const t = document.getElementById(id);
  t.replaceChildren();
  const head = el("tr");
  header.forEach(h => head.append(el("th", {}, h)));
  t.append(head);
  if (!rows.length) { const r = el("tr"); r.append(el("td", {class: "muted", colspan: header.length}, "none")); t.append(r); }
  for (const row of rows) {
    const tr = el("tr");
    for (const cell of row) {
      const td = el("td", cell && cell.cls ? {class: cell.cls} : {}, cell && cell.text !== undefined ? cell.text : fmt(cell));
      tr.append(td);
    }
    t.append(tr);
  }
}
function panelError(id, data) {
  document.querySelector(`#${id} .error`).textContent = data && data.error ? data.error : "";
  return !data || data.error;
}
function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return v => r0 + (v - d0) / span * (r1 - r0);
}

function lines(svgId, series, opts) {
  // series: [{name, points: [[t, v], ...]}]; opts: {threshold}
  const svg = document.getElementById(svgId);
  svg.replaceChildren();
  const W = 900, H = svg.viewBox.baseVal.height, pad = 28;
  const all = series.flatMap(s => s.points);
  if (!all.length) { svg.append(el("svg:text", {x: 10, y: 20, fill: "#6b7782"}, "no samples yet")); return; }
  const ts = all.map(p => p[0]), vs = all.map(p => p[1]);
  let vmax = Math.max(...vs, opts && opts.threshold ? opts.threshold * 1.2 : 0);
  const x = scale(Math.min(...ts), Math.max(...ts), pad, W - 4), y = scale(0, vmax || 1, H - 14, 6);
  svg.append(el("svg:text", {x: 2, y: 14, fill: "#6b7782", "font-size": 10}, fmt(vmax)));
  if (opts && opts.threshold) {
    svg.append(el("svg:line", {x1: pad, x2: W, y1: y(opts.threshold), y2: y(opts.threshold), stroke: "#f85149", "stroke-dasharray": "4 4"}));
  }
  series.forEach((s, i) => {
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    svg.append(el("svg:path", {d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.5}));
  });
}

function candles(market) {
  const svg = document.getElementById("candles");
  svg.replaceChildren();
  const bars = (market.candles || {})[selected] || [];
  const marks = (market.anomalies || {})[selected] || [];
  if (!bars.length) { svg.append(el("svg:text", {x: 10, y: 20, fill: "#6b7782"}, "no candles yet")); return; }
  const W = 900, H = 300, priceH = 210, pad = 48;
  const lo = Math.min(...bars.map(b => b.low)), hi = Math.max(...bars.map(b => b.high));
  const vmax = Math.max(...bars.map(b => b.volume || 0)) || 1;
  const t0 = Date.parse(bars[0].t), t1 = Date.parse(bars[bars.length - 1].t) + 60000;
  const x = scale(t0, t1, pad, W - 8), y = scale(lo, hi, priceH - 6, 12), vy = scale(0, vmax, H - 2, priceH + 10);
  const w = Math.max(2, (x(t0 + 60000) - x(t0)) * 0.7);
  svg.append(el("svg:text", {x: 2, y: 16, fill: "#6b7782", "font-size": 10}, fmt(hi)));
  svg.append(el("svg:text", {x: 2, y: priceH - 4, fill: "#6b7782", "font-size": 10}, fmt(lo)));
  svg.append(el("svg:text", {x: 2, y: H - 4, fill: "#6b7782", "font-size": 10}, "vol"));
  for (const b of bars) {
    const cx = x(Date.parse(b.t) + 30000), cls = b.close >= b.open ? "up" : "down";
    const g = el("svg:g", {class: `candle ${cls}`, "data-t": b.t});
    g.append(el("svg:line", {x1: cx, x2: cx, y1: y(b.high), y2: y(b.low), "stroke-width": 1}));
    const top = y(Math.max(b.open, b.close)), bottom = y(Math.min(b.open, b.close));
    g.append(el("svg:rect", {x: cx - w / 2, y: top, width: w, height: Math.max(1, bottom - top)}));
    g.append(el("svg:rect", {x: cx - w / 2, y: vy(b.volume || 0), width: w, height: Math.max(0, vy(0) - vy(b.volume || 0)), opacity: 0.4}));
    svg.append(g);
  }
  for (const a of marks) {
    const t = Date.parse(a.t);
    if (t < t0 || t > t1) continue;
    const cx = x(t), bar = bars.find(b => Math.abs(Date.parse(b.t) + 30000 - t) <= 30000);
    const cy = bar ? y(bar.high) - 8 : 10;
    const m = el("svg:path", {class: "anomaly", d: `M${cx - 5},${cy - 8}L${cx + 5},${cy - 8}L${cx},${cy}Z`, fill: "#d29922"});
    m.append(el("svg:title", {}, `anomaly ${fmt(a.score)} (${a.model}) at ${time(a.t)}`));
    svg.append(m);
  }
  svg.append(el("svg:text", {x: W - 8, y: 16, fill: "#d8dee4", "text-anchor": "end"}, `${selected} · 1m · ${marks.length} anomalies`));
}

function drawMarket(market) {
  if (panelError("market", market)) return;
  if (market.anomaly_stream_error) document.querySelector("#market .error").textContent = market.anomaly_stream_error;
  const symbols = market.symbols || [];
  if (!symbols.includes(selected)) selected = symbols[0] || null;
  const chips = document.getElementById("symbols");
  chips.replaceChildren(...symbols.map(s => {
    const b = el("button", {class: s === selected ? "on" : ""}, s);
    b.onclick = () => { selected = s; drawMarket(market); };
    return b;
  }));
  candles(market);
  const features = market.latest_features || [];
  table("latest", ["symbol", ...features.map(f => f.split(":")[1])],
        (market.latest || []).map(r => [r.symbol, ...features.map(f => r[f])]));
}

function drawModels(models) {
  if (panelError("models", models)) return;
  table("champions", ["model", "champion version", "since"],
        (models.champions || []).map(c => [c.model, c.version === null ? {text: "none", cls: "muted"} : `v${c.version}`, c.since ? new Date(c.since).toLocaleString() : "–"]));
  const horizon = models.horizon_s;
  table("predictions", ["time", "model", "symbol", "score", "close", `outcome (+${horizon}s)`],
        (models.predictions || []).slice(0, 15).map(p => [
          new Date(p.at * 1000).toLocaleTimeString(), `${p.model} v${p.version}`, p.symbol, p.score, p.close,
          p.outcome === null ? {text: "pending", cls: "muted"} : {text: `${(p.outcome * 100).toFixed(3)} %`, cls: p.outcome >= 0 ? "pos" : "neg"},
        ]));
  const drift = models.drift || [];
  lines("drift", drift.map(d => ({name: `${d.model}:${d.input}`, points: d.points})), {threshold: models.drift_alert});
  document.getElementById("drift-legend").replaceChildren(...drift.map((d, i) =>
    el("span", {style: `color:${COLORS[i % COLORS.length]}`}, `${d.input} (${d.model})`)));
}

function drawPipeline(p) {
  if (panelError("pipeline", p)) return;
  const rate = p.events_per_s || {};
  const last = s => (s && s.length ? s[s.length - 1][1] : null);
  document.getElementById("ingested-now").textContent = fmt(last(rate.ingested), 1);
  document.getElementById("processed-now").textContent = fmt(last(rate.processed), 1);
  document.getElementById("alerts-now").textContent = String((p.alerts || []).length);
  lines("throughput", [{name: "ingested", points: rate.ingested || []}, {name: "processed", points: rate.processed || []}]);
  table("processed", ["processor", "events/s"], (p.processed_by_processor || []).map(r => [r.processor, r.value]));
  const records = Object.fromEntries((p.lag_records || []).map(r => [`${r.processor}/${r.topic}`, r.value]));
  table("lag", ["processor", "topic", "seconds", "records"], (p.lag || []).map(r => [r.processor, r.topic, r.value, records[`${r.processor}/${r.topic}`]]));
  const p99 = Object.fromEntries((p.freshness_p99 || []).map(r => [r.processor, r.value]));
  table("freshness", ["processor", "p50 s", "p99 s"], (p.freshness_p50 || []).map(r => [r.processor, r.value, p99[r.processor]]));
  table("dead-letters", ["reason", "count"], (p.dead_letters || []).map(r => [r.reason, fmt(r.value, 0)]));
  const rp99 = Object.fromEntries((p.rpc_p99 || []).map(r => [r.grpc_method, r.value]));
  table("rpcs", ["method", "calls/s", "p99 ms"], (p.rpc_qps || []).map(r => [r.grpc_method, r.value, rp99[r.grpc_method] === undefined ? null : rp99[r.grpc_method] * 1000]));
  table("rpc-errors", ["method", "code", "errors/s"], (p.rpc_errors || []).map(r => [r.grpc_method, r.grpc_code, r.value]));
  table("prediction-log", ["outcome", "rows"], (p.prediction_log || []).map(r => [r.outcome, fmt(r.value, 0)]));
  table("alerts", ["alert", "severity", "summary", "since"], (p.alerts || []).map(a => [a.alert, a.severity, a.summary, time(a.since)]));
}

async function refresh() {
  try {
    const reply = await fetch("/api/snapshot", {cache: "no-store"});
    const snap = await reply.json();
    if (snap.generated_at) {
      drawMarket(snap.market);
      drawModels(snap.models);
      drawPipeline(snap.pipeline);
      document.getElementById("updated").textContent = `updated ${time(snap.generated_at)}`;
      document.body.dataset.generatedAt = snap.generated_at;
    }
  } catch (e) {
    document.getElementById("updated").textContent = `no answer from the dashboard server (${e})`;
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
