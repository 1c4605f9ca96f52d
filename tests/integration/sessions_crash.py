#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""sessions_crash.py - kill -9 of the worker in the middle of a POST of a message (issue 7,
acceptance 4), run by t_sessions_kill9.sh.

usage: sessions_crash.py HTTP_PORT N STATUS_CMD -- PSQL_CMD...
STATUS_CMD: a shell command printing `neonpoolctl status --json`. PSQL_CMD: psql as the superuser on
the test database (stdin SQL, -At rows).

The test installed a trigger that makes an INSERT of a message whose content starts with 'crash-'
wait inside the statement for a gate (advisory lock GATE, held by a session of this script) that
opens only once the worker was dealt with, so that the write is caught in the act however slow the
machine (a fixed sleep in the trigger was missed under load: the request answered 201):
  begin:  kill -9 of the worker while its statement waits (between BEGIN and COMMIT);
  commit: SIGSTOP of the worker while its statement waits, open the gate, wait until the row is
          committed (seen from another session), then kill -9: between the commit and the response;
  lost:   pg_terminate_backend of the worker's backend while the statement waits: the worker must
          answer 503 db_outcome_unknown, never retry it itself.
Then the client retries with the same Idempotency-Key until it gets 201: exactly one row, the
answer is the stored one, nothing half-written.
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

PORT = int(sys.argv[1])
N = int(sys.argv[2])
STATUS = sys.argv[3]
assert sys.argv[4] == "--"
PSQL = sys.argv[5:]
FAILS = 0
STATS = {}
GATE = 7317001  # the advisory lock key of the trigger (t_sessions_kill9.sh)


def ok(cond, what):
    global FAILS
    if not cond:
        print("not ok - " + what, flush=True)
        FAILS += 1
    return cond


