#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_respawn.sh - kill -9 of a worker and of the supervisor is repaired at once; kill -9 of the master takes its children with it.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
np_require cgi-fcgi

np_start_pg
np_start_daemon workers=3
master=$NP_DAEMON_PID

# np_wait_new COMM OLD_PIDS TIMEOUT_MS: wait until the master has a live child COMM that is
# not in OLD_PIDS and as many COMM children as before; sets NEW_MS (elapsed) or returns 1.
wait_new() {
	local comm=$1 old=$2 timeout=$3 want t0 now p fresh
	local -a w=($old) n
	want=${#w[@]}
	np_now_ms; t0=$NP_NOW
	while :; do
		np__child_pids "$master" "$comm"   # no process per poll
		now=$NP_PIDS
		n=($now)
		fresh=0
		for p in $now; do case " $old " in *" $p "*) ;; *) fresh=1 ;; esac; done
		np_now_ms
		if [ "$fresh" = 1 ] && [ "${#n[@]}" -ge "$want" ]; then
			NEW_MS=$((NP_NOW - t0)); return 0
		fi
		[ $((NP_NOW - t0)) -ge "$timeout" ] && return 1
		sleep 0.05
	done
}

# --- a worker ------------------------------------------------------------------------------
workers=$(np_child_pids "$master" np-worker)
victim=${workers%% *}
np_expect_eq "3 workers at start" 3 "$(echo "$workers" | wc -w)"
kill -KILL "$victim"
if wait_new np-worker "$workers" 1000; then
	np_ok "kill -9 worker $victim: a new np-worker within 1 s ($NEW_MS ms)"
	echo "RESULT respawn_worker_ms=$NEW_MS"
else
	np_not_ok "kill -9 worker $victim: no new np-worker within 1 s"
fi
np_wait_ready
np_expect_eq "healthz after the worker respawn" 200 "$NP_STATUS"
np_expect "the master logged the worker's death" grep -q "child_pid=$victim" "$NP_DAEMON_LOG"

# --- the supervisor ------------------------------------------------------------------------
sup=$(np_child_pids "$master" np-supervisor)
np_expect_eq "one supervisor" 1 "$(echo "$sup" | wc -w)"
kill -KILL "$sup"
if wait_new np-supervisor "$sup" 1000; then
	np_ok "kill -9 supervisor $sup: a new np-supervisor within 1 s ($NEW_MS ms)"
	echo "RESULT respawn_supervisor_ms=$NEW_MS"
else
	np_not_ok "kill -9 supervisor $sup: no new np-supervisor within 1 s"
fi
np_expect_eq "still 3 workers" 3 "$(np_child_pids "$master" np-worker | wc -w)"
np_fcgi GET /healthz >/dev/null
np_expect_eq "healthz after the supervisor respawn" 200 "$NP_STATUS"

# --- two workers at once: both replaced (both had started well: at once) ----------------
workers=$(np_child_pids "$master" np-worker)
read -r w1 w2 _ <<<"$workers"
kill -KILL "$w1" "$w2"
if wait_new np-worker "$workers" 2000 && [ "$(np_child_pids "$master" np-worker | wc -w)" = 3 ]; then
	np_ok "two workers killed at once: 3 workers again ($NEW_MS ms)"
else
	np_not_ok "two workers killed at once: workers now: $(np_child_pids "$master" np-worker)"
fi

# --- the master ----------------------------------------------------------------------------
kids=$(np_children "$master" | awk '{print $1}')
np_log "master $master children: $(echo $kids)"
kill -KILL "$master"
np_now_ms; t0=$NP_NOW
left=""
for p in $kids; do
	np_now_ms
	np_wait_gone "$p" $((2000 - (NP_NOW - t0))) || left="$left $p"
done
np_now_ms; gone_ms=$((NP_NOW - t0))
if [ -z "$left" ]; then
	np_ok "kill -9 master: all $(echo $kids | wc -w) children gone within 2 s ($gone_ms ms)"
	echo "RESULT master_children_gone_ms=$gone_ms"
else
	np_not_ok "kill -9 master: children still alive after 2 s:$left ($(ps -o pid=,comm= -p "${left# }" | tr '\n' ' '))"
fi
np_finish
