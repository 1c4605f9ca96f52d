// SPDX-License-Identifier: PostgreSQL
// session_create_retry.mjs - the page creates a session (api.js createSession) at most once per
// click: POST /api/v1/sessions takes no Idempotency-Key (its token is shown once and only its
// hash is kept, so a replay could not give it back), so it is sent again by itself only after an
// answer that says nothing was written (503 db_busy / db_unavailable, 504 db_timeout), never after
// one that leaves the outcome unknown (503 db_outcome_unknown, nginx's 502/504, a lost
// connection): there a second POST could leave an orphan session. Under node, with fetch stubbed;
// run by tests/check-www.sh in `make check`.
import assert from 'node:assert/strict';

// what api.js touches of a browser while it waits: window's 'online' event, navigator.onLine
if (typeof window === 'undefined') globalThis.window = new EventTarget();
if (typeof navigator === 'undefined') Object.defineProperty(globalThis, 'navigator', { value: { onLine: true }, configurable: true });
const { createSession, net, ApiError } = await import('../../www/assets/api.js');

// skip the Retry-After sleeps: the page's "retry now" event, a moment after each wait starts
net.addEventListener('wait', () => setTimeout(() => net.dispatchEvent(new Event('retry-now')), 5));

const envelope = (status, code, extra = {}) => new Response(JSON.stringify({ error: { code, message: 'x' } }),
  { status, headers: { 'Content-Type': 'application/json', 'Retry-After': '1', ...extra } });
const created = () => new Response('{"id":12345678901234567,"token":"t","created_at":"2026-01-01T00:00:00Z"}',
  { status: 201, headers: { 'Content-Type': 'application/json' } });

// script: what each POST gets, in order (a function: called; 'network': fetch rejects); past its
// end every POST is created. Returns [outcome, posts].
async function run(script) {
  let posts = 0;
  globalThis.fetch = async (path, init) => {
    assert.equal(path, '/api/v1/sessions');
    assert.equal(init.method, 'POST');
    const step = script[posts++];
    if (step === 'network') throw new TypeError('Failed to fetch');
    return step ? step() : created();
  };
  try {
    return [await createSession({}), posts];
  } catch (e) {
    return [e, posts];
  }
}

let checks = 0;
async function unknown(name, step, code) {
  const [e, posts] = await run([step]);
  assert.equal(posts, 1, `${name}: POST /sessions sent ${posts} times (a second one may leave an orphan session)`);
  assert.ok(e instanceof ApiError, `${name}: the caller gets an ApiError`);
  assert.equal(e.code, code, `${name}: its code`);
  checks += 3;
}
await unknown('503 db_outcome_unknown', () => envelope(503, 'db_outcome_unknown'), 'db_outcome_unknown');
await unknown("nginx's 502 upstream_unavailable", () => envelope(502, 'upstream_unavailable'), 'upstream_unavailable');
await unknown("nginx's 504 upstream_timeout", () => envelope(504, 'upstream_timeout'), 'upstream_timeout');
await unknown('a 502 without the envelope', () => new Response('<html>bad gateway</html>', { status: 502 }), 'http_502');
await unknown('a lost connection', 'network', 'unreachable');

// nothing was written: sent again by itself until it is created, one session in the end
const [s, posts] = await run([() => envelope(503, 'db_unavailable'), () => envelope(503, 'db_busy'),
  () => envelope(504, 'db_timeout')]);
assert.equal(posts, 4, 'db_unavailable, db_busy, db_timeout: retried, then created');
assert.equal(s.id, '12345678901234567', 'the created session, its id exact');
checks += 2;
console.log(`session_create_retry.mjs: ok (${checks} checks)`);
