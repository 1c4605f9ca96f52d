#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_retry_after_conf.sh - every 503 (db_busy, db_unavailable, /readyz) carries Retry-After = retry_after_s, not a hard-coded 1.
. "$(dirname "$0")/lib.sh"
np_require cgi-fcgi

# Nothing listens on port 1: every connect is refused at once.
NP_DATABASE_URL="host=127.0.0.1 port=1 dbname=neonpool user=neonpool"

# check_503 WHAT CODE URI [NAME=VALUE...]: the answer is 503 CODE with Retry-After: 7.
check_503() {
	local what=$1 code=$2 uri=$3; shift 3
	np_fcgi GET "$uri" - "$@" >/dev/null
	np_expect_eq "$what: 503 $code" "503 $code" "$NP_STATUS $(np_json_get "$NP_TMP/fcgi.body" 'd["error"]["code"]' 2>/dev/null)"
	np_expect_eq "$what: Retry-After is retry_after_s" 7 "$(np_fcgi_header Retry-After)"
}

# db_busy: the breaker stays closed; the front server says the request queued for 10 s.
np_start_daemon --name busy retry_after_s=7 breaker_failures=1000 acquire_timeout_ms=200 \
	workers=2 budget=2 min_warm=0
sleep "$(np_scaled 1)"   # no connection for acquire_timeout_ms: requests are shed, spares take them
check_503 "db_busy (queued too long)" db_busy /api/v1/books/1 NEONPOOL_QUEUE_START=$((${EPOCHREALTIME%.*} - 10)).000
np_stop_daemon TERM || np_fail "daemon did not stop"

# db_unavailable: the breaker opens after 3 refused connects; /readyz says so too.
np_start_daemon --name down retry_after_s=7 workers=2 budget=2 min_warm=1
for _ in $(seq 1 50); do
	np_fcgi GET /api/v1/books/1 >/dev/null
	[ "$(np_json_get "$NP_TMP/fcgi.body" 'd["error"]["code"]' 2>/dev/null)" = db_unavailable ] && break
	sleep 0.1
done
check_503 "db_unavailable" db_unavailable /api/v1/books/1
np_fcgi GET /readyz >/dev/null
np_expect_eq "/readyz while down: 503" 503 "$NP_STATUS"
np_expect_eq "/readyz while down: Retry-After is retry_after_s" 7 "$(np_fcgi_header Retry-After)"
np_finish
