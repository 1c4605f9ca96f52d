#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_dns_blackhole.sh - a resolver that never answers (issue 6, defect 8): requests get a fast 503,
# /healthz and the supervisor keep working, and the reason names DNS; a name from /etc/hosts
# connects by address with verify-full checking the certificate against the host name.
# np: long (started first among the tests two at a time, so that it does not end the run alone)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require nginx curl

np_dns_setup "127.0.0.1 db.neonpool.test" "127.0.0.1 other.neonpool.test"
np_db_prepare
cto=$((2000 * NP_TIMEOUT_SCALE))
np_start_db_daemon workers=4 budget=2 min_warm=1 connect_timeout_ms=$cto breaker_probe_ms=500 \
	database_url="$(np_db_url_host db-blackhole.neonpool.test)"
sleep 1
np_now_ms; t0=$NP_NOW
np_fcgi GET /healthz >/dev/null 2>&1
np_now_ms
# under connect_timeout_ms: a /healthz that waited on the resolver would wait that long (or the
# resolver's 30 s); 1 s was met at 1,017 ms on a machine at load 12
np_expect "/healthz answers 200 before a connect would time out while DNS hangs ($NP_STATUS after $((NP_NOW - t0)) ms)" \
	test "$NP_STATUS" = 200 -a $((NP_NOW - t0)) -lt "$cto"

# requests: a fast 503 (db_unavailable or db_busy), not the resolver's 30 s
: >"$NP_TMP/out/dns.txt"
for i in $(seq 1 6); do
	curl -s -o "$NP_TMP/out/dns.body" -w '%{http_code} %{time_total}\n' --max-time 40 \
		"http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" >>"$NP_TMP/out/dns.txt"
done
worst=$(awk '{ t = $2 * 1000; if (t > m) m = t } END { printf "%d", m }' "$NP_TMP/out/dns.txt")
np_expect_eq "every request answered 503" 6 "$(grep -c '^503 ' "$NP_TMP/out/dns.txt")"
np_expect "slowest answer $worst ms <= connect_timeout_ms + 1 s" test "$worst" -le $((cto + 1000 * NP_TIMEOUT_SCALE))
code=$(np_json_get "$NP_TMP/out/dns.body" 'd["error"]["code"]')
np_expect "error code db_unavailable or db_busy ($code)" test "$code" = db_unavailable -o "$code" = db_busy

# the supervisor keeps ticking (50 ms) while its probes meet the resolver: sample the age of
# sup_updated_us every 100 ms for 4 s (the age at the start of each read: a read's own start-up is
# not the supervisor's). One that waited on the resolver would be its timeout (30 s) old; the
# probe's own limit is connect_timeout_ms
maxage=0
for _ in $(seq 1 40); do
	np_now_ms; t_read=$NP_NOW
	u=$(np_status_json 'int(d["supervisor_updated_us"])')
	age=$((t_read - ${u:-0} / 1000))
	[ "$age" -gt "$maxage" ] && maxage=$age
	sleep 0.1
done
np_measure supervisor_status_age_ms "$maxage" "the supervisor's status age with the resolver black-holed (worst of 40)"
np_expect "supervisor's status never older than connect_timeout_ms over 4 s (worst $maxage ms)" test "$maxage" -le "$cto"

# the reason names DNS, in /readyz and in the log
reason=""
for _ in $(seq 1 $((50 * NP_TIMEOUT_SCALE))); do
	reason=$(np_status_json 'd["endpoints"]["primary"]["reason"]')
	case $reason in *DNS*) break ;; esac
	sleep 0.2
done
np_curl /readyz
np_log "readyz: $NP_STATUS $(cat "$NP_TMP/http.body")"
np_expect "/readyz 503 naming DNS" grep -q DNS "$NP_TMP/http.body"
np_expect "status reason names DNS ($reason)" grep -q DNS <<<"$reason"
np_expect "the log names the class dns" grep -qE 'kind=dns|\(dns\)' "$NP_DAEMON_LOG"
np_expect "the resolver saw queries ($(cat "$NP_TMP/dns.queries"))" test -s "$NP_TMP/dns.queries"
np_curl /healthz
np_expect_eq "/healthz through nginx" 200 "$NP_STATUS"
echo "RESULT resolver black-holed: 6 requests 503, slowest ${worst} ms (connect_timeout_ms ${cto}); supervisor status at most ${maxage} ms old; reason: $reason"

# positive: a name from /etc/hosts, verify-full against the host name
np_stop_daemon TERM || np_fail "daemon did not stop"
np_stop_front "$NP_NGINX_PID"
np_start_db_daemon workers=2 budget=2 min_warm=1 connect_timeout_ms=$cto dns_cache_ttl_s=1 \
	database_url="$(np_db_url_host db.neonpool.test)"
np_wait_db_ready 10
np_curl "/api/v1/books/$NP_BOOK_MIN"
np_expect_eq "db.neonpool.test (in /etc/hosts and the certificate): 200" 200 "$NP_STATUS"
np_expect_eq "the server sees TLS from the pool" t \
	"$(np_psql_super -d postgres -At -c "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name LIKE 'neonpool/%'")"

# off the request path: the name leaves /etc/hosts (written in place: the bind mount shows the
# same inode) so refreshes (TTL 1 s) go to the black hole; every pool connection is terminated:
# reconnects use the addresses already known, no request waits for DNS
q0=$(cat "$NP_TMP/dns.queries")
printf '127.0.0.1 localhost\n' >"$NP_TMP/hosts"
sleep 2
np_psql_super -d postgres -At -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'neonpool/%'" \
	>"$NP_TMP/out/terminate.out" 2>&1
: >"$NP_TMP/out/stale.txt"
for i in $(seq 1 20); do
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 40 \
		"http://127.0.0.1:$NP_HTTP_PORT/api/v1/books/$NP_BOOK_MIN" >>"$NP_TMP/out/stale.txt"
	sleep 0.05
done
worst2=$(awk '{ t = $2 * 1000; if (t > m) m = t } END { printf "%d", m }' "$NP_TMP/out/stale.txt")
np_expect_eq "after the name left /etc/hosts and the pool was terminated: 20 reads 200" 20 "$(grep -c '^200 ' "$NP_TMP/out/stale.txt")"
np_expect "slowest of them $worst2 ms < 1 s (no DNS wait)" test "$worst2" -lt $((1000 * NP_TIMEOUT_SCALE))
np_expect "refreshes went to the resolver meanwhile ($q0 -> $(cat "$NP_TMP/dns.queries") queries)" \
	test "$(cat "$NP_TMP/dns.queries")" -gt "${q0:-0}"
echo "RESULT DNS black-holed after start (TTL 1 s, pool terminated): 20 reads 200, slowest ${worst2} ms"
np_finish
