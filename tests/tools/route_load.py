#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""route_load.py - every read and write route of the API, round and round, until a stop file
appears (or a time limit passes); each answer checked. Python standard library only.

usage: route_load.py PORT STOP_FILE OUT_JSON [--threads N] [--max-s S] [--books LO HI] [--passages LO HI]
                     [--phase-file F]

Each thread has a session of its own and goes through: GET version, books, a book, a chapter, a
passage, search; POST a message (an Idempotency-Key, sent twice: the replay must name the same
message), GET the session's messages, POST feedback on the message, POST an ask (one JSON answer,
retrieval mode). A request is good when its status is the one the route answers (200/201) and
its body is JSON of the expected shape. --phase-file: the file's content (a word) labels each
request, so that the figures come per phase (before, during and after a migration, ...).

OUT_JSON: {"requests", "bad", "by_phase": {phase: {route: [good, bad]}}, "bad_samples": [...],
"messages": [[session, key, message_id]...], "versions": {phase: [versions seen]}}. Exit 0.
"""
import argparse
import http.client
import json
import os
import random
import threading
import time


class Load:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.by_phase = {}
        self.bad_samples = []
        self.messages = []
        self.versions = {}
        self.requests = 0
        self.bad = 0

    def phase(self):
        try:
            with open(self.a.phase_file) as f:
                return f.read().strip() or "-"
        except (OSError, TypeError):
            return "-"

    def note(self, phase, route, ok, detail=None):
        with self.lock:
            self.requests += 1
            r = self.by_phase.setdefault(phase, {}).setdefault(route, [0, 0])
            r[0 if ok else 1] += 1
            if not ok:
                self.bad += 1
                if len(self.bad_samples) < 50:
                    self.bad_samples.append({"phase": phase, "route": route, "detail": detail})

    def call(self, conn, method, path, body=None, headers=None, want=(200,)):
        h = {"Accept": "application/json"}
        if headers:
            h.update(headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        ok = r.status in want and doc is not None
        return ok, r.status, doc, raw[:300].decode("utf-8", "replace")

    def thread(self, n):
        a = self.a
        rnd = random.Random(n)
        conn = None
        sid = tok = None
        i = 0
        while not os.path.exists(a.stop) and time.monotonic() < self.deadline:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
            phase = self.phase()
            step = i % 10
            i += 1
            route = "?"
            try:
                if sid is None or step == 0 and rnd.random() < 0.2:
                    route = "sessions.create"
                    ok, st, doc, raw = self.call(conn, "POST", "/api/v1/sessions", want=(201,))
                    if ok and "id" in doc and "token" in doc:
                        sid, tok = str(doc["id"]), doc["token"]
                    else:
                        ok = False
                    self.note(phase, route, ok, [st, raw])
                    continue
                auth = {"Authorization": "Bearer " + tok}
                b = rnd.randint(a.books[0], a.books[1])
                if step == 0:
                    route = "version"
                    ok, st, doc, raw = self.call(conn, "GET", "/api/v1/version")
                    ok = ok and "version" in doc
                    if ok:
                        with self.lock:
                            v = self.versions.setdefault(phase, [])
                            if doc["version"] not in v:
                                v.append(doc["version"])
                elif step == 1:
                    route = "books.list"
                    ok, st, doc, raw = self.call(conn, "GET", "/api/v1/books")
                elif step == 2:
                    route = "books.get"
                    ok, st, doc, raw = self.call(conn, "GET", "/api/v1/books/%d" % b)
                elif step == 3:
                    route = "chapters.get"
                    ok, st, doc, raw = self.call(conn, "GET", "/api/v1/books/%d/chapters/%d" % (b, rnd.randint(1, 10)))
                elif step == 4:
                    route = "passages.get"
                    p = rnd.randint(a.passages[0], a.passages[1])
                    ok, st, doc, raw = self.call(conn, "GET", "/api/v1/passages/%d" % p)
                elif step == 5:
                    route = "search"
                    ok, st, doc, raw = self.call(conn, "GET", "/api/v1/search?q=" + rnd.choice(
                        ["river", "theorem", "molecule", "light", "energy"]))
                elif step == 6:
                    route = "messages.create"
                    key = "k-%d-%d-%d" % (n, i, rnd.randint(0, 1 << 30))
                    body = {"role": "user", "content": "note %d of thread %d" % (i, n)}
                    hk = dict(auth, **{"Idempotency-Key": key})
                    ok, st, doc, raw = self.call(conn, "POST", "/api/v1/sessions/%s/messages" % sid, body, hk,
                                                 want=(201,))
                    mid = doc.get("id") if ok and isinstance(doc, dict) else None
                    if ok and mid is not None:
                        ok2, st2, doc2, raw2 = self.call(conn, "POST", "/api/v1/sessions/%s/messages" % sid, body,
                                                         hk, want=(200, 201))
                        if not ok2 or doc2.get("id") != mid:
                            ok, st, raw = False, st2, "replay: " + raw2
                        else:
                            with self.lock:
                                self.messages.append([sid, key, mid])
                            self.last_mid = mid
                    else:
                        ok = False
                elif step == 7:
                    route = "messages.list"
                    ok, st, doc, raw = self.call(conn, "GET", "/api/v1/sessions/%s/messages" % sid, headers=auth)
                elif step == 8:
                    route = "feedback.create"
                    mid = getattr(self, "last_mid", None)
                    with self.lock:
                        mine = [m[2] for m in self.messages if m[0] == sid]
                    if not mine:
                        continue
                    ok, st, doc, raw = self.call(conn, "POST", "/api/v1/messages/%s/feedback" % mine[-1],
                                                 {"rating": rnd.choice([1, -1])}, auth, want=(200, 201))
                else:
                    route = "ask"
                    ok, st, doc, raw = self.call(conn, "POST", "/api/v1/sessions/%s/ask" % sid,
                                                 {"question": "What does the theorem say about the river?"},
                                                 auth, want=(200, 201))
                    ok = ok and isinstance(doc, dict) and doc.get("status", "complete") == "complete"
                self.note(phase, route, ok, [st, raw])
            except (OSError, http.client.HTTPException) as e:
                self.note(phase, route, False, ["socket", repr(e)])
                try:
                    conn.close()
                except OSError:
                    pass
                conn = None
        if conn is not None:
            conn.close()

    def run(self):
        self.deadline = time.monotonic() + self.a.max_s
        ts = [threading.Thread(target=self.thread, args=(n,)) for n in range(self.a.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        with open(self.a.out, "w") as f:
            json.dump({"requests": self.requests, "bad": self.bad, "by_phase": self.by_phase,
                       "bad_samples": self.bad_samples, "messages": self.messages, "versions": self.versions}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("stop")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--max-s", type=float, default=120)
    ap.add_argument("--books", type=int, nargs=2, default=[1, 1])
    ap.add_argument("--passages", type=int, nargs=2, default=[1, 1])
    ap.add_argument("--phase-file")
    Load(ap.parse_args()).run()


if __name__ == "__main__":
    main()
