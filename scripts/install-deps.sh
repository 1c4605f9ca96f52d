#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# install-deps.sh - install the Debian 12 packages neonpool needs to build, test and serve; only what is missing.
#
# Usage: scripts/install-deps.sh [--serve | --bench] [--print]
#   (none)    everything: what serving needs, plus the test suite's tools (clang, valgrind, lighttpd,
#             pgbouncer, wrk, prometheus, nodejs/npm, chromium, debhelper/lintian, ...)
#   --serve   only what scripts/serve.sh needs: the build tools and libraries, PostgreSQL 15, nginx
#             and the PostgreSQL 15 manual it loads as the sample textbook
#   --bench   everything, plus the peers bench/run compares neonpool with (PHP-FPM + php-pgsql;
#             FastAPI, uvicorn, SQLAlchemy and asyncpg from Debian for /usr/bin/python3; Go and
#             pgx v4) and gnuplot for its curves
#   --print   print the selected packages, one a line, and exit (installs nothing)
# Idempotent: when everything is present it prints one line and changes nothing (no apt-get update).
# As root it installs with apt-get; as another user it uses `sudo -n` when that works, otherwise it
# prints the missing packages and the command to install them, and exits 1.
# Package post-install scripts are kept from starting system services (nginx, lighttpd, pgbouncer,
# postgresql) with a temporary /usr/sbin/policy-rc.d; our tests and serve.sh use their own free ports
# anyway, so a service started regardless does no harm.
set -euo pipefail

# "package probe": the package is present when the probe (an absolute path) exists, or, when the
# probe is "-", when dpkg says the package is installed. Probing by path lets any nginx flavour do.
SERVE_PACKAGES=(
	# build
	"gcc /usr/bin/gcc"
	"make /usr/bin/make"
	"libc6-dev -"
	"pkg-config /usr/bin/pkg-config"
	"autoconf /usr/bin/autoconf"
	"automake /usr/bin/automake"
	"libtool -"
	"libpq-dev -"
	"libcjson-dev -"
	"libconfig-dev -"
	"libfcgi-dev -"
	# the ask turn's language-model upstream
	"libcurl4-openssl-dev -"
	# SHA-256, constant-time compares, base64 (libcrypto)
	"libssl-dev -"
	# serve: a local PostgreSQL, the front server, the PostgreSQL 15 manual (HTML) that serve.sh
	# loads as the sample textbook with `neonpoolctl import`; curl checks that nginx answers
	"postgresql-15 /usr/lib/postgresql/15/bin/initdb"
	"postgresql-client-15 /usr/lib/postgresql/15/bin/psql"
	"nginx-light /usr/sbin/nginx"
	"postgresql-doc-15 /usr/share/doc/postgresql-doc-15/html/index.html"
	"curl /usr/bin/curl"
)

# the test suite's tools (tests/run.sh), on top of SERVE_PACKAGES
TEST_PACKAGES=(
	"libcmocka-dev -"
	# fuzzing: clang with its libFuzzer and sanitizer runtimes (tests/fuzz/run.sh, `make fuzz`)
	"clang /usr/bin/clang"
	"libclang-rt-14-dev -"
	# other front servers, FastCGI client, pooler, load, tools
	"lighttpd /usr/sbin/lighttpd"
	"spawn-fcgi /usr/bin/spawn-fcgi"
	"libfcgi-bin /usr/bin/cgi-fcgi"
	"pgbouncer /usr/sbin/pgbouncer"
	# contrib/haproxy/neonpool.cfg: tests/check-haproxy.sh runs haproxy -c on it (doc/deploy.md)
	"haproxy /usr/sbin/haproxy"
	"wrk /usr/bin/wrk"
	# a real Prometheus scrapes /metrics in t_metrics_prometheus (promtool checks the format)
	"prometheus /usr/bin/prometheus"
	"valgrind /usr/bin/valgrind"
	"openssl /usr/bin/openssl"
	"python3 /usr/bin/python3"
	"procps /usr/bin/ps"
	# the tests' polling loops sleep with bash's loadable sleep: an external one cost 4 ms of CPU each
	"bash-builtins /usr/lib/bash/sleep"
	"util-linux /usr/sbin/runuser"
	# OpenAPI lint (tools/openapi/lint.sh: @redocly/openapi-core from npm); any nodejs >= 18.17 with its npm will do
	"nodejs /usr/bin/node"
	"npm /usr/bin/npm"
	# browser tests of the web page (tests/browser: playwright-core drives Debian's chromium)
	"chromium /usr/bin/chromium"
	# the Debian package (debian/, t_deb_package): dpkg-buildpackage, dh, lintian; systemd-analyze
	# checks the units in `make check`
	"dpkg-dev /usr/bin/dpkg-buildpackage"
	"debhelper /usr/bin/dh"
	"fakeroot /usr/bin/fakeroot"
	"lintian /usr/bin/lintian"
	"systemd /usr/bin/systemd-analyze"
	# t_deb_package: every system call of the daemon under strace -f is inside @system-service
	"strace /usr/bin/strace"
)

