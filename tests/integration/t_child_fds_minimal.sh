#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_child_fds_minimal.sh - children hold only the descriptors they use: after requests and a worker kill (the master then holds the sibling workers' database sockets), a worker and the supervisor inherit neither the signalfd, nor the keeper's receiving end, nor a sibling's database socket; the master holds one duplicate per live connection.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

np_db_start workers=3 budget=2 min_warm=2
fdinfo() { "$NP_PYTHON" "$(dirname "$0")/fdinfo.py" "$1" "$NP_PG_PORT"; }
# tokens_of PID: budget tokens PID owns (its own database connections)
tokens_of() { np_status_json "sum(1 for t in d['endpoints']['primary']['tokens'] if t['pid'] == $1)"; }
# wait_pool: min_warm connections, every token connected, no orphan
wait_pool() {
	local s
	for _ in $(seq 1 100); do
		s=$(np_status_json '"%d %d %d" % (d["endpoints"]["primary"]["in_use"], d["endpoints"]["primary"]["connected"], d["endpoints"]["primary"]["orphaned"])')
		[ "$s" = "2 2 0" ] && return 0
		sleep 0.05
	done
	np_log "pool not settled: in_use connected orphaned = $s"
	return 1
}

for i in $(seq 1 20); do np_curl "/api/v1/books/$((NP_BOOK_MIN + i))"; done
np_expect_eq "requests answered" 200 "$NP_STATUS"
np_expect "two connections held" wait_pool
holder=$(np_status_json "d['endpoints']['primary']['tokens'][0]['pid']")
kill -KILL "$holder"
np_wait_gone "$holder" $((2000 * NP_TIMEOUT_SCALE)) || np_fail "worker $holder did not die"
for _ in $(seq 1 100); do
	[ "$(np_worker_pids | wc -w)" = 3 ] && break
	sleep 0.05
done
np_expect "the worker was replaced" test "$(np_worker_pids | wc -w)" = 3
np_expect "the pool refilled" wait_pool
for i in $(seq 1 10); do np_curl "/api/v1/books/$((NP_BOOK_MIN + i))"; done
np_expect "the pool is settled" wait_pool
sleep 0.2

log=$(basename "$NP_DAEMON_LOG")
for w in $(np_worker_pids); do
	own=$(tokens_of "$w")
	got=$(fdinfo "$w")
	# stdin (/dev/null), stdout+stderr (the log), the instance lock (the status file), the listen
	# and control sockets, the token wake pipe (both ends), the keeper's sending end, two epoll
	# sets (the worker's wait set, src/proc/worker.c, and its inbox's, src/proc/inbox.c), and its
	# own database connections
	want="signalfd=0 epoll=2 pipe=2 unix_dgram=1 unix_listen=control.sock,neonpoold.sock unix_stream=0 tcp_pg=$own tcp_other=0 files=$log,null,status other=0 total=$((11 + own))"
	np_expect_eq "worker $w holds only what it uses" "$want" "$got"
done
sup=$(np_child_pids "$NP_DAEMON_PID" np-supervisor)
got=$(fdinfo "$sup")
# stdio, the instance lock, the wake pipe's writing end (budget_wake), the keeper's sending end (probes)
want="signalfd=0 epoll=0 pipe=1 unix_dgram=1 unix_listen=- unix_stream=0 tcp_pg=0 tcp_other=0 files=$log,null,status other=0 total=6"
np_expect_eq "supervisor $sup holds only what it uses" "$want" "$got"
got=$(fdinfo "$NP_DAEMON_PID" | sed 's/ pipe=[0-9]*//; s/ files=.*//')
# the signalfd, the keeper's socketpair, listen + control, one duplicate per live connection (pipes
# and files are left out: the master keeps whatever its launcher left open, the harness does)
want="signalfd=1 epoll=0 unix_dgram=2 unix_listen=control.sock,neonpoold.sock unix_stream=0 tcp_pg=2 tcp_other=0"
np_expect_eq "master holds one duplicate per live connection" "$want" "$got"
echo "RESULT descriptors after a worker kill: worker $(fdinfo "$(np_worker_pids | awk '{print $1}')" | sed 's/.*total=/total=/'), supervisor $(fdinfo "$sup" | sed 's/.*total=/total=/'), master $(fdinfo "$NP_DAEMON_PID" | sed 's/.*total=/total=/')"
np_finish
