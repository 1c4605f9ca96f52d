#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
# sd_holder.py - starts a command as systemd starts a Type=notify service with socket units: binds
# the sockets the installed neonpoold*.socket units describe (ListenStream=, SocketMode=,
# SocketGroup=, Backlog=, in the order of the service's Sockets=), passes them at fd 3.. with
# LISTEN_FDS, LISTEN_PID (the command's pid: it must exec in place) and LISTEN_FDNAMES
# (FileDescriptorName=), listens on NOTIFY_SOCKET (every datagram appended to NOTIFY_LOG, one line
# a message) and gives WATCHDOG_USEC from WatchdogSec=. Waits for the service's main process: the
# command, or the one a MAINPID= names (a binary upgrade; like systemd it is the processes' reaper,
# PR_SET_CHILD_SUBREAPER, so the new master is its child once the old one exited); exits with its
# status.
#
# usage: sd_holder.py ROOT UNIT_DIR OUT_DIR COMMAND... (the word @ENV@ in COMMAND is replaced by the
# NAME=VALUE words, for a command that runs `env -i`; without it they are put in the environment)
# ROOT is where the unit's paths are (a chroot); OUT_DIR gets pid, notify.log, status.
import ctypes
import os
import re
import socket
import sys


def unit_keys(path):
    keys = {}
    with open(path) as f:
        for line in f:
            m = re.match(r'^([A-Za-z]+)=(.*)$', line.strip())
            if m:
                keys.setdefault(m.group(1), []).append(m.group(2).strip())
    return keys


def group_id(root, name):
    with open(os.path.join(root, 'etc/group')) as f:
        for line in f:
            parts = line.split(':')
            if parts[0] == name:
                return int(parts[2])
    raise SystemExit('sd_holder: no group %s in %s/etc/group' % (name, root))


def seconds(v):
    m = re.match(r'^(\d+)(s|min|ms)?$', v)
    mult = {'s': 1.0, None: 1.0, 'min': 60.0, 'ms': 0.001}[m.group(2)]
    return float(m.group(1)) * mult


def main():
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, as systemd is
    root, unitdir, out = sys.argv[1:4]
    cmd = sys.argv[4:]
    svc = unit_keys(os.path.join(unitdir, 'neonpoold.service'))
    socks, names = [], []
    for unit in ' '.join(svc.get('Sockets', [])).split():
        k = unit_keys(os.path.join(unitdir, unit))
        path = k['ListenStream'][0]
        host = root + path
        os.makedirs(os.path.dirname(host), exist_ok=True)
        if os.path.lexists(host):
            os.unlink(host)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(host)
        os.chmod(host, int(k.get('SocketMode', ['0666'])[0], 8))
        os.chown(host, 0, group_id(root, k['SocketGroup'][0]) if 'SocketGroup' in k else 0)
        s.listen(int(k.get('Backlog', ['4096'])[0]))
        socks.append(s)
        names.append(k.get('FileDescriptorName', [unit])[0])
    notify_path = root + '/run/sd-holder-notify.sock'
    if os.path.lexists(notify_path):
        os.unlink(notify_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    os.chmod(notify_path, 0o666)
    wd = seconds(svc['WatchdogSec'][0]) if 'WatchdogSec' in svc else 0

    pid = os.fork()
    if pid == 0:
        import fcntl
        high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100) for s in socks]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
            os.set_inheritable(3 + i, True)
            os.close(fd)
        env = {'LISTEN_FDS': str(len(socks)), 'LISTEN_PID': str(os.getpid()),
               'LISTEN_FDNAMES': ':'.join(names), 'NOTIFY_SOCKET': '/run/sd-holder-notify.sock'}
        if wd:
            env['WATCHDOG_USEC'] = str(int(wd * 1e6))
            env['WATCHDOG_PID'] = str(os.getpid())
        words = ['%s=%s' % kv for kv in env.items()]
        if '@ENV@' in cmd:
            i = cmd.index('@ENV@')
            argv = cmd[:i] + words + cmd[i + 1:]
            os.execvp(argv[0], argv)
        os.execvpe(cmd[0], cmd, dict(os.environ, **env))
    # socks stay open here, as systemd keeps a socket unit's socket while the service restarts
    with open(os.path.join(out, 'pid'), 'w') as f:
        f.write('%d\n' % pid)
    log = open(os.path.join(out, 'notify.log'), 'a', buffering=1)
    main, status = pid, None
    while status is None:
        notify.settimeout(0.2)
        while True:
            try:
                msg = notify.recv(4096).decode('utf-8', 'replace')
            except (socket.timeout, BlockingIOError):
                break
            notify.settimeout(0)
            for line in msg.split('\n'):
                if line:
                    log.write(line + '\n')
                if line.startswith('MAINPID=') and line[8:].isdigit() and int(line[8:]) != main:
                    main = int(line[8:])
                    with open(os.path.join(out, 'pid'), 'w') as f:
                        f.write('%d\n' % main)
        while True:
            try:
                done, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                done = 0
            if not done:
                break
            if done == main:
                status = st
    rc = os.waitstatus_to_exitcode(status)
    rc = rc if rc >= 0 else 128 - rc
    with open(os.path.join(out, 'status'), 'w') as f:
        f.write('%d\n' % rc)
    sys.exit(rc)


main()
