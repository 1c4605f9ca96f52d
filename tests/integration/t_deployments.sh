#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_deployments.sh - nginx (unix socket and TCP), lighttpd and spawn-fcgi deployments each answer 50 concurrent requests, all 200.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
np_require curl nginx lighttpd spawn-fcgi cgi-fcgi

N=${NP_PAR_REQUESTS:-200}    # requests per deployment, 50 in flight at a time
np_start_pg

# run_parallel LABEL PORT: N x GET /healthz with 50 in flight, plus the routes once.
run_parallel() {
	local label=$1 port=$2 i
	local -a urls=()
	for ((i = 0; i < N; i++)); do urls+=("http://127.0.0.1:$port/healthz?i=$i"); done
	np_now_ms; local t0=$NP_NOW
	np_parallel 50 "${urls[@]}"
	np_now_ms
	np_expect_eq "$label: $N requests, 50 concurrent: all 200 ($((NP_NOW - t0)) ms)" "$N 0" "$NP_PAR_OK $NP_PAR_BAD"
	NP_HTTP_PORT=$port
	np_curl /api/v1/version
	np_expect_eq "$label: GET /api/v1/version" 200 "$NP_STATUS"
	np_curl /no/such/thing
	np_expect_eq "$label: GET /no/such/thing" 404 "$NP_STATUS"
	np_expect_eq "$label: 404 body is the daemon's JSON" not_found "$(np_json_get "$NP_TMP/http.body" 'd["error"]["code"]')"
}

# 1. nginx -> unix socket; lighttpd -> the same unix socket
np_start_daemon --name unixd workers=4
np_expect "unix socket $NP_TMP/unixd.sock exists" test -S "$NP_TMP/unixd.sock"
np_start_nginx "unix:$NP_TMP/unixd.sock" "" nginx-unix
run_parallel "nginx -> unix socket" "$NP_HTTP_PORT"
np_start_lighttpd "$NP_TMP/unixd.sock" "" lighttpd-unix
run_parallel "lighttpd -> unix socket" "$NP_HTTP_PORT"

# 2. nginx -> TCP; lighttpd -> the same TCP port
tcp_port=$(np_free_port) || np_fail "no free port"
np_start_daemon --name tcpd workers=4 listen="127.0.0.1:$tcp_port"
np_start_nginx "127.0.0.1:$tcp_port" "" nginx-tcp
run_parallel "nginx -> TCP" "$NP_HTTP_PORT"
np_start_lighttpd "127.0.0.1:$tcp_port" "" lighttpd-tcp
run_parallel "lighttpd -> TCP" "$NP_HTTP_PORT"

# 3. spawn-fcgi -n (listen = "stdin") on TCP, nginx in front
np_start_spawnfcgi --name spawnd workers=4
np_expect_eq "spawn-fcgi -n execs neonpoold: the pid it started is the master" neonpoold \
	"$(ps -o comm= -p "$NP_DAEMON_PID")"
np_expect_eq "spawn-fcgi: 4 workers" 4 "$(np_child_pids "$NP_DAEMON_PID" np-worker | wc -w)"
np_start_nginx "$NP_DAEMON_ADDR" "" nginx-spawnfcgi
run_parallel "nginx -> spawn-fcgi (stdin)" "$NP_HTTP_PORT"

np_expect "no error or warning in any daemon log" \
	bash -c "! grep -E 'level=(error|warn)' '$NP_TMP/unixd.log' '$NP_TMP/tcpd.log' '$NP_TMP/spawnd.log'"
np_finish
