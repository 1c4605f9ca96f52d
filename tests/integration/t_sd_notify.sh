#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_sd_notify.sh - Type=notify: on NOTIFY_SOCKET (an abstract "@" name) the master sends READY=1 only once every
# worker accepts and min_warm connections are up; RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
# reload; STOPPING=1 at the stop; WATCHDOG=1 within WATCHDOG_USEC; STATUS= lines with the workers, the budget in
# use and the database state; and READY=1 with STATUS= saying so when the database is down.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dblib.sh"
np_require curl

# notify_start NAME CONF: a listener at @np-notify-NAME-PID writing $NP_TMP/NAME.notify (JSON lines).
notify_start() {
	local out=$NP_TMP/$1.notify
	"$NP_PYTHON" "$np_top/tests/integration/notify_listen.py" "@np-notify-$1-$$" "$out" "$NEONPOOLCTL" "$2" \
		>"$NP_TMP/out/$1.listen.log" 2>&1 &
	NP_FRONT_PIDS+=("$!")
	for _ in $(seq 100); do [ -s "$out" ] && return 0; sleep 0.05; done
	np_fail "notify listener did not start: $(cat "$NP_TMP/out/$1.listen.log")"
}

# notify_wait NAME N KEY=VALUE [TIMEOUT_S]: wait until N datagrams carrying KEY=VALUE arrived.
notify_wait() {
	local deadline k=${3%%=*} v=${3#*=}
	np_now_ms; deadline=$((NP_NOW + $(np_scaled "${4:-15}") * 1000))
	while :; do
		n=$("$NP_PYTHON" -c 'import json,sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get("msg", {}).get(sys.argv[2]) == sys.argv[3]))' \
			"$NP_TMP/$1.notify" "$k" "$v")
		[ "$n" -ge "$2" ] && return 0
		np_now_ms
		[ "$NP_NOW" -ge "$deadline" ] && np_fail "no $2 x $3 on NOTIFY_SOCKET within ${4:-15} s: $(cat "$NP_TMP/$1.notify")"
		sleep 0.1
	done
}

np_db_prepare
notify_start main "$NP_TMP/neonpoold.conf"
NOTIFY_SOCKET=@np-notify-main-$$ WATCHDOG_USEC=2000000 np_start_db_daemon workers=3 min_warm=2 database_url="$(np_db_url)"
notify_wait main 1 READY=1
np_log "READY=1 after start"
"$NEONPOOLCTL" -c "$NP_DAEMON_CONF" reload >"$NP_TMP/out/reload.out" 2>&1
np_expect_eq "neonpoolctl reload exit status" 0 "$?"
notify_wait main 2 READY=1
# two WATCHDOG=1 at least, so the gap between them is measured (the run stopped 1.1 s after the
# first one in a CI run, before the second was due: a bet on the run's length, not a check)
notify_wait main 2 WATCHDOG=1
"$NEONPOOLCTL" -c "$NP_DAEMON_CONF" stop >"$NP_TMP/out/stop.out" 2>&1
np_expect_eq "neonpoolctl stop exit status" 0 "$?"
notify_wait main 1 STOPPING=1 5

# the same with the database down: a closed port, so the breaker opens
port=$(np_free_port) || np_fail "no free port"
notify_start down "$NP_TMP/down.conf"
NOTIFY_SOCKET=@np-notify-down-$$ np_start_daemon --no-wait --name down workers=2 min_warm=1 \
	listen="$NP_TMP/down.sock" status_file="$NP_TMP/down.status" \
	database_url="postgresql://neonpool@127.0.0.1:$port/neonpool?sslmode=disable&connect_timeout=2"
notify_wait down 1 READY=1 20
"$NEONPOOLCTL" -c "$NP_DAEMON_CONF" stop >"$NP_TMP/out/stop-down.out" 2>&1

echo "---- datagrams (main) ----"
cut -c1-400 "$NP_TMP/main.notify"
echo "---- datagrams (database down) ----"
cut -c1-400 "$NP_TMP/down.notify"
echo "----"
"$NP_PYTHON" - "$NP_TMP/main.notify" "$NP_TMP/down.notify" "${NP_D_PID[neonpoold]}" "${NP_D_PID[down]}" <<'PY'
import json, sys
def load(p):
    return [r for r in map(json.loads, open(p)) if "msg" in r]
main, down = load(sys.argv[1]), load(sys.argv[2])
mpid, dpid = int(sys.argv[3]), int(sys.argv[4])
fails = 0
def check(what, ok, detail=""):
    global fails
    print(("ok - " if ok else "not ok - ") + what + (": " + detail if detail and not ok else ""))
    fails += not ok
kinds = [next((k for k in ("READY", "RELOADING", "STOPPING", "WATCHDOG") if k in r["msg"]), "STATUS") for r in main]
check("every datagram from the master (pid %d)" % mpid, all(r["pid"] == mpid for r in main),
      str([r["pid"] for r in main]))
check("the order is READY, RELOADING, READY, STOPPING", [k for k in kinds if k not in ("STATUS", "WATCHDOG")] ==
      ["READY", "RELOADING", "READY", "STOPPING"], str(kinds))
readies = [r for r in main if r["msg"].get("READY") == "1"]
for i, (r, gen) in enumerate(zip(readies, (1, 2))):
    st = r.get("status", {})
    ws = [w for w in st.get("workers", []) if w.get("generation") == gen]
    check("READY=1 #%d: 3 workers of generation %d, none starting" % (i + 1, gen),
          len(ws) == 3 and all(w["state"] in ("idle", "busy", "reading") for w in ws), json.dumps(ws))
    ep = st.get("endpoints", {}).get("primary", {})
    # at the start, up means min_warm connections opened; after a reload the new workers reopen the
    # old ones' connections while the database stays up (a dip is not a readiness change)
    check("READY=1 #%d: database up%s" % (i + 1, " with >= 2 connections (min_warm)" if gen == 1 else ""),
          ep.get("health") == "up" and (gen > 1 or ep.get("connected", 0) >= 2), json.dumps(ep)[:300])
    check("READY=1 #%d carries STATUS= with the workers, the budget and the database" % (i + 1),
          all(s in r["msg"].get("STATUS", "") for s in ("workers 3/3 accepting", "budget ", "database up")),
          r["msg"].get("STATUS", ""))
rel = [r for r in main if "RELOADING" in r["msg"]]
check("RELOADING=1 carries MONOTONIC_USEC", bool(rel) and rel[0]["msg"].get("MONOTONIC_USEC", "").isdigit())
check("STATUS= lines besides READY", sum(1 for k in kinds if k == "STATUS") >= 1)
wd = [r["t"] for r in main if r["msg"].get("WATCHDOG") == "1"]
# systemd's own deadline: a gap of WATCHDOG_USEC (2 s) would kill the service (sent every 1 s)
check("WATCHDOG=1 (WATCHDOG_USEC=2000000) never 2 s apart while it ran", len(wd) >= 2 and
      max(b - a for a, b in zip(wd, wd[1:])) < 2.0, str(wd))
dr = [r for r in down if r["msg"].get("READY") == "1"]
check("database down: READY=1 with a STATUS= saying the database is down",
      bool(dr) and "database down" in dr[0]["msg"].get("STATUS", ""), json.dumps(dr)[:400])
check("database down: every datagram from its master (pid %d)" % dpid, all(r["pid"] == dpid for r in down))
sys.exit(1 if fails else 0)
PY
np_expect_eq "the datagrams' checks" 0 "$?"
np_finish
