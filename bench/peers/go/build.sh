#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# build.sh - builds bench/run's Go peer (main.go beside this script) offline, in GOPATH mode, from Debian 12's
# packages: golang-go and golang-github-jackc-pgx-v4-dev (its sources and their dependencies under
# /usr/share/gocode/src). No network, no module download. The GOPATH and the build cache are temporary, in a
# directory made next to OUTPUT (or by mktemp) and removed afterwards. A static binary (CGO_ENABLED=0).
# Usage: bench/peers/go/build.sh OUTPUT_BINARY
set -eu

die() { echo "build.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 OUTPUT_BINARY"
src_dir=$(cd "$(dirname "$0")" && pwd)
out=$1
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
out_dir=$(dirname "$out")
gocode=/usr/share/gocode

command -v go >/dev/null 2>&1 || die "go is missing (apt-get install golang-go)"
[ -f "$gocode/src/github.com/jackc/pgx/v4/pgxpool/pool.go" ] ||
	die "pgx v4 is missing from $gocode/src (apt-get install golang-github-jackc-pgx-v4-dev)"
[ -d "$out_dir" ] || mkdir -p "$out_dir" || die "cannot create $out_dir"

tmp=$(mktemp -d "$out_dir/.go-peer-build.XXXXXX" 2>/dev/null) || tmp=$(mktemp -d) || die "mktemp failed"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# GOPATH's first entry must be writable (the sources themselves are read from the Debian tree); HOME and
# GOENV too, so that no user's go env file or GOPROXY setting comes into it
cd "$src_dir"
env GO111MODULE=off GOPATH="$tmp/gopath:$gocode" GOCACHE="$tmp/cache" GOFLAGS= GOENV=off GOTOOLCHAIN=local \
	GOPROXY=off HOME="$tmp" CGO_ENABLED=0 \
	go build -trimpath -o "$out" main.go || die "go build failed"
echo "build.sh: built $out ($(go version | awk '{print $3}'))"
