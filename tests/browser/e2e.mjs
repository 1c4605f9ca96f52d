// SPDX-License-Identifier: PostgreSQL
// e2e.mjs - the web page in Debian's chromium (playwright-core, headless) against the real stack
// started by tests/integration/t_browser_main.sh. Prints one line per check: "ok - ...",
// "not ok - ...", "# SKIP name: reason", and "RESULT ..." figures. Exit 0 when it ran to the end
// (the shell counts the "not ok" lines).
// Environment: NP_BASE (http://127.0.0.1:PORT), NP_CTL_DIR (stop-db/start-db requests to the
// shell), NP_ARTIFACTS (screenshots), NP_SCALE (timeout scale).
import { readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  BASE, ART, SCALE, ms, sleep, ok, notOk, check, skip, result, measure, run, launch, newContext as newCtx,
  desktop, visibleSpinners, recordBanners, bannerSeen, apiJson, finish, shot
} from './lib.mjs';

const CTL = process.env.NP_CTL_DIR;
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

// ctl(what): ask the shell to stop-db / start-db and wait for it.
async function ctl(what) {
  const done = join(CTL, `${what}.done`);
  rmSync(done, { force: true });
  writeFileSync(join(CTL, what), '');
  const deadline = Date.now() + ms(60000);
  while (!existsSync(done)) {
    if (Date.now() > deadline) throw new Error(`${what}: no answer from the shell`);
    await sleep(50);
  }
  const rc = readFileSync(done, 'utf8').trim();
  if (rc !== '0') throw new Error(`${what} failed (${rc})`);
}

async function axeScan(page, label) {
  await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, n: v.nodes.length, target: v.nodes[0] && v.nodes[0].target.join(' ') }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = res.filter((v) => !(v.impact === 'serious' || v.impact === 'critical'));
  check(bad.length === 0, `axe-core: no serious or critical violation (${label})`,
    bad.length ? JSON.stringify(bad) : `${minor.length} minor/moderate${minor.length ? ' ' + JSON.stringify(minor) : ''}`);
}

const browser = await launch();
const newContext = (opts) => newCtx(browser, opts);

// Is the ask route there (issue 9)? A fresh session's ask answers 404 only when the route is not.
let askAvailable = false;
let askMode = '';
{
  const s = await apiJson('POST', '/api/v1/sessions', { body: {} });
  const res = await fetch(`${BASE}/api/v1/sessions/${s.data.id}/ask`, {
    method: 'POST',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json', Authorization: `Bearer ${s.data.token}` },
    body: JSON.stringify({ question: 'What is VACUUM?' }),
  });
  askAvailable = res.status !== 404 && res.status !== 405;
  if (askAvailable) { try { askMode = (await res.json()).mode || ''; } catch (e) { askMode = '?'; } }
  await apiJson('DELETE', `/api/v1/sessions/${s.data.id}`, { token: s.data.token });
  console.log(`# the ask route ${askAvailable ? `answers ${res.status} (mode ${askMode})` : `answers ${res.status}: not there yet (issue 9)`}`);
}
const NO_ASK = 'the ask route answers 404 (issue 9 not merged): needs POST /api/v1/sessions/{id}/ask';

const ctxA = await newContext(desktop);
const page = await ctxA.newPage();
let sessionA = null;

