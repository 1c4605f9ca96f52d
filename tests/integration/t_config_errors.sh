#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_config_errors.sh - a bad config (unknown key, wrong type, out of range, syntax, an ask pool that cannot reach listen) is refused with FILE:LINE and the key, by -t, at start and by neonpoolctl.
. "$(dirname "$0")/lib.sh"
[ -x "$NEONPOOLD" ] || np_fail "neonpoold not built: $NEONPOOLD"
[ -x "$NEONPOOLCTL" ] || np_fail "neonpoolctl not built: $NEONPOOLCTL"

d=$NP_TMP
printf '# unknown key on line 3\nworkers = 2;\nworkerz = 4;\nlisten = "%s/a.sock";\n' "$d" >"$d/unknown.conf"
printf 'listen = "%s/b.sock";\n\nworkers = "four";\n' "$d" >"$d/badtype.conf"
printf 'listen = "%s/c.sock";\nworkers = 9999;\n' "$d" >"$d/range.conf"
printf 'workers = 2;\nlog_level = "info";\nlisten = = "%s/d.sock";\n' "$d" >"$d/syntax.conf"
printf 'workers = 2;\nlisten = "%s/e.sock";\nlisten_allowed_clients = "127.0.0.1, localhost";\n' "$d" >"$d/e-allowed.conf"
printf 'workers = 2;\nlisten = "%s/ok.sock";\nlog_level = "debug";\nmax_body_bytes = 4096;\n' "$d" >"$d/valid.conf"
# ask workers reach the main socket for their transactions: not when it is stdin, nor from an
# address listen_allowed_clients refuses (the port is never bound: the file is refused first)
printf 'workers = 2;\nlisten = "stdin";\nask_listen = "%s/f.sock";\n' "$d" >"$d/f-ask-stdin.conf"
printf 'listen = "127.0.0.1:%s";\nask_listen = "%s/g.sock";\nlisten_allowed_clients = "10.0.0.0/8";\n' \
	"$(np_free_port)" "$d" >"$d/g-ask-acl.conf"

# case FILE LINE KEY (KEY "" for a syntax error: only FILE:LINE is required)
check_bad() {
	local f=$d/$1 line=$2 key=$3 want
	want="$f:$line:"
	np_capture "t-$1" "$NEONPOOLD" -t -c "$f"
	np_expect_eq "neonpoold -t -c $1: exit status" 1 "$NP_RC"
	np_expect "neonpoold -t -c $1: says $want" grep -qF "$want" "$NP_TMP/out/t-$1.out"
	[ -n "$key" ] && np_expect "neonpoold -t -c $1: names key '$key'" grep -qF "key '$key'" "$NP_TMP/out/t-$1.out"
	printf '    %s\n' "$(head -n 1 "$NP_TMP/out/t-$1.out")"

	np_capture "start-$1" timeout 10 "$NEONPOOLD" -c "$f"
	np_expect "neonpoold -c $1 (start): fails ($NP_RC)" test "$NP_RC" -ne 0 -a "$NP_RC" -ne 124
	np_expect_eq "neonpoold -c $1 (start): exit status 78 (EX_CONFIG)" 78 "$NP_RC"
	np_expect "neonpoold -c $1 (start): says $want" grep -qF "$want" "$NP_TMP/out/start-$1.out"
	[ -n "$key" ] && np_expect "neonpoold -c $1 (start): names key '$key'" grep -qF "key '$key'" "$NP_TMP/out/start-$1.out"
	np_expect "neonpoold -c $1 (start): left no socket" test ! -e "$d/${1:0:1}.sock"

	np_capture "ctl-$1" "$NEONPOOLCTL" -c "$f" check-config
	np_expect "neonpoolctl check-config $1: fails ($NP_RC)" test "$NP_RC" -ne 0
	np_expect "neonpoolctl check-config $1: says $want" grep -qF "$want" "$NP_TMP/out/ctl-$1.out"
	[ -n "$key" ] && np_expect "neonpoolctl check-config $1: names key '$key'" grep -qF "key '$key'" "$NP_TMP/out/ctl-$1.out"
}

