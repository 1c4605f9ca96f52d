// SPDX-License-Identifier: PostgreSQL
// chat.js - the chat view: a session's history, asking with a streamed answer (the ask route's
// Server-Sent Events read from fetch), Stop, citations, copy and retry. The stream contract is in
// doc/openapi.yaml (POST /api/v1/sessions/{id}/ask).
import { send, json, errorCode, parseExact, ApiError, createSession } from './api.js';
import { readEvents } from './sse.js';
import { h, clear, answerNodes, announce } from './dom.js';
import * as store from './store.js';

const FAIL = {
  llm_timeout: 'The answer took too long to write.',
  llm_unavailable: 'The answer writer is not available right now.',
  llm_error: 'The answer writer ran into a problem.',
  llm_busy: 'The answer writer is busy right now.',
  interrupted: 'The answer was cut off before the end.',
  unavailable: 'Asking is not available on this server.',
  invalid_body: 'This question cannot be asked as it is (it may be too long).',
  gone: 'This answer could not be found any more.',
  failed: 'The answer could not be written.',
  no_session: 'The conversation could not be started.',
};
const WAITING = {
  ask_busy: 'Every answer writer is busy; waiting for a free one…',
  offline: 'You are offline; waiting for the connection…',
};
const EXAMPLES = ['How does VACUUM reclaim space?', 'What does VACUUM FREEZE do?', 'How do I roll back to a savepoint?'];

let active = null;

