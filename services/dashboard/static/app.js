// The Ember dashboard: one page, a view per #hash, each read from /api/
// (the same state API as `ember list`) and redrawn every few seconds.
// No framework and nothing from elsewhere: DOM and SVG built here.
"use strict";

const REFRESH_MS = 3000;
const METRICS_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path) {
  const reply = await fetch("/api/" + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (reply.status === 401) { window.location.href = "/login"; throw new Error("not logged in"); }
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.msg || reply.statusText);
  return body;
}

async function rows(resource, limit) {
  const body = await api(`v0/${resource}?limit=${limit || 1000}`);
  showWarnings(body.data.result.warnings);
  return body.data.result.result;
}

function showWarnings(list) {
  const box = document.getElementById("warnings");
  box.hidden = !list || list.length === 0;
  box.textContent = (list || []).join("; ");
}

const short = (id) => (id ? String(id).slice(0, 8) : "");
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");
function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function amount(name, v) {
  return name.includes("memory") ? bytes(v) : (Number.isInteger(v) ? v : v.toFixed(2));
}
function stateBadge(state) { return el("span", { class: "badge s-" + String(state).toLowerCase() }, state); }

function table(columns, data, empty) {
  if (!data.length) return el("p", { class: "empty" }, empty || "None.");
  return el("table", {},
    el("thead", {}, el("tr", {}, columns.map(([title]) => el("th", {}, title)))),
    el("tbody", {}, data.map((row) => el("tr", {}, columns.map(([, cell]) => el("td", {}, cell(row)))))));
}

function bar(used, total, label) {
  const frac = total > 0 ? Math.min(1, used / total) : 0;
  const inner = el("span", { class: "fill" });
  inner.style.width = `${(frac * 100).toFixed(1)}%`;
  return el("span", { class: "meter", title: label }, inner, el("span", { class: "meter-text" }, label));
}

// ---- views ---------------------------------------------------------------

async function viewCluster() {
  const c = await api("cluster");
  const resources = Object.entries(c.resources).sort();
  return [
    el("h1", {}, "Cluster"),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("b", { id: "nodes-alive" }, c.alive), " nodes alive"),
      el("div", { class: "card" }, el("b", {}, c.dead), " dead")),
    el("h2", {}, "Resources (used / total)"),
    table([["resource", ([n]) => n], ["usage", ([n, v]) => bar(v.used, v.total, `${amount(n, v.used)} / ${amount(n, v.total)}`)]],
      resources),
    el("h2", {}, "Nodes"),
    table([
      ["node", (n) => el("code", { class: "node-id" }, short(n.node_id))],
      ["address", (n) => n.node_ip], ["", (n) => (n.is_head_node ? "head" : "")],
      ["state", (n) => stateBadge(n.state)],
      ["resources used / total", (n) => el("div", {}, Object.entries(n.resources_total).sort().map(([k, t]) =>
        el("div", {}, `${k}: `, bar(n.resources_used[k] || 0, t, `${amount(k, n.resources_used[k] || 0)} / ${amount(k, t)}`))))],
      ["started", (n) => time(n.start_time_ms)],
      ["why dead", (n) => n.state_message || ""],
      ["infeasible", (n) => n.infeasible.map((s) => JSON.stringify(s)).join(" ")],
    ], c.nodes, "No nodes."),
  ];
}

async function viewJobs() {
  const jobs = await rows("jobs");
  return [el("h1", {}, "Jobs"), table([
    ["job", (j) => el("code", {}, j.job_id)], ["status", (j) => stateBadge(j.status)],
    ["entrypoint", (j) => j.entrypoint], ["driver", (j) => `${j.driver_ip_address || ""} pid ${j.driver_pid}`],
    ["namespace", (j) => j.namespace], ["started", (j) => time(j.start_time)], ["ended", (j) => time(j.end_time)],
  ], jobs.slice().reverse(), "No jobs yet.")];
}

async function viewActors() {
  const actors = await rows("actors");
  return [el("h1", {}, "Actors"), table([
    ["actor", (a) => el("code", { class: "actor-id" }, short(a.actor_id))], ["class", (a) => a.class_name],
    ["name", (a) => a.name], ["state", (a) => stateBadge(a.state)], ["node", (a) => short(a.node_id)],
    ["pid", (a) => a.pid || ""], ["restarts", (a) => a.num_restarts],
    ["why dead", (a) => (a.death_cause ? `${a.death_cause.cause}: ${a.death_cause.message}` : "")],
  ], actors, "No actors.")];
}

