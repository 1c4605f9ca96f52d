// SPDX-License-Identifier: PostgreSQL
// api.js - the page's client of the JSON API (same origin). Ids are exact 64-bit integers: numbers
// of 16 digits or more are kept as text (parseExact) so JavaScript never rounds them. A request the
// server could not serve for now (503 db_busy/db_unavailable/ask_busy, 502/504 from nginx) or that
// never reached it (offline) is retried by itself after Retry-After (a new session only when nothing
// was written: createSession); listeners of `net` show a calm banner meanwhile. Error bodies are never shown: callers get the stable code only.

export const net = new EventTarget();

const RETRYABLE = new Set([502, 503, 504]);
const SLOW_MS = 2500;

// parseExact(text): JSON.parse, with every integer literal of 16 digits or more turned into a string.
export function parseExact(text) {
  let out = '';
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 92) i += 2;
        else { i++; if (d === 34) break; }
      }
    } else if ((c >= 48 && c <= 57) || c === 45) {
      let j = i + 1;
      while (j < n && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
      const isInt = !(j < n && (text[j] === '.' || text[j] === 'e' || text[j] === 'E'));
      if (isInt && c !== 45 && j - i >= 16) {
        out += text.slice(last, i) + '"' + text.slice(i, j) + '"';
        last = j;
      }
      while (j < n && /[0-9.eE+-]/.test(text[j])) j++;
      i = j;
    } else {
      i++;
    }
  }
  return JSON.parse(out + text.slice(last));
}

export class ApiError extends Error {
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

// sleep(ms, signal): resolves after ms, or early when `net` gets "retry-now"; rejects on abort.
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const done = () => { clearTimeout(t); net.removeEventListener('retry-now', done); window.removeEventListener('online', done); resolve(); };
    const t = setTimeout(done, ms);
    net.addEventListener('retry-now', done);
    window.addEventListener('online', done);
    if (signal) {
      if (signal.aborted) { done(); reject(signal.reason); return; }
      signal.addEventListener('abort', () => { done(); reject(signal.reason); }, { once: true });
    }
  });
}

function emit(type, detail) {
  net.dispatchEvent(new CustomEvent(type, { detail }));
}

export async function errorCode(res) {
  try {
    const body = parseExact(await res.text());
    if (body && body.error && typeof body.error.code === 'string') return body.error.code;
  } catch (e) { /* not JSON: nginx's own page */ }
  return 'http_' + res.status;
}

let waiting = 0;

// send(method, path, opts): the Response of the first attempt that is not retryable. opts: token,
// body (an object, sent as JSON), headers, signal, retry (default true), retryOnly (a Set of error
// codes: then only a retryable answer with one of them is retried), onWait({code, seconds}).
// A retryable answer (or a network failure) that is not retried throws ApiError.
export async function send(method, path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  if (opts.token) headers.Authorization = 'Bearer ' + opts.token;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const retry = opts.retry !== false;
  let backoff = 1;
  let isWaiting = false;
  for (;;) {
    let res = null;
    let code;
    let seconds;
    try {
      // the browser's HTTP cache does what the server says: content routes are cached and
      // revalidated (ETag, 304), every other answer is no-store
      res = await fetch(path, { method, headers, body, signal: opts.signal });
    } catch (e) {
      if (opts.signal && opts.signal.aborted) throw e;
      code = navigator.onLine === false ? 'offline' : 'unreachable';
    }
    if (res && !RETRYABLE.has(res.status)) {
      if (isWaiting) { waiting--; emit('recovered', { waiting }); }
      return res;
    }
    if (res) {
      code = await errorCode(res);
      const ra = parseInt(res.headers.get('Retry-After') || '', 10);
      seconds = Number.isFinite(ra) && ra > 0 ? Math.min(ra, 60) : Math.min(backoff, 15);
    } else {
      seconds = Math.min(backoff, 15);
    }
    backoff *= 2;
    if (!retry || (opts.retryOnly && !opts.retryOnly.has(code))) {
      if (isWaiting) { waiting--; emit('recovered', { waiting }); }
      throw new ApiError(res ? res.status : 0, code);
    }
    if (!isWaiting) { isWaiting = true; waiting++; }
    emit('wait', { code, seconds, until: Date.now() + seconds * 1000 });
    if (opts.onWait) opts.onWait({ code, seconds });
    try {
      await sleep(seconds * 1000, opts.signal);
    } catch (e) {
      waiting--;
      emit('recovered', { waiting });
      throw e;
    }
  }
}

// json(method, path, opts): the parsed body of a 2xx answer (null for 204); ApiError otherwise.
// opts.meta (an object) gets stale: true when nginx answered with its saved copy because the
// service failed (X-Cache-Status: STALE).
export async function json(method, path, opts = {}) {
  const started = Date.now();
  const timer = setTimeout(() => emit('slow', { path }), SLOW_MS);
  try {
    const res = await send(method, path, opts);
    if (res.status === 204) return null;
    if (!res.ok) throw new ApiError(res.status, await errorCode(res));
    if (opts.meta) opts.meta.stale = res.headers.get('X-Cache-Status') === 'STALE';
    const text = await res.text();
    try {
      return parseExact(text);
    } catch (e) {
      throw new ApiError(res.status, 'bad_response');
    }
  } finally {
    clearTimeout(timer);
    if (Date.now() - started >= SLOW_MS) emit('slow-end', { path });
  }
}

// databaseAway(): whether the service says it cannot reach its database now (GET /readyz, answered
// from the daemon's shared memory, not retried). nginx also serves a saved copy STALE for a moment
// while it refreshes an expired one: this tells that apart from an outage.
export async function databaseAway() {
  try {
    const res = await fetch('/readyz', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    return res.status === 503;
  } catch (e) {
    return true;
  }
}

// The daemon's answers to a write that say it did not commit (doc/openapi.yaml, "Writes"): only
// db_outcome_unknown, nginx's 502/504 and a lost connection leave the outcome open.
export const UNWRITTEN = new Set(['db_busy', 'db_unavailable', 'db_timeout']);

// createSession(opts): POST /api/v1/sessions -> {id, token}. It takes no Idempotency-Key (the
// token is shown once, only its hash is kept: a replay could not give it back), so it is sent
// again by itself only when nothing was written; otherwise the ApiError goes to the caller, who
// says so and lets the reader ask again, rather than leave an orphan session behind.
export function createSession(opts = {}) {
  return json('POST', '/api/v1/sessions', { ...opts, body: {}, retryOnly: UNWRITTEN });
}
