// Pieces every period report page shares (hold, equipment, jobs): form values, query
// strings, KPI cards, a server-paged list on the shared table component, page state.

import { apiGet, apiPost } from "./api.js";
import { createTable, formatInt } from "./table.js";

export const $ = (id) => document.getElementById(id);

/** "a=1&b=x,y" from an object; empty values are left out, arrays comma-joined. */
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value == null || value === "" || (Array.isArray(value) && !value.length)) continue;
    search.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  return search.toString();
}

/** Values of a form's checked boxes with the given name. */
export const checkedValues = (form, name) =>
  [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((input) => input.value);

/** `#main[data-state]`: loading | ready | error (what browser tests wait for). */
export function setPageState(state) {
  $("main").dataset.state = state;
}

/** Show an error inside a card body (text only). */
export function showError(container, error) {
  const box = document.createElement("div");
  box.className = "error-box";
  box.textContent = `${error.detail || error.message} (${error.code || "ERROR"})`;
  container.replaceChildren(box);
}

/** A view failed: its error in `container`, the page in state "error". */
export function failView(container, error) {
  showError(container, error);
  setPageState("error");
}

/** The primary query failed: no status line, its error in `container`, state "error". */
export function failQuery(container, error) {
  $("meta").textContent = "";
  failView(container, error);
}

/** The #start-date / #end-date inputs: the URL's start_date / end_date, else the last 30
 * factory days (a factory day starts at 07:30). */
export function setDefaultRange() {
  const end = new Date(Date.now() - 7.5 * 3600_000); // today's factory day
  const start = new Date(end.getTime() - 29 * 86_400_000);
  const iso = (d) => d.toISOString().slice(0, 10);
  const params = new URLSearchParams(location.search);
  $("start-date").value = params.get("start_date") || iso(start);
  $("end-date").value = params.get("end_date") || iso(end);
}

/** Point the #export link at `path` (below the app's root) and show it. */
export function showExport(path) {
  $("export").href = `${document.body.dataset.root}${path}`;
  $("export").hidden = false;
}

/** The filter chip `#<name>-chip` showing `value` in `#<name>-value`; hidden without one. */
export function showChip(name, value) {
  $(`${name}-chip`).hidden = !value;
  $(`${name}-value`).textContent = value || "";
}

/** KPI cards: [{ id, label, value, note }] into `container` (values already formatted). */
export function renderKpis(container, items) {
  container.replaceChildren(...items.map(({ id, label, value, note }) => {
    const card = document.createElement("div");
    card.className = "card stat";
    if (id) card.dataset.kpi = id;
    const parts = [["stat-label", label], ["stat-value", value], ["stat-note", note || ""]];
    card.append(...parts.map(([cls, text]) => {
      const div = document.createElement("div");
      div.className = cls;
      div.textContent = text;
      return div;
    }));
    return card;
  }));
}

/**
 * A list paged on the server: `fetchPage(page, pageSize, sort)` resolves to
 * `{ rows, total }`. Rendering (cells, escaping) is the shared table's; the order is the
 * server's. With `sortable`, a header click asks the server for "KEY" or "-KEY" (descending)
 * and reloads the first page.
 */
export function serverTable(container, { columns, fetchPage, pageSize = 50, sort = null, sortable = false }) {
  const state = { page: 1, total: 0, sort };
  const host = document.createElement("div");
  host.className = "server-paged";
  const pager = document.createElement("div");
  pager.className = "dt-pager";
  const info = document.createElement("span");
  info.className = "list-info";
  const button = (text) => Object.assign(document.createElement("button"), { className: "button", type: "button", textContent: text });
  const prev = button("‹ Prev");
  const next = button("Next ›");
  pager.append(info, prev, next);
  container.replaceChildren(host, pager);
  // rows arrive sorted by the server: the table only renders them
  const onSort = sortable ? (key, dir) => { state.sort = `${dir === "desc" ? "-" : ""}${key}`; state.page = 1; load(); } : null;
  const [sortKey, sortDir] = sort && sortable ? [sort.replace(/^-/, ""), sort.startsWith("-") ? "desc" : "asc"] : [null, "asc"];
  const table = createTable(host, {
    pageSize, onSort, sortKey, sortDir,
    columns: sortable ? columns : columns.map((col) => ({ ...col, sortable: false })),
  });
  prev.addEventListener("click", () => { state.page -= 1; load(); });
  next.addEventListener("click", () => { state.page += 1; load(); });

  async function load() {
    const { rows, total } = await fetchPage(state.page, pageSize, state.sort);
    state.total = total;
    table.setRows(rows);
    const first = (state.page - 1) * pageSize;
    info.textContent = total ? `${formatInt(first + 1)}–${formatInt(first + rows.length)} of ${formatInt(total)}` : "No rows";
    info.dataset.total = String(total);
    prev.disabled = state.page <= 1;
    next.disabled = first + rows.length >= total;
  }

  return {
    reload(page = 1) { state.page = page; return load(); },
    get state() { return { ...state }; },
  };
}

/**
 * Follow a job from its 202 body (`{ status_url, result_url }`) until it ends, calling
 * `onProgress(progress, status)` after every poll. Resolves to the job's result; a failed
 * or cancelled job rejects with `{ code, detail }` of its error.
 */
export async function followJob(accepted, onProgress, { intervalMs = 600 } = {}) {
  for (;;) {
    const status = await apiGet(accepted.status_url);
    onProgress?.(status.progress || {}, status);
    if (status.status === "finished") return (await apiGet(accepted.result_url)).result;
    if (status.status === "failed" || status.status === "cancelled") {
      const error = new Error(status.error?.detail || `job ${status.status}`);
      throw Object.assign(error, { code: status.error?.code || status.status.toUpperCase(), detail: error.message });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * POST a report's primary query. A long range answers 202 with a job, followed with
 * `followJob` until it ends; its result (holding the `query_id`) is returned like a
 * synchronous answer.
 */
export async function runReportQuery(url, body, { onProgress } = {}) {
  const answer = await apiPost(url, body);
  return answer?.job_id ? followJob(answer, onProgress) : answer;
}
