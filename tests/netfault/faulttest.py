"""faulttest: what the netfault tier's scripts share.

A script does, before anything else:
    import faulttest as ft   (this module enters the namespace: netns.enter())
and then subclasses ft.FaultTest. Everything of tests/integration (xcomptest,
agenttest) is importable; figures are printed with ft.figure() so that the
tier's output lists each scenario's measured figure next to its bound.
"""

import collections
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import netns  # noqa: E402

netns.enter()

import xcomptest as xt  # noqa: E402
from agenttest import AgentLab  # noqa: E402

FIGURES = []


def figure(what, value, bound=None, unit="s"):
    """One measured figure, printed at once and again in the summary."""
    fmt = "%.3f" if unit == "s" else "%.4g"
    line = ("figure: %s: " + fmt + " %s") % (what, value, unit)
    if bound is not None:
        line += (" (bound " + fmt + " %s)") % (bound, unit)
    FIGURES.append(line)
    print(line, flush=True)


def main(test_class):
    rc = xt.main(test_class, sys.argv[1:], programs=("xcompd", "xcomp", "xcomp-server"))
    if FIGURES:
        print("figures:")
        for f in FIGURES:
            print("  " + f[len("figure: "):])
    return rc


class DelayProxy:
    """A TCP proxy on listen_ip that passes every byte on after delay seconds,
    both ways: a node that answers late (a busy one), without netem."""

    def __init__(self, listen_ip, upstream, delay):
        self.upstream = upstream
        self.delay = delay
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((listen_ip, 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.address = self.lsock.getsockname()
        self.running = True
        self.socks = []
        self.to_upstream = b""  # every byte passed on to upstream
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while self.running:
            try:
                down, _ = self.lsock.accept()
            except OSError:
                continue
            up = socket.create_connection(self.upstream, timeout=5)
            up.settimeout(None)  # idle for longer than that is fine
            down.settimeout(None)
            self.socks += [down, up]
            for src, dst in ((down, up), (up, down)):
                q = collections.deque()
                cv = threading.Condition()
                threading.Thread(target=self.read, args=(src, q, cv), daemon=True).start()
                threading.Thread(target=self.write, args=(dst, q, cv), daemon=True).start()

    def read(self, src, q, cv):
        while self.running:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with cv:
                q.append((time.monotonic() + self.delay, data))
                cv.notify()
            if not data:
                return

    def write(self, dst, q, cv):
        while self.running:
            with cv:
                while not q and self.running:
                    cv.wait(0.2)
                if not q:
                    return
                due, data = q.popleft()
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
                if dst.getpeername() == self.upstream:
                    self.to_upstream += data
            except OSError:
                return

    def stop(self):
        self.running = False
        for s in self.socks + [self.lsock]:
            try:
                s.close()
            except OSError:
                pass


class FaultTest(AgentLab):
    """agenttest.AgentLab whose faults are lifted at its end, whatever happens."""

    def setUp(self):
        super().setUp()
        self.cleanups.append(netns.clear)

    def blackhole(self, node, direction="both", **kw):
        """Drop the packets of node's component port (node: an xt.Server)."""
        host, port = node.address
        return netns.drop(host, port, direction, **kw)

    def wait_moved(self, agent, cluster, away_from, seconds, what="failover"):
        """Wait until agent is connected to another node than away_from; the state."""
        gone = cluster.target(away_from)
        return agent.wait_status(lambda s: s["state"] == "connected" and s["server"] != gone,
                                 seconds, what)

    @staticmethod
    def elapsed(t0):
        return time.monotonic() - t0
