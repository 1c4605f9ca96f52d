#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_log_reopen.sh - SIGUSR1 after the log file was moved away: master and workers write to a new file at the old path; a second rotation signalled by contrib/logrotate/neonpool's postrotate.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
np_require cgi-fcgi

np_start_pg
log=$NP_TMP/logs/neonpoold.log
mkdir -p "$NP_TMP/logs"
np_start_daemon workers=2 log_file="$log" log_level=debug
np_expect "log_file $log written" test -s "$log"
np_fcgi GET /healthz - REQUEST_ID=before-rotate-1 >/dev/null
np_fcgi GET /healthz - REQUEST_ID=before-rotate-2 >/dev/null
sleep 0.2
np_expect "requests before the rotation are in the log" grep -q 'before-rotate-1' "$log"

mv "$log" "$log.1"
np_fcgi GET /healthz - REQUEST_ID=between-1 >/dev/null      # still written to the moved file
sleep 0.2
np_expect "before SIGUSR1 the daemon still writes to the moved file" grep -q 'between-1' "$log.1"
np_expect "before SIGUSR1 there is no new file" test ! -e "$log"

# wait_reopened FILE: the master wrote its reopen line into FILE (2 s); the workers get the
# signal right after it, so give them a moment as well (reopening is asynchronous, as in nginx).
wait_reopened() {
	local i
	for i in $(seq 1 40); do
		grep -q 'role=master.*reopen' "$1" 2>/dev/null && { sleep 0.1; return 0; }
		sleep 0.05
	done
	return 1
}

kill -USR1 "$NP_DAEMON_PID"
np_expect "the master logged the reopen into the new file" wait_reopened "$log"
# Every worker must have reopened: send enough requests that each worker serves some.
ok=0
for i in $(seq 1 40); do
	np_fcgi GET /healthz - REQUEST_ID="after-rotate-$i" >/dev/null
	[ "$NP_STATUS" = 200 ] && ok=$((ok + 1))
done
sleep 0.3
np_expect_eq "40 requests after SIGUSR1 answered 200" 40 "$ok"
np_expect "a new log file at the old path" test -s "$log"
n_new=$(grep -c 'after-rotate-' "$log" 2>/dev/null)
n_old=$(grep -c 'after-rotate-' "$log.1")
np_expect_eq "request lines after SIGUSR1: 40 in the new file, 0 in the old one" "40 0" "${n_new:-0} $n_old"
workers_logging=$(grep 'after-rotate-' "$log" | sed -n 's/.* pid=\([0-9]*\) .*/\1/p' | sort -u | wc -l)
np_log "workers that logged after the reopen: $workers_logging"

# A second rotation works as well, signalled as contrib/logrotate/neonpool's postrotate does
# without systemd (the pid file's branch; its pid file path replaced by the test daemon's).
mv "$log" "$log.2"
sed -n '/^ *postrotate$/,/^ *endscript$/p' "$np_top/contrib/logrotate/neonpool" | sed -e '1d' -e '$d' \
	-e 's|\[ -d /run/systemd/system \] && systemctl -q is-active neonpoold.service|false|' \
	-e "s|/run/neonpool/neonpoold\.pid|$NP_TMP/neonpoold.pid|g" >"$NP_TMP/postrotate.sh"
np_expect "the logrotate file's postrotate signals through the pid file" grep -q "kill -USR1 \"\$(cat $NP_TMP/neonpoold.pid)\"" \
	"$NP_TMP/postrotate.sh"
sh "$NP_TMP/postrotate.sh"
np_expect "second rotation: the master reopened" wait_reopened "$log"
for i in 1 2 3 4 5 6; do np_fcgi GET /healthz - REQUEST_ID="second-$i" >/dev/null; done
sleep 0.3
np_expect_eq "second rotation: 6 request lines in the new file" 6 "$(grep -c 'second-' "$log" 2>/dev/null)"
# The log files are daemon output too: the teardown greps them for the password.
np_finish
