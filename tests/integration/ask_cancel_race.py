#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""ask_cancel_race.py - many streamed asks, each cancelled at a random moment, with a search load
beside them; checks that what each client was told at the end of its stream is what
GET .../messages shows. Python standard library only.

usage: ask_cancel_race.py PORT ASKS CONCURRENCY MAX_CANCEL_MS QUESTION_WORD
Each ask: POST .../ask (SSE); when the citations event names the message, a cancel is posted
after a random 0..MAX_CANCEL_MS (so from the citations event to after done); the stream is read
to its end; then GET .../messages?limit=1 (the answer is the session's newest message).
Prints one JSON object: {"asks", "match", "mismatch": [...], "cancelled_kept": n stored stopped
with the (non-empty) text sent, "stopped", "complete", "failed", "cancel_status": {status: count},
"search_ok", "search_bad"}.
"""
import http.client
import json
import random
import sys
import threading
import time


def req(port, method, path, body=None, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, raw.decode("utf-8", "replace")


def one_ask(port, sid, tok, question, max_cancel_ms):
    auth = {"Authorization": "Bearer " + tok}
    h = dict(auth, **{"Content-Type": "application/json", "Accept": "text/event-stream"})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/api/v1/sessions/%s/ask" % sid, body=json.dumps({"question": question}).encode(),
              headers=h)
    r = c.getresponse()
    res = {"http": r.status, "text": "", "end": None, "end_status": None, "mid": None, "cancel": None}
    if r.status != 200:
        res["end"] = "http"
        res["body"] = r.read().decode("utf-8", "replace")[:300]
        return res
    canceller = None
    event, data = None, []
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.decode("utf-8").rstrip("\r\n")
        if line.startswith(":"):
            continue
        if line.startswith("event:"):
            event = line[6:].strip()
            continue
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
            continue
        if line == "" and data:
            d = json.loads("\n".join(data))
            ev = event or "message"
            event, data = None, []
            if ev == "citations":
                res["mid"] = d["message_id"]
                delay = random.uniform(0, max_cancel_ms) / 1000.0

                def cancel(mid=d["message_id"], delay=delay):
                    time.sleep(delay)
                    res["cancel"] = req(port, "POST", "/api/v1/sessions/%s/ask/%s/cancel" % (sid, mid), b"", auth)
                canceller = threading.Thread(target=cancel)
                canceller.start()
            elif ev == "message":
                res["text"] += d["delta"]
            elif ev in ("done", "error"):
                res["end"] = ev
                res["end_status"] = d.get("status") if ev == "done" else "failed"
                res["end_error"] = d.get("error", {}).get("code") if ev == "error" else None
                break
    c.close()
    if canceller:
        canceller.join()
    st, body = req(port, "GET", "/api/v1/sessions/%s/messages?limit=1" % sid, headers=auth)
    m = body["messages"][0] if st == 200 and isinstance(body, dict) and body.get("messages") else {}
    res["stored_id"] = str(m.get("id"))
    res["stored_status"] = m.get("status")
    res["stored_content"] = m.get("content")
    return res


def main():
    port, asks, conc, max_cancel_ms, word = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
        float(sys.argv[4]), sys.argv[5]
    lock = threading.Lock()
    out = {"asks": 0, "match": 0, "mismatch": [], "cancelled_kept": 0, "stopped": 0, "complete": 0, "failed": 0,
           "cancel_status": {}, "search_ok": 0, "search_bad": 0}
    todo = list(range(asks))
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            try:
                st, _ = req(port, "GET", "/api/v1/search?q=%s&limit=5" % word, timeout=30)
            except Exception:
                st = 0
            with lock:
                out["search_ok" if st == 200 else "search_bad"] += 1

    def asker():
        st, s = req(port, "POST", "/api/v1/sessions")
        if st not in (200, 201):
            with lock:
                out["mismatch"].append({"session": st})
            return
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            try:
                r = one_ask(port, s["id"], s["token"], "What does %s mean, case %d?" % (word, i), max_cancel_ms)
            except Exception as e:
                r = {"exception": repr(e)}
            with lock:
                out["asks"] += 1
                cs = r.get("cancel")
                if cs:
                    key = "%s %s" % (cs[0], cs[1].get("status") if isinstance(cs[1], dict) else cs[1])
                    out["cancel_status"][key] = out["cancel_status"].get(key, 0) + 1
                ok = (r.get("end") in ("done", "error") and r.get("mid") == r.get("stored_id") and
                      r.get("end_status") == r.get("stored_status") and
                      r.get("text", "").rstrip() == (r.get("stored_content") or "").rstrip())
                if ok:
                    out["match"] += 1
                    out[r["stored_status"]] = out.get(r["stored_status"], 0) + 1
                    if r["stored_status"] == "stopped" and r["text"].strip():
                        out["cancelled_kept"] += 1  # stopped mid-stream, its text as sent
                else:
                    r["text"] = r.get("text", "")[:120]
                    if isinstance(r.get("stored_content"), str):
                        r["stored_content"] = r["stored_content"][:120]
                    out["mismatch"].append(r)

    searchers = [threading.Thread(target=searcher) for _ in range(4)]
    for t in searchers:
        t.start()
    askers = [threading.Thread(target=asker) for _ in range(conc)]
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    stop.set()
    for t in searchers:
        t.join()
    out["mismatch"] = out["mismatch"][:10]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
