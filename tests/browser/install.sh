#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# install.sh - install the browser tests' pinned npm packages (playwright-core, axe-core: see
# package.json and package-lock.json) into tests/browser/node_modules (git-ignored), with
# `npm ci --ignore-scripts` (playwright-core downloads no browser: the tests drive Debian's
# /usr/bin/chromium). Does nothing when the installed tree matches the lock file.
# Run by scripts/install-deps.sh and by tests/integration/t_browser_*.sh when missing.
# Exit 0 installed, 1 npm failed, 77 no node/npm.
set -u
here=$(cd "$(dirname "$0")" && pwd)
for tool in node npm; do
	command -v "$tool" >/dev/null 2>&1 || { echo "browser-tests: $tool is not installed"; exit 77; }
done
cd "$here" || exit 1
stamp=node_modules/.neonpool-lock
if cmp -s package-lock.json "$stamp" 2>/dev/null && [ -f node_modules/playwright-core/package.json ] &&
	[ -f node_modules/axe-core/axe.min.js ]; then
	exit 0
fi
echo "browser-tests: npm ci (node $(node --version), npm $(npm --version))"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error || { echo "browser-tests: npm ci failed (is the npm registry reachable?)" >&2; exit 1; }
cp package-lock.json "$stamp"
