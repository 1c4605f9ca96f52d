#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# upgrade_schema.sh - issue 18, acceptance 3: the build of the release before binary upgrades
# (NP_PREV_RELEASE, default b95f16d: the last commit of round 2, migrations 001-004) serves every
# read and write route under load behind nginx while this tree's `neonpoolctl migrate` applies
# this release's migrations; then the move to this tree's build: 0 errors throughout.
#
# The release before cannot take SIGUSR2 (binary upgrades are this issue's), so its move is the
# one it allows: this build started beside it on sockets of its own (each with half the budget:
# the two together never above it), nginx's upstreams naming this build first and the previous one
# as the backup, then the previous daemon stopped gracefully. Every later release moves with
# SIGUSR2 (bench/upgrade.sh).
#
# Phases (the load labels each request with one): old-schema (the previous build on its own
# schema), migrating, migrated (the previous build on this release's schema), switched (this build
# started beside it: nginx sends it every new request), new (the previous daemon stopped). Prints, per phase, each
# route's good and bad answers; the acknowledged writes stored exactly once; the answers of asks
# stored complete; the server connections sampled every 50 ms against the budget.
#
# The previous build is made once from `git archive` into NP_PREV_BUILD_DIR (default
# _prev/<commit> in the tree, ignored by git). Not in the default suite (the build takes ~2 min of
# both cores). Usage: bench/upgrade_schema.sh [PHASE_S]   (default 8)
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/dblib.sh"
np_require nginx curl git tar

phase_s=${1:-8}
prev=${NP_PREV_RELEASE:-b95f16d}
prev_dir=${NP_PREV_BUILD_DIR:-$np_top/_prev/$prev}
budget_each=2

# --- the previous release's build ------------------------------------------------------------
if [ ! -x "$prev_dir/src/neonpoold" ] || [ ! -x "$prev_dir/src/neonpoolctl" ]; then
	git -C "$np_top" cat-file -e "$prev^{commit}" 2>/dev/null ||
		np_skip "commit $prev is not in this clone's history (a shallow clone?): set NP_PREV_RELEASE"
	rm -rf "$prev_dir" && mkdir -p "$prev_dir"
	git -C "$np_top" archive "$prev" | tar -x -C "$prev_dir" || np_fail "git archive $prev failed"
	np_log "building $prev in $prev_dir"
	(cd "$prev_dir" && ./autogen.sh && ./configure && make -j2 src/neonpoold src/neonpoolctl) \
		>"$NP_TMP/out/prev-build.out" 2>&1 || np_fail "the build of $prev failed: $(tail -n 20 "$NP_TMP/out/prev-build.out")"
fi
PREV_D=$prev_dir/src/neonpoold PREV_CTL=$prev_dir/src/neonpoolctl
ver_prev=$("$PREV_D" -v | awk '{print $2}')
echo "RESULT builds: previous $prev ($ver_prev, migrations $(ls "$prev_dir/sql" | grep -c '^[0-9].*\.sql$')), this tree (migrations $(ls "$np_top/sql" | grep -c '^[0-9].*\.sql$'))"

# --- the database as the previous release left it ----------------------------------------------
np_start_pg
printf '%s\n' "$NP_TEST_PASSWORD" >"$NP_TMP/db.password"
chmod 0644 "$NP_TMP/db.password"
np_secret_exempt "$NP_TMP/db.password"
NP_CTL_CONF=$NP_TMP/ctl.conf
np_write_conf "$NP_CTL_CONF" "database_url=$(np_db_url)" "database_password_file=$NP_TMP/db.password"
"$PREV_CTL" -c "$NP_CTL_CONF" migrate --dir "$prev_dir/sql" >"$NP_TMP/out/migrate-prev.out" 2>&1 ||
	np_fail "the previous release's migrate failed: $(cat "$NP_TMP/out/migrate-prev.out")"
"$PREV_CTL" -c "$NP_CTL_CONF" seed --books 5 --chapters 10 --passages 10 >"$NP_TMP/out/seed.out" 2>&1 ||
	np_fail "seed failed: $(cat "$NP_TMP/out/seed.out")"
