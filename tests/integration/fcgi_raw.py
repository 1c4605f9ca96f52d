#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""fcgi_raw.py - raw FastCGI peers for the integration tests (stdlib only).

  fcgi_raw.py peers HOST PORT SILENT TRUNCATED READY_FILE OUT_JSON MAX_WAIT_S
      open SILENT connections that send nothing and TRUNCATED ones that send a BEGIN_REQUEST and
      half a PARAMS record, touch READY_FILE, then wait (at most MAX_WAIT_S) for the daemon to
      close each one; OUT_JSON gets {"silent": [s...], "truncated": [s...]}, the seconds from
      connect to EOF (null: still open at the end).
  fcgi_raw.py request HOST PORT URI [--src ADDR] [--params-bytes N] [--wait S] [--keep N]
                      [--body DECLARED:SENT]
      one complete GET request (optionally from source address ADDR, with an extra parameter
      making the PARAMS content N bytes); prints "status=CODE|none bytes=N eof_s=SECONDS|none".
      --keep N: N requests on one connection with FCGI_KEEP_CONN (status=CODE,CODE,...).
      --body D:S: a POST with CONTENT_LENGTH D of which only S bytes are sent, then a stall.
  fcgi_raw.py late-end HOST PORT URI BODY_BYTES DELAY_S
      a POST of BODY_BYTES bytes sent whole, then the empty STDIN record that ends the stream only
      DELAY_S later, as nginx does when it sends a body from its temporary file in several writes;
      prints "before_end=answered|closed|nothing end_send=ok|ERROR status=CODE|none bytes=N".
  fcgi_raw.py ask-pair SOCKET_PATH SESSION TOKEN QUESTION OUT_JSON
      two asks (POST .../ask, SSE) on the unix socket SOCKET_PATH whose connections are opened
      0.3 s apart before either sends its request, so that one worker may take (park) both; then
      the first request is sent, and the second 0.3 s later. OUT_JSON gets, per ask, its status,
      the seconds from its send to its first answer byte and to its end, and its answer's text.
