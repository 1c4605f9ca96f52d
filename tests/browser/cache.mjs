// SPDX-License-Identifier: PostgreSQL
// cache.mjs - the page while nginx serves the textbook from its cache (contrib/nginx/neonpool.conf
// with its cache on), in Debian's chromium against the stack of tests/integration/t_browser_cache.sh:
// a chapter read before the database stopped shows, with a calm "saved copy" note; a chapter never
// read shows the calm banner and then itself once the database is back; with the database up no
// note is shown. Output as e2e.mjs (lib.mjs).
// Environment: NP_BASE, NP_CTL_DIR (stop-db/start-db requests to the shell), NP_ARTIFACTS,
// NP_SCALE, NP_BOOK (the book's id).
import { writeFileSync, existsSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, ART, ms, sleep, check, result, run, launch, newContext as newCtx, desktop, finish, shot } from './lib.mjs';

const CTL = process.env.NP_CTL_DIR;
const BOOK = process.env.NP_BOOK;

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

const browser = await launch();
const newContext = (opts) => newCtx(browser, opts);
const note = (p) => p.evaluate(() => { const e = document.getElementById('saved-copy'); return e && e.offsetParent !== null ? e.textContent : null; });

await run('a chapter read before the outage shows from the cache, with a calm note', async () => {
  const a = await newContext(desktop);
  const p = await a.newPage();
  await p.goto(`${BASE}/#/books/${BOOK}/chapters/1`, { waitUntil: 'load' });
  await p.waitForSelector('article.chapter p', { timeout: ms(10000) });
  check(await note(p) === null, 'database up: no saved-copy note');
  await a.close();

  await ctl('stop-db');
  const t0 = Date.now();
  // nginx serves its copy STALE once the copy expired and the daemon cannot read the database;
  // the page adds its note only once /readyz says so too (the supervisor's breaker): a request
  // can fail a few ms before the breaker opens, and a page loaded in that window rightly shows
  // the copy without the note (a fresh-clone run: STALE after 177 ms, /readyz still 200)
  let st = '', ready = 0;
  while (Date.now() - t0 < ms(15000)) {
    const res = await fetch(`${BASE}/api/v1/books/${BOOK}`);
    st = `${res.status} ${res.headers.get('X-Cache-Status')}`;
    if (st === '200 STALE') {
      ready = (await fetch(`${BASE}/readyz`, { cache: 'no-store' })).status;
      if (ready === 503) break;
    }
    await sleep(200);
  }
  check(st === '200 STALE', 'database stopped: nginx answers the book read before from its cache', `${st} after ${Date.now() - t0} ms`);
  check(ready === 503, 'database stopped: /readyz says so', `${ready} after ${Date.now() - t0} ms`);

  const b = await newContext(desktop); // an empty browser cache: the copy comes from nginx
  const q = await b.newPage();
  await q.goto(`${BASE}/#/books/${BOOK}/chapters/1`, { waitUntil: 'load' });
  await q.waitForSelector('article.chapter p', { timeout: ms(10000) });
  await q.waitForSelector('#saved-copy', { timeout: ms(5000) });
  const text = await note(q);
  check(text !== null && /saved copy/i.test(text), 'the chapter shows, with the saved-copy note', text || '(none)');
  check(text !== null && !/error|fail|database|5\d\d|stale/i.test(text), 'the note is calm: no error words, codes or jargon', text || '');
  const body = await q.evaluate(() => document.body.textContent);
  check(!/db_unavailable|X-Cache|STALE/.test(body), 'no raw status text on the page');
  await shot(q, 'saved-copy-1280.png');

  // a chapter never read: the banner while waiting, then the chapter by itself
  await q.goto(`${BASE}/#/books/${BOOK}/chapters/7`, { waitUntil: 'load' });
  await q.waitForSelector('#banner:not([hidden])', { timeout: ms(10000) });
  const banner = await q.textContent('#banner');
  check(/unavailable|busy|reached/i.test(banner), 'a chapter never read: the calm banner', banner.trim());
  await ctl('start-db');
  const t1 = Date.now();
  await q.waitForSelector('article.chapter p', { timeout: ms(20000) });
  check(await q.isHidden('#banner'), 'the database back: the unread chapter shows by itself, the banner is gone', `${Date.now() - t1} ms after pg_ctl start`);
  check(await note(q) === null, 'the chapter read from the daemon has no note');
  result(`saved copy shown while the database was down; recovery ${Date.now() - t1} ms after it was back`);
  await b.close();

  // the database up again: the cached chapter, even if nginx still refreshes it, has no note
  const c = await newContext(desktop);
  const r = await c.newPage();
  await r.goto(`${BASE}/#/books/${BOOK}/chapters/1`, { waitUntil: 'load' });
  await r.waitForSelector('article.chapter p', { timeout: ms(10000) });
  check(await note(r) === null, 'database up again: no note on the chapter read before');
  await c.close();
});

await finish(browser);
