#!/usr/bin/env python3
"""Resident memory of xcomp-server holding N idle authenticated components
(make bench; not a test). N = BENCH_COMPONENTS, default 1000, each a
different call bridge on its own TCP connection over loopback."""

import hashlib
import os
import re
import resource
import socket
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import xcomptest as xt  # noqa: E402

N = int(os.environ.get("BENCH_COMPONENTS", "1000"))
DOMAIN = "tptac9.test"


def rss_kb(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "VmHWM", "RssAnon"):
                out[k] = int(line.split()[1])
    return out


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with xt.Workdir("bench-idle") as wd:
        srv = xt.Server(wd.path, bridges=(), domain=DOMAIN)
        # 1000 call bridges written at once rather than by 1000 commands.
        secrets = {"cb%d" % i: "secret%d" % i for i in range(N)}
        path = os.path.join(srv.dir, "callbridges")
        with open(path, "w") as f:
            f.write("".join("%s = %s\n" % kv for kv in secrets.items()))
        os.chmod(path, 0o600)
        srv.start()
        socks = []
        try:
            before = rss_kb(srv.process.pid)
            t0 = time.monotonic()
            for name, secret in secrets.items():
                s = socket.create_connection(srv.address, timeout=5)
                s.sendall(("<stream:stream xmlns='jabber:component:accept' xmlns:stream="
                           "'http://etherx.jabber.org/streams' to='%s.%s'>" % (name, DOMAIN)).encode())
                head = b""
                while b"id=" not in head or not head.endswith(b">"):
                    head += s.recv(4096)
                sid = re.search(rb"id='([^']+)'", head).group(1).decode()
                s.sendall(("<handshake>%s</handshake>" % hashlib.sha1(
                    (sid + secret).encode()).hexdigest()).encode())
                reply = s.recv(4096)
                if b"<handshake/>" not in reply:
                    raise AssertionError("%s: %r" % (name, reply))
                socks.append(s)
            elapsed = time.monotonic() - t0
            time.sleep(0.5)
            after = rss_kb(srv.process.pid)
            listed = srv.cmd("status").stdout.count("Component  :")
            print("xcomp-server: %d idle authenticated components (status lists %d), "
                  "connected in %.2f s" % (N, listed, elapsed))
            print("  RSS before %d kB, with them %d kB (anonymous %d kB): %.1f kB a component"
                  % (before["VmRSS"], after["VmRSS"], after["RssAnon"],
                     (after["VmRSS"] - before["VmRSS"]) / N), flush=True)
            print("  measured from /proc/%d/status (VmRSS, RssAnon)" % srv.process.pid)
        finally:
            for s in socks:
                s.close()
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
