// SPDX-License-Identifier: PostgreSQL
// app.js - the page: a hash router over the views (chat, books, chapter, search), the sidebar of
// the reader's chats, and the banner that says calmly when the service is busy, unreachable or
// slow (api.js retries by itself meanwhile).
import { net, json, ApiError, databaseAway } from './api.js';
import { h, clear, snippetNodes, announce } from './dom.js';
import * as store from './store.js';
import { chatView, stopActive } from './chat.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const sessionList = document.getElementById('session-list');
const sidebar = document.getElementById('sidebar');
const toggle = document.getElementById('chats-toggle');
const PAGE = 50;

// ---- banner: busy / unavailable / offline / slow ------------------------------------------
const WAIT_TEXT = {
  db_busy: 'The library is very busy right now.',
  db_unavailable: 'The library is unavailable for a moment.',
  db_timeout: 'The library is slow to answer.',
  ask_busy: 'Every answer writer is busy right now.',
  not_ready: 'The service is starting.',
  upstream_unavailable: 'The service is not reachable right now.',
  upstream_timeout: 'The service is slow to answer.',
  offline: 'You are offline.',
  unreachable: 'The service cannot be reached.',
};
let bannerTimer = null;
let waitUntil = 0;

function showBanner(kind, text, withButton) {
  clearInterval(bannerTimer);
  clear(banner);
  banner.dataset.kind = kind;
  const count = h('span', { class: 'countdown', 'aria-hidden': 'true' });
  banner.append(h('span', { class: 'banner-text' }, text), ' ', count);
  if (withButton) {
    banner.append(' ', h('button', { type: 'button', class: 'link-button', onclick: () => net.dispatchEvent(new Event('retry-now')) }, 'Try now'));
  }
  banner.hidden = false;
  if (kind === 'wait') {
    const tick = () => {
      const s = Math.max(0, Math.ceil((waitUntil - Date.now()) / 1000));
      count.textContent = s > 0 ? `Trying again in ${s} s.` : 'Trying again…';
    };
    tick();
    bannerTimer = setInterval(tick, 500);
  }
}

function hideBanner() {
  clearInterval(bannerTimer);
  banner.hidden = true;
  delete banner.dataset.kind;
  clear(banner);
}

net.addEventListener('wait', (e) => {
  document.body.classList.add('waiting');
  waitUntil = e.detail.until;
  const text = WAIT_TEXT[e.detail.code] || 'The service is busy.';
  showBanner('wait', text + ' Your page will carry on by itself.', true);
});
net.addEventListener('recovered', (e) => {
  if (e.detail.waiting > 0) return;
  document.body.classList.remove('waiting');
  if (banner.dataset.kind === 'wait') hideBanner();
});
net.addEventListener('slow', () => {
  if (banner.hidden) showBanner('slow', 'This is taking longer than usual…', false);
});
net.addEventListener('slow-end', () => {
  if (banner.dataset.kind === 'slow') hideBanner();
});
window.addEventListener('offline', () => showBanner('offline', 'You are offline. The page will carry on when the connection is back.', false));
window.addEventListener('online', () => { if (banner.dataset.kind === 'offline') hideBanner(); });

// ---- views ------------------------------------------------------------------------------------
let viewCtrl = null;

function friendly(err) {
  if (err instanceof ApiError) {
    if (err.status === 404) return 'This page does not exist (any more).';
    if (err.status === 400) return 'That address is not valid.';
  }
  return 'This page could not be loaded.';
}

function errorBox(err, retry) {
  return h('div', { class: 'notice', role: 'alert' },
    h('p', {}, friendly(err)),
    retry ? h('button', { type: 'button', onclick: retry }, 'Try again') : null);
}

function heading(text) {
  return h('h1', { tabindex: '-1', id: 'view-title' }, text);
}

function loading() {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    h('span', { class: 'when-busy' }, ' Loading…'), h('span', { class: 'when-waiting' }, 'Waiting for the service (see above)…'));
}

