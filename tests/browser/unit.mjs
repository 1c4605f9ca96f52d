// SPDX-License-Identifier: PostgreSQL
// unit.mjs - the page's pure parsers under node (no browser, no npm package), run by
// tests/check-www.sh in `make check`: the SSE parser (sse.js) against every way a stream can be cut
// into chunks (random byte splits, inside UTF-8 sequences and CRLF pairs, every line ending), the
// exact-id JSON reader (api.js parseExact) and the snippet unescaper (dom.js). Seeded: a failure
// prints its seed; NP_UNIT_SEED=N replays it, NP_UNIT_ROUNDS=N runs longer.
import assert from 'node:assert/strict';
import { SSEParser, readEvents } from '../../www/assets/sse.js';
import { parseExact } from '../../www/assets/api.js';
import { unescapeHtml } from '../../www/assets/dom.js';

const SEED = Number(process.env.NP_UNIT_SEED || 20261130);
const ROUNDS = Number(process.env.NP_UNIT_ROUNDS || 400);
let state = SEED >>> 0;
const rnd = () => { state = (state * 1664525 + 1013904223) >>> 0; return state / 4294967296; };
const pick = (a) => a[Math.floor(rnd() * a.length)];
const ALPHABET = ['a', 'Z', ' ', ':', '{', '"', '\\', 'é', '漢', '😀', '[1]', 'data', 'event', '\t'];
const text = (n) => Array.from({ length: Math.floor(rnd() * n) }, () => pick(ALPHABET)).join('');

// one random stream: events (name or none, 1-3 data lines), comments, a line-ending style
function randomStream() {
  const events = [];
  const eol = pick(['\n', '\r\n', '\r']);
  let s = rnd() < 0.3 ? ': hello' + eol : '';
  const n = 1 + Math.floor(rnd() * 6);
  for (let i = 0; i < n; i++) {
    const name = rnd() < 0.5 ? pick(['citations', 'done', 'error']) : '';
    const lines = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => text(20));
    if (name) s += `event: ${name}${eol}`;
    for (const l of lines) s += rnd() < 0.5 || l.startsWith(" ") ? `data: ${l}${eol}` : `data:${l}${eol}`;
    if (rnd() < 0.3) s += `: keepalive${eol}`;
    if (rnd() < 0.2) s += `id: ${i}${eol}`;
    s += eol;
    events.push({ event: name || 'message', data: lines.join('\n') });
  }
  // an event cut off by the end of the stream is dropped
  if (rnd() < 0.3) s += `event: done${eol}data: {"cut":`;
  return { s, events };
}

async function viaReadableStream(bytes) {
  const chunks = [];
  let i = 0;
  while (i < bytes.length) {
    const len = 1 + Math.floor(rnd() * 12);
    chunks.push(bytes.slice(i, i + len));
    i += len;
  }
  const body = new ReadableStream({ pull(c) { if (chunks.length) c.enqueue(chunks.shift()); else c.close(); } });
  const got = [];
  await readEvents(body, (e) => got.push(e));
  return got;
}

let checks = 0;
try {
  for (let r = 0; r < ROUNDS; r++) {
    const { s, events } = randomStream();
    const whole = [];
    const p = new SSEParser((e) => whole.push(e));
    p.push(s);
    assert.deepEqual(whole, events, 'one chunk');
    // every split of the text at one point
    for (let cut = 0; cut <= s.length; cut += 1 + Math.floor(rnd() * 4)) {
      const got = [];
      const q = new SSEParser((e) => got.push(e));
      q.push(s.slice(0, cut));
      q.push(s.slice(cut));
      assert.deepEqual(got, events, `split at ${cut}`);
    }
    assert.deepEqual(await viaReadableStream(new TextEncoder().encode(s)), events, 'random byte chunks');
    checks += 3;
  }
  // an event without data dispatches nothing; a field without a colon is a field with an empty value
  const got = [];
  const q = new SSEParser((e) => got.push(e));
  q.push('event: x\n\ndata\n\n');
  assert.deepEqual(got, [{ event: 'message', data: '' }]);

  // parseExact: big integers kept exact as text, everything else as JSON.parse
  assert.deepEqual(parseExact('{"id": 9223372036854775807, "n": 12, "f": 1.5e300, "neg": -9223372036854775807}'),
    { id: '9223372036854775807', n: 12, f: 1.5e300, neg: -9223372036854775807 });
  assert.deepEqual(parseExact('{"s": "id 9223372036854775807 \\" 12345678901234567"}'), { s: 'id 9223372036854775807 " 12345678901234567' });
  assert.deepEqual(parseExact('[1234567890123456, 123456789012345]'), ['1234567890123456', 123456789012345]);
  for (let r = 0; r < ROUNDS; r++) {
    const v = { a: text(10), b: Math.floor(rnd() * 1e12), c: [rnd(), -Math.floor(rnd() * 1e9), null, true], d: { e: text(5) } };
    assert.deepEqual(parseExact(JSON.stringify(v)), v);
    checks++;
  }
  assert.throws(() => parseExact('{"a": }'));

  // the five escapes of an HTML-safe snippet, nothing else
  assert.equal(unescapeHtml('a &lt;b&gt; &amp;lt; &quot;c&quot; &#39;d&#x27; &copy; &'), 'a <b> &lt; "c" \'d\' &copy; &');
  checks += 8;
} catch (e) {
  console.error(`unit.mjs: FAILED (seed ${SEED}): ${e.message}`);
  process.exit(1);
}
console.log(`unit.mjs: ok (${checks} checks, seed ${SEED})`);
