// SPDX-License-Identifier: PostgreSQL
// store.js - the reader's chat sessions, kept in this browser only (localStorage): id, bearer
// token, a title (the first question) and when it started. Another browser (or profile) has none
// of them, and the API answers 404 to any session route without the session's token.

const KEY = 'neonpool.sessions.v1';
let memory = [];

function load() {
  try {
    const raw = window.localStorage.getItem(KEY);
    const list = raw ? JSON.parse(raw) : [];
    return Array.isArray(list) ? list.filter((s) => s && typeof s.id === 'string' && typeof s.token === 'string') : [];
  } catch (e) {
    return memory;
  }
}

function save(list) {
  memory = list;
  try {
    window.localStorage.setItem(KEY, JSON.stringify(list));
  } catch (e) { /* private mode or full: kept for this page only */ }
  window.dispatchEvent(new CustomEvent('sessions-changed'));
}

export function list() {
  return load().sort((a, b) => (b.created || 0) - (a.created || 0));
}

export function get(id) {
  return load().find((s) => s.id === String(id)) || null;
}

export function add(id, token) {
  const list = load().filter((s) => s.id !== String(id));
  const s = { id: String(id), token, title: '', created: Date.now() };
  list.push(s);
  save(list);
  return s;
}

export function setTitle(id, title) {
  const list = load();
  const s = list.find((x) => x.id === String(id));
  if (s && !s.title) {
    s.title = title.length > 60 ? title.slice(0, 57) + '…' : title;
    save(list);
  }
}

export function remove(id) {
  save(load().filter((s) => s.id !== String(id)));
}
