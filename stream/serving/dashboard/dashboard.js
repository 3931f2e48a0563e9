// segstream dashboard: plain JavaScript over the query API (no framework, no CDN, no build step).
// Data shown is what the API answers; nothing is made up. Text from the API is always set as text, never as HTML.
"use strict";

const KEY_STORAGE = "segstream.apiKey";
const MAX_CHANGES = 200;
const MODEL_KINDS = ["churn", "purchase_propensity", "ltv"];
const state = { key: sessionStorage.getItem(KEY_STORAGE) || "", segments: [], selected: null, range: 3600, source: null, timers: [] };

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { Authorization: `Bearer ${state.key}`, ...(options.headers || {}) } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, (body && body.error) || response.statusText);
  return body;
}

function setStatus(text, kind) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = `status ${kind || ""}`;
}

function fmtTime(value) {
  if (value === null || value === undefined) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

function fmtNumber(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  return typeof value === "number" ? (Number.isInteger(value) ? value.toLocaleString() : value.toFixed(digits)) : String(value);
}

// ---- segments and their live counts ----

async function refreshSegments() {
  const body = await api("/v1/segments");
  state.segments = body.segments;
  const tbody = document.querySelector("#segments tbody");
  const previous = new Map([...tbody.querySelectorAll("tr")].map((row) => [row.dataset.segment, row.dataset.members]));
  tbody.replaceChildren(...body.segments.map((s) => {
    const before = previous.get(s.name);
    const moved = before !== undefined && Number(before) !== s.members;
    const row = el("tr", { "data-segment": s.name, "data-members": s.members, class: s.name === state.selected ? "selected" : "", onclick: () => selectSegment(s.name) },
      el("td", { class: "name" }, s.name),
      el("td", { class: `members${moved ? " moved" : ""}` }, s.members.toLocaleString()),
      el("td", { class: "description" }, s.description || ""));
    return row;
  }));
  document.getElementById("segments-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  if (!state.selected && body.segments.length) selectSegment(body.segments[0].name);
  fillExplainChoices();
}

let segmentsSoon = null;
function refreshSegmentsSoon() {
  if (segmentsSoon) return;
  segmentsSoon = setTimeout(() => { segmentsSoon = null; refreshSegments().catch(showError); }, 300);
}

// ---- size over time ----

function selectSegment(name) {
  state.selected = name;
  for (const row of document.querySelectorAll("#segments tbody tr")) row.classList.toggle("selected", row.dataset.segment === name);
  document.getElementById("chart-segment").textContent = name;
  refreshChart().catch(showError);
}

async function refreshChart() {
  if (!state.selected) return;
  const to = Date.now();
  const from = to - state.range * 1000;
  const body = await api(`/v1/segments/${encodeURIComponent(state.selected)}/sizes?from=${from}&to=${to}`);
  drawChart(body, from, to);
}

function drawChart(body, from, to) {
  const box = document.getElementById("chart");
  const note = document.getElementById("chart-note");
  const points = body.points;
  if (points.length > 1 && points[0].t > from) from = points[0].t; // span the samples kept, not empty history
  const width = 640, height = 220, left = 56, right = 12, top = 12, bottom = 28;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `members of ${body.segment} over time` });
  const maxY = Math.max(1, ...points.map((p) => p.max));
  const x = (t) => left + ((t - from) / Math.max(1, to - from)) * (width - left - right);
  const y = (v) => height - bottom - (v / maxY) * (height - top - bottom);
  for (const value of [0, maxY / 2, maxY]) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }));
    const label = svg("text", { x: left - 6, y: y(value) + 4, class: "axis", "text-anchor": "end" });
    label.textContent = fmtNumber(Math.round(value));
    chart.append(label);
  }
  for (const [t, anchor] of [[from, "start"], [to, "end"]]) {
    const label = svg("text", { x: x(t), y: height - 8, class: "axis", "text-anchor": anchor });
    label.textContent = new Date(t).toLocaleString();
    chart.append(label);
  }
  if (points.length) {
    // a step line: a count holds until the next sample (straight slopes would invent values in between)
    const path = points.map((p, i) => (i ? `H${x(p.t).toFixed(1)} V${y(p.members).toFixed(1)}` : `M${x(p.t).toFixed(1)},${y(p.members).toFixed(1)}`)).join(" ");
    chart.append(svg("path", { d: path, class: "line" }));
    for (const p of points) {
      const dot = svg("circle", { cx: x(p.t), cy: y(p.members), r: 2.5, class: "point" });
      const title = svg("title");
      title.textContent = `${new Date(p.t).toLocaleString()}: ${p.members} members (min ${p.min}, max ${p.max})`;
      dot.append(title);
      chart.append(dot);
    }
  }
  box.replaceChildren(chart);
  box.dataset.points = String(points.length);
  note.textContent = points.length
    ? `${points.length} points, one per ${fmtStep(body.step_s)} (the last sample in each); sampled every ${fmtStep(body.every_s)} by the API.`
    : `No samples in this range yet: the API samples every ${fmtStep(body.every_s)}.`;
}

