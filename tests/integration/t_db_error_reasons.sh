#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_db_error_reasons.sh - the breaker's reason names the class of the failure (issue 6, defect 10):
# a host name that does not resolve, a certificate that fails verify-full (wrong CA; a host name
# the certificate does not carry) and a refused port give different reasons in /readyz and the
# log, with the class names `neonpoolctl check-db` prints.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require nginx curl openssl

np_dns_setup "127.0.0.1 db.neonpool.test" "127.0.0.1 other.neonpool.test"
echo nxdomain >"$NP_TMP/dns.mode"
np_db_prepare
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=other-ca \
	-keyout "$NP_TMP/other.key" -out "$NP_TMP/other-ca.crt" >"$NP_TMP/out/openssl.out" 2>&1 ||
	np_fail "openssl: $(cat "$NP_TMP/out/openssl.out")"
refused_port=$(np_free_port)

# case NAME URL EXPECT_REASON_RE EXPECT_CLASS: the reason in /readyz and the status, the class in
# the log and in check-db's JSON
declare -A seen=()
# log_has SKIP RE: a line after the first SKIP lines of the daemon's log matches RE
log_has() { tail -n +$(($1 + 1)) "$NP_DAEMON_LOG" | grep -qE "$2"; }
run_case() {
	local name=$1 url=$2 re=$3 cls=$4 reason="" i
	local lines
	lines=$(cat "$NP_TMP/neonpoold.log" 2>/dev/null | wc -l)
	np_start_db_daemon workers=2 budget=2 min_warm=1 connect_timeout_ms=$((2000 * NP_TIMEOUT_SCALE)) breaker_probe_ms=300 \
		database_url="$url"
	for i in $(seq 1 $((60 * NP_TIMEOUT_SCALE))); do
		[ "$(np_status_json 'd["endpoints"]["primary"]["breaker"]')" = open ] && break
		sleep 0.2
	done
	sleep 0.5 # a probe after the opening
	reason=$(np_status_json 'd["endpoints"]["primary"]["reason"]')
	np_curl /readyz
	np_log "$name: readyz $NP_STATUS $(cat "$NP_TMP/http.body")"
	np_expect_eq "$name: /readyz 503" 503 "$NP_STATUS"
	np_expect "$name: /readyz reason matches '$re'" grep -qE "$re" "$NP_TMP/http.body"
	np_expect "$name: the log names class $cls" log_has "$lines" "kind=$cls( |\$)"
	np_write_conf "$NP_TMP/ctl_$name.conf" "database_url=$url" "database_password_file=$NP_TMP/db.password"
	"$NP_TMP/nswrap.sh" "$NEONPOOLCTL" -c "$NP_TMP/ctl_$name.conf" check-db --json >"$NP_TMP/out/check_$name.json" 2>&1
	np_expect_eq "$name: check-db class" "$cls" "$(np_json_get "$NP_TMP/out/check_$name.json" 'd["error"]["class"]')"
	seen[$name]=$reason
	echo "RESULT $name: reason \"$reason\""
	np_stop_daemon TERM || np_fail "daemon $name did not stop"
	np_stop_front "$NP_NGINX_PID"
}

run_case dns "$(np_db_url_host nosuch.neonpool.test)" 'DNS' dns
run_case tls_ca "$(np_db_url_host db.neonpool.test "sslmode=verify-full&sslrootcert=$NP_TMP/other-ca.crt")" \
	'TLS certificate' tls_verify
run_case tls_name "$(np_db_url_host other.neonpool.test)" 'TLS certificate' tls_verify
run_case refused "postgresql://neonpool@127.0.0.1:$refused_port/neonpool?sslmode=verify-full&sslrootcert=$NP_PG_CA" \
	'refused' refused
np_expect "DNS and TLS reasons differ" test "${seen[dns]}" != "${seen[tls_ca]}"
np_expect "TLS and refused reasons differ" test "${seen[tls_ca]}" != "${seen[refused]}"
np_finish