// stopActive(): the view is left; stop reading the stream (the answer's row stays in the history).
export function stopActive() {
  if (active) {
    active.leaving = true;
    active.ctrl.abort();
    active = null;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (e) {
    const ta = h('textarea', { class: 'offscreen', 'aria-hidden': 'true' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
    ta.remove();
    return ok;
  }
}

// a citation opens its passage in its chapter: directly when it names the chapter (book_id and
// chapter_number), otherwise through #/passages/ID (the page looks the chapter up)
const ID = /^[1-9][0-9]*$/;
const citeHref = (c) => (ID.test(String(c.book_id)) && Number.isInteger(c.chapter_number) && c.chapter_number > 0 && ID.test(String(c.passage_id))
  ? `#/books/${c.book_id}/chapters/${c.chapter_number}?p=${c.passage_id}`
  : `#/passages/${encodeURIComponent(String(c.passage_id))}`);
const endKind = (status) => (status === 'stopped' ? 'stopped' : status === 'failed' ? 'failed' : 'complete');

// One answer in the conversation, from the first byte to its end (complete, stopped, failed).
class Turn {
  constructor(log, question, onRetry) {
    this.question = question;
    this.onRetry = onRetry;
    this.textValue = '';
    this.cites = [];
    this.textEl = h('div', { class: 'text' });
    this.statusText = h('span', {});
    this.spinner = h('span', { class: 'spinner', 'aria-hidden': 'true' });
    this.statusEl = h('p', { class: 'turn-status' }, this.spinner, this.statusText);
    this.citesEl = h('ol', { class: 'cites', hidden: true, 'aria-label': 'Sources' });
    this.actions = h('div', { class: 'actions' });
    this.el = h('article', { class: 'msg answer busy', 'aria-busy': 'true', 'aria-label': 'Answer' },
      h('p', { class: 'who' }, 'Answer'), this.textEl, this.statusEl, this.citesEl, this.actions);
    log.append(this.el);
  }

  status(text, busy) {
    this.statusText.textContent = text;
    this.statusEl.hidden = !text;
    this.spinner.hidden = !busy;
  }

  setCitations(list) {
    this.cites = Array.isArray(list) ? list : [];
    clear(this.citesEl);
    for (const c of this.cites) {
      const where = [c.book, c.chapter].filter(Boolean).join(' › ');
      this.citesEl.append(h('li', { value: String(c.n) },
        h('a', { href: citeHref(c) }, c.title || c.chapter || `Passage ${c.passage_id}`),
        where ? h('span', { class: 'muted small' }, ' — ', where) : null));
    }
    this.citesEl.hidden = this.cites.length === 0;
  }

  delta(text) {
    this.textValue += text;
    this.textEl.append(document.createTextNode(text));
  }

  hrefOf(n) {
    const c = this.cites.find((x) => x.n === n);
    return c ? citeHref(c) : null;
  }

  // end(kind, code): the turn is over; no spinner stays. kind: complete, stopped, failed, still.
  end(kind, code, used) {
    this.el.classList.remove('busy');
    this.el.setAttribute('aria-busy', 'false');
    this.spinner.remove();
    clear(this.textEl).append(answerNodes(this.textValue, (n) => this.hrefOf(n)));
    if (Array.isArray(used)) {
      for (const li of this.citesEl.children) li.classList.toggle('unused', !used.includes(Number(li.value)));
    }
    this.el.dataset.state = kind;
    if (kind === 'complete') this.status('', false);
    else if (kind === 'stopped') this.status('Stopped.', false);
    else if (kind === 'still') this.status('This answer is still being written. Reload the page later to see it.', false);
    else this.status(`${FAIL[code] || 'Something went wrong while answering.'} You can try again.`, false);
    this.el.classList.toggle('failed', kind === 'failed');
    clear(this.actions);
    if (this.textValue) {
      const b = h('button', { type: 'button', onclick: async () => {
        const ok = await copyText(this.textValue);
        b.textContent = ok ? 'Copied' : 'Copy failed';
        announce(ok ? 'Answer copied.' : 'The answer could not be copied.');
        setTimeout(() => { b.textContent = 'Copy'; }, 2000);
      } }, 'Copy');
      this.actions.append(b);
    }
    if ((kind === 'failed' || kind === 'stopped') && this.question && this.onRetry) {
      this.actions.append(h('button', { type: 'button', class: 'retry', onclick: () => this.onRetry(this) }, 'Retry'));
    }
    if (kind === 'failed') announce(this.statusText.textContent);
  }

  // fromMessage(m): a stored answer from the history.
  fromMessage(m) {
    this.textValue = '';
    clear(this.textEl);
    this.setCitations(m.citations);
    this.delta(m.content || '');
    const kind = endKind(m.status);
    this.end(kind, kind === 'failed' ? 'failed' : null, m.citations_used);
  }
}

export async function chatView(main, signal, id) {
  let session = id ? store.get(id) : null;
  if (id && !session) {
    document.title = 'Chat not found – neonpool';
    main.append(h('h1', { tabindex: '-1', id: 'view-title' }, 'Chat not found'),
      h('p', {}, 'This chat is not in this browser: chats are kept only in the browser that started them.'),
      h('a', { href: '#/' }, 'Start a new chat'));
    return null;
  }
  document.title = (session && session.title ? session.title : 'Ask the PostgreSQL manual') + ' – neonpool';
  const title = h('h1', { tabindex: '-1', id: 'view-title' }, session ? (session.title || `Chat ${session.id}`) : 'Ask the PostgreSQL manual');
  const log = h('div', { class: 'log', role: 'log', 'aria-label': 'Conversation' });
  const textarea = h('textarea', { id: 'question', name: 'question', rows: '3', maxlength: '2000', required: true,
    placeholder: 'e.g. How does VACUUM reclaim space?', 'aria-describedby': 'question-help' });
  const askBtn = h('button', { type: 'submit', class: 'primary' }, 'Ask');
  const stopBtn = h('button', { type: 'button', class: 'stop', hidden: true }, 'Stop');
  const form = h('form', { class: 'composer', 'aria-label': 'Ask a question' },
    h('label', { for: 'question' }, 'Your question'), textarea,
    h('p', { id: 'question-help', class: 'muted small' }, 'Enter sends, Shift+Enter starts a new line. Answers cite the manual.'),
    h('div', { class: 'row' }, askBtn, stopBtn));
  main.append(title, log, form);

  const intro = () => h('div', { class: 'intro' },
    h('p', {}, 'Ask a question about PostgreSQL: the answer quotes the manual and links to the passages it used.'),
    h('p', { class: 'small' }, 'Try: ', EXAMPLES.map((q, i) => [i ? ' · ' : '', h('button', { type: 'button', class: 'link-button', onclick: () => { textarea.value = q; textarea.focus(); } }, q)])));

  const busy = (on) => {
    askBtn.disabled = on;
    const hadFocus = document.activeElement === stopBtn;
    stopBtn.hidden = !on;
    stopBtn.disabled = false;
    if (!on && hadFocus) textarea.focus();
  };

  async function pollUntilDone(messageId, turn) {
    let delay = 700;
    const deadline = Date.now() + 10 * 60 * 1000;
    try {
      while (Date.now() < deadline) {
        await sleep(delay, signal);
        delay = Math.min(delay * 1.5, 4000);
        const data = await json('GET', `/api/v1/sessions/${session.id}/messages?limit=100`, { token: session.token, signal });
        const m = data.messages.find((x) => String(x.id) === String(messageId));
        if (!m) { turn.end('failed', 'gone'); return; }
        if (m.status !== 'streaming') { turn.fromMessage(m); return; }
        if (m.content && m.content !== turn.textValue) { turn.textValue = ''; clear(turn.textEl); turn.delta(m.content); }
      }
      turn.end('still');
    } catch (e) {
      if (!signal.aborted) turn.end('failed', 'interrupted');
    }
  }

  async function ask(question, turn) {
    const ctrl = new AbortController();
    signal.addEventListener('abort', () => ctrl.abort(), { once: true });
    const run = { ctrl, messageId: null, turn, stopping: false, done: false, leaving: false };
    active = run;
    busy(true);
    turn.status('Looking up the manual…', true);
    // a long silence (the model thinking, keepalives only) is said, the spinner stays
    let last = Date.now();
    let slow = false;
    const slowTimer = setInterval(() => {
      if (!run.done && !run.stopping && !slow && Date.now() - last > 5000) {
        slow = true;
        turn.status('Still working on it: this is taking longer than usual…', true);
      }
    }, 1000);
    const alive = () => {
      last = Date.now();
      if (slow && !run.stopping) { slow = false; turn.status('Writing the answer…', true); }
    };
    const finish = (kind, code, used) => {
      if (run.done) return;
      run.done = true;
      turn.end(kind, code, used);
    };
    try {
      if (!session) {
        let s;
        try {
          s = await createSession({ signal: ctrl.signal });
        } catch (e) {
          // not sent again by itself when it may have been written (api.js createSession)
          if (e instanceof ApiError) { finish('failed', 'no_session'); return; }
          throw e;
        }
        session = store.add(String(s.id), s.token);
        store.setTitle(session.id, question);
        session = store.get(session.id) || session;
        history.replaceState(null, '', `#/chat/${session.id}`);
        title.textContent = session.title || `Chat ${session.id}`;
        window.dispatchEvent(new CustomEvent('chat-current', { detail: session.id }));
      }
      const res = await send('POST', `/api/v1/sessions/${session.id}/ask`, {
        token: session.token,
        body: { question },
        headers: { Accept: 'text/event-stream', 'Idempotency-Key': newKey() },
        signal: ctrl.signal,
        onWait: ({ code }) => turn.status(WAITING[code] || 'The service is busy; waiting…', false),
      });
      turn.status('Looking up the manual…', true);
      if (res.status === 404) { finish('failed', 'unavailable'); return; }
      if (!res.ok) { finish('failed', await errorCode(res)); return; }
      const onData = (d) => {
        if (d.message_id !== undefined && d.message_id !== null) run.messageId = String(d.message_id);
        if (Array.isArray(d.citations)) turn.setCitations(d.citations);
      };
      if ((res.headers.get('Content-Type') || '').startsWith('application/json')) {
        const d = parseExact(await res.text());
        onData(d);
        turn.delta(typeof d.answer === 'string' ? d.answer : '');
        const kind = endKind(d.status);
        finish(kind, kind === 'failed' ? 'failed' : null, d.citations_used);
        return;
      }
      await readEvents(res.body, (ev) => {
        let d;
        try { d = parseExact(ev.data); } catch (e) { return; }
        if (!d || typeof d !== 'object' || run.done) return;
        alive();
        if (ev.event === 'citations') {
          onData(d);
          turn.status(run.stopping ? 'Stopping…' : 'Writing the answer…', true);
        } else if (ev.event === 'message' && typeof d.delta === 'string') {
          turn.delta(d.delta);
        } else if (ev.event === 'done') {
          const kind = endKind(d.status);
          finish(kind, kind === 'failed' ? 'failed' : null, d.citations_used);
        } else if (ev.event === 'error') {
          finish('failed', d.error && typeof d.error.code === 'string' ? d.error.code : 'failed');
        }
      }, ctrl.signal);
      if (!run.done) throw new Error('stream ended without done');
    } catch (e) {
      if (run.done) return;
      if (run.leaving) return;
      if (run.stopping) { finish('stopped'); return; }
      if (e instanceof ApiError) { finish('failed', e.code); return; }
      if (run.messageId) {
        // the answer's row exists: it may still be written; show it when it is
        turn.status('The connection was interrupted; checking on the answer…', true);
        run.done = true;
        await pollUntilDone(run.messageId, turn);
        return;
      }
      finish('failed', 'interrupted');
    } finally {
      clearInterval(slowTimer);
      if (active === run) active = null;
      if (!run.leaving) busy(false);
    }
  }

  stopBtn.addEventListener('click', async () => {
    const run = active;
    if (!run || run.stopping) return;
    run.stopping = true;
    stopBtn.disabled = true;
    run.turn.status('Stopping…', true);
    if (!run.messageId) { run.ctrl.abort(); return; }
    try {
      await send('POST', `/api/v1/sessions/${session.id}/ask/${run.messageId}/cancel`, { token: session.token, retry: false });
    } catch (e) { /* the stream is cut below anyway */ }
    // the server ends the stream with done/stopped; if it does not soon, stop reading
    setTimeout(() => { if (!run.done) run.ctrl.abort(); }, 3000);
  });

  const retry = (turn) => {
    if (active) return;
    const next = new Turn(log, turn.question, retry);
    turn.el.replaceWith(next.el);
    ask(turn.question, next);
  };

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const question = textarea.value.trim();
    if (!question || active) return;
    const introEl = log.querySelector('.intro');
    if (introEl) introEl.remove();
    textarea.value = '';
    log.append(h('div', { class: 'msg user' }, h('p', { class: 'who' }, 'You'), h('p', { class: 'text' }, question)));
    ask(question, new Turn(log, question, retry));
  });
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  if (!session) {
    log.append(intro());
    return textarea;
  }
  // the history, oldest first (the route pages newest first)
  log.append(h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    h('span', { class: 'when-busy' }, ' Loading the conversation…'), h('span', { class: 'when-waiting' }, 'Waiting for the service (see above)…')));
  let data;
  try {
    data = await json('GET', `/api/v1/sessions/${session.id}/messages?limit=100`, { token: session.token, signal });
  } catch (e) {
    clear(log);
    if (e instanceof ApiError && e.status === 404) {
      log.append(h('div', { class: 'notice', role: 'alert' }, h('p', {}, 'This chat no longer exists on the server.'),
        h('button', { type: 'button', onclick: () => { store.remove(session.id); location.hash = '#/'; } }, 'Remove it from the list')));
      form.hidden = true;
      return null;
    }
    throw e;
  }
  clear(log);
  if (data.next_before !== null) log.append(h('p', { class: 'muted small' }, 'Earlier messages are not shown.'));
  let lastQuestion = null;
  for (const m of data.messages.slice().reverse()) {
    if (m.role === 'user') {
      lastQuestion = m.content;
      log.append(h('div', { class: 'msg user' }, h('p', { class: 'who' }, 'You'), h('p', { class: 'text' }, m.content)));
    } else if (m.role === 'assistant') {
      const turn = new Turn(log, lastQuestion, retry);
      if (m.status === 'streaming') {
        turn.setCitations(m.citations);
        if (m.content) turn.delta(m.content);
        turn.status('This answer is still being written…', true);
        pollUntilDone(m.id, turn);
      } else {
        turn.fromMessage(m);
      }
    }
  }
  if (data.messages.length === 0) log.append(intro());
  return null;
}
