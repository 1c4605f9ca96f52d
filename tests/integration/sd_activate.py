#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""sd_activate.py NEONPOOLD CONF MAIN_SOCK CONTROL_SOCK CYCLES RUN_S LOG: systemd's part of socket activation.

Creates and holds the listening unix sockets MAIN_SOCK and CONTROL_SOCK (mode 0666, backlog 4096), as
a .socket unit would, then starts neonpoold -c CONF with them at fd 3 and 4 by the LISTEN_FDS protocol
(LISTEN_FDS=2, LISTEN_PID = the daemon's pid, LISTEN_FDNAMES=main:control; every second start without
LISTEN_FDNAMES, so that the daemon matches the sockets by their address), lets it serve RUN_S
seconds, stops it with SIGTERM (what `systemctl stop` sends), waits for its exit and starts it again:
CYCLES starts in all, the last one left running (its pid is printed on the last line, "running PID").
Requests arriving while no daemon runs wait in the sockets' backlog. Each cycle prints one line:
"cycle N pid P started_ms S exit E stop_ms T". Writes the daemon's output to LOG.
"""
import os
import signal
import socket
import subprocess
import sys
import time

neonpoold, conf, main_path, control_path = sys.argv[1:5]
cycles, run_s, log = int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]


def listener(path):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0)
    s.bind(path)
    os.umask(old)
    s.listen(4096)
    return s


socks = [listener(main_path), listener(control_path)]
fds = [s.fileno() for s in socks]
# The descriptors go to 3 and 4 in the child. LISTEN_PID must be the daemon's own pid, known only in
# the child: a shell sets it and execs the daemon (same pid), the way systemd sets it after fork.
wrap = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', neonpoold, "-c", conf]
env = dict(os.environ, LISTEN_FDS="2", LISTEN_FDNAMES="main:control")
env.pop("LISTEN_PID", None)
env_unnamed = dict(env)
env_unnamed.pop("LISTEN_FDNAMES")


def place_fds():
    high = [os.dup(fd) for fd in fds]
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i)  # dup2 clears FD_CLOEXEC on the copy
    for fd in high:
        os.close(fd)


logf = open(log, "ab")
proc = None
for n in range(1, cycles + 1):
    t0 = time.monotonic()
    proc = subprocess.Popen(wrap, env=env if n % 2 else env_unnamed, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                            preexec_fn=place_fds, pass_fds=(3, 4), start_new_session=True)
    started = time.monotonic()
    if n == cycles:
        print("running %d" % proc.pid, flush=True)
        break
    time.sleep(run_s)
    if proc.poll() is not None:
        print("cycle %d pid %d exited early with %d" % (n, proc.pid, proc.returncode), flush=True)
        sys.exit(1)
    ts = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    print("cycle %d pid %d started_ms %d exit %d stop_ms %d" % (
        n, proc.pid, (started - t0) * 1000, rc, (time.monotonic() - ts) * 1000), flush=True)
# keep holding the sockets while the last daemon serves, until told to stop (SIGTERM to us)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    time.sleep(1)
