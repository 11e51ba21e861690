#!/usr/bin/env python3
"""Relay throughput, latency and loss (make bench; not a test).

- 200,000 stanzas of about 200 bytes from one component (cb1) to another
  (cb2) through one xcomp-server, once directly and once through xcompd's
  relay, in the same run: both rates and their ratio;
- the median added latency per stanza (1,000 one-at-a-time round trips each way);
- the loss count during a SIGKILL failover under a steady stream, with
  relay-replay off and on (the far component sits on both nodes).
BENCH_STANZAS sets the count. Loopback only; everything stopped by pid.
"""

import os
import re
import signal
import socket
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import xcomptest as xt  # noqa: E402
from agenttest import DOMAIN, Agent, Unbound, a_record, free_port, srv_record  # noqa: E402

N = int(os.environ.get("BENCH_STANZAS", "200000"))
CB1, CB2 = "cb1." + DOMAIN, "cb2." + DOMAIN
SECRET = "s3cret"
PAD = "x" * 120


def stanza(i):
    return ("<message from='%s' to='%s' id='%d'><body>%s</body></message>" % (CB1, CB2, i, PAD))


def node(wd, name, ip):
    s = xt.Server(wd, name=name, domain=DOMAIN, listen=(ip + ":0",), bridges=("cb2",))
    s.must("callbridge", "add-secret", "cb1", input=SECRET + "\n")
    s.secrets["cb1"] = SECRET
    s.host = "%s.%s" % (name, DOMAIN)
    return s.start()


def receive_count(sock, n, deadline):
    """Read until n stanzas arrived; the time of the last byte."""
    got, tail = 0, b""
    sock.settimeout(1.0)
    while got < n and time.monotonic() < deadline:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            break
        chunk = tail + data
        got += chunk.count(b"</message>")
        tail = chunk[-16:]
        # A closing tag split across reads would count twice: drop it from the tail.
        if b"</message>" in tail:
            tail = b""
    return got, time.monotonic()


def throughput(sender, receiver, n):
    payload = "".join(stanza(i) for i in range(n)).encode()
    t0 = time.monotonic()
    import threading
    result = {}

    def rx():
        result["got"], result["t"] = receive_count(receiver.sock, n, t0 + 120)
    t = threading.Thread(target=rx)
    t.start()
    sender.sock.sendall(payload)
    t.join()
    return result["got"], result["got"] / (result["t"] - t0)


def latency(sender, receiver, rounds=1000):
    times = []
    receiver.sock.settimeout(5)
    for i in range(rounds):
        s = stanza(i).encode()
        t0 = time.perf_counter()
        sender.sock.sendall(s)
        buf = b""
        while b"</message>" not in buf:
            buf += receiver.sock.recv(4096)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def local_client(port):
    c = xt.Client(("127.0.0.1", port), name="local")
    c.open_stream(CB1)
    c.handshake(SECRET)
    return c


def loss(wd, replay):
    """A steady stream (2,000 a second for 3 s) while the active node is SIGKILLed."""
    sub = os.path.join(wd, "loss-%s" % ("on" if replay else "off"))
    os.makedirs(sub)
    na, nb = node(sub, "a", "127.0.0.1"), node(sub, "b", "127.0.0.2")
    u = Unbound(sub, [srv_record(10, 1, na.address[1], na.host), a_record(na.host, "127.0.0.1"),
                      srv_record(20, 1, nb.address[1], nb.host), a_record(nb.host, "127.0.0.2")])
    u.start()
    port = free_port(kind=socket.SOCK_STREAM)
    a = Agent(sub, secret=SECRET, dns_server=u.address, log_level="warning",
              relay_listen="127.0.0.1:%d" % port, relay_replay="on" if replay else "off")
    try:
        a.start()
        a.wait_connected(server="%s:%d" % (na.host, na.address[1]))
        a.wait_status(lambda s: s.get("relay") == "listening", 5)
        local = local_client(port)
        far = [na.component("cb2"), nb.component("cb2")]
        total = 6000
        t0 = time.monotonic()
        for i in range(total):
            if i == total // 2:
                na.process.signal(signal.SIGKILL)
            local.sock.sendall(stanza(i).encode())
            delay = t0 + (i + 1) / 2000.0 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        a.wait_connected(seconds=10, server="%s:%d" % (nb.host, nb.address[1]))
        seen = set()
        for c in far:
            text = ""
            c.sock.settimeout(1.0)
            while True:
                try:
                    d = c.sock.recv(1 << 20)
                except OSError:
                    break
                if not d:
                    break
                text += d.decode(errors="replace")
            seen |= {int(x) for x in re.findall(r"id='(\d+)'", text)}
        return total - len(seen & set(range(total))), total
    finally:
        a.stop()
        u.stop()
        na.stop()
        nb.stop()


def main():
    with xt.Workdir("bench-relay") as wd:
        srv = node(wd.path, "s", "127.0.0.1")
        u = Unbound(wd.path, [srv_record(10, 1, srv.address[1], srv.host),
                              a_record(srv.host, "127.0.0.1")]).start()
        a = None
        try:
            rx = srv.component("cb2")
            # Directly: cb1 to the server itself.
            direct = srv.component("cb1")
            got_d, rate_d = throughput(direct, rx, N)
            lat_d = latency(direct, rx)
            direct.close()
            time.sleep(0.3)
            # Through the relay: cb1 to the agent, the agent to the server.
            port = free_port(kind=socket.SOCK_STREAM)
            a = Agent(wd.path, secret=SECRET, dns_server=u.address, log_level="warning",
                      relay_listen="127.0.0.1:%d" % port, relay_queue=64 << 20).start()
            a.wait_connected()
            a.wait_status(lambda s: s.get("relay") == "listening", 5)
            local = local_client(port)
            got_r, rate_r = throughput(local, rx, N)
            lat_r = latency(local, rx)
            print("%d stanzas of %d bytes, cb1 -> xcomp-server -> cb2:" % (N, len(stanza(N))))
            print("  direct        %9.0f stanzas/s (%d arrived)" % (rate_d, got_d))
            print("  through relay %9.0f stanzas/s (%d arrived)   ratio %.2f (target 0.9)" % (
                rate_r, got_r, rate_r / rate_d))
            print("  median latency: direct %.1f us, through relay %.1f us, added %.1f us "
                  "(target < 100 us)" % (lat_d * 1e6, lat_r * 1e6, (lat_r - lat_d) * 1e6),
                  flush=True)
        finally:
            if a:
                a.stop()
            u.stop()
            srv.stop()
        for replay in (False, True):
            lost, total = loss(wd.path, replay)
            print("SIGKILL failover under a steady stream, relay-replay %s: %d of %d lost" % (
                "on " if replay else "off", lost, total), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
