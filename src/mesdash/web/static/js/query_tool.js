// Query tool: one tab per lookup over /api/query-tool/*. Long equipment-period ranges and
// the full split / merge history come back as 202 + job: followed until they finish.
// #main[data-state] is loading | ready | error after each run (what browser tests wait for).

import { apiGet, apiPost, apiUrl } from "./api.js";
import { stackedBars } from "./charts.js";
import { $, followJob, queryString, setPageState, showError } from "./reports.js";
import { createTable, formatInt, formatNumber, formatTimestamp } from "./table.js";

const API = "/api/query-tool";
const E10 = ["PRD", "SBY", "UDT", "SDT", "EGT", "NST"];
const num = (digits = 0) => (v) => formatNumber(v, digits);
const ts = { format: formatTimestamp, nowrap: true };

const COLUMNS = {
  status_hours: [
    { key: "EQUIPMENTNAME", label: "Machine", nowrap: true },
    ...E10.map((s) => ({ key: `${s}_HOURS`, label: s, numeric: true, format: num(1) })),
    { key: "OU_PCT", label: "OU %", numeric: true, format: num(1) },
    { key: "AVAILABILITY_PCT", label: "Avail. %", numeric: true, format: num(1) },
  ],
  lots: [
    { key: "EQUIPMENTNAME", label: "Machine", nowrap: true }, { key: "CONTAINERNAME", label: "Lot", nowrap: true },
    { key: "PJ_TYPE", label: "Type" }, { key: "SPECNAME", label: "Spec" },
    { key: "TRACKINTIMESTAMP", label: "Track-in", ...ts }, { key: "TRACKOUTTIMESTAMP", label: "Last track-out", ...ts },
    { key: "LOAD_QTY", label: "Load", numeric: true, format: formatInt },
    { key: "OUTPUT_QTY", label: "Output", numeric: true, format: formatInt },
    { key: "TRACKOUT_ROWS", label: "Track-outs", numeric: true, format: formatInt },
  ],
  materials: [
    { key: "EQUIPMENTNAME", label: "Machine", nowrap: true }, { key: "MATERIALPARTNAME", label: "Part" },
    { key: "MATERIALLOTNAME", label: "Material lot" },
    { key: "QTYCONSUMED", label: "Quantity", numeric: true, format: num(2) },
    { key: "LOT_COUNT", label: "Lots", numeric: true, format: formatInt },
    { key: "FIRST_TXNDATE", label: "First", ...ts }, { key: "LAST_TXNDATE", label: "Last", ...ts },
  ],
  rejects: [
    { key: "EQUIPMENTNAME", label: "Machine", nowrap: true }, { key: "CONTAINERNAME", label: "Lot", nowrap: true },
    { key: "WORKCENTERNAME", label: "Work center" }, { key: "LOSSREASONNAME", label: "Reason" },
    { key: "TXNDATE", label: "Date", ...ts },
    { key: "CHARGED_OFF_QTY", label: "Charged off", numeric: true, format: formatInt },
    { key: "DEFECTQTY", label: "Defect", numeric: true, format: formatInt },
  ],
  jobs: [
    { key: "EQUIPMENTNAME", label: "Machine", nowrap: true }, { key: "JOBMODELNAME", label: "Job" },
    { key: "JOBSTATUS", label: "Status" }, { key: "CREATEDATE", label: "Created", ...ts },
    { key: "COMPLETEDATE", label: "Completed", ...ts }, { key: "SYMPTOMCODENAME", label: "Symptom" },
    { key: "CAUSECODENAME", label: "Cause" }, { key: "REPAIRCODENAME", label: "Repair" },
  ],
  adjacent: [
    { key: "RELATIVE_POSITION", label: "Pos.", numeric: true }, { key: "CONTAINERNAME", label: "Lot", nowrap: true },
    { key: "PJ_TYPE", label: "Type" }, { key: "SPECNAME", label: "Spec" },
    { key: "TRACKINTIMESTAMP", label: "Track-in", ...ts }, { key: "TRACKOUTTIMESTAMP", label: "Last track-out", ...ts },
    { key: "LOAD_QTY", label: "Load", numeric: true, format: formatInt },
    { key: "OUTPUT_QTY", label: "Output", numeric: true, format: formatInt },
    { key: "REJECT_QTY", label: "Rejects", numeric: true, format: formatInt },
    { key: "DEFECT_QTY", label: "Defects", numeric: true, format: formatInt },
  ],
  lotEquipment: [
    { key: "CONTAINERNAME", label: "Lot", nowrap: true }, { key: "WORKCENTER_GROUP", label: "Station group" },
    { key: "EQUIPMENTNAME", label: "Machine", nowrap: true },
    { key: "FIRST_TRACKIN", label: "First track-in", ...ts }, { key: "LAST_TRACKOUT", label: "Last track-out", ...ts },
    { key: "LOADS", label: "Loads", numeric: true, format: formatInt },
    { key: "SOURCE_DEPTH", label: "From parent", numeric: true, format: (v) => (v ? `level ${v}` : "own") },
  ],
  splitMerge: [
    { key: "TXNDATE", label: "Date", ...ts }, { key: "EVENT", label: "Event" },
    { key: "FROMCONTAINERNAME", label: "From lot", nowrap: true }, { key: "CONTAINERNAME", label: "To lot", nowrap: true },
    { key: "QTY", label: "Qty", numeric: true, format: formatInt },
  ],
  recentJobs: [
    { key: "JOBMODELNAME", label: "Job" }, { key: "JOBSTATUS", label: "Status" },
    { key: "CREATEDATE", label: "Created", ...ts }, { key: "COMPLETEDATE", label: "Completed", ...ts },
    { key: "SYMPTOMCODENAME", label: "Symptom" }, { key: "CAUSECODENAME", label: "Cause" },
    { key: "REPAIRCODENAME", label: "Repair" }, { key: "CONTAINERNAMES", label: "Lots" },
  ],
};

