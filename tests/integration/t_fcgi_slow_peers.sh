#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_fcgi_slow_peers.sh - FastCGI peers that connect and send nothing, or half a record, must not pin a worker or its database token: with budget + 2 silent peers and a truncated record connected, reads through nginx answer 200, none waiting for a peer's cut-off (their p99 is measured for bench/latency), and the peers are cut off after request_read_timeout_ms. Also: params over max_params_bytes are refused (431) and the worker stays up; a stalled body gets 408 at the deadline; kept connections work; listen_allowed_clients closes a peer outside the list at once; a graceful stop does not wait for parked peers.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

raw() { "$NP_PYTHON" "$np_top/tests/integration/fcgi_raw.py" "$@"; }
timeout_ms=$((2000 * NP_TIMEOUT_SCALE))
budget=2

np_db_prepare
port=$(np_free_port) || np_fail "no free port"
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" log_level=info \
	listen="127.0.0.1:$port" workers=8 budget=$budget min_warm=$budget \
	acquire_timeout_ms=$((500 * NP_TIMEOUT_SCALE)) request_read_timeout_ms=$timeout_ms max_params_bytes=65536
np_start_nginx "127.0.0.1:$port" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready
pids_before=$(np_worker_pids | sort | tr '\n' ' ')

# 1. budget + 2 silent peers and one truncated record, held open while nginx reads books.
silent=$((budget + 2))
raw peers 127.0.0.1 "$port" "$silent" 1 "$NP_TMP/peers.ready" "$NP_TMP/out/peers.json" \
	$(((timeout_ms + 4000 * NP_TIMEOUT_SCALE) / 1000)) &
peers_pid=$!
for _ in $(seq 1 100); do [ -e "$NP_TMP/peers.ready" ] && break; sleep 0.05; done
[ -e "$NP_TMP/peers.ready" ] || np_fail "the raw peers did not connect"
sleep 0.2
np_expect_eq "no worker is shown reading a silent peer" 0 \
	"$(np_status_json 'len([w for w in d["workers"] if w["state"] == "reading"])')"
: >"$NP_TMP/out/reads.txt"
for i in $(seq 1 100); do
	id=$((NP_BOOK_MIN + i % (NP_BOOK_MAX - NP_BOOK_MIN + 1)))
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 3 \
		"http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$id" >>"$NP_TMP/out/reads.txt"
done
ok=$(grep -c '^200 ' "$NP_TMP/out/reads.txt")
p99=$(awk '{print $2 * 1000}' "$NP_TMP/out/reads.txt" | sort -n | awk '{ v[NR] = $1 } END { i = int(NR * 0.99 + 0.999); print v[i] }')
max=$(awk '{print $2 * 1000}' "$NP_TMP/out/reads.txt" | sort -n | tail -n 1)
np_expect_eq "100 reads through nginx with $silent silent peers and a truncated record: all 200" 100 "$ok"
np_measure reads_p99_ms "$p99" "book reads with $silent silent peers and a truncated record connected"
# a read pinned behind a silent peer would wait for its cut-off (request_read_timeout_ms)
np_expect "no read waited for a peer's cut-off: slowest $max ms < request_read_timeout_ms $timeout_ms" \
	awk -v m="$max" -v l="$timeout_ms" 'BEGIN { exit !(m < l) }'
wait "$peers_pid"
np_log "peers: $(cat "$NP_TMP/out/peers.json")"
lo=$(awk -v t="$timeout_ms" 'BEGIN { print (t - 100) / 1000 }')
hi=$(awk -v t="$timeout_ms" -v s="$NP_TIMEOUT_SCALE" 'BEGIN { print (t + 1000 * s) / 1000 }')
cut=$(np_json_get "$NP_TMP/out/peers.json" \
	"sum(1 for v in d['silent'] + d['truncated'] if v is not None and $lo <= v <= $hi)")
np_expect_eq "every peer cut off between $lo s and $hi s" $((silent + 1)) "$cut"
np_expect "the cut-offs are logged" grep -q 'request read timeout' "$NP_DAEMON_LOG"

# 2. params over max_params_bytes: 431 (or closed), never a crash; the workers stay up.
read -r big < <(raw request 127.0.0.1 "$port" "/api/v1/books/$NP_BOOK_MIN" --params-bytes 70000)
np_log "params of 70000 bytes: $big"
np_expect "params over max_params_bytes refused ($big)" bash -c "[[ '$big' == status=431* || '$big' == status=none* ]]"
read -r small < <(raw request 127.0.0.1 "$port" "/api/v1/books/$NP_BOOK_MIN" --params-bytes 30000)
np_expect "params of 30000 bytes served ($small)" bash -c "[[ '$small' == status=200* ]]"
np_expect_eq "the same workers are up" "$pids_before" "$(np_worker_pids | sort | tr '\n' ' ')"
np_curl "/api/v1/books/$NP_BOOK_MIN"
np_expect_eq "reads still answer" 200 "$NP_STATUS"

