#!/usr/bin/env python3
"""Blackhole detection of xcompd (make bench; not a test).

The active node's packets are dropped both ways (nftables inside a network
namespace of the bench's own, see tests/netfault/netns.py) at a random
moment of its keepalive cycle; the figure is the time until the status file
says connected to another node. Median, p95 and max over BENCH_ROUNDS
rounds (20 by default), for keepalive = 1, keepalive-timeout = 1 and for
the defaults (BENCH_BLACKHOLE="1/1 default" chooses; "30/10" measures the
defaults of xcomp 0.x). Where no namespace can be made it says so and skips.
"""

import os
import random
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "netfault"))

import faulttest  # noqa: E402,F401  (enters the namespace)
assert faulttest
import netns  # noqa: E402
import xcomptest as xt  # noqa: E402
from agenttest import Agent, Cluster, Unbound  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
# xcompd's default keepalive and keepalive-timeout (src/conf.c, xcompd.conf(5)).
DEFAULTS = (10, 5)
CASES = os.environ.get("BENCH_BLACKHOLE", "1/1 default").split()


def percentile(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def one_case(wd, case):
    keys, ka = {}, DEFAULTS[0]
    if case != "default":
        ka, kt = (int(x) for x in case.split("/"))
        keys = {"keepalive": ka, "keepalive_timeout": kt}
    # kick-old: a new agent's session replaces what a blackhole left behind.
    c = Cluster(wd, policies={n: "kick-old" for n in "abc"}).start()
    u = Unbound(wd, c.records(), name="unbound-" + case.replace("/", "-")).start()
    rnd = random.Random(2026)
    times = []
    try:
        for i in range(ROUNDS):
            a = Agent(wd, name="xcompd-%s-%d" % (case.replace("/", "-"), i),
                      dns_server=u.address, **keys).start()
            try:
                st = a.wait_connected(10)
                node = c.by_server(st["server"])
                # The blackhole comes at a random point of the keepalive cycle.
                time.sleep(rnd.uniform(0, ka))
                host, port = node.address
                with netns.drop(host, port):
                    t0 = time.monotonic()
                    a.wait_status(lambda s: s["state"] == "connected" and
                                  s["server"] != c.target(node), 120, "failover")
                    times.append(time.monotonic() - t0)
            finally:
                a.stop()
    finally:
        u.stop()
        c.stop()
    name = "keepalive %s" % case if case != "default" else "defaults %d/%d" % DEFAULTS
    print("blackhole, %-22s median %6.2f s   p95 %6.2f s   max %6.2f s   (%d rounds)" % (
        name, statistics.median(times), percentile(times, 95), max(times), len(times)),
        flush=True)


def main():
    with xt.Workdir("bench-blackhole") as wd:
        for case in CASES:
            one_case(wd.path, case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