function setTitle(t) {
  document.title = t ? `${t} – neonpool` : 'neonpool – ask the PostgreSQL manual';
}

async function booksView(signal) {
  setTitle('Books');
  main.append(heading('Books'), loading());
  const data = await json('GET', '/api/v1/books?limit=100', { signal });
  clear(main).append(heading('Books'),
    h('ul', { class: 'plain' }, data.books.map((b) =>
      h('li', {}, h('a', { href: `#/books/${b.id}` }, b.title), b.author ? h('span', { class: 'muted' }, ' — ', b.author) : null))));
}

async function bookView(signal, id) {
  main.append(heading('Book'), loading());
  const b = await json('GET', `/api/v1/books/${id}`, { signal });
  setTitle(b.title);
  clear(main).append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/books' }, 'Books')),
    heading(b.title),
    b.author ? h('p', { class: 'muted' }, b.author) : null,
    h('h2', {}, 'Chapters'),
    h('ol', { class: 'chapters' }, b.chapters.map((c) => h('li', {}, h('a', { href: `#/books/${id}/chapters/${c.position}` }, c.title)))));
}

async function chapterView(signal, bookId, n, params) {
  main.append(heading('Chapter'), loading());
  const pid = params.get('p');
  let offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
  if (pid && !params.has('offset')) {
    const p = await json('GET', `/api/v1/passages/${encodeURIComponent(pid)}`, { signal });
    offset = Math.floor((p.position - 1) / PAGE) * PAGE;
  }
  const bookMeta = {};
  const chMeta = {};
  const [book, ch] = await Promise.all([
    json('GET', `/api/v1/books/${bookId}`, { signal, meta: bookMeta }),
    json('GET', `/api/v1/books/${bookId}/chapters/${n}?limit=${PAGE}&offset=${offset}`, { signal, meta: chMeta }),
  ]);
  // a copy nginx kept, served because the database is away: said once, calmly
  const saved = (bookMeta.stale || chMeta.stale) && await databaseAway();
  setTitle(ch.title);
  const idx = book.chapters.findIndex((c) => c.position === ch.position);
  const prev = idx > 0 ? book.chapters[idx - 1] : null;
  const next = idx >= 0 && idx + 1 < book.chapters.length ? book.chapters[idx + 1] : null;
  const base = `#/books/${bookId}/chapters/${n}`;
  const pager = [];
  if (offset > 0) pager.push(h('a', { href: `${base}?offset=${Math.max(0, offset - PAGE)}` }, 'Earlier passages'));
  if (ch.next_after !== null) pager.push(h('a', { href: `${base}?offset=${offset + PAGE}` }, 'Later passages'));
  let lastHeading = null;
  const article = h('article', { class: 'chapter' });
  for (const p of ch.passages) {
    if (p.heading && p.heading !== lastHeading) article.append(h('h2', {}, p.heading));
    lastHeading = p.heading;
    const target = pid && String(p.id) === String(pid);
    article.append(h('p', { id: `p-${p.id}`, class: target ? 'passage target' : 'passage', tabindex: target ? '-1' : null }, p.body));
  }
  clear(main).append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/books' }, 'Books'), ' › ', h('a', { href: `#/books/${bookId}` }, book.title)),
    heading(ch.title),
    saved ? h('p', { class: 'note', id: 'saved-copy', role: 'status' },
      'You are reading a saved copy of this chapter: the library is briefly unavailable. ' +
      'The text is the one you would get otherwise; search and questions will be back shortly.') : null,
    h('p', { class: 'muted' }, `Passages ${ch.passage_count ? offset + 1 : 0}–${offset + ch.passages.length} of ${ch.passage_count}`),
    article,
    pager.length ? h('nav', { class: 'pager', 'aria-label': 'Passages' }, pager) : null,
    h('nav', { class: 'pager', 'aria-label': 'Chapters' },
      prev ? h('a', { href: `#/books/${bookId}/chapters/${prev.position}`, rel: 'prev' }, '← ', prev.title) : null,
      next ? h('a', { href: `#/books/${bookId}/chapters/${next.position}`, rel: 'next' }, next.title, ' →') : null));
  const t = pid && document.getElementById(`p-${pid}`);
  return t || null;
}

