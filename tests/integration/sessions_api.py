#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""sessions_api.py - the chat-session API suite (issue 7), run by t_sessions_api.sh and
t_sessions_pgbouncer.sh against nginx in front of neonpoold.

usage: sessions_api.py HTTP_PORT PSQL_CMD...
PSQL_CMD runs psql as the superuser on the test database, reading SQL on stdin, printing -At rows.
Prints TAP-like "ok - " / "not ok - " lines; exits with the number of failures.
"""
import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time

PORT = int(sys.argv[1])
PSQL = sys.argv[2:]
FAILS = 0


def ok(cond, what):
    global FAILS
    print(("ok - " if cond else "not ok - ") + what, flush=True)
    if not cond:
        FAILS += 1
    return cond


def eq(want, got, what):
    return ok(want == got, "%s (want %r, got %r)" % (what, want, got) if want != got else what)


def sql(q, *args):
    """Run q through psql with :'vN' variables (psql quotes them: no string building)."""
    cmd = list(PSQL)
    for i, a in enumerate(args):
        cmd += ["-v", "v%d=%s" % (i, a)]
    out = subprocess.run(cmd, input=q.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return out.stdout.decode().rstrip("\n")


def req(method, path, body=None, token=None, ctype="application/json", key=None, headers=None):
    """One request; body: dict (JSON), bytes (as is) or None. Returns (status, parsed or raw, headers)."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        if ctype:
            h["Content-Type"] = ctype
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if key is not None:
        h["Idempotency-Key"] = key
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return r.status, parsed, {k.lower(): v for k, v in r.getheaders()}, raw


def err(resp):
    b = resp[1]
    return b.get("error", {}) if isinstance(b, dict) else {}


TOKENS = []


def new_session():
    s = req("POST", "/api/v1/sessions")
    assert s[0] == 201, s
    return s[1]["id"], s[1]["token"]


def msgs(sid, tok, q=""):
    return req("GET", "/api/v1/sessions/%d/messages%s" % (sid, q), token=tok)


# ---- sessions --------------------------------------------------------------------------------
s = req("POST", "/api/v1/sessions")
eq(201, s[0], "POST /api/v1/sessions: 201")
sid, tok = s[1]["id"], s[1]["token"]
TOKENS.append(tok)
ok(isinstance(sid, int) and sid > 0, "the session id is a positive integer")
eq(43, len(tok), "the token is 43 base64url characters (256 bits)")
raw_tok = base64.urlsafe_b64decode(tok + "=")
eq(hashlib.sha256(raw_tok).hexdigest(), sql("SELECT encode(token_hash, 'hex') FROM sessions WHERE id = :'v0'", sid),
   "the database keeps the token's SHA-256")
eq("0", sql("SELECT count(*) FROM sessions WHERE position(convert_to(:'v0', 'UTF8') IN token_hash) > 0 "
            "OR token_hash = convert_to(:'v0', 'UTF8')", tok), "and never the token itself")
s2 = req("POST", "/api/v1/sessions", body={})
eq(201, s2[0], "POST /api/v1/sessions with {}: 201")
sid2, tok2 = s2[1]["id"], s2[1]["token"]
TOKENS.append(tok2)
ok(tok2 != tok, "two sessions, two tokens")
r = req("POST", "/api/v1/sessions", body={"name": "x"})
eq((400, "invalid_body", "name"), (r[0], err(r).get("code"), err(r).get("field")), "a session with an unknown member: 400 naming it")
r = req("POST", "/api/v1/sessions", body=b"{}", ctype="text/plain")
eq((415, "unsupported_media_type"), (r[0], err(r).get("code")), "a session body as text/plain: 415")
r = req("PUT", "/api/v1/sessions")
eq(405, r[0], "PUT /api/v1/sessions: 405")
# a new session cannot be replayed (its token is shown once, only the hash is kept): a key there
# would promise what it cannot keep, so it is refused and nothing is created
n_sessions = sql("SELECT count(*) FROM sessions")
r = req("POST", "/api/v1/sessions", body={}, key='"new-session-1"')
eq((400, "invalid_idempotency_key", "Idempotency-Key"), (r[0], err(r).get("code"), err(r).get("field")),
   "POST /api/v1/sessions with an Idempotency-Key: 400 naming the header")
eq(n_sessions, sql("SELECT count(*) FROM sessions"), "and no session was created")