function fmtStep(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

// ---- live changes (server-sent events) ----

async function connectStream() {
  if (state.source) state.source.close();
  const streamStatus = document.getElementById("stream-status");
  try {
    const { token } = await api("/v1/changes/token", { method: "POST" });
    const source = new EventSource(`/v1/changes/stream?token=${encodeURIComponent(token)}`);
    state.source = source;
    source.onopen = () => { streamStatus.textContent = "live"; streamStatus.className = "ok"; };
    source.addEventListener("change", (event) => addChange(JSON.parse(event.data)));
    source.addEventListener("dropped", (event) => addNotice(`${JSON.parse(event.data).dropped} changes skipped: this page fell behind`));
    source.addEventListener("revoked", () => { source.close(); streamStatus.textContent = "stopped: the API key was revoked"; });
    source.onerror = () => {
      streamStatus.textContent = "reconnecting…";
      streamStatus.className = "warn";
      if (source.readyState === EventSource.CLOSED && state.source === source) setTimeout(connectStream, 3000);
    };
  } catch (error) {
    streamStatus.textContent = `off: ${error.message}`;
    streamStatus.className = "error";
    if (!(error instanceof ApiError && error.status === 401)) setTimeout(connectStream, 5000);
  }
}

function addChange(change) {
  const list = document.getElementById("changes");
  const customer = el("a", { href: "#", class: "customer", onclick: (e) => { e.preventDefault(); lookup(change.customer_id); } }, change.customer_id);
  const group = change.group ? el("span", { class: "group" }, `[${change.group}]`) : "";
  list.prepend(el("li", { class: `change ${change.change}`, "data-segment": change.segment, "data-customer": change.customer_id },
    el("time", { datetime: change.at, title: fmtTime(change.at) }, new Date(change.at).toLocaleTimeString([], { hour12: false })),
    el("span", { class: "kind" }, change.change),
    el("span", { class: "segment" }, change.segment), group,
    customer,
    el("span", { class: "reason" }, change.reason || "")));
  while (list.children.length > MAX_CHANGES) list.lastElementChild.remove();
  refreshSegmentsSoon();
}

function addNotice(text) {
  document.getElementById("changes").prepend(el("li", { class: "notice" }, text));
}

// ---- customer lookup ----

function fillExplainChoices() {
  const select = document.getElementById("explain-segment");
  if (!select || select.options.length) return;
  select.append(...state.segments.map((s) => el("option", { value: s.name }, s.name)));
}

async function lookup(id) {
  document.getElementById("customer-id").value = id;
  const box = document.getElementById("customer");
  box.replaceChildren(el("p", { class: "hint" }, "loading…"));
  let profile;
  try {
    profile = await api(`/v1/customers/${encodeURIComponent(id)}`);
  } catch (error) {
    box.replaceChildren(el("p", { class: "error" }, error.message));
    return;
  }
  const { segments } = await api(`/v1/customers/${encodeURIComponent(id)}/segments`);
  const merged = profile.customer_id !== id ? el("p", { class: "hint" }, `${id} was merged into ${profile.customer_id}`) : "";
  const summary = el("dl", { class: "summary" },
    el("dt", {}, "customer"), el("dd", { id: "profile-id" }, profile.customer_id),
    el("dt", {}, "first seen"), el("dd", {}, fmtTime(profile.first_seen)),
    el("dt", {}, "last seen"), el("dd", {}, fmtTime(profile.last_seen)),
    el("dt", {}, "revenue"), el("dd", {}, fmtNumber(profile.revenue ?? 0, 2)),
    el("dt", {}, "aliases"), el("dd", {}, (profile.aliases || []).join(", ") || "—"));
  const traits = keyValueTable("traits", Object.entries(profile.traits || {}).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v]));
  const counts = keyValueTable("event counts", Object.entries(profile.event_counts || {}));
  const scores = keyValueTable("scores", Object.entries(profile.scores || {}).map(([name, s]) =>
    [name, s.model_version !== undefined ? `${fmtNumber(s.value)} (model ${s.model_version})` : fmtNumber(s.value)]));
  const memberships = el("div", { id: "memberships" }, el("h3", {}, `segments (${segments.length})`),
    segments.length
      ? el("ul", {}, segments.map((m) => el("li", { "data-segment": m.segment }, el("a", { href: "#", onclick: (e) => { e.preventDefault(); explain(profile.customer_id, m.segment); } }, m.segment), ` since ${fmtTime(m.entered_at)}`)))
      : el("p", { class: "hint" }, "in no segment"));
  const select = el("select", { id: "explain-segment", "aria-label": "segment to explain" });
  const explainForm = el("form", { id: "explain-form", onsubmit: (e) => { e.preventDefault(); explain(profile.customer_id, select.value); } },
    el("h3", {}, "why (not) in a segment"), select, el("button", { type: "submit" }, "Explain"));
  box.replaceChildren(merged, summary, el("div", { class: "columns" }, traits, scores, counts), memberships, explainForm, el("div", { id: "explain" }));
  fillExplainChoices();
  const first = segments.length ? segments[0].segment : state.segments.length ? state.segments[0].name : null;
  if (first) { select.value = first; await explain(profile.customer_id, first); }
}

