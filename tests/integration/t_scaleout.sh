#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_scaleout.sh - several hosts on one machine: network namespaces joined by a bridge, each a host of
# its own (doc/deploy.md, "Several hosts"):
#   lb  10.77.0.2   HAProxy 2.6 with contrib/haproxy/neonpool.cfg (health checks, retries only for
#                   what may be replayed); the load generators run here
#   h1..h3 10.77.0.11-13  nginx (contrib/nginx/neonpool.conf) + neonpoold + a model stand-in each
#   db  10.77.0.5   PgBouncer (transaction mode, max_db_connections = the global cap, TLS to its
#                   clients) -> neonsim (2 ms RTT) -> PostgreSQL 15 with TLS
# The addresses live only inside namespaces this test makes and removes (the root namespace gets
# none); every load is bounded in count and time. Phases, each printing its figures:
#   A  reads (wrk over book, passage and search), keyed writes and streamed asks through the load
#      balancer; SHOW CLIENTS sampled every 100 ms: each host's clients at PgBouncer <= its budget,
#      PgBouncer's servers <= its cap, no query_wait_timeout; kill -9 of every process of h3 mid-load:
#      no failed GET, h3's answers stored 'failed' by a live host (their lease), history shows it,
#      every acknowledged write stored once; h3 restarted rejoins within 5 s of its /readyz
#   B  the same load while the three hosts are upgraded one by one (neonpoolctl upgrade): no error
#   C  an answer streamed by h1, cancelled through h2 and through h3: ends within 1 s, stored stopped
#   D  warm-up: 3 hosts x 4 idle holders, warmup_policy = always: pings counted at the database
#   F  nginx as the load balancer (contrib/nginx/neonpool-lb.conf): kill -9 of h2 under load, no failed
#      GET, every acknowledged write stored once
#   E  direct topology: budgets 2 + 2 + 2 against a server whose max_connections leaves exactly 6:
#      nothing refused; check-db --hosts 3 warns for budget 3
# The default suite runs the short form (phases A, B, C and F); tests/scaleout/run the long one,
# every phase (NP_SCALE_* below).
# np: long (a bed of 12 servers: started early, so that it does not end the run; its short form's
# load is paced and small, so that the tests beside it keep their pace)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
. "$(dirname "$0")/nslib.sh"
np_require ip haproxy pgbouncer nginx wrk curl
np_is_root || np_skip "network namespaces (ip netns) need root"
: "${NP_SCALE_SECS:=10}"          # phase A's load (long form: 300)
: "${NP_SCALE_UPGRADE_SECS:=16}"  # phase B's load (long form: 60)
: "${NP_SCALE_CONNS:=20}"         # wrk connections (long form: 200)
: "${NP_SCALE_DELAY_MS:=100}"     # each wrk connection's pause between requests (long form: 0)
: "${NP_SCALE_ASKS:=4}"           # streamed asks at a time (long form: 20)
: "${NP_SCALE_ASK_WORKERS:=8}"    # each host's ask workers (long form: 24)
: "${NP_SCALE_WARM_S:=4}"         # phase D: intervals of 1 s (long form: 10)
: "${NP_SCALE_DIRECT_SECS:=4}"    # phase E's load (long form: 30)
: "${NP_SCALE_NGINX_SECS:=6}"     # phase F's load (nginx as the load balancer; long form: 60)
# the phases run (long form: all): D and E add 20 s and have single-host twins in the suite
# (t_warmup_while_active, t_migrate's check-db --hosts)
: "${NP_SCALE_PHASES:=ABCF}"
phase() { [[ $NP_SCALE_PHASES == *"$1"* ]]; }

pfx=np$$
NET=10.77.0
declare -A ADDR=([lb]=$NET.2 [db]=$NET.5 [h1]=$NET.11 [h2]=$NET.12 [h3]=$NET.13)
NODES="db lb h1 h2 h3"
in_ns() { local n=$1; shift; ip netns exec "$pfx-$n" "$@"; }

