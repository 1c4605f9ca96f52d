#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_log_reopen_as_user.sh - started as root with `user`: after the log is moved and SIGUSR1, the master recreates the file for the run user, so the workers' lines reach the new file (they cannot create or open a root 0640 file).
. "$(dirname "$0")/lib.sh"
np_require cgi-fcgi
np_is_root || np_skip "needs root (workers run as another user)"
getent passwd postgres >/dev/null || np_skip "no unprivileged user 'postgres'"
runuser -u postgres -- test -x "$NP_TMP" || np_skip "user postgres cannot reach $NP_TMP"

logs=$NP_TMP/logs
mkdir -p "$logs" # root's 0755: the run user cannot create a file here, only the master can
log=$logs/neonpoold.log
np_start_daemon workers=2 user=postgres log_file="$log" log_level=debug
np_expect_eq "the log file belongs to the run user" "postgres" "$(stat -c %U "$log")"
np_fcgi GET /healthz - REQUEST_ID=before-rotate >/dev/null
sleep 0.2
np_expect "a worker logged before the rotation" grep -q 'role=worker.*before-rotate' "$log"

wait_reopened() {
	local i
	for i in $(seq 1 40); do
		grep -q 'role=master.*reopen' "$1" 2>/dev/null && { sleep 0.2; return 0; }
		sleep 0.05
	done
	return 1
}
for round in 1 2; do
	mv "$log" "$log.$round"
	kill -USR1 "$NP_DAEMON_PID"
	np_expect "round $round: the master reopened into a new file" wait_reopened "$log"
	np_expect_eq "round $round: the new file belongs to the run user" "postgres" "$(stat -c %U "$log")"
	ok=0
	for i in $(seq 1 20); do
		np_fcgi GET /healthz - REQUEST_ID="after-$round-$i" >/dev/null
		[ "$NP_STATUS" = 200 ] && ok=$((ok + 1))
	done
	sleep 0.3
	np_expect_eq "round $round: 20 requests answered" 20 "$ok"
	n_new=$(grep -c "role=worker.*after-$round-" "$log" 2>/dev/null)
	n_old=$(grep -c "role=worker.*after-$round-" "$log.$round" 2>/dev/null)
	np_expect_eq "round $round: worker lines after SIGUSR1: 20 in the new file, 0 in the old one" "20 0" "${n_new:-0} ${n_old:-0}"
done
echo "RESULT log rotation with user = postgres: the master recreates the file owned by postgres, the workers' lines reach it (2 rounds)"
np_finish
