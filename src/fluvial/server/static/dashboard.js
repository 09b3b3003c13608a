// fluvial's live dashboard: asks this instance for the whole application's view every second
// and draws it. Plain DOM, no libraries; text from the server is only ever set as text.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 1000;
const HISTORY = 120;  // samples (seconds) the charts show
// a token given as /dashboard#token=... stays in the page: the fragment never reaches a server
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
const COLORS = ["#2f6fd0", "#d0632f", "#2fa35a", "#a23fc4", "#c4a23f", "#3fb0c4", "#c43f6e",
                "#6e7d2f", "#5a4fcf", "#8c5a2f"];

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                      : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function $(id) { return document.getElementById(id); }
function number(n) { return n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en"); }
function clock(t) { return t ? new Date(t * 1000).toLocaleTimeString("en-GB") : "–"; }
function bytes(n) {
  if (n === null || n === undefined) return "in memory";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function color(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[h % COLORS.length];
}

// -- topology -------------------------------------------------------------------------------

let drawnGraph = null;

function drawTopology(graph) {
  const key = JSON.stringify(graph);
  if (key === drawnGraph) return;  // it never changes while the app runs
  drawnGraph = key;
  const svg = clear($("topology"));
  const w = graph.node_width, h = 36, pad = 10;
  svg.setAttribute("width", graph.width + 2 * pad);
  svg.setAttribute("height", graph.height + 2 * pad);
  const at = Object.fromEntries(graph.nodes.map(n => [n.id, n]));
  const defs = el("svg:defs", {}, el("svg:marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10,
    refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"},
    el("svg:path", {d: "M0,0 L10,5 L0,10 z", fill: "#8795a6"})));
  svg.append(defs);
  for (const [a, b] of graph.edges) {
    const p = at[a], q = at[b];
    const x1 = p.x + pad + w, y1 = p.y + pad + h / 2, x2 = q.x + pad, y2 = q.y + pad + h / 2;
    const mid = (x1 + x2) / 2;
    svg.append(el("svg:path", {d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
      fill: "none", stroke: "#8795a6", "marker-end": "url(#arrow)",
      "stroke-dasharray": q.kind === "store" ? "4 3" : "none"}));
  }
  const styles = {topic: ["#fdf3e1", "#d9a441"], source: ["#e6effc", "#5b8ed6"],
                  processor: ["#eef6ee", "#5ea96a"], sink: ["#e6effc", "#5b8ed6"],
                  store: ["#f3ecfb", "#9a6fd0"]};
  for (const n of graph.nodes) {
    const [fill, stroke] = styles[n.kind];
    const g = el("svg:g", {class: `node ${n.kind}`, "data-node": n.id});
    const x = n.x + pad, y = n.y + pad;
    g.append(el("svg:rect", {x, y, width: w, height: h, fill, stroke,
      rx: n.kind === "topic" ? 18 : n.kind === "store" ? 10 : 4}));
    // KSTREAM-MAPVALUES-0000000001 shows as KSTREAM-MAPVALUES-1; the full name on hover
    const short = n.label.replace(/-0+(?=\d)/, "-");
    const label = short.length > 25 ? short.slice(0, 24) + "…" : short;
    g.append(el("svg:text", {x: x + 8, y: y + 14, fill: "#5a6776", class: "caption"}, n.kind +
      (n.subtopology === null ? "" : ` · sub-topology ${n.subtopology}`)));
    g.append(el("svg:text", {x: x + 8, y: y + 29}, label), el("svg:title", {}, n.label));
    svg.append(g);
  }
}

// -- charts ---------------------------------------------------------------------------------

function drawChart(svg, series) {
  clear(svg);
  const width = svg.parentNode.clientWidth - 28 || 500, height = 180;
  const left = 56, bottom = 20, top = 8, right = 110;
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const points = Object.values(series).flat();
  if (!points.length) {
    svg.append(el("svg:text", {x: left, y: height / 2, fill: "#8795a6"}, "no samples yet"));
    return;
  }
  const t0 = Math.min(...points.map(p => p[0])), t1 = Math.max(...points.map(p => p[0]), t0 + 1);
  const vmax = Math.max(...points.map(p => p[1]), 1);
  const x = t => left + (t - t0) / (t1 - t0) * (width - left - right);
  const y = v => top + (1 - v / vmax) * (height - top - bottom);
  svg.append(el("svg:line", {x1: left, y1: y(0), x2: width - right, y2: y(0), stroke: "#c5ced8"}));
  svg.append(el("svg:text", {x: 4, y: top + 10, fill: "#5a6776"}, number(vmax)));
  svg.append(el("svg:text", {x: 4, y: y(0), fill: "#5a6776"}, "0"));
  svg.append(el("svg:text", {x: left, y: height - 4, fill: "#5a6776"}, clock(t0)));
  svg.append(el("svg:text", {x: width - right - 60, y: height - 4, fill: "#5a6776"}, clock(t1)));
  Object.keys(series).sort().forEach((name, i) => {
    const line = series[name].map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(el("svg:polyline", {points: line, fill: "none", stroke: color(name),
      "stroke-width": 1.6, "data-series": name}));
    if (i < 12) svg.append(el("svg:text", {x: width - right + 8, y: top + 12 + i * 14,
      fill: color(name)}, `task ${name}`));
  });
}

// Each instance's samples, oldest first. The first answer brings the last minutes; later ones
// only the samples since the previous answer, so a refresh stays small with many tasks.
const histories = new Map();
let lastAnswer = 0;  // Date.now() of the last answer merged; 0: ask for the whole history

function samplesToAsk() {
  return lastAnswer ? Math.min(HISTORY, Math.ceil((Date.now() - lastAnswer) / 1000) + 2)
                    : HISTORY;
}

function mergeHistories(instances, whole) {
  let newcomer = false;
  for (const inst of instances) {
    const kept = histories.get(inst.instance);
    if (whole || !kept) {
      histories.set(inst.instance, inst.history.slice());
      newcomer = newcomer || !whole;
      continue;
    }
    const last = kept.length ? kept[kept.length - 1].t : 0;
    kept.push(...inst.history.filter(sample => sample.t > last));
    kept.splice(0, Math.max(kept.length - HISTORY, 0));
  }
  const here = new Set(instances.map(i => i.instance));
  for (const name of [...histories.keys()]) if (!here.has(name)) histories.delete(name);
  lastAnswer = newcomer ? 0 : Date.now();  // an instance that just joined: all of it next time
}

function perTask(index) {
  const series = {};
  for (const samples of histories.values()) {
    for (const sample of samples) {
      for (const [task, values] of Object.entries(sample.tasks)) {
        if (values[index] === null) continue;
        (series[task] = series[task] || []).push([sample.t, values[index]]);
      }
    }
  }
  // a task that moved has samples from two instances
  for (const points of Object.values(series)) points.sort((a, b) => a[0] - b[0]);
  return series;
}

// -- tables ---------------------------------------------------------------------------------

function taskText(t) {
  if (t.state === "running")
    return `${t.id} · running · ${number(t.processed)} rec · ${number(t.rate)}/s · lag ${number(t.lag)}`;
  if (t.state === "restoring") {
    const pct = t.total ? Math.floor(100 * t.applied / t.total) : 100;
    return `${t.id} · restoring ${pct} % (${number(t.applied)} of ${number(t.total)})`;
  }
  return `${t.id} · standby`;
}

function drawInstances(view) {
  const box = clear($("instances"));
  for (const inst of view.instances) {
    const card = el("div", {class: "instance", "data-instance": inst.instance});
    const totals = inst.totals;
    card.append(el("h3", {}, `${inst.instance} · ${inst.state}` +
      (inst.instance === view.viewed_from ? " (this one)" : "") +
      ` · ${number(totals.processed)} processed · ${number(totals.commits)} commits`));
    for (const t of inst.tasks)
      card.append(el("span", {class: "task", "data-task": t.id, "data-state": t.state},
                     taskText(t)));
    if (!inst.tasks.length) card.append(el("span", {}, "no tasks"));
    box.append(card);
  }
  for (const u of view.unreachable || [])
    box.append(el("div", {class: "instance unreachable", "data-instance": u.instance},
                  `${u.instance} · did not answer: ${u.error}`));
}

function fillTable(id, rows) {
  const body = clear($(id).tBodies[0]);
  for (const row of rows) {
    const tr = el("tr", row.attrs || {});
    for (const [cls, text] of row.cells) tr.append(el("td", cls ? {class: cls} : {}, text));
    body.append(tr);
  }
}

function drawTables(instances) {
  const stores = [], rebalances = [], errors = [];
  for (const inst of instances) {
    for (const s of inst.stores)
      stores.push({cells: [["", s.store], ["", s.task], ["", inst.instance],
                           ["", number(s.entries)], ["", bytes(s.bytes)]]});
    for (const r of inst.rebalances.recent)
      rebalances.push([r.time, {cells: [["", clock(r.time)], ["", inst.instance],
                                        ["", r.kind], ["", r.partitions]]}]);
    for (const e of inst.errors) {
      const record = e.topic === null ? "–" : `${e.topic}[${e.partition}] @ ${e.offset}`;
      errors.push([e.time || Infinity, {attrs: {class: "error", "data-kind": e.kind},
        cells: [["", clock(e.time)], ["", inst.instance], ["", e.kind.replace("_", " ")],
                ["", e.task || "–"], ["", record], ["reason", e.reason]]}]);
    }
  }
  const newest = rows => rows.sort((a, b) => b[0] - a[0]).map(r => r[1]);
  fillTable("stores", stores);
  fillTable("rebalances", newest(rebalances).slice(0, 30));
  fillTable("errors", newest(errors).slice(0, 50));
}

// -- the loop -------------------------------------------------------------------------------

function draw(view, whole) {
  const instances = view.instances;
  mergeHistories(instances, whole);
  const sum = f => instances.reduce((a, i) => a + (f(i) || 0), 0);
  const lags = instances.flatMap(i => i.tasks.filter(t => t.lag !== undefined && t.lag !== null));
  $("app-id").textContent = view.application_id;
  $("viewed-from").textContent = view.viewed_from;
  $("instance-count").textContent = instances.length;
  $("total-processed").textContent = number(sum(i => i.totals.processed));
  $("total-rate").textContent = number(sum(i => i.tasks.reduce((a, t) => a + (t.rate || 0), 0)));
  $("total-lag").textContent = lags.length ? number(lags.reduce((a, t) => a + t.lag, 0)) : "–";
  $("total-skipped").textContent = number(sum(i => i.totals.skipped));
  $("total-rebalances").textContent = number(sum(i => i.rebalances.count));
  drawTopology(view.graph);
  drawChart($("throughput-chart"), perTask(0));
  drawChart($("lag-chart"), perTask(1));
  drawInstances(view);
  drawTables(instances);
  $("updated").textContent = new Date().toLocaleTimeString("en-GB");
}

async function refresh() {
  try {
    const samples = samplesToAsk();
    const response = await fetch(`/dashboard/data?scope=application&history=${samples}`,
      {headers: TOKEN ? {Authorization: `Bearer ${TOKEN}`} : {}});
    const body = await response.json();
    if (!response.ok) {
      $("status").textContent = response.status === 401
        ? "· this instance needs its token: open /dashboard#token=<token>"
        : `· ${body.error}`;
    } else {
      $("status").textContent = "";
      draw(body, samples === HISTORY);
    }
  } catch (err) {
    $("status").textContent = `· not answering: ${err}`;
  }
  setTimeout(refresh, REFRESH_MS);
}

refresh();
