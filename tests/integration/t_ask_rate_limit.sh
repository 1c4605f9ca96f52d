#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_rate_limit.sh - limits on what a client may spend (issue 20): with ask_rate_per_session =
# "5/min", 20 asks sent at once from one session get 5 answers and 15 × 429 rate_limited with
# Retry-After (the counters live in shared memory: 4 workers took the asks); another session
# is not limited by the first one's asks; then the shipped nginx config with its limit_req
# (NP_NGINX_LIMIT=1, a second nginx) answers a burst of asks and one of writes from one address
# with its own JSON 429 (rate_limited, Retry-After), through the same error_page mechanism as its
# 502/504.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=4 budget=2 min_warm=1 ask_rate_per_session=5/min \
	acquire_timeout_ms=$((10000 * NP_TIMEOUT_SCALE))
plain_port=$NP_HTTP_PORT

# asks N SESSION TOKEN PORT: N asks sent at once (threads behind a barrier); prints
# "answered limited with_retry_after other seconds_to_send max_retry_after"
asks() {
	"$NP_PYTHON" - "$@" <<'PY'
import http.client, json, sys, threading, time
n, sid, tok, port = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
bar = threading.Barrier(n)
res, sent = [], []
def one(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"question": "What does chapter %d say?" % i}).encode()
    bar.wait()
    sent.append(time.monotonic())
    c.request("POST", "/api/v1/sessions/%s/ask" % sid, body=body,
              headers={"Content-Type": "application/json", "Authorization": "Bearer " + tok,
                       "Accept": "application/json"})
    r = c.getresponse()
    raw = r.read()
    try:
        code = json.loads(raw).get("error", {}).get("code", "")
    except ValueError:
        code = "?"
    res.append((r.status, code, r.getheader("Retry-After")))
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
ok = sum(1 for s, c, ra in res if s == 200)
lim = sum(1 for s, c, ra in res if s == 429 and c == "rate_limited")
lim_ra = sum(1 for s, c, ra in res if s == 429 and c == "rate_limited" and ra and ra.isdigit() and 1 <= int(ra) <= 60)
other = [(s, c) for s, c, ra in res if s not in (200, 429)]
mra = max([int(ra) for s, c, ra in res if s == 429 and ra and ra.isdigit()] or [0])
print(ok, lim, lim_ra, len(other), "%.3f" % (max(sent) - min(sent)), mra, json.dumps(other[:3]).replace(" ", ""))
PY
}
# the daemon's windows are CLOCK_MONOTONIC seconds / 60, the clock of Python's time.monotonic():
# start well inside one, so that 20 asks cannot straddle two
"$NP_PYTHON" -c 'import time
r = time.monotonic() % 60
if r > 48: time.sleep(60 - r + 0.5)'
np_session
read -r ok lim lim_ra other spread mra detail < <(asks 20 "$sid" "$tok" "$plain_port")
np_log "20 asks: $ok answered, $lim limited ($lim_ra with Retry-After), $other other $detail, sent within $spread s"
np_expect_eq "20 asks at once, 5/min: 5 answered" 5 "$ok"
np_expect_eq "... 15 answered 429 rate_limited" 15 "$lim"
np_expect_eq "... each with Retry-After (1..60 s)" 15 "$lim_ra"
np_expect "... sent within a second ($spread s)" "$NP_PYTHON" -c "import sys; sys.exit(0 if $spread < 1 else 1)"
sid1=$sid
np_session
read -r ok2 lim2 _ _ _ _ _ < <(asks 3 "$sid" "$tok" "$plain_port")
np_expect_eq "another session meanwhile: 3 of 3 answered" "3 0" "$ok2 $lim2"
np_expect_eq "the limited asks stored nothing: 5 questions in the first session" 5 \
	"$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT count(*) FROM messages WHERE session_id = $sid1 AND role = 'user'")"

# ---- nginx's limit_req: the shipped config with its limits, a burst from one address -----------
NP_NGINX_LIMIT=1 np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginxlim "unix:$NP_TMP/control.sock"
lim_port=$NP_HTTP_PORT
np_expect "the limited nginx holds the shipped limit_req lines" grep -q '^ *limit_req zone=neonpool_ask' \
	"$NP_TMP/nginxlim/neonpool.conf"
np_expect "the test nginx does not" bash -c "! grep -q '^ *limit_req zone=' '$NP_TMP/nginx/neonpool.conf'"
: >"$NP_TMP/out/burst.txt"
# a session id each (no token: the daemon answers 404/401 to those nginx lets through, and
# its own per-session limit never applies)
for i in $(seq 1 12); do
	curl -sS -o "$NP_TMP/out/burst.$i.body" -D "$NP_TMP/out/burst.$i.h" -w "%{http_code} $i\n" --max-time 10 \
		-X POST -H 'Content-Type: application/json' -d '{"question":"q"}' \
		"http://127.0.0.1:$lim_port/api/v1/sessions/$((1000 + i))/ask" >>"$NP_TMP/out/burst.txt" 2>/dev/null
done
n429=$(grep -c '^429 ' "$NP_TMP/out/burst.txt")
# 10 a minute, a burst of 5 beyond the first: at most 6 pass in the first seconds
np_expect "a burst of 12 asks from one address: nginx refused at least 5 ($n429)" test "$n429" -ge 5
i=$(awk '$1 == 429 { print $2; exit }' "$NP_TMP/out/burst.txt")
if [ -n "$i" ]; then
	np_expect_eq "nginx's 429 is the JSON envelope rate_limited" rate_limited \
		"$(np_json_get "$NP_TMP/out/burst.$i.body" 'd["error"]["code"]')"
	np_expect_eq "... application/json, no-store, Retry-After" "application/json|no-store|6" \
		"$(np__header "$NP_TMP/out/burst.$i.h" Content-Type)|$(np__header "$NP_TMP/out/burst.$i.h" Cache-Control)|$(np__header "$NP_TMP/out/burst.$i.h" Retry-After)"
	np_expect "... with the request id" test -n "$(np__header "$NP_TMP/out/burst.$i.h" X-Request-Id)"
fi
# writes: 5 a second, bursts of 20: 40 POSTs sent at once (curl --parallel)
urls=()
for i in $(seq 1 40); do urls+=(-o /dev/null "http://127.0.0.1:$lim_port/api/v1/sessions/1/messages"); done
curl -sS --parallel --parallel-max 40 -X POST -H 'Content-Type: application/json' -d '{"content":"x"}' \
	-w '%{http_code}\n' --max-time 20 "${urls[@]}" >"$NP_TMP/out/writes.txt" 2>/dev/null
w429=$(grep -c '^429$' "$NP_TMP/out/writes.txt")
np_expect "40 writes at once from one address: nginx refused some ($w429)" test "$w429" -ge 1
# reads are not counted: GETs through the same location as the writes (location /)
np_expect "reads are not limited: 30 GETs of /api/v1/version at once all 200" bash -c '
	u=(); for i in $(seq 1 30); do u+=(-o /dev/null "http://127.0.0.1:'"$lim_port"'/api/v1/version"); done
	curl -sS --parallel --parallel-max 30 -w "%{http_code}\n" --max-time 20 "${u[@]}" | grep -vc "^200$" | grep -qx 0'
echo "RESULT ask limits: ask_rate_per_session 5/min, 20 asks sent within $spread s: $ok answered, $lim × 429 rate_limited ($lim_ra with Retry-After, up to $mra s); nginx limit_req: $n429 of 12 asks and $w429 of 40 writes from one address answered JSON 429"
np_finish
