#!/usr/bin/env python3
# SPDX-License-Identifier: PostgreSQL
"""llm_mock.py - a local stand-in for an OpenAI-compatible chat-completions upstream, for the
ask tests (issue 9). Python standard library only.

usage: llm_mock.py PORT_FILE [--key KEY]
Listens on 127.0.0.1 (a free port, written to PORT_FILE once listening).

POST /v1/chat/completions  the wire format: {"model", "messages", "stream"}; with "stream": true
    `data: {"choices":[{"delta":{"content":...}}]}` chunks, a final chunk with finish_reason,
    `data: [DONE]`; else one chat.completion JSON. The answer echoes which passages the prompt
    numbered: "Passages seen: [1] <title> | [2] <title> ... ." then filler words citing [1].
    With --key, a request without `Authorization: Bearer KEY` gets 401.
POST /_control  JSON: how the next requests behave (kept until changed):
    ttft_ms       delay before the first token (default 0)
    tokens        number of tokens (words) in the answer (default 20)
    tokens_per_s  pace of the tokens after the first (default 1000)
    error_after   after this many tokens send a mid-stream error event and close (-1: never)
    stall_after   after this many tokens stop sending, keeping the connection open (-1: never)
    fail_first    the next this many requests get fail_status (default 0) ...
    fail_status   ... 429 or 500 (default 500), with Retry-After: retry_after (seconds, when > 0)
GET /_log  JSON list of records, one per request: {"t_start", "t_first_token", "t_end", "status",
    "stream", "auth_ok", "model", "passages": [numbers seen in the system prompt], "messages",
    "tokens_sent", "disconnected": true when the client went away before the end, "t_disconnect"}.
POST /_reset  clears the log and the behaviour.
"""
import argparse
import json
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULTS = {"ttft_ms": 0, "tokens": 20, "tokens_per_s": 1000, "error_after": -1, "stall_after": -1,
            "fail_first": 0, "fail_status": 500, "retry_after": 0}
STATE = {"behaviour": dict(DEFAULTS), "log": [], "lock": threading.Lock()}
KEY = None


def now():
    return time.time()


class Gone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_log":
            with STATE["lock"]:
                self.send_json(200, STATE["log"])
        else:
            self.send_json(404, {"error": {"message": "no such path"}})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        raw = self.read_body()
        if self.path == "/_control":
            with STATE["lock"]:
                STATE["behaviour"].update(json.loads(raw or b"{}"))
                self.send_json(200, STATE["behaviour"])
            return
        if self.path == "/_reset":
            with STATE["lock"]:
                STATE["behaviour"] = dict(DEFAULTS)
                STATE["log"] = []
            self.send_json(200, {})
            return
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"error": {"message": "no such path"}})
            return
        rec = {"t_start": now(), "t_first_token": None, "t_end": None, "status": 200, "tokens_sent": 0,
               "disconnected": False, "t_disconnect": None}
        with STATE["lock"]:
            b = dict(STATE["behaviour"])
            STATE["log"].append(rec)
            fail = b["fail_first"] > 0
            if fail:
                STATE["behaviour"]["fail_first"] -= 1
        auth = self.headers.get("Authorization", "")
        rec["auth_ok"] = KEY is None or auth == "Bearer " + KEY
        try:
            req = json.loads(raw)
        except ValueError:
            rec["status"] = 400
            self.send_json(400, {"error": {"message": "not JSON"}})
            return
        msgs = req.get("messages") or []
        rec["model"] = req.get("model")
        rec["stream"] = bool(req.get("stream"))
        rec["messages"] = msgs
        system = " ".join(m.get("content", "") for m in msgs if m.get("role") == "system")
        titles = {}
        for m in re.finditer(r"^\[(\d+)\] (.*)$", system, re.M):
            titles.setdefault(int(m.group(1)), m.group(2).strip())
        rec["passages"] = sorted(titles)
        if not rec["auth_ok"]:
            rec["status"] = 401
            self.send_json(401, {"error": {"message": "invalid api key"}})
            return
        if fail:
            rec["status"] = b["fail_status"]
            extra = {"Retry-After": str(b["retry_after"])} if b["retry_after"] > 0 else {}
            self.send_json(b["fail_status"], {"error": {"message": "mock failure"}}, extra)
            rec["t_end"] = now()
            return
        words = ("Passages seen: " + " | ".join("[%d] %s" % (n, titles[n]) for n in sorted(titles)) + " .").split()
        while len(words) < b["tokens"]:
            words.append("filler%d" % len(words))
        words = words[:max(b["tokens"], 1)]
        toks = [w + " " for w in words]
        if not rec["stream"]:
            time.sleep(b["ttft_ms"] / 1000.0)
            rec["t_first_token"] = now()
            rec["tokens_sent"] = len(toks)
            self.send_json(200, {"id": "mock-1", "object": "chat.completion", "model": req.get("model"),
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(toks)},
                                              "finish_reason": "stop"}]})
            rec["t_end"] = now()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self.wait(b["ttft_ms"] / 1000.0, rec)
            for i, t in enumerate(toks):
                if i == b["error_after"]:
                    self.chunk('data: {"error":{"message":"mock mid-stream error","type":"server_error"}}\n\n')
                    self.wfile.write(b"0\r\n\r\n")
                    rec["t_end"] = now()
                    self.close_connection = True
                    return
                if i == b["stall_after"]:
                    self.wait(3600, rec)
                if i > 0:
                    self.wait(1.0 / b["tokens_per_s"], rec)
                obj = {"id": "mock-1", "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}
                # stamped before the write: a client may read the chunk before this thread runs again
                if rec["t_first_token"] is None:
                    rec["t_first_token"] = now()
                self.chunk("data: " + json.dumps(obj) + "\n\n")
                rec["tokens_sent"] = i + 1
            self.chunk("data: " + json.dumps({"id": "mock-1", "object": "chat.completion.chunk",
                                              "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n")
            self.chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            rec["t_end"] = now()
        except Gone:
            rec["disconnected"] = True
            rec["t_disconnect"] = now()
            self.close_connection = True

    def chunk(self, text):
        data = text.encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise Gone()

    def wait(self, seconds, rec):
        """Sleep, noticing a client that goes away meanwhile (EOF or reset on the socket)."""
        end = now() + seconds
        while True:
            left = end - now()
            if left <= 0:
                return
            r, _, _ = select.select([self.connection], [], [], min(left, 0.02))
            if r:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if not data:
                    raise Gone()
                time.sleep(min(left, 0.02))


def main():
    global KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("port_file")
    ap.add_argument("--key")
    a = ap.parse_args()
    KEY = a.key
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