read -r b0 b1 p0 p1 < <(np_psql_super -d "$NP_PG_DB" -At -F ' ' -c \
	"SELECT min(id), max(id), (SELECT min(id) FROM passages), (SELECT max(id) FROM passages) FROM books")

# --- the previous build serving, nginx in front ---------------------------------------------------
# this build reports another version (its version string patched in place, same length), so that
# the answers tell the two apart
mkdir -p "$NP_TMP/bin"
ver_new=$(np_other_version "$ver_prev")
np_patch_version "$NEONPOOLD" "$NP_TMP/bin/neonpoold" "$("$NEONPOOLD" -v | awk '{print $2}')" "$ver_new"
common=(database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" log_level=info workers=4
	budget=$budget_each min_warm=1 acquire_timeout_ms=5000 graceful_timeout_ms=15000 shutdown_timeout_ms=15000)
NEONPOOLD=$PREV_D
np_start_daemon --name prev "${common[@]}" status_file="$NP_TMP/status-prev" control_listen="$NP_TMP/control-prev.sock"
prev_pid=$NP_DAEMON_PID
np_start_nginx "unix:$NP_TMP/prev.sock" "" nginx "unix:$NP_TMP/control-prev.sock"
# each upstream names this build's socket first (max_fails=0: never marked failed) and the previous
# build's as its backup: until this build listens, the connect to its socket fails at once and the
# request goes to the backup (nothing was sent: POSTs are passed on too); from the moment it
# listens every new request goes to it, and the previous build only finishes what it accepted.
# nginx is never reloaded under the load (a reload closes idle keep-alive connections: a client
# racing that close sees its connection end without an answer)
sed -i -e "s|server unix:$NP_TMP/prev.sock;|server unix:$NP_TMP/new.sock max_fails=0; server unix:$NP_TMP/prev.sock backup;|" \
	-e "s|server unix:$NP_TMP/control-prev.sock;|server unix:$NP_TMP/control-new.sock max_fails=0; server unix:$NP_TMP/control-prev.sock backup;|" \
	"$NP_TMP/nginx/neonpool.conf"
sed -i -e "/upstream neonpool_ask/,/}/ s|server unix:$NP_TMP/new.sock max_fails=0;|server unix:$NP_TMP/ask-new.sock max_fails=0;|" "$NP_TMP/nginx/neonpool.conf"
grep -q "fastcgi_next_upstream" "$NP_TMP/nginx/neonpool.conf" || np_fail "the nginx snippet lost fastcgi_next_upstream"
nginx -t -q -p "$NP_TMP/nginx" -e "$NP_TMP/nginx/error.log" -c "$NP_TMP/nginx/nginx.conf" >"$NP_TMP/out/nginx-t.out" 2>&1 ||
	np_fail "nginx -t: $(cat "$NP_TMP/out/nginx-t.out")"
kill -HUP "$NP_NGINX_PID"
sleep 1
np_wait_db_ready 20

np_sampler_start
phase_file=$NP_TMP/phase
echo old-schema >"$phase_file"
"$NP_PYTHON" "$np_top/tests/tools/route_load.py" "$NP_HTTP_PORT" "$NP_TMP/stop" "$NP_TMP/out/load.json" \
	--threads 8 --max-s $((phase_s * 6 + 60)) --books "$b0" "$b1" --passages "$p0" "$p1" --phase-file "$phase_file" \
	>"$NP_TMP/out/load.out" 2>&1 &
load_pid=$!
sleep "$phase_s"

# --- this release's migrations while the previous build serves ----------------------------------
echo migrating >"$phase_file"
np_now_ms; t0=$NP_NOW
"$NEONPOOLCTL" -c "$NP_CTL_CONF" migrate --dir "$np_top/sql" >"$NP_TMP/out/migrate-new.out" 2>&1 ||
	np_fail "this release's migrate failed: $(cat "$NP_TMP/out/migrate-new.out")"
np_now_ms
echo migrated >"$phase_file"
echo "RESULT migrate under load: $(grep -c '^applied' "$NP_TMP/out/migrate-new.out") migrations applied in one transaction, $((NP_NOW - t0)) ms ($(grep '^applied' "$NP_TMP/out/migrate-new.out" | sed 's/^applied //' | tr '\n' ' '))"
sleep "$phase_s"

