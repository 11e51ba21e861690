#!/usr/bin/env python3
"""http_receiver: an events receiver for test_event.py (standard library only).

Listens on 127.0.0.1 (a free port, written to --port-file once it is bound),
records every POST, and answers as its control file says, re-read every
50 ms and before each answer:

    ok     200, and the body is appended to --out (one JSON per line)
    500    500 Internal Server Error
    hang   no answer; the request is held until the client gives up
    big    200 with a 1 MiB body (the body is recorded as with ok)
    endless  200 announcing a 1 GiB body, written until the client stops
           reading it; the bytes written are logged to standard error as
           "endless answer: N bytes sent" (the body is recorded as with ok)
    down   the listening socket is closed: connections are refused; it is
           bound again, on the same port, when the mode changes back

A missing or empty control file means ok. --requests gets one JSON line per
request: {"mode", "body", "content-type", "user-agent", "time"}. With
--cert/--key it speaks https (ssl, the handshake in the request's thread).
Runs until it is stopped by its pid (SIGTERM).

    http_receiver.py --port-file F --out F [--requests F] [--control F]
        [--cert F --key F]
"""

import argparse
import http.server
import json
import os
import select
import socket
import socketserver
import ssl
import sys
import threading
import time

MODES = ("ok", "500", "hang", "big", "endless", "down")


class Receiver(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, args):
        super().__init__(("127.0.0.1", 0), Handler, bind_and_activate=True)
        self.args = args
        self.lock = threading.Lock()
        self.ctx = None
        if args.cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(args.cert, args.key)
        self.timeout = 0.05
        self.up = True

    def mode(self):
        try:
            with open(self.args.control) as f:
                m = f.read().strip()
        except (TypeError, FileNotFoundError):
            m = ""
        return m if m in MODES else "ok"

    def record(self, path, obj):
        if not path:
            return
        with self.lock, open(path, "a", encoding="utf-8") as f:
            f.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")

    def get_request(self):
        conn, addr = self.socket.accept()
        if self.ctx is not None:
            conn = self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        sys.stderr.write("http_receiver: %s: %s\n" % (type(e).__name__, e))

    def set_up(self, up):
        """Close the listener (connections refused) or bind it again."""
        if up == self.up:
            return
        if up:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(self.server_address)
            s.listen(16)
            self.socket = s
        else:
            self.socket.close()
        self.up = up

    def run(self):
        while True:
            self.set_up(self.mode() != "down")
            if self.up:
                self.handle_request()
            else:
                time.sleep(0.05)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: no Nagle wait between them.
    disable_nagle_algorithm = True

    def setup(self):
        self.request.settimeout(5)
        if self.server.ctx is not None:
            self.request.do_handshake()
        super().setup()

    def log_message(self, fmt, *args):
        sys.stderr.write("http_receiver: %s\n" % (fmt % args))

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", errors="replace")
        mode = self.server.mode()
        self.server.record(self.server.args.requests, {
            "mode": mode, "body": body, "time": time.monotonic(),
            "content-type": self.headers.get("Content-Type"),
            "user-agent": self.headers.get("User-Agent")})
        if mode == "hang":
            self.hang()
            return
        if mode == "down":
            # A kept-alive connection outlives the listener: close it unanswered.
            self.close_connection = True
            return
        if mode == "500":
            self.answer(500, b"no\n")
            return
        self.server.record(self.server.args.out, body)
        if mode == "endless":
            self.endless()
            return
        self.answer(200, b"x" * (1 << 20) if mode == "big" else b"ok\n")

    def endless(self):
        """200 with a 1 GiB body, written until the client closes or stalls."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(1 << 30))
        self.end_headers()
        chunk, sent = b"x" * 65536, 0
        try:
            while sent < (1 << 30):
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        sys.stderr.write("http_receiver: endless answer: %d bytes sent\n" % sent)
        self.close_connection = True

    def hang(self):
        """Hold the request until the client closes it (or 60 s pass)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.request], [], [], 0.05)
            if r:
                try:
                    if not self.request.recv(1):
                        break
                except (OSError, ssl.SSLError):
                    break
        self.close_connection = True

    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the client cut the big answer short


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--requests")
    p.add_argument("--control")
    p.add_argument("--cert")
    p.add_argument("--key")
    args = p.parse_args()
    srv = Receiver(args)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.run()


if __name__ == "__main__":
    main()
