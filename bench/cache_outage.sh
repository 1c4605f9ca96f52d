#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# cache_outage.sh - the textbook stays readable while the database is not: nginx with its content
# cache (contrib/nginx/neonpool.conf, NP_NGINX_CACHE=1) in front of neonpoold, `wrk -c100` over
# chapters and passages read before (the cache was warmed with them) plus some never read, and a
# database outage of OUTAGE seconds in the middle of it. From nginx's access log (request time, ms
# resolution) it prints:
#   - the share of read-before requests answered 200 during the outage (the goal: 100 %),
#   - the unread requests' answers from 2 s into the outage: their statuses, and the 503s' latency
#     p50/p95/p99 and share <= 5 ms (the goal: the JSON 503 within 5 ms),
#   - after the database is back: when the unread content answered 200 again, and how long a
#     change to a read-before passage took to be served through the cache (the bound:
#     content_max_age_s + 2 s).
# Not in the default suite. Usage: bench/cache_outage.sh [OUTAGE_S [MAX_AGE_S]]   (30, 5)
#   NP_CACHE_LOCK_TIMEOUT=T  turn nginx's fastcgi_cache_lock on with this timeout (off in the snippet)
#   NP_WRK_DELAY_MS=N        each wrk connection waits N ms between requests (paced: the offered
#                            load is about 100 * 1000 / N req/s); 0 (default): a closed loop
#   NP_WRK_NICE=N            run wrk under nice -n N (the load generator behind the server for CPU)
#   NP_DAEMON_EXTRA=K=V      one more daemon setting (access_log=true: each 503's queue_ms in its log)
# Also printed: the 503s' upstream part (nginx's upstream_response_time), the cache hits' request
# time, and the workers' CPU over the outage.
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/dblib.sh"
np_require wrk nginx curl

outage=${1:-30}
max_age=${2:-5}
export NP_NGINX_CACHE=1
NP_SEED_BOOKS=10
np_db_start workers=4 budget=2 min_warm=2 content_max_age_s="$max_age" retry_after_s=1 ${NP_DAEMON_EXTRA:-}
b0=$NP_BOOK_MIN
if [ -n "${NP_CACHE_LOCK_TIMEOUT:-}" ]; then
	sed -i "s|fastcgi_cache_lock off;|fastcgi_cache_lock on; fastcgi_cache_lock_timeout $NP_CACHE_LOCK_TIMEOUT;|" "$NP_TMP/nginx/neonpool.conf"
	kill -HUP "$NP_NGINX_PID"
	sleep 1
fi
echo "RESULT nginx: $(grep -o 'fastcgi_cache_lock [^#]*' "$NP_TMP/nginx/neonpool.conf" | head -n 1 | sed 's/;$//'); wrk -c100, ${NP_WRK_DELAY_MS:-0} ms between a connection's requests"

# read before: chapters 1-10 of the first 5 books and the first 300 passages; never read: the
# chapters of the last 5 books
read_urls=() unread_urls=()
for b in $(seq "$b0" $((b0 + 4))); do for c in $(seq 1 10); do read_urls+=("/api/v1/books/$b/chapters/$c"); done; done
for p in $(seq "$NP_PASSAGE_MIN" $((NP_PASSAGE_MIN + 299))); do read_urls+=("/api/v1/passages/$p"); done
for b in $(seq $((b0 + 5)) $((b0 + 9))); do for c in $(seq 1 10); do unread_urls+=("/api/v1/books/$b/chapters/$c"); done; done
warm=()
for u in "${read_urls[@]}"; do warm+=("http://127.0.0.1:$NP_HTTP_PORT$u"); done
np_parallel 8 "${warm[@]}"
[ "$NP_PAR_BAD" = 0 ] || np_fail "warming the cache: $NP_PAR_BAD of ${#warm[@]} not 200"
echo "RESULT cache warmed: ${#read_urls[@]} read-before URLs (50 chapters, 300 passages); ${#unread_urls[@]} never read"

lua_list() { local u; printf '{'; for u in "$@"; do printf '"%s",' "$u"; done; printf '}'; }
cat >"$NP_TMP/outage.lua" <<LUA
local readb = $(lua_list "${read_urls[@]}")
local unread = $(lua_list "${unread_urls[@]}")
math.randomseed(os.time())
local pause = ${NP_WRK_DELAY_MS:-0}
if pause > 0 then
  delay = function() return pause end