# --- the move: this build beside it, then the previous one stopped gracefully --------------------
NEONPOOLD=$NP_TMP/bin/neonpoold
echo switched >"$phase_file"   # it accepts before np_start_daemon has seen it ready
np_start_daemon --name new "${common[@]}" status_file="$NP_TMP/status-new" control_listen="$NP_TMP/control-new.sock" \
	ask_listen="$NP_TMP/ask-new.sock"
sleep "$phase_s"
np_now_ms; t_quit=$NP_NOW
kill -QUIT "$prev_pid"   # graceful: its workers finish what they accepted
np_wait_gone "$prev_pid" 30000 || np_fail "the previous daemon did not stop within 30 s"
np_now_ms; stop_ms=$((NP_NOW - t_quit))
echo new >"$phase_file"
sleep "$phase_s"
touch "$NP_TMP/stop"
wait "$load_pid"
read -r max_conns samples < <(np_sampler_stop)
echo "RESULT move: this build ($ver_new) started beside the previous one ($ver_prev), which was stopped gracefully $phase_s s later (its stop took $stop_ms ms)"

# --- figures and checks -----------------------------------------------------------------------
"$NP_PYTHON" - "$NP_TMP/out/load.json" <<'PY' >"$NP_TMP/out/figures.txt"
import json, sys
d = json.load(open(sys.argv[1]))
for ph in ["old-schema", "migrating", "migrated", "switched", "new"]:
    routes = d["by_phase"].get(ph, {})
    good = sum(v[0] for v in routes.values()); bad = sum(v[1] for v in routes.values())
    print(f"RESULT phase {ph}: {good} good, {bad} bad; versions {sorted(d['versions'].get(ph, []))}; " +
          ", ".join(f"{r} {v[0]}/{v[0] + v[1]}" for r, v in sorted(routes.items())))
print(f"TOTAL {d['requests']} {d['bad']} {len(d['messages'])}")
for s in d["bad_samples"][:10]:
    print("BAD", json.dumps(s)[:400])
PY
grep -v '^TOTAL' "$NP_TMP/out/figures.txt"
read -r _ total bad acked < <(grep '^TOTAL' "$NP_TMP/out/figures.txt")
stored=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT count(*) FROM messages WHERE role = 'user' AND content LIKE 'note % of thread %'")
dup=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT count(*) FROM (SELECT content, session_id FROM messages WHERE role = 'user' AND content LIKE 'note % of thread %' GROUP BY 1, 2 HAVING count(*) > 1) x")
asks=$(np_psql_super -d "$NP_PG_DB" -At -c "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM messages WHERE role = 'assistant' GROUP BY 1) x")
echo "RESULT writes: $acked acknowledged, $stored stored, $dup stored twice; answers stored by status: $asks"
echo "RESULT server connections: max $max_conns sampled over $samples samples (budget $budget_each each, $((2 * budget_each)) for the two together)"
np_expect_eq "every request of every phase answered as expected" "0 bad" "$bad bad"
np_expect "requests in every phase" test "$(grep -c '^RESULT phase .*: [1-9][0-9]* good' "$NP_TMP/out/figures.txt")" -eq 5
np_expect_eq "every acknowledged write stored exactly once" "$acked 0" "$stored $dup"
np_expect_eq "every answer stored complete" "complete" "$(echo "$asks" | sed 's/ [0-9]*//g')"
np_expect "the server connections never above the two budgets" test "$max_conns" -le $((2 * budget_each))
vers() { grep "^RESULT phase $1:" "$NP_TMP/out/figures.txt" | sed 's/.*versions \(\[[^]]*\]\).*/\1/'; }
np_expect_eq "the previous build answered before and after the migrations" "['$ver_prev'] ['$ver_prev']" "$(vers old-schema) $(vers migrated)"
np_expect_eq "this build answered once it listened, and alone after the previous one stopped" "['$ver_new'] ['$ver_new']" \
	"$(vers switched | sed "s/'$ver_prev', //") $(vers new)"
np_finish