check_bad unknown.conf 3 workerz
check_bad badtype.conf 3 workers
check_bad range.conf 2 workers
check_bad syntax.conf 3 ""
check_bad e-allowed.conf 3 listen_allowed_clients
check_bad f-ask-stdin.conf 3 ask_listen
np_expect "f-ask-stdin.conf: says why (listen = stdin)" grep -qF 'listen = "stdin"' "$NP_TMP/out/t-f-ask-stdin.conf.out"
check_bad g-ask-acl.conf 3 listen_allowed_clients
np_expect "g-ask-acl.conf: names the address to allow (127.0.0.1)" grep -qF 'add 127.0.0.1' "$NP_TMP/out/t-g-ask-acl.conf.out"

np_capture t-valid "$NEONPOOLD" -t -c "$d/valid.conf"
np_expect_eq "neonpoold -t -c valid.conf: exit status" 0 "$NP_RC"
np_capture ctl-valid "$NEONPOOLCTL" -c "$d/valid.conf" check-config
np_expect_eq "neonpoolctl check-config valid.conf: exit status" 0 "$NP_RC"
np_capture t-missing "$NEONPOOLD" -t -c "$d/no-such.conf"
np_expect_eq "neonpoold -t -c no-such.conf: exit status" 1 "$NP_RC"
np_expect "neonpoold -t -c no-such.conf: names the file" grep -qF "$d/no-such.conf" "$NP_TMP/out/t-missing.out"

# A running daemon whose file turns bad: SIGHUP is refused with FILE:LINE, the old config
# stays and requests keep being answered; a change of a restart-only key is refused too.
np_require cgi-fcgi
np_start_daemon --name running workers=2
conf=$NP_DAEMON_CONF
cp "$conf" "$d/running.conf.good"
sed 's/^workers = 2;/workers = "four";/' "$d/running.conf.good" >"$conf"
# wait_log N: until the log holds N 'reload rejected' lines (the master reads the file in its own time)
wait_log() { for _ in $(seq 100); do [ "$(grep -c 'reload rejected' "$NP_DAEMON_LOG")" -ge "$1" ] && return; sleep 0.1; done; }
kill -HUP "$NP_DAEMON_PID"
np_fcgi GET /healthz >/dev/null
np_expect_eq "bad file + SIGHUP: still answers" 200 "$NP_STATUS"
wait_log 1
np_expect "bad file + SIGHUP: 'reload rejected' with $conf:LINE and the key" \
	grep -qE "reload rejected.*$conf:[0-9]+: key 'workers'" "$NP_DAEMON_LOG"
np_expect_eq "bad file + SIGHUP: workers unchanged" 2 "$(np_child_pids "$NP_DAEMON_PID" np-worker | wc -w)"
sed "s|^listen = .*|listen = \"$d/elsewhere.sock\";|" "$d/running.conf.good" >"$conf"
kill -HUP "$NP_DAEMON_PID"
wait_log 2
np_fcgi GET /healthz >/dev/null
np_expect_eq "listen changed + SIGHUP: still answers on the old socket" 200 "$NP_STATUS"
np_expect "listen changed + SIGHUP: refused, naming the key" grep -qE "reload rejected.*listen" "$NP_DAEMON_LOG"
sed 's/^workers = 2;/workers = 3;/' "$d/running.conf.good" >"$conf"
old_workers=$(np_child_pids "$NP_DAEMON_PID" np-worker)
kill -HUP "$NP_DAEMON_PID"
# until the old generation has gone and the new one is up (a fixed 0.5 s was short under load)
for _ in $(seq 100); do
	now=$(np_child_pids "$NP_DAEMON_PID" np-worker)
	left=0; for p in $old_workers; do grep -qw "$p" <<<"$now" && left=$((left + 1)); done
	[ "$left" = 0 ] && [ "$(wc -w <<<"$now")" = 3 ] && break
	sleep 0.1
done
np_expect_eq "fixed file + SIGHUP: reloaded, 3 workers" 3 "$(np_child_pids "$NP_DAEMON_PID" np-worker | wc -w)"

np_capture version "$NEONPOOLD" -v
np_expect "neonpoold -v: prints a version ($(cat "$NP_TMP/out/version.out"))" grep -qE '[0-9]+\.[0-9]+' "$NP_TMP/out/version.out"
np_capture ctl-version "$NEONPOOLCTL" --version
np_expect "neonpoolctl --version: exit 0" test "$NP_RC" -eq 0
np_capture ctl-help "$NEONPOOLCTL" --help
np_expect "neonpoolctl --help: exit 0 and lists check-config" bash -c "[ $NP_RC -eq 0 ] && grep -q check-config '$NP_TMP/out/ctl-help.out'"
np_finish
