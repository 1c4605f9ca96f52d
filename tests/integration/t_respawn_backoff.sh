#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_respawn_backoff.sh - a crash loop backs off and never ends the service: the newest worker is killed as soon as it appears, 12 times (each younger than respawn_stable_ms, 10 s here: the looks at /readyz, /status, /metrics and neonpoolctl status after the 12th kill took over the 4 s a 3 s setting left them on a loaded machine): every one is replaced, the delays the master logs grow 100 ms doubling to respawn_backoff_max_ms and each replacement waited at least that long; meanwhile the live worker serves, /readyz stays 200 and names the backoff, /status and /metrics show it, the ask pool is replaced at once (a pool's backoff is its own); the last worker killed too: the master stays and respawns; a replacement that lives respawn_stable_ms ends the backoff.
# np: long (waits more than it computes: started early, so that it does not end the run)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

cap=1000   # respawn_backoff_max_ms: short, so that the delays reach it in a few seconds
np_db_prepare
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" ask_listen="$NP_TMP/ask.sock" \
	ask_workers=2 workers=2 budget=2 min_warm=1 acquire_timeout_ms=$((2000 * NP_TIMEOUT_SCALE)) \
	respawn_backoff_max_ms=$cap respawn_stable_ms=$((10000 * NP_TIMEOUT_SCALE))
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock" "unix:$NP_TMP/ask.sock"
np_wait_db_ready
master=$NP_DAEMON_PID

# wait_new KNOWN TIMEOUT_MS: a np-worker not in KNOWN appears; sets NEW (its pid) or returns 1
wait_new() {
	local t0 p
	np_now_ms; t0=$NP_NOW
	while :; do
		np__child_pids "$NP_DAEMON_PID" np-worker   # no process every 10 ms
		for p in $NP_PIDS; do
			case " $1 " in *" $p "*) ;; *) NEW=$p; return 0 ;; esac
		done
		np_now_ms
		[ $((NP_NOW - t0)) -ge "$2" ] && return 1
		sleep 0.01
	done
}

workers=$(np_worker_pids)
np_expect_eq "2 workers at start" 2 "$(echo "$workers" | wc -w)"
survivor=${workers%% *}
known=$workers
kill -KILL "${workers##* }"
np_now_ms; t_kill=$NP_NOW
kills=1 respawned=0 reads_bad=0
: >"$NP_TMP/out/gaps.txt"
# each newcomer is killed as soon as it is seen (young: respawn_stable_ms is 10 s, room for a slow
# machine); the 12th too, so that the pool is backing off when the loop ends
for i in $(seq 1 12); do
	if ! wait_new "$known" $(( (cap + 5000) * NP_TIMEOUT_SCALE )); then
		np_log "newcomer $i: none within $((cap + 5000)) ms; master alive: $(np_alive "$master" && echo yes || echo no)"
		break
	fi
	kill -KILL "$NEW"
	np_now_ms
	echo "$((NP_NOW - t_kill))" >>"$NP_TMP/out/gaps.txt"
	t_kill=$NP_NOW
	kills=$((kills + 1))
	respawned=$((respawned + 1))
	known="$known $NEW"
	# the survivor serves meanwhile
	np_curl "/api/v1/books/$NP_BOOK_MIN"
	[ "$NP_STATUS" = 200 ] || reads_bad=$((reads_bad + 1))
done
np_expect_eq "12 kills of the newest worker: each replaced" 12 "$respawned"
np_expect "the master is still running" np_alive "$master"
np_expect_eq "reads between the kills: all 200 (the live worker serves)" 0 "$reads_bad"

# --- while the worker pool backs off (the 12th newcomer just killed): look ----------------------
for _ in $(seq 1 40); do
	np_curl /readyz
	[ "$(np_json_get "$NP_TMP/http.body" 'd["respawn_backoff"]["worker"]["alive"]')" = 1 ] && break
	sleep 0.02
done
np_expect_eq "/readyz: 200 while a worker lives" 200 "$NP_STATUS"
cp "$NP_TMP/http.body" "$NP_TMP/out/readyz-backoff.json"
np_expect_eq "/readyz names the worker pool's backoff" "1 2 $cap" \
	"$(np_json_get "$NP_TMP/out/readyz-backoff.json" '"%d %d %d" % (d["respawn_backoff"]["worker"]["alive"], d["respawn_backoff"]["worker"]["configured"], d["respawn_backoff"]["worker"]["backoff_ms"])')"
np_expect_eq "/status: respawn_backoff, worker pool backoff_ms" "True $cap" \
	"$(np_status_json '"%s %d" % (d["respawn_backoff"], d["respawn"]["worker"]["backoff_ms"])')"
