#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_upgrade.sh - binary upgrades (neonpoolctl upgrade, SIGUSR2) under a paced load behind nginx:
# alternating two builds that report different versions, then three that must roll back (exits
# at start, hangs before ready, crashes after its first request): 0 failed requests, the version
# moves, the pool's server connections never above the budget.
# The long form (bench/upgrade.sh: NP_UPGRADES=10 NP_UPGRADE_CONNS=200 NP_UPGRADE_LONG=1) adds 20
# writes a second with Idempotency-Keys (each acknowledged one stored exactly once) and 20 streamed
# asks at a time on a model stand-in taking 5 s an answer (each ends with `done`).
# np: long (waits more than it computes: started early, so that it does not end the run)
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx curl
: "${NP_WRK_DELAY_MS:=100}"; export NP_WRK_DELAY_MS
: "${NP_UPGRADES:=3}" "${NP_UPGRADE_CONNS:=50}" "${NP_UPGRADE_LONG:=0}"

# two builds: this one, and the same program reporting another version (the version string
# patched in place, same length), both run from the path the master was started from
mkdir -p "$NP_TMP/bin"
cp "$NEONPOOLD" "$NP_TMP/bin/build-a"
ver_a=$("$NEONPOOLD" -v | awk '{print $2}')
ver_b=$(np_other_version "$ver_a")
np_patch_version "$NEONPOOLD" "$NP_TMP/bin/build-b" "$ver_a" "$ver_b"
[ "$("$NP_TMP/bin/build-b" -v | awk '{print $2}')" = "$ver_b" ] || np_fail "build-b does not report $ver_b"
for f in exit hang crash layout+crash layout+hang; do
	printf '#!/bin/sh\nNEONPOOL_UPGRADE_FAULT=%s exec %s "$@"\n' "$f" "$NP_TMP/bin/build-a" >"$NP_TMP/bin/fault-$f"
	chmod 0755 "$NP_TMP/bin/fault-$f"
done
cp "$NP_TMP/bin/build-a" "$NP_TMP/bin/neonpoold"
NEONPOOLD=$NP_TMP/bin/neonpoold

# install BUILD: what dpkg does, a new file renamed over the program's path
install_build() {
	cp "$NP_TMP/bin/$1" "$NP_TMP/bin/.next" && mv -f "$NP_TMP/bin/.next" "$NP_TMP/bin/neonpoold"
}

budget=4
long=()
if [ "$NP_UPGRADE_LONG" = 1 ]; then
	"$NP_PYTHON" "$np_top/tests/tools/llm_mock.py" "$NP_TMP/mock.port" >"$NP_TMP/out/mock.out" 2>&1 &
	NP_FRONT_PIDS+=("$!")
	for _ in $(seq 50); do [ -s "$NP_TMP/mock.port" ] && break; sleep 0.1; done
	mport=$(cat "$NP_TMP/mock.port") || np_fail "the model stand-in did not start"
	curl -s -X POST "http://127.0.0.1:$mport/_control" -d '{"tokens": 25, "tokens_per_s": 5}' >/dev/null
	budget=8
	long=(ask_listen="$NP_TMP/ask.sock" ask_workers=24 max_waiters=64 llm_url="http://127.0.0.1:$mport/v1/chat/completions"
		llm_gap_timeout_ms=10000)
fi
np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" log_level=info \
	workers=6 budget=$budget min_warm=2 upgrade_timeout_ms=$((5000 * NP_TIMEOUT_SCALE)) \
	graceful_timeout_ms=$((15000 * NP_TIMEOUT_SCALE)) acquire_timeout_ms=$((5000 * NP_TIMEOUT_SCALE)) "${long[@]}"
if [ "$NP_UPGRADE_LONG" = 1 ]; then
	np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
else
	np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
fi
np_wrk_script
np_wait_db_ready
group_pid=$NP_DAEMON_PID
conf=$NP_DAEMON_CONF

