// The /admin page: public /health always; with an admin token (kept in sessionStorage only)
// the system status, workers, restart history, audit log and the restart form with the
// churn-override flow. Every admin call sends Authorization: Bearer <token>.

import { ApiError, apiGet, apiPost, apiUrl, hideBanner } from "./api.js";
import { createTable, formatInt, formatNumber, formatTimestamp } from "./table.js";

const TOKEN_KEY = "mesdash.adminToken";
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
const NO_RETRY = { retries: 0 };

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let timer = null;

const authHeaders = () => ({ Authorization: `Bearer ${token}` });
const adminGet = (url) => apiGet(url, { ...NO_RETRY, headers: authHeaders() });

function setText(id, text, cls) {
  const el = $(id);
  el.textContent = text;
  if (cls !== undefined) el.className = `stat-value small ${cls}`;
}

const toneOf = (status) => ({ healthy: "state-ok", ok: "state-ok", CLOSED: "state-ok", allowed: "state-ok",
  degraded: "state-warn", HALF_OPEN: "state-warn", cooldown: "state-warn", disabled: "",
  unhealthy: "state-bad", error: "state-bad", OPEN: "state-bad", blocked: "state-bad" }[status] ?? "");

// --- health tiles ------------------------------------------------------------------------
function renderHealth(h) {
  setText("st-status", h.status, toneOf(h.status));
  $("st-status-note").textContent = h.degraded_reason || `checked ${formatTimestamp(h.checked_at)}`;
  const db = h.services.database;
  setText("st-db", db.status === "ok" ? `${db.dialect} ok` : db.code || "error", toneOf(db.status));
  $("st-db-note").textContent = db.latency_ms != null ? `SELECT 1 in ${formatNumber(db.latency_ms)} ms` : db.detail || "";
  const rd = h.services.redis;
  setText("st-redis", rd.status, toneOf(rd.status));
  $("st-redis-note").textContent = rd.latency_ms != null ? `PING in ${formatNumber(rd.latency_ms)} ms` : rd.detail || "";
  const cb = h.circuit_breaker;
  setText("st-breaker", cb.state, toneOf(cb.state));
  $("st-breaker-note").textContent = cb.state === "OPEN"
    ? `probes in ${Math.ceil(cb.remaining_open_seconds)} s`
    : `${cb.failures ?? 0} failures of ${cb.calls ?? 0} calls`;
  const pool = h.pool;
  if (pool.kind === "queue") {
    setText("st-pool", `${pool.checked_out} / ${pool.size + pool.max_overflow}`, pool.checked_out >= pool.size + pool.max_overflow ? "state-warn" : "");
    $("st-pool-note").textContent = `in use · size ${pool.size} + overflow ${pool.max_overflow}`;
  } else {
    setText("st-pool", "embedded", "");
    $("st-pool-note").textContent = "no network pool";
  }
  const sem = h.semaphore;
  setText("st-sem", `${sem.active ?? 0} / ${sem.max_concurrent ?? "—"}`, sem.waiting ? "state-warn" : "");
  $("st-sem-note").textContent = `${sem.waiting ?? 0} waiting · ${sem.rejected ?? 0} rejected`;
  const r = h.resilience;
  setText("st-policy", r.policy_state, toneOf(r.policy_state));
  $("st-policy-note").textContent = r.policy_state === "cooldown"
    ? `${Math.ceil(r.cooldown_remaining_seconds)} s cooldown left`
    : `${r.restart_churn.count} / ${r.restart_churn.threshold} restarts in ${Math.round(r.restart_churn.window_seconds / 60)} min`;
  $("rec-action").textContent = r.recovery_recommendation.action.replaceAll("_", " ");
  $("rec-reason").textContent = r.recovery_recommendation.reason;
  const list = $("alerts");
  list.replaceChildren(...(r.alerts.length ? r.alerts : [{ code: "none", message: "no alerts" }]).map((a) => {
    const li = document.createElement("li");
    li.textContent = a.code === "none" ? a.message : `${a.code}: ${a.message}`;
    if (a.code === "none") li.className = "muted";
    return li;
  }));
}

// --- admin sections ----------------------------------------------------------------------
const tables = {};
function table(id, columns, empty) {
  tables[id] ??= createTable($(id), { columns, pageSize: 10, empty });
  return tables[id];
}

function renderWorkers(w) {
  $("workers-note").textContent = w.gunicorn
    ? `gunicorn master ${w.master_pid} · answered by ${w.pid}`
    : `single process ${w.pid} (no gunicorn: restarts unsupported)`;
  const rows = w.workers.length ? w.workers : [{ pid: w.pid, started_at: w.started_at, rss_mb: null, heartbeat_age_seconds: null, inflight: null }];
  table("workers-table", [
    { key: "pid", label: "PID", numeric: true },
    { key: "started_at", label: "Started", format: formatTimestamp, nowrap: true },
    { key: "rss_mb", label: "RSS MB", numeric: true, format: (v) => formatNumber(v, 1) },
    { key: "heartbeat_age_seconds", label: "Heartbeat age s", numeric: true, format: (v) => formatNumber(v, 1) },
    { key: "inflight", label: "In flight", numeric: true, format: formatInt },
  ], "No workers").setRows(rows);
  $("history-note").textContent = `${w.restart_history.length} in the churn window · ${w.pending_requests} pending`;
  table("history-table", [
    { key: "at", label: "When", format: formatTimestamp, nowrap: true },
    { key: "source", label: "Source" },
    { key: "actor", label: "Who" },
    { key: "reason", label: "Why" },
    { key: "override", label: "Override", format: (v) => (v ? "yes" : "") },
  ], "No restarts in the window").setRows([...w.restart_history].reverse());
}