np_curl /metrics
np_expect "/metrics: neonpool_respawn_backoff_seconds{pool=\"worker\"} 1.000" \
	grep -qx 'neonpool_respawn_backoff_seconds{pool="worker"} 1.000' "$NP_TMP/http.body"
np_expect "/metrics: the ask pool does not back off" \
	grep -qx 'neonpool_respawn_backoff_seconds{pool="ask"} 0.000' "$NP_TMP/http.body"
"$NEONPOOLCTL" -c "$NP_CTL_CONF" status >"$NP_TMP/out/status.txt" 2>&1
np_expect "neonpoolctl status says RESPAWN BACKOFF for the worker pool" grep -q 'RESPAWN BACKOFF: worker pool [0-9] of 2 alive' "$NP_TMP/out/status.txt"

# the delays the master announced: 100 ms doubling to the cap, never decreasing
grep -o 'respawn backoff: [0-9]* children of the worker pool.*the next starts in [0-9]* ms' "$NP_DAEMON_LOG" |
	sed 's/.*the next starts in \([0-9]*\) ms/\1/' >"$NP_TMP/out/delays.txt"
np_log "delays logged (ms): $(tr '\n' ' ' <"$NP_TMP/out/delays.txt"); gaps seen (ms): $(tr '\n' ' ' <"$NP_TMP/out/gaps.txt")"
np_expect_eq "the delays grow 100, 200, 400, 800, then the cap" "100 200 400 800 $cap" \
	"$(head -n 5 "$NP_TMP/out/delays.txt" | tr '\n' ' ' | sed 's/ $//')"
np_expect "the delays never decrease and stay at the cap ($cap ms)" \
	awk -v cap="$cap" 'NR > 1 && $1 < prev { bad = 1 } { prev = $1 } $1 > cap { bad = 1 } END { exit bad || prev != cap }' \
	"$NP_TMP/out/delays.txt"
# the last replacement waited for the cap (a lower bound the master enforces; slowness only adds)
np_expect "the last replacement came at least $cap ms after its kill ($(tail -n 1 "$NP_TMP/out/gaps.txt") ms)" \
	test "$(tail -n 1 "$NP_TMP/out/gaps.txt")" -ge "$cap"

# an ask worker that lived long dies meanwhile: replaced at once, the worker pool's backoff is not its own
asks=$(np_child_pids "$master" np-ask)
kill -KILL "${asks%% *}"
ok=no
for _ in $(seq 1 100); do
	np__child_pids "$master" np-ask; now=$NP_PIDS
	[ "$(echo "$now" | wc -w)" = 2 ] && [[ " $now " != *" ${asks%% *} "* ]] && { ok=yes; break; }
	sleep 0.02
done
np_expect_eq "an ask worker killed during the worker pool's backoff: replaced (2 ask workers again)" yes "$ok"

# --- the last worker too: the master stays and respawns -------------------------------------
kill -KILL "$survivor"
np_wait_gone "$survivor" 2000
known="$known $survivor"
np_expect "the last worker killed: a new worker within $((cap + 5000)) ms" wait_new "$known" $(( (cap + 5000) * NP_TIMEOUT_SCALE ))
np_expect "the master is still running" np_alive "$master"

# --- a replacement that lives respawn_stable_ms ends the backoff ----------------------------------
ended=no
for _ in $(seq 1 $((200 * NP_TIMEOUT_SCALE))); do
	[ "$(np_status_json '"%d %d" % (d["respawn"]["worker"]["backoff_ms"], d["respawn"]["worker"]["alive"])')" = "0 2" ] &&
		{ ended=yes; break; }
	sleep 0.1
done
np_expect_eq "the backoff ended and the pool is full again (2 workers)" yes "$ended"
np_wait_db_ready
np_expect_eq "/readyz: no backoff named any more" False \
	"$(np_json_get "$NP_TMP/http.body" '"respawn_backoff" in d')"
np_expect "the master logged the end of the backoff" grep -q 'respawn backoff of the worker pool ended' "$NP_DAEMON_LOG"
np_expect "the master never stopped respawning" bash -c "! grep -qE 'respawning stopped|exiting' '$NP_DAEMON_LOG'"
np_expect_eq "deaths counted by pool: worker" "$((kills + 1))" "$(np_status_json 'd["respawn"]["worker"]["deaths_total"]')"
echo "RESULT $kills kills ($((kills - 1)) of them newcomers, killed as they appeared): delays $(tr '\n' ' ' <"$NP_TMP/out/delays.txt")ms; gaps $(tr '\n' ' ' <"$NP_TMP/out/gaps.txt")ms; the master stayed"
np_finish
