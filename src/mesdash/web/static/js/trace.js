// The lot trace page: resolve what was typed → genealogy graph → events per domain, inline
// for small traces, streamed (NDJSON) from a trace job for large ones, with progress.
import { ApiError, apiGet, apiPost, apiRequest, hideBanner, showBanner, streamNdjson } from "./api.js";
import { draw } from "./charts.js";
import { createTable, formatInt, formatTimestamp } from "./table.js";

const $ = (id) => document.getElementById(id);
const LABELS = {
  history: "History", rejects: "Rejects", holds: "Holds", materials: "Materials", jobs: "Equipment jobs",
  upstream_history: "Upstream history", downstream_rejects: "Downstream rejects",
};
const NODE_COLORS = { WAFER: "#8a8f2a", GA: "#1f6fb2", GC: "#2f9e6e", GD: "#c0436b", LOT: "#7a5cc2", UNKNOWN: "#9aa3ad" };
const MAX_COLUMNS = 12;

const state = { domains: [], rows: {}, active: null, focus: null, names: {}, table: null, job: null, abort: null };

// ------------------------------------------------------------------------ input -------------
function values() {
  return $("trace-values").value.split(/[\n,;\t]+/).map((v) => v.trim()).filter(Boolean);
}

function chosenDomains() {
  return [...document.querySelectorAll('#domains input[name="domain"]:checked')].map((el) => el.value);
}

function setMeta(text) { $("meta").textContent = text; }

// ---------------------------------------------------------------------- resolved ------------
function showResolved(resolved) {
  const missing = resolved.not_found || [];
  $("not-found").hidden = missing.length === 0;
  $("not-found").textContent = missing.length
    ? `Not found (${missing.length}): ${missing.slice(0, 20).join(", ")}${missing.length > 20 ? " …" : ""}`
    : "";
  $("resolved-card").hidden = false;
  $("resolved-note").textContent = `${formatInt(resolved.data.length)} lot(s)`;
  createTable($("resolved-table"), {
    columns: [
      { key: "input_value", label: "Input" }, { key: "lot_id", label: "Lot" },
      { key: "container_id", label: "Container id" }, { key: "mfgorder_name", label: "Work order" },
      { key: "wafer_lot", label: "Wafer lot" },
    ],
    pageSize: 10,
  }).setRows(resolved.data);
  for (const lot of resolved.data) state.names[lot.container_id] = lot.lot_id;
}

// ---------------------------------------------------------------------- genealogy -----------
function drawGraph(graph) {
  $("graph-card").hidden = false;
  const at = Object.fromEntries(graph.nodes.map((n) => [n.id, n]));
  for (const n of graph.nodes) state.names[n.id] = n.name;
  const ex = [], ey = [];
  for (const e of graph.edges) {
    const a = at[e.from_cid], b = at[e.to_cid];
    if (a && b) ex.push(a.x, b.x, null), ey.push(a.y, b.y, null);
  }
  const traces = [{ x: ex, y: ey, mode: "lines", line: { color: "#c3cad5", width: 1 }, hoverinfo: "skip", showlegend: false }];
  for (const type of Object.keys(NODE_COLORS)) {
    const members = graph.nodes.filter((n) => n.type === type);
    if (!members.length) continue;
    traces.push({
      x: members.map((n) => n.x), y: members.map((n) => n.y), customdata: members.map((n) => n.id),
      text: members.map((n) => n.name), mode: "markers+text", name: type, textposition: "top center",
      textfont: { size: 11 }, hovertemplate: "%{text}<br>%{customdata}<extra>" + type + "</extra>",
      marker: {
        size: members.map((n) => (n.seed ? 16 : 11)), color: NODE_COLORS[type],
        line: { width: members.map((n) => (n.seed ? 2.5 : 0)), color: "#17202b" },
      },
    });
  }
  const note = graph.collapsed ? `${graph.shown} of ${graph.node_count} nodes shown (nearest the seeds)` : `${graph.node_count} nodes`;
  $("graph-note").textContent = `${note} · ancestors left, descendants right · click a node to focus its events`;
  const el = $("graph");
  return draw(el, traces, {
    xaxis: { title: { text: "generation (0 = the lots you asked for)" }, dtick: 1, zeroline: false },
    yaxis: { visible: false }, legend: { orientation: "h", y: -0.2 }, hovermode: "closest",
  }).then(() => {
    if (el.dataset.clickBound) return;
    el.dataset.clickBound = "1";
    el.on("plotly_click", (ev) => { const id = ev?.points?.[0]?.customdata; if (id) setFocus(id); });
  });
}