// First contentful paint with an empty HTTP cache (a new context each time) in a browser that is
// already running with a renderer for the origin (a first navigation to /healthz). Three loads: the
// fastest is the page's own cost (stalls of a shared machine only ever add time): bench/latency
// holds it to its goal (300 ms); the median is reported.
await run('first contentful paint and page weight', async () => {
  const fcps = [];
  let m = null;
  let p = null;
  let cold = null;
  const loads = 3;
  for (let i = 0; i < loads; i++) {
    if (cold) await cold.close();
    cold = await newContext(desktop);
    p = await cold.newPage();
    await p.goto(BASE + '/healthz', { waitUntil: 'load' });
    await p.goto(BASE + '/', { waitUntil: 'load' });
    await p.waitForSelector('#view-title');
    m = await p.evaluate(async () => {
      for (let j = 0; j < 50 && !performance.getEntriesByName('first-contentful-paint').length; j++) await new Promise((r) => setTimeout(r, 20));
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      const nav = performance.getEntriesByType('navigation')[0];
      const res = performance.getEntriesByType('resource').filter((r) => !r.name.includes('/api/'));
      return {
        fcp: fcp ? fcp.startTime : null,
        bytes: nav.decodedBodySize + res.reduce((a, r) => a + r.decodedBodySize, 0),
        fetched: res.filter((r) => r.transferSize > 0).length,
        files: 1 + res.length,
      };
    });
    fcps.push(m.fcp === null ? Infinity : Math.round(m.fcp));
  }
  const sorted = fcps.slice().sort((x, y) => x - y);
  const median = sorted[(loads - 1) >> 1];
  measure('fcp_ms', sorted[0], `first contentful paint on loopback, the fastest of ${loads} cold-cache loads`);
  check(Number.isFinite(sorted[0]), `the page paints (first contentful paint of ${loads} cold-cache loads)`, `${fcps.join(', ')} ms`);
  check(m.bytes < 100 * 1024 && m.fetched === m.files - 1, 'the page weighs under 100 KiB before compression', `${m.bytes} bytes in ${m.files} files`);
  result(`first contentful paint ${sorted[0]} ms fastest, ${median} ms median (${fcps.join(', ')}), page ${m.bytes} bytes in ${m.files} files (cold cache)`);
  // a second load: the versioned assets come from the cache, index.html is revalidated
  const t0 = Date.now();
  await p.reload({ waitUntil: 'load' });
  const fromNet = await p.evaluate(() => performance.getEntriesByType('resource').filter((r) => r.name.includes('/assets/') && r.transferSize > 0).length);
  check(fromNet === 0, 'a reload takes the versioned assets from the cache', `${fromNet} fetched again; reload ${Date.now() - t0} ms`);
  await cold.close();
});

await run('search and open a passage', async () => {
  await page.goto(BASE + '/', { waitUntil: 'load' });
  await page.fill('#q', 'vacuum freeze');
  await page.press('#q', 'Enter');
  await page.waitForSelector('.results li', { timeout: ms(10000) });
  const r = await page.evaluate(() => ({
    n: document.querySelectorAll('.results li').length,
    marks: document.querySelectorAll('.results mark').length,
    rawTags: /<\/?mark>/.test(document.querySelector('.results').textContent),
    top3: [...document.querySelectorAll('.results li')].slice(0, 3).map((li) => li.textContent),
    focused: document.activeElement && document.activeElement.id,
  }));
  check(r.n >= 3, 'search "vacuum freeze" lists results', `${r.n} results`);
  check(r.marks > 0 && !r.rawTags, 'snippets highlight the matches as <mark> elements, no markup shown as text', `${r.marks} marks`);
  check(r.top3.some((t) => t.includes('Routine Vacuuming')), 'a Routine Vacuuming passage in the top 3');
  await shot(page, 'search-1280.png', { fullPage: false });
  const href = await page.getAttribute('.results li a', 'href');
  await page.click('.results li a');
  await page.waitForSelector('.passage.target', { timeout: ms(10000) });
  const t = await page.evaluate(() => {
    const el = document.querySelector('.passage.target');
    const r = el.getBoundingClientRect();
    return { focused: document.activeElement === el, inView: r.top >= 0 && r.top < innerHeight, h1: document.querySelector('h1').textContent, text: el.textContent.length };
  });
  check(t.focused && t.inView && t.text > 0, 'the passage opens in its chapter, in view and focused', `${href} -> "${t.h1}"`);
  await shot(page, 'chapter-1280.png');
  await axeScan(page, 'a chapter with its passage');
});

await run('browse books and chapters', async () => {
  await page.goto(BASE + '/#/books', { waitUntil: 'load' });
  await page.click('main ul a');
  await page.waitForSelector('.chapters a', { timeout: ms(10000) });
  const n = await page.locator('.chapters a').count();
  await page.locator('.chapters a', { hasText: 'Routine Vacuuming' }).first().click();
  await page.waitForSelector('.chapter .passage', { timeout: ms(10000) });
  const h1 = await page.textContent('h1');
  check(n > 100 && /Routine Vacuuming/.test(h1), 'books -> the manual -> its chapter Routine Vacuuming', `${n} chapters, "${h1}"`);
});

