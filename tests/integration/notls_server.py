#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""notls_server.py PORT_FILE - a TCP listener on 127.0.0.1 that answers PostgreSQL's SSLRequest
with 'N' (no TLS), as a server with ssl = off does, then closes; writes its port to PORT_FILE."""
import socket
import sys

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = srv.accept()
    c.settimeout(5)
    try:
        head = c.recv(8)
        # SSLRequest: length 8, code 80877103; GSSENCRequest 80877104: refuse both the same way
        if len(head) == 8 and head[4:] in (b"\x04\xd2\x16\x2f", b"\x04\xd2\x16\x30"):
            c.sendall(b"N")
            c.recv(1024)  # libpq gives up ("server does not support SSL") and closes
    except OSError:
        pass
    c.close()