function table(containerId, columns, rows, empty = "No rows") {
  createTable($(containerId), { columns, pageSize: 25, empty }).setRows(rows);
}

function exportLink(id, url) {
  const link = $(id);
  link.href = apiUrl(url);
  link.hidden = false;
}

/** Run one tab's lookup with the page state, meta line and error box handled. */
async function run(prefix, work) {
  setPageState("loading");
  $(`${prefix}-meta`).textContent = "Running…";
  try {
    await work();
    setPageState("ready");
  } catch (error) {
    $(`${prefix}-meta`).textContent = "";
    showError($(`${prefix}-table`), error);
    setPageState("error");
  }
}

/** A container id from a lot name (or the id itself: 16 hex characters). */
async function containerId(value) {
  const text = value.trim();
  if (/^[0-9a-f]{16}$/i.test(text)) return text.toLowerCase();
  const found = await apiPost("/api/trace/seed-resolve", { input_type: "lot_id", values: [text] });
  if (!found.data.length) throw Object.assign(new Error(`no lot named ${text}`), { code: "NOT_FOUND" });
  return found.data[0].container_id;
}

// --- tabs ------------------------------------------------------------------------------
const tabs = [...document.querySelectorAll('[role="tab"]')];
tabs.forEach((tab) => tab.addEventListener("click", () => {
  tabs.forEach((other) => {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    $(other.getAttribute("aria-controls")).hidden = !selected;
  });
  history.replaceState(null, "", `#${tab.id.replace("tab-", "")}`);
}));
const initial = tabs.find((tab) => `#${tab.id.replace("tab-", "")}` === location.hash);
if (initial) initial.click();

// --- equipment period -----------------------------------------------------------------
const chosen = new Map(); // id → name, kept across searches

async function loadMachines(search = "") {
  const { data } = await apiGet(`${API}/equipment?${queryString({ q: search, limit: 300 })}`);
  const picker = $("machine-picker");
  picker.replaceChildren(...data.map((m) => {
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", value: m.RESOURCEID, checked: chosen.has(m.RESOURCEID) });
    box.addEventListener("change", () => (box.checked ? chosen.set(m.RESOURCEID, m.RESOURCENAME) : chosen.delete(m.RESOURCEID)));
    label.append(box, `${m.RESOURCENAME} · ${m.WORKCENTERNAME ?? ""}`);
    return label;
  }));
  if (!search) {
    $("machine-ids").replaceChildren(...data.map((m) => Object.assign(document.createElement("option"), { value: m.RESOURCEID, label: m.RESOURCENAME })));
  }
}

let searchTimer = null;
$("machine-search").addEventListener("input", (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => loadMachines(event.target.value.trim()).catch(() => {}), 250);
});

function showPeriod(view) {
  const type = view.query_type;
  $("period-chart-card").hidden = type !== "status_hours";
  if (type === "status_hours") {
    const names = view.data.map((r) => r.EQUIPMENTNAME || chosen.get(r.EQUIPMENTID) || r.EQUIPMENTID);
    stackedBars($("period-chart"), { x: names, yTitle: "hours", series: E10.map((s) => ({ name: s, y: view.data.map((r) => r[`${s}_HOURS`]) })) });
  }
  table("period-table", COLUMNS[type], view.data);
  const shown = view.data.length < view.count ? ` (first ${formatInt(view.data.length)} shown; the CSV has all)` : "";
  $("period-meta").textContent = `${formatInt(view.count)} rows · ${view.chunks} chunk(s) · ${view.quality.status} · as of ${formatTimestamp(view.as_of)}${shown}`;
  exportLink("period-export", `${API}/equipment-period/${view.query_id}?format=csv`);
}

$("period-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run("period", async () => {
    $("period-export").hidden = true;
    const body = {
      equipment_ids: [...chosen.keys()], start_date: $("period-start").value,
      end_date: $("period-end").value, query_type: $("period-type").value,
    };
    const answer = await apiPost(`${API}/equipment-period`, body);
    if (answer.job_id) {
      const result = await followJob(answer, (p) => {
        $("period-meta").textContent = `Running as a job: ${p.completed ?? 0} of ${p.total ?? "?"} chunks (${p.pct ?? 0} %)`;
      });
      showPeriod(await apiGet(result.view_url));
    } else {
      showPeriod(answer);
    }
  });
});