await run('start a session and ask', async () => {
  await page.goto(BASE + '/#/', { waitUntil: 'load' });
  // count the answer's text additions (one per delta event; a JSON answer is one). Not only while
  // the turn is busy: the observer runs after the task that read the events, and when the deltas and
  // `done` arrive in one read (retrieval mode answers in microseconds and stores on the connection it
  // kept) the turn is already over when the additions are seen.
  await page.evaluate(() => {
    window.__deltas = 0;
    new MutationObserver((ms) => {
      for (const m of ms) if (m.target.classList && m.target.classList.contains('text') && m.target.closest('.answer')) window.__deltas += m.addedNodes.length;
    }).observe(document.getElementById('main'), { childList: true, subtree: true });
  });
  await page.fill('#question', 'How does VACUUM reclaim space?');
  await page.press('#question', 'Enter');
  await page.waitForFunction(() => JSON.parse(localStorage.getItem('neonpool.sessions.v1') || '[]').length === 1, null, { timeout: ms(10000) });
  sessionA = await page.evaluate(() => JSON.parse(localStorage.getItem('neonpool.sessions.v1'))[0]);
  const listed = await page.locator('#session-list a', { hasText: 'How does VACUUM' }).count();
  check(listed === 1, 'a session is started, kept in localStorage and listed in the sidebar', `session ${sessionA.id}`);
  await page.waitForSelector('.answer[data-state]', { timeout: ms(30000) });
  const st = await page.evaluate(() => ({
    state: document.querySelector('.answer').dataset.state,
    status: document.querySelector('.answer .turn-status').textContent,
    deltas: window.__deltas,
    text: document.querySelector('.answer .text').textContent,
    cites: [...document.querySelectorAll('.answer .cites a')].map((a) => a.textContent + ' | ' + (a.nextSibling ? a.nextSibling.textContent : '')),
    hash: location.hash,
  }));
  check(await visibleSpinners(page) === 0, 'no spinner once the turn is over', `state ${st.state}`);
  check(st.hash === `#/chat/${sessionA.id}`, 'the address names the session', st.hash);
  if (!askAvailable) {
    check(st.state === 'failed' && /not available/.test(st.status), 'without the ask route the turn says so calmly', st.status);
    skip('streamed answer with citations, follow a citation', NO_ASK);
    return;
  }
  check(st.state === 'complete' && st.text.length > 0, 'the answer is complete', `${st.text.length} characters`);
  check(st.deltas >= 2, 'the answer arrived in pieces (streamed)', `${st.deltas} additions`);
  check(st.cites.length > 0, 'citations are listed as numbered links', `${st.cites.length}: ${st.cites.slice(0, 3).join(' ; ')}`);
  check(st.cites.some((c) => c.includes('Routine Vacuuming')), 'a citation of the Routine Vacuuming chapter');
  await shot(page, 'answer-1280.png');
  await axeScan(page, 'a chat with an answer');
  await page.click('.answer .cites a');
  await page.waitForSelector('.passage.target', { timeout: ms(10000) });
  check(await page.evaluate(() => document.activeElement.classList.contains('target')), 'following a citation opens the passage in its chapter, focused');
  await page.goBack();
  await page.waitForSelector('.answer[data-state]', { timeout: ms(10000) });
  check(await page.locator('.msg.user').count() >= 1, 'the history is shown again after going back');
});

await run('a second reader cannot see the first reader\'s sessions', async () => {
  if (!sessionA) throw new Error('no session from the previous test');
  const ctxB = await newContext(desktop);
  const b = await ctxB.newPage();
  await b.goto(`${BASE}/#/chat/${sessionA.id}`, { waitUntil: 'load' });
  await b.waitForSelector('#view-title');
  const v = await b.evaluate(async (id) => {
    const noToken = await fetch(`/api/v1/sessions/${id}/messages`);
    const wrong = await fetch(`/api/v1/sessions/${id}/messages`, { headers: { Authorization: 'Bearer ' + 'A'.repeat(43) } });
    return { h1: document.querySelector('h1').textContent, list: document.getElementById('session-list').textContent, noToken: noToken.status, wrong: wrong.status,
      body: document.body.textContent };
  }, sessionA.id);
  check(v.h1 === 'Chat not found' && /No chats yet/.test(v.list), 'in another browser context the chat is not found and no chat is listed', v.h1);
  check(v.noToken === 404 && v.wrong === 404, 'the messages route answers 404 without the token and with another token', `${v.noToken}, ${v.wrong}`);
  check(!v.body.includes('How does VACUUM reclaim space'), 'nothing of the first reader\'s question shows');
  await ctxB.close();
});

