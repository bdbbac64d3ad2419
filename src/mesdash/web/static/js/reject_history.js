// Reject history: POST /api/reject-history/query once (a long one answers 202 and runs as a
// job: progress bar), then every view from its cached dataset (GET …/summary, trend,
// reason-pareto, pareto, list, export ?query_id=…). A click on a pareto bar toggles that
// item in the cross-filter selection, which narrows every view (a pareto keeps its own).

import { apiGet, apiPost } from "./api.js";
import { barLineTrend, onPointClick, paretoChart } from "./charts.js";
import { $, failQuery, failView, followJob, renderKpis, serverTable, setDefaultRange, setPageState, showExport } from "./reports.js";
import { formatInt, formatNumber, formatTimestamp } from "./table.js";

const API = "/api/reject-history";
const DIMENSION_LABELS = { reason: "reason", package: "package", type: "type", workcenter_group: "work-center group", machine: "machine" };
const state = { queryId: null, selection: {} };
const form = $("query-form");

const percent = (v) => (v == null ? "—" : `${formatNumber(100 * v, 2)} %`);
const splitValues = (text) => text.split(/[\n,]/).map((v) => v.trim()).filter(Boolean);
const mode = () => form.querySelector('input[name="mode"]:checked').value;

/** query_id, the cross-filter selections (repeated params) and any extra parameters. */
function viewQuery(extra = {}) {
  const search = new URLSearchParams({ query_id: state.queryId });
  for (const [dimension, items] of Object.entries(state.selection)) items.forEach((item) => search.append(dimension, item));
  for (const [key, value] of Object.entries(extra)) if (value != null) search.set(key, value);
  return search.toString();
}

const LIST_COLUMNS = [
  { key: "TXNDATE", label: "Time", format: formatTimestamp, nowrap: true },
  { key: "CONTAINERNAME", label: "Lot", nowrap: true },
  { key: "MFGORDERNAME", label: "Work order", nowrap: true },
  { key: "PRODUCTLINENAME", label: "Package" },
  { key: "WORKCENTER_GROUP", label: "WC group" },
  { key: "EQUIPMENTNAME", label: "Machine" },
  { key: "LOSSREASONNAME", label: "Reason" },
  { key: "CHARGED_OFF_QTY", label: "Charged-off", numeric: true, format: formatInt },
  { key: "DEFECTQTY", label: "Defect", numeric: true, format: formatInt },
  { key: "MOVEINQTY", label: "Move-in", numeric: true, format: formatInt },
];
const list = serverTable($("reject-list"), {
  columns: LIST_COLUMNS,
  pageSize: 50,
  sortable: true,
  sort: "-TXNDATE",
  fetchPage: (page, pageSize, sort) => apiGet(`${API}/list?${viewQuery({ page, page_size: pageSize, sort })}`),
});

function drawKpis(s) {
  renderKpis($("kpis"), [
    { id: "charged-off", label: "Charged-off", value: formatInt(s.charged_off_qty), note: `rate ${percent(s.charged_off_rate)} of move-in` },
    { id: "not-charged-off", label: "Not charged-off", value: formatInt(s.not_charged_off_qty), note: `defect rate ${percent(s.defect_rate)}` },
    { id: "total", label: "Total", value: formatInt(s.total_qty), note: `charged-off share ${percent(s.charged_off_share)}` },
    { id: "lots", label: "Affected lots", value: formatInt(s.affected_lots), note: `${formatInt(s.events)} reject events` },
    { id: "work-orders", label: "Affected work orders", value: formatInt(s.affected_work_orders), note: `move-in ${formatInt(s.movein_qty)}` },
  ]);
}

function drawTrend(view) {
  const x = view.points.map((p) => p.bucket);
  return barLineTrend($("trend-chart"), {
    x,
    bars: [
      { name: "Charged-off", y: view.points.map((p) => p.charged_off_qty) },
      { name: "Not charged-off", y: view.points.map((p) => p.not_charged_off_qty) },
    ],
    lines: [{ name: "Charged-off rate %", y: view.points.map((p) => (p.charged_off_rate == null ? null : 100 * p.charged_off_rate)) }],
    yTitle: "Quantity", y2Title: "Rate %",
  });
}

function toggle(dimension, item) {
  const items = new Set(state.selection[dimension] || []);
  if (items.has(String(item))) items.delete(String(item));
  else items.add(String(item));
  if (items.size) state.selection[dimension] = [...items];
  else delete state.selection[dimension];
  refreshViews();
}