# ---- tokens: missing, malformed, another session's, a session that does not exist: all 404 -----
nf = msgs(sid, None)
eq((404, "not_found"), (nf[0], err(nf).get("code")), "GET messages without a token: 404 not_found")
other = msgs(sid, tok2)
eq(404, other[0], "GET messages with another session's token: 404")
eq(nf[3], other[3], "the same body as without a token")
r = msgs(sid, tok[:-1])
eq(404, r[0], "a truncated token: 404")
r = req("GET", "/api/v1/sessions/%d/messages" % sid, headers={"Authorization": "Basic " + tok})
eq(404, r[0], "another scheme: 404")
missing = msgs(sid2 + 1000000, tok)
eq((404, nf[3]), (missing[0], missing[3]), "a session that does not exist: the same 404 body")
for bad in ("0", "-1", "abc", "007", "99999999999999999999", "1e3"):
    r = req("GET", "/api/v1/sessions/%s/messages" % bad, token=tok)
    eq((400, "invalid_id"), (r[0], err(r).get("code")), "session id %s: 400 invalid_id" % bad)

# ---- messages: verbatim strings ---------------------------------------------------------------
NASTY = [
    "Robert'); DROP TABLE messages; --",
    "' OR '1'='1",
    "$1 $$ $q$ \\x00 \\0 %s %n %_ \\\\ \"quoted\" `tick` ;",
    "emoji 😀🎉👩‍👩‍👧 and RTL שלום and combining é",
    "line\nbreak\ttab\r\n\u2028\u2029 end",
    "<script>alert(1)</script> {\"json\": [1,2]}",
    "\U0010FFFF max code point",
]
ids = []
for text in NASTY:
    r = req("POST", "/api/v1/sessions/%d/messages" % sid, body={"role": "user", "content": text}, token=tok)
    if eq(201, r[0], "POST a message with %r: 201" % text[:20]):
        eq(text, r[1]["content"], "returned verbatim")
        ids.append(r[1]["id"])
        eq(text.encode().hex(), sql("SELECT encode(convert_to(content, 'UTF8'), 'hex') FROM messages WHERE id = :'v0'",
                                    r[1]["id"]), "stored verbatim (its bytes)")
        ok(r[1]["created_at"].endswith("Z") and r[1]["session_id"] == sid and r[1]["role"] == "user",
           "with its session, role and a UTC time")
# the database's copy, byte for byte (rows with newlines too), through its hash
for text, i in zip(NASTY, ids):
    eq(hashlib.sha256(text.encode()).hexdigest(), sql("SELECT encode(sha256(convert_to(content, 'UTF8')), 'hex') FROM messages WHERE id = :'v0'", i),
       "stored bytes of %r" % text[:20])
page = msgs(sid, tok, "?limit=100")
eq(200, page[0], "GET messages: 200")
eq(list(reversed(NASTY)), [m["content"] for m in page[1]["messages"]], "every string returned verbatim, newest first")
eq(None, page[1]["next_before"], "one page: next_before null")
for role in ("assistant", "system"):
    r = req("POST", "/api/v1/sessions/%d/messages" % sid, body={"role": role, "content": "x"}, token=tok)
    eq(201, r[0], "role %s: 201" % role)

# ---- keyset pagination -------------------------------------------------------------------------
for i in range(25):
    req("POST", "/api/v1/sessions/%d/messages" % sid2, body={"role": "user", "content": "m%d" % i}, token=tok2)
seen, before, pages = [], "", 0
while True:
    p = msgs(sid2, tok2, "?limit=10" + before)
    if not eq(200, p[0], "page %d: 200" % pages):
        break
    pages += 1
    seen += [m["id"] for m in p[1]["messages"]]
    if p[1]["next_before"] is None:
        break
    before = "&before=%d" % p[1]["next_before"]
eq(3, pages, "25 messages in pages of 10: 3 pages")
eq(25, len(seen), "every message once")
eq(sorted(seen, reverse=True), seen, "newest first across pages")
eq(len(seen), len(set(seen)), "no duplicates across pages")
for q in ("?limit=0", "?limit=101", "?limit=x", "?before=0", "?before=-5", "?before=abc", "?limit=2&limit=3", "?limit=%E0"):
    r = msgs(sid2, tok2, q)
    eq((400, "invalid_parameter"), (r[0], err(r).get("code")), "GET messages%s: 400 invalid_parameter" % q)
    ok(err(r).get("field") in q, "naming the parameter (%s)" % err(r).get("field"))
