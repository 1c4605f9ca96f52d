#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ask_tx_backlog_full.sh - an ask worker's internal transaction meets a main socket (unix) whose backlog is full and whose workers do not accept: the ask answers 503 db_busy by its own deadline (acquire_timeout_ms + query_timeout_ms + query_deadline_margin_ms) instead of hanging in connect(2) with the ask pool's permit, and the next ask, once the main pool accepts again, is answered.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=2 workers=1 budget=1 min_warm=1 listen_backlog=16 acquire_timeout_ms=1000 \
	query_timeout_ms=1000 query_deadline_margin_ms=500
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready

np_session
ask() { # ask N: the status of one JSON ask (curl gives up after 20 s: "000")
	curl -s -m 20 -o "$NP_TMP/out/ask$1.json" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
		--data "{\"question\":\"What is a passage? ($1)\"}" "http://127.0.0.1:$NP_HTTP_PORT/api/v1/sessions/$sid/ask"
}
np_expect_eq "an ask before: 200" 200 "$(ask 0)"

# nobody accepts on the main socket, and its backlog is full
workers=$(np_worker_pids)
kill -STOP $workers
"$NP_PYTHON" - "$NP_TMP/neonpoold.sock" "$NP_TMP/out/filled" <<'PY' &
import os, socket, sys, time
held = []
while len(held) < 10000:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(sys.argv[1])
    except BlockingIOError:
        break
    held.append(s)
open(sys.argv[2], "w").write("%d\n" % len(held))
time.sleep(120)
PY
filler=$!
for i in $(seq 1 100); do [ -s "$NP_TMP/out/filled" ] && break; sleep 0.05; done
np_log "the main socket's backlog holds $(cat "$NP_TMP/out/filled") connections nobody accepts"

np_now_ms; t0=$NP_NOW
st=$(ask 1)
np_now_ms; took=$((NP_NOW - t0))
np_log "ask with the backlog full: $st after $took ms ($(head -c 300 "$NP_TMP/out/ask1.json"))"
np_expect_eq "an ask with the main socket's backlog full answers 503 (not a hang)" 503 "$st"
np_expect_eq "its error is db_busy" db_busy "$(np_json_get "$NP_TMP/out/ask1.json" 'd["error"]["code"]' 2>/dev/null)"
np_expect "the ask worker logged why" grep -q 'backlog stayed full until the deadline' "$NP_DAEMON_LOG"

kill "$filler"
kill -CONT $workers
np_expect_eq "the main pool accepts again: the next ask is answered 200" 200 "$(ask 2)"
np_finish
