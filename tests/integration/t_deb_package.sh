#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# t_deb_package.sh - the Debian package: dpkg-buildpackage builds it from the tree, lintian finds no error and no warning, its files and modes are as packaged; installed in a throwaway root (a mount namespace with an overlay over /), it creates the neonpool user and a 0640 root:neonpool config, the daemon started as the units start it (its user, groups, the packaged config, the socket units' sockets passed by LISTEN_FDS, NOTIFY_SOCKET) sends READY=1 and serves GET /api/v1/books/N through the distribution's nginx with the packaged example in conf.d, ExecReload (neonpoolctl reload) exits 0, a newer build of the package installed over the running one under wrk -c50 upgrades it through neonpoolctl upgrade in postinst (0 errors, MAINPID= the new master, the new version answers), neonpoolctl stop exits 0, every system call it made under strace -f is in @system-service, and dpkg --purge leaves only the user; the machine is left as it was.
#
# Environment: NP_DEB=/path/neonpool_X_ARCH.deb reuses a built package (with its .changes beside it
# for lintian) instead of building one (dpkg-buildpackage takes 1-2 min on 2 cores).
. "$(dirname "$0")/lib.sh"
np_is_root || np_skip "needs root (dpkg -i in a mount namespace)"
for t in dpkg-buildpackage dh lintian unshare nginx; do
	command -v "$t" >/dev/null || np_skip "$t not installed (scripts/install-deps.sh)"
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || np_skip "no overlayfs in this kernel"
unshare -m --propagation private true 2>/dev/null || np_skip "unshare -m refused (no CAP_SYS_ADMIN here)"

version=$(sed -n 's/^AC_INIT(\[neonpool\], \[\([^]]*\)\].*/\1/p' "$np_top/configure.ac")
deb_version=$(sed -n '1s/^neonpool (\([^)]*\)).*/\1/p' "$np_top/debian/changelog")
np_expect_eq "debian/changelog's version is configure.ac's" "$version" "$deb_version"

# ---- build -------------------------------------------------------------------------------
if [ -n "${NP_DEB:-}" ]; then
	deb=$NP_DEB
	changes=${deb%.deb}.changes
	np_log "reusing $deb"
