#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_upgrade_systemd.sh - a binary upgrade under systemd's semantics: the sockets come from socket
# activation (a stand-in holds them), NOTIFY_SOCKET is set. Two upgrades under a paced load: the
# listener sees MAINPID=<new master> with READY=1 from the master that is the main process then
# (accepted under NotifyAccess=main as under the unit's NotifyAccess=all), the old master sends
# nothing after it (no STOPPING=1, which systemd would take as the service's), the new master's
# datagrams follow, none before (NotifyAccess=main would drop them); no failed request; the socket files stay.
# np: shared-pg
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require wrk nginx curl
: "${NP_WRK_DELAY_MS:=100}"; export NP_WRK_DELAY_MS

np_db_prepare
np_wrk_script
main=$NP_TMP/act.sock control=$NP_TMP/act-control.sock
conf=$(np_daemon_conf act listen="$main" control_listen="$control" workers=3 min_warm=2 budget=3 \
	database_url="$(np_db_url)" database_password_file="$NP_TMP/db.password" status_file="$NP_TMP/status" \
	acquire_timeout_ms=$((3000 * NP_TIMEOUT_SCALE)) graceful_timeout_ms=$((5000 * NP_TIMEOUT_SCALE)))
notify=$NP_TMP/act.notify
"$NP_PYTHON" "$np_top/tests/integration/notify_listen.py" "@np-notify-up-$$" "$notify" >"$NP_TMP/out/listen.log" 2>&1 &
NP_FRONT_PIDS+=("$!")
for _ in $(seq 100); do [ -s "$notify" ] && break; sleep 0.05; done
NOTIFY_SOCKET=@np-notify-up-$$ "$NP_PYTHON" "$np_top/tests/integration/sd_activate.py" "$NEONPOOLD" "$conf" "$main" \
	"$control" 1 0 "$NP_TMP/act.log" >"$NP_TMP/out/activate.out" 2>&1 &
act_pid=$!
NP_FRONT_PIDS+=("$act_pid")
for _ in $(seq 200); do grep -q '^running ' "$NP_TMP/out/activate.out" && break; sleep 0.05; done
first=$(sed -n 's/^running //p' "$NP_TMP/out/activate.out")
[ -n "$first" ] || np_fail "the stand-in did not start the daemon: $(cat "$NP_TMP/out/activate.out")"
np_start_nginx "unix:$main" "" nginx "unix:$control"
np_wait_db_ready 20

wrk -t2 -c20 -d"$(np_scaled 8)s" -s "$NP_TMP/books.lua" "http://127.0.0.1:$NP_HTTP_PORT" >"$NP_TMP/out/wrk.out" 2>&1 &
wrk_pid=$!
sleep 1
masters=("$first")
for i in 1 2; do
	"$NEONPOOLCTL" -c "$conf" upgrade >"$NP_TMP/out/upgrade.$i" 2>&1
	np_expect_eq "upgrade $i: neonpoolctl upgrade exit status ($(cat "$NP_TMP/out/upgrade.$i"))" 0 "$?"
	new=$("$NEONPOOLCTL" -c "$conf" status --json | "$NP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["master_pid"])')
	np_expect "upgrade $i: the old master (pid ${masters[-1]}) exits" np_wait_gone "${masters[-1]}" $(np_scaled 20000)
	masters+=("$new")
done
wait "$wrk_pid"; wrk_rc=$?
cat "$NP_TMP/out/wrk.out"
np_expect_eq "wrk exit status" 0 "$wrk_rc"
np_expect "no 'Non-2xx or 3xx responses' line" bash -c "! grep -q 'Non-2xx or 3xx responses' '$NP_TMP/out/wrk.out'"
np_expect "no 'Socket errors' line" bash -c "! grep -q 'Socket errors' '$NP_TMP/out/wrk.out'"
np_expect "the socket files stay" test -S "$main" -a -S "$control"
np_expect "the last master took the passed sockets by name" \
	grep -q "pid=${masters[2]} msg=starting .*listen=unix:[^ ]*\[systemd:3:main\] control=unix:[^ ]*\[systemd:4:control\]" "$NP_TMP/act.log"
echo "---- datagrams ----"
cut -c1-300 "$notify"
echo "----"
"$NP_PYTHON" - "$notify" "${masters[@]}" <<'PY'
import json, sys
recs = [r for r in map(json.loads, open(sys.argv[1])) if "msg" in r]
m = [int(x) for x in sys.argv[2:]]
fails = 0
def check(what, ok, detail=""):
    global fails
    print(("ok - " if ok else "not ok - ") + what + (": " + detail if detail and not ok else ""))
    fails += not ok
main = m[0]
for i in (1, 2):
    old, new = m[i - 1], m[i]
    hand = [k for k, r in enumerate(recs) if r["msg"].get("MAINPID") == str(new) and r["pid"] == old]
    check("upgrade %d: MAINPID=%d from the main process then (pid %d)" % (i, new, old), len(hand) == 1,
          str([(r["pid"], r["msg"]) for r in recs if "MAINPID" in r["msg"]]))
    if not hand:
        continue
    k = hand[0]
    check("upgrade %d: with READY=1 in the same datagram" % i, recs[k]["msg"].get("READY") == "1")
    check("upgrade %d: nothing more from the old master" % i, all(r["pid"] != old for r in recs[k + 1:]),
          str([r for r in recs[k + 1:] if r["pid"] == old][:2]))
    check("upgrade %d: nothing from the new master before it is the main process" % i,
          all(r["pid"] != new for r in recs[:k]), str([r for r in recs[:k] if r["pid"] == new][:2]))
    check("upgrade %d: no STOPPING=1 from anyone" % i, not any("STOPPING" in r["msg"] for r in recs))
    check("upgrade %d: every earlier datagram from the main process or a master (never a worker)" % i,
          all(r["pid"] in m for r in recs))
sys.exit(1 if fails else 0)
PY
np_expect_eq "the datagrams' checks" 0 "$?"
kill -QUIT "${masters[2]}"
np_wait_gone "${masters[2]}" $(np_scaled 20000)
np_finish
