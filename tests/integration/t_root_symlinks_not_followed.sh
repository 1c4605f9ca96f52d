#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_root_symlinks_not_followed.sh - started as root with `user`, the master follows no symlink planted at log_file, pid_file (or its temp file), status_file or the listen socket path (CVE-2016-1247): the root-owned target stays unchanged, and the start is refused with a clear error or done safely.
. "$(dirname "$0")/lib.sh"
np_is_root || np_skip "needs root (the master chowns and opens files for the run user)"
getent passwd postgres >/dev/null || np_skip "no unprivileged user 'postgres'"
runuser -u postgres -- test -x "$NP_TMP" || np_skip "user postgres cannot reach $NP_TMP"

# plant NAME LINK: a fresh root-owned file NAME (what the attacker wants changed) and a symlink to
# it at LINK, in a directory the run user owns; sets victim and want
dir=$NP_TMP/run
mkdir -p "$dir"
chown postgres: "$dir"
snap() { echo "$(stat -c '%U:%G %a %s' "$1") $(md5sum <"$1" | cut -c1-12)"; }
plant() {
	victim=$NP_TMP/victim-$1
	printf 'root:secret\n' >"$victim"
	chmod 0600 "$victim"
	want=$(snap "$victim")
	rm -f "$2"
	ln -s "$victim" "$2"
}

# refused CASE LINK KEY=VALUE...: start in the foreground; it must fail with an error naming LINK,
# and leave the victim as it was
refused() {
	local name=$1 link=$2; shift 2
	local conf line
	conf=$(np_daemon_conf "$name" user=postgres listen="$dir/$name.sock" pid_file="$dir/$name.pid" "$@")
	np_capture "$name" timeout 10 "$NEONPOOLD" -c "$conf"
	np_expect "$name: the start is refused (exit $NP_RC)" test "$NP_RC" -ne 0 -a "$NP_RC" -ne 124
	line=$(grep -m1 'level=error' "$NP_TMP/out/$name.out" | sed 's/.*msg=//')
	np_expect "$name: says why: $line" grep -qE "level=error.*$link.*(symbolic link|not a socket)" "$NP_TMP/out/$name.out"
	np_expect_eq "$name: the root-owned target is unchanged" "$want" "$(snap "$victim")"
	rm -f "$link"
}

plant log "$dir/log"
refused log_file "$dir/log" log_file="$dir/log"
plant status "$dir/status"
refused status_file "$dir/status" status_file="$dir/status"
plant pid "$dir/pid_file.pid"
refused pid_file "$dir/pid_file.pid"
plant sock "$dir/listen.sock"
refused listen "$dir/listen.sock"

# A symlink planted at the pid file's temp name: removed, never written through; the daemon starts.
plant pidtmp "$dir/tmp.pid.tmp"
np_start_daemon --name tmp user=postgres listen="$dir/tmp.sock" pid_file="$dir/tmp.pid" \
	log_file="$dir/tmp.log" status_file="$dir/tmp.status" listen_owner=postgres listen_mode=0660
np_expect_eq "pid temp symlink: the root-owned target is unchanged" "$want" "$(snap "$victim")"
np_expect "pid temp symlink: the pid file is a regular file" test -f "$dir/tmp.pid" -a ! -L "$dir/tmp.pid"
np_expect_eq "pid temp symlink: it holds the master's pid" "$NP_DAEMON_PID" "$(cat "$dir/tmp.pid")"
np_expect_eq "the log file belongs to the run user" "postgres" "$(stat -c %U "$dir/tmp.log")"
np_expect_eq "the socket has listen_owner and listen_mode (set at bind, not by path)" "postgres 660 socket" \
	"$(stat -c '%U %a %F' "$dir/tmp.sock")"
np_fcgi GET /healthz
np_expect_eq "the daemon serves" 200 "$NP_STATUS"
echo "RESULT symlinks at log_file, status_file, pid_file and the socket path refused with the target unchanged; a symlink at the pid temp file removed, never followed"
np_finish
