// Equipment history: POST /api/resource-history/query once (progress polled meanwhile), then
// every view from its cached dataset (summary, trend, heatmap, detail, export ?query_id=…).

import { apiGet } from "./api.js";
import { heatmap, lineTrend, stackedBars } from "./charts.js";
import {
  $, failQuery, failView, queryString, renderKpis, runReportQuery, serverTable, setDefaultRange, setPageState, showChip,
  showError, showExport,
} from "./reports.js";
import { formatNumber } from "./table.js";

const API = "/api/resource-history";
const STATES = ["PRD", "SBY", "UDT", "SDT", "EGT", "NST"];
const state = { queryId: null, machine: null };
const pct = (v) => (v == null ? "—" : `${formatNumber(v, 1)}%`);
const hours = (v) => formatNumber(v, 1);
const selected = (id) => [...$(id).selectedOptions].map((o) => o.value);

function request() {
  return {
    start_date: $("start-date").value, end_date: $("end-date").value,
    workcenter_groups: selected("workcenter-groups"), families: selected("families"),
    locations: selected("locations"), machines: selected("machines"),
    is_production: $("is-production").value || null, is_key: $("is-key").value || null,
    is_monitor: $("is-monitor").value || null,
  };
}

const selection = () => ({ query_id: state.queryId, granularity: $("granularity").value, machines: state.machine ? [state.machine] : [] });

const detail = serverTable($("detail"), {
  pageSize: 50,
  columns: [
    { key: "machine", label: "Machine", nowrap: true }, { key: "workcenter_group", label: "Group" },
    { key: "period", label: "Period", nowrap: true },
    ...STATES.map((s) => ({ key: `${s.toLowerCase()}_hours`, label: s, numeric: true, format: hours })),
    { key: "ou_pct", label: "OU", numeric: true, format: pct },
    { key: "availability_pct", label: "Avail.", numeric: true, format: pct },
    { key: "yield_pct", label: "Yield", numeric: true, format: pct },
    { key: "oee_pct", label: "OEE", numeric: true, format: pct },
  ],
  fetchPage: (page, pageSize) => apiGet(`${API}/detail?${queryString({ ...selection(), page, page_size: pageSize })}`),
});

function fill(id, values, label = (v) => v) {
  $(id).replaceChildren(...values.map((v) => Object.assign(document.createElement("option"), { value: v, textContent: label(v) })));
}

async function loadOptions() {
  const list = await apiGet(`${API}/machines?limit=5000`);
  fill("workcenter-groups", list.options.workcenter_groups);
  fill("families", list.options.families);
  fill("locations", list.options.locations);
  fill("machines", list.machines.map((m) => m.machine));
}

async function drawViews() {
  const qs = queryString(selection());
  showChip("machine", state.machine);
  showExport(`${API}/export?${qs}`);
  setPageState("loading");
  try {
    const [summary, trend, heat] = await Promise.all([
      apiGet(`${API}/summary?${qs}`), apiGet(`${API}/trend?${qs}`),
      apiGet(`${API}/heatmap?${qs}&metric=${$("heat-metric").value}`),
    ]);
    const s = summary.summary;
    renderKpis($("kpis"), [
      { id: "ou", label: "OU", value: pct(s.ou_pct), note: "PRD / (PRD+SBY+UDT+SDT+EGT)" },
      { id: "availability", label: "Availability", value: pct(s.availability_pct), note: "(PRD+SBY+EGT) / all six" },
      { id: "yield", label: "Yield", value: pct(s.yield_pct), note: `output ${formatNumber(s.output_qty, 0)} · NG ${formatNumber(s.ng_qty, 0)}` },
      { id: "oee", label: "OEE", value: pct(s.oee_pct), note: "OU × yield" },
      { id: "prd", label: "PRD hours", value: hours(s.prd_hours), note: `of ${hours(s.total_hours)} h` },
      { id: "machines", label: "Machines", value: String(s.machines), note: "with E10 time or output" },
    ]);
    const x = trend.points.map((p) => p.period);
    await lineTrend($("trend-chart"), { percent: true, yTitle: "%", series: [
      { name: "OU %", x, y: trend.points.map((p) => p.ou_pct) },
      { name: "Availability %", x, y: trend.points.map((p) => p.availability_pct) },
      { name: "OEE %", x, y: trend.points.map((p) => p.oee_pct) },
    ] });
    await stackedBars($("state-chart"), { x, categoryAxis: "date", yTitle: "Hours",
      series: STATES.map((st) => ({ name: st, y: trend.points.map((p) => p[`${st.toLowerCase()}_hours`]) })) });
    await heatmap($("heatmap"), { x: heat.periods, y: heat.machines, z: heat.z, percent: true, colorTitle: "%",
      onClick: (_period, machine) => { state.machine = machine; drawViews(); } });
    await detail.reload();
    setPageState("ready");
  } catch (error) {
    failView($("detail"), error);
  }
}

async function pollProgress(params, stop) {
  while (!stop.done) {
    try {
      const p = await apiGet(`${API}/progress?${queryString(params)}`, { retries: 0 });
      if (!stop.done && p.total) $("meta").textContent = `Reading equipment states… ${p.completed}/${p.total} chunks (${p.pct}%)`;
    } catch { /* progress is best effort */ }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function runQuery(event) {
  event?.preventDefault();
  state.machine = null;
  setPageState("loading");
  $("meta").textContent = "Reading equipment states…";
  const params = request();
  const stop = { done: false };
  pollProgress(params, stop);
  try {
    const body = await runReportQuery(`${API}/query`, { ...params, granularity: $("granularity").value });
    stop.done = true;
    state.queryId = body.query_id;
    $("meta").textContent = `${body.rows.toLocaleString("en-US")} rows in ${body.chunks} chunk(s) · read ${body.as_of.replace("T", " ")} · quality ${body.quality.status} · query ${body.query_id}`;
    await drawViews();
  } catch (error) {
    stop.done = true;
    failQuery($("detail"), error);
  }
}

$("query-form").addEventListener("submit", runQuery);
$("granularity").addEventListener("change", () => state.queryId && drawViews());
$("heat-metric").addEventListener("change", () => state.queryId && drawViews());
$("clear-machine").addEventListener("click", () => { state.machine = null; drawViews(); });
setDefaultRange();
setPageState("idle");
loadOptions().then(() => { $("query-form").dataset.state = "ready"; }).catch((error) => showError($("detail"), error));
