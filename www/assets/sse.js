// SPDX-License-Identifier: PostgreSQL
// sse.js - a Server-Sent Events parser for a fetch() body (the ask route is a POST, so EventSource
// cannot be used). Follows the WHATWG event-stream rules: lines end in CRLF, LF or CR; "event:"
// names the event (default "message"); "data:" lines are joined with "\n"; a line starting with ":"
// is a comment (keepalive); a blank line dispatches; an event cut off by the end of the stream is
// dropped. Pure: no DOM, no network.

export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = '';
    this.event = '';
    this.data = [];
    this.sawCR = false;
  }

  // push(text): feed decoded text (any chunking, even inside a line or a CRLF pair).
  push(text) {
    let s = text;
    if (this.sawCR && s.startsWith('\n')) s = s.slice(1);
    this.sawCR = false;
    this.buf += s;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      // a CR at the very end may be the first half of a CRLF split across chunks
      if (m[0] === '\r' && this.buf === '') this.sawCR = true;
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) this.onEvent({ event: this.event || 'message', data: this.data.join('\n') });
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    // id and retry are not used by this page
  }
}

// readEvents(body, onEvent, signal): read a ReadableStream of bytes to its end, calling onEvent for
// each event. Resolves when the stream ends; rejects when it breaks or signal aborts.
export async function readEvents(body, onEvent, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const parser = new SSEParser(onEvent);
  const onAbort = () => reader.cancel().catch(() => {});
  if (signal) signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
  } finally {
    if (signal) signal.removeEventListener('abort', onAbort);
  }
}
