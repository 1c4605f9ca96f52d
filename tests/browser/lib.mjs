// SPDX-License-Identifier: PostgreSQL
// lib.mjs - what the browser tests share: the TAP-like output ("ok - ...", "not ok - ...",
// "# SKIP name: reason", "RESULT ..."; the shell counts the "not ok" lines), one test at a time,
// Debian's chromium through playwright-core, contexts that collect uncaught page exceptions, the
// spinner count and a small API client.
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = process.env.NP_BASE;
export const ART = process.env.NP_ARTIFACTS;
// a screenshot for people to look at, into ART; none when ART is empty (CI, where nobody looks:
// 0.6 CPU s each on this machine, 13 in the three browser tests)
export const shot = async (page, name, opts = {}) => {
  if (ART) await page.screenshot({ path: join(ART, name), ...opts });
};
export const SCALE = Number(process.env.NP_SCALE || 1);
export const ms = (n) => n * SCALE;
export const sleep = (t) => new Promise((r) => setTimeout(r, t));

export const stats = { failed: 0 };
export const ok = (name, detail) => console.log(`ok - ${name}${detail ? ': ' + detail : ''}`);
export const notOk = (name, detail) => { stats.failed++; console.log(`not ok - ${name}${detail ? ': ' + detail : ''}`); };
export const check = (cond, name, detail) => (cond ? ok(name, detail) : notOk(name, detail));
export const skip = (name, reason) => console.log(`# SKIP ${name}: ${reason}`);
export const result = (s) => console.log(`RESULT ${s}`);
// a figure for bench/latency (the goals a quiet machine should meet are its, not the tests')
export const measure = (key, value, what) => console.log(`MEASURE ${key} ${value}${what ? ' ' + what : ''}`);

// run(name, fn): one test; an exception is a "not ok" and the next test runs.
export async function run(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`# ${name} done in ${Date.now() - t0} ms`);
  } catch (e) {
    notOk(name, String(e && e.message ? e.message.split('\n')[0] : e));
  }
}

// headless, and as root in CI: no sandbox
export const launch = () => chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});

// every context: uncaught exceptions of the page are collected (there must be none)
export const pageErrors = [];
export async function newContext(browser, opts) {
  const ctx = await browser.newContext({ reducedMotion: 'reduce', ...opts });
  ctx.on('page', (pg) => pg.on('pageerror', (e) => pageErrors.push(`${pg.url()}: ${e.message}`)));
  return ctx;
}
export const desktop = { viewport: { width: 1280, height: 800 } };

export const visibleSpinners = (page) => page.evaluate(() =>
  [...document.querySelectorAll('.spinner')].filter((e) => e.offsetParent !== null && getComputedStyle(e).display !== 'none').length);

// The banner's states as the page shows them, recorded by an observer installed before the action:
// a banner up for a second (a Retry-After of 1 s, a slow notice ended by the answer) is missed by
// a poll from here on a loaded machine (Playwright polls every 500 ms, each poll several round
// trips). recordBanners() starts recording; bannerSeen() waits for a recorded state of that kind
// and returns { kind, text, spinners, at }.
export const recordBanners = (page) => page.evaluate(() => {
  window.npBanners = [];
  const b = document.getElementById('banner');
  const note = () => {
    if (b.hidden || !b.dataset.kind) return;
    const text = b.textContent;
    const last = window.npBanners[window.npBanners.length - 1];
    if (last && last.kind === b.dataset.kind && last.text === text) return;
    const spinners = [...document.querySelectorAll('.spinner')].filter((e) => e.offsetParent !== null && getComputedStyle(e).display !== 'none').length;
    window.npBanners.push({ kind: b.dataset.kind, text, spinners, at: Date.now() });
  };
  new MutationObserver(note).observe(b, { attributes: true, childList: true, subtree: true, characterData: true });
  note();
});
export async function bannerSeen(page, kind, timeout) {
  await page.waitForFunction((k) => (window.npBanners || []).some((e) => !k || e.kind === k), kind, { timeout });
  return page.evaluate((k) => window.npBanners.find((e) => !k || e.kind === k), kind);
}

export async function apiJson(method, path, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  return { status: res.status, data };
}

export async function finish(browser) {
  check(pageErrors.length === 0, 'no uncaught exception in any page', pageErrors.slice(0, 3).join(' | '));
  await browser.close();
  console.log(`# ${stats.failed} failed`);
  process.exit(0);
}
