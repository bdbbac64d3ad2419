// Mid-section defect page: GET /api/mid-section-defect/analysis (dates) or POST (lots),
// then KPI cards, the ranked suspects, Top-10 + "other" paretos, the daily trend and detail.

import { apiGet, apiPost, apiUrl, showBanner, hideBanner } from "./api.js";
import { barChart, lineTrend } from "./charts.js";
import { createTable, formatInt, formatNumber } from "./table.js";

const API = "/api/mid-section-defect";
const $ = (id) => document.getElementById(id);
const pct = (v) => (v == null ? "—" : `${(100 * v).toFixed(3)}%`);
const sci = (v) => (v == null ? "—" : Number(v).toExponential(2));
const label = (i) => (i.dimension === "material" ? `${i.name} (${i.id})` : i.name) || "—";

function topTen(items) {
  const top = items.slice(0, 10);
  const rest = items.slice(10);
  const labels = top.map(label);
  const values = top.map((i) => i.defect_qty);
  if (rest.length) {
    labels.push(`other (${rest.length})`);
    values.push(rest.reduce((s, i) => s + i.defect_qty, 0));
  }
  return { labels, values };
}

function renderKpi(kpi) {
  $("k-lots").textContent = formatInt(kpi.lots);
  $("k-defective").textContent = `${formatInt(kpi.defective_lots)} with defects`;
  $("k-input").textContent = formatInt(kpi.input_qty);
  $("k-defect").textContent = formatInt(kpi.defect_qty);
  $("k-rate").textContent = `rate ${pct(kpi.defect_rate)}`;
  $("k-reason").textContent = kpi.top_reason || "—";
  $("k-machines").textContent = `${formatInt(kpi.machines_involved)} upstream machines`;
}

let current = null; // the analysis on screen

function suspectButton(row) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link suspect-open";
  button.textContent = label(row);
  button.addEventListener("click", () => openSuspect(row).catch((err) => showBanner(err.message || String(err), "error")));
  return button;
}

async function openSuspect(row) {
  const card = $("suspect-card");
  card.hidden = false;
  card.dataset.state = "loading";
  $("suspect-title").textContent = `Suspect #${row.rank}: ${row.dimension} ${label(row)}`;
  $("suspect-note").textContent = `${formatInt(row.lot_count)} lots, ${formatInt(row.defective_lots)} defective, lift ${formatNumber(row.lift, 2)}, q ${sci(row.q_value)}`;
  const found = await apiGet(`${API}/analysis/suspect?query_id=${current.query_id}&rank=${row.rank}`);
  const line = (points, name) => ({ name, x: points.map((d) => d.day), y: points.map((d) => 100 * (d.defect_rate || 0)) });
  lineTrend($("c-suspect"), { series: [line(found.daily, label(row)), line(found.rest_daily, "rest of the cohort")], yTitle: "Defect rate", percent: true });
  const machine = (row.dimension === "machine" || row.dimension === "detection_machine") && row.id;
  $("jobs-title").hidden = !machine;
  $("suspect-jobs").replaceChildren();
  if (machine) {
    const asOf = current.end_date ? `&as_of=${current.end_date}` : "";
    const jobs = await apiGet(`/api/query-tool/equipment-recent-jobs/${encodeURIComponent(row.id)}?days=90&limit=10${asOf}`);
    createTable($("suspect-jobs"), {
      columns: [
        { key: "JOBORDERNAME", label: "Job" },
        { key: "JOBMODELNAME", label: "Model" },
        { key: "JOBSTATUS", label: "Status" },
        { key: "CREATEDATE", label: "Created" },
        { key: "CAUSECODENAME", label: "Cause" },
        { key: "SYMPTOMCODENAME", label: "Symptom" },
      ],
      pageSize: 10, empty: "No jobs in the 90 days up to the analysis end",
    }).setRows(jobs.data);
  }
  card.dataset.state = "ready";
  card.scrollIntoView({ block: "start" });
}

function renderSuspects(items) {
  const table = createTable($("suspects-table"), {
    columns: [
      { key: "rank", label: "#", numeric: true },
      { key: "dimension", label: "Dimension" },
      { key: "name", label: "Value", value: label, render: suspectButton },
      { key: "workcenter_group", label: "Station group" },
      { key: "lot_count", label: "Lots", numeric: true, format: formatInt },
      { key: "defective_lots", label: "Defective lots", numeric: true, format: formatInt },
      { key: "defect_rate", label: "Defect rate", numeric: true, format: pct },
      { key: "lift", label: "Lift", numeric: true, format: (v) => formatNumber(v, 2) },
      { key: "p_value", label: "p", numeric: true, format: sci },
      { key: "q_value", label: "q", numeric: true, format: sci },
    ],
    pageSize: 15, sortKey: "rank", sortDir: "asc", empty: "No value reaches the minimum lot count",
  });
  table.setRows(items);
}