function renderAudit(entries) {
  table("audit-table", [
    { key: "ts", label: "When", format: formatTimestamp, nowrap: true },
    { key: "action", label: "Action" },
    { key: "decision", label: "Decision" },
    { key: "actor", label: "Who" },
    { key: "reason", label: "Why", value: (e) => e.override_reason || e.reason || "" },
  ], "No entries").setRows([...entries].reverse());
}

function renderQueries(status) {
  const q = status.queries || {};
  const lat = q.latency_ms || {};
  const m = status.memory || {};
  const queues = status.queues || {};
  const pairs = [
    ["Warehouse round trips", formatInt(q.count)],
    ["Slow-path queries", formatInt(q.slow_path_count)],
    ["Failures", formatInt(q.failures)],
    [`Calls ≥ ${q.slow_call_threshold_seconds ?? "—"} s`, formatInt(q.slow_calls)],
    ["Latency p50 / p95 / p99", `${formatNumber(lat.p50)} / ${formatNumber(lat.p95)} / ${formatNumber(lat.p99)} ms`],
    ["System memory", m.system_percent != null ? `${formatNumber(m.system_percent, 1)} %` : "—"],
    ["Process RSS", m.process_rss_mb != null ? `${formatNumber(m.process_rss_mb, 1)} MB` : "—"],
    ["Jobs", queues.backend === "rq"
      ? Object.entries(queues.queues || {}).map(([n, s]) => `${n} ${s.queued}/${s.started}`).join(" · ") || queues.error || "—"
      : "in process"],
  ];
  $("queries").replaceChildren(...pairs.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    return [dt, dd];
  }));
}

// --- refresh loop --------------------------------------------------------------------------
async function refresh() {
  try {
    if (!token) {
      const health = await fetch(apiUrl("/health")).then((r) => r.json());
      renderHealth(health);
      return;
    }
    const status = await adminGet("/admin/api/system-status");
    renderHealth(status.health);
    renderWorkers(status.worker);
    renderQueries(status);
    renderAudit((await adminGet("/admin/api/audit?limit=30")).entries);
    $("auth-state").textContent = "signed in";
    $("main").dataset.state = "ready";
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      signOut(err.status === 401 ? "token not accepted" : "this token is not an admin token");
      return;
    }
    $("auth-state").textContent = `could not refresh: ${err.detail || err.message}`;
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    if (!document.hidden) await refresh();
    schedule();
  }, REFRESH_MS);
}

function signIn(value) {
  token = value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  $("sign-out").hidden = false;
  $("restart-submit").disabled = false;
  $("token-input").value = "";
  refresh();
}

function signOut(message = "") {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("sign-out").hidden = true;
  $("restart-submit").disabled = true;
  $("auth-state").textContent = message;
  $("main").dataset.state = "public";
}

// --- restart form ---------------------------------------------------------------------------
function restartMessage(text, tone = "") {
  const el = $("restart-msg");
  el.textContent = text;
  el.className = `form-msg ${tone}`;
}

async function submitRestart(event) {
  event.preventDefault();
  const overriding = !$("override-box").hidden;
  const body = { reason: $("restart-reason").value.trim() };
  if (overriding) {
    Object.assign(body, {
      manual_override: true,
      override_acknowledged: $("override-ack").checked,
      override_reason: $("override-reason").value.trim(),
    });
    if (!body.override_acknowledged || !body.override_reason) {
      restartMessage("Tick the acknowledgement and give an override reason.", "state-bad");
      return;
    }
  }
  $("restart-submit").disabled = true;
  try {
    const accepted = await apiPost("/admin/api/worker/restart", body, { ...NO_RETRY, headers: authHeaders() });
    restartMessage(`Accepted (request ${accepted.request_id}${accepted.override ? ", override" : ""}): ${accepted.detail}`, "state-ok");
    $("override-box").hidden = true;
    $("restart-submit").textContent = "Request restart";
  } catch (err) {
    hideBanner();
    if (err.code === "RESTART_POLICY_BLOCKED") {
      $("override-box").hidden = false;
      $("override-why").textContent = err.detail;
      $("restart-submit").textContent = "Restart with override";
      restartMessage("Blocked by the churn policy: an explicit override is required.", "state-warn");
    } else if (err.code === "RESTART_COOLDOWN") {
      restartMessage(`Cooling down: retry in ${Math.ceil(err.retryAfter ?? 1)} s.`, "state-warn");
    } else {
      restartMessage(`${err.code || "ERROR"}: ${err.detail || err.message}`, "state-bad");
    }
  } finally {
    $("restart-submit").disabled = !token;
    refresh();
  }
}

function main() {
  $("auth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if ($("token-input").value.trim()) signIn($("token-input").value);
  });
  $("sign-out").addEventListener("click", () => signOut("token forgotten"));
  $("restart-form").addEventListener("submit", submitRestart);
  if (token) {
    $("sign-out").hidden = false;
    $("restart-submit").disabled = false;
  } else {
    $("main").dataset.state = "public";
  }
  refresh();
  schedule();
}

main();
