#!/bin/sh
# SPDX-License-Identifier: PostgreSQL
# spawn-neonpoold.sh - run neonpoold under spawn-fcgi on 127.0.0.1:PORT in the foreground.
# Usage: spawn-neonpoold.sh CONFIG [PORT]   (CONFIG must say listen = "stdin";)
set -eu
conf=${1:?usage: spawn-neonpoold.sh CONFIG [PORT]}
port=${2:-9000}
neonpoold=${NEONPOOLD:-/usr/sbin/neonpoold}
"$neonpoold" -t -c "$conf"
exec spawn-fcgi -n -a 127.0.0.1 -p "$port" -- "$neonpoold" -c "$conf"