# 3. a body that stalls after READY (16 kB of a 40 kB body): 408 at the deadline; the worker is
#    shown reading meanwhile (busy), and is free again after.
raw request 127.0.0.1 "$port" /healthz --body 40000:20000 --wait $(((timeout_ms + 3000 * NP_TIMEOUT_SCALE) / 1000)) \
	>"$NP_TMP/out/stall.txt" &
stall_pid=$!
# until the client has sent its 20 kB (it reads for timeout_ms from then): a fixed 0.5 s was
# short for the Python client's start on a loaded machine
np_poll 1 100 np_status_json 'len([w for w in d["workers"] if w["state"] == "reading"])'
np_expect_eq "the worker reading a stalled body is shown reading" 1 "$NP_POLLED"
wait "$stall_pid"
read -r stall <"$NP_TMP/out/stall.txt"
np_log "stalled body: $stall"
stall_s=${stall##*eof_s=}
np_expect "a stalled body gets 408 ($stall)" bash -c "[[ '$stall' == status=408* ]]"
np_expect "... at the deadline ($stall_s s)" awk -v v="$stall_s" -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(v >= lo && v <= hi) }'
np_expect_eq "no worker is left reading" 0 "$(np_status_json 'len([w for w in d["workers"] if w["state"] == "reading"])')"

# 4. fastcgi_keep_conn: three requests on one connection
read -r kept < <(raw request 127.0.0.1 "$port" /healthz --keep 3)
np_expect "three requests on one kept connection ($kept)" bash -c "[[ '$kept' == status=200,200,200* ]]"

# 5. listen_allowed_clients: a peer from 127.0.0.2 is closed at once, 127.0.0.1 is served.
port2=$(np_free_port) || np_fail "no free port"
np_start_daemon --name allow database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	listen="127.0.0.1:$port2" listen_mode=- workers=2 budget=1 min_warm=0 listen_allowed_clients=127.0.0.1
read -r other < <(raw request 127.0.0.1 "$port2" /healthz --src 127.0.0.2 --wait 3)
np_log "from 127.0.0.2: $other"
np_expect "a peer from 127.0.0.2 is closed without an answer ($other)" bash -c "[[ '$other' == 'status=none bytes=0 eof_s=0.'* ]]"
read -r mine < <(raw request 127.0.0.1 "$port2" /healthz)
np_expect "a peer from 127.0.0.1 is served ($mine)" bash -c "[[ '$mine' == status=200* ]]"
np_expect "the refusal is logged" grep -q 'peer not in listen_allowed_clients' "$NP_DAEMON_LOG"
np_use_daemon neonpoold

# 6. a graceful stop waits at most 1 s for parked connections (a front server's request in
#    transit is served; silent peers do not hold the stop)
raw peers 127.0.0.1 "$port" 4 1 "$NP_TMP/peers2.ready" "$NP_TMP/out/peers2.json" 10 &
peers_pid=$!
for _ in $(seq 1 100); do [ -e "$NP_TMP/peers2.ready" ] && break; sleep 0.05; done
sleep 0.2
# parked peers cost no CPU (a peeked, incomplete request is not reported again until more comes)
ticks() { local p t=0; for p in $(np_worker_pids); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
t0=$(ticks); sleep 1; t1=$(ticks)
np_expect "the workers used $((t1 - t0)) CPU ticks in 1 s with 5 parked peers (< 10)" test $((t1 - t0)) -lt 10
np_expect "SIGQUIT with 5 parked peers" np_stop_daemon QUIT $((5000 * NP_TIMEOUT_SCALE))
np_log "stopped in ${NP_STOP_MS:-?} ms"
np_expect "... stops in ${NP_STOP_MS:-?} ms: parked requests get at most 1 s (< $((1500 * NP_TIMEOUT_SCALE)) ms)" test "${NP_STOP_MS:-99999}" -lt $((1500 * NP_TIMEOUT_SCALE))
wait "$peers_pid"

echo "RESULT $silent silent peers + 1 truncated: 100 reads 200=$ok p99 ${p99} ms max ${max} ms; peers cut off at $(cat "$NP_TMP/out/peers.json") s (timeout $timeout_ms ms); 70 kB params: $big; stalled body: $stall; kept: $kept; 127.0.0.2: $other; SIGQUIT with 5 parked peers: ${NP_STOP_MS:-?} ms"
np_finish
