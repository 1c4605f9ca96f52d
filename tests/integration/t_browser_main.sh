#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_browser_main.sh - the web page (www/) in a real browser (Debian's chromium driven by playwright-core, tests/browser/e2e.mjs) against the real stack: PostgreSQL with the PostgreSQL manual, neonpoold, nginx serving page and API; search, passages, sessions, ask (stream, citations, Stop, reload), a second reader, the database stopped and back, keyboard only, axe-core, first paint, weight, screenshots.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx node
[ -x /usr/bin/chromium ] || np_skip "no /usr/bin/chromium (scripts/install-deps.sh installs Debian's chromium)"
manual=${NP_MANUAL_DIR:-/usr/share/doc/postgresql-doc-15/html}
[ -f "$manual/index.html" ] || np_skip "no PostgreSQL manual at $manual (Debian package postgresql-doc-15)"
"$np_top/tests/browser/install.sh" >"$NP_TMP/out/npm.out" 2>&1
case $? in 0) ;; 77) np_skip "npm is not installed" ;; *) np_fail "tests/browser/install.sh: $(tail -n 3 "$NP_TMP/out/npm.out")" ;; esac

# The stack as serve.sh runs it: the manual as the only book (imported by neonpoolctl), nginx in
# front with contrib/nginx/neonpool.conf serving www/ and the API; Retry-After 1 s so that the
# page's automatic retry after a database outage is quick.
NP_SEED_BOOKS=1
np_db_prepare
np_psql_super -d neonpool -c "DELETE FROM books WHERE slug LIKE 'sample-book-%'" >/dev/null || np_fail "cleanup failed"
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" workers=4 budget=3 min_warm=1 \
	retry_after_s=1 acquire_timeout_ms=$((500 * NP_TIMEOUT_SCALE)) ${NP_BROWSER_DAEMON_KEYS:-}
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready
np_now_ms; t0=$NP_NOW
"$NEONPOOLCTL" -c "$NP_CTL_CONF" import "$manual" --slug postgresql-15-manual --title "PostgreSQL 15 Documentation" \
	>"$NP_TMP/out/import.out" 2>&1 || np_fail "import failed: $(tail -n 5 "$NP_TMP/out/import.out")"
np_psql_super -d neonpool -c "ANALYZE" >/dev/null
np_now_ms; np_log "manual imported in $((NP_NOW - t0)) ms"
base=http://127.0.0.1:$NP_HTTP_PORT

# ---- the page as nginx serves it: types and caching --------------------------------------
hdr() { curl -s -o /dev/null -D - "$1" | tr -d '\r' | sed -n "s/^$2: //Ip" | head -n 1; }
np_expect_eq "/ is the page (text/html; charset=utf-8)" "text/html; charset=utf-8" "$(hdr "$base/" Content-Type)"
np_expect_eq "/ is revalidated at each load" "no-cache" "$(hdr "$base/" Cache-Control)"
np_expect "/ has a Content-Security-Policy" test -n "$(hdr "$base/" Content-Security-Policy)"
asset=$(grep -o '/assets/v-[0-9a-f]*/app.js' "$np_top/www/index.html" | head -n 1)
np_expect_eq "$asset is a JavaScript module type" "text/javascript; charset=utf-8" "$(hdr "$base$asset" Content-Type)"
np_expect_eq "$asset is cached for a year" "public, max-age=31536000, immutable" "$(hdr "$base$asset" Cache-Control)"
np_expect_eq "${asset%.js}.css is text/css" "text/css; charset=utf-8" "$(hdr "$base${asset%app.js}app.css" Content-Type)"
np_curl /api/v1/no-such-route
np_expect_eq "other paths still reach the daemon (its JSON 404)" 404 "$NP_STATUS"
np_expect "... in the daemon's error envelope" grep -q '"code":"not_found"' "$NP_TMP/http.body"

# ---- control requests of the browser test: stop / start the database -------------------------
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
NP_BASE=$base NP_CTL_DIR=$ctl NP_ARTIFACTS=$art NP_SCALE=$NP_TIMEOUT_SCALE \
	timeout $((240 * NP_TIMEOUT_SCALE)) node "$np_top/tests/browser/e2e.mjs" >"$NP_TMP/out/e2e.out" 2>&1
rc=$?
np_now_ms
kill "$ctl_pid" 2>/dev/null; wait "$ctl_pid" 2>/dev/null
cat "$NP_TMP/out/e2e.out"
np_expect "the browser tests ran to their end (exit $rc, $((NP_NOW - t0)) ms)" test "$rc" = 0
NP_FAILURES=$((NP_FAILURES + $(grep -c '^not ok' "$NP_TMP/out/e2e.out")))
echo "RESULT browser: $(grep -c '^ok' "$NP_TMP/out/e2e.out") passed, $(grep -c '^not ok' "$NP_TMP/out/e2e.out") failed, $(grep -c '^# SKIP' "$NP_TMP/out/e2e.out") skipped in $((NP_NOW - t0)) ms; $(grep '^RESULT' "$NP_TMP/out/e2e.out" | sed 's/^RESULT //' | paste -sd ';'); screenshots in ${art:-none (CI)}"
np_finish