await run('keyboard only: search, open a result, ask, delete the chat', async () => {
  const ctx = await newContext(desktop);
  const k = await ctx.newPage();
  await k.goto(BASE + '/', { waitUntil: 'load' });
  await k.waitForSelector('#view-title');
  const order = [];
  const noRing = [];
  const tabTo = async (pred, what, max = 40) => {
    for (let i = 0; i < max; i++) {
      await k.keyboard.press('Tab');
      const d = await k.evaluate(() => {
        const e = document.activeElement;
        const cs = getComputedStyle(e);
        return { tag: e.tagName, id: e.id, text: (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 40), href: e.getAttribute('href'), cls: e.className,
          ring: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2, docFocus: document.hasFocus() };
      });
      order.push(d.id || d.text || d.tag);
      // (after Tab wrapped past the end of the page the document itself may not have focus yet)
      if (!d.ring && d.docFocus) noRing.push(d.id || d.text || d.tag);
      if (pred(d)) return d;
    }
    throw new Error(`Tab never reached ${what} (went: ${order.slice(-12).join(' > ')})`);
  };
  const first = await tabTo(() => true, 'anything', 1);
  check(first.text === 'Skip to content', 'the first Tab stop is the skip link', first.text);
  await tabTo((d) => d.id === 'q', 'the search box');
  await k.keyboard.type('savepoint rollback');
  await k.keyboard.press('Enter');
  await k.waitForSelector('.results li a', { timeout: ms(10000) });
  await tabTo((d) => d.cls === 'result-title', 'the first result');
  await k.keyboard.press('Enter');
  await k.waitForSelector('.passage.target', { timeout: ms(10000) });
  check(await k.evaluate(() => document.activeElement.classList.contains('target')), 'Enter on a result opens its passage, focused');
  await tabTo((d) => d.text === 'Ask' && d.href === '#/', 'the Ask link');
  await k.keyboard.press('Enter');
  await k.waitForSelector('#question');
  await tabTo((d) => d.id === 'question', 'the question box');
  await k.keyboard.type('What does VACUUM FREEZE do?');
  await k.keyboard.press('Enter');
  await k.waitForSelector('.answer[data-state]', { timeout: ms(30000) });
  const state = await k.getAttribute('.answer', 'data-state');
  check(askAvailable ? state === 'complete' : state === 'failed', 'Enter in the question box asks', `state ${state}`);
  if (askAvailable) {
    await k.focus('#question');
    await tabTo((d) => d.href && /^#\/passages\/|[?&]p=[0-9]+$/.test(d.href), 'a citation');
    await k.keyboard.press('Enter');
    await k.waitForSelector('.passage.target', { timeout: ms(10000) });
    check(true, 'a citation is reached and followed with the keyboard');
    await k.goBack();
  } else {
    skip('keyboard: follow a citation', NO_ASK);
  }
  await k.waitForSelector('#session-list button');
  await k.focus('#new-chat');
  await tabTo((d) => d.tag === 'BUTTON' && /^Delete chat/.test(d.text), 'the delete button of the chat');
  await k.keyboard.press('Enter');
  await k.waitForFunction(() => JSON.parse(localStorage.getItem('neonpool.sessions.v1') || '[]').length === 0, null, { timeout: ms(10000) });
  const after = await k.evaluate(() => document.activeElement.id);
  check(after === 'new-chat' || after === 'question', 'the chat is deleted with the keyboard; focus goes to New chat or the new question box', after);
  check(noRing.length === 0, 'every element reached with Tab shows a focus ring', `${order.length} stops${noRing.length ? '; without: ' + noRing.slice(0, 5).join(', ') : ''}`);
  console.log(`# focus order: ${order.slice(0, 14).join(' > ')} ...`);
  await ctx.close();
});

await run('screenshots at 360 px', async () => {
  const ctx = await newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  const p = await ctx.newPage();
  if (sessionA) {
    await p.goto(BASE + '/', { waitUntil: 'load' });
    await p.evaluate((s) => localStorage.setItem('neonpool.sessions.v1', JSON.stringify([s])), sessionA);
    await p.goto(`${BASE}/#/chat/${sessionA.id}`, { waitUntil: 'load' });
    await p.reload({ waitUntil: 'load' });
    await p.waitForSelector('.log .msg, .log .intro', { timeout: ms(10000) });
    check(await p.locator('#session-list a').count() === 1, 'the chat is listed (behind the Chats button at 360 px)');
  } else {
    await p.goto(BASE + '/', { waitUntil: 'load' });
  }
  const over = await p.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  check(over <= 0, 'no horizontal scrolling at 360 px (chat)', `${over} px too wide`);
  await shot(p, 'chat-360.png', { fullPage: true });
  await p.click('#chats-toggle');
  check(await p.isVisible('#new-chat'), 'at 360 px the Chats button opens the list of chats');
  await shot(p, 'chats-open-360.png');
  await p.goto(`${BASE}/#/search?q=${encodeURIComponent('vacuum freeze')}`, { waitUntil: 'load' });
  await p.waitForSelector('.results li', { timeout: ms(10000) });
  const over2 = await p.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  check(over2 <= 0, 'no horizontal scrolling at 360 px (search)', `${over2} px too wide`);
  await shot(p, 'search-360.png');
  await axeScan(p, 'search results at 360 px');
  await ctx.close();
  await page.goto(`${BASE}/#/`, { waitUntil: 'load' });
  await shot(page, 'chat-1280.png');
});

// The stream as the page reads it, the ask route's answers replaced in the browser (page.route):
// the cases the real stack does not give on demand. No spinner may be left in any of them.
await run('broken streams: error event, end without done, ask_busy', async () => {
  const ctx = await newContext(desktop);
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const p = await ctx.newPage();
  await p.goto(BASE + '/', { waitUntil: 'load' });
  const cites = { message_id: '999999999', question_id: '1', mode: 'retrieval', citations: [{ n: 1, passage_id: '1', book: 'B', chapter: 'C', title: 'T', snippet: 's' }] };
  const cases = [
    ['an error event', `event: citations\ndata: ${JSON.stringify(cites)}\n\ndata: {"delta":"Partial "}\n\nevent: error\ndata: {"error":{"code":"llm_timeout","message":"upstream timed out after 30000 ms"},"message_id":"999999999"}\n\n`, 'failed'],
    ['a stream cut before any event', 'data: {"del', 'failed'],
  ];
  for (const [what, body, want] of cases) {
    await p.route('**/api/v1/sessions/*/ask', (r) => r.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' }, body }));
    await p.fill('#question', `Case: ${what}`);
    await p.press('#question', 'Enter');
    const turn = p.locator('.answer').last();
    await turn.locator('xpath=self::*[@data-state]').waitFor({ timeout: ms(10000) });
    const v = await turn.evaluate((el) => ({ state: el.dataset.state, status: el.querySelector('.turn-status').textContent, retry: !!el.querySelector('button.retry'), busy: el.getAttribute('aria-busy') }));
    check(v.state === want && v.retry && v.busy === 'false', `${what}: the turn fails calmly with Retry`, v.status);
    check(!/timed out after|llm_timeout/.test(await p.textContent('body')), `${what}: no raw error text shown`);
    check(await visibleSpinners(p) === 0, `${what}: no spinner left`);
    await p.unroute('**/api/v1/sessions/*/ask');
  }
  // Retry of the failed turn, against a stream that completes
  await p.route('**/api/v1/sessions/*/ask', (r) => r.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' },
    body: `event: citations\ndata: ${JSON.stringify(cites)}\n\n: keepalive\n\ndata: {"delta":"Fine [1]."}\n\nevent: done\ndata: {"message_id":"999999999","status":"complete","citations_used":[1]}\n\n` }));
  await p.locator('.answer button.retry').last().click();
  await p.waitForFunction(() => [...document.querySelectorAll('.answer')].pop().dataset.state === 'complete', null, { timeout: ms(10000) });
  const t = await p.evaluate(() => { const a = [...document.querySelectorAll('.answer')].pop(); return { text: a.querySelector('.text').textContent, link: a.querySelector('.text a.cite-ref') && a.querySelector('.text a.cite-ref').getAttribute('href') }; });
  check(t.text === 'Fine [1].' && t.link === '#/passages/1', 'Retry asks again; the answer\'s [1] becomes a link to its passage', JSON.stringify(t));
  await p.locator('.answer').last().getByRole('button', { name: 'Copy' }).click();
  await p.waitForFunction(() => [...document.querySelectorAll('.answer')].pop().querySelector('.actions button').textContent !== 'Copy', null, { timeout: ms(5000) });
  const copied = await p.evaluate(async () => ({ label: [...document.querySelectorAll('.answer')].pop().querySelector('.actions button').textContent, clip: await navigator.clipboard.readText() }));
  check(copied.label === 'Copied' && copied.clip === 'Fine [1].', 'Copy puts the answer\'s text on the clipboard', JSON.stringify(copied));
  await p.unroute('**/api/v1/sessions/*/ask');
  // 503 ask_busy with Retry-After: the calm banner, then the page asks again by itself
  let calls = 0;
  await p.route('**/api/v1/sessions/*/ask', (r) => {
    calls++;
    if (calls === 1) return r.fulfill({ status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '1' }, body: '{"error":{"code":"ask_busy","message":"all 2 ask workers are busy"}}' });
    return r.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' }, body: `event: citations\ndata: ${JSON.stringify(cites)}\n\ndata: {"delta":"Later."}\n\nevent: done\ndata: {"message_id":"999999999","status":"complete","citations_used":[]}\n\n` });
  });
  await p.fill('#question', 'Case: ask_busy');
  await recordBanners(p); // the banner is up for about the 1 s of Retry-After
  await p.press('#question', 'Enter');
  const busy = await bannerSeen(p, null, ms(5000));
  const bannerText = busy.text;
  check(/busy/i.test(bannerText) && !/ask workers|ask_busy/.test(bannerText), 'ask_busy: a calm banner', bannerText.trim());
  check(busy.spinners === 0, 'ask_busy: no spinner while waiting', `${busy.spinners} spinner(s)`);
  await p.waitForFunction(() => [...document.querySelectorAll('.answer')].pop().dataset.state === 'complete', null, { timeout: ms(10000) });
  check(calls === 2 && await p.isHidden('#banner'), 'after Retry-After the page asked again by itself; the banner is gone', `${calls} requests`);
  await ctx.close();
});

