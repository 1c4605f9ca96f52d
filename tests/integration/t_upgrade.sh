#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_upgrade.sh - binary upgrades (neonpoolctl upgrade, SIGUSR2) under a paced load behind nginx:
# alternating two builds that report different versions, then three that must roll back (exits
# at start, hangs before ready, crashes after its first request): 0 failed requests, the version
# moves, the pool's server connections never above the budget.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx curl
: "${NP_WRK_DELAY_MS:=100}"; export NP_WRK_DELAY_MS
: "${NP_UPGRADES:=3}"

# two builds: this one, and the same program reporting another version (the version string
# patched in place, same length), both run from the path the master was started from
mkdir -p "$NP_TMP/bin"
cp "$NEONPOOLD" "$NP_TMP/bin/build-a"
ver_a=$("$NEONPOOLD" -v | awk '{print $2}')
ver_b=$(echo "$ver_a" | sed 's/.$/9/'); [ "$ver_b" = "$ver_a" ] && ver_b=$(echo "$ver_a" | sed 's/.$/8/')
"$NP_PYTHON" - "$NEONPOOLD" "$NP_TMP/bin/build-b" "$ver_a" "$ver_b" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
a, b = (b'\0' + v.encode() + b'\0' for v in sys.argv[3:5])
assert data.count(a) >= 1, "version string not found"
open(sys.argv[2], 'wb').write(data.replace(a, b))
PY
chmod 0755 "$NP_TMP/bin/build-b"
[ "$("$NP_TMP/bin/build-b" -v | awk '{print $2}')" = "$ver_b" ] || np_fail "build-b does not report $ver_b"
for f in exit hang crash; do
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
np_db_start workers=6 budget=$budget min_warm=2 upgrade_timeout_ms=$((8000 * NP_TIMEOUT_SCALE)) \
	graceful_timeout_ms=$((5000 * NP_TIMEOUT_SCALE)) acquire_timeout_ms=$((5000 * NP_TIMEOUT_SCALE))
group_pid=$NP_DAEMON_PID
conf=$NP_DAEMON_CONF

version_now() { np_curl /api/v1/version >/dev/null 2>&1; np_json_get "$NP_TMP/http.body" 'd["version"]'; }

np_sampler_start
duration=$(( (NP_UPGRADES * 4 + 14) * NP_TIMEOUT_SCALE ))
wrk -t2 -c50 -d"${duration}s" -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
sleep 1

# ---- upgrades that take over -------------------------------------------------------------
want=$ver_a
for i in $(seq 1 "$NP_UPGRADES"); do
	if [ $((i % 2)) = 1 ]; then install_build build-b; want=$ver_b; else install_build build-a; want=$ver_a; fi
	before=$(cat "$NP_TMP/neonpoold.pid")
	np_now_ms; t0=$NP_NOW
	if "$NEONPOOLCTL" -c "$conf" upgrade >"$NP_TMP/out/upgrade.$i" 2>&1; then
		np_ok "upgrade $i: $(cat "$NP_TMP/out/upgrade.$i")"
	else
		np_not_ok "upgrade $i: $(cat "$NP_TMP/out/upgrade.$i")"
	fi
	deadline=$((t0 + $(np_scaled 20) * 1000)); got=""
	while :; do
		got=$(version_now); np_now_ms
		[ "$got" = "$want" ] && break
		[ "$NP_NOW" -ge "$deadline" ] && break
		sleep 0.05
	done
	np_expect_eq "upgrade $i: /api/v1/version" "$want" "$got"
	np_measure "upgrade_${i}_version_moved_ms" $((NP_NOW - t0)) ms
	after=$(cat "$NP_TMP/neonpoold.pid" 2>/dev/null)
	np_expect "upgrade $i: the pid file names the new master ($before -> $after)" test "$after" != "$before"
	np_expect "upgrade $i: the old master exits" np_wait_gone "$before" $(np_scaled 20000)
	np_expect "upgrade $i: no $NP_TMP/neonpoold.pid.oldbin left" test ! -e "$NP_TMP/neonpoold.pid.oldbin"
done

# ---- upgrades that roll back ---------------------------------------------------------------
for f in exit hang crash; do
	install_build "fault-$f"
	before=$(cat "$NP_TMP/neonpoold.pid")
	if "$NEONPOOLCTL" -c "$conf" upgrade >"$NP_TMP/out/upgrade.$f" 2>&1; then
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

wait "$wrk_pid"; wrk_rc=$?
max=$(np_sampler_stop)
cat "$NP_TMP/out/wrk.out"
np_expect_eq "wrk exit status" 0 "$wrk_rc"
np_expect "no 'Non-2xx or 3xx responses' line" bash -c "! grep -q 'Non-2xx or 3xx responses' '$NP_TMP/out/wrk.out'"
np_expect "no 'Socket errors' line" bash -c "! grep -q 'Socket errors' '$NP_TMP/out/wrk.out'"
np_expect "server connections sampled every 50 ms: max $max <= budget $budget" test "${max% *}" -le "$budget"
np_measure upgrade_max_server_connections "${max% *}" conns
np_expect "nginx logged no upstream error" bash -c "! grep -E '\[(error|crit|alert|emerg)\]' '$NP_TMP/nginx/error.log'"

# stop the last master gracefully (the teardown kills the process group)
NP_D_PID[neonpoold]=$(cat "$NP_TMP/neonpoold.pid"); np_use_daemon neonpoold
np_stop_daemon QUIT >/dev/null
NP_D_PID[neonpoold]=$group_pid
np_finish