p = msgs(sid2, tok2, "?before=%d&limit=2" % seen[-1])
eq((200, [], None), (p[0], p[1]["messages"], p[1]["next_before"]), "before the oldest: an empty last page")

# ---- validation of a message --------------------------------------------------------------------
P = "/api/v1/sessions/%d/messages" % sid
cases = [
    ("no content type", b'{"role":"user","content":"x"}', None, 415, None),
    ("text/plain", b'{"role":"user","content":"x"}', "text/plain", 415, None),
    ("form", b'role=user&content=x', "application/x-www-form-urlencoded", 415, None),
    ("invalid UTF-8", b'{"role":"user","content":"\xff\xfe"}', "application/json", 400, None),
    ("a truncated UTF-8 sequence", b'{"role":"user","content":"\xe2\x82"}', "application/json", 400, None),
    ("an encoded surrogate", b'{"role":"user","content":"\xed\xa0\x80"}', "application/json", 400, None),
    ("a NUL byte", b'{"role":"user","content":"a\x00b"}', "application/json", 400, None),
    ("a \\u0000 escape", b'{"role":"user","content":"a\\u0000b"}', "application/json", 400, None),
    ("a lone surrogate escape", b'{"role":"user","content":"\\ud800"}', "application/json", 400, None),
    ("not JSON", b'{"role":"user",', "application/json", 400, None),
    ("an array", b'[1]', "application/json", 400, None),
    ("trailing data", b'{"role":"user","content":"x"} {}', "application/json", 400, None),
    ("a member twice", b'{"role":"user","content":"x","content":"y"}', "application/json", 400, None),
    ("an unknown member", b'{"role":"user","content":"x","contnet":"y"}', "application/json", 400, "contnet"),
    ("no content", b'{"role":"user"}', "application/json", 400, "content"),
    ("empty content", b'{"role":"user","content":""}', "application/json", 400, "content"),
    ("content a number", b'{"role":"user","content":5}', "application/json", 400, "content"),
    ("content too long", json.dumps({"role": "user", "content": "é" * 16385}).encode(), "application/json", 400, "content"),
    ("no role", b'{"content":"x"}', "application/json", 400, "role"),
    ("an unknown role", b'{"role":"admin","content":"x"}', "application/json", 400, "role"),
    ("role null", b'{"role":null,"content":"x"}', "application/json", 400, "role"),
    ("an empty body", b'', "application/json", 400, None),
]
before_count = sql("SELECT count(*) FROM messages")
for what, body, ct, status, field in cases:
    r = req("POST", P, body=body, token=tok, ctype=ct)
    e = err(r)
    eq(status, r[0], "a message with %s: %d" % (what, status))
    ok(isinstance(r[1], dict) and e.get("code") and e.get("message"), "  as the JSON error envelope (%s)" % e.get("code"))
    if field:
        eq(field, e.get("field"), "  naming the field")
r = req("POST", P, body={"role": "user", "content": "é" * 16384}, token=tok)
eq(201, r[0], "content of exactly 16384 characters (32768 bytes): 201")
eq(int(before_count) + 1, int(sql("SELECT count(*) FROM messages")), "no rejected request wrote a row")
big = json.dumps({"role": "user", "content": "x" * (2 << 20)}).encode()
r = req("POST", P, body=big, token=tok)
eq(413, r[0], "a 2 MiB body through nginx: 413")