# one psql session for every query (a psql start per query made an iteration take seconds on a
# loaded machine); ARGS become :'v0', :'v1'... and the answer ends at a marker line
SQL_SESSION = subprocess.Popen(PSQL, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def sql(q, *args):
    buf = "".join("\\set v%d '%s'\n" % (i, str(a).replace("\\", "\\\\").replace("'", "''"))
                  for i, a in enumerate(args))
    buf += q.strip().rstrip(";") + ";\n\\echo __np_sql_end__\n"
    SQL_SESSION.stdin.write(buf.encode())
    SQL_SESSION.stdin.flush()
    out = []
    while True:
        line = SQL_SESSION.stdout.readline()
        if not line:
            raise SystemExit("the psql session ended (a query failed): %s" % q)
        line = line.decode().rstrip("\n")
        if line == "__np_sql_end__":
            return "\n".join(out).strip()
        out.append(line)


def req(method, path, body=None, token=None, key=None):
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
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
    except (OSError, http.client.HTTPException) as e:
        return 0, None, str(e).encode()
    try:
        return r.status, json.loads(raw) if raw else None, raw
    except ValueError:
        return r.status, None, raw


def worker_of_backend(bpid):
    """The neonpoold worker holding the connection of backend bpid (status --json's tokens)."""
    out = subprocess.run(STATUS, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    try:
        d = json.loads(out)
    except ValueError:
        return None
    for t in d["endpoints"]["primary"].get("tokens", []):
        if t.get("backend_pid") == bpid:
            return t.get("pid")
    return None


def sleeping_backend(content):
    """The backend running the INSERT of content, while it waits at the gate in the trigger."""
    deadline = time.time() + 10
    while time.time() < deadline:
        p = sql("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' "
                "AND application_name LIKE 'neonpool/%%' AND query LIKE '%%np_post_message%%' "
                "AND datname = current_database() LIMIT 1")
        if p:
            return int(p)
        time.sleep(0.005)
    return None


# the gate: one psql session of ours holds the advisory lock GATE while a write is to be caught
gate = subprocess.Popen(PSQL, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def gate_set(closed):
    gate.stdin.write(("SELECT pg_advisory_%s(%d);\n" % ("lock" if closed else "unlock", GATE)).encode())
    gate.stdin.flush()
    deadline = time.time() + 10
    while time.time() < deadline:
        held = sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %d AND mode = 'ExclusiveLock' "
                   "AND granted" % GATE)
        if held == ("1" if closed else "0"):
            return
        time.sleep(0.01)
    raise SystemExit("the gate did not %s" % ("close" if closed else "open"))


s = req("POST", "/api/v1/sessions")
assert s[0] == 201, s
sid, tok = s[1]["id"], s[1]["token"]
P = "/api/v1/sessions/%d/messages" % sid


def one(mode, i):
    content = "crash-%s-%d " % (mode, i) + "x" * 200 + " 😀 ' ; --"
    key = "k-%s-%d" % (mode, i)
    res = {}
    gate_set(True)
    t = threading.Thread(target=lambda: res.setdefault("r", req("POST", P, {"role": "user", "content": content}, tok, key)))
    t.start()
    bpid = sleeping_backend(content)
    if not ok(bpid is not None, "%s %d: the write was seen in its statement" % (mode, i)):
        gate_set(False)
        t.join(30)
        return
    if mode == "lost":
        sql("SELECT pg_terminate_backend(:'v0')", bpid)
        gate_set(False)
    else:
        wpid = None
        deadline = time.time() + 5
        while wpid is None and time.time() < deadline:
            wpid = worker_of_backend(bpid)
            if wpid is None:
                time.sleep(0.01)
        if not ok(wpid is not None, "%s %d: found the worker of backend %d" % (mode, i, bpid)):
            gate_set(False)
            t.join(30)
            return
        if mode == "commit":
            os.kill(wpid, signal.SIGSTOP)
            gate_set(False)
            deadline = time.time() + 10
            while time.time() < deadline and sql("SELECT count(*) FROM messages WHERE content = :'v0'", content) != "1":
                time.sleep(0.01)
            ok(sql("SELECT count(*) FROM messages WHERE content = :'v0'", content) == "1",
               "commit %d: the row committed while the worker was stopped" % i)
        os.kill(wpid, signal.SIGKILL)
        if mode == "begin":
            # every other time the gate stays shut until the server ended the orphan (its client
            # check aborts the wait: rolled back, the retry writes); else it opens at once and the
            # orphaned statement may finish and commit (replayed to the retry)
            deadline = time.time() + (5 if i % 2 else 0)
            while time.time() < deadline and sql("SELECT count(*) FROM pg_stat_activity WHERE pid = :'v0'", bpid) != "0":
                time.sleep(0.05)
            gate_set(False)
    kill_ts = sql("SELECT clock_timestamp()")
    t.join(30)
    first = res.get("r", (0, None, b""))
    STATS.setdefault(mode + ".first", {}).setdefault(first[0], 0)
    STATS[mode + ".first"][first[0]] += 1
    if mode == "lost":
        ok(first[0] == 503 and first[1] and first[1]["error"]["code"] == "db_outcome_unknown",
           "lost %d: 503 db_outcome_unknown (got %d %r)" % (i, first[0], first[2][:120]))
    else:
        ok(first[0] in (0, 502, 503, 504), "%s %d: the killed request got no answer from us (%d %r)" % (mode, i, first[0], first[2][:120]))
    # the client retries with the same key until it has an answer
    deadline = time.time() + 20
    r = (0, None, b"")
    tries = 0
    while time.time() < deadline:
        r = req("POST", P, {"role": "user", "content": content}, tok, key)
        tries += 1
        if r[0] == 201:
            break
        ok(r[0] in (0, 409, 502, 503), "%s %d: a retry answered %d %r" % (mode, i, r[0], r[2][:120]))
        time.sleep(0.05)
    STATS.setdefault(mode + ".retries", []).append(tries)
    if not ok(r[0] == 201, "%s %d: the retry with the same key succeeded (%d)" % (mode, i, r[0])):
        return
    rows = sql("SELECT id FROM messages WHERE content = :'v0'", content).split()
    ok(len(rows) == 1, "%s %d: exactly one row (got %d)" % (mode, i, len(rows)))
    ok(rows and int(rows[0]) == r[1]["id"] and r[1]["content"] == content,
       "%s %d: the answer is that row, content intact" % (mode, i))
    # who committed it: the first attempt (its statement finished after the kill) or a retry
    by_first = sql("SELECT created_at < :'v0' FROM messages WHERE id = :'v1'", kill_ts, r[1]["id"]) == "t"
    STATS.setdefault(mode + ".committed_by", {}).setdefault("first" if by_first else "retry", 0)
    STATS[mode + ".committed_by"]["first" if by_first else "retry"] += 1
    stored = sql("SELECT body FROM idempotency_keys WHERE session_id = :'v0' AND key = :'v1'", sid, key)
    ok(stored.encode() == r[2], "%s %d: the answer is the stored one" % (mode, i))


for mode in ("begin", "commit", "lost"):
    n = N if mode != "lost" else max(5, N // 5)
    for i in range(n):
        one(mode, i)
    print("# %s: %d kills done" % (mode, n), flush=True)

# nothing half-written: every crash- message has its key record, and the key's body is that message
half = sql("SELECT count(*) FROM messages m WHERE m.content LIKE 'crash-%%' AND NOT EXISTS "
           "(SELECT 1 FROM idempotency_keys k WHERE k.session_id = m.session_id AND (k.body::json->>'id')::bigint = m.id)")
ok(half == "0", "no message without its idempotency record (got %s)" % half)
dups = sql("SELECT count(*) FROM (SELECT content FROM messages WHERE content LIKE 'crash-%%' GROUP BY content HAVING count(*) > 1) d")
ok(dups == "0", "no duplicate message (got %s)" % dups)
total = sql("SELECT count(*) FROM messages WHERE content LIKE 'crash-%%'")
gate.stdin.close()
gate.wait(10)
print("# stats: %s" % json.dumps(STATS, sort_keys=True))
print("# crash messages in the table: %s" % total)
sys.exit(min(FAILS, 100))
