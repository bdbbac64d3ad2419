// The API client: JSON in and out, problem+json errors as ApiError, bounded and polite
// retries for 429/503 (Retry-After honoured, exponential backoff with jitter), a degraded
// banner while the service is busy or unavailable, and an NDJSON stream reader.

const RETRY_STATUSES = new Set([429, 503]);
export const RETRY_DEFAULTS = Object.freeze({
  retries: 2, // retries after the first attempt
  baseDelayMs: 500, // first backoff step; doubles per attempt
  maxDelayMs: 30000, // a server hint above this is not waited for: the error is thrown
  jitter: 0.25, // up to +25 % random spread, so clients do not retry in lockstep
});

export class ApiError extends Error {
  constructor({ status, code, detail, title = "", retryAfter = null, body = null }) {
    super(detail || title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.title = title;
    this.retryAfter = retryAfter; // seconds, or null
    this.body = body;
  }

  get retryable() {
    return RETRY_STATUSES.has(this.status) || this.status === 0;
  }
}

// --- banner ----------------------------------------------------------------------------
const BANNER_ID = "degraded-banner";

function bannerElement() {
  let el = document.getElementById(BANNER_ID);
  if (!el) {
    el = document.createElement("div");
    el.id = BANNER_ID;
    el.className = "banner";
    el.setAttribute("role", "status");
    el.setAttribute("aria-live", "polite");
    el.innerHTML = '<span class="banner-icon" aria-hidden="true"></span><span class="banner-text"></span>';
    document.body.prepend(el);
  }
  return el;
}

/** Show the shell's banner; level is "warn" (degraded, retrying), "error" or "info". */
export function showBanner(message, level = "warn") {
  const el = bannerElement();
  el.className = `banner banner-${level}`;
  el.dataset.level = level;
  (el.querySelector(".banner-text") || el).textContent = message;
  el.hidden = false;
}

export function hideBanner() {
  const el = document.getElementById(BANNER_ID);
  if (el) el.hidden = true;
}

// --- helpers ---------------------------------------------------------------------------
/** A root-relative URL ("/api/...") under the app's mount point (body[data-root]). */
export function apiUrl(url) {
  const root = document.body?.dataset.root || "";
  return url.startsWith("/") ? root + url : url;
}

/** Seconds from a Retry-After header (delta-seconds or HTTP date), or null. */
export function parseRetryAfter(value) {
  if (value == null || value === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

/** The wait before retry number `attempt` (0-based): exponential backoff with jitter,
 *  never below the server's hint. */
export function retryDelayMs(attempt, retryAfterSeconds, options = RETRY_DEFAULTS) {
  const backoff = options.baseDelayMs * 2 ** attempt;
  const hint = retryAfterSeconds == null ? 0 : retryAfterSeconds * 1000;
  const floor = Math.max(backoff, hint);
  return Math.round(floor * (1 + Math.random() * options.jitter));
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });
}

function isJson(response) {
  return /[/+]json\b/.test(response.headers.get("content-type") || "");
}

async function toApiError(response) {
  let body = null;
  try {
    body = isJson(response) ? await response.json() : { detail: (await response.text()).slice(0, 300) };
  } catch {
    body = null;
  }
  const header = parseRetryAfter(response.headers.get("retry-after"));
  return new ApiError({
    status: response.status,
    code: body?.code || `HTTP_${response.status}`,
    title: body?.title || response.statusText,
    detail: body?.detail || response.statusText || `HTTP ${response.status}`,
    retryAfter: header ?? (body?.retry_after_seconds ?? null),
    body,
  });
}

async function parseBody(response) {
  if (response.status === 204) return null;
  return isJson(response) ? response.json() : response.text();
}

// --- requests --------------------------------------------------------------------------
/**
 * One request with bounded retries. Retries 429/503 (and, for GET, network failures) at
 * most `retries` times, waiting max(server hint, backoff) plus jitter; a hint longer
 * than `maxDelayMs` is not waited for. Resolves to parsed JSON (or text).
 */
export async function apiRequest(method, url, { body, headers = {}, signal, ...options } = {}) {
  const opts = { ...RETRY_DEFAULTS, ...options };
  const init = { method, signal, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] ??= "application/json";
  }
  let bannerShown = false;
  for (let attempt = 0; ; attempt += 1) {
    let response = null;
    try {
      response = await fetch(apiUrl(url), init);
    } catch (exc) {
      if (signal?.aborted) throw exc;
    }
    if (response?.ok) {
      if (bannerShown) hideBanner();
      return parseBody(response);
    }
    const error = response
      ? await toApiError(response)
      : new ApiError({ status: 0, code: "NETWORK_ERROR", detail: "The server could not be reached." });
    const canRetry = RETRY_STATUSES.has(error.status) || (error.status === 0 && method === "GET");
    const wait = canRetry ? retryDelayMs(attempt, error.retryAfter, opts) : 0;
    if (!canRetry || attempt >= opts.retries || (error.retryAfter ?? 0) * 1000 > opts.maxDelayMs) {
      if (error.retryable) showBanner(`${error.detail} (${error.code})`, "error");
      throw error;
    }
    bannerShown = true;
    showBanner(`${error.detail} — retrying in ${Math.ceil(wait / 1000)} s…`, "warn");
    await sleep(wait, signal);
  }
}

export const apiGet = (url, options) => apiRequest("GET", url, options);
export const apiPost = (url, body, options) => apiRequest("POST", url, { ...options, body });

/**
 * Read an application/x-ndjson response, calling onObject for each JSON line as it
 * arrives. No retries (a stream resumes with its own cursor, e.g. from_batch).
 * Resolves to the number of objects read.
 */
export async function streamNdjson(url, onObject, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/x-ndjson", ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(apiUrl(url), init);
  if (!response.ok) throw await toApiError(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let count = 0;
  const emit = (line) => {
    if (line.trim()) {
      onObject(JSON.parse(line));
      count += 1;
    }
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    lines.forEach(emit);
  }
  emit(buffer);
  return count;
}
