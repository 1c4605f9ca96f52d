#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_ctl_reload_stop.sh - neonpoolctl reload exits 0 on a good reload (the generation advanced) and 1 with the
# reason on a refused one (an invalid value, a key that needs a restart), the old configuration serving on;
# neonpoolctl stop returns once the master and its children have exited.
. "$(dirname "$0")/lib.sh"

conf_args=(status_file="$NP_TMP/status" workers=2)
np_start_daemon "${conf_args[@]}"
pid=$NP_DAEMON_PID
ctl() { "$NEONPOOLCTL" -c "$NP_DAEMON_CONF" "$@" >"$NP_TMP/out/ctl.out" 2>"$NP_TMP/out/ctl.err"; }
generation() { "$NEONPOOLCTL" -c "$NP_DAEMON_CONF" status --json | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }

ctl reload; rc=$?
np_log "good reload: $(cat "$NP_TMP/out/ctl.out" "$NP_TMP/out/ctl.err")"
np_expect_eq "reload of an unchanged file: exit status" 0 "$rc"
np_expect "it printed the new generation" grep -q 'reloaded: generation 1 -> 2' "$NP_TMP/out/ctl.out"
np_expect_eq "generation in the status file" 2 "$(generation)"

np_daemon_conf neonpoold "${conf_args[@]}" workers=100000 >/dev/null
ctl reload; rc=$?
np_log "invalid value: $(cat "$NP_TMP/out/ctl.out" "$NP_TMP/out/ctl.err")"
np_expect_eq "reload of an invalid value: exit status" 1 "$rc"
np_expect "it printed the master's refusal naming the key" \
	grep -q 'reload refused, the running configuration stays (generation 2): .*workers' "$NP_TMP/out/ctl.err"

np_daemon_conf neonpoold "${conf_args[@]}" listen="$NP_TMP/other.sock" >/dev/null
ctl reload; rc=$?
np_log "restart-only key: $(cat "$NP_TMP/out/ctl.out" "$NP_TMP/out/ctl.err")"
np_expect_eq "reload of a changed listen: exit status" 1 "$rc"
np_expect "it printed the reason" grep -q 'reload refused.*need a restart: listen' "$NP_TMP/out/ctl.err"
np_expect_eq "generation after two refusals" 2 "$(generation)"
np_fcgi GET /healthz >/dev/null
np_expect_eq "the old configuration still serves /healthz" 200 "$NP_STATUS"

np_daemon_conf neonpoold "${conf_args[@]}" workers=3 >/dev/null
ctl reload; rc=$?
np_expect_eq "reload of workers 2 -> 3: exit status" 0 "$rc"
np_expect_eq "generation" 3 "$(generation)"

kids=$(np_children "$pid" | awk '{print $1}')
ctl stop; rc=$?
np_log "stop: $(cat "$NP_TMP/out/ctl.out" "$NP_TMP/out/ctl.err")"
np_expect_eq "stop: exit status" 0 "$rc"
gone=1
for p in $pid $kids; do
	[ -r "/proc/$p/stat" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && gone=0
done
np_expect_eq "when stop returned, the master and its $(echo $kids | wc -w) children had exited" 1 "$gone"
np_wait_status "$pid"
np_expect_eq "the master's exit status" 0 "$NP_EXIT_STATUS"
ctl stop; rc=$?
np_expect_eq "stop with no master running: exit status" 1 "$rc"
ctl reload; rc=$?
np_expect_eq "reload with no master running: exit status" 1 "$rc"
for c in reload stop; do
	"$NEONPOOLCTL" "$c" --help >"$NP_TMP/out/help.out" 2>&1
	np_expect_eq "$c --help: exit status" 0 "$?"
done
np_finish
