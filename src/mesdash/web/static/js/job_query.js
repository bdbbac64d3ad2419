// Equipment jobs: search machines, POST /api/job-query/query for 1–50 of them, then every
// view from the cached dataset (jobs, breakdown, transactions, export ?query_id=…).

import { apiGet } from "./api.js";
import { barChart, onPointClick } from "./charts.js";
import {
  $, failQuery, failView, queryString, renderKpis, runReportQuery, serverTable, setDefaultRange, setPageState, showChip,
  showError, showExport,
} from "./reports.js";
import { createTable, formatInt, formatNumber, formatTimestamp } from "./table.js";

const API = "/api/job-query";
const MAX_MACHINES = 50;
const state = { queryId: null, machine: null, chosen: new Set() };
const selection = () => ({ query_id: state.queryId, machines: state.machine ? [state.machine] : [] });

function jobLink(row) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button job-link";
  button.textContent = row.JOBORDERNAME || row.JOBID;
  button.addEventListener("click", () => showTransactions(row.JOBID));
  return button;
}

const list = serverTable($("job-list"), {
  pageSize: 50,
  columns: [
    { key: "JOBORDERNAME", label: "Job", render: jobLink },
    { key: "RESOURCENAME", label: "Machine", nowrap: true },
    { key: "JOBSTATUS", label: "Status" },
    { key: "JOBMODELNAME", label: "Model" },
    { key: "CREATEDATE", label: "Created", format: formatTimestamp, nowrap: true },
    { key: "COMPLETEDATE", label: "Completed", format: formatTimestamp, nowrap: true },
    { key: "JOB_HOURS", label: "Hours", numeric: true, format: (v) => formatNumber(v, 1) },
    { key: "CAUSECODENAME", label: "Cause" },
    { key: "TXN_COUNT", label: "Txns", numeric: true, format: formatInt },
  ],
  fetchPage: async (page, pageSize) => {
    const body = await apiGet(`${API}/jobs?${queryString({ ...selection(), page, page_size: pageSize })}`);
    $("job-list").dataset.exportRows = String(body.export_rows);
    return body;
  },
});

async function showTransactions(jobId) {
  const body = await apiGet(`${API}/jobs/${encodeURIComponent(jobId)}/transactions?${queryString({ query_id: state.queryId })}`);
  $("txn-job").textContent = `${body.job.RESOURCENAME} · ${jobId}`;
  createTable($("txn-table"), {
    pageSize: 50,
    columns: [
      { key: "TXNDATE", label: "Time", format: formatTimestamp, nowrap: true },
      { key: "CDONAME", label: "Action" }, { key: "FROMJOBSTATUS", label: "From" },
      { key: "TXN_JOBSTATUS", label: "To" }, { key: "STAGENAME", label: "Stage" },
      { key: "TOSTAGENAME", label: "Next stage" }, { key: "TXN_CAUSECODENAME", label: "Cause" },
      { key: "TXN_REPAIRCODENAME", label: "Repair" }, { key: "COMMENTS", label: "Comments" },
    ],
    empty: "No transactions",
  }).setRows(body.transactions);
  $("txn-table").dataset.rows = String(body.transactions.length);
}

function renderPicker(machines) {
  $("machine-picker").replaceChildren(...machines.map((m) => {
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", value: m.resource_id, checked: state.chosen.has(m.resource_id) });
    box.dataset.machine = m.machine;
    box.addEventListener("change", () => {
      if (box.checked && state.chosen.size >= MAX_MACHINES) { box.checked = false; return; }
      box.checked ? state.chosen.add(m.resource_id) : state.chosen.delete(m.resource_id);
      $("machine-count").textContent = `${state.chosen.size} of max ${MAX_MACHINES} chosen`;
    });
    label.append(box, ` ${m.machine}`);
    label.title = [m.family, m.workcenter_group].filter(Boolean).join(" · ");
    return label;
  }));
}

let searchTimer = null;
async function search() {
  const body = await apiGet(`${API}/machines?${queryString({ q: $("machine-search").value, limit: 500 })}`);
  renderPicker(body.machines);
  $("machine-count").textContent = `${state.chosen.size} of max ${MAX_MACHINES} chosen · ${formatInt(body.total)} found`;
  $("query-form").dataset.state = "ready";
}

async function drawViews() {
  const qs = queryString(selection());
  showChip("machine", state.machine);
  showExport(`${API}/export?${qs}`);
  setPageState("loading");
  try {
    const [byMachine, byModel, byStatus] = await Promise.all(["machine", "model", "status"].map(
      (dimension) => apiGet(`${API}/breakdown?${qs}&dimension=${dimension}`)));
    await barChart($("machine-chart"), { x: byMachine.items.map((i) => i.item), y: byMachine.items.map((i) => i.jobs), yTitle: "Jobs", valueLabels: true });
    onPointClick($("machine-chart"), (machine) => { state.machine = machine; drawViews(); });
    await barChart($("model-chart"), { x: byModel.items.map((i) => i.jobs), y: byModel.items.map((i) => i.item), orientation: "h", valueLabels: true });
    await list.reload();
    const total = list.state.total;
    const status = Object.fromEntries(byStatus.items.map((i) => [i.item, i.jobs]));
    const hours = byMachine.items.filter((i) => !state.machine || i.item === state.machine);
    const jobs = hours.reduce((s, i) => s + i.jobs, 0);
    const avg = jobs ? hours.reduce((s, i) => s + (i.avg_hours ?? 0) * i.jobs, 0) / jobs : null;
    renderKpis($("kpis"), [
      { id: "jobs", label: "Jobs", value: formatInt(total), note: `${formatInt(Number($("job-list").dataset.exportRows))} job × transaction rows` },
      { id: "completed", label: "Completed", value: formatInt(status.COMPLETED ?? 0) },
      { id: "cancelled", label: "Cancelled", value: formatInt(status.CANCELLED ?? 0) },
      { id: "hours", label: "Avg hours to complete", value: formatNumber(avg, 1) },
    ]);
    setPageState("ready");
  } catch (error) {
    failView($("job-list"), error);
  }
}

async function runQuery(event) {
  event?.preventDefault();
  state.machine = null;
  setPageState("loading");
  $("meta").textContent = "Reading jobs…";
  try {
    const body = await runReportQuery(`${API}/query`, { start_date: $("start-date").value, end_date: $("end-date").value, machines: [...state.chosen] },
      { onProgress: (p) => { $("meta").textContent = `Reading jobs… ${p.completed ?? 0}/${p.total ?? "?"} chunks`; } });
    state.queryId = body.query_id;
    $("meta").textContent = `${formatInt(body.rows)} job × transaction rows in ${body.chunks} chunk(s) · read ${body.as_of.replace("T", " ")} · quality ${body.quality.status} · query ${body.query_id}`;
    await drawViews();
  } catch (error) {
    failQuery($("job-list"), error);
  }
}

$("query-form").addEventListener("submit", runQuery);
$("machine-search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 250); });
$("clear-machine").addEventListener("click", () => { state.machine = null; drawViews(); });
setDefaultRange();
setPageState("idle");
search().catch((error) => showError($("job-list"), error));