# np_wait_log TEXT: the daemon's log holds TEXT within 10 s (scaled).
np_wait_log() {
	local i
	for i in $(seq 1 $((100 * NP_TIMEOUT_SCALE))); do grep -qF "$1" "$NP_TMP/neonpoold.log" && return 0; sleep 0.1; done
	return 1
}
# np_wait_log_count TEXT N: the daemon's log holds N lines with TEXT within 10 s (scaled), not more.
np_wait_log_count() {
	local i c
	for i in $(seq 1 $((100 * NP_TIMEOUT_SCALE))); do
		c=$(grep -cF "$1" "$NP_TMP/neonpoold.log")
		[ "$c" -ge "$2" ] && break
		sleep 0.1
	done
	[ "$c" -eq "$2" ]
}
version_now() { np_curl /api/v1/version >/dev/null 2>&1; np_json_get "$NP_TMP/http.body" 'd["version"]'; }
# upgrade_to NAME: neonpoolctl upgrade (its output in out/upgrade.NAME, an ok/not ok line), then
# /api/v1/version polled until it says $want (20 s, scaled); the measure NAME_version_moved_ms;
# sets before (the old master) for the checks after it.
upgrade_to() {
	local t0 deadline got
	before=$(cat "$NP_TMP/neonpoold.pid")
	np_now_ms; t0=$NP_NOW
	if "$NEONPOOLCTL" -c "$conf" upgrade >"$NP_TMP/out/upgrade.$1" 2>&1; then
		np_ok "upgrade $1: $(cat "$NP_TMP/out/upgrade.$1")"
	else
		np_not_ok "upgrade $1: $(cat "$NP_TMP/out/upgrade.$1")"
	fi
	deadline=$((t0 + $(np_scaled 20) * 1000)); got=""
	while :; do
		got=$(version_now); np_now_ms
		[ "$got" = "$want" ] && break
		[ "$NP_NOW" -ge "$deadline" ] && break
		sleep 0.05
	done
	np_expect_eq "upgrade $1: /api/v1/version" "$want" "$got"
	np_measure "upgrade_$1_version_moved_ms" $((NP_NOW - t0)) ms
}

np_sampler_start
# each upgrade waits for the old master to exit: long-form streams (5 s) keep it a while
per=2; [ "$NP_UPGRADE_LONG" = 1 ] && per=9
duration=$(( (NP_UPGRADES * per + 16) * NP_TIMEOUT_SCALE ))
if [ "$NP_UPGRADE_LONG" = 1 ]; then
	np_session; wsid=$sid wtok=$tok
	pairs=()
	for _ in $(seq 20); do np_session; pairs+=("$sid:$tok"); done
	"$NP_PYTHON" "$np_top/tests/integration/upgrade_load.py" "$NP_HTTP_PORT" "$duration" "$wsid" "$wtok" \
		"$NP_TMP/out/load" 20 "${pairs[@]}" >"$NP_TMP/out/load.log" 2>&1 &
	load_pid=$!
fi
wrk -t2 -c"$NP_UPGRADE_CONNS" -d"${duration}s" -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
sleep 1

# ---- upgrades that take over -------------------------------------------------------------
want=$ver_a
for i in $(seq 1 "$NP_UPGRADES"); do
	if [ $((i % 2)) = 1 ]; then install_build build-b; want=$ver_b; else install_build build-a; want=$ver_a; fi
	[ "$NP_UPGRADE_LONG" = 1 ] && sleep 1 # streams in flight on the old generation
	upgrade_to "$i"
	after=$(cat "$NP_TMP/neonpoold.pid" 2>/dev/null)
	np_expect "upgrade $i: the pid file names the new master ($before -> $after)" test "$after" != "$before"
	np_expect "upgrade $i: the old master exits" np_wait_gone "$before" $(np_scaled 20000)
	np_expect "upgrade $i: no $NP_TMP/neonpoold.pid.oldbin left" test ! -e "$NP_TMP/neonpoold.pid.oldbin"
done

