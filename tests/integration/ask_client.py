#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""ask_client.py - one ask through nginx, for the ask tests (issue 9). Python standard library only.

usage: ask_client.py PORT SESSION TOKEN QUESTION [--sse] [--key KEY] [--drop-after-deltas N]
                     [--cancel-after-deltas N] [--cancel-port PORT] [--host ADDR] [--cancel-host ADDR]
                     [--book JSON] [--timeout S]
Prints one JSON object: {"status", "headers", "body" (JSON form), "events": [{"event", "data",
"t_ms"}] (SSE form, t_ms since the request was sent), "keepalives", "t_first_ms", "t_end_ms",
"cancel": the cancel's status and body when asked}.
--drop-after-deltas N closes the connection after N deltas (a dropped client);
--cancel-after-deltas N posts the cancel route after N deltas and reads on (to PORT, another host's
nginx, with --cancel-port and --cancel-host); --host: the server's address (default 127.0.0.1).
"""
import argparse
import http.client
import json
import socket
import sys
import time


def main():
    # PORT SESSION TOKEN QUESTION are taken by position, the options after them by argparse: a
    # token starting with '-' (1 in 64: base64url) was taken for an option
    # (tests/check-ask-client-token-dash.sh)
    if len(sys.argv) < 5:
        sys.exit("usage: ask_client.py PORT SESSION TOKEN QUESTION [options]")
    ap = argparse.ArgumentParser()
    ap.add_argument("--sse", action="store_true")
    ap.add_argument("--key")
    ap.add_argument("--drop-after-deltas", type=int, default=-1)
    ap.add_argument("--cancel-after-deltas", type=int, default=-1)
    ap.add_argument("--cancel-port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--cancel-host")
    ap.add_argument("--book", help="the ask's book scope, a JSON value (a number, or anything for the 400s)")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args(sys.argv[5:])
    a.port, a.session, a.token, a.question = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    h = {"Content-Type": "application/json", "Authorization": "Bearer " + a.token,
         "Accept": "text/event-stream" if a.sse else "application/json"}
    if a.key:
        h["Idempotency-Key"] = a.key
    out = {"events": [], "keepalives": 0, "t_first_ms": None}
    c = http.client.HTTPConnection(a.host, a.port, timeout=a.timeout)
    t0 = time.monotonic()
    c.request("POST", "/api/v1/sessions/%s/ask" % a.session, body=json.dumps(dict({"question": a.question}, **({"book": json.loads(a.book)} if a.book is not None else {}))).encode(),
              headers=h)
    r = c.getresponse()
    out["status"] = r.status
    out["headers"] = {k.lower(): v for k, v in r.getheaders()}
    if not out["headers"].get("content-type", "").startswith("text/event-stream"):
        raw = r.read()
        try:
            out["body"] = json.loads(raw)
        except ValueError:
            out["body"] = raw.decode("utf-8", "replace")
        out["t_end_ms"] = (time.monotonic() - t0) * 1000
        print(json.dumps(out))
        return
    event, data, deltas = None, [], 0
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.decode("utf-8").rstrip("\r\n")
        now = (time.monotonic() - t0) * 1000
        if line.startswith(":"):
            out["keepalives"] += 1
            out["t_last_keepalive_ms"] = now
            continue
        if line.startswith("event:"):
            event = line[6:].strip()
            continue
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
            continue
        if line == "" and data:
            ev = {"event": event or "message", "data": json.loads("\n".join(data)), "t_ms": now, "wall": time.time()}
            out["events"].append(ev)
            if out["t_first_ms"] is None:
                out["t_first_ms"] = now
            event, data = None, []
            if ev["event"] == "message":
                deltas += 1
                if deltas == a.drop_after_deltas:
                    out["dropped_at_ms"] = now
                    r.fp.raw._sock.shutdown(socket.SHUT_RDWR) if hasattr(r.fp, "raw") else None
                    c.close()
                    break
                if deltas == a.cancel_after_deltas:
                    mid = out["events"][0]["data"]["message_id"]
                    cc = http.client.HTTPConnection(a.cancel_host or a.host, a.cancel_port or a.port, timeout=a.timeout)
                    cc.request("POST", "/api/v1/sessions/%s/ask/%s/cancel" % (a.session, mid), body=b"",
                               headers={"Authorization": "Bearer " + a.token})
                    cr = cc.getresponse()
                    craw = cr.read()
                    out["cancel"] = {"status": cr.status, "t_ms": (time.monotonic() - t0) * 1000,
                                     "text_before": "".join(e["data"].get("delta", "") for e in out["events"]
                                                            if e["event"] == "message")}
                    try:
                        out["cancel"]["body"] = json.loads(craw)
                    except ValueError:
                        out["cancel"]["body"] = craw.decode("utf-8", "replace")
            if ev["event"] in ("done", "error"):
                break
    out["t_end_ms"] = (time.monotonic() - t0) * 1000
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # reported to the test as a result, not a traceback
        print(json.dumps({"status": 0, "exception": repr(e), "events": []}))
        sys.exit(0)
