#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# upgrade.sh - the long form of the binary upgrade's test: 10 upgrades alternating two builds under
# wrk -c200 on the book route, 20 writes a second with Idempotency-Keys and 20 streamed asks at a
# time on a model stand-in taking 5 s an answer, then the three rollbacks; prints each figure.
# Usage: bench/upgrade.sh [UPGRADES [CONNECTIONS]]
cd "$(dirname "$0")/.." || exit 1
NP_UPGRADES=${1:-10} NP_UPGRADE_CONNS=${2:-200} NP_UPGRADE_LONG=1 exec bash tests/integration/t_upgrade.sh
