#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# lint.sh - lint doc/openapi.yaml with Redocly's OpenAPI linter: @redocly/openapi-core (the library that
# `@redocly/cli lint` runs, without the CLI's 200 MB of dependencies) through lint.js, the version pinned
# in package.json and package-lock.json, under the rules of redocly.yaml (recommended-strict: 0 errors
# and 0 warnings to pass).
#
# Usage: tools/openapi/lint.sh [SPEC]      lint SPEC (default doc/openapi.yaml)
#        tools/openapi/lint.sh --install   only install the pinned tools (t_openapi_contract uses them)
#
# `npm ci --ignore-scripts` installs the pinned tree into tools/openapi/node_modules (git-ignored)
# the first time and again whenever package-lock.json changes; it needs the npm registry then.
# Exit 0 clean, 1 lint problems or install failure, 77 when npm (or node) is not installed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
install_only=0
if [ "${1:-}" = --install ]; then
	install_only=1
	shift
fi
spec=${1:-$top/doc/openapi.yaml}
case $spec in /*) ;; *) spec=$PWD/$spec ;; esac

for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "openapi-lint: $tool is not installed (scripts/install-deps.sh installs nodejs and npm)"
		exit 77
	fi
done

cd "$here" || exit 1
# no usage report to Redocly (also `telemetry: off` in redocly.yaml), no update check: once
# installed the lint needs no network
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
stamp=node_modules/.neonpool-lock
if ! cmp -s package-lock.json "$stamp" 2>/dev/null || [ ! -f node_modules/@redocly/openapi-core/package.json ]; then
	echo "openapi-lint: npm ci (node $(node --version), npm $(npm --version))"
	if ! npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; then
		echo "openapi-lint: npm ci failed (is the npm registry reachable?)" >&2
		exit 1
	fi
	cp package-lock.json "$stamp" || exit 1
fi
[ "$install_only" = 1 ] && exit 0
echo "openapi-lint: @redocly/openapi-core $(sed -n 's/^  "version": "\(.*\)",$/\1/p' node_modules/@redocly/openapi-core/package.json) lint $spec"
exec node "$here/lint.js" "$spec"
