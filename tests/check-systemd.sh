#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# check-systemd.sh - the installed unit passes `systemd-analyze verify` against a staged install (ExecStart
# exists there, Documentation= names installed man pages, every directive is known) and its security
# exposure (`systemd-analyze security --offline=true`) is at most 2.0. Skipped (77) without
# systemd-analyze or when configure installs no unit (--with-systemdsystemunitdir=no).
set -eu
top_builddir=${top_builddir:-.}
SYSTEMD_ANALYZE=${SYSTEMD_ANALYZE:-$(command -v systemd-analyze || true)}
MAKE=${MAKE:-make}
THRESHOLD=20 # systemd-analyze security's scale is 0..100 for the printed 0.0..10.0: 20 = 2.0

if [ -z "$SYSTEMD_ANALYZE" ] || [ ! -x "$SYSTEMD_ANALYZE" ]; then
	echo "check-systemd: SKIP: systemd-analyze not found (Debian package systemd)"
	exit 77
fi
stage=$(mktemp -d "${TMPDIR:-/tmp}/np-systemd.XXXXXX")
trap 'rm -rf "$stage"' EXIT
if ! $MAKE -C "$top_builddir" install DESTDIR="$stage" >"$stage.log" 2>&1; then
	cat "$stage.log" >&2
	rm -f "$stage.log"
	echo "check-systemd: FAIL: make install DESTDIR=$stage" >&2
	exit 1
fi
rm -f "$stage.log"
unit=$(find "$stage" -name neonpoold.service -type f | head -n 1)
if [ -z "$unit" ]; then
	echo "check-systemd: SKIP: no unit installed (configure --with-systemdsystemunitdir=no)"
	exit 77
fi
# systemd-analyze --root= finds units only in the standard directories: ones installed elsewhere
# (distcheck's prefix) are checked as copies in /etc/systemd/system of the staged tree.
unitdir=$(dirname "$unit")
case ${unit#"$stage"} in
/lib/systemd/system/* | /usr/lib/systemd/system/* | /etc/systemd/system/*) ;;
*)
	mkdir -p "$stage/etc/systemd/system"
	cp "$unitdir"/neonpoold*.service "$unitdir"/neonpoold*.socket "$stage/etc/systemd/system/"
	unitdir=$stage/etc/systemd/system
	unit=$unitdir/neonpoold.service
	;;
esac
# The targets every service depends on by default (sysinit.target, ...), from this machine: the
# staged tree holds only what neonpool installs.
mkdir -p "$stage/usr/lib/systemd/system"
# (one cp: /lib is /usr/lib on a merged-/usr system, and -n keeps the first of a name)
cp -n /usr/lib/systemd/system/*.target /lib/systemd/system/*.target "$stage/usr/lib/systemd/system/" 2>/dev/null || true
# Documentation=man:... is looked up in the staged man pages only.
man8=$(find "$stage" -name neonpoold.8 -type f | head -n 1)
MANPATH=$(dirname "$(dirname "$man8")")
export MANPATH
rc=0
# the service and its socket units (Sockets=, Service= and Requires= must name installed units)
for u in "$unit" "$unitdir"/neonpoold*.socket; do
	if "$SYSTEMD_ANALYZE" verify --root="$stage" "$u"; then
		echo "check-systemd: systemd-analyze verify ${u#"$stage"}: ok"
	else
		echo "check-systemd: FAIL: systemd-analyze verify ${u#"$stage"}" >&2
		rc=1
	fi
done
n_sockets=$(ls "$unitdir"/neonpoold*.socket 2>/dev/null | wc -l)
if [ "$n_sockets" -ne 3 ]; then
	echo "check-systemd: FAIL: $n_sockets socket units installed beside the service, 3 expected (main, control, ask)" >&2
	rc=1
fi
out=$("$SYSTEMD_ANALYZE" security --offline=true --root="$stage" --threshold=$THRESHOLD "$unit" 2>&1) || {
	printf '%s\n' "$out" | grep -v '✓' >&2
	echo "check-systemd: FAIL: exposure above 2.0" >&2
	rc=1
}
printf '%s\n' "$out" | grep 'Overall exposure level' | sed 's/^→ */check-systemd: /'
exit $rc
