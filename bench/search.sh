#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# search.sh - the search benchmark of issue 7: the PostgreSQL manual imported, wrk -c200 against
# /api/v1/search with realistic reader questions: one connection (the service time without
# queueing), then 200 connections twice: saturated (closed loop: every connection
# sends its next request as soon as the last one is answered) and paced (each connection thinks
# between requests, so that the offered load is about half of the saturated throughput). Prints
# req/s, p50/p95/p99 and the connections in pg_stat_activity (the pool's and all) during each run.
# The target is p99 < 20 ms at 200 connections. Not in the default suite.
# Usage: bench/search.sh [SECONDS [WORKERS [BUDGET]]]
#   NP_MANUAL_DIR  the manual's HTML (default /usr/share/doc/postgresql-doc-15/html)
#   NP_SLOW_MS=N   auto_explain logs the plan of every statement slower than N ms (pg/postgresql.log in
#                  the kept temp dir)
#   NP_PERF=1      also record `perf record -a -g` during the saturated run (perf.data in the kept temp dir)
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/dblib.sh"
np_require wrk nginx

secs=${1:-10}
workers=${2:-8}
budget=${3:-4}
manual=${NP_MANUAL_DIR:-/usr/share/doc/postgresql-doc-15/html}
[ -f "$manual/index.html" ] || np_skip "no PostgreSQL manual at $manual (apt-get install postgresql-doc-15)"

NP_SEED_BOOKS=1
np_db_prepare
np_psql_super -d neonpool -c "DELETE FROM books WHERE slug LIKE 'sample-book-%'" >/dev/null
np_now_ms; t0=$NP_NOW
"$NEONPOOLCTL" -c "$NP_CTL_CONF" import "$manual" >"$NP_TMP/out/import.out" 2>&1 ||
	np_fail "import failed: $(tail -n 5 "$NP_TMP/out/import.out")"
np_now_ms
np_psql_super -d neonpool -c "VACUUM ANALYZE" >/dev/null
if [ -n "${NP_SLOW_MS:-}" ]; then
	np_psql_super -d neonpool >/dev/null <<SQL || np_fail "auto_explain setup failed"
ALTER DATABASE neonpool SET session_preload_libraries = 'auto_explain';
ALTER DATABASE neonpool SET auto_explain.log_min_duration = ${NP_SLOW_MS};
ALTER DATABASE neonpool SET auto_explain.log_analyze = on;
SQL
fi
echo "RESULT manual imported in $((NP_NOW - t0)) ms: $(np_psql_super -d neonpool -At -c \
	"SELECT count(DISTINCT c.id) || ' chapters, ' || count(*) || ' passages' FROM passages p JOIN chapters c ON c.id = p.chapter_id")"

np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" log_level=info \
	workers="$workers" budget="$budget" min_warm="$budget"
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready

