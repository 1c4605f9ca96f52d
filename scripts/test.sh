#!/usr/bin/env bash
# SPDX-License-Identifier: PostgreSQL
# test.sh - run the whole test suite (tests/run.sh: deps, build, unit, integration, sanitizers, valgrind, distcheck).
exec "$(dirname "$0")/../tests/run.sh" "$@"
