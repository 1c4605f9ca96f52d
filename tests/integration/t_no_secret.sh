#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_no_secret.sh - the database password never reaches a log, an error message or the CLI's output.
# (Every test's teardown greps its temp dir for the password too: np_check_no_secret in lib.sh.)
. "$(dirname "$0")/lib.sh"
np_require cgi-fcgi

np_start_pg
pw=$NP_TEST_PASSWORD
# absent FILE DESC: the password is not in FILE (the teardown re-checks every file).
absent() { np_expect "$2: no password in the output" bash -c "! grep -qF -- '$pw' '$1'"; }

# 1. A running daemon with the password in database_url: start, requests, reload, log reopen.
np_start_daemon workers=2 log_level=debug
for i in 1 2 3; do np_fcgi GET /healthz >/dev/null; done
kill -HUP "$NP_DAEMON_PID"; sleep 0.3
kill -USR1 "$NP_DAEMON_PID"; sleep 0.2
np_fcgi GET /api/v1/version >/dev/null
np_expect_eq "daemon answers after reload" 200 "$NP_STATUS"
np_expect "the start line shows the database, password masked" grep -q 'password=\*\*\*\*\*\*\*\*' "$NP_DAEMON_LOG"
absent "$NP_DAEMON_LOG" "daemon log (start, requests, reload, reopen)"
np_stop_daemon QUIT >/dev/null
absent "$NP_DAEMON_LOG" "daemon log (stop)"

# 2. neonpoolctl check-config prints the effective configuration: masked.
np_capture ctl-check "$NEONPOOLCTL" -c "$NP_DAEMON_CONF" check-config
np_expect_eq "neonpoolctl check-config: exit status" 0 "$NP_RC"
np_expect "neonpoolctl check-config: database_url shown masked" grep -q 'database_url = .*\*\*\*\*\*\*\*\*' "$NP_TMP/out/ctl-check.out"
absent "$NP_TMP/out/ctl-check.out" "neonpoolctl check-config"

# 3. Broken connection strings that contain the password: the error names the key, not the secret.
bad=(
	"postgresql://neonpool:$pw@127.0.0.1:99999/neonpool?sslmode=require"          # bad port
	"host=127.0.0.1 port=0 user=neonpool password=$pw dbname=neonpool"            # bad port, key=value
	"postgresql://neonpool:$pw@127.0.0.1:$NP_PG_PORT/neonpool?no_such_option=1"  # unknown option
	"host=127.0.0.1 user=neonpool password='$pw dbname=neonpool"                  # unterminated quote
	"postgresql://neonpool:$pw@[::1/neonpool"                                     # broken URI
)
i=0
for url in "${bad[@]}"; do
	i=$((i + 1))
	f=$NP_TMP/bad$i.conf
	np_write_conf "$f" workers=1 listen="$NP_TMP/bad$i.sock" database_url="$url"
	np_capture "bad$i-t" "$NEONPOOLD" -t -c "$f"
	np_expect_eq "bad URL $i: neonpoold -t exit status" 1 "$NP_RC"
	np_expect "bad URL $i: error names $f:3 (its line) and key 'database_url'" grep -qF "$f:3: key 'database_url'" "$NP_TMP/out/bad$i-t.out"
	absent "$NP_TMP/out/bad$i-t.out" "bad URL $i: neonpoold -t"
	printf '    %s\n' "$(head -n 1 "$NP_TMP/out/bad$i-t.out")"
	np_capture "bad$i-start" timeout 10 "$NEONPOOLD" -c "$f"
	np_expect_eq "bad URL $i: neonpoold start exit status (78, EX_CONFIG)" 78 "$NP_RC"
	absent "$NP_TMP/out/bad$i-start.out" "bad URL $i: neonpoold start"
	np_capture "bad$i-ctl" "$NEONPOOLCTL" -c "$f" check-config
	absent "$NP_TMP/out/bad$i-ctl.out" "bad URL $i: neonpoolctl check-config"
done

# 4. The same through the DATABASE_URL environment variable (database_url unset).
np_write_conf "$NP_TMP/env.conf" workers=1 listen="$NP_TMP/env.sock"
np_capture env-t env DATABASE_URL="${bad[0]}" "$NEONPOOLD" -t -c "$NP_TMP/env.conf"
np_expect "DATABASE_URL with a bad port: refused ($NP_RC)" test "$NP_RC" -ne 0
absent "$NP_TMP/out/env-t.out" "DATABASE_URL with a bad port"
np_capture env-ok env DATABASE_URL="$NP_DATABASE_URL" "$NEONPOOLCTL" -c "$NP_TMP/env.conf" check-config
absent "$NP_TMP/out/env-ok.out" "neonpoolctl check-config with DATABASE_URL"

# 5. The password in database_password_file instead of the URL.
printf '%s\n' "$pw" >"$NP_TMP/db-password"; chmod 600 "$NP_TMP/db-password"
np_secret_exempt "$NP_TMP/db-password"
np_start_daemon --name pwfile workers=1 \
	database_url="postgresql://neonpool@127.0.0.1:$NP_PG_PORT/neonpool?sslmode=require" \
	database_password_file="$NP_TMP/db-password"
np_capture pwfile-ctl "$NEONPOOLCTL" -c "$NP_DAEMON_CONF" check-config
absent "$NP_TMP/out/pwfile-ctl.out" "neonpoolctl check-config with database_password_file"
np_finish