// #/passages/ID: a citation; find the passage's chapter position and show it there.
async function passageView(signal, id) {
  main.append(heading('Passage'), loading());
  const p = await json('GET', `/api/v1/passages/${encodeURIComponent(id)}`, { signal });
  const book = await json('GET', `/api/v1/books/${p.book_id}`, { signal });
  const ch = book.chapters.find((c) => String(c.id) === String(p.chapter_id));
  if (!ch) throw new ApiError(404, 'not_found');
  location.replace(`#/books/${p.book_id}/chapters/${ch.position}?p=${p.id}`);
  return 'redirect';
}

async function searchView(signal, params) {
  const q = (params.get('q') || '').trim();
  const offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
  document.getElementById('q').value = q;
  setTitle(q ? `Search: ${q}` : 'Search');
  if (!q) {
    main.append(heading('Search'), h('p', {}, 'Type words to look for in the books, e.g. “vacuum freeze”.'));
    return;
  }
  main.append(heading(`Search: ${q}`), loading());
  let data;
  try {
    data = await json('GET', `/api/v1/search?q=${encodeURIComponent(q)}&limit=10&offset=${offset}`, { signal });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_query') {
      clear(main).append(heading(`Search: ${q}`), h('p', { class: 'notice', role: 'alert' }, 'This search cannot be run: try other words (at most 256 characters).'));
      return;
    }
    throw e;
  }
  const results = h('ol', { class: 'results', start: String(offset + 1) }, data.results.map((r) =>
    h('li', {},
      h('a', { class: 'result-title', href: `#/books/${r.book.id}/chapters/${r.chapter.position}?p=${r.passage_id}` }, r.heading || r.chapter.title),
      h('p', { class: 'snippet' }, snippetNodes(r.snippet)),
      h('p', { class: 'muted small' }, r.book.title, ' › ', r.chapter.title))));
  clear(main).append(heading(`Search: ${q}`),
    data.results.length ? results : h('p', {}, 'Nothing found. Try fewer or other words.'),
    data.next_offset !== null ? h('nav', { class: 'pager', 'aria-label': 'Results' },
      h('a', { href: `#/search?q=${encodeURIComponent(q)}&offset=${data.next_offset}` }, 'More results')) : null);
}

async function route() {
  if (viewCtrl) viewCtrl.abort();
  stopActive();
  const ctrl = new AbortController();
  viewCtrl = ctrl;
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  closeSidebar();
  clear(main);
  markCurrent(parts[0] === 'chat' ? parts[1] : null);
  let focusTarget = null;
  const run = async () => {
    clear(main);
    if (parts.length === 0) return chatView(main, ctrl.signal, null);
    if (parts[0] === 'chat' && parts.length === 2) return chatView(main, ctrl.signal, parts[1]);
    if (parts[0] === 'books' && parts.length === 1) return booksView(ctrl.signal);
    if (parts[0] === 'books' && parts.length === 2 && /^\d+$/.test(parts[1])) return bookView(ctrl.signal, parts[1]);
    if (parts[0] === 'books' && parts.length === 4 && parts[2] === 'chapters' && /^\d+$/.test(parts[1]) && /^\d+$/.test(parts[3]))
      return chapterView(ctrl.signal, parts[1], parts[3], params);
    if (parts[0] === 'passages' && parts.length === 2 && /^\d+$/.test(parts[1])) return passageView(ctrl.signal, parts[1]);
    if (parts[0] === 'search') return searchView(ctrl.signal, params);
    setTitle('Not found');
    main.append(heading('Not found'), h('p', {}, 'There is nothing at this address. '), h('a', { href: '#/' }, 'Go to the chat'));
    return null;
  };
  try {
    focusTarget = await run();
  } catch (e) {
    if (ctrl.signal.aborted) return;
    const title = main.querySelector('h1');
    clear(main).append(title || heading('Sorry'), errorBox(e, route));
  }
  if (ctrl.signal.aborted || focusTarget === 'redirect') return;
  if (focusTarget && focusTarget.focus && !(firstRoute && focusTarget.id === 'question')) {
    focusTarget.scrollIntoView({ block: 'center' });
    focusTarget.focus({ preventScroll: true });
  } else if (!firstRoute && !(focusTarget && focusTarget.id === 'question')) {
    // a new view: focus its title, so that the reader (and a screen reader) starts there
    const t = document.getElementById('view-title');
    if (t && (pendingFocus || document.activeElement === document.body || !document.activeElement)) t.focus();
  }
  pendingFocus = false;
  firstRoute = false;
}

