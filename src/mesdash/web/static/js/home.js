// Home page: what the warehouse holds (rows and date span per table), from
// GET /api/warehouse/summary.

import { apiGet } from "./api.js";
import { barChart } from "./charts.js";
import { createTable, formatInt, formatTimestamp } from "./table.js";

const TABLE_LABELS = {
  DW_MES_CONTAINER: "Lots (master data)",
  DW_MES_LOTWIPHISTORY: "Lot moves: track-in / track-out",
  DW_MES_LOTREJECTHISTORY: "Rejects by reason",
  DW_MES_LOTMATERIALSHISTORY: "Materials consumed by lots",
  DW_MES_HOLDRELEASEHISTORY: "Holds and releases",
  DW_MES_PJ_COMBINEDASSYLOTS: "Merges into finished lots",
  DW_MES_HM_LOTMOVEOUT: "Split / combine move-outs",
  DW_MES_JOB: "Equipment jobs",
  DW_MES_JOBTXNHISTORY: "Equipment job transactions",
  DW_MES_RESOURCE: "Equipment (master data)",
  DW_MES_RESOURCESTATUS_SHIFT: "Equipment E10 states per shift",
  DW_MES_SPEC_WORKCENTER_V: "Spec → work-center map",
  ERP_PJ_WIP_SCRAP_REASONS_EXCLUDE: "Excluded scrap reasons",
};
const DIALECTS = { duckdb: ["DuckDB", "embedded file"], postgresql: ["PostgreSQL", "server"], oracle: ["Oracle", "production warehouse"] };
const DAY_MS = 86_400_000;

const $ = (id) => document.getElementById(id);
const shortName = (table) => table.replace(/^(DW_MES_|ERP_PJ_WIP_)/, "");
const spanDays = (first, last) => (first && last ? Math.max(0, Math.round((Date.parse(last) - Date.parse(first)) / DAY_MS)) : null);

function nameCell(row) {
  const wrap = document.createElement("span");
  const main = document.createElement("span");
  main.className = "cell-main code";
  main.textContent = row.table;
  const sub = document.createElement("span");
  sub.className = "cell-sub";
  sub.textContent = TABLE_LABELS[row.table] || "";
  wrap.append(main, sub);
  return wrap;
}

function renderStats(summary) {
  const [name, note] = DIALECTS[summary.dialect] || [summary.dialect, ""];
  $("stat-dialect").textContent = name;
  $("stat-dialect-note").textContent = note;
  const filled = summary.tables.filter((t) => t.rows > 0).length;
  $("stat-tables").textContent = summary.tables.length;
  $("stat-tables-note").textContent = `${filled} with data`;
  $("stat-rows").textContent = formatInt(summary.tables.reduce((sum, t) => sum + t.rows, 0));
  const firsts = summary.tables.map((t) => t.first).filter(Boolean).sort();
  const lasts = summary.tables.map((t) => t.last).filter(Boolean).sort();
  if (firsts.length) {
    const first = firsts[0];
    const last = lasts[lasts.length - 1];
    $("stat-span").textContent = `${formatInt(spanDays(first, last))} days`;
    $("stat-span-note").textContent = `${first.slice(0, 10)} → ${last.slice(0, 10)}`;
  } else {
    $("stat-span").textContent = "no events";
  }
  // sv-SE renders local time as "2026-06-30 07:30:00": unambiguous on any floor.
  const [day, time] = new Date(summary.as_of).toLocaleString("sv-SE").split(" ");
  $("stat-as-of").textContent = time;
  $("stat-as-of").dataset.asOf = summary.as_of;
  $("stat-as-of-note").textContent = `${day} · cached up to 60 s`;
}

function renderTable(summary) {
  const table = createTable($("summary-table"), {
    columns: [
      { key: "table", label: "Table", render: nameCell },
      { key: "rows", label: "Rows", numeric: true, format: formatInt },
      { key: "first", label: "First", format: formatTimestamp, nowrap: true },
      { key: "last", label: "Last", format: formatTimestamp, nowrap: true },
      { key: "span", label: "Days", numeric: true, value: (r) => spanDays(r.first, r.last), format: formatInt },
    ],
    pageSize: 50,
    empty: "The warehouse has no tables.",
  });
  table.setRows(summary.tables);
}

function renderChart(summary) {
  const rows = summary.tables.filter((t) => t.rows > 0).sort((a, b) => b.rows - a.rows);
  return barChart($("rows-chart"), {
    x: rows.map((t) => t.rows),
    y: rows.map((t) => shortName(t.table)),
    orientation: "h",
    logScale: true,
    valueLabels: true,
  });
}

async function main() {
  const root = $("main");
  root.dataset.state = "loading";
  try {
    const summary = await apiGet("/api/warehouse/summary");
    renderStats(summary);
    renderTable(summary);
    await renderChart(summary);
    root.dataset.state = "ready";
  } catch (err) {
    const box = document.createElement("div");
    box.className = "error-box";
    box.textContent = `Could not read the warehouse: ${err.detail || err.message}${err.code ? ` (${err.code})` : ""}`;
    $("summary-table").replaceChildren(box);
    document.querySelectorAll(".stat-value").forEach((el) => { el.textContent = "—"; });
    root.dataset.state = "error";
  }
}

main();
