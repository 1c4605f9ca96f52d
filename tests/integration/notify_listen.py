#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""notify_listen.py ADDR OUT [CTL CONF]: the service manager's end of sd_notify, for t_sd_notify.

Binds an AF_UNIX datagram socket at ADDR ("@name": abstract), then writes one JSON line to OUT per
datagram: {"t": seconds since start, "msg": {KEY: value}, "pid": the sender's pid (SO_PASSCRED)}.
On a datagram carrying READY=1 it runs `CTL -c CONF status --json` at once and adds what it saw
("status"): the workers' states and the database health at that moment. Runs until killed.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

addr, out = sys.argv[1], sys.argv[2]
ctl = sys.argv[3] if len(sys.argv) > 3 else None
conf = sys.argv[4] if len(sys.argv) > 4 else None
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
t0 = time.monotonic()
with open(out, "a", buffering=1) as f:
    f.write(json.dumps({"t": 0, "listening": addr}) + "\n")
    while True:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
        msg = {}
        for line in data.decode("utf-8", "replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                msg[k] = v
        rec = {"t": round(time.monotonic() - t0, 3), "msg": msg, "pid": pid}
        if msg.get("READY") == "1" and ctl:
            r = subprocess.run([ctl, "-c", conf, "status", "--json"], capture_output=True, text=True)
            try:
                rec["status"] = json.loads(r.stdout)
            except ValueError:
                rec["status"] = {"error": r.stderr.strip()}
        f.write(json.dumps(rec) + "\n")