"""
import json
import select
import socket
import struct
import sys
import time

BEGIN, PARAMS, STDIN, STDOUT, END = 1, 4, 5, 6, 3


def record(rtype, rid, content=b""):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, rid, len(content), pad, 0) + content + b"\0" * pad


def nv(name, value):
    def ln(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return ln(len(name)) + ln(len(value)) + name + value


def params_content(uri, extra):
    path = uri.split("?")[0]
    env = [(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", uri.encode()), (b"SCRIPT_NAME", path.encode()),
           (b"DOCUMENT_URI", path.encode()), (b"QUERY_STRING", b""), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
           (b"GATEWAY_INTERFACE", b"CGI/1.1"), (b"REMOTE_ADDR", b"127.0.0.1"), (b"HTTP_HOST", b"localhost"),
           (b"CONTENT_LENGTH", b"")]
    body = b"".join(nv(k, v) for k, v in env)
    if extra > len(body):
        pad_len = extra - len(body) - 14
        body += nv(b"HTTP_X_PADDING", b"a" * max(pad_len, 0))
    return body


def request_bytes(uri, extra=0, rid=1):
    content = params_content(uri, extra)
    out = record(BEGIN, rid, struct.pack(">HB5x", 1, 0))
    for i in range(0, len(content), 65535):
        out += record(PARAMS, rid, content[i:i + 65535])
    return out + record(PARAMS, rid) + record(STDIN, rid)


def post_bytes(uri, declared, sent):
    """A POST with CONTENT_LENGTH declared, of which the first sent bytes follow in STDIN records;
    no empty STDIN record ends the stream (the caller sends it, late or never)."""
    content = b"".join([nv(b"REQUEST_METHOD", b"POST"), nv(b"REQUEST_URI", uri.encode()),
                        nv(b"SCRIPT_NAME", uri.encode()), nv(b"DOCUMENT_URI", uri.encode()),
                        nv(b"QUERY_STRING", b""), nv(b"REMOTE_ADDR", b"127.0.0.1"),
                        nv(b"CONTENT_LENGTH", str(declared).encode()), nv(b"CONTENT_TYPE", b"application/json")])
    data = record(BEGIN, 1, struct.pack(">HB5x", 1, 0)) + record(PARAMS, 1, content) + record(PARAMS, 1)
    for i in range(0, sent, 32768):
        data += record(STDIN, 1, b"x" * min(32768, sent - i))
    return data


def connect(host, port, src=None):
    if port is None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(host)
        return s
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    return s


def peers(host, port, silent, truncated, ready_file, out_json, max_wait):
    socks = []
    t0 = {}
    for kind, n in (("silent", silent), ("truncated", truncated)):
        for _ in range(n):
            s = connect(host, port)
            if kind == "truncated":
                content = params_content("/api/v1/books/1", 0)
                whole = record(BEGIN, 1, struct.pack(">HB5x", 1, 0)) + record(PARAMS, 1, content)
                s.sendall(whole[:16 + 8 + len(content) // 2])
            t0[s] = time.monotonic()
            socks.append((kind, s))
    open(ready_file, "w").close()
    result = {"silent": [], "truncated": []}
    done = {}
    deadline = time.monotonic() + max_wait
    while len(done) < len(socks) and time.monotonic() < deadline:
        live = [s for _, s in socks if s not in done]
        r, _, _ = select.select(live, [], [], 0.05)
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                done[s] = time.monotonic() - t0[s]
    for kind, s in socks:
        result[kind].append(round(done[s], 3) if s in done else None)
        s.close()
    with open(out_json, "w") as f:
        json.dump(result, f)


def parse_answer(got):
    """(status, stdout bytes, whether END_REQUEST came, bytes consumed) of the records in got."""
    out = b""
    i = 0
    ended = False
    while i + 8 <= len(got) and not ended:
        _, rtype, _, clen, plen, _ = struct.unpack(">BBHHBB", got[i:i + 8])
        if i + 8 + clen + plen > len(got):
            break
        if rtype == STDOUT:
            out += got[i + 8:i + 8 + clen]
        elif rtype == END:
            ended = True
        i += 8 + clen + plen
    status = "none"
    if out:
        status = "200"
        for line in out.split(b"\r\n\r\n")[0].split(b"\r\n"):
            if line.lower().startswith(b"status:"):
                status = line.split()[1].decode()
    return status, out, ended, i


def request(host, port, uri, src=None, params_bytes=0, wait=5.0, keep=1, body_declared=0, body_sent=0):
    """keep > 1: that many requests on one connection with FCGI_KEEP_CONN. body_declared: a POST
    with that CONTENT_LENGTH of which only body_sent bytes are sent (then the peer stalls)."""
    t = time.monotonic()
    s = connect(host, port, src)
    statuses = []
    eof = None
    got = b""
    for n in range(keep):
        if body_declared:
            data = post_bytes(uri, body_declared, body_sent)
        else:
            data = request_bytes(uri, params_bytes)
            if keep > 1:  # set FCGI_KEEP_CONN in the BEGIN_REQUEST body
                data = data[:10] + b"\x01" + data[11:]
        try:
            s.sendall(data)
        except OSError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                eof = time.monotonic() - t
                break
            got += chunk
            if keep > 1 and parse_answer(got)[2]:
                break
        status, out, ended, used = parse_answer(got)
        statuses.append(status)
        got = got[used:]
        if eof is not None:
            break
    s.close()
    print("status=%s bytes=%d eof_s=%s" % (",".join(statuses), len(out), "none" if eof is None else "%.3f" % eof))
    sys.stdout.flush()


def late_end(host, port, uri, body_bytes, delay):
    """Whether the daemon answers or closes before the request's STDIN stream has ended."""
    s = connect(host, port)
    s.sendall(post_bytes(uri, body_bytes, body_bytes))
    got = b""
    before = "nothing"
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            chunk = s.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            before = "closed"
            break
        got += chunk
        before = "answered"
    try:
        s.sendall(record(STDIN, 1))
        end_send = "ok"
    except OSError as e:
        end_send = type(e).__name__
    s.settimeout(5.0)
    try:
        while not parse_answer(got)[2]:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    s.close()
    status, out, _, _ = parse_answer(got)
    print("before_end=%s end_send=%s status=%s bytes=%d" % (before, end_send, status, len(out)))
    sys.stdout.flush()