function renderCharts(charts) {
  for (const [name, items] of Object.entries(charts)) {
    const el = $(`c-${name}`);
    if (!el) continue;
    const { labels, values } = topTen(items);
    barChart(el, { x: values, y: labels, orientation: "h", valueLabels: true, xTitle: "Defect qty" });
  }
}

function renderForward(fwd) {
  $("forward-card").hidden = !fwd;
  if (!fwd) return;
  $("forward-note").textContent = `${formatInt(fwd.defective_lots)} defective lots, ${formatInt(fwd.descendants)} descendants; amplification ${formatNumber(fwd.amplification, 3)}`;
  createTable($("forward-table"), {
    columns: [
      { key: "workcenter_group", label: "Group" },
      { key: "lots_reached", label: "Lots reached", numeric: true, format: formatInt },
      { key: "input_qty", label: "Input", numeric: true, format: formatInt },
      { key: "reject_qty", label: "Rejects", numeric: true, format: formatInt },
      { key: "reject_rate", label: "Rate", numeric: true, format: pct },
      { key: "amplification", label: "Amplification", numeric: true, format: (v) => formatNumber(v, 3) },
    ],
    pageSize: 15, sortKey: "order", sortDir: "asc",
  }).setRows(fwd.by_group);
}

async function renderDetail(queryId) {
  const page = await apiGet(`${API}/analysis/detail?query_id=${queryId}&page_size=500`);
  createTable($("detail-table"), {
    columns: [
      { key: "lot_id", label: "Lot" },
      { key: "detection_day", label: "Day" },
      { key: "loss_reason", label: "Reason" },
      { key: "defect_qty", label: "Defects", numeric: true, format: formatInt },
      { key: "input_qty", label: "Input", numeric: true, format: formatInt },
      { key: "detection_machines", label: "Tester" },
      { key: "upstream_machines", label: "Upstream machines" },
      { key: "wafer_roots", label: "Wafer lots" },
    ],
    pageSize: 20, sortKey: "defect_qty", sortDir: "desc",
  }).setRows(page.data);
  const link = $("export");
  link.href = apiUrl(`${API}/export?query_id=${queryId}`);
  link.hidden = false;
  $("msd-meta").textContent += ` · detail: ${formatInt(page.total)} rows (first 500 shown)`;
}

async function run(event) {
  event?.preventDefault();
  const main = document.getElementById("main");
  main.dataset.state = "loading";
  const form = {
    station: $("f-station").value, start_date: $("f-start").value, end_date: $("f-end").value,
    direction: $("f-direction").value,
  };
  const reasons = $("f-reasons").value.split(",").map((s) => s.trim()).filter(Boolean);
  const lots = $("f-lots").value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  $("msd-meta").textContent = "Analyzing…";
  try {
    const result = lots.length
      ? await apiPost(`${API}/analysis`, { ...form, input_type: "lot_id", values: lots, loss_reasons: reasons })
      : await apiGet(`${API}/analysis?${new URLSearchParams({ ...form, loss_reasons: reasons.join(",") })}`);
    hideBanner();
    current = result;
    $("suspect-card").hidden = true;
    renderKpi(result.kpi);
    renderSuspects(result.suspects);
    renderCharts(result.charts);
    lineTrend($("c-trend"), { series: [{ name: "defect rate", x: result.daily_trend.map((d) => d.day), y: result.daily_trend.map((d) => 100 * (d.defect_rate || 0)) }], yTitle: "Defect rate", percent: true });
    renderForward(result.forward);
    $("msd-meta").textContent = `${result.station} · ${result.mode} mode · quality ${result.quality.status} · data as of ${result.as_of}`;
    await renderDetail(result.query_id);
    main.dataset.state = "ready";
  } catch (err) {
    $("msd-meta").textContent = "";
    showBanner(err.message || String(err), "error");
    main.dataset.state = "error";
  }
}

async function init() {
  const stations = await apiGet(`${API}/stations`);
  const select = $("f-station");
  for (const s of stations.data) {
    const opt = new Option(s.workcenter_group, s.workcenter_group, false, s.workcenter_group === stations.default);
    select.append(opt);
  }
  const params = new URLSearchParams(location.search);
  const today = new Date();
  const back = new Date(today.getTime() - 30 * 86_400_000);
  $("f-start").value = params.get("start_date") || back.toISOString().slice(0, 10);
  $("f-end").value = params.get("end_date") || today.toISOString().slice(0, 10);
  if (params.get("station")) select.value = params.get("station");
  $("msd-form").addEventListener("submit", run);
  document.getElementById("main").dataset.state = "idle";
  if (params.get("start_date")) await run();
}

init().catch((err) => showBanner(err.message || String(err), "error"));