else
	src=$NP_TMP/build/neonpool
	mkdir -p "$src"
	# the tree's sources (tracked and new files, not what is ignored: no in-tree build output)
	if git -C "$np_top" rev-parse --git-dir >/dev/null 2>&1; then
		(cd "$np_top" && git ls-files -co --exclude-standard -z | tar --null -cf - -T - 2>/dev/null) | tar -xf - -C "$src" ||
			np_fail "copying the tree"
	else
		(cd "$np_top" && tar --exclude=./build\* --exclude=./var --exclude=./tmp -cf - .) | tar -xf - -C "$src"
		(cd "$src" && { [ ! -f Makefile ] || make distclean >/dev/null 2>&1; })
	fi
	np_now_ms; t0=$NP_NOW
	(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" DEB_BUILD_PROFILES=nocheck \
		dpkg-buildpackage -us -uc -b) >"$NP_TMP/build.log" 2>&1 ||
		{ tail -n 40 "$NP_TMP/build.log" >&2; np_fail "dpkg-buildpackage -us -uc -b failed"; }
	np_now_ms
	np_log "dpkg-buildpackage -us -uc -b: $(((NP_NOW - t0) / 1000)) s (make check skipped here: nocheck; the suite runs it)"
	deb=$NP_TMP/build/neonpool_${deb_version}_$(dpkg --print-architecture).deb
	changes=${deb%.deb}.changes
	# the built packages are what is checked; the sources' copy goes (the teardown's sanitizer scan
	# would read the test scripts' own patterns in it)
	rm -rf "$src"
fi
[ -f "$deb" ] || np_fail "no package at $deb"
np_ok "built $(basename "$deb")"
# a newer build of the package, for the upgrade in place: the same files, the version + "+up1", the
# daemon reporting another version (its version string patched, same length; md5sums follow)
rm -rf "$NP_TMP/next"
dpkg-deb -R "$deb" "$NP_TMP/next" && sed -i 's/^Version: .*/&+up1/' "$NP_TMP/next/DEBIAN/control" &&
	"$NP_PYTHON" - "$NP_TMP/next/usr/sbin/neonpoold" "$version" <<'PY' || np_fail "building the newer package"
import sys
p, v = sys.argv[1], sys.argv[2]
d = open(p, 'rb').read()
a, b = (b'\0' + x.encode() + b'\0' for x in (v, v[:-1] + ('8' if v[-1] == '9' else '9')))
assert a in d, 'version string not found'
open(p, 'wb').write(d.replace(a, b))
PY
sum=$(cd "$NP_TMP/next" && md5sum usr/sbin/neonpoold)
sed -i "s|^[0-9a-f]*  usr/sbin/neonpoold\$|$sum|" "$NP_TMP/next/DEBIAN/md5sums"
dpkg-deb -b "$NP_TMP/next" "$NP_TMP/neonpool-next.deb" >/dev/null || np_fail "dpkg-deb -b of the newer package"
rm -rf "$NP_TMP/next"

# ---- lintian -----------------------------------------------------------------------------
np_now_ms; t0=$NP_NOW
lintian --pedantic --display-experimental "$changes" >"$NP_TMP/lintian.out" 2>&1
np_now_ms
tags=$(grep -cE '^[EWPX]: ' "$NP_TMP/lintian.out" || true)
errors=$(grep -cE '^E: ' "$NP_TMP/lintian.out" || true)
warnings=$(grep -cE '^W: ' "$NP_TMP/lintian.out" || true)
np_log "lintian --pedantic ($(((NP_NOW - t0) / 1000)) s): $errors errors, $warnings warnings, $((tags - errors - warnings)) pedantic/experimental"
grep -E '^[EWPXI]: ' "$NP_TMP/lintian.out" | sed 's/^/#   /'
np_expect_eq "lintian: errors" 0 "$errors"
np_expect_eq "lintian: warnings" 0 "$warnings"
# every override is justified by a comment line above it
for o in "$np_top"/debian/*lintian-overrides; do
	[ -f "$o" ] || continue
	np_expect "$(basename "$o"): each override follows a comment" \
		awk '/^#/ {c=1; next} /^[[:space:]]*$/ {next} { if (!c) exit 1; c=0 }' "$o"
done

# ---- files and modes ---------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' | sed 's|^\([^ ]*\) \([^ ]*\) \./|\1 \2 /|' >"$NP_TMP/contents"
want_entry() { # MODE OWNER PATH
	np_expect "package holds $3 ($1 $2)" grep -qxF -- "$1 $2 $3" "$NP_TMP/contents"
}
want_entry -rwxr-xr-x root/root /usr/sbin/neonpoold
want_entry -rwxr-xr-x root/root /usr/bin/neonpoolctl
want_entry -rw-r--r-- root/root /usr/share/man/man8/neonpoold.8.gz
want_entry -rw-r--r-- root/root /usr/share/man/man1/neonpoolctl.1.gz
want_entry -rw-r--r-- root/root /etc/neonpool/neonpool.conf
want_entry -rw-r--r-- root/root /lib/systemd/system/neonpoold.service
want_entry -rw-r--r-- root/root /lib/systemd/system/neonpoold.socket
want_entry -rw-r--r-- root/root /lib/systemd/system/neonpoold-control.socket
want_entry -rw-r--r-- root/root /lib/systemd/system/neonpoold-ask.socket
want_entry -rw-r--r-- root/root /usr/lib/sysusers.d/neonpool.conf
want_entry -rw-r--r-- root/root /usr/lib/tmpfiles.d/neonpool.conf
want_entry -rw-r--r-- root/root /usr/share/neonpool/sql/001_textbooks.sql
want_entry -rw-r--r-- root/root /usr/share/neonpool/www/index.html
want_entry -rw-r--r-- root/root /usr/share/doc/neonpool/examples/nginx-neonpool.conf
want_entry -rw-r--r-- root/root /usr/share/doc/neonpool/copyright
for f in "$np_top"/sql/[0-9]*.sql; do
	want_entry -rw-r--r-- root/root "/usr/share/neonpool/sql/$(basename "$f")"
done
dpkg-deb -f "$deb" Depends | grep -q 'systemd' || np_not_ok "Depends names systemd-sysusers' package"
np_expect "conffiles: /etc/neonpool/neonpool.conf" \
	sh -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./conffiles | grep -qx /etc/neonpool/neonpool.conf"
np_expect "the conffile holds no password" sh -c "! dpkg-deb --fsys-tarfile '$deb' | tar -xOf - ./etc/neonpool/neonpool.conf | grep -qiE '^[^#]*(password=|:[^@/]*@)'"

# ---- installed in a throwaway root -------------------------------------------------------
np_start_pg
printf '%s\n' "$NP_TEST_PASSWORD" >"$NP_TMP/db.password"
np_secret_exempt "$NP_TMP/db.password"
http_port=$(np_free_port) || np_fail "no free port for nginx"
host_passwd=$(md5sum </etc/passwd)
host_units=$(ls /etc/systemd/system 2>/dev/null | md5sum)

cat >"$NP_TMP/inside.sh" <<'EOF'
# runs in a private mount namespace: / is an overlay whose upper layer is a tmpfs; each command
# for the package runs chrooted there. Prints "ok - ..." / "not ok - ..." lines.
set -u
T=$1 DEB=$2 PORT=$3 PGPORT=$4
R=$T/ov/root
ok() { printf 'ok - %s\n' "$*"; }
bad() { printf 'not ok - %s\n' "$*"; }
check() { local what=$1; shift; if "$@" >>"$T/checks.log" 2>&1; then ok "$what"; else bad "$what"; fi; }
in_root() { chroot "$R" "$@"; }
# as systemd runs a unit's command with User=neonpool, Group=neonpool, SupplementaryGroups=www-data:
# a clean environment with the user's HOME (libpq looks for ~/.postgresql there)
AS_UNIT=(chroot --userspec=neonpool:neonpool --groups=www-data "$R" env -i HOME=/nonexistent USER=neonpool LOGNAME=neonpool
	SHELL=/usr/sbin/nologin PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
as_unit() { "${AS_UNIT[@]}" "$@"; }
cleanup() {
	[ -z "${dpid:-}" ] && [ -n "${hpid:-}" ] && dpid=$(cat "$T/holder/pid" 2>/dev/null)
	[ -n "${dpid:-}" ] && kill -QUIT "$dpid" 2>/dev/null
	[ -f "$R/run/nginx.pid" ] && kill -QUIT "$(cat "$R/run/nginx.pid")" 2>/dev/null
	for _ in $(seq 1 50); do
		{ [ -z "${dpid:-}" ] || ! kill -0 "$dpid" 2>/dev/null; } && break
		sleep 0.1
	done
	[ -n "${dpid:-}" ] && kill -KILL "$dpid" 2>/dev/null
	true
}
trap cleanup EXIT

mkdir -p "$T/ov"
mount -t tmpfs tmpfs "$T/ov" || { bad "tmpfs for the overlay"; exit 1; }
mkdir -p "$T/ov/upper" "$T/ov/work" "$R"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/ov/upper,workdir=$T/ov/work" "$R" || { bad "overlay over /"; exit 1; }
mount --rbind /proc "$R/proc" && mount --rbind /dev "$R/dev" && mount -t tmpfs tmpfs "$R/run" && mount -t tmpfs tmpfs "$R/tmp" ||
	{ bad "proc, dev, run, tmp in the root"; exit 1; }
mkdir -p "$R/run/lock"
# man-db's dpkg trigger rebuilds its index when this file exists: 12 s of CPU over the suite's
# three dpkg runs, for a root thrown away (man -w still finds the page by its path)
rm -f "$R/var/lib/man-db/auto-update"
cp "$DEB" "$R/tmp/neonpool.deb"

in_root dpkg -i /tmp/neonpool.deb >"$T/dpkg-i.log" 2>&1
rc=$?
check "dpkg -i (exit $rc)" test "$rc" = 0
check "user neonpool created (sysusers.d)" in_root getent passwd neonpool
check "its shell is nologin and home /nonexistent" sh -c "chroot '$R' getent passwd neonpool | grep -q ':/nonexistent:/usr/sbin/nologin$'"
mode=$(in_root stat -c '%a %U:%G' /etc/neonpool/neonpool.conf)
check "/etc/neonpool/neonpool.conf is 640 root:neonpool ($mode)" test "$mode" = "640 root:neonpool"
check "the unit is enabled (deb-systemd-helper)" test -L "$R/etc/systemd/system/multi-user.target.wants/neonpoold.service"
for u in neonpoold neonpoold-control neonpoold-ask; do
	check "$u.socket is enabled" test -L "$R/etc/systemd/system/sockets.target.wants/$u.socket"
done
check "neonpoold -V prints configure.ac's version" sh -c "chroot '$R' /usr/sbin/neonpoold -V | grep -qx 'neonpoold $VERSION'"
check "neonpoolctl -V prints configure.ac's version" sh -c "chroot '$R' /usr/bin/neonpoolctl -V | grep -qx 'neonpoolctl $VERSION'"
check "the packaged config passes neonpoold -t" in_root /usr/sbin/neonpoold -t -c /etc/neonpool/neonpool.conf
check "man neonpoold finds the page" sh -c "chroot '$R' man -w neonpoold >/dev/null 2>&1 || test -f '$R/usr/share/man/man8/neonpoold.8.gz'"

cp "$T/smoke" "$R/tmp/smoke"
check "debian/tests/smoke (the autopkgtest) passes in the root" sh -c "chroot '$R' sh /tmp/smoke >'$T/smoke.log' 2>&1"

# What the administrator does (README): point database_url at the server, the password in a file of
# its own readable by the group; the rest of the packaged config stays as shipped.
cp "$T/pg/server.crt" "$R/etc/neonpool/db-ca.crt"
install -m 0640 -g "$(in_root getent group neonpool | cut -d: -f3)" "$T/db.password" "$R/etc/neonpool/db-password"
sed -i "s|^database_url = .*|database_url = \"postgresql://neonpool@127.0.0.1:$PGPORT/neonpool?sslmode=verify-full\&sslrootcert=/etc/neonpool/db-ca.crt\";\ndatabase_password_file = \"/etc/neonpool/db-password\";|" \
	"$R/etc/neonpool/neonpool.conf"
check "the edited config passes neonpoold -t" in_root /usr/sbin/neonpoold -t -c /etc/neonpool/neonpool.conf

# The unit's start: the socket units' sockets (bound by a stand-in for systemd, sd_holder.py, from
# the installed neonpoold*.socket: path, mode, group, backlog) passed by the LISTEN_FDS protocol by
# name; the runtime directory as tmpfiles.d and RuntimeDirectory= leave it (0755 neonpool);
# User=neonpool, Group=neonpool, SupplementaryGroups=www-data, UMask=0027, NOTIFY_SOCKET and
# WATCHDOG_USEC (Type=notify, WatchdogSec=), ExecStart as written in the installed unit.
unit=$R/lib/systemd/system/neonpoold.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
exec_reload=$(sed -n 's/^ExecReload=//p' "$unit")
rmode=$(sed -n 's/^RuntimeDirectoryMode=//p' "$unit")
check "the unit is Type=notify, NotifyAccess=all, with the three socket units" \
	sh -c "grep -qx Type=notify '$unit' && grep -qx NotifyAccess=all '$unit' && grep -qx 'Sockets=neonpoold.socket neonpoold-control.socket neonpoold-ask.socket' '$unit'"
check "the unit keeps /run/neonpool at stop (the socket units' files are there)" grep -qx RuntimeDirectoryPreserve=yes "$unit"
install -d -m "$rmode" -o "$(in_root id -u neonpool)" -g "$(in_root id -g neonpool)" "$R/run/neonpool"
install -d -m 0750 -o "$(in_root id -u neonpool)" -g "$(in_root id -g neonpool)" "$R/var/log/neonpool"
# and nginx's content cache directory as tmpfiles.d creates it (0700 www-data)
check "tmpfiles.d creates /var/cache/neonpool/nginx 0700 www-data" \
	grep -qx 'd /var/cache/neonpool/nginx 0700 www-data www-data -' "$R/usr/lib/tmpfiles.d/neonpool.conf"
install -d -m 0755 "$R/var/cache/neonpool"
install -d -m 0700 -o "$(in_root id -u www-data)" -g "$(in_root id -g www-data)" "$R/var/cache/neonpool/nginx"
mkdir -p "$T/holder"
# under strace -f when there is one (-D: the daemon keeps the started pid, LISTEN_PID's; -s 0: no
# data in the trace, the password file is read)
STRACE=()
command -v strace >/dev/null && STRACE=(strace -D -f -qq -s 0 -o "$T/strace.out")
(umask 0027; exec /usr/bin/python3 "$T/sd_holder.py" "$R" "$R/lib/systemd/system" "$T/holder" "${STRACE[@]}" "${AS_UNIT[@]}" @ENV@ $exec_start) \
	>"$T/neonpoold.out" 2>&1 &
hpid=$!
sockets_ino() { stat -c %i "$R"/run/neonpool/neonpool.sock "$R"/run/neonpool/control.sock "$R"/run/neonpool/ask.sock 2>/dev/null | tr '\n' ' '; }
for _ in $(seq 1 100); do [ -f "$T/holder/pid" ] && break; sleep 0.1; done
ino_before=$(sockets_ino)
for _ in $(seq 1 300); do grep -qx 'READY=1' "$T/holder/notify.log" 2>/dev/null && break; kill -0 "$hpid" 2>/dev/null || break; sleep 0.1; done
dpid=$(cat "$T/holder/pid" 2>/dev/null)
check "neonpoold sent READY=1 on NOTIFY_SOCKET, as Type=notify waits for ($exec_start)" grep -qx 'READY=1' "$T/holder/notify.log"
check "... and STATUS= lines" grep -q '^STATUS=' "$T/holder/notify.log"
smode=$(stat -c '%a %G' "$R/run/neonpool/neonpool.sock" 2>/dev/null)
check "its socket is the socket unit's: 660 group www-data ($smode), in a 755 directory" test "$smode" = "660 www-data" -a "$(stat -c %a "$R/run/neonpool")" = 755
for n in main control; do
	check "neonpoold took the passed socket named $n" grep -q "\[systemd:[0-9]*:$n\]" "$T/neonpoold.out"
done
# none bound anew (a socket of its own would replace the file: another inode) and none left over
check "the three socket files are the holder's (inodes $ino_before)" test "$(sockets_ino)" = "$ino_before"
check "no passed socket left over (no 'no listen key takes')" sh -c "! grep -q 'no listen key takes' '$T/neonpoold.out'"

as_unit /usr/bin/neonpoolctl migrate >"$T/migrate.log" 2>&1
rc=$?
check "neonpoolctl migrate from /usr/share/neonpool/sql (exit $rc)" test "$rc" = 0
as_unit /usr/bin/neonpoolctl seed --books 2 --chapters 2 --passages 2 >"$T/seed.log" 2>&1
rc=$?
check "neonpoolctl seed (exit $rc)" test "$rc" = 0

# nginx as Debian ships it, with the packaged example in conf.d (README: "Serve it with nginx");
# only its listen line changes to a free port, and the distribution's default site is left out.
sed "s|listen 127\.0\.0\.1:8080;|listen 127.0.0.1:$PORT;|" "$R/usr/share/doc/neonpool/examples/nginx-neonpool.conf" >"$R/etc/nginx/conf.d/neonpool.conf"
rm -f "$R/etc/nginx/sites-enabled/default"
mkdir -p "$R/var/log/nginx"
check "nginx -t with the packaged example" in_root nginx -t -q
in_root nginx >"$T/nginx.out" 2>&1
check "nginx started" test -s "$R/run/nginx.pid"
for _ in $(seq 1 100); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" 2>/dev/null)
	[ "$code" = 200 ] && break
	sleep 0.1
done
check "GET /readyz through nginx: 200 ($code)" test "$code" = 200
code=$(curl -s -o "$T/books.json" -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/books")
check "GET /api/v1/books through nginx: 200 ($code)" test "$code" = 200
id=$(grep -o '"id":[ ]*[0-9]*' "$T/books.json" | head -n 1 | grep -o '[0-9]*$')
code=$(curl -s -o "$T/book.json" -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/books/$id")
check "GET /api/v1/books/$id through nginx: 200 ($code)" test "$code" = 200
check "... a book as JSON" grep -q '"title"' "$T/book.json"
cs=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT/api/v1/books/$id" | tr -d '\r' | sed -n 's/^X-Cache-Status: //Ip')
check "... again: from nginx's content cache (X-Cache-Status $cs)" test "$cs" = HIT
check "... stored in /var/cache/neonpool/nginx by www-data" \
	test -n "$(find "$R/var/cache/neonpool/nginx" -type f -user "$(in_root id -u www-data)" | head -n 1)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
check "GET / (the page from /usr/share/neonpool/www): 200 ($code)" test "$code" = 200

# systemctl reload: the unit's ExecReload (neonpoolctl reload waits for the outcome), as the unit's user
as_unit $exec_reload >"$T/reload.log" 2>&1
rc=$?
check "ExecReload ($exec_reload): exit $rc" test "$rc" = 0
# READY=1 follows once the new workers accept and the database is asked up: shortly after the
# new generation that neonpoolctl waits for
reloaded() { grep -x -e RELOADING=1 -e READY=1 "$T/holder/notify.log" | tr '\n' ' ' | grep -q 'RELOADING=1 READY=1'; }
for _ in $(seq 1 100); do reloaded && break; sleep 0.1; done
check "... RELOADING=1 then READY=1 on NOTIFY_SOCKET" reloaded
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/books/$id")
check "GET /api/v1/books/$id through nginx after the reload: 200 ($code)" test "$code" = 200

# the package upgraded in place under load: prerm leaves the service running, postinst runs
# `neonpoolctl upgrade` (the new binary beside the old one on the same sockets) instead of a restart
last=${VERSION#"${VERSION%?}"}
next_version=${VERSION%?}$([ "$last" = 9 ] && echo 8 || echo 9)
cp "$T/neonpool-next.deb" "$R/tmp/neonpool-next.deb"
wpid=
if command -v wrk >/dev/null; then
	# /api/v1/version: answered by the daemon every time (a book would come from nginx's cache)
	wrk -t2 -c50 -d8s "http://127.0.0.1:$PORT/api/v1/version" >"$T/wrk-upgrade.out" 2>&1 &
	wpid=$!
	sleep 1
fi
old_master=$dpid
in_root dpkg -i /tmp/neonpool-next.deb >"$T/dpkg-upgrade.log" 2>&1
rc=$?
check "dpkg -i of a newer build over the running one (exit $rc)" test "$rc" = 0
check "... its postinst upgraded the running daemon (neonpoolctl upgrade)" grep -q '^upgraded: ' "$T/dpkg-upgrade.log"
if [ -n "$wpid" ]; then
	wait "$wpid"
	check "... under wrk -c50: $(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$T/wrk-upgrade.out") requests served" \
		grep -q ' requests in ' "$T/wrk-upgrade.out"
	check "... no answer other than 2xx" sh -c "! grep -q 'Non-2xx' '$T/wrk-upgrade.out'"
	check "... no socket error" sh -c "! grep -q 'Socket errors' '$T/wrk-upgrade.out'"
fi
dpid=$(cat "$T/holder/pid" 2>/dev/null)
check "... the main process is the new master ($old_master -> $dpid), named by MAINPID=" \
	sh -c "test '$dpid' != '$old_master' && grep -qx 'MAINPID=$dpid' '$T/holder/notify.log'"
v=$(curl -s "http://127.0.0.1:$PORT/api/v1/version" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null)
check "... /api/v1/version is the new build's ($v, $next_version)" test "$v" = "$next_version"

# neonpoolctl stop: returns once the master and its children exited
as_unit /usr/bin/neonpoolctl -c /etc/neonpool/neonpool.conf stop >"$T/stop.log" 2>&1
rc=$?
check "neonpoolctl stop: exit $rc" test "$rc" = 0
for _ in $(seq 1 150); do kill -0 "$hpid" 2>/dev/null || break; sleep 0.1; done
wait "$hpid"; drc=$?
check "neonpoold exited 0 ($drc), STOPPING=1 sent" sh -c "test '$drc' = 0 && grep -qx STOPPING=1 '$T/holder/notify.log'"
dpid= hpid=
check "the socket units' files stay after the stop (systemd keeps them)" test -S "$R/run/neonpool/neonpool.sock"

# SystemCallFilter=@system-service exercised: every system call the daemon and its children made
# under strace -f (start, requests, reload, stop), from the exec of neonpoold on (what chroot and
# env do before it is systemd's part), is in the set `systemd-analyze syscall-filter` expands
if [ -s "$T/strace.out" ] && command -v systemd-analyze >/dev/null; then
	systemd-analyze syscall-filter >"$T/syscall-filter.txt" 2>/dev/null
	/usr/bin/python3 - "$T/strace.out" "$T/syscall-filter.txt" >"$T/syscalls.txt" 2>&1 <<'PY'
import re, sys
groups, cur = {}, None
for line in open(sys.argv[2]):
    if re.match(r'^@[a-z-]+', line):
        cur = line.split()[0]; groups[cur] = []
    elif cur and line.strip() and not line.strip().startswith('#'):
        groups[cur].append(line.split()[0])
def expand(g, seen=None):
    seen = seen or set(); out = set()
    for m in groups.get(g, []):
        if m.startswith('@'):
            if m not in seen:
                seen.add(m); out |= expand(m, seen)
        else:
            out.add(m)
    return out
allowed = expand('@system-service')
seen, started = {}, False
for line in open(sys.argv[1]):
    if not started:
        started = 'execve("/usr/sbin/neonpoold"' in line
        if not started:
            continue
    m = re.match(r'^\d+ +([a-z_0-9]+)\(', line)
    if m:
        seen[m.group(1)] = seen.get(m.group(1), 0) + 1
outside = sorted(n for n in seen if n not in allowed)
with open(sys.argv[1] + '.names', 'w') as f:
    f.write(' '.join(sorted(seen)) + '\n')
print('%d distinct system calls, %d calls; outside @system-service: %s'
      % (len(seen), sum(seen.values()), ' '.join(outside) or 'none'))
sys.exit(1 if outside or not started or not allowed else 0)
PY
	rc=$?
	check "every system call under strace -f is in @system-service: $(cat "$T/syscalls.txt")" test "$rc" = 0
	echo "# the daemon's system calls: $(cat "$T/strace.out.names")"
	rm -f "$T/strace.out"
else
	echo "# strace or systemd-analyze not installed: system calls not checked against @system-service"
fi
kill -QUIT "$(cat "$R/run/nginx.pid")" 2>/dev/null
for _ in $(seq 1 50); do [ -f "$R/run/nginx.pid" ] || break; sleep 0.1; done

# a configuration error at start: 78 (EX_CONFIG), which the unit does not restart on
printf 'workers = "four";\n' >"$R/tmp/bad.conf"
as_unit /usr/sbin/neonpoold -c /tmp/bad.conf >/dev/null 2>&1; brc=$?
check "a bad config at start exits 78 ($brc), the unit's RestartPreventExitStatus" \
	sh -c "test $brc = 78 && grep -qx 'RestartPreventExitStatus=78' '$unit'"

# purge: nothing left but the user (Debian keeps system users); the files the administrator added
# in /etc/neonpool stay (dpkg never removes them), so they go first, as an administrator would
rm -f "$R/etc/neonpool/db-password" "$R/etc/neonpool/db-ca.crt"
in_root dpkg --purge neonpool >"$T/dpkg-purge.log" 2>&1
check "dpkg --purge" test "$(in_root dpkg-query -W -f='${Status}' neonpool 2>/dev/null)" = ""
left=$(cd "$T/ov/upper" && find etc/neonpool usr/sbin/neonpoold usr/bin/neonpoolctl usr/share/neonpool usr/share/doc/neonpool \
	lib/systemd/system/neonpoold.service lib/systemd/system/neonpoold*.socket usr/lib/sysusers.d/neonpool.conf \
	etc/systemd/system/multi-user.target.wants/neonpoold.service etc/systemd/system/sockets.target.wants/neonpoold*.socket \
	var/log/neonpool ! -type c 2>/dev/null | head -n 5)
check "purge left no file of the package${left:+ (left: $left)}" test -z "$left"
check "the neonpool user stays after purge" in_root getent passwd neonpool
EOF

cp "$np_top/debian/tests/smoke" "$NP_TMP/smoke"
cp "$np_top/tests/tools/sd_holder.py" "$NP_TMP/sd_holder.py"
np_log "installing in a throwaway root (mount namespace, overlay over /)"
VERSION=$version unshare -m --propagation private bash "$NP_TMP/inside.sh" "$NP_TMP" "$deb" "$http_port" "$NP_PG_PORT" \
	>"$NP_TMP/out/inside.out" 2>&1
irc=$?
cat "$NP_TMP/out/inside.out"
n_ok=$(grep -c '^ok - ' "$NP_TMP/out/inside.out" || true)
n_bad=$(grep -c '^not ok - ' "$NP_TMP/out/inside.out" || true)
NP_FAILURES=$((NP_FAILURES + n_bad))
np_expect "the throwaway root's checks ran to the end (exit $irc, $n_ok ok)" test "$irc" = 0 -a "$n_ok" -ge 25
[ "$n_bad" -gt 0 ] && for f in dpkg-i.log checks.log smoke.log neonpoold.out holder/notify.log reload.log stop.log migrate.log seed.log nginx.out dpkg-purge.log; do
	[ -s "$NP_TMP/$f" ] && { echo "==== $f" >&2; tail -n 20 "$NP_TMP/$f" >&2; }
done

# the machine as it was
np_expect "the host has no /usr/sbin/neonpoold" test ! -e /usr/sbin/neonpoold
np_expect "the host has no /etc/neonpool" test ! -e /etc/neonpool
np_expect "the host's /etc/passwd unchanged" test "$(md5sum </etc/passwd)" = "$host_passwd"
np_expect "the host's /etc/systemd/system unchanged" test "$(ls /etc/systemd/system 2>/dev/null | md5sum)" = "$host_units"
np_expect "dpkg on the host knows no neonpool" sh -c "! dpkg-query -W neonpool >/dev/null 2>&1"
np_finish
