#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_search_relevance.sh - search on the PostgreSQL manual (neonpoolctl import): "vacuum freeze" ranks a passage of Routine Vacuuming in the top 3, "savepoint rollback" one of a SAVEPOINT or transaction chapter in the top 3; the ranking uses the GIN index on the whole manual.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl nginx

manual=${NP_MANUAL_DIR:-/usr/share/doc/postgresql-doc-15/html}
[ -f "$manual/index.html" ] || np_skip "no PostgreSQL manual at $manual (Debian package postgresql-doc-15)"

NP_SEED_BOOKS=1
np_db_prepare
# auto_explain logs the plan of every statement the daemon runs, with its real timings
np_psql_super -d neonpool >/dev/null <<'SQL' || np_fail "auto_explain setup failed"
DELETE FROM books WHERE slug LIKE 'sample-book-%';
ALTER DATABASE neonpool SET session_preload_libraries = 'auto_explain';
ALTER DATABASE neonpool SET auto_explain.log_min_duration = 0;
ALTER DATABASE neonpool SET auto_explain.log_analyze = on;
ALTER DATABASE neonpool SET auto_explain.log_buffers = on;
SQL
np_start_daemon database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" \
	status_file="$NP_TMP/status" control_listen="$NP_TMP/control.sock" workers=2 budget=1 min_warm=1
np_start_nginx "unix:$NP_TMP/neonpoold.sock" "" nginx "unix:$NP_TMP/control.sock"
np_wait_db_ready
"$NEONPOOLCTL" -c "$NP_CTL_CONF" import "$manual" >"$NP_TMP/out/import.out" 2>&1 ||
	np_fail "import failed: $(tail -n 5 "$NP_TMP/out/import.out")"
np_psql_super -d neonpool -c "ANALYZE" >/dev/null
np_log "imported: $(np_psql_super -d neonpool -At -c "SELECT count(*) || ' passages' FROM passages")"

# top3 Q: the chapter titles of the first three hits, one per line
top3() {
	local enc
	enc=$("$NP_PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote_plus(sys.argv[1]))' "$1")
	np_curl "/api/v1/search?q=$enc&limit=3"
	[ "$NP_STATUS" = 200 ] || np_fail "search '$1': $NP_STATUS $(cat "$NP_TMP/http.body")"
	np_json_get "$NP_TMP/http.body" '"\n".join(h["chapter"]["title"] for h in d["results"])' | tee -a "$NP_TMP/out/top3.txt"
}

titles=$(top3 "vacuum freeze")
np_log "vacuum freeze: $(echo "$titles" | paste -sd '|')"
np_expect "'vacuum freeze': a passage of Routine Vacuuming in the top 3 ($(echo "$titles" | paste -sd '|'))" \
	grep -q "Routine Vacuuming" <<<"$titles"

titles=$(top3 "savepoint rollback")
np_log "savepoint rollback: $(echo "$titles" | paste -sd '|')"
np_expect "'savepoint rollback': a SAVEPOINT or transaction chapter in the top 3 ($(echo "$titles" | paste -sd '|'))" \
	grep -Eiq "savepoint|transaction" <<<"$titles"

# the plan on the whole manual, as the daemon ran it (auto_explain in the server's log): the ranking
# reads the GIN index, not every passage
top3 "vacuum freeze" >/dev/null
# the server writes its log a little later (0.2 s of sleep was not enough under load): wait for it
for _ in $(seq 1 100); do
	# (a plan ends where the next log line begins: another statement's plan too, such as the content
	# generation's that a worker reads right after a request; taking that one failed the test)
	awk '/duration: .* plan:/ { if (found) last = buf; buf = ""; keep = 1; found = 0 } keep { buf = buf $0 "\n" }
	     /Query Text: WITH q AS MATERIALIZED \(SELECT websearch_to_tsquery/ { found = 1 }
	     found && /^[0-9]{4}-/ && !/duration: .* plan:/ { if (buf != "") last = buf; found = 0; keep = 0 }
	     END { if (found) last = buf; printf "%s", last }' "$NP_TMP/pg/postgresql.log" >"$NP_TMP/out/plan.txt"
	grep -q "websearch_to_tsquery" "$NP_TMP/out/plan.txt" && break
	sleep 0.1
done
np_expect "auto_explain logged the search's plan" grep -q "websearch_to_tsquery" "$NP_TMP/out/plan.txt"
np_expect "the ranking scans the GIN index passages_tsv_idx" grep -q "Bitmap Index Scan on passages_tsv_idx" "$NP_TMP/out/plan.txt"
np_expect "and no passage sequentially" bash -c "! grep -q 'Seq Scan on passages' '$NP_TMP/out/plan.txt'"
echo "RESULT 'vacuum freeze' on the whole manual ($(np_psql_super -d neonpool -At -c "SELECT count(*) FROM passages") passages), the daemon's statement:" \
	"$(grep -o 'duration: [0-9.]* ms' "$NP_TMP/out/plan.txt" | head -n 1)"
np_finish