// POST /api/v1/sessions takes no Idempotency-Key: the page sends it again by itself only after an
// answer that says nothing was written, never after an unknown outcome (an orphan session).
await run('a new session is not sent again after an unknown outcome', async () => {
  const ctx = await newContext(desktop);
  const p = await ctx.newPage();
  await p.goto(BASE + '/', { waitUntil: 'load' });
  let posts = 0;
  let first = { status: 503, headers: { 'Content-Type': 'application/json' }, body: '{"error":{"code":"db_outcome_unknown","message":"x"}}' };
  await p.route('**/api/v1/sessions', (r) => {
    if (r.request().method() !== 'POST') return r.continue();
    posts++;
    return posts === 1 ? r.fulfill(first) : r.continue();
  });
  await p.fill('#question', 'How does VACUUM reclaim space?');
  await p.press('#question', 'Enter');
  const turn = p.locator('.answer').last();
  await turn.locator('xpath=self::*[@data-state]').waitFor({ timeout: ms(10000) });
  await sleep(1500); // longer than a Retry-After of 1 s: a retry would have gone out by now
  const v = await turn.evaluate((el) => ({ state: el.dataset.state, status: el.querySelector('.turn-status').textContent, retry: !!el.querySelector('button.retry') }));
  check(posts === 1, 'db_outcome_unknown: POST /sessions sent once, not again by itself', `${posts} POSTs`);
  check(v.state === 'failed' && v.retry && /could not be started/.test(v.status), 'the turn says the conversation could not be started, with Retry', v.status);
  check(await visibleSpinners(p) === 0, 'no spinner left');
  check(await p.evaluate(() => JSON.parse(localStorage.getItem('neonpool.sessions.v1') || '[]').length) === 0, 'no session kept');
  // a known outcome (nothing written) is sent again by itself: one session in the end
  posts = 0;
  first = { status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '1' }, body: '{"error":{"code":"db_unavailable","message":"x"}}' };
  await p.locator('.answer button.retry').last().click();
  await p.waitForFunction(() => JSON.parse(localStorage.getItem('neonpool.sessions.v1') || '[]').length === 1, null, { timeout: ms(10000) });
  check(posts === 2, 'db_unavailable: sent again after Retry-After, then created', `${posts} POSTs`);
  await p.unroute('**/api/v1/sessions');
  await ctx.close();
});