# ---- Idempotency-Key ---------------------------------------------------------------------------
body = {"role": "user", "content": "idem ' ; -- 😀"}
k = "key-';--$1%_*"
a = req("POST", P, body=body, token=tok, key='"%s"' % k)
eq(201, a[0], "first POST with an Idempotency-Key: 201")
b = req("POST", P, body=body, token=tok, key='"%s"' % k)
eq((201, a[3]), (b[0], b[3]), "the same key and body again: the stored status and body, byte for byte")
c = req("POST", P, body=body, token=tok, key=k)
eq((201, a[3]), (c[0], c[3]), "the key bare instead of quoted: the same key")
d = req("POST", P, body={"content": body["content"], "role": "user"}, token=tok, key=k)
eq((201, a[3]), (d[0], d[3]), "members in another order: the same request")
eq("1", sql("SELECT count(*) FROM messages WHERE content = :'v0'", body["content"]), "one row")
r = req("POST", P, body={"role": "user", "content": "something else"}, token=tok, key=k)
eq((422, "idempotency_mismatch"), (r[0], err(r).get("code")), "the same key with another body: 422")
r = req("POST", P, body={"role": "assistant", "content": body["content"]}, token=tok, key=k)
eq(422, r[0], "the same key with another role: 422")
r = req("POST", "/api/v1/sessions/%d/messages" % sid2, body=body, token=tok2, key=k)
eq(201, r[0], "the same key in another session: its own key (201)")
ok(r[1]["id"] != a[1]["id"], "a new message there")
r = req("POST", P, body=body, token=tok2, key=k)
eq(404, r[0], "the key with another session's token: 404, nothing replayed")
for badkey in ("", '""', "k" * 256, "a b", "caf\u00e9"):
    try:
        r = req("POST", P, body=body, token=tok, key=badkey)
        eq((400, "invalid_idempotency_key"), (r[0], err(r).get("code")), "Idempotency-Key %r: 400" % badkey[:12])
    except (UnicodeEncodeError, ValueError):
        ok(True, "Idempotency-Key %r cannot even be sent by http.client" % badkey[:12])
r = req("POST", P, body={"role": "user", "content": "long key"}, token=tok, key="k" * 255)
eq(201, r[0], "a 255-character key: 201")
eq("1", sql("SELECT count(*) FROM idempotency_keys WHERE key = :'v0' AND session_id = :'v1'", k, sid),
   "the key recorded once for this session")

# expiry: a key older than 24 h is forgotten (a new write), and expired keys are cleaned up
sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = :'v0'", k)
r = req("POST", P, body=body, token=tok, key=k)
eq(201, r[0], "the same key after 25 h: 201")
ok(r[1]["id"] != a[1]["id"], "a new message (the key had expired)")
eq("0", sql("SELECT count(*) FROM idempotency_keys WHERE created_at < now() - interval '24 hours'"),
   "expired keys of other sessions were cleaned up by the keyed write")