async function viewTasks() {
  const [summary, fall] = await Promise.all([api("v0/tasks/summarize"), api("waterfall?limit=300")]);
  showWarnings(fall.warnings);
  const groups = Object.values(summary.data.result.node_id_to_summary.cluster.summary);
  return [
    el("h1", {}, "Tasks"),
    el("h2", {}, "Recent tasks per worker"),
    waterfall(fall),
    el("h2", {}, "By function and state"),
    table([["function", (g) => g.func_or_class_name], ["type", (g) => g.type],
      ["states", (g) => Object.entries(g.state_counts).map(([s, n]) => el("span", {}, stateBadge(s), ` ${n} `))]],
      groups, "No tasks recorded yet."),
  ];
}

// A Gantt chart: a row per worker (node, pid), a bar per attempt; bars that
// overlap on one worker (an actor's concurrent calls) go to extra lanes.
function waterfall(data) {
  const tasks = data.tasks;
  if (!tasks.length) return el("p", { class: "empty", id: "waterfall" }, "No task has run yet.");
  const now = Date.now();
  const critical = new Set(data.critical_path);
  const t0 = Math.min(...tasks.map((t) => t.start_time_ms));
  const t1 = Math.max(...tasks.map((t) => t.end_time_ms || now));
  const span = Math.max(1, t1 - t0);
  const workers = new Map();
  for (const t of tasks) {
    const key = `${t.node_id}:${t.worker_pid}`;
    if (!workers.has(key)) workers.set(key, { node: t.node_id, pid: t.worker_pid, lanes: [] });
    const w = workers.get(key);
    const end = t.end_time_ms || now;
    let lane = w.lanes.findIndex((laneEnd) => laneEnd <= t.start_time_ms);
    if (lane < 0) { lane = w.lanes.length; w.lanes.push(end); } else w.lanes[lane] = end;
    t._lane = lane; t._end = end;
  }
  const labelW = 190, width = 1100, laneH = 18, gap = 6, axisH = 22;
  let y = axisH;
  const rowsY = new Map();
  for (const [key, w] of workers) { rowsY.set(key, y); y += w.lanes.length * laneH + gap; }
  const x = (ms) => labelW + ((ms - t0) / span) * (width - labelW - 40);
  const chart = svg("svg", { id: "waterfall", class: "waterfall", width, height: y + 4, viewBox: `0 0 ${width} ${y + 4}` });
  for (let i = 0; i <= 5; i++) {
    const ms = t0 + (span * i) / 5;
    chart.append(svg("line", { x1: x(ms), x2: x(ms), y1: axisH - 4, y2: y, class: "grid" }));
    chart.append(svg("text", { x: x(ms), y: 12, class: "axis" }, `${((ms - t0) / 1000).toFixed(2)} s`));
  }
  for (const [key, w] of workers) {
    chart.append(svg("text", { x: 4, y: rowsY.get(key) + 13, class: "row-label" }, `node ${short(w.node)} · pid ${w.pid}`));
  }
  const path = [];
  for (const t of tasks) {
    const top = rowsY.get(`${t.node_id}:${t.worker_pid}`) + t._lane * laneH;
    const x0 = x(t.start_time_ms), w = Math.max(1.5, x(t._end) - x0);
    const onPath = critical.has(`${t.task_id}:${t.attempt_number}`);
    const rect = svg("rect", { x: x0, y: top + 1, width: w, height: laneH - 3, rx: 2,
      class: `task s-${t.state.toLowerCase()}${onPath ? " critical" : ""}`, "data-task-id": t.task_id },
    svg("title", {}, `${t.name} (${t.state}) ${((t._end - t.start_time_ms) / 1000).toFixed(3)} s` +
      `\ntask ${t.task_id} attempt ${t.attempt_number}${t.error_type ? "\n" + t.error_type : ""}${onPath ? "\non the critical path" : ""}`));
    chart.append(rect);
    if (w > 40) chart.append(svg("text", { x: x0 + 3, y: top + 12, class: "bar-label" }, t.name.slice(0, Math.floor(w / 7))));
    if (onPath) path.push([x0, x0 + w, top + laneH / 2, t]);
  }
  // The path in its order (first to last): a dashed link where one waited for the other to end;
  // a child inside its parent needs none (it is drawn inside it).
  const order = new Map(data.critical_path.map((k, i) => [k, i]));
  path.sort((a, b) => order.get(`${a[3].task_id}:${a[3].attempt_number}`) - order.get(`${b[3].task_id}:${b[3].attempt_number}`));
  for (let i = 1; i < path.length; i++) {
    const [, prevEnd, prevY, prev] = path[i - 1], [start, , y, next] = path[i];
    if (next.start_time_ms >= prev.end_time_ms) {
      chart.append(svg("line", { x1: prevEnd, y1: prevY, x2: start, y2: y, class: "critical-link" }));
    }
  }
  return el("div", {},
    el("p", { class: "legend" }, `${tasks.length} attempts on ${workers.size} workers over ${(span / 1000).toFixed(2)} s. `,
      el("span", { class: "critical-key" }, "critical path"),
      `: ${path.length} tasks (back from the one that ended last, what each waited for last: its latest child, else the task of its job that ended last before it started).`),
    el("div", { class: "scroll" }, chart));
}

