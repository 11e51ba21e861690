#!/usr/bin/env python3
"""Failover latency of xcompd (make bench; not a test).

(a) the active node is SIGKILLed: time until the status file says connected
    to another node;
(b) the active node is SIGSTOPped with keepalive = 1, keepalive-timeout = 1:
    time until connected elsewhere;
(c) as (a) with tls = direct: every node a TLS listener with its own
    certificate chain (certtool), the agent verifying them.
50 rounds each by default (BENCH_ROUNDS). Prints median, p95 and max, the
agent's peak RSS, and its CPU time over 60 s connected and idle
(BENCH_IDLE_SECONDS). Real unbound, real xcomp-server nodes, loopback only.
"""

import os
import signal
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import xcomptest as xt  # noqa: E402
from agenttest import Agent, Cluster, Unbound  # noqa: E402
from pki import PKI  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "50"))
IDLE = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
STABLE = 3.2  # the agent's STABLE_MS, plus a margin: each round starts a fresh round


def percentile(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def report(name, ms):
    print("%-44s median %7.1f ms   p95 %7.1f ms   max %7.1f ms   (%d rounds)" % (
        name, statistics.median(ms), percentile(ms, 95), max(ms), len(ms)), flush=True)


def wait_moved(agent, cluster, node, seconds):
    """Poll the status file (1 ms) until connected to a node other than node."""
    old = cluster.target(node)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        st = agent.status()
        if st and st.get("state") == "connected" and st.get("server") != old:
            return st
        time.sleep(0.001)
    raise AssertionError("no failover within %.1f s: %s" % (seconds, agent.status()))


def rounds(agent, cluster, sig, seconds):
    times = []
    for _ in range(ROUNDS):
        st = agent.wait_connected(10)
        node = cluster.by_server(st["server"])
        time.sleep(STABLE)
        t0 = time.monotonic()
        node.process.signal(sig)
        wait_moved(agent, cluster, node, seconds)
        times.append((time.monotonic() - t0) * 1000)
        if sig == signal.SIGSTOP:
            node.process.signal(signal.SIGCONT)
        else:
            node.process.wait()
            cluster.restart(node)
    return times


def memory_kb(pid):
    """VmHWM and RssAnon from /proc/PID/status, Pss from smaps_rollup."""
    out = {}
    for path in ("/proc/%d/status" % pid, "/proc/%d/smaps_rollup" % pid):
        with open(path) as f:
            for line in f:
                k = line.split(":")[0]
                if k in ("VmHWM", "RssAnon", "Pss"):
                    out[k] = int(line.split()[1])
    return out


def tls_rounds(workdir):
    """(c): the same as (a) over TLS, on a cluster of its own."""
    os.makedirs(workdir)
    pki = PKI(workdir)
    cluster = Cluster(workdir, pki=pki).start()
    unbound = Unbound(workdir, cluster.records(prio=(10, 10, 10))).start()
    agent = None
    try:
        agent = Agent(workdir, name="tls", dns_server=unbound.address, log_level="warning",
                      tls="direct", tls_ca=pki.ca).start()
        report("(c) SIGKILL of the active node, tls = direct",
               rounds(agent, cluster, signal.SIGKILL, 5))
    finally:
        if agent:
            agent.stop()
        unbound.stop()
        cluster.stop()


def main():
    with xt.Workdir("bench-failover") as wd:
        tls_rounds(os.path.join(wd.path, "tls"))
        cluster = Cluster(wd.path).start()
        unbound = Unbound(wd.path, cluster.records(prio=(10, 10, 10))).start()
        agents = []
        try:
            a = Agent(wd.path, name="kill", dns_server=unbound.address, log_level="warning")
            agents.append(a.start())
            report("(a) SIGKILL of the active node", rounds(a, cluster, signal.SIGKILL, 5))
            a.stop()
            b = Agent(wd.path, name="stop", dns_server=unbound.address, log_level="warning",
                      keepalive=1, keepalive_timeout=1)
            agents.append(b.start())
            report("(b) SIGSTOP, keepalive 1 s + timeout 1 s", rounds(b, cluster, signal.SIGSTOP, 5))
            b.stop()
            c = Agent(wd.path, name="idle", dns_server=unbound.address, log_level="warning")
            agents.append(c.start())
            c.wait_connected()
            cpu0 = c.cpu_seconds()
            time.sleep(IDLE)
            cpu = c.cpu_seconds() - cpu0
            m = memory_kb(c.pid)
            print("agent peak RSS (VmHWM)                       %d kB  (anonymous %d kB, "
                  "PSS %d kB; the rest is shared library pages)" % (
                      m["VmHWM"], m["RssAnon"], m["Pss"]), flush=True)
            print("agent CPU time over %.0f s connected and idle  %.3f s (keepalive 30 s)" % (
                IDLE, cpu), flush=True)
        finally:
            for x in agents:
                x.stop()
            unbound.stop()
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