# in flight: the first request holds its key while a lock makes it wait; the retry is 409
k2 = "inflight-1"
body2 = {"role": "user", "content": "slow one"}
locker = subprocess.Popen(PSQL, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
locker.stdin.write(b"BEGIN; LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE; SELECT 'locked';\n")
locker.stdin.flush()
locker.stdout.readline()
first = {}
t = threading.Thread(target=lambda: first.setdefault("r", req("POST", P, body=body2, token=tok, key=k2)))
t.start()
deadline = time.time() + 10
while time.time() < deadline and sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "0":
    time.sleep(0.02)
r = req("POST", P, body=body2, token=tok, key=k2)
eq((409, "idempotency_in_flight"), (r[0], err(r).get("code")), "a retry while the first is in flight: 409")
ok(r[2].get("retry-after") == "1", "with Retry-After: 1")
r = req("POST", P, body={"role": "user", "content": "other"}, token=tok, key=k2)
eq(409, r[0], "another body while the first is in flight: 409 too (nothing known yet)")
locker.stdin.write(b"COMMIT;\n")
locker.stdin.close()
t.join(30)
locker.wait(10)
eq(201, first["r"][0], "the first completes: 201")
r = req("POST", P, body=body2, token=tok, key=k2)
eq((201, first["r"][3]), (r[0], r[3]), "the retry after it: the first's answer replayed")
eq("1", sql("SELECT count(*) FROM messages WHERE content = 'slow one'"), "one row")

# concurrent duplicates: 8 at once with one key give one row; every 2xx is the same answer
k3 = "burst"
res = []
ths = [threading.Thread(target=lambda: res.append(req("POST", P, body={"role": "user", "content": "burst"}, token=tok, key=k3)))
       for _ in range(8)]
[x.start() for x in ths]
[x.join(30) for x in ths]
codes = sorted(x[0] for x in res)
ok(set(codes) <= {201, 409} and 201 in codes, "8 concurrent POSTs with one key: only 201 and 409 (%s)" % codes)
eq(1, len({x[3] for x in res if x[0] == 201}), "every 201 carries the same body")
eq("1", sql("SELECT count(*) FROM messages WHERE content = 'burst'"), "one row")

# ---- feedback ----------------------------------------------------------------------------------
mid = ids[0]
F = "/api/v1/messages/%d/feedback" % mid
r = req("POST", F, body={"rating": 1, "comment": NASTY[0] + " " + NASTY[3]}, token=tok)
eq(201, r[0], "feedback: 201")
eq((mid, 1, NASTY[0] + " " + NASTY[3]), (r[1]["message_id"], r[1]["rating"], r[1]["comment"]), "returned verbatim")
eq(NASTY[0] + " " + NASTY[3], sql("SELECT comment FROM feedback WHERE message_id = :'v0'", mid), "stored verbatim")
r = req("POST", F, body={"rating": -1}, token=tok)
eq((200, -1, None), (r[0], r[1]["rating"], r[1]["comment"]), "feedback again: 200, replaced")
eq("1", sql("SELECT count(*) FROM feedback WHERE message_id = :'v0'", mid), "one feedback per message")
r = req("POST", F, body={"rating": 1}, token=tok2)
eq(404, r[0], "feedback with another session's token: 404")
r = req("POST", F, body={"rating": 1})
eq(404, r[0], "feedback without a token: 404")
r = req("POST", "/api/v1/messages/%d/feedback" % (max(ids) + 10000000), body={"rating": 1}, token=tok)
eq(404, r[0], "feedback on a message that does not exist: 404")
for what, body, field in (("rating 0", {"rating": 0}, "rating"), ("rating 2", {"rating": 2}, "rating"),
                          ("rating \"1\"", {"rating": "1"}, "rating"), ("rating 0.5", {"rating": 0.5}, "rating"),
                          ("no rating", {"comment": "x"}, "rating"), ("comment 2001", {"rating": 1, "comment": "x" * 2001}, "comment"),
                          ("comment a number", {"rating": 1, "comment": 1}, "comment"), ("an unknown member", {"rating": 1, "stars": 5}, "stars")):
    r = req("POST", F, body=body, token=tok)
    eq((400, "invalid_body", field), (r[0], err(r).get("code"), err(r).get("field")), "feedback with %s: 400 naming %s" % (what, field))
r = req("POST", F, body=b'{"rating":01}', token=tok)
eq((400, "invalid_body"), (r[0], err(r).get("code")), "feedback with rating 01 (not a JSON number): 400")
r = req("POST", F, body=b'{"rating":1}', token=tok, ctype=None)
eq(415, r[0], "feedback without a content type: 415")
r = req("POST", "/api/v1/messages/abc/feedback", body={"rating": 1}, token=tok)
eq((400, "invalid_id"), (r[0], err(r).get("code")), "feedback on message abc: 400 invalid_id")

# ---- erase -------------------------------------------------------------------------------------
r = req("DELETE", "/api/v1/sessions/%d" % sid, token=tok2)
eq(404, r[0], "DELETE with another session's token: 404")
r = req("DELETE", "/api/v1/sessions/%d" % sid)
eq(404, r[0], "DELETE without a token: 404")
eq("1", sql("SELECT count(*) FROM sessions WHERE id = :'v0'", sid), "the session is still there")
r = req("DELETE", "/api/v1/sessions/%d" % sid, token=tok)
eq((204, b""), (r[0], r[3]), "DELETE with its token: 204, no body")
eq("0|0|0|0", sql("SELECT (SELECT count(*) FROM sessions WHERE id = :'v0') || '|' || "
                  "(SELECT count(*) FROM messages WHERE session_id = :'v0') || '|' || "
                  "(SELECT count(*) FROM idempotency_keys WHERE session_id = :'v0') || '|' || "
                  "(SELECT count(*) FROM feedback WHERE message_id = :'v1')", sid, mid),
   "the session, its messages, its keys and their feedback are gone")
r = msgs(sid, tok)
eq(404, r[0], "its messages afterwards: 404")
r = req("DELETE", "/api/v1/sessions/%d" % sid, token=tok)
eq(404, r[0], "DELETE again: 404")
r = req("POST", P, body={"role": "user", "content": "x"}, token=tok)
eq(404, r[0], "a message to the erased session: 404")
eq(25 + 1, len(msgs(sid2, tok2, "?limit=100")[1]["messages"]), "the other session is untouched")

if os.environ.get("NP_TOKENS_FILE"):
    with open(os.environ["NP_TOKENS_FILE"], "w") as f:
        f.write("\n".join(TOKENS) + "\n")
sys.exit(min(FAILS, 100))
