#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""upgrade_load.py PORT SECONDS WSESSION WTOKEN OUT ASKS [SESSION:TOKEN...]: the long form's writes and asks.

Writes: 20 a second, each a POST /api/v1/sessions/WSESSION/messages with an Idempotency-Key of its own
and content naming it; one line per write in OUT.writes: "KEY STATUS". Asks: ASKS streamed asks at a
time (one per SESSION:TOKEN, each asked again as soon as it ended), through ask_client.py's protocol
inline: one line per ask in OUT.asks: "STATUS LAST_EVENT ... SESSION MESSAGE_ID" (the answer's id from its
first event, "-" when none came). HOST (environment NP_LOAD_HOST, default 127.0.0.1): the server's
address. Standard library only.
"""
import http.client
import json
import os
import sys
import threading
import time
import uuid

port, secs, wsid, wtok, out, nasks = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
host = os.environ.get("NP_LOAD_HOST", "127.0.0.1")
sessions = [s.split(":", 1) for s in sys.argv[7:7 + nasks]]
end = time.monotonic() + secs
lock = threading.Lock()


def writes():
    f = open(out + ".writes", "w", buffering=1)
    nxt = time.monotonic()
    c = None
    while time.monotonic() < end:
        key = str(uuid.uuid4())
        body = json.dumps({"role": "user", "content": "w-" + key}).encode()
        h = {"Content-Type": "application/json", "Authorization": "Bearer " + wtok, "Idempotency-Key": key}
        status = 0
        try:
            if c is None:
                c = http.client.HTTPConnection(host, port, timeout=30)
            c.request("POST", "/api/v1/sessions/%s/messages" % wsid, body=body, headers=h)
            r = c.getresponse()
            r.read()
            status = r.status
        except Exception:
            c = None
        f.write("%s %d\n" % (key, status))
        nxt += 0.05
        time.sleep(max(0, nxt - time.monotonic()))


def asks(sid, tok, f):
    while time.monotonic() < end:
        status, last, mid = 0, "-", "-"
        try:
            c = http.client.HTTPConnection(host, port, timeout=60)
            c.request("POST", "/api/v1/sessions/%s/ask" % sid, body=json.dumps({"question": "What does VACUUM do?"}).encode(),
                      headers={"Content-Type": "application/json", "Authorization": "Bearer " + tok,
                               "Accept": "text/event-stream"})
            r = c.getresponse()
            status = r.status
            if status != 200:
                last = "- " + r.read(300).decode("utf-8", "replace").replace("\n", " ")
            for raw in r if status == 200 else ():
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("event:"):
                    last = line[6:].strip()
                elif line.startswith("data:") and mid == "-" and '"message_id"' in line:
                    try:
                        mid = str(json.loads(line[5:])["message_id"])
                    except (ValueError, KeyError, TypeError):
                        pass
                if line.startswith("data:") and last == "error":
                    last = "error " + line[5:300].strip()
                    break
                if last == "done":
                    break
            c.close()
        except Exception as e:
            last = "exception:" + type(e).__name__
        with lock:
            f.write("%d %s %s %s\n" % (status, last.replace(" ", "_") if last.startswith("exception") else last, sid, mid))


fa = open(out + ".asks", "w", buffering=1)
ts = [threading.Thread(target=writes)] + [threading.Thread(target=asks, args=(s, t, fa)) for s, t in sessions]
for t in ts:
    t.start()
for t in ts:
    t.join()
