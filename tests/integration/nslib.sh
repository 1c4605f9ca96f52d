# SPDX-License-Identifier: PostgreSQL
# nslib.sh - neonsim (tests/tools/neonsim), a Neon-like remote database in front of the test PostgreSQL;
# source after lib.sh (and dblib.sh). Used by t_neonsim.sh and bench/run.
NEONSIM=${NEONSIM:-$np_top/tests/tools/neonsim}

# np_start_neonsim [NAME] [neonsim options...]: neonsim on 127.0.0.1:free port in front of the private
# PostgreSQL (NP_PG_PORT), control socket $NP_TMP/NAME.ctl, log $NP_TMP/NAME.log. Sets NP_NS_PORT,
# NP_NS_CTL and NP_NS_PID; stopped by lib.sh's teardown.
np_start_neonsim() {
	local name=neonsim
	case ${1:-} in -*) ;; "") ;; *) name=$1; shift ;; esac
	[ -x "$NEONSIM" ] || np_fail "neonsim not built: $NEONSIM (run make)"
	NP_NS_PORT=$(np_free_port) || np_fail "no free port for neonsim"
	NP_NS_CTL=$NP_TMP/$name.ctl
	"$NEONSIM" --listen "127.0.0.1:$NP_NS_PORT" --target "127.0.0.1:$NP_PG_PORT" --control "$NP_NS_CTL" "$@" \
		</dev/null >>"$NP_TMP/$name.log" 2>&1 &
	NP_NS_PID=$!
	NP_FRONT_PIDS+=("$NP_NS_PID")
	local i
	for i in $(seq 1 100); do
		[ -S "$NP_NS_CTL" ] && "$NEONSIM" --ctl "$NP_NS_CTL" ping >/dev/null 2>&1 && break
		np_alive "$NP_NS_PID" || np_fail "neonsim exited: $(tail -n 5 "$NP_TMP/$name.log")"
		sleep 0.05
	done
	"$NEONSIM" --ctl "$NP_NS_CTL" ping >/dev/null 2>&1 || np_fail "neonsim did not start: $(tail -n 5 "$NP_TMP/$name.log")"
	np_log "neonsim pid $NP_NS_PID on 127.0.0.1:$NP_NS_PORT -> PostgreSQL 127.0.0.1:$NP_PG_PORT ($*)"
}

# np_ns COMMAND...: one control line to the current neonsim; prints the answer; fails the test on "error".
np_ns() {
	local out
	out=$("$NEONSIM" --ctl "$NP_NS_CTL" "$@" 2>&1) || np_fail "neonsim '$*': $out"
	echo "$out"
}

# np_ns_stat KEY: one counter of `stats`.
np_ns_stat() { np_ns stats | tr ' ' '\n' | sed -n "s/^$1=//p"; }
