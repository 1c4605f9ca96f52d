// SPDX-License-Identifier: PostgreSQL
// dom.js - building DOM nodes from text. Text from the server (passages, snippets, answers) only
// ever becomes text nodes (textContent / createTextNode); nothing here parses HTML.

// h(tag, attrs, ...children): an element. attrs: `class`, `text`, `on<event>` handlers, a `hidden`
// boolean; anything else is setAttribute. Children: nodes, strings (text nodes), null (skipped),
// arrays.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'hidden') el.hidden = true;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#039': "'" };

// unescapeHtml(s): the five escapes ts_headline's HTML-safe text uses, back to characters.
export function unescapeHtml(s) {
  return s.replace(/&(amp|lt|gt|quot|apos|#39|#039|#x27);/g, (m, name) => ENTITIES[name]);
}

// snippetNodes(snippet): a search snippet (HTML-safe text with <mark>...</mark> around the
// matches, as the search route documents) as text nodes and <mark> elements. Any other markup
// stays visible as text.
export function snippetNodes(snippet) {
  const frag = document.createDocumentFragment();
  const parts = String(snippet).split(/(<mark>|<\/mark>)/);
  let mark = null;
  for (const p of parts) {
    if (p === '<mark>') { if (!mark) mark = document.createElement('mark'); continue; }
    if (p === '</mark>') { if (mark) { frag.append(mark); mark = null; } continue; }
    if (p === '') continue;
    const t = document.createTextNode(unescapeHtml(p));
    (mark || frag).append(t);
  }
  if (mark) frag.append(mark);
  return frag;
}

// answerNodes(text, hrefOf): an answer's text with its citation markers "[n]" as links when
// hrefOf(n) gives one, text otherwise.
export function answerNodes(text, hrefOf) {
  const frag = document.createDocumentFragment();
  const re = /\[(\d{1,3})\]/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    const href = hrefOf(Number(m[1]));
    if (!href) continue;
    if (m.index > last) frag.append(document.createTextNode(text.slice(last, m.index)));
    frag.append(h('a', { class: 'cite-ref', href, 'aria-label': 'source ' + m[1] }, '[' + m[1] + ']'));
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.append(document.createTextNode(text.slice(last)));
  return frag;
}

// announce(text): say something to screen readers (the page's polite live region).
export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 50);
}