function setFocus(cid) {
  state.focus = cid;
  $("focus-chip").hidden = !cid;
  $("focus-name").textContent = cid ? state.names[cid] || cid : "";
  renderTab();
}

// -------------------------------------------------------------------------- tabs ------------
function resetTabs(domains) {
  state.domains = domains;
  state.rows = Object.fromEntries(domains.map((d) => [d, []]));
  state.active = domains[0];
  state.focus = null;
  $("focus-chip").hidden = true;
  $("events-card").hidden = false;
  $("tabs").replaceChildren(...domains.map((d) => {
    const tab = document.createElement("button");
    tab.type = "button";
    tab.className = "tab";
    tab.setAttribute("role", "tab");
    tab.dataset.domain = d;
    tab.innerHTML = `<span></span><span class="count">0</span>`;
    tab.firstChild.textContent = LABELS[d] || d;
    tab.addEventListener("click", () => { state.active = d; renderTab(); });
    return tab;
  }));
  renderTab();
}

function updateCounts() {
  for (const tab of $("tabs").children) {
    tab.querySelector(".count").textContent = formatInt(state.rows[tab.dataset.domain].length);
    tab.setAttribute("aria-selected", String(tab.dataset.domain === state.active));
  }
}

function columnsOf(rows) {
  const keys = [];
  for (const row of rows.slice(0, 50)) for (const k of Object.keys(row)) if (!keys.includes(k)) keys.push(k);
  const shown = ["CONTAINERID", ...keys.filter((k) => k !== "CONTAINERID")].slice(0, MAX_COLUMNS);
  return shown.map((key) => key === "CONTAINERID"
    ? { key, label: "Lot", value: (r) => state.names[r.CONTAINERID] || r.CONTAINERID, nowrap: true }
    : { key, label: key, nowrap: true, format: (v) => (/DATE|TIME/.test(key) ? formatTimestamp(v) : v ?? "—") });
}

function renderTab() {
  updateCounts();
  const panel = $("tab-panel");
  const all = state.rows[state.active] || [];
  const rows = state.focus ? all.filter((r) => r.CONTAINERID === state.focus) : all;
  const tools = document.createElement("div");
  tools.className = "tab-tools";
  const info = document.createElement("span");
  info.className = "muted";
  info.textContent = `${formatInt(rows.length)} row(s)${state.focus ? " for the focused lot" : ""}`;
  const csv = document.createElement("button");
  csv.type = "button";
  csv.className = "button small";
  csv.id = "download-csv";
  csv.textContent = "Download CSV";
  csv.disabled = rows.length === 0;
  csv.addEventListener("click", () => downloadCsv(state.active, rows));
  tools.append(info, csv);
  const holder = document.createElement("div");
  panel.replaceChildren(tools, holder);
  createTable(holder, { columns: columnsOf(rows), pageSize: 20, empty: "No events" }).setRows(rows);
}

function addRows(domain, rows) {
  state.rows[domain].push(...rows);
  if (domain === state.active) renderTab();
  else updateCounts();
}

function downloadCsv(domain, rows) {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v) => (v == null ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v));
  const text = [keys.join(","), ...rows.map((r) => keys.map((k) => cell(r[k])).join(","))].join("\n");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  link.download = `trace-${domain}.csv`;
  link.click();
  URL.revokeObjectURL(link.href);
}

// ------------------------------------------------------------------------ progress ----------
function showProgress(pct, text) {
  $("progress").hidden = false;
  $("progress-bar").value = pct;
  $("progress-text").textContent = text;
}

