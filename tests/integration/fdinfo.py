#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""fdinfo.py PID PGPORT: one line describing what PID's descriptors are, for the fd tests.

signalfd=N pipe=N unix_dgram=N unix_listen=path,path unix_stream=N tcp_pg=N tcp_other=N
files=path,path other=N total=N
"""
import os
import sys

pid, pgport = sys.argv[1], int(sys.argv[2])


def unix_table():
    t = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            w = line.split()
            flags, typ, inode = int(w[3], 16), int(w[4], 16), w[6]
            path = w[7] if len(w) > 7 else ""
            t[inode] = (typ, bool(flags & 0x10000), path)
    return t


def tcp_table():
    t = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    w = line.split()
                    rport = int(w[2].rsplit(":", 1)[1], 16)
                    t[w[9]] = rport
        except FileNotFoundError:
            pass
    return t


unix, tcp = unix_table(), tcp_table()
c = {"signalfd": 0, "epoll": 0, "pipe": 0, "unix_dgram": 0, "unix_stream": 0, "tcp_pg": 0, "tcp_other": 0, "other": 0}
listen, files = [], []
fds = os.listdir(f"/proc/{pid}/fd")
for fd in fds:
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if target == "anon_inode:[signalfd]":
        c["signalfd"] += 1
    elif target == "anon_inode:[eventpoll]":
        c["epoll"] += 1
    elif target.startswith("pipe:"):
        c["pipe"] += 1
    elif target.startswith("socket:["):
        ino = target[8:-1]
        if ino in unix:
            typ, is_listen, path = unix[ino]
            if is_listen:
                listen.append(os.path.basename(path))
            elif typ == 2:
                c["unix_dgram"] += 1
            else:
                c["unix_stream"] += 1
        elif ino in tcp:
            c["tcp_pg" if tcp[ino] == pgport else "tcp_other"] += 1
        else:
            c["other"] += 1
    elif target.startswith("/"):
        files.append(os.path.basename(target))
    else:
        c["other"] += 1
print(f"signalfd={c['signalfd']} epoll={c['epoll']} pipe={c['pipe']} unix_dgram={c['unix_dgram']} "
      f"unix_listen={','.join(sorted(listen)) or '-'} unix_stream={c['unix_stream']} "
      f"tcp_pg={c['tcp_pg']} tcp_other={c['tcp_other']} files={','.join(sorted(set(files))) or '-'} "
      f"other={c['other']} total={len(fds)}")
