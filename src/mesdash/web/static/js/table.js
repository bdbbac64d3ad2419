// A small sortable, paged data table. Cells are built with textContent (never innerHTML
// from data), so warehouse strings cannot inject markup.
//
//   const table = createTable(el, {
//     columns: [{ key: "TABLE", label: "Table" },
//               { key: "ROWS", label: "Rows", numeric: true, format: formatInt }],
//     pageSize: 25, sortKey: "ROWS", sortDir: "desc", empty: "No rows",
//   });
//   table.setRows(rows);
//
// A column may give `value(row)` (what is sorted and formatted; default row[key]),
// `format(value, row)` (text) or `render(row)` (a Node), `numeric` (right-aligned,
// numeric sort), `nowrap` and `sortable: false`. With `onSort(key, dir)` the rows are
// sorted elsewhere (a server): a header click calls it and the rows are shown as given.

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

export const formatInt = (v) => (v == null ? "—" : Number(v).toLocaleString("en-US"));
export const formatNumber = (v, digits = 2) =>
  v == null ? "—" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });

/** "2026-06-30 07:30" from an ISO timestamp (factory local time, shown as stored). */
export const formatTimestamp = (v) => (v ? String(v).replace("T", " ").slice(0, 16) : "—");

function compare(a, b, numeric) {
  if (a == null && b == null) return 0;
  if (a == null) return 1; // empty values last in both directions
  if (b == null) return -1;
  return numeric ? Number(a) - Number(b) : collator.compare(String(a), String(b));
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

export function createTable(container, { columns, pageSize = 25, sortKey = null, sortDir = "asc", empty = "No rows", onSort = null }) {
  const state = { rows: [], sortKey, sortDir, page: 0 };
  const valueOf = (col, row) => (col.value ? col.value(row) : row[col.key]);

  const wrap = el("div", { class: "dt-wrap" });
  const table = el("table", { class: "dt" });
  const thead = el("thead");
  const tbody = el("tbody");
  const pager = el("div", { class: "dt-pager" });
  const info = el("span");
  const prev = el("button", { class: "button", type: "button" }, "‹ Prev");
  const next = el("button", { class: "button", type: "button" }, "Next ›");
  pager.append(info, prev, next);
  table.append(thead, tbody);
  wrap.append(table);
  container.replaceChildren(wrap, pager);

  prev.addEventListener("click", () => { state.page -= 1; render(); });
  next.addEventListener("click", () => { state.page += 1; render(); });

  function sortBy(key) {
    if (state.sortKey === key) state.sortDir = state.sortDir === "asc" ? "desc" : "asc";
    else Object.assign(state, { sortKey: key, sortDir: columns.find((c) => c.key === key)?.numeric ? "desc" : "asc" });
    state.page = 0;
    if (onSort) { renderHead(); onSort(state.sortKey, state.sortDir); return; }
    render();
  }

  function renderHead() {
    const tr = el("tr");
    for (const col of columns) {
      const th = el("th", { scope: "col", class: col.numeric ? "num" : null });
      if (col.sortable === false) {
        th.textContent = col.label;
      } else {
        th.setAttribute("aria-sort", state.sortKey === col.key ? (state.sortDir === "asc" ? "ascending" : "descending") : "none");
        const button = el("button", { type: "button" }, col.label);
        button.addEventListener("click", () => sortBy(col.key));
        th.append(button);
      }
      tr.append(th);
    }
    thead.replaceChildren(tr);
  }

  function sortedRows() {
    const col = columns.find((c) => c.key === state.sortKey);
    if (!col || onSort) return state.rows;
    const sign = state.sortDir === "asc" ? 1 : -1;
    return [...state.rows].sort((a, b) => {
      const va = valueOf(col, a);
      const vb = valueOf(col, b);
      if (va == null || vb == null) return compare(va, vb, col.numeric);
      return sign * compare(va, vb, col.numeric);
    });
  }

  function cell(col, row) {
    const td = el("td", { class: [col.numeric && "num", col.nowrap && "nowrap"].filter(Boolean).join(" ") || null });
    if (col.render) td.append(col.render(row));
    else td.textContent = col.format ? col.format(valueOf(col, row), row) : (valueOf(col, row) ?? "—");
    return td;
  }

  function render() {
    renderHead();
    const rows = sortedRows();
    const pages = Math.max(1, Math.ceil(rows.length / pageSize));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const start = state.page * pageSize;
    const slice = rows.slice(start, start + pageSize);
    if (!slice.length) {
      const td = el("td", { class: "empty", colspan: String(columns.length) }, empty);
      tbody.replaceChildren(el("tr", {}, null));
      tbody.firstChild.append(td);
    } else {
      tbody.replaceChildren(...slice.map((row) => {
        const tr = el("tr");
        tr.append(...columns.map((col) => cell(col, row)));
        return tr;
      }));
    }
    info.textContent = rows.length ? `${start + 1}–${start + slice.length} of ${formatInt(rows.length)}` : "";
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
    pager.hidden = rows.length <= pageSize;
  }

  return {
    setRows(rows) {
      state.rows = rows || [];
      state.page = 0;
      render();
    },
    sortBy,
    get state() { return { ...state }; },
  };
}