async function viewObjects() {
  const [objects, summary, m] = await Promise.all([rows("objects", 500), api("v0/objects/summarize"), api("metrics")]);
  const v = m.values;
  const s = summary.data.result.node_id_to_summary.cluster;
  return [
    el("h1", {}, "Objects and memory"),
    el("div", { class: "cards" },
      el("div", { class: "card" }, el("b", {}, s.total_objects), " objects, ", bytes(s.total_size_mb * 1048576)),
      el("div", { class: "card" }, "object store ", bar(v.ember_object_store_used_bytes || 0, v.ember_object_store_capacity_bytes || 0,
        `${bytes(v.ember_object_store_used_bytes || 0)} / ${bytes(v.ember_object_store_capacity_bytes || 0)}`)),
      el("div", { class: "card" }, "spilled ", bytes(v.ember_object_store_spilled_bytes || 0))),
    el("h2", {}, "Memory per node"),
    table([
      ["node", ([id]) => el("code", {}, short(id))],
      ["object store", ([, n]) => bar(n.ember_object_store_used_bytes || 0, n.ember_object_store_capacity_bytes || 0,
        `${bytes(n.ember_object_store_used_bytes || 0)} / ${bytes(n.ember_object_store_capacity_bytes || 0)}`)],
      ["objects in store", ([, n]) => n.ember_object_store_objects ?? ""],
      ["spilled", ([, n]) => `${n.ember_object_store_spilled_objects ?? 0} (${bytes(n.ember_object_store_spilled_bytes || 0)})`],
      ["objects the raylet tracks", ([, n]) => n.ember_objects ?? ""],
      ["node memory", ([, n]) => bar(n.ember_node_memory_used_bytes || 0, n.ember_node_memory_total_bytes || 0,
        `${bytes(n.ember_node_memory_used_bytes || 0)} / ${bytes(n.ember_node_memory_total_bytes || 0)}`)],
    ], Object.entries(m.nodes).sort(), "No node answered."),
    el("h2", {}, "Objects (who holds what)"),
    table([
      ["object", (o) => el("code", {}, short(o.object_id))], ["size", (o) => bytes(o.object_size)],
      ["status", (o) => stateBadge(o.task_status)], ["reference", (o) => o.reference_type],
      ["held by", (o) => o.holders.join(", ")], ["node", (o) => short(o.node_id)],
      ["where", (o) => (o.inline ? "inline (raylet)" : o.stored_on ? `store of ${short(o.stored_on)}` : "")],
    ], objects, "No objects."),
  ];
}

async function viewPlacementGroups() {
  const groups = await rows("placement_groups");
  return [el("h1", {}, "Placement groups"), table([
    ["group", (g) => el("code", {}, short(g.placement_group_id))], ["name", (g) => g.name],
    ["state", (g) => stateBadge(g.state)], ["strategy", (g) => g.strategy],
    ["bundles", (g) => g.bundles.map((b, i) => `${JSON.stringify(b)}${g.nodes[i] ? " @" + short(g.nodes[i]) : ""}`).join(", ")],
    ["detached", (g) => (g.is_detached ? "yes" : "")], ["pending because", (g) => g.pending_reason || ""],
  ], groups, "No placement groups.")];
}