end
request = function()
  local r = math.random(100)
  if r <= 10 then
    return wrk.format("GET", unread[math.random(#unread)])
  end
  if r <= 12 then
    -- the daemon's cheapest answer (no database, never cached): the yardstick for the 503s
    return wrk.format("GET", "/api/v1/version")
  end
  return wrk.format("GET", readb[math.random(#readb)])
end
LUA

: >"$NP_TMP/nginx/access.log"
# the load starts with the outage: before it, the unread chapters would be read (and cached)
tail=15
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" stop -m fast >"$NP_TMP/out/pgstop.out" 2>&1 || np_fail "pg_ctl stop failed"
stop_s=$(date +%s.%N)
${NP_WRK_NICE:+nice -n "$NP_WRK_NICE"} wrk -t2 -c100 -d$((outage + tail))s -s "$NP_TMP/outage.lua" "http://127.0.0.1:$NP_HTTP_PORT" \
	>"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
# the daemon's CPU over the outage: its workers' utime + stime (clock ticks) from /proc
worker_ticks() {
	local p t=0 f
	for p in $(np_child_pids "$NP_DAEMON_PID" np-worker); do
		read -r -a f <"/proc/$p/stat" 2>/dev/null || continue
		t=$((t + f[13] + f[14]))
	done
	echo "$t"
}
ticks0=$(worker_ticks)
sleep "$outage"
ticks1=$(worker_ticks)
echo "RESULT the workers' CPU during the outage: $(( (ticks1 - ticks0) * 1000 / $(getconf CLK_TCK) )) ms in $outage s"
np_pg_run "$PGBIN/pg_ctl" -D "$NP_TMP/pg/data" -l "$NP_TMP/pg/postgresql.log" -w start >"$NP_TMP/out/pgstart.out" 2>&1 ||
	np_fail "pg_ctl start failed"
back_s=$(date +%s.%N)
# a change to a passage read before, right after the database is back: when is it served?
pid=$NP_PASSAGE_MIN
np_psql_super -d neonpool -c "UPDATE passages SET body = body || ' [revised after the outage]' WHERE id = $pid" >/dev/null
np_now_ms; t_change=$NP_NOW
seen=-1
while :; do
	curl -s "http://127.0.0.1:$NP_HTTP_PORT/api/v1/passages/$pid" | grep -q 'revised after the outage' && {
		np_now_ms; seen=$((NP_NOW - t_change)); break; }
	np_now_ms; [ "$NP_NOW" -ge $((t_change + (max_age + 10) * 1000)) ] && break
	sleep 0.1
done
wait "$wrk_pid"
grep -E 'Requests/sec|Latency|Socket errors|Non-2xx' "$NP_TMP/out/wrk.out" | sed 's/^/# wrk: /'

"$NP_PYTHON" - "$NP_TMP/nginx/access.log" "$stop_s" "$back_s" "$outage" "$seen" "$max_age" <<'PY'
import re, sys, datetime
log, stop, back, outage, seen, max_age = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
line_re = re.compile(r'\[(\S+) [^\]]+\] "GET (\S+) [^"]*" (\d{3}) \d+ rt=([\d.]+) urt=([\d.]+|-)')
unread_books = None
rows = []
for line in open(log):
    m = line_re.search(line)
    if not m:
        continue
    t = datetime.datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
    rows.append((t, m.group(2), int(m.group(3)), float(m.group(4)) * 1000,
                 float(m.group(5)) * 1000 if m.group(5) != '-' else -1.0))
# whole seconds in the log: a request logged in second S ended in [S, S+1)
during = [r for r in rows if r[0] >= int(stop) and r[0] + 1 <= back]
later = [r for r in during if r[0] >= int(stop) + 2 + 1]   # from 2 s into the outage, whole seconds after it
# read-before and unread are told apart by the book id: the unread chapters are of the last 5 books
def unread(u):
    m = re.match(r'/api/v1/books/(\d+)/chapters/', u)
    return m is not None and int(m.group(1)) in UNREAD
ids = sorted({int(re.match(r'/api/v1/books/(\d+)/', r[1]).group(1)) for r in rows if r[1].startswith('/api/v1/books/')})
UNREAD = set(ids[-5:]) if len(ids) >= 10 else set()
rb = [r for r in during if not unread(r[1])]
ok = sum(1 for r in rb if r[2] == 200)
print(f"RESULT outage {outage} s: read-before content answered 200 {ok} of {len(rb)} ({100.0 * ok / max(len(rb), 1):.3f} %)")
ur = [r for r in later if unread(r[1])]
st = {}
for r in ur:
    st[r[2]] = st.get(r[2], 0) + 1
lat = sorted(r[3] for r in ur if r[2] == 503)
def pct(p):
    return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] if lat else float('nan')
le5 = sum(1 for x in lat if x <= 5.0)
ulat = sorted(r[4] for r in ur if r[2] == 503)
hits = sorted(r[3] for r in during if not unread(r[1]) and r[2] == 200)
def pc(v, p):
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))] if v else float('nan')
ver = sorted(r[3] for r in later if r[1] == '/api/v1/version' and r[2] == 200)
print(f"RESULT side by side from 2 s into the outage (nginx request time): the unread content's 503 p50 {pc(lat, 50):.0f} ms "
      f"p99 {pc(lat, 99):.0f} ms (upstream part p50 {pc(ulat, 50):.0f} p99 {pc(ulat, 99):.0f}); /api/v1/version, the daemon's "
      f"cheapest answer, p50 {pc(ver, 50):.0f} ms p99 {pc(ver, 99):.0f} ms ({len(ver)} requests); nginx's cache hits p50 "
      f"{pc(hits, 50):.0f} ms p99 {pc(hits, 99):.0f} ms")
print(f"RESULT unread content from 2 s into the outage: {len(ur)} requests, statuses {dict(sorted(st.items()))}; "
      f"503 latency (nginx request time) p50 {pct(50):.0f} ms p95 {pct(95):.0f} ms p99 {pct(99):.0f} ms max {lat[-1] if lat else 0:.0f} ms, "
      f"{100.0 * le5 / max(len(lat), 1):.1f} % <= 5 ms")
after = sorted(r for r in rows if r[0] >= int(back) and unread(r[1]) and r[2] == 200)
rec = (after[0][0] - back) if after else float('nan')
print(f"RESULT database back: unread content 200 again within {max(rec, 0) + 1:.0f} s (log seconds); "
      f"a passage changed right after served new through the cache after {seen} ms (bound: content_max_age_s {max_age} s + 2 s)")
PY