def ask_bytes(session, token, question):
    uri = "/api/v1/sessions/%s/ask" % session
    body = json.dumps({"question": question}).encode()
    content = b"".join([nv(b"REQUEST_METHOD", b"POST"), nv(b"REQUEST_URI", uri.encode()),
                        nv(b"SCRIPT_NAME", uri.encode()), nv(b"DOCUMENT_URI", uri.encode()),
                        nv(b"QUERY_STRING", b""), nv(b"REMOTE_ADDR", b"127.0.0.1"),
                        nv(b"HTTP_AUTHORIZATION", b"Bearer " + token.encode()),
                        nv(b"HTTP_ACCEPT", b"text/event-stream"),
                        nv(b"CONTENT_LENGTH", str(len(body)).encode()), nv(b"CONTENT_TYPE", b"application/json")])
    return (record(BEGIN, 1, struct.pack(">HB5x", 1, 0)) + record(PARAMS, 1, content) + record(PARAMS, 1) +
            record(STDIN, 1, body) + record(STDIN, 1))


def ask_pair(path, session, token, question, out_json, max_wait=60.0):
    socks = [connect(path, None)]
    time.sleep(0.3)
    socks.append(connect(path, None))
    time.sleep(0.3)
    sent, first, end, got = [None, None], [None, None], [None, None], [b"", b""]
    t0 = time.monotonic()
    for i, s in enumerate(socks):
        if i:
            time.sleep(0.3)
        s.sendall(ask_bytes(session, token, "%s (%d)" % (question, i + 1)))
        sent[i] = time.monotonic()
    while None in end and time.monotonic() < t0 + max_wait:
        live = [s for i, s in enumerate(socks) if end[i] is None]
        r, _, _ = select.select(live, [], [], 0.05)
        for s in r:
            i = socks.index(s)
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            now = time.monotonic()
            if chunk and first[i] is None:
                first[i] = now - sent[i]
            got[i] += chunk
            if not chunk or parse_answer(got[i])[2]:
                end[i] = now - sent[i]
    result = []
    for i, s in enumerate(socks):
        status, out, _, _ = parse_answer(got[i])
        result.append({"status": status, "first_s": first[i], "end_s": end[i],
                       "text": out.decode("utf-8", "replace")})
        s.close()
    with open(out_json, "w") as f:
        json.dump(result, f)


def main(argv):
    if argv[1] == "peers":
        peers(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6], argv[7], float(argv[8]))
    elif argv[1] == "request":
        src, pb, wait, keep, bd, bs = None, 0, 5.0, 1, 0, 0
        rest = argv[5:]
        while rest:
            if rest[0] == "--src":
                src = rest[1]
            elif rest[0] == "--params-bytes":
                pb = int(rest[1])
            elif rest[0] == "--wait":
                wait = float(rest[1])
            elif rest[0] == "--keep":
                keep = int(rest[1])
            elif rest[0] == "--body":
                bd, bs = (int(x) for x in rest[1].split(":"))
            rest = rest[2:]
        request(argv[2], int(argv[3]), argv[4], src, pb, wait, keep, bd, bs)
    elif argv[1] == "late-end":
        late_end(argv[2], int(argv[3]), argv[4], int(argv[5]), float(argv[6]))
    elif argv[1] == "ask-pair":
        ask_pair(argv[2], argv[3], argv[4], argv[5], argv[6])
    else:
        sys.exit("usage: see the file's docstring")


if __name__ == "__main__":
    main(sys.argv)