# bench/run's peers (issue 11)
BENCH_PACKAGES=(
	"php-fpm /usr/sbin/php-fpm8.2"
	"php-pgsql -"
	"python3-fastapi -"
	"python3-uvicorn -"
	"python3-sqlalchemy -"
	"python3-asyncpg -"
	# uvicorn's best-practice event loop and HTTP parser (it picks them up when present)
	"python3-uvloop -"
	"python3-httptools -"
	# issue 23: the Go peer (net/http + pgx v4, built offline in GOPATH mode from Debian's sources)
	"golang-go /usr/bin/go"
	"golang-github-jackc-pgx-v4-dev -"
	# the open-loop curves' plots (SVG)
	"gnuplot-nox /usr/bin/gnuplot"
)
usage() { echo "usage: install-deps.sh [--serve | --bench] [--print]" >&2; exit 2; }
mode=test
print=0
for arg in "$@"; do
	case $arg in
	--serve) mode=serve ;;
	--bench) mode=bench ;;
	--print) print=1 ;;
	*) usage ;;
	esac
done
PACKAGES=("${SERVE_PACKAGES[@]}")
case $mode in
test) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
bench) PACKAGES+=("${TEST_PACKAGES[@]}" "${BENCH_PACKAGES[@]}") ;;
esac
if [ "$print" = 1 ]; then
	for entry in "${PACKAGES[@]}"; do echo "${entry%% *}"; done
	exit 0
fi

missing=()
for entry in "${PACKAGES[@]}"; do
	pkg=${entry%% *}
	probe=${entry#* }
	if [ "$probe" = "-" ]; then
		status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
		[ "$status" = "install ok installed" ] && continue
	else
		[ -e "$probe" ] && continue
	fi
	missing+=("$pkg")
done

# The browser tests' pinned npm packages (tests/browser/package-lock.json: playwright-core,
# axe-core), once node and npm are there; a failure (no registry) only warns: serving needs none.
npm_deps() {
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	[ "$mode" != serve ] || return 0
	[ -x /usr/bin/npm ] || return 0
	"$here/tests/browser/install.sh" || echo "install-deps: warning: the browser tests' npm packages are not installed" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages present"
	npm_deps
	exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO=(sudo -n)
else
	echo "install-deps: not root and no password-less sudo; as root run:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

# Keep postinst scripts from starting services, unless a policy is already in place (containers
# often ship one); remove only a policy we created.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	"${SUDO[@]}" sh -c "printf '#!/bin/sh\n# temporary, from neonpool scripts/install-deps.sh\nexit 101\n' > $policy && chmod 755 $policy"
	created_policy=1
fi
cleanup() {
	if [ "$created_policy" = 1 ]; then
		"${SUDO[@]}" rm -f "$policy"
	fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
# Slim images exclude /usr/share/doc/* (a dpkg path-exclude); the manual we serve lives there: a
# later --path-include wins. A package that dpkg calls installed while its probe is absent (files
# excluded before) is reinstalled with that include.
DOC_INCLUDE=(-o "Dpkg::Options::=--path-include=/usr/share/doc/postgresql-doc-15/*")
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${DOC_INCLUDE[@]}" "${missing[@]}" </dev/null
reinstall=()
for entry in "${PACKAGES[@]}"; do
	pkg=${entry%% *}
	probe=${entry#* }
	[ "$probe" != "-" ] && [ ! -e "$probe" ] && reinstall+=("$pkg")
done
if [ ${#reinstall[@]} -gt 0 ]; then
	echo "install-deps: installed but files missing (excluded by dpkg?): ${reinstall[*]}: reinstalling"
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${DOC_INCLUDE[@]}" "${reinstall[@]}" </dev/null
fi
echo "install-deps: installed: ${missing[*]}"
npm_deps