# ---- upgrades that roll back ---------------------------------------------------------------
# (layout+crash: a new master with a region of its own crashes once it served: the tokens given
# to it come back when its last process is gone; layout+hang: status shows both regions)
for f in exit hang crash layout+crash layout+hang; do
	install_build "fault-$f"
	before=$(cat "$NP_TMP/neonpoold.pid")
	"$NEONPOOLCTL" -c "$conf" upgrade >"$NP_TMP/out/upgrade.$f" 2>&1 &
	ctl=$!
	if [ "$f" = hang ]; then
		# while it is pending: status shows both generations; a second USR2 and a HUP are refused
		deadline=$(( $(np_now_ms; echo "$NP_NOW") + $(np_scaled 10) * 1000 ))
		while :; do
			"$NEONPOOLCTL" -c "$conf" status >"$NP_TMP/out/status.pending" 2>&1
			[ "$(grep -c '^generation [0-9]*: ' "$NP_TMP/out/status.pending")" -ge 2 ] && break
			np_now_ms; [ "$NP_NOW" -ge "$deadline" ] && break
			sleep 0.1
		done
		np_expect "pending upgrade: status says so" grep -q '^UPGRADE under way: new master pid' "$NP_TMP/out/status.pending"
		np_expect "pending upgrade: status shows two generations" \
			test "$(grep -c '^generation [0-9]*: ' "$NP_TMP/out/status.pending")" -ge 2
		grep -E '^(UPGRADE|generation)' "$NP_TMP/out/status.pending"
		kill -USR2 "$before"; kill -HUP "$before"
		np_expect "pending upgrade: a second USR2 is refused" np_wait_log 'upgrade refused (SIGUSR2): a binary upgrade is under way'
		np_expect "pending upgrade: HUP is refused" np_wait_log 'reload rejected, the running configuration stays: a binary upgrade is under way'
		"$NEONPOOLCTL" -c "$conf" upgrade >"$NP_TMP/out/upgrade.second" 2>&1
		second=$?
		np_expect_eq "pending upgrade: neonpoolctl upgrade refuses a second one ($(cat "$NP_TMP/out/upgrade.second"))" 1 "$second"
	fi
	if [ "$f" = layout+hang ]; then
		deadline=$(( $(np_now_ms; echo "$NP_NOW") + $(np_scaled 6) * 1000 ))
		while :; do
			"$NEONPOOLCTL" -c "$conf" status >"$NP_TMP/out/status.layout-pending" 2>&1
			grep -q 'budget tokens held (in its region of its own)' "$NP_TMP/out/status.layout-pending" && break
			np_now_ms; [ "$NP_NOW" -ge "$deadline" ] && break
			sleep 0.1
		done
		grep -E '^(UPGRADE|the new master|generation)' "$NP_TMP/out/status.layout-pending"
		np_expect "pending layout upgrade: status names the tokens given to the new region" \
			grep -q '^the new master has a region of its own (another shared-memory layout): [1-9][0-9]* budget tokens given' \
			"$NP_TMP/out/status.layout-pending"
		np_expect "pending layout upgrade: status shows the new generation in its own region" \
			grep -q '^generation [0-9]*: .* budget tokens held (in its region of its own)$' "$NP_TMP/out/status.layout-pending"
	fi
	if [ "$f" = crash ] || [ "$f" = layout+crash ]; then
		# requests of its own, so that the new generation serves one (and crashes) whatever the load does
		own=0 own_bad=0
		while kill -0 "$ctl" 2>/dev/null; do
			np_curl "/api/v1/books/$NP_BOOK_MIN"
			own=$((own + 1)); [ "$NP_STATUS" = 200 ] || own_bad=$((own_bad + 1))
			sleep 0.05
		done
		np_expect_eq "rollback (crash): of $own requests of the test's own, answered other than 200" 0 "$own_bad"
	fi
	if wait "$ctl"; then
		np_not_ok "rollback ($f): the upgrade was not rolled back: $(cat "$NP_TMP/out/upgrade.$f")"
	else
		np_ok "rollback ($f): $(cat "$NP_TMP/out/upgrade.$f")"
	fi
	np_expect "rollback ($f): the master is still pid $before" test "$(cat "$NP_TMP/neonpoold.pid")" = "$before"
	np_expect "rollback ($f): it serves" np_alive "$before"
	np_expect_eq "rollback ($f): /api/v1/version" "$want" "$(version_now)"
done
np_expect "the log says why: exited" grep -q 'upgrade rolled back: the new master exited with status' "$NP_TMP/neonpoold.log"
np_expect "the log says why: not ready" grep -q 'upgrade rolled back: the new master was not ready within upgrade_timeout_ms' "$NP_TMP/neonpoold.log"
np_expect "the log says why: crashed" grep -q 'upgrade rolled back: the new master was killed by signal 6' "$NP_TMP/neonpoold.log"
np_expect "layout+crash, layout+hang: the given tokens came back once each generation was gone" \
	np_wait_log_count 'upgrade: the rolled-back generation is gone:' 2
np_expect "layout+crash: its region is removed" test ! -e "$NP_TMP/status.next"

# ---- an upgrade to a build whose shared-memory layout differs ------------------------------------
# NEONPOOL_UPGRADE_FAULT=layout makes the new master take the path of another layout with this
# one: a region of its own (status_file.next, renamed when ready), its budget the tokens the old
# generation frees and gives one by one. Last: the new master runs the wrapper's program from here.
# NP_UPGRADE_LAYOUT_BUILD (bench/upgrade.sh): a build of another layout for real instead.
if [ "$want" = "$ver_a" ]; then lb=build-b; want=$ver_b; else lb=build-a; want=$ver_a; fi
if [ -n "${NP_UPGRADE_LAYOUT_BUILD:-}" ]; then
	np_patch_version "$NP_UPGRADE_LAYOUT_BUILD" "$NP_TMP/bin/layout" "$ver_a" "$want"
	np_log "layout upgrade: to a build of another layout ($NP_UPGRADE_LAYOUT_BUILD)"
else
	printf '#!/bin/sh\nNEONPOOL_UPGRADE_FAULT=layout exec %s "$@"\n' "$NP_TMP/bin/$lb" >"$NP_TMP/bin/layout"