await run('offline and slow', async () => {
  const ctx = await newContext(desktop);
  const p = await ctx.newPage();
  await p.goto(BASE + '/', { waitUntil: 'load' });
  await p.waitForSelector('#view-title');
  await ctx.setOffline(true);
  await p.evaluate(() => { location.hash = '#/books'; });
  await p.waitForSelector('#banner:not([hidden])', { timeout: ms(5000) });
  const offline = await p.textContent('#banner');
  check(/offline/i.test(offline), 'offline: the banner says so', offline.trim());
  check(await visibleSpinners(p) === 0, 'offline: no spinner while waiting');
  await ctx.setOffline(false);
  await p.waitForSelector('main ul a', { timeout: ms(10000) });
  check(await p.isHidden('#banner'), 'back online: the books show by themselves, the banner is gone');
  // a slow answer (held 3.5 s in the browser): "taking longer than usual", gone when it arrives
  await p.route('**/api/v1/books/*', async (r) => { await sleep(3500); await r.continue(); });
  await recordBanners(p); // the notice is up from 2.5 s until the answer at 3.5 s
  await p.click('main ul a');
  const slow = (await bannerSeen(p, 'slow', ms(10000))).text;
  await p.waitForSelector('.chapters a', { timeout: ms(10000) });
  check(/longer than usual/.test(slow) && await p.isHidden('#banner'), 'slow: a notice while it takes long, gone when the answer is there', slow.trim());
  await ctx.close();
});