function keyValueTable(title, rows) {
  return el("div", { class: "kv" }, el("h3", {}, title),
    rows.length ? el("table", {}, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmtNumber(v)))))) : el("p", { class: "hint" }, "none"));
}

async function explain(id, segment) {
  const box = document.getElementById("explain");
  const select = document.getElementById("explain-segment");
  if (select) select.value = segment;
  try {
    const body = await api(`/v1/customers/${encodeURIComponent(id)}/segments/${encodeURIComponent(segment)}/explain`);
    const verdict = `${body.member ? "member of" : "not in"} ${segment}${body.group ? ` (${body.group} group)` : ""}; next change possible at ${body.deadline ? fmtTime(body.deadline) : "no deadline"}`;
    box.replaceChildren(el("p", { class: body.member ? "ok" : "muted" }, verdict), el("ul", { class: "tree" }, explainNode(body.condition)));
  } catch (error) {
    box.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

function explainNode(node) {
  const children = node.children ? el("ul", {}, node.children.map(explainNode)) : "";
  return el("li", { class: node.holds ? "holds" : "fails" },
    el("span", { class: "mark" }, node.holds ? "✓" : "✗"), el("span", { class: "kind" }, node.kind), el("span", { class: "reason" }, node.reason),
    node.deadline ? el("span", { class: "deadline" }, `until ${fmtTime(node.deadline)}`) : "", children);
}

// ---- model quality ----

async function refreshModels() {
  const box = document.getElementById("models");
  let info;
  try {
    info = await api("/v1/models");
  } catch (error) {
    if (error.status === 404) { box.replaceChildren(el("p", { class: "hint" }, error.message)); return; }
    throw error;
  }
  document.getElementById("models-version").textContent = `snapshot ${info.version}, ${fmtTime(info.at)}`;
  const report = info.report || {};
  const rows = MODEL_KINDS.filter((kind) => report[kind]).map((kind) => {
    const m = report[kind];
    return el("tr", { "data-model": kind }, el("th", {}, kind), el("td", {}, fmtNumber(m.examples)), el("td", {}, m.scoring ? "yes" : "not yet"),
      el("td", {}, m.positive_rate !== undefined ? `${(100 * m.positive_rate).toFixed(1)} %` : "—"),
      el("td", {}, fmtNumber(m.roc_auc)), el("td", {}, fmtNumber(m.log_loss)), el("td", {}, fmtNumber(m.accuracy)),
      el("td", {}, fmtNumber(m.mae, 2)), el("td", {}, fmtNumber(m.r2)));
  });
  box.replaceChildren(rows.length
    ? el("table", {}, el("thead", {}, el("tr", {}, ["model", "examples", "scoring", "positive", "ROC-AUC", "log loss", "accuracy", "MAE", "R²"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", { class: "hint" }, "the snapshot has no model report yet"));
}

// ---- segment analytics ----

async function refreshOverlap() {
  const box = document.getElementById("overlap");
  let report;
  try {
    report = await api("/v1/analytics/overlap");
  } catch (error) {
    if (error.status === 400) { box.replaceChildren(el("p", { class: "hint" }, error.message)); return; }
    throw error;
  }
  const names = report.segments;
  const pairs = [];
  names.forEach((a, i) => names.slice(i + 1).forEach((b) => { if (report.intersections[a][b]) pairs.push([a, b]); }));
  pairs.sort((p, q) => report.matrix[q[0]][q[1]] - report.matrix[p[0]][p[1]]);
  const rows = pairs.slice(0, 10).map(([a, b]) => el("tr", { "data-pair": `${a}|${b}` }, el("td", {}, `${a} & ${b}`),
    el("td", {}, fmtNumber(report.intersections[a][b])), el("td", {}, fmtNumber(report.matrix[a][b]))));
  const warnings = report.warnings.map((w) => el("li", { class: `warning ${w.kind}` }, el("b", {}, w.kind), " ", w.message));
  box.replaceChildren(
    rows.length ? el("table", {}, el("thead", {}, el("tr", {}, ["pair", "common", "Jaccard"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "hint" }, "no two segments share a member"),
    warnings.length ? el("ul", { id: "overlap-warnings" }, warnings) : el("p", { class: "hint" }, "no warnings"));
}

function fmtArm(arm) {
  return !arm || arm.rate === null || arm.rate === undefined ? "n/a" : `${(100 * arm.rate).toFixed(1)} % (${arm.count}/${arm.n})`;
}

async function refreshPerformance() {
  const box = document.getElementById("performance");
  let report;
  try {
    report = await api("/v1/analytics/performance");
  } catch (error) {
    if (error.status === 404) { box.replaceChildren(el("p", { class: "hint" }, error.message)); return; }
    throw error;
  }
  document.getElementById("performance-at").textContent = `goal ${report.goal} within ${report.within}; computed ${fmtTime(report.computed_at)}`;
  const rows = report.segments.map((seg) => {
    const c = seg.conversion;
    const ci = c.difference_ci ? ` [${(100 * c.difference_ci[0]).toFixed(1)}, ${(100 * c.difference_ci[1]).toFixed(1)}]` : "";
    return el("tr", { "data-segment": seg.segment }, el("th", {}, seg.segment), el("td", {}, fmtNumber(seg.entrants)),
      el("td", {}, fmtArm(c.arms.treatment || c.arms.all)), el("td", {}, c.arms.control ? fmtArm(c.arms.control) : "no holdout"),
      el("td", {}, c.difference === undefined || c.difference === null ? "—" : `${(100 * c.difference).toFixed(1)} pts${ci}`),
      el("td", {}, c.lift === undefined || c.lift === null ? "—" : `${(100 * c.lift).toFixed(0)} %`));
  });
  box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {},
    ["segment", "entered", "treatment", "holdout", "difference [CI]", "lift"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
}

// ---- wiring ----

function showError(error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    setStatus(`refused: ${error.message}`, "error");
    stop();
  } else {
    setStatus(`error: ${error.message}`, "error");
  }
}

function stop() {
  state.timers.forEach(clearInterval);
  state.timers = [];
  if (state.source) { state.source.close(); state.source = null; }
}

async function connect() {
  stop();
  if (!state.key) return;
  try {
    await refreshSegments();
  } catch (error) {
    showError(error);
    return;
  }
  setStatus("connected", "ok");
  connectStream();
  refreshModels().catch(showError);
  refreshOverlap().catch(showError);
  refreshPerformance().catch(showError);
  state.timers.push(setInterval(() => refreshOverlap().catch(showError), 30000));
  state.timers.push(setInterval(() => refreshPerformance().catch(showError), 60000));
  state.timers.push(setInterval(() => refreshSegments().catch(showError), 2000));
  state.timers.push(setInterval(() => refreshChart().catch(showError), 10000));
  state.timers.push(setInterval(() => refreshModels().catch(showError), 30000));
}

document.addEventListener("DOMContentLoaded", () => {
  const input = document.getElementById("api-key");
  document.getElementById("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.key = input.value.trim();
    sessionStorage.setItem(KEY_STORAGE, state.key);
    input.value = "";
    connect();
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = "";
    stop();
    setStatus("not connected: paste an API key (kept for this browser tab only)", "");
  });
  document.getElementById("lookup-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = document.getElementById("customer-id").value.trim();
    if (id) lookup(id);
  });
  for (const button of document.querySelectorAll("#ranges button")) {
    button.addEventListener("click", () => {
      state.range = Number(button.dataset.range);
      document.querySelectorAll("#ranges button").forEach((b) => b.classList.toggle("active", b === button));
      refreshChart().catch(showError);
    });
  }
  connect();
});
