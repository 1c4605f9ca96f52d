#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_warmup_ready_after_outage.sh - after the database comes back, /readyz says ready only once
# min_warm connections are open again (warm connections before readiness, as at start); sampled
# every ~20 ms: the pool's connected count is read after each /readyz answer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

# ready_deadline_ms well above the time three connects take on a loaded machine (at 1 s, two
# rounds of TLS+SCRAM connects at max_concurrent_connects 2 could outlast it, and the pool said
# ready while degraded with 2 of 3: what the deadline is for, not what this test pins)
np_db_start workers=4 budget=4 min_warm=3 breaker_probe_ms=100 reconnect_backoff_max_ms=2000 \
	ready_deadline_ms=$((10000 * NP_TIMEOUT_SCALE))
connected() { "$NEONPOOLCTL" -c "$NP_CTL_CONF" status --json 2>/dev/null | grep -o '"connected":[0-9]*' | head -n 1 | cut -d: -f2; }
for _ in $(seq 100); do [ "$(connected)" = 3 ] && break; sleep 0.1; done
np_expect_eq "at start: 3 warm connections" 3 "$(connected)"
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" stop -m fast >"$NP_TMP/out/pgstop.out" 2>&1 || np_fail "pg_ctl stop failed"
# something must try the database for the breaker to open: a few reads
for _ in $(seq 1 30); do
	np_curl "/api/v1/books/$NP_BOOK_MIN"
	[ "$(np_status_json 'd["endpoints"]["primary"]["breaker"]')" = open ] && break
	sleep 0.1
done
np_expect_eq "the breaker opened" open "$(np_status_json 'd["endpoints"]["primary"]["breaker"]')"
np_curl /readyz
np_expect_eq "/readyz while down" 503 "$NP_STATUS"
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -l "$NP_TMP/pg/postgresql.log" -w start >"$NP_TMP/out/pgstart.out" 2>&1 ||
	np_fail "pg_ctl start failed"
np_now_ms; t0=$NP_NOW
first="" samples=0
while :; do
	np_curl /readyz
	c=$(connected)
	samples=$((samples + 1))
	if [ "$NP_STATUS" = 200 ]; then first="$c"; break; fi
	np_now_ms
	[ $((NP_NOW - t0)) -gt $(np_scaled 15000) ] && break
	sleep 0.02
done
np_now_ms
np_expect "/readyz ready again within 15 s ($((NP_NOW - t0)) ms, $samples samples)" test -n "$first"
np_expect "when it first said ready, min_warm (3) connections were open (${first:-none})" test "${first:-0}" -ge 3
echo "RESULT ready $((NP_NOW - t0)) ms after the restart with ${first:-?} of min_warm 3 connected"
np_finish