// --- adjacent lots --------------------------------------------------------------------
let anchors = [];
function showAnchor(index) {
  const anchor = anchors[index];
  table("adjacent-table", COLUMNS.adjacent, anchor ? anchor.lots : [], "No track-ins for this lot");
}
$("adjacent-anchor").addEventListener("change", (event) => showAnchor(Number(event.target.value)));

$("adjacent-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run("adjacent", async () => {
    const cid = await containerId($("adjacent-lot").value);
    const params = { container_id: cid, equipment_id: $("adjacent-machine").value.trim(), min_each_side: $("adjacent-min").value };
    const result = await apiGet(`${API}/adjacent-lots?${queryString(params)}`);
    anchors = result.anchors;
    $("adjacent-anchor").replaceChildren(...anchors.map((a, i) => Object.assign(document.createElement("option"), {
      value: String(i), textContent: `${a.equipment_name} · ${a.spec_name} · ${formatTimestamp(a.trackin_time)} (${a.product_type ?? "—"})`,
    })));
    $("adjacent-anchor-form").hidden = !anchors.length;
    showAnchor(0);
    $("adjacent-meta").textContent = `${anchors.length} track-in(s) of the lot; each side holds ≥ ${result.window_rule.min_each_side} lots, extended to the first lot of another product type`;
    exportLink("adjacent-export", `${API}/adjacent-lots?${queryString({ ...params, format: "csv" })}`);
  });
});

// --- lot → equipment ------------------------------------------------------------------
function lotEquipmentBody() {
  const split = (text, pattern) => text.split(pattern).map((v) => v.trim()).filter(Boolean);
  return {
    input_type: $("lot-equipment-type").value,
    values: split($("lot-equipment-values").value, /[\n,]/),
    workcenter_groups: split($("lot-equipment-groups").value, /,/),
  };
}

$("lot-equipment-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run("lot-equipment", async () => {
    const result = await apiPost(`${API}/lot-equipment`, lotEquipmentBody());
    table("lot-equipment-table", COLUMNS.lotEquipment, result.data);
    const missing = result.not_found.length ? ` · not found: ${result.not_found.join(", ")}` : "";
    $("lot-equipment-meta").textContent = `${formatInt(result.lots.length)} lot(s), ${formatInt(result.count)} machine rows${missing}`;
    $("lot-equipment-export").hidden = false;
  });
});

$("lot-equipment-export").addEventListener("click", async () => {
  const response = await fetch(apiUrl(`${API}/lot-equipment?format=csv`), {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(lotEquipmentBody()),
  });
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(await response.blob()), download: "lot-equipment.csv" });
  link.click();
  URL.revokeObjectURL(link.href);
});

// --- split / merge history ------------------------------------------------------------
$("split-merge-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run("split-merge", async () => {
    $("split-merge-export").hidden = true;
    const cid = await containerId($("split-merge-lot").value);
    const mode = $("split-merge-mode").value;
    const answer = await apiGet(`${API}/split-merge-history?${queryString({ container_id: cid, mode })}`);
    const result = answer.job_id
      ? await followJob(answer, (p) => { $("split-merge-meta").textContent = `Full scan running as a job: ${p.stage || "queued"}`; })
      : answer;
    table("split-merge-table", COLUMNS.splitMerge, result.data, "No split or merge transactions");
    const span = result.window ? ` between ${formatTimestamp(result.window.since)} and ${formatTimestamp(result.window.until)}` : " (full history)";
    const cut = result.quality?.status === "truncated" ? " · truncated at 500 rows: run the full mode" : "";
    $("split-merge-meta").textContent = `${formatInt(result.count)} transaction(s)${span}${cut}`;
    exportLink("split-merge-export", result.csv_url || `${API}/split-merge-history?${queryString({ container_id: cid, format: "csv" })}`);
  });
});

// --- recent jobs ----------------------------------------------------------------------
$("recent-jobs-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run("recent-jobs", async () => {
    const machine = $("recent-jobs-machine").value.trim();
    const params = { days: $("recent-jobs-days").value, as_of: $("recent-jobs-asof").value };
    const url = `${API}/equipment-recent-jobs/${encodeURIComponent(machine)}`;
    const result = await apiGet(`${url}?${queryString(params)}`);
    table("recent-jobs-table", COLUMNS.recentJobs, result.data, "No jobs in the window");
    $("recent-jobs-meta").textContent = `${result.count} job(s) created ${formatTimestamp(result.since)} – ${formatTimestamp(result.until)}`;
    exportLink("recent-jobs-export", `${url}?${queryString({ ...params, format: "csv" })}`);
  });
});

// --- start ----------------------------------------------------------------------------
const today = new Date().toISOString().slice(0, 10);
$("period-end").value = today;
$("period-start").value = new Date(Date.now() - 6 * 86400000).toISOString().slice(0, 10);
loadMachines()
  .then(() => setPageState("idle"))
  .catch((error) => { showError($("period-table"), error); setPageState("error"); });
