#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# steady.sh - the benchmark behind acceptance 3 of the database issue: workers = 4 x budget against
# workers = budget, wrk -t2 -c200 for 60 s per round, 2 interleaved rounds; prints req/s, p99 and
# the connections opened during each run (must be 0) side by side.
# Usage: bench/steady.sh [SECONDS [ROUNDS]]
cd "$(dirname "$0")/.." || exit 1
NP_WRK_SECONDS=${1:-60} NP_ROUNDS=${2:-2} exec bash tests/integration/t_db_steady.sh