# ---- the network -----------------------------------------------------------------------------
sc_net_down() {
	local n p
	for n in $NODES sw; do
		ip netns list 2>/dev/null | grep -q "^$pfx-$n\b" || continue
		for p in $(ip netns pids "$pfx-$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$pfx-$n" 2>/dev/null
	done
	return 0
}
NP_TEARDOWN_HOOK=sc_net_down
ip netns add "$pfx-sw" 2>"$NP_TMP/out/netns.err" || np_skip "ip netns add is not permitted here: $(head -n 1 "$NP_TMP/out/netns.err")"
ip -n "$pfx-sw" link set lo up
ip -n "$pfx-sw" link add br0 type bridge
ip -n "$pfx-sw" link set br0 up
for n in $NODES; do
	ip netns add "$pfx-$n"
	ip -n "$pfx-sw" link add "$n" type veth peer name eth0 netns "$pfx-$n"
	ip -n "$pfx-sw" link set "$n" master br0 up
	ip -n "$pfx-$n" addr add "${ADDR[$n]}/24" dev eth0
	ip -n "$pfx-$n" link set eth0 up
	ip -n "$pfx-$n" link set lo up
done
np_log "network: namespaces $pfx-{$(echo $NODES | tr ' ' ,)} on a bridge in $pfx-sw, $NET.0/24"

# ---- the database host: PostgreSQL (TLS), neonsim (2 ms RTT), PgBouncer ----------------------
mkdir -p "$NP_TMP/bin"
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$pfx-db" "$NEONPOOLCTL" >"$NP_TMP/bin/ctl-db"
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$pfx-db" "$NEONSIM" >"$NP_TMP/bin/neonsim-db"
chmod 0755 "$NP_TMP/bin/ctl-db" "$NP_TMP/bin/neonsim-db"
NP_PG_NETNS=$pfx-db NP_PG_LISTEN_MORE=${ADDR[db]} NP_PG_HBA_NET=$NET.0/24 NEONPOOLCTL=$NP_TMP/bin/ctl-db np_db_prepare
NP_PG_NETNS=$pfx-db   # pg_ctl restart (phase E) there too
NEONSIM=$NP_TMP/bin/neonsim-db np_start_neonsim --delay 1
NEONSIM=$NP_TMP/bin/neonsim-db
stats_pw=np-stats-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
np_secret_exempt "$NP_TMP/pgbouncer/userlist.txt"
NP_NETNS=$pfx-db NP_PGB_LISTEN="127.0.0.1,${ADDR[db]}" NP_PGB_TARGET_PORT=$NP_NS_PORT NP_PGB_USERS="\"npstats\" \"$stats_pw\"" \
	NP_PGB_INI="max_db_connections = 6
stats_users = npstats
client_tls_sslmode = require
client_tls_key_file = $NP_TMP/pg/server.key
client_tls_cert_file = $NP_TMP/pg/server.crt" np_start_pgbouncer "$NP_PG_DB" 6
pgb_url="postgresql://neonpool@${ADDR[db]}:$NP_PGB_PORT/$NP_PG_DB?sslmode=require"
direct_url="postgresql://neonpool@${ADDR[db]}:$NP_PG_PORT/$NP_PG_DB?sslmode=verify-ca&sslrootcert=$NP_PG_CA"
np_log "database host ${ADDR[db]}: PgBouncer :$NP_PGB_PORT (cap 6) -> neonsim :$NP_NS_PORT (1 ms each way) -> PostgreSQL :$NP_PG_PORT"

# ---- the app hosts -------------------------------------------------------------------------------
cp "$NEONPOOLD" "$NP_TMP/bin/build-a"
ver_a=$("$NEONPOOLD" -v | awk '{print $2}')
ver_b=$(np_other_version "$ver_a")
np_patch_version "$NEONPOOLD" "$NP_TMP/bin/build-b" "$ver_a" "$ver_b"
cp "$NP_TMP/bin/build-a" "$NP_TMP/bin/neonpoold"
NEONPOOLD=$NP_TMP/bin/neonpoold
declare -A MPORT
# start_host N [key=value...]: the model stand-in, neonpoold and nginx of host hN (budget 4 through
# PgBouncer unless the arguments say otherwise).
start_host() {
	local h=h$1; shift
	rm -f "$NP_TMP/mock-$h.port"
	(exec ip netns exec "$pfx-$h" "$NP_PYTHON" "$np_top/tests/tools/llm_mock.py" "$NP_TMP/mock-$h.port") \
		>"$NP_TMP/out/mock-$h.out" 2>&1 &
	NP_FRONT_PIDS+=("$!")
	local i
	for ((i = 0; i < 50; i++)); do [ -s "$NP_TMP/mock-$h.port" ] && break; sleep 0.1; done
	MPORT[$h]=$(<"$NP_TMP/mock-$h.port") || np_fail "$h: the model stand-in did not start"
	mock "$h" '{"tokens": 25, "tokens_per_s": 5}'
	NP_DAEMON_WRAPPER="ip netns exec $pfx-$h" np_start_daemon --name "$h" database_url="$pgb_url" \
		database_password_file="$NP_TMP/db.password" status_file="$NP_TMP/$h.status" \
		control_listen="$NP_TMP/$h-control.sock" ask_listen="$NP_TMP/$h-ask.sock" log_level=info \
		pooler_mode=true workers=4 budget=4 min_warm=4 ask_workers="$NP_SCALE_ASK_WORKERS" max_waiters=64 \
		warmup_policy=always warmup_interval_s=1 acquire_timeout_ms=5000 graceful_timeout_ms=15000 \
		upgrade_timeout_ms=8000 llm_url="http://127.0.0.1:${MPORT[$h]}/v1/chat/completions" \
		llm_gap_timeout_ms=10000 "$@"
	if [ -z "${NGINX_PID[$h]:-}" ] || ! np_alive "${NGINX_PID[$h]}"; then
		NP_NETNS=$pfx-$h NP_NGINX_ADDR=0.0.0.0 np_start_nginx "unix:$NP_TMP/$h.sock" 80 "nginx-$h" \
			"unix:$NP_TMP/$h-control.sock" "unix:$NP_TMP/$h-ask.sock"
		NGINX_PID[$h]=$NP_NGINX_PID
	fi
}
declare -A NGINX_PID
mock() { in_ns "$1" curl -s -X POST "http://127.0.0.1:${MPORT[$1]}/_control" -d "$2" >/dev/null; }
# readyz HOST: the host's /readyz status through its nginx
readyz() { in_ns "$1" curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1/readyz; }
wait_ready() {
	local i
	for ((i = 0; i < 150; i++)); do [ "$(readyz "$1")" = 200 ] && return 0; sleep 0.1; done
	return 1
}
for i in 1 2 3; do start_host $i; done
for h in h1 h2 h3; do np_expect "$h ready (its /readyz through its nginx)" wait_ready $h; done

# ---- the load balancer ---------------------------------------------------------------------------
mkdir -p "$NP_TMP/haproxy"
# maxconn: HAProxy raises its descriptor limit to twice it, and this machine's hard limit may be lower
sed -e "s|^    bind 127.0.0.1:8080$|    bind 0.0.0.0:8080|" -e "s|^    maxconn 20000$|    maxconn 4000|" \
	-e "s|^global$|global\n    stats socket $NP_TMP/haproxy/admin.sock mode 600 level admin|" \
	"$np_top/contrib/haproxy/neonpool.cfg" >"$NP_TMP/haproxy/haproxy.cfg"
grep -q '^    bind 0.0.0.0:8080$' "$NP_TMP/haproxy/haproxy.cfg" || np_fail "contrib/haproxy/neonpool.cfg lost its bind line"
in_ns lb haproxy -c -q -f "$NP_TMP/haproxy/haproxy.cfg" >"$NP_TMP/out/haproxy-c.out" 2>&1 ||
	np_fail "haproxy -c: $(cat "$NP_TMP/out/haproxy-c.out")"
(exec ip netns exec "$pfx-lb" haproxy -db -f "$NP_TMP/haproxy/haproxy.cfg") </dev/null >"$NP_TMP/haproxy/haproxy.log" 2>&1 &
NP_FRONT_PIDS+=("$!")
# hap COMMAND: one line to HAProxy's admin socket
hap() {
	"$NP_PYTHON" -c 'import socket,sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall((sys.argv[2] + "\n").encode())
sys.stdout.write(s.makefile(errors="replace").read())' "$NP_TMP/haproxy/admin.sock" "$1"
}
# hap_up SERVER: "UP" when the server is up in both backends
hap_up() {
	hap "show stat" 2>/dev/null | awk -F, -v s="$1" '$2 == s { n++; if ($18 ~ /^UP/) u++ } END { print (n > 0 && u == n) ? "UP" : "DOWN" }'
}
for i in $(seq 60); do
	[ "$(hap_up app1)$(hap_up app2)$(hap_up app3)" = UPUPUP ] && break
	sleep 0.2
done
np_expect_eq "HAProxy sees the three hosts up" UPUPUPUP "UP$(hap_up app1)$(hap_up app2)$(hap_up app3)"
lb() { in_ns lb curl -s -m 10 "$@"; }
code=$(lb -o /dev/null -w '%{http_code}' "http://127.0.0.1:8080/api/v1/books/$NP_BOOK_MIN")
np_expect_eq "a book through the load balancer" 200 "$code"

# ---- the load ------------------------------------------------------------------------------------
words=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT string_agg(format('%L', word), ',') FROM (SELECT word FROM ts_stat('SELECT tsv FROM passages') ORDER BY ndoc DESC LIMIT 20) w" | tr "'" '"')
pace=""
[ "$NP_SCALE_DELAY_MS" -gt 0 ] && pace="delay = function() return $NP_SCALE_DELAY_MS end"
cat >"$NP_TMP/mix.lua" <<LUA
math.randomseed(os.time())
local words = {$words}
request = function()
  local r = math.random(3)
  if r == 1 then return wrk.format("GET", "/api/v1/books/" .. math.random($NP_BOOK_MIN, $NP_BOOK_MAX)) end
  if r == 2 then return wrk.format("GET", "/api/v1/passages/" .. math.random($NP_PASSAGE_MIN, $NP_PASSAGE_MAX)) end
  return wrk.format("GET", "/api/v1/search?limit=5&q=" .. words[math.random(#words)])
end
$pace
LUA
declare -A TOK
# lb_session: a chat session through the load balancer (sid, tok)
lb_session() {
	lb -X POST http://127.0.0.1:8080/api/v1/sessions >"$NP_TMP/out/session.json"
	sid=$(np_json_get "$NP_TMP/out/session.json" 'd["id"]')
	tok=$(np_json_get "$NP_TMP/out/session.json" 'd["token"]')
	echo "$tok" >>"$NP_TMP/out/tokens"
	[ -n "$sid" ] || np_fail "no session through the load balancer: $(cat "$NP_TMP/out/session.json")"
	TOK[$sid]=$tok
}
# pgb_sampler_start: SHOW CLIENTS and SHOW SERVERS every 100 ms (psql \watch on PgBouncer's console)
pgb_sampler_start() {
	local what
	for what in clients servers; do
		printf 'SHOW %s \\watch 0.1\n' "${what^^}" |
			PGPASSWORD=$stats_pw in_ns db "$PGBIN/psql" -X -q -A -F ' ' \
				"host=127.0.0.1 port=$NP_PGB_PORT dbname=pgbouncer user=npstats sslmode=require" \
				>"$NP_TMP/out/pgb-$what.$1" 2>"$NP_TMP/out/pgb-$what.$1.err" &
		PGB_SAMPLERS+=("$!")
	done
}
pgb_sampler_stop() {
	local p
	for p in "${PGB_SAMPLERS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	PGB_SAMPLERS=()
}
PGB_SAMPLERS=()
# pgb_max FILE: "SAMPLES MAX_H1 MAX_H2 MAX_H3 MAX_OTHER" over the samples of SHOW CLIENTS or SHOW
# SERVERS (each printed with its header and its "(N rows)" footer): the rows of the test's database
# counted by their address (the hosts' clients; the servers are all "other")
pgb_max() {
	"$NP_PYTHON" - "$1" "$NP_PG_DB" "${ADDR[h1]}" "${ADDR[h2]}" "${ADDR[h3]}" <<'PYEOF'
import re, sys
path, db, hosts = sys.argv[1], sys.argv[2], sys.argv[3:6]
n, c, m = 0, [0] * 4, [0] * 4
for line in open(path, errors="replace"):
    if re.match(r"^\(\d+ rows?\)$", line.strip()):
        n += 1
        m = [max(a, b) for a, b in zip(m, c)]
        c = [0] * 4
        continue
    f = line.split()
    if len(f) > 4 and f[2] == db:
        c[hosts.index(f[4]) if f[4] in hosts else 3] += 1
print(n, *m)
PYEOF
}

# run_load TAG SECS: wrk, the writes and the asks through the load balancer, in the background
run_load() {
	local tag=$1 secs=$2 pairs=() i
	lb_session; WSID[$tag]=$sid
	local wtok=$tok
	for ((i = 0; i < NP_SCALE_ASKS; i++)); do lb_session; pairs+=("$sid:$tok"); done
	(exec ip netns exec "$pfx-lb" wrk -t2 -c"$NP_SCALE_CONNS" -d"${secs}s" --latency -s "$NP_TMP/mix.lua" \
		"http://127.0.0.1:${LB_PORT:-8080}/") >"$NP_TMP/out/wrk.$tag" 2>&1 &
	WRK_PID=$!
	(NP_LOAD_HOST=127.0.0.1 exec ip netns exec "$pfx-lb" "$NP_PYTHON" "$np_top/tests/integration/upgrade_load.py" "${LB_PORT:-8080}" \
		"$secs" "${WSID[$tag]}" "$wtok" "$NP_TMP/out/load.$tag" "$NP_SCALE_ASKS" "${pairs[@]}") \
		>"$NP_TMP/out/load.$tag.log" 2>&1 &
	LOAD_PID=$!
}
declare -A WSID
# check_load TAG: wait for the load, then its figures and checks (reads, writes; the asks' lines are
# left to the phase)
check_load() {
	local tag=$1 acked failed stored dup
	wait "$WRK_PID"
	wait "$LOAD_PID"
	sed -n '/Latency Distribution/,/Requests\/sec/p' "$NP_TMP/out/wrk.$tag"
	np_expect "$tag: no non-2xx read through the load balancer" \
		bash -c "! grep -q 'Non-2xx' '$NP_TMP/out/wrk.$tag'"
	np_expect "$tag: no socket error" bash -c "! grep -q 'Socket errors' '$NP_TMP/out/wrk.$tag'"
	grep -E 'Non-2xx|Socket errors' "$NP_TMP/out/wrk.$tag"
	acked=$(awk '$2 == 201 || $2 == 200' "$NP_TMP/out/load.$tag.writes" | wc -l)
	failed=$(awk '$2 != 201 && $2 != 200' "$NP_TMP/out/load.$tag.writes" | wc -l)
	np_expect "$tag: writes acknowledged ($acked)" test "$acked" -gt 0
	awk '$2 == 201 || $2 == 200 { print "w-" $1 }' "$NP_TMP/out/load.$tag.writes" | sort >"$NP_TMP/out/acked.$tag"
	np_psql_super -d "$NP_PG_DB" -At -c "SELECT content FROM messages WHERE session_id = ${WSID[$tag]} AND content LIKE 'w-%'" |
		sort >"$NP_TMP/out/stored.$tag"
	dup=$(uniq -d "$NP_TMP/out/stored.$tag" | wc -l)
	stored=$(comm -12 "$NP_TMP/out/acked.$tag" <(sort -u "$NP_TMP/out/stored.$tag") | wc -l)
	np_expect_eq "$tag: every acknowledged write is stored" "$acked" "$stored"
	np_expect_eq "$tag: no write stored twice" 0 "$dup"
	echo "RESULT $tag reads: $(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk.$tag") req/s through the load balancer," \
		"p50 $(awk '$1 == "50%" {print $2}' "$NP_TMP/out/wrk.$tag") p99 $(awk '$1 == "99%" {print $2}' "$NP_TMP/out/wrk.$tag");" \
		"writes $acked acknowledged, $failed not, $(wc -l <"$NP_TMP/out/stored.$tag") stored, $dup twice;" \
		"asks $(wc -l <"$NP_TMP/out/load.$tag.asks")"
}

# ---- A: load, kill -9 of a host, its return ------------------------------------------------------
pgb_sampler_start A
run_load A "$NP_SCALE_SECS"
# an answer streamed by h3 for sure (the load's few asks may all be elsewhere at the kill): asked
# of h3 directly, its first delta seen before the kill
lb_session; ksid=$sid
(exec ip netns exec "$pfx-lb" "$NP_PYTHON" "$np_top/tests/integration/ask_client.py" 80 "$sid" "$tok" \
	"What does VACUUM do?" --sse --host "${ADDR[h3]}" --timeout 30) >"$NP_TMP/out/ask-h3.json" 2>&1 &
kask=$!
for ((i = 0; i < 100; i++)); do
	kmid=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT id FROM messages WHERE session_id = $ksid AND role = 'assistant' AND status = 'streaming' AND content = '' LIMIT 1")
	[ -n "$kmid" ] && break
	sleep 0.1
done
np_expect "A: an answer streams from h3 before the kill" test -n "$kmid"
sleep $((NP_SCALE_SECS / 4))
np_now_ms; t_kill=$NP_NOW
victims=$(ip netns pids "$pfx-h3")
kill -KILL $victims
np_log "kill -9 of every process of h3: $(echo $victims | wc -w) processes"
np_expect "h3: every process gone" bash -c "sleep 0.5; [ -z \"\$(ip netns pids $pfx-h3)\" ]"
# the answers h3 was streaming: their readers' connections were cut (one line each in the asks'
# log); polled in the background from here until a live host stored them failed (their lease)
sleep 1.5
# (cut: the stream began, 200, and ended with neither done nor an error event)
awk -v k="${kmid:-0}" '$1 == 200 && $NF != "-" && $2 != "done" && $2 != "error" { printf "%s,", $NF } END { printf "%s", k }' \
	"$NP_TMP/out/load.A.asks" >"$NP_TMP/out/cut.A.early"
(
	mids=$(cat "$NP_TMP/out/cut.A.early")
	for ((i = 0; i < 600; i++)); do
		left=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT count(*) FROM messages WHERE id IN (${mids:-0}) AND status = 'streaming'")
		np_now_ms
		[ "$left" = 0 ] && { echo $((NP_NOW - t_kill)) >"$NP_TMP/out/failed_ms.A"; break; }
		sleep 0.1
	done
) &
failed_poller=$!
# the host comes back (a supervisor restarting it): rejoined = up in both of HAProxy's backends
start_host 3
t_ready=""; t_up=""
for ((i = 0; i < 300; i++)); do
	np_now_ms
	[ -z "$t_ready" ] && [ "$(readyz h3)" = 200 ] && t_ready=$NP_NOW
	[ -z "$t_up" ] && [ "$(hap_up app3)" = UP ] && t_up=$NP_NOW
	[ -n "$t_ready" ] && [ -n "$t_up" ] && break
	sleep 0.1
done
np_expect "h3 ready again after its restart" test -n "$t_ready"
np_expect "h3 back in the load balancer" test -n "$t_up"
rejoin=$(( ${t_up:-0} - ${t_ready:-0} ))
np_expect "h3 rejoined within 5 s of its /readyz turning ready ($rejoin ms)" test "$rejoin" -le 5000
np_measure scaleout_rejoin_after_ready_ms "$rejoin" ms
check_load A
pgb_sampler_stop
# the answers h3 was streaming: cut, then stored 'failed' by a live host when their lease ran out
awk '$1 == 200 && $NF != "-" && $2 != "done" && $2 != "error" { print $(NF-1), $NF }' "$NP_TMP/out/load.A.asks" >"$NP_TMP/out/cut.A"
cut=$(wc -l <"$NP_TMP/out/cut.A")
wait "$kask"
np_expect_eq "A: the answer asked of h3 was cut (no done event; its reader's connection ended or was reset)" 0 \
	"$(np_json_get "$NP_TMP/out/ask-h3.json" 'sum(1 for e in d["events"] if e["event"] == "done")')"
printf '%s %s\n' "$ksid" "${kmid:-0}" >>"$NP_TMP/out/cut.A"
# an ask is never replayed: one that reached h3 while its daemon was dead and its nginx not yet
# answered 502 (the only other outcome allowed besides a cut stream)
np_expect_eq "A: every other ask ended with done (or 502 from the dying host)" "$cut" \
	"$(awk '!($1 == 200 && $2 == "done") && $1 != 502' "$NP_TMP/out/load.A.asks" | wc -l)"
awk '!($1 == 200 && $2 == "done")' "$NP_TMP/out/load.A.asks" | cut -d' ' -f1-3 | sort | uniq -c | sort -rn | head -5
mids=$(awk '{ printf "%s%s", s, $2; s = "," }' "$NP_TMP/out/cut.A")
wait "$failed_poller"
t_failed=$(cat "$NP_TMP/out/failed_ms.A" 2>/dev/null)
np_expect_eq "A: the answers cut by the kill, as seen 1.5 s after it" "$mids" "$(cat "$NP_TMP/out/cut.A.early")"
np_expect "A: h3's answers finished by a live host within 30 s of the kill (${t_failed:-never} ms)" test "${t_failed:-99999}" -le 30000
st=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT string_agg(DISTINCT status, ',') FROM messages WHERE id IN (${mids:-0})")
np_expect_eq "A: stored failed" failed "$st"
read -r csid cmid <"$NP_TMP/out/cut.A"
# (the page of history that holds it: newest first, those older than the next id)
lb -H "Authorization: Bearer ${TOK[$csid]}" "http://127.0.0.1:8080/api/v1/sessions/$csid/messages?before=$((cmid + 1))&limit=5" \
	>"$NP_TMP/out/history.json"
np_expect_eq "A: a reader resuming from history sees that answer failed" failed \
	"$(np_json_get "$NP_TMP/out/history.json" "[m['status'] for m in d['messages'] if m['id'] == $cmid][0]")"
read -r ns m1 m2 m3 _ < <(pgb_max "$NP_TMP/out/pgb-clients.A")
read -r nsv _ _ _ msv < <(pgb_max "$NP_TMP/out/pgb-servers.A")
np_expect "A: SHOW CLIENTS sampled ($ns samples)" test "$ns" -ge $((NP_SCALE_SECS * 5))
np_expect "A: each host's clients at PgBouncer <= its budget 4 (max $m1 $m2 $m3)" test "$m1" -le 4 -a "$m2" -le 4 -a "$m3" -le 4
np_expect "A: PgBouncer's servers <= its cap 6 (max $msv in $nsv samples)" test "$msv" -le 6
qwt=$(grep -c query_wait_timeout "$NP_PGB_DIR/pgbouncer.log")
np_expect_eq "A: no query_wait_timeout at PgBouncer" 0 "$qwt"
echo "RESULT A: clients at PgBouncer max per host h1 $m1, h2 $m2, h3 $m3 (budget 4 each, $ns samples every 100 ms);" \
	"server connections max $msv (cap 6); query_wait_timeout $qwt"
# HAProxy's counters: requests retried (wretr) and sent to another host (wredis), over its backends
read -r retr redis < <(hap "show stat" | awk -F, '$2 == "BACKEND" { r += $16; d += $17 } END { print r + 0, d + 0 }')
echo "RESULT A: HAProxy retried $retr requests, $redis of them on another host"
echo "RESULT A: kill -9 of h3 ($(echo $victims | wc -w) processes) mid-load: $((cut + 1)) answers cut (1 asked of h3 directly), stored failed ${t_failed:-?} ms after the kill;" \
	"h3 rejoined $rejoin ms after its /readyz turned ready"

# ---- B: rolling upgrade under load --------------------------------------------------------------
cp "$NP_TMP/bin/build-b" "$NP_TMP/bin/.next" && mv -f "$NP_TMP/bin/.next" "$NP_TMP/bin/neonpoold"
version() { in_ns "$1" curl -s -m 5 http://127.0.0.1/api/v1/version | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null; }
run_load B "$NP_SCALE_UPGRADE_SECS"
sleep 2
per=$(( (NP_SCALE_UPGRADE_SECS - 4) / 3 ))
for h in h1 h2 h3; do
	np_now_ms; t0=$NP_NOW
	before=$(cat "$NP_TMP/$h.pid")
	if "$NEONPOOLCTL" -c "$NP_TMP/$h.conf" upgrade >"$NP_TMP/out/upgrade.$h" 2>&1; then
		np_ok "B: $h upgraded: $(cat "$NP_TMP/out/upgrade.$h")"
	else
		np_not_ok "B: $h upgrade: $(cat "$NP_TMP/out/upgrade.$h")"
	fi
	np_expect_eq "B: $h serves $ver_b" "$ver_b" "$(version $h)"
	np_expect "B: $h's old master exits" np_wait_gone "$before" 20000
	NP_D_PID[$h]=$(cat "$NP_TMP/$h.pid")
	np_now_ms
	echo "RESULT B: $h upgraded in $((NP_NOW - t0)) ms (old master gone)"
	[ $((NP_NOW - t0)) -lt $((per * 1000)) ] && sleep $(( (per * 1000 - (NP_NOW - t0)) / 1000 ))
done
check_load B
bad=$(awk '!($1 == 200 && $2 == "done")' "$NP_TMP/out/load.B.asks" | wc -l)
np_expect_eq "B: every ask during the rolling upgrade ended with done" 0 "$bad"
awk '!($1 == 200 && $2 == "done")' "$NP_TMP/out/load.B.asks" | head -5

# ---- C: a cancel sent to each of the two other hosts ----------------------------------------
mock h1 '{"tokens": 200, "tokens_per_s": 20}'
deltas='"".join(e["data"]["delta"] for e in d["events"] if e["event"] == "message")'
for other in h2 h3; do
	lb_session
	out=$NP_TMP/out/ask-h1-cancel-$other.json
	in_ns lb "$NP_PYTHON" "$np_top/tests/integration/ask_client.py" 80 "$sid" "$tok" "How does VACUUM reclaim space?" \
		--sse --host "${ADDR[h1]}" --cancel-host "${ADDR[$other]}" --cancel-after-deltas 5 --timeout 20 >"$out"
	read -r cst cbody end_ev end_status lag < <(np_json_get "$out" '"%s %s %s %s %.0f" % (d["cancel"]["status"],
		d["cancel"]["body"].get("status"), d["events"][-1]["event"], d["events"][-1]["data"].get("status"),
		d["t_end_ms"] - d["cancel"]["t_ms"])')
	np_expect_eq "C: streamed by h1, cancelled on $other: 200 stopped, the stream ends done/stopped" \
		"200 stopped done stopped" "$cst $cbody $end_ev $end_status"
	np_expect "C: streamed by h1, cancelled on $other: within 1 s ($lag ms)" test "${lag:-9999}" -lt 1000
	mid=$(np_json_get "$out" 'd["events"][0]["data"]["message_id"]')
	np_json_get "$out" "$deltas" >"$NP_TMP/out/sent-$other.txt"
	np_psql_super -d "$NP_PG_DB" -At -c "SELECT content FROM messages WHERE id = $mid AND status = 'stopped'" >"$NP_TMP/out/stored-$other.txt"
	np_expect "C: cancelled on $other: stored stopped with the text that was sent ($(wc -c <"$NP_TMP/out/sent-$other.txt") bytes)" \
		cmp -s "$NP_TMP/out/sent-$other.txt" "$NP_TMP/out/stored-$other.txt"
	echo "RESULT C: streamed by h1, cancel posted to $other: the stream ended $lag ms after the cancel's answer"
done
mock h1 '{"tokens": 25, "tokens_per_s": 5}'

# ---- F: nginx as the load balancer (contrib/nginx/neonpool-lb.conf), a host killed under load ------
mkdir -p "$NP_TMP/nginx-lb"
sed -e "s|^    listen 127.0.0.1:8081;$|    listen 0.0.0.0:8081;|" "$np_top/contrib/nginx/neonpool-lb.conf" >"$NP_TMP/nginx-lb/lb.conf"
grep -q '^    listen 0.0.0.0:8081;$' "$NP_TMP/nginx-lb/lb.conf" || np_fail "contrib/nginx/neonpool-lb.conf lost its listen line"
sed -e "s|@PREFIX@|$NP_TMP/nginx-lb|g" -e "s|^@USER@\$|user $NP_FRONT_USER $NP_FRONT_GROUP;|" -e "s|@SITE@|$NP_TMP/nginx-lb/lb.conf|" \
	"$np_top/contrib/nginx/nginx-test.conf.in" >"$NP_TMP/nginx-lb/nginx.conf"
in_ns lb nginx -t -q -p "$NP_TMP/nginx-lb" -e "$NP_TMP/nginx-lb/error.log" -c "$NP_TMP/nginx-lb/nginx.conf" \
	>"$NP_TMP/out/nginx-lb-t.out" 2>&1 || np_fail "nginx -t (load balancer): $(cat "$NP_TMP/out/nginx-lb-t.out")"
(exec ip netns exec "$pfx-lb" nginx -p "$NP_TMP/nginx-lb" -e "$NP_TMP/nginx-lb/error.log" -c "$NP_TMP/nginx-lb/nginx.conf") \
	</dev/null >"$NP_TMP/nginx-lb/out.log" 2>&1 &
NP_FRONT_PIDS+=("$!")
NP_NETNS=$pfx-lb np_wait_port 8081 10 || np_fail "the nginx load balancer did not listen: $(tail -n 5 "$NP_TMP/nginx-lb/error.log")"
LB_PORT=8081 run_load F "$NP_SCALE_NGINX_SECS"
sleep $((NP_SCALE_NGINX_SECS / 3))
victims=$(ip netns pids "$pfx-h2")
kill -KILL $victims
np_log "F: kill -9 of every process of h2 ($(echo $victims | wc -w)) behind the nginx load balancer"
check_load F
awk '$1 == 200 && $2 != "done" && $2 != "error"' "$NP_TMP/out/load.F.asks" >"$NP_TMP/out/cut.F"
np_expect_eq "F: the asks not on h2 ended with done (only h2's were cut, or answered 502 as it died)" \
	"$(wc -l <"$NP_TMP/out/cut.F")" "$(awk '!($1 == 200 && $2 == "done") && $1 != 502' "$NP_TMP/out/load.F.asks" | wc -l)"
awk '!($1 == 200 && $2 == "done")' "$NP_TMP/out/load.F.asks" | cut -d' ' -f1-3 | sort | uniq -c | sort -rn | head -5
retried=$(grep -c 'upstream prematurely closed\|connect() failed\|recv() failed' "$NP_TMP/nginx-lb/error.log")
echo "RESULT F: nginx load balancer, h2 killed mid-load: $retried upstream errors in its log, each retried on another host" \
	"for a GET or a keyed write; asks cut $(wc -l <"$NP_TMP/out/cut.F")"
start_host 2
np_expect "F: h2 ready again" wait_ready h2

# ---- D: warm-up pings counted at the database -------------------------------------------------
if phase D; then
sleep 2   # the holders idle for more than an interval
np_psql_super -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
pglog=$NP_TMP/pg/postgresql.log
l0=$(wc -l <"$pglog")
declare -A d0
for h in h1 h2 h3; do d0[$h]=$(grep -c 'msg="warm-up ping"' "$NP_TMP/$h.log"); done
sleep "$NP_SCALE_WARM_S"
at_db=$(tail -n +$((l0 + 1)) "$pglog" | grep -cE '(statement|execute [^:]*): SELECT 1$')
np_psql_super -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" >/dev/null
per_host=""
for h in h1 h2 h3; do
	n=$(( $(grep -c 'msg="warm-up ping"' "$NP_TMP/$h.log") - d0[$h] ))
	per_host+="$h $n, "
	np_expect "D: $h pinged at most once per interval ($n in $NP_SCALE_WARM_S s)" test "$n" -le $((NP_SCALE_WARM_S + 1))
	np_expect "D: $h still pings ($n in $NP_SCALE_WARM_S s)" test "$n" -ge $((NP_SCALE_WARM_S / 2))
done
np_expect "D: pings at the database <= 3 hosts x $NP_SCALE_WARM_S intervals (+3 at the edges): $at_db" \
	test "$at_db" -le $((3 * NP_SCALE_WARM_S + 3))
echo "RESULT D: 3 hosts x 4 idle holders, warmup_policy = always, interval 1 s, $NP_SCALE_WARM_S s: $at_db pings at the database" \
	"(${per_host%, }); one per holder would be $((3 * 4 * NP_SCALE_WARM_S))"
fi

# ---- E: the direct topology ---------------------------------------------------------------------
if phase E; then
for h in h1 h2 h3; do np_use_daemon "$h"; np_stop_daemon TERM >/dev/null; done
np_stop_front "$NP_PGB_PID"
np_psql_super -c "ALTER SYSTEM SET max_connections = 10" >/dev/null
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -l "$pglog" -w -t 60 restart -m fast >"$NP_TMP/out/pg-restart.out" 2>&1 ||
	np_fail "PostgreSQL did not restart: $(tail -n 5 "$pglog")"
np_sampler_start   # one superuser session: the others' use
sleep 0.3
reserved=$(np_psql_super -At -c "SHOW superuser_reserved_connections")
others=$(np_psql_super -At -c "SELECT count(*) - 1 FROM pg_stat_activity WHERE datid IS NOT NULL")   # not this psql
left=$((10 - reserved - others))
np_expect_eq "E: max_connections 10 - reserved $reserved - others $others leaves exactly 6" 6 "$left"
for b in 2 3; do
	np_write_conf "$NP_TMP/ctl-b$b.conf" "database_url=$direct_url" "database_password_file=$NP_TMP/db.password" "budget=$b"
	in_ns h1 "$NEONPOOLCTL" -c "$NP_TMP/ctl-b$b.conf" check-db --hosts 3 >"$NP_TMP/out/checkdb.b$b" 2>&1
	rc[$b]=$?
done
np_expect_eq "E: check-db --hosts 3 with budget 2: fits (exit 0)" 0 "${rc[2]}"
np_expect_eq "E: check-db --hosts 3 with budget 3: exit 2" 2 "${rc[3]}"
np_expect "E: ... and it warns" grep -q "^warning: .*the hosts' budgets add up to more than the connections left" "$NP_TMP/out/checkdb.b3"
grep '^fleet:' "$NP_TMP/out/checkdb.b2" "$NP_TMP/out/checkdb.b3"
l0=$(wc -l <"$pglog")
for i in 1 2 3; do
	mock h$i '{"tokens": 25, "tokens_per_s": 1000}'
	NP_DAEMON_WRAPPER="ip netns exec $pfx-h$i" np_start_daemon --name "h$i" database_url="$direct_url" \
		database_password_file="$NP_TMP/db.password" status_file="$NP_TMP/h$i.status" \
		control_listen="$NP_TMP/h$i-control.sock" ask_listen="$NP_TMP/h$i-ask.sock" log_level=info \
		workers=2 budget=2 min_warm=2 ask_workers=2 acquire_timeout_ms=5000 \
		llm_url="http://127.0.0.1:${MPORT[h$i]}/v1/chat/completions"
done
for h in h1 h2 h3; do np_expect "E: $h ready on the direct topology" wait_ready $h; done
# HAProxy took every host out while they restarted (their /healthz failed): back in first
for i in $(seq 60); do
	[ "$(hap_up app1)$(hap_up app2)$(hap_up app3)" = UPUPUP ] && break
	sleep 0.2
done
in_ns lb wrk -t2 -c"$NP_SCALE_CONNS" -d"${NP_SCALE_DIRECT_SECS}s" --latency -s "$NP_TMP/mix.lua" http://127.0.0.1:8080/ >"$NP_TMP/out/wrk.E" 2>&1
max=$(np_sampler_stop)
np_expect "E: no non-2xx" bash -c "! grep -qE 'Non-2xx|Socket errors' '$NP_TMP/out/wrk.E'"
refused=$(tail -n +$((l0 + 1)) "$pglog" | grep -cE 'too many clients|remaining connection slots')
np_expect_eq "E: no connection refused by the server" 0 "$refused"
np_expect "E: the pools' server connections <= 6 (max ${max% *} in ${max#* } samples)" test "${max% *}" -le 6
echo "RESULT E: direct, budgets 2+2+2, max_connections leaving 6: $(sed -n 's/^Requests\/sec: *//p' "$NP_TMP/out/wrk.E") req/s," \
	"server connections max ${max% *}, refused $refused; check-db --hosts 3: budget 2 exit ${rc[2]}, budget 3 exit ${rc[3]}"
fi
np_finish
