#!/usr/bin/env python3
# A webhook receiver for the integration tests: records every request it gets, one JSON line
# per request (method, path, headers, body, the status it answered and, with --secret, whether
# X-Arkevent-Signature matched), to --log, as it arrives. It answers 500 to the first
# --fail-first requests, then 200, each after --delay seconds.
#
#   webhook-receiver.py --port 9000 --log /run/recv.jsonl [--fail-first N] [--secret FILE]
#                       [--delay SECS] [--pid-file FILE]
import argparse
import hashlib
import hmac
import json
import os
import socket
import sys
import time
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None
seen = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body are two writes: without this, Nagle holds the body back until the
        # client's delayed ACK, and every answer takes 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        global seen
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with lock:
            seen += 1
            n = seen
        status = 500 if n <= args.fail_first else 200
        sig_ok = None
        if args.secret:
            with open(args.secret, "rb") as f:
                secret = f.read().rstrip(b"\r\n")
            want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            sig_ok = hmac.compare_digest(want, self.headers.get("X-Arkevent-Signature", ""))
        rec = {
            "n": n,
            "t": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "status": status,
            "sigOk": sig_ok,
        }
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        # Recorded on arrival: a test sees the request while the answer is still delayed.
        time.sleep(args.delay)
        reply = b'{"ok": true}' if status == 200 else b'{"error": "not now"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_PUT = do_POST

    def log_message(self, fmt, *a):
        sys.stderr.write("receiver: " + (fmt % a) + "\n")


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--delay", type=float, default=0, help="seconds before answering")
    p.add_argument("--secret")
    p.add_argument("--pid-file")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.pid_file:
        with open(args.pid_file + ".tmp", "w") as f:
            f.write(str(os.getpid()) + "\n")
        os.rename(args.pid_file + ".tmp", args.pid_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