async function drawPareto(el, dimension, view) {
  el.dataset.dimension = dimension;
  el.dataset.items = String(view.items.length);
  await paretoChart(el, {
    labels: view.items.map((i) => i.item), values: view.items.map((i) => i.qty),
    valueTitle: $("measure").selectedOptions[0].textContent, top: 25,
  });
  onPointClick(el, (x) => toggle(el.dataset.dimension, x));
}

function showSelection() {
  const parts = Object.entries(state.selection).map(([d, items]) => `${DIMENSION_LABELS[d]}: ${items.join(", ")}`);
  $("selection").hidden = !parts.length;
  $("selection-text").textContent = parts.length ? `Selected — ${parts.join(" · ")}` : "";
}

async function refreshViews() {
  showSelection();
  showExport(`${API}/export?${viewQuery()}`);
  setPageState("loading");
  try {
    const scope = $("top80").checked ? "top80" : "all";
    const measure = $("measure").value;
    const third = $("third-dimension").value;
    const [summary, trend, reasons, packages, others] = await Promise.all([
      apiGet(`${API}/summary?${viewQuery()}`),
      apiGet(`${API}/trend?${viewQuery({ granularity: $("granularity").value })}`),
      apiGet(`${API}/reason-pareto?${viewQuery({ measure, scope })}`),
      apiGet(`${API}/pareto?${viewQuery({ dimension: "package", measure, scope })}`),
      apiGet(`${API}/pareto?${viewQuery({ dimension: third, measure, scope })}`),
    ]);
    drawKpis(summary.summary);
    await drawTrend(trend);
    await drawPareto($("pareto-reason"), "reason", reasons);
    await drawPareto($("pareto-package"), "package", packages);
    await drawPareto($("pareto-third"), third, others);
    await list.reload();
    setPageState("ready");
  } catch (error) {
    if (error.code === "CACHE_EXPIRED") $("meta").textContent = "The cached result expired: run the query again.";
    failView($("reject-list"), error);
  }
}

function request() {
  const body = {
    packages: splitValues($("packages").value),
    reasons: splitValues($("reasons").value),
    include_excluded_scrap: $("include-excluded-scrap").checked,
    exclude_material_scrap: $("exclude-material-scrap").checked,
    exclude_pb_diode: $("exclude-pb-diode").checked,
  };
  if (mode() === "date") return { ...body, start_date: $("start-date").value, end_date: $("end-date").value };
  return { ...body, container_type: $("container-type").value, containers: splitValues($("containers").value) };
}

function showProgress(progress) {
  $("progress-box").hidden = false;
  $("progress").value = progress.pct || 0;
  $("progress-text").textContent = `${progress.stage || "queued"} · ${formatInt(progress.completed || 0)} of ${formatInt(progress.total || 0)} chunks`;
}

async function runQuery(event) {
  event?.preventDefault();
  state.selection = {};
  setPageState("loading");
  $("run").disabled = true;
  $("meta").textContent = "Reading rejects…";
  try {
    let body = await apiPost(`${API}/query`, request());
    if (body.job_id) {
      showProgress({ stage: "queued" });
      body = await followJob(body, showProgress);
    }
    state.queryId = body.query_id;
    const quality = body.quality.status === "complete" ? "complete" : `${body.quality.status} (${body.quality.failed_ranges.join(", ")})`;
    const missing = body.not_found?.length ? ` · not found: ${body.not_found.join(", ")}` : "";
    $("meta").textContent = `${formatInt(body.rows)} reject rows in ${body.chunks} chunk(s)${body.spilled ? " (spooled)" : ""} as of ${body.as_of.replace("T", " ")} · quality ${quality} · query ${body.query_id}${missing}`;
    await refreshViews();
  } catch (error) {
    failQuery($("reject-list"), error);
  } finally {
    $("run").disabled = false;
    $("progress-box").hidden = true;
  }
}

function showMode() {
  form.querySelectorAll("[data-mode]").forEach((el) => {
    const shown = el.dataset.mode === mode();
    el.hidden = !shown;
    el.querySelectorAll("input").forEach((input) => { input.required = shown && input.type === "date"; });
  });
}

form.addEventListener("submit", runQuery);
form.querySelectorAll('input[name="mode"]').forEach((radio) => radio.addEventListener("change", showMode));
for (const id of ["granularity", "top80", "measure", "third-dimension"]) {
  $(id).addEventListener("change", () => { if (state.queryId) refreshViews(); });
}
$("clear-selection").addEventListener("click", () => { state.selection = {}; refreshViews(); });
setDefaultRange();
showMode();
setPageState("idle");