fi
chmod 0755 "$NP_TMP/bin/layout"
install_build layout
upgrade_to layout
np_expect "layout upgrade: the old master exits" np_wait_gone "$before" $(np_scaled 20000)
np_expect "layout upgrade: the new master made a region of its own" np_wait_log 'a region of its own at'
np_expect "layout upgrade: the old master gave tokens and said when it gave the last" \
	np_wait_log 'upgrade: this generation is gone: the new master has every token'
np_expect "layout upgrade: the new master took the whole budget then" \
	np_wait_log 'the old generation is gone and gave its last token'
np_expect "layout upgrade: no $NP_TMP/status.next left" test ! -e "$NP_TMP/status.next"
"$NEONPOOLCTL" -c "$conf" status >"$NP_TMP/out/status.layout" 2>&1
if [ -n "${NP_UPGRADE_LAYOUT_BUILD:-}" ]; then
	np_expect "layout upgrade: the new master said the layouts differ" np_wait_log "shared memory is layout 12, this build's is 13"
else
	np_expect "layout upgrade: status reads the new master's region" grep -q "master pid $(cat "$NP_TMP/neonpoold.pid")" "$NP_TMP/out/status.layout"
	# a second one from that master, to another layout again: the grant pipe it was given is not
	# taken for the one it gives (its program is $lb, resolved at its start: a wrapper there)
	mv "$NP_TMP/bin/$lb" "$NP_TMP/bin/$lb.real"
	printf '#!/bin/sh\nNEONPOOL_UPGRADE_FAULT=layout exec %s "$@"\n' "$NP_TMP/bin/$lb.real" >"$NP_TMP/bin/$lb"
	chmod 0755 "$NP_TMP/bin/$lb"
	upgrade_to layout2
	np_expect "layout upgrade again: the old master exits" np_wait_gone "$before" $(np_scaled 20000)
	np_expect "layout upgrade again: the old generation gave its last tokens (a second time in the log)" \
		np_wait_log_count 'the old generation is gone and gave its last token' 2
	np_curl "/api/v1/books/$NP_BOOK_MIN"
	np_expect_eq "layout upgrade again: a book read (the database through the given tokens)" 200 "$NP_STATUS"
fi

wait "$wrk_pid"; wrk_rc=$?
max=$(np_sampler_stop)
cat "$NP_TMP/out/wrk.out"
np_expect_eq "wrk exit status" 0 "$wrk_rc"
np_expect "no 'Non-2xx or 3xx responses' line" bash -c "! grep -q 'Non-2xx or 3xx responses' '$NP_TMP/out/wrk.out'"
np_expect "no 'Socket errors' line" bash -c "! grep -q 'Socket errors' '$NP_TMP/out/wrk.out'"
np_expect "server connections sampled every 50 ms: max $max <= budget $budget" test "${max% *}" -le "$budget"
np_measure upgrade_max_server_connections "${max% *}" conns
if [ "$NP_UPGRADE_LONG" = 1 ]; then
	wait "$load_pid"
	acked=$(awk '$2 == 201 || $2 == 200' "$NP_TMP/out/load.writes" | wc -l)
	failed=$(awk '$2 != 201 && $2 != 200' "$NP_TMP/out/load.writes" | wc -l)
	np_expect "writes acknowledged: $acked > 0" test "$acked" -gt 0
	np_expect_eq "writes not acknowledged" 0 "$failed"
	stored=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT count(*), count(DISTINCT content) FROM messages WHERE session_id = $wsid AND content LIKE 'w-%'")
	np_expect_eq "every acknowledged write stored exactly once (rows|distinct)" "$acked|$acked" "$stored"
	asks=$(wc -l <"$NP_TMP/out/load.asks")
	asks_bad=$(awk '!($1 == 200 && $2 == "done")' "$NP_TMP/out/load.asks" | wc -l)
	awk '!($1 == 200 && $2 == "done")' "$NP_TMP/out/load.asks" | cut -c1-200 | sort | uniq -c | sort -rn | head -5
	np_expect "streamed asks: $asks > 0" test "$asks" -gt 0
	np_expect_eq "streamed asks not ending with done" 0 "$asks_bad"
	np_measure upgrade_long_writes "$acked" writes
	np_measure upgrade_long_asks "$asks" asks
fi
np_expect "nginx logged no upstream error" bash -c "! grep -E '\[(error|crit|alert|emerg)\]' '$NP_TMP/nginx/error.log'"

# stop the last master gracefully (the teardown kills the process group)
NP_D_PID[neonpoold]=$(cat "$NP_TMP/neonpoold.pid"); np_use_daemon neonpoold
np_stop_daemon QUIT >/dev/null
NP_D_PID[neonpoold]=$group_pid
np_finish