await run('the database stopped: a calm banner, then recovery by itself', async () => {
  const ctx = await newContext(desktop);
  const p = await ctx.newPage();
  await p.goto(BASE + '/#/books', { waitUntil: 'load' });
  await p.waitForSelector('main ul a', { timeout: ms(10000) });
  await ctl('stop-db');
  const t0 = Date.now();
  // the daemon answers 503 db_unavailable once it knows the database is gone
  let st = 0;
  for (let i = 0; i < 100 && st !== 503; i++) {
    st = (await apiJson('GET', '/api/v1/search?q=vacuum')).status;
    if (st !== 503) await sleep(100);
  }
  check(st === 503, 'the API answers 503 with the database stopped', `${st} after ${Date.now() - t0} ms`);
  await p.goto(`${BASE}/#/search?q=${encodeURIComponent('autovacuum daemon')}`, { waitUntil: 'load' });
  await p.waitForSelector('#banner:not([hidden])', { timeout: ms(10000) });
  await sleep(300);
  const v = await p.evaluate(() => ({ banner: document.getElementById('banner').textContent, body: document.body.textContent }));
  check(/unavailable|busy|reached/i.test(v.banner), 'a calm banner says the library is unavailable and that the page carries on', v.banner.trim());
  check(!/db_unavailable|database down|connection refused|circuit/i.test(v.body), 'no raw error text on the page');
  check(await visibleSpinners(p) === 0, 'no spinner while waiting');
  await shot(p, 'db-down-1280.png');
  await sleep(1500);
  await ctl('start-db');
  const t1 = Date.now();
  await p.waitForSelector('.results li', { timeout: ms(20000) });
  const rec = Date.now() - t1;
  check(await p.isHidden('#banner'), 'the database back: the results show by themselves and the banner is gone', `${rec} ms after pg_ctl start`);
  check(await visibleSpinners(p) === 0, 'no spinner after recovery');
  result(`database outage: banner, recovery ${rec} ms after the database was back`);
  await ctx.close();
});

