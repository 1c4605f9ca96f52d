#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""ask_kill9.py - kill -9 of the ask workers in the middle of their answers, then what becomes of
those answers. Python standard library only.

usage: ask_kill9.py PORT DAEMON_PID ASKS DEADLINE_S
ASKS sessions each ask (SSE, with an Idempotency-Key); once every stream has 2 deltas, every ask
worker of DAEMON_PID (process name np-ask) gets SIGKILL. Then: the first half of the answers is
cancelled at once (their worker is gone), every answer is watched through GET .../messages until
it is no longer 'streaming' (DEADLINE_S after the kills at most), the second half is cancelled
then, and every ask is retried with its key. Prints one JSON object: {"killed", "asks",
"ended": {status: n}, "streaming_left", "ended_after_s_max", "cancel_now": {"http status": n},
"cancel_after": {...}, "cancel_matches": n (the cancel's status is the stored one), "retry":
{"http event status": n}, "retry_matches": n (the replay ends with the stored status),
"problems": [...]}.
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time


def req(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        return r.status, json.loads(raw)
    except ValueError:
        return r.status, raw.decode("utf-8", "replace")


def stream_ask(port, sid, tok, key, question, state):
    """One ask (SSE); state gets mid, deltas, end ('done'/'error'/'cut'), status."""
    h = {"Authorization": "Bearer " + tok, "Content-Type": "application/json", "Accept": "text/event-stream",
         "Idempotency-Key": key}
    state.update({"deltas": 0, "end": None, "status": None, "http": None})
    try:
        # a delta every 100 ms: 15 s of silence is a cut stream
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        c.request("POST", "/api/v1/sessions/%s/ask" % sid, body=json.dumps({"question": question}).encode(),
                  headers=h)
        r = c.getresponse()
        state["http"] = r.status
        if r.status != 200:
            state["end"] = "http"
            state["body"] = r.read().decode("utf-8", "replace")[:200]
            return
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
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                d = json.loads("\n".join(data))
                ev = event or "message"
                event, data = None, []
                if ev == "citations":
                    state["mid"] = d["message_id"]
                elif ev == "message":
                    state["deltas"] += 1
                elif ev in ("done", "error"):
                    state["end"] = ev
                    state["status"] = d.get("status") if ev == "done" else "failed"
                    return
        state["end"] = "cut"
    except Exception as e:  # the worker was killed: the stream is cut
        state["end"] = "cut"
        state["exception"] = repr(e)
    finally:
        state["t_end"] = time.monotonic()


def ask_workers(daemon_pid):
    out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(daemon_pid)], capture_output=True, text=True).stdout
    return [int(l.split()[0]) for l in out.splitlines() if l.split()[1:] == ["np-ask"]]


def stored(port, s, mid):
    st, body = req(port, "GET", "/api/v1/sessions/%s/messages?limit=5" % s["id"],
                   headers={"Authorization": "Bearer " + s["token"]})
    if st != 200:
        return None
    for m in body.get("messages", []):
        if str(m["id"]) == str(mid):
            return m["status"]
    return None


def count(d, k):
    d[k] = d.get(k, 0) + 1


def main():
    port, daemon_pid, n, deadline_s = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    out = {"asks": n, "killed": 0, "ended": {}, "streaming_left": 0, "ended_after_s_max": 0.0, "cancel_now": {},
           "cancel_after": {}, "cancel_matches": 0, "retry": {}, "retry_matches": 0, "problems": []}
    sessions = []
    for _ in range(n):
        st, s = req(port, "POST", "/api/v1/sessions")
        sessions.append(s)
    states = [{} for _ in range(n)]
    threads = [threading.Thread(target=stream_ask, args=(port, s["id"], s["token"], "kill-%d" % i,
                                                         "What happens when a worker dies, case %d?" % i, states[i]))
               for i, s in enumerate(sessions)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        if all(st.get("deltas", 0) >= 2 or st.get("end") for st in states):
            break
        time.sleep(0.05)
    started = [i for i, st in enumerate(states) if st.get("deltas", 0) >= 2 and not st.get("end")]
    if len(started) != n:
        out["problems"].append({"not_streaming_at_kill": [states[i] for i in range(n) if i not in started][:3]})
    pids = ask_workers(daemon_pid)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
            out["killed"] += 1
        except ProcessLookupError:
            pass
    t_kill = time.monotonic()
    # a cancel sent while a killed worker still runs is told to it ("stopping"): wait until the
    # master has reaped them all
    while time.monotonic() - t_kill < 10 and any(os.path.exists("/proc/%d" % p) for p in pids):
        time.sleep(0.02)
    half = n // 2
    # the first half: cancelled at once; their worker is gone, the cancel finishes them
    for i in range(half):
        s, mid = sessions[i], states[i].get("mid")
        st, body = req(port, "POST", "/api/v1/sessions/%s/ask/%s/cancel" % (s["id"], mid), b"",
                       {"Authorization": "Bearer " + s["token"]})
        cs = body.get("status") if isinstance(body, dict) else body
        count(out["cancel_now"], "%s %s" % (st, cs))
        if st == 200 and cs == stored(port, s, mid):
            out["cancel_matches"] += 1
    # every answer ends (failed or stopped) before the deadline
    final = [None] * n
    while time.monotonic() - t_kill < deadline_s + 5:
        for i in range(n):
            if final[i] is None:
                ss = stored(port, sessions[i], states[i].get("mid"))
                if ss not in (None, "streaming"):
                    final[i] = ss
                    out["ended_after_s_max"] = max(out["ended_after_s_max"], round(time.monotonic() - t_kill, 1))
        if all(final):
            break
        time.sleep(0.5)
    for t in threads:
        t.join(60)
    out["streams_cut_after_s_max"] = round(max(st.get("t_end", t_kill) for st in states) - t_kill, 1)
    for i, st in enumerate(states):
        if st.get("end") != "cut":
            out["problems"].append({"stream_not_cut": i, "state": st})
    for f in final:
        count(out["ended"], str(f))
    out["streaming_left"] = sum(1 for f in final if f is None)
    # the second half: cancelled once ended: the cancel answers the final state
    for i in range(half, n):
        s, mid = sessions[i], states[i].get("mid")
        st, body = req(port, "POST", "/api/v1/sessions/%s/ask/%s/cancel" % (s["id"], mid), b"",
                       {"Authorization": "Bearer " + s["token"]})
        cs = body.get("status") if isinstance(body, dict) else body
        count(out["cancel_after"], "%s %s" % (st, cs))
        if st == 200 and cs == final[i]:
            out["cancel_matches"] += 1
    # a retry with the same key answers (the ask pool is respawned meanwhile: 502/503 are retried)
    for i, s in enumerate(sessions):
        st = {}
        for _ in range(40):
            stream_ask(port, s["id"], s["token"], "kill-%d" % i, "What happens when a worker dies, case %d?" % i, st)
            if st["http"] not in (502, 503):
                break
            time.sleep(0.25)
        count(out["retry"], "%s %s %s" % (st["http"], st["end"], st["status"]))
        if st["http"] == 200 and st["end"] == "done" and st["status"] == stored(port, s, states[i].get("mid")):
            out["retry_matches"] += 1
    print(json.dumps(out))


if __name__ == "__main__":
    main()