# What a reader of the manual asks: words, phrases, a quoted phrase, an exclusion, common words.
cat >"$NP_TMP/queries.txt" <<'Q'
vacuum freeze
savepoint rollback
how do I create an index
create index concurrently
jsonb operators
logical replication slot
foreign key constraint
window function
connection pooling
"write ahead log"
partition pruning
explain analyze
row level security policy
pg_dump custom format
transaction isolation level
serializable snapshot
autovacuum tuning
shared_buffers
checkpoint
"point in time recovery"
streaming replication standby
hash join
b-tree index
gin index
full text search ranking
websearch_to_tsquery
common table expression
upsert on conflict
trigger function
plpgsql exception
sequence nextval
timestamp with time zone
copy from csv
listen notify
advisory lock
deadlock
table partitioning
ALTER TABLE add column
grant privileges role
pg_hba.conf authentication
ssl certificate
backup -pg_dump
select
table
Q
{
	echo 'local q = {'
	while IFS= read -r line; do
		enc=$("$NP_PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1]))' "$line")
		printf '  "/api/v1/search?q=%s",\n' "$enc"
	done <"$NP_TMP/queries.txt"
	echo '}'
	cat <<'LUA'
local think = tonumber(os.getenv("NP_THINK_MS") or "0")
math.randomseed(os.time())
request = function() return wrk.format("GET", q[math.random(#q)]) end
if think > 0 then
  -- each connection waits a random 0..2*think ms before its next request (mean think)
  delay = function() return math.random(0, 2 * think) end
end
done = function(summary, latency, requests)
  io.write(string.format("NP p50=%.2f p95=%.2f p99=%.2f max=%.2f ms\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
} >"$NP_TMP/search.lua"

# every query answers 200 with hits (but the stop-word-free, sure-to-match ones at least)
bad=0
while IFS= read -r line; do
	enc=$("$NP_PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1]))' "$line")
	np_curl "/api/v1/search?q=$enc"
	[ "$NP_STATUS" = 200 ] || { bad=$((bad + 1)); np_log "q=$line: $NP_STATUS $(head -c 200 "$NP_TMP/http.body")"; }
done <"$NP_TMP/queries.txt"
np_expect_eq "every benchmark query answers 200" 0 "$bad"

# the plan on the whole manual: the GIN index, and the statement's time
np_psql_super -d neonpool -At >"$NP_TMP/out/explain.txt" 2>&1 <<'SQL'
EXPLAIN (ANALYZE, BUFFERS)
WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('english', 'vacuum freeze') AS query)
SELECT p.id, ts_rank_cd(p.tsv, q.query) AS rank FROM q, passages p WHERE p.tsv @@ q.query
ORDER BY rank DESC, p.id LIMIT 11;
SQL
np_expect "the search uses the GIN index passages_tsv_idx" grep -q "passages_tsv_idx" "$NP_TMP/out/explain.txt"
echo "RESULT EXPLAIN ANALYZE of the ranking for 'vacuum freeze': $(grep -E 'Execution Time' "$NP_TMP/out/explain.txt")"

wrk -t2 -c200 -d2s -s "$NP_TMP/search.lua" "http://127.0.0.1:$NP_HTTP_PORT/" >/dev/null 2>&1   # warm up

run() {   # run NAME THINK_MS [CONNECTIONS]
	local name=$1 think=$2 conns=${3:-200} out=$NP_TMP/out/wrk.$1 perf_pid=""
	np_sampler_start
	printf "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \\\\watch 0.05\n" |
		np_pg_run "$PGBIN/psql" -X -q -At -h "$NP_PG_SOCKDIR" -p "$NP_PG_PORT" -U postgres -d postgres \
		>"$NP_TMP/out/all.$name.txt" 2>/dev/null &
	local all_pid=$!
	if [ "${NP_PERF:-0}" = 1 ] && [ "$think" = 0 ]; then
		perf record -a -g -o "$NP_TMP/perf.data" -- sleep "$secs" >"$NP_TMP/out/perf.out" 2>&1 &
		perf_pid=$!
	fi
	local from
	from=$(($(wc -l <"$NP_TMP/nginx/access.log") + 1))
	NP_THINK_MS=$think wrk -t"$((conns < 2 ? 1 : 2))" -c"$conns" -d"${secs}s" --latency -s "$NP_TMP/search.lua" \
		"http://127.0.0.1:$NP_HTTP_PORT/" >"$out" 2>&1
	[ -n "$perf_pid" ] && wait "$perf_pid"
	local pool
	pool=$(np_sampler_stop)
	kill "$all_pid" 2>/dev/null; pkill -P "$all_pid" 2>/dev/null; wait "$all_pid" 2>/dev/null
	# as nginx saw it (1 ms resolution): rt from the request's first byte to the answer's last write,
	# urt (the daemon's share) from the FastCGI connect to the answer's end
	local urt rt
	pcts() {   # pcts FIELD: percentiles of nginx's FIELD=seconds over this run's lines
		tail -n +"$from" "$NP_TMP/nginx/access.log" | sed -n "s/.* $1=\\([0-9.]*\\) .*/\\1/p" | sort -n |
			awk '{ a[NR] = $1 } END { if (NR) printf "p50=%.0f p95=%.0f p99=%.0f ms", a[int(NR * .50) + 1] * 1000, a[int(NR * .95) + 1] * 1000, a[int(NR * .99) + 1] * 1000 }'
	}
	urt=$(pcts urt)
	rt=$(pcts rt)
	local all rps pct non
	all=$(awk 'NF { if ($1 > m) m = $1 } END { print m + 0 }' "$NP_TMP/out/all.$name.txt")
	rps=$(sed -n 's/^Requests\/sec: *//p' "$out")
	pct=$(sed -n 's/^NP //p' "$out")
	non=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$out")
	np_expect_eq "$name: no non-2xx answers" "" "$non"
	echo "RESULT $name (wrk -c$conns, ${secs} s, think ${think} ms, workers $workers, budget $budget): $rps req/s, $pct;" \
		"nginx request time $rt, upstream $urt; load average $(cut -d' ' -f1 /proc/loadavg);" \
		"pool connections max ${pool%% *} (budget $budget), client backends in pg_stat_activity max $all"
	NP_LAST_RPS=$rps
}
# one request at a time: the service time, no queueing
run single 0 1
run saturated 0
# paced: 200 connections offering about half the saturated rate: mean think = 200 / (rps / 2)
think=$(awk -v r="$NP_LAST_RPS" 'BEGIN { t = 400000 / (r > 1 ? r : 1); printf "%d", t < 1 ? 1 : t }')
run paced "$think"
[ "${NP_PERF:-0}" = 1 ] || [ -n "${NP_SLOW_MS:-}" ] && NP_KEEP_TMP=1
np_finish
