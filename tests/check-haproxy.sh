#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# check-haproxy.sh - contrib/haproxy/neonpool.cfg (doc/deploy.md) is a configuration HAProxy accepts
# (`haproxy -c`), and it keeps the rule that makes its retries safe: layer-7 retries are disabled
# for every request that is neither GET/HEAD nor carries an Idempotency-Key (HAProxy 2.6's retry-on
# would replay a POST), and the health check reads /healthz (not /readyz: a shared database's outage
# would drain every host at once). Skipped (77) without haproxy.
set -eu
top_srcdir=${top_srcdir:-.}
cfg=$top_srcdir/contrib/haproxy/neonpool.cfg
HAPROXY=${HAPROXY:-$(command -v haproxy || true)}
if [ -z "$HAPROXY" ] || [ ! -x "$HAPROXY" ]; then
	echo "check-haproxy: SKIP: haproxy not found (Debian package haproxy)"
	exit 77
fi
if ! out=$("$HAPROXY" -c -f "$cfg" 2>&1); then
	printf '%s\n' "$out" >&2
	echo "check-haproxy: FAIL: haproxy -c -f $cfg" >&2
	exit 1
fi
fail=0
need() {
	grep -qE "$1" "$cfg" || { echo "check-haproxy: FAIL: $cfg lacks: $2" >&2; fail=1; }
}
need '^ *http-request disable-l7-retry if !replayable !keyed$' 'no layer-7 retry for requests that may not be replayed'
need '^ *acl replayable method GET HEAD$' 'GET and HEAD as the replayable methods'
need '^ *acl keyed req\.hdr\(Idempotency-Key\) -m found$' 'writes with an Idempotency-Key as replayable'
need '^ *http-check send meth GET uri /healthz ' 'the health check on /healthz'
need '^ *balance uri whole$' 'content GETs hashed by URI (one host caches a chapter)'
[ "$fail" = 0 ] || exit 1
echo "check-haproxy: ok ($("$HAPROXY" -v | head -n 1))"
