#!/bin/sh
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
# systemd-analyze --root= finds units only in the standard directories: one installed elsewhere
# (distcheck's prefix) is checked as a copy in /etc/systemd/system of the staged tree.
case ${unit#"$stage"} in
/lib/systemd/system/* | /usr/lib/systemd/system/* | /etc/systemd/system/*) ;;
*)
	mkdir -p "$stage/etc/systemd/system"
	cp "$unit" "$stage/etc/systemd/system/neonpoold.service"
	unit=$stage/etc/systemd/system/neonpoold.service
	;;
esac
# The targets every service depends on by default (sysinit.target, ...), from this machine: the
# staged tree holds only what neonpool installs.
mkdir -p "$stage/usr/lib/systemd/system"
for t in /lib/systemd/system/*.target /usr/lib/systemd/system/*.target; do
	[ -e "$t" ] && [ ! -e "$stage/usr/lib/systemd/system/${t##*/}" ] && cp "$t" "$stage/usr/lib/systemd/system/"
done
# Documentation=man:... is looked up in the staged man pages only.
man8=$(find "$stage" -name neonpoold.8 -type f | head -n 1)
MANPATH=$(dirname "$(dirname "$man8")")
export MANPATH
rc=0
if "$SYSTEMD_ANALYZE" verify --root="$stage" "$unit"; then
	echo "check-systemd: systemd-analyze verify ${unit#"$stage"}: ok"
else
	echo "check-systemd: FAIL: systemd-analyze verify ${unit#"$stage"}" >&2
	rc=1
fi
out=$("$SYSTEMD_ANALYZE" security --offline=true --root="$stage" --threshold=$THRESHOLD "$unit" 2>&1) || {
	printf '%s\n' "$out" | grep -v '✓' >&2
	echo "check-systemd: FAIL: exposure above 2.0" >&2
	rc=1
}
printf '%s\n' "$out" | grep 'Overall exposure level' | sed 's/^→ */check-systemd: /'
exit $rc
