#!/usr/bin/env python3
"""xcompd in front of a three-node cluster, the node of its session
SIGKILLed (make bench; not a test). Issue 14: the time until a stanza is
routed again to the call bridge whose node died: a far component on a
surviving node pings cb1 every 2 ms from the kill on, until the agent's
answer arrives; and the time until the agent's status file says connected
to another node. Median, p95, max over BENCH_EJABBERD_ROUNDS (10) rounds, for
a real ejabberd 23.01 cluster (tests/integration/ejabberdcluster.py: shared
Mnesia routes, no leader) and beside it xcomp-server's cluster
(tests/integration/clustertest.py; the agent's node is the leader whenever
the agent sits there). After each round the dead node is restarted and
rejoins; the agent stays where it moved.
Real processes on loopback (127.0.0.1-3).
Arguments: the clusters to run (default: ejabberd xcomp-server).
"""

import os
import re
import signal
import statistics
import sys
import threading
import time

TOP = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(TOP), "tests", "integration"))
sys.path.insert(0, TOP)

import xcomptest as xt  # noqa: E402
import failover  # noqa: E402
from agenttest import Agent, Unbound  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_EJABBERD_ROUNDS", "10"))


def report(name, ms):
    print("%-60s median %7.1f ms   p95 %7.1f ms   max %7.1f ms   (%d rounds)" % (
        name, statistics.median(ms), failover.percentile(ms, 95), max(ms), len(ms)), flush=True)


def ping_until_answered(c, frm, to, tag, seconds=20.0, every=0.002):
    """Ping to from c every `every` seconds until one is answered (errors,
    the bounces while to has no route, and late answers to other calls'
    pings are dropped); seconds it took. tag: this call's id prefix."""
    t0 = time.monotonic()
    deadline = t0 + xt.timeout(seconds)
    n = 0
    answer = re.compile(r"<iq\b(?=[^>]*\btype=['\"]result['\"])[^>]*\bid=['\"]%s-" % tag)
    while time.monotonic() < deadline:
        c.send("<iq type='get' id='%s-%d' from='%s' to='%s'><ping xmlns='%s'/></iq>" % (
            tag, n, frm, to, xt.NS_PING))
        n += 1
        end = time.monotonic() + every
        while time.monotonic() < end:
            c._read(end)
            if answer.search(c.pending()):
                c.pos = len(c.data)
                return time.monotonic() - t0
        c.pos = len(c.data)
    raise AssertionError("no answer from %s within %.1f s (%d pings)" % (
        to, xt.timeout(seconds), n))


def watch_moved(agent, old, seen, seconds=30.0):
    """Read the status file every millisecond until it says connected to a
    node other than old: seen["t"], the time of that reading."""
    deadline = time.monotonic() + xt.timeout(seconds)
    while time.monotonic() < deadline:
        s = agent.status()
        if s and s.get("state") == "connected" and s.get("server") != old:
            seen["t"] = time.monotonic()
            return
        time.sleep(0.001)


def rounds(agent, nodes, target, kill, restart, far, far_jid, cb1_jid):
    """ROUNDS rounds: the agent's node SIGKILLed; (routed ms, connected ms).
    far(node) opens far_jid's session on node."""
    routed, connected = [], []
    moved_at = time.monotonic()
    for r in range(ROUNDS):
        st = agent.wait_connected(30)
        node = next(n for n in nodes if target(n) == st["server"])
        f = far(next(n for n in nodes if n is not node))
        ping_until_answered(f, far_jid, cb1_jid, "warm%d" % r)
        # A session up for the agent's STABLE_MS clears its node's failures.
        time.sleep(max(0.0, failover.STABLE - (time.monotonic() - moved_at)))
        seen = {}
        watcher = threading.Thread(target=watch_moved, args=(agent, st["server"], seen))
        watcher.start()
        t0 = time.monotonic()
        kill(node)
        try:
            routed.append(ping_until_answered(f, far_jid, cb1_jid, "kill%d" % r) * 1000)
        finally:
            watcher.join()
        if "t" not in seen:
            raise AssertionError("the agent did not move: %s" % agent.status())
        moved_at = seen["t"]
        connected.append((moved_at - t0) * 1000)
        f.close()
        restart(node)
    return routed, connected


def ejabberd(wd):
    import ejabberdcluster as ec
    why = ec.missing()
    if why:
        print("ejabberd cluster: skipped (%s)" % why, flush=True)
        return None
    path = os.path.join(wd.path, "ejabberd")
    os.makedirs(path)
    cl = ec.EjabberdCluster(path)
    u = agent = None
    try:
        cl.start()
        u = Unbound(path, cl.a_records() + cl.records("xmpp-component", (0, 1, 2))).start()
        agent = Agent(path, secret=ec.SECRETS["cb1"], dns_server=u.address,
                      log_level="warning").start()

        def kill(n):
            n.process.signal(signal.SIGKILL)

        def restart(n):
            n.kill()
            n.restart()
            cl.wait_members()
        return rounds(agent, cl.nodes, lambda n: n.target, kill, restart,
                      lambda n: n.component(ec.FAR), ec.jid(ec.FAR), ec.jid("cb1"))
    finally:
        for p in (agent, u):
            if p:
                p.stop()
        cl.stop()


def xcomp_server(wd):
    from clustertest import SECRETS, Lab, jid
    path = os.path.join(wd.path, "xcomp-server")
    os.makedirs(path)
    lab = Lab(path, policy="kick-new")
    u = agent = None
    try:
        lab.start()
        u = Unbound(path, lab.records()).start()
        agent = Agent(path, secret=SECRETS["cb1"], dns_server=u.address,
                      log_level="warning").start()

        def kill(n):
            n.process.signal(signal.SIGKILL)

        def restart(n):
            n.process.wait()
            lab.restart(n)
            lab.wait_for_leader(seconds=15)
        return rounds(agent, lab.nodes, lab.target, kill, restart,
                      lambda n: lab.component(n, "cb3"), jid("cb3"), jid("cb1"))
    finally:
        for p in (agent, u):
            if p:
                p.stop()
        lab.stop()


def main(which):
    results = {}
    with xt.Workdir("bench-ejabberd-cluster") as wd:
        if "ejabberd" in which:
            results["ejabberd 23.01"] = ejabberd(wd)
        if "xcomp-server" in which:
            results["xcomp-server"] = xcomp_server(wd)
    print("agent's node SIGKILLed (3 nodes, loopback):")
    for name, got in results.items():
        if got is None:
            continue
        routed, connected = got
        report("  %s: a stanza routed again to cb1" % name, routed)
        report("  %s: the agent connected to another node" % name, connected)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["ejabberd", "xcomp-server"]))
