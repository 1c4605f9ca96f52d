#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""kill_soak.py - one kill -9 of a random worker or ask worker every second under keyed posts and
streamed asks, run by t_kill_soak.sh (which adds the reads with wrk and samples the budget).
Python standard library only.

usage: kill_soak.py HTTP_PORT MASTER_PID SECONDS -- PSQL_CMD...
PSQL_CMD: psql as the superuser on the test database (stdin SQL, -At rows).

Threads, for SECONDS:
  sampler  every 100 ms: the master's live np-worker and np-ask children (from /proc), and whether
           the master lives;
  killer   every second: SIGKILL of one of those children, at random;
  posters  keyed posts of messages (Idempotency-Key): each retried with the same key until 201;
  askers   streamed asks (SSE), each recording the answer's message id from its first event.
Then the posts are checked in the database: every acknowledged one stored exactly once, as the
row it was acknowledged as. Prints one JSON object with the figures; t_kill_soak.sh judges them.
"""
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

PORT = int(sys.argv[1])
MASTER = int(sys.argv[2])
SECONDS = float(sys.argv[3])
assert sys.argv[4] == "--"
PSQL = sys.argv[5:]
STOP = threading.Event()      # the load and the kills end
LOCK = threading.Lock()
OUT = {"samples": 0, "min_workers": None, "min_ask": None, "zero_samples": [], "master_gone_samples": 0,
       "kills": {"np-worker": 0, "np-ask": 0}, "posts_acked": 0, "posts_given_up": 0, "post_attempts": 0,
       "post_answers": {}, "asks": 0, "ask_outcomes": {}, "ask_ids": []}
ACKED = []                    # (content, id) of every 201


def sql(q, *args):
    cmd = list(PSQL)
    for i, a in enumerate(args):
        cmd += ["-v", "v%d=%s" % (i, a)]
    return subprocess.run(cmd, input=q.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=True).stdout.decode().strip()


def count(d, k):
    with LOCK:
        d[k] = d.get(k, 0) + 1


def children():
    """{pid: comm} of the master's live children."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        rest = st[st.rindex(")") + 2:].split()
        if int(rest[1]) == MASTER and rest[0] not in ("Z", "X"):
            out[int(name)] = comm
    return out


def master_alive():
    try:
        with open("/proc/%d/stat" % MASTER) as f:
            return f.read().split(") ")[-1][0] not in "ZX"
    except OSError:
        return False


def sampler():
    while not STOP.is_set():
        t = time.time()
        kids = children()
        w = sum(1 for c in kids.values() if c == "np-worker")
        a = sum(1 for c in kids.values() if c == "np-ask")
        with LOCK:
            OUT["samples"] += 1
            OUT["min_workers"] = w if OUT["min_workers"] is None else min(OUT["min_workers"], w)
            OUT["min_ask"] = a if OUT["min_ask"] is None else min(OUT["min_ask"], a)
            if (w == 0 or a == 0) and len(OUT["zero_samples"]) < 20:
                OUT["zero_samples"].append({"t": round(t, 3), "workers": w, "ask": a})
            if not master_alive():
                OUT["master_gone_samples"] += 1
        time.sleep(max(0.0, 0.1 - (time.time() - t)))


def killer():
    rnd = random.Random()
    next_t = time.time() + 1
    while not STOP.wait(max(0.0, next_t - time.time())):
        next_t += 1
        kids = [(p, c) for p, c in children().items() if c in ("np-worker", "np-ask")]
        if not kids:
            continue
        pid, comm = rnd.choice(kids)
        try:
            os.kill(pid, signal.SIGKILL)
            with LOCK:
                OUT["kills"][comm] += 1
        except OSError:
            pass


def req(method, path, body=None, token=None, key=None, timeout=30):
    h = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = "Bearer " + token
    if key:
        h["Idempotency-Key"] = '"%s"' % key
    try:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
    except (OSError, http.client.HTTPException):
        return 0, None
    try:
        return r.status, json.loads(raw) if raw else None
    except ValueError:
        return r.status, None


def session():
    deadline = time.time() + 30
    while time.time() < deadline:
        s = req("POST", "/api/v1/sessions")
        if s[0] == 201:
            return s[1]["id"], s[1]["token"]
        time.sleep(0.1)
    raise RuntimeError("no session")


def poster(n):
    sid, tok = session()
    path = "/api/v1/sessions/%d/messages" % sid
    i = 0
    while not STOP.is_set():
        i += 1
        content = "soak-%d-%d %s" % (n, i, "x" * 100)
        key = "soak-%d-%d" % (n, i)
        deadline = time.time() + 30
        while True:
            st, body = req("POST", path, {"role": "user", "content": content}, tok, key)
            with LOCK:
                OUT["post_attempts"] += 1
            count(OUT["post_answers"], str(st))
            if st == 201:
                with LOCK:
                    OUT["posts_acked"] += 1
                    ACKED.append((content, body["id"]))
                break
            if time.time() > deadline:
                with LOCK:
                    OUT["posts_given_up"] += 1
                break
            time.sleep(0.05)


def asker(n):
    sid, tok = session()
    i = 0
    while not STOP.is_set():
        i += 1
        with LOCK:
            OUT["asks"] += 1
        # Connection: close, and the body read through the response (chunked decoding): a stream
        # cut by a killed worker ends with nginx's last chunk and no `done` event
        h = {"Content-Type": "application/json", "Authorization": "Bearer " + tok, "Accept": "text/event-stream",
             "Connection": "close"}
        outcome = "no answer"
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            c.request("POST", "/api/v1/sessions/%d/ask" % sid,
                      body=json.dumps({"question": "What is a transaction? (%d.%d)" % (n, i)}).encode(), headers=h)
            r = c.getresponse()
            outcome = "http %d" % r.status
            if r.getheader("Content-Type", "").startswith("text/event-stream"):
                outcome = "stream cut"
                event, data = None, []
                for line in iter(r.readline, b""):
                    line = line.decode("utf-8").rstrip("\r\n")
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
                    elif line == "" and data:
                        d = json.loads("\n".join(data))
                        if event == "citations" and "message_id" in d:
                            with LOCK:
                                OUT["ask_ids"].append(d["message_id"])
                        if event in ("done", "error"):
                            outcome = "%s %s" % (event, d.get("status", d.get("code", "")))
                            break
                        event, data = None, []
            else:
                r.read()
            c.close()
        except (OSError, http.client.HTTPException, ValueError):
            pass
        count(OUT["ask_outcomes"], outcome)
        if outcome.startswith("http 5") or outcome == "no answer":
            time.sleep(0.1)


def main():
    threads = [threading.Thread(target=sampler), threading.Thread(target=killer)]
    threads += [threading.Thread(target=poster, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=asker, args=(n,)) for n in range(2)]
    for t in threads:
        t.daemon = True
        t.start()
    time.sleep(SECONDS)
    STOP.set()
    for t in threads:
        t.join(90)
    # every acknowledged post stored exactly once, as the row it was acknowledged as
    stored = {}
    for line in sql("SELECT id, content FROM messages WHERE content LIKE 'soak-%%'").splitlines():
        mid, content = line.split("|", 1)
        stored.setdefault(content, []).append(int(mid))
    bad = []
    for content, mid in ACKED:
        if stored.get(content) != [mid]:
            bad.append({"content": content[:24], "acked_id": mid, "rows": stored.get(content, [])})
    OUT["posts_not_exactly_once"] = len(bad)
    OUT["posts_bad"] = bad[:10]
    print(json.dumps(OUT, sort_keys=True))


if __name__ == "__main__":
    main()