// Live charts: the page samples /api/metrics and keeps the last 5 minutes.
const history = [];
const CHARTS = [
  ["Tasks assigned to workers, queued, waiting", ["ember_tasks{assigned}", "ember_tasks{queued}", "ember_tasks{waiting}"], (n) => n.toFixed(0)],
  ["Tasks finished per second", ["rate:ember_tasks_succeeded", "rate:ember_tasks_failed"], (n) => n.toFixed(1)],
  ["Workers", ["ember_workers{idle}", "ember_workers{leased}", "ember_workers{actor}"], (n) => n.toFixed(0)],
  ["Object store bytes", ["ember_object_store_used_bytes"], bytes],
];
async function sampleMetrics() {
  const m = await api("metrics");
  const prev = history[history.length - 1];
  const point = { t: m.time, v: { ...m.values } };
  for (const name of ["ember_tasks_succeeded", "ember_tasks_failed"]) {
    point.v["rate:" + name] = prev && m.values[name] !== undefined && prev.v[name] !== undefined
      ? Math.max(0, (m.values[name] - prev.v[name]) / Math.max(0.001, m.time - prev.t)) : 0;
  }
  history.push(point);
  while (history.length && history[0].t < m.time - 300) history.shift();
}
function chart(title, series, fmt) {
  const w = 520, h = 160, pad = 36;
  const box = svg("svg", { class: "chart", width: w, height: h, viewBox: `0 0 ${w} ${h}` });
  const t1 = history.length ? history[history.length - 1].t : 0, t0 = t1 - 300;
  let max = 1;
  for (const p of history) for (const s of series) max = Math.max(max, p.v[s] || 0);
  box.append(svg("line", { x1: pad, x2: w - 4, y1: h - 18, y2: h - 18, class: "grid" }));
  box.append(svg("text", { x: 2, y: 14, class: "axis" }, fmt(max)));
  box.append(svg("text", { x: 2, y: h - 20, class: "axis" }, "0"));
  box.append(svg("text", { x: w - 60, y: h - 4, class: "axis" }, "last 5 min"));
  series.forEach((s, i) => {
    const pts = history.map((p) => `${(pad + ((p.t - t0) / 300) * (w - pad - 4)).toFixed(1)},${(h - 18 - ((p.v[s] || 0) / max) * (h - 40)).toFixed(1)}`);
    box.append(svg("polyline", { points: pts.join(" "), class: `line c${i}` }));
  });
  const last = history[history.length - 1];
  return el("div", { class: "chart-box" }, el("h3", {}, title), box,
    el("div", { class: "chart-legend" }, series.map((s, i) => el("span", { class: `key c${i}` },
      `${s.replace("ember_", "").replace("rate:", "")} ${last ? fmt(last.v[s] || 0) : ""}  `))));
}
async function viewMetrics() {
  if (!history.length) await sampleMetrics();
  return [el("h1", {}, "Metrics"), el("p", {}, "Summed over the cluster's nodes (their /metrics), sampled every 2 s while this page is open."),
    el("div", { class: "charts" }, CHARTS.map(([title, series, fmt]) => chart(title, series, fmt)))];
}

// ---- routing --------------------------------------------------------------

const VIEWS = { cluster: viewCluster, jobs: viewJobs, actors: viewActors, tasks: viewTasks, objects: viewObjects,
  "placement-groups": viewPlacementGroups, metrics: viewMetrics };
let timer = null, generation = 0;

async function render() {
  const route = (window.location.hash || "#cluster").slice(1);
  const view = VIEWS[route] || viewCluster;
  const mine = ++generation;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.getAttribute("href") === "#" + route);
  const error = document.getElementById("error");
  try {
    const content = await view();
    if (mine !== generation) return; // another view was asked for meanwhile
    document.getElementById("main").replaceChildren(...content);
    error.hidden = true;
    document.body.dataset.loaded = route;
  } catch (e) {
    if (mine !== generation) return;
    error.hidden = false;
    error.textContent = `Could not read the cluster's state: ${e.message}`;
  }
  clearTimeout(timer);
  timer = setTimeout(render, route === "metrics" ? METRICS_MS : REFRESH_MS);
}

async function metricsTick() {
  if ((window.location.hash || "").slice(1) === "metrics" && history.length) {
    try { await sampleMetrics(); } catch (e) { /* shown by the next render */ }
  }
}

window.addEventListener("hashchange", () => { delete document.body.dataset.loaded; render(); });
setInterval(metricsTick, METRICS_MS);
render();
