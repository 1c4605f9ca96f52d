#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_browser_cache.sh - the page in a real browser (Debian's chromium, tests/browser/cache.mjs) while nginx serves the textbook from its cache: with PostgreSQL stopped a chapter read before shows with a calm "saved copy" note (X-Cache-Status: STALE), a chapter never read shows the calm banner and then itself once PostgreSQL is back; no note while the database is up.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx node
[ -x /usr/bin/chromium ] || np_skip "no /usr/bin/chromium (scripts/install-deps.sh installs Debian's chromium)"
"$np_top/tests/browser/install.sh" >"$NP_TMP/out/npm.out" 2>&1
case $? in 0) ;; 77) np_skip "npm is not installed" ;; *) np_fail "tests/browser/install.sh: $(tail -n 3 "$NP_TMP/out/npm.out")" ;; esac

# nginx with the content cache on; copies fresh for 1 s, so that the outage is served STALE soon
export NP_NGINX_CACHE=1
NP_SEED_BOOKS=1
np_db_start workers=2 budget=2 min_warm=1 retry_after_s=1 content_max_age_s=1 content_stale_while_revalidate_s=1 \
	breaker_failures=1 breaker_probe_ms=100

ctl=$NP_TMP/ctl
mkdir -p "$ctl"
control_loop() {
	while :; do
		if [ -f "$ctl/stop-db" ]; then
			rm -f "$ctl/stop-db"
			np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" stop -m fast >"$NP_TMP/out/pgstop.out" 2>&1
			echo $? >"$ctl/stop-db.rc" && mv "$ctl/stop-db.rc" "$ctl/stop-db.done" # whole, or not there
		fi
		if [ -f "$ctl/start-db" ]; then
			rm -f "$ctl/start-db"
			np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -l "$NP_TMP/pg/postgresql.log" -w start >"$NP_TMP/out/pgstart.out" 2>&1
			echo $? >"$ctl/start-db.rc" && mv "$ctl/start-db.rc" "$ctl/start-db.done" # whole, or not there
		fi
		sleep 0.05
	done
}
control_loop &
ctl_pid=$!

np_artifacts
art=$NP_ART
np_now_ms; t0=$NP_NOW
NP_BASE=http://127.0.0.1:$NP_HTTP_PORT NP_CTL_DIR=$ctl NP_ARTIFACTS=$art NP_SCALE=$NP_TIMEOUT_SCALE NP_BOOK=$NP_BOOK_MIN \
	timeout $((120 * NP_TIMEOUT_SCALE)) node "$np_top/tests/browser/cache.mjs" >"$NP_TMP/out/cache.out" 2>&1
rc=$?
np_now_ms
kill "$ctl_pid" 2>/dev/null; wait "$ctl_pid" 2>/dev/null
cat "$NP_TMP/out/cache.out"
np_expect "the browser checks ran to their end (exit $rc, $((NP_NOW - t0)) ms)" test "$rc" = 0
NP_FAILURES=$((NP_FAILURES + $(grep -c '^not ok' "$NP_TMP/out/cache.out")))
np_finish