// after a click on a link, focus moves to the new view's title (the reader hears where they are)
let pendingFocus = false;
let firstRoute = true;
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[href^="#/"]');
  if (a) pendingFocus = true;
});

// ---- sidebar: the reader's chats --------------------------------------------------------------
function renderSessions() {
  clear(sessionList);
  const list = store.list();
  if (list.length === 0) {
    sessionList.append(h('li', { class: 'muted small' }, 'No chats yet.'));
  }
  for (const s of list) {
    const label = s.title || `Chat ${s.id}`;
    sessionList.append(h('li', { 'data-session': s.id },
      h('a', { href: `#/chat/${s.id}` }, label),
      h('button', { type: 'button', class: 'icon', 'aria-label': `Delete chat “${label}”`, title: 'Delete chat', onclick: () => deleteSession(s) }, '×')));
  }
  markCurrent(currentChat);
}

let currentChat = null;
function markCurrent(id) {
  currentChat = id || null;
  for (const li of sessionList.querySelectorAll('li[data-session]')) {
    const a = li.querySelector('a');
    if (li.dataset.session === currentChat) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function deleteSession(s) {
  const li = sessionList.querySelector(`li[data-session="${CSS.escape(s.id)}"]`);
  if (li) li.classList.add('deleting');
  try {
    await json('DELETE', `/api/v1/sessions/${s.id}`, { token: s.token });
  } catch (e) {
    // 404: already gone on the server (or not ours): forget it here too. Anything else: keep it.
    if (!(e instanceof ApiError && e.status === 404)) {
      if (li) li.classList.remove('deleting');
      announce('The chat could not be deleted. Try again later.');
      return;
    }
  }
  store.remove(s.id);
  announce('Chat deleted.');
  if (currentChat === s.id) location.hash = '#/';
  document.getElementById('new-chat').focus();
}

function closeSidebar() {
  sidebar.classList.remove('open');
  toggle.setAttribute('aria-expanded', 'false');
}

toggle.addEventListener('click', () => {
  const open = !sidebar.classList.contains('open');
  sidebar.classList.toggle('open', open);
  toggle.setAttribute('aria-expanded', String(open));
  if (open) document.getElementById('new-chat').focus();
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && sidebar.classList.contains('open')) { closeSidebar(); toggle.focus(); }
});
document.getElementById('new-chat').addEventListener('click', () => {
  if (location.hash === '#/' || location.hash === '') route();
  else location.hash = '#/';
});
document.getElementById('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = document.getElementById('q').value.trim();
  if (!q) return;
  pendingFocus = true;
  const target = `#/search?q=${encodeURIComponent(q)}`;
  if (location.hash === target) route();
  else location.hash = target;
});
document.querySelector('.skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('sessions-changed', renderSessions);
window.addEventListener('chat-current', (e) => markCurrent(e.detail));
window.addEventListener('storage', renderSessions);
window.addEventListener('hashchange', route);
renderSessions();
route();