// ---- the ask route's own behaviour (issue 9): Stop, reload mid-stream -------------------------
await run('Stop mid-stream', async () => {
  if (!askAvailable) { skip('Stop mid-stream (the cancel route is called and the answer is stored as stopped)', NO_ASK); return; }
  const ctx = await newContext(desktop);
  const p = await ctx.newPage();
  await p.goto(BASE + '/', { waitUntil: 'load' });
  const cancels = [];
  p.on('response', (r) => { if (/\/ask\/[0-9]+\/cancel$/.test(new URL(r.url()).pathname)) cancels.push(r.status()); });
  // press Stop the moment the answer's id is known (its citations arrived): a retrieval answer
  // takes only some hundred milliseconds, too short for a round trip from here
  await p.evaluate(() => {
    new MutationObserver((ms, obs) => {
      const a = document.querySelector('.answer');
      if (a && /Writing the answer/.test(a.querySelector('.turn-status').textContent)) {
        obs.disconnect();
        window.__stopAt = a.querySelector('.text').textContent.length;
        document.querySelector('button.stop').click();
      }
    }).observe(document.getElementById('main'), { childList: true, subtree: true, characterData: true });
  });
  await p.fill('#question', 'Explain VACUUM, autovacuum and the visibility map in detail.');
  await p.press('#question', 'Enter');
  await p.waitForSelector('.answer[data-state]', { timeout: ms(20000) });
  const state = await p.getAttribute('.answer', 'data-state');
  if (cancels.length === 1 && cancels[0] === 404) { skip('Stop mid-stream', `the cancel route answers 404 (not there yet; the page ended the turn as ${state})`); await ctx.close(); return; }
  if (cancels.length === 0 || (state === 'complete')) { skip('Stop mid-stream', `the answer ended (${state}) before Stop reached the server (cancel answers: ${JSON.stringify(cancels)})`); await ctx.close(); return; }
  check(state === 'stopped', 'Stop ends the answer as stopped', state);
  check(cancels.length === 1 && cancels[0] === 200, 'Stop called the cancel route', JSON.stringify(cancels));
  check(await visibleSpinners(p) === 0, 'no spinner after Stop');
  const s = await p.evaluate(() => JSON.parse(localStorage.getItem('neonpool.sessions.v1'))[0]);
  const msgs = await apiJson('GET', `/api/v1/sessions/${s.id}/messages`, { token: s.token });
  const a = msgs.data.messages.find((m) => m.role === 'assistant');
  check(a && a.status === 'stopped', 'the stored answer is stopped', a && a.status);
  await ctx.close();
});

await run('reload mid-stream', async () => {
  if (!askAvailable) { skip('reload mid-stream (the complete answer appears in the history)', NO_ASK); return; }
  const ctx = await newContext(desktop);
  const p = await ctx.newPage();
  await p.goto(BASE + '/', { waitUntil: 'load' });
  await p.fill('#question', 'How do I tune autovacuum for a large table?');
  await p.press('#question', 'Enter');
  await p.waitForFunction(() => { const a = document.querySelector('.answer'); return a && (a.dataset.state || a.querySelector('.text').textContent.length > 0); }, null, { timeout: ms(20000) });
  const early = await p.getAttribute('.answer', 'data-state');
  await p.reload({ waitUntil: 'load' });
  await p.waitForSelector('.answer', { timeout: ms(10000) });
  const during = await p.evaluate(() => document.querySelector('.answer .turn-status').textContent);
  await p.waitForSelector('.answer[data-state]', { timeout: ms(60000) });
  const v = await p.evaluate(() => ({ state: document.querySelector('.answer').dataset.state, text: document.querySelector('.answer .text').textContent.length, cites: document.querySelectorAll('.answer .cites a').length }));
  check(v.state === 'complete' && v.text > 0, 'after a reload mid-stream the complete answer is in the history',
    `${early ? 'finished before the reload' : `reloaded mid-stream ("${during}")`}: ${v.text} characters, ${v.cites} citations`);
  check(await visibleSpinners(p) === 0, 'no spinner once it is there');
  await ctx.close();
});

await finish(browser);
