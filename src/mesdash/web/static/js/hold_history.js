// Hold history: POST /api/hold-history/query once per range, then every view from its
// cached dataset (GET …/summary, trend, pareto, durations, list, export ?query_id=…).

import { apiGet } from "./api.js";
import { barLineTrend, paretoChart, stackedBars } from "./charts.js";
import {
  $, checkedValues, failQuery, failView, queryString, renderKpis, runReportQuery, serverTable, setDefaultRange,
  setPageState, showChip, showExport,
} from "./reports.js";
import { createTable, formatInt, formatNumber, formatTimestamp } from "./table.js";

const API = "/api/hold-history";
const TODAY_REFRESH_MS = 60_000;
const state = { queryId: null, trend: null, day: null };
const form = $("query-form");

function selection() {
  return {
    query_id: state.queryId,
    hold_type: $("hold-type").value,
    record_type: checkedValues(form, "record_type"),
    day: state.day,
  };
}

const LIST_COLUMNS = [
  { key: "CONTAINERNAME", label: "Lot", nowrap: true },
  { key: "HOLDREASONNAME", label: "Reason" },
  { key: "HOLD_TYPE", label: "Type" },
  { key: "WORKCENTERNAME", label: "Work center" },
  { key: "HOLDTXNDATE", label: "Held", format: formatTimestamp, nowrap: true },
  { key: "RELEASETXNDATE", label: "Released", format: formatTimestamp, nowrap: true },
  { key: "HOLD_STATUS", label: "Status" },
  { key: "HOLD_HOURS", label: "Hours", numeric: true, format: (v) => formatNumber(v, 1) },
  { key: "QTY", label: "Qty", numeric: true, format: formatInt },
];
const list = serverTable($("hold-list"), {
  columns: LIST_COLUMNS,
  pageSize: 50,
  fetchPage: (page, pageSize) => apiGet(`${API}/list?${queryString({ ...selection(), page, page_size: pageSize })}`),
});

function drawTrend() {
  const points = state.trend.series[$("hold-type").value];
  const x = points.map((p) => p.day);
  return barLineTrend($("trend-chart"), {
    x,
    bars: [
      { name: "New", y: points.map((p) => p.new) },
      { name: "Released", y: points.map((p) => p.released) },
      { name: "Future holds", y: points.map((p) => p.future) },
      { name: "Repeated quality", y: points.map((p) => p.repeat_quality) },
    ],
    lines: [{ name: "On hand (qty)", y: points.map((p) => p.on_hand_qty) }],
    yTitle: "Holds", y2Title: "On-hand quantity",
    onClick: (day) => { state.day = String(day).slice(0, 10); refreshSelection(); },
  });
}

function drawKpis(summary) {
  const k = summary.kpis;
  renderKpis($("kpis"), [
    { id: "new", label: "New holds", value: formatInt(k.new), note: `${formatNumber(k.avg_new_per_day, 1)} per day` },
    { id: "released", label: "Released", value: formatInt(k.released), note: `${formatNumber(k.avg_released_per_day, 1)} per day` },
    { id: "on-hand", label: "On hand at end", value: formatInt(k.on_hand_end), note: `qty ${formatInt(k.on_hand_qty_end)} · peak ${formatInt(k.peak_on_hand)}` },
    { id: "future", label: "Future holds", value: formatInt(k.future), note: "set before the lot arrived" },
    { id: "repeat", label: "Repeated quality", value: formatInt(k.repeat_quality), note: "lot held for quality again" },
    { id: "release-hours", label: "Avg hours to release", value: formatNumber(k.avg_release_hours, 1), note: `${formatInt(k.selected_records)} selected records` },
  ]);
}

function drawDurations(view) {
  const buckets = view.buckets.released.map((b) => b.bucket);
  stackedBars($("duration-chart"), {
    x: buckets, barmode: "group", yTitle: "Holds",
    series: [{ name: "Released", y: view.buckets.released.map((b) => b.holds) },
             { name: "Still on hold", y: view.buckets.on_hold.map((b) => b.holds) }],
  });
  const rows = ["released", "on_hold"].flatMap((status) => view.buckets[status].map((b) => ({ status: status === "released" ? "Released" : "On hold", ...b })));
  createTable($("duration-table"), {
    pageSize: 8,
    columns: [
      { key: "status", label: "Status" }, { key: "bucket", label: "Bucket" },
      { key: "holds", label: "Holds", numeric: true, format: formatInt },
      { key: "avg_hours", label: "Avg h", numeric: true, format: (v) => formatNumber(v, 1) },
      { key: "max_hours", label: "Max h", numeric: true, format: (v) => formatNumber(v, 1) },
    ],
  }).setRows(rows);
}

async function refreshSelection() {
  const sel = selection();
  showChip("day", state.day);
  showExport(`${API}/export?${queryString(sel)}`);
  setPageState("loading");
  try {
    const qs = queryString(sel);
    const [summary, pareto, durations] = await Promise.all([
      apiGet(`${API}/summary?${qs}`), apiGet(`${API}/pareto?${qs}`), apiGet(`${API}/durations?${qs}`),
    ]);
    drawKpis(summary);
    await paretoChart($("pareto-chart"), { labels: pareto.items.map((i) => i.reason), values: pareto.items.map((i) => i.holds), valueTitle: "Holds" });
    drawDurations(durations);
    await list.reload();
    setPageState("ready");
  } catch (error) {
    failView($("hold-list"), error);
  }
}

async function runQuery(event) {
  event?.preventDefault();
  state.day = null;
  setPageState("loading");
  $("meta").textContent = "Reading holds…";
  try {
    const body = await runReportQuery(`${API}/query`, {
      start_date: $("start-date").value, end_date: $("end-date").value,
      hold_type: $("hold-type").value, record_type: checkedValues(form, "record_type"),
    }, { onProgress: (p) => { $("meta").textContent = `Reading holds… ${p.completed ?? 0}/${p.total ?? "?"} chunks`; } });
    state.queryId = body.query_id;
    state.trend = await apiGet(`${API}/trend?${queryString({ query_id: body.query_id })}`);
    $("meta").textContent = `${formatInt(body.rows)} holds read in ${body.chunks} chunk(s) at ${body.as_of.replace("T", " ")} · quality ${body.quality.status} · query ${body.query_id}`;
    await drawTrend();
    await refreshSelection();
  } catch (error) {
    failQuery($("hold-list"), error);
  }
}

async function refreshToday() {
  try {
    const today = await apiGet(`${API}/today`);
    for (const [key, id] of [["on_hold", "today-on-hold"], ["new", "today-new"], ["released", "today-released"]]) {
      const all = today.snapshot[key];
      $(id).textContent = formatInt(all.all.holds);
      $(`${id}-note`).textContent = `quality ${formatInt(all.quality.holds)} · qty ${formatInt(all.all.qty)}`;
    }
    $("today-as-of").textContent = today.as_of.replace("T", " ").slice(0, 16);
    $("today").dataset.state = "ready";
  } catch {
    $("today").dataset.state = "error";
  }
}

form.addEventListener("submit", runQuery);
$("hold-type").addEventListener("change", () => { if (state.trend) { drawTrend(); refreshSelection(); } });
form.querySelectorAll('input[name="record_type"]').forEach((box) => box.addEventListener("change", () => { if (state.queryId) refreshSelection(); }));
$("clear-day").addEventListener("click", () => { state.day = null; refreshSelection(); });
setDefaultRange();
refreshToday();
setInterval(refreshToday, TODAY_REFRESH_MS);
setPageState("idle");