async function pollStatus(statusUrl, signal) {
  while (!signal.aborted) {
    try {
      const status = await apiGet(statusUrl, { signal });
      const p = status.progress;
      showProgress(p.pct, `${status.status} · ${p.stage || ""} · ${formatInt(p.completed)} / ${formatInt(p.total)} batches`);
      if (["finished", "failed", "cancelled"].includes(status.status)) return status;
    } catch (exc) {
      if (signal.aborted) return null;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return null;
}

// ------------------------------------------------------------------------- events -----------
async function followJob(job) {
  state.job = job;
  $("cancel").hidden = false;
  const controller = new AbortController();
  state.abort = controller;
  pollStatus(job.status_url, controller.signal);
  let nextBatch = 0;
  let outcome = null;
  for (let attempt = 0; attempt < 3 && !outcome; attempt += 1) {
    try {
      await streamNdjson(`${job.stream_url}?from_batch=${nextBatch}`, (msg) => {
        if (msg.type === "meta") setMeta(`Trace job ${msg.job_id}: ${formatInt(msg.container_count)} lots; rows arrive as they are read.`);
        else if (msg.type === "records") { addRows(msg.domain, msg.rows); nextBatch = msg.batch + 1; }
        else if (msg.type === "quality" && msg.status !== "complete") showBanner(`Some events are missing: ${msg.reasons.join("; ")}`, "warn");
        else if (msg.type === "complete") outcome = msg;
        else if (msg.type === "error") outcome = msg;
      }, { signal: controller.signal });
      if (!outcome) await new Promise((r) => setTimeout(r, 1000)); // the connection dropped: resume
    } catch (exc) {
      if (controller.signal.aborted) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  controller.abort();
  $("cancel").hidden = true;
  if (outcome?.type === "complete") {
    showProgress(100, `finished · ${formatInt(outcome.rows)} rows`);
    hideBanner();
  } else if (outcome?.type === "error") {
    showBanner(outcome.code === "CANCELLED" ? "The trace was cancelled." : `The trace stopped: ${outcome.detail}. Run it again to resume where it stopped.`, "warn");
  }
}

function fillInline(result, domains) {
  for (const d of domains) {
    const byLot = result.results[d]?.data || {};
    addRows(d, Object.values(byLot).flat());
  }
  setMeta(`${formatInt(result.container_ids.length)} lots traced inline.`);
  showProgress(100, "complete");
}

function pageState(value) { $("main").dataset.state = value; }

async function run(event) {
  event.preventDefault();
  state.abort?.abort();
  pageState("loading");
  hideBanner();
  const typed = values();
  const domains = chosenDomains();
  if (!typed.length || !domains.length) { setMeta("Type at least one value and pick at least one event domain."); return; }
  $("run").disabled = true;
  $("progress").hidden = true;
  try {
    setMeta("Resolving…");
    const resolved = await apiPost("/api/trace/seed-resolve", { input_type: $("input-type").value, values: typed });
    showResolved(resolved);
    const ids = resolved.data.map((d) => d.container_id);
    if (!ids.length) { setMeta("Nothing to trace: no value matched a lot."); return; }
    setMeta("Reading the genealogy…");
    const lineage = $("lineage").value;
    if (lineage !== "none") await drawGraph(await apiPost("/api/trace/genealogy", { container_ids: ids }));
    else $("graph-card").hidden = true;
    resetTabs(domains);
    showProgress(0, "starting…");
    setMeta("Reading events…");
    const answer = await apiRequest("POST", "/api/trace/events", { body: { container_ids: ids, domains, lineage } });
    if (answer.job_id) await followJob(answer);
    else fillInline(answer, domains);
    pageState("ready");
  } catch (exc) {
    if (exc instanceof ApiError && !exc.retryable) showBanner(`${exc.detail} (${exc.code})`, "warn");
    setMeta("");
    pageState("error");
  } finally {
    $("run").disabled = false;
  }
}

async function cancelJob() {
  if (!state.job) return;
  await apiRequest("DELETE", state.job.status_url);
}

$("trace-form").addEventListener("submit", run);
$("cancel").addEventListener("click", cancelJob);
$("clear-focus").addEventListener("click", () => setFocus(null));
const preset = new URLSearchParams(location.search).get("lots");
if (preset) { $("trace-values").value = preset.split(",").join("\n"); $("trace-form").requestSubmit(); }
