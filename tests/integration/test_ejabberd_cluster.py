#!/usr/bin/env python3
"""xcompd at scale: three agents (cb1, cb2, cb3) in front of a real
three-node ejabberd 23.01 cluster on loopback (ejabberdcluster.py: private
epmd, distribution on 127.0.0.1, a cookie of the test's own, nodes 2 and 3
joined to node 1 by ejabberd's own join), each agent preferring a different
node through SRV records served by a real unbound; a local component behind
cb1's relay and a far component on node 3 talk through the cluster's shared
routes while node 1 is SIGKILLed and restarted.

    python3 tests/integration/test_ejabberd_cluster.py [NAME-SUBSTRING...]
"""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import Agent, Unbound, free_port  # noqa: E402
import ejabberdcluster as ec  # noqa: E402
from ejabberdcluster import BRIDGES, FAR, SECRETS, jid  # noqa: E402

CB1, FARJID = jid("cb1"), jid(FAR)
# Each bridge prefers its own node, then the next ones round the ring.
PREFER = {"cb1": (0, 1, 2), "cb2": (1, 2, 0), "cb3": (2, 0, 1)}


def message(i, frm, to, tag):
    return "<message from='%s' to='%s' id='%s%d'><body>number %d</body></message>" % (
        frm, to, tag, i, i)


def ids(text, tag):
    """The numbers of tag's messages in text, in order (duplicates kept);
    error bounces apart."""
    got = []
    for m in re.finditer(r"<message\b[^>]*>", text):
        a = xt.attrs_of(m.group(0)[len("<message"):-1].rstrip("/"))
        mid = a.get("id", "")
        if mid.startswith(tag) and mid[len(tag):].isdigit() and a.get("type") != "error":
            got.append(int(mid[len(tag):]))
    return got


def bounced(text, tag):
    out = []
    for m in re.finditer(r"<message\b[^>]*type=['\"]error['\"][^>]*>", text):
        mid = xt.attrs_of(m.group(0)[len("<message"):-1].rstrip("/")).get("id", "")
        if mid.startswith(tag) and mid[len(tag):].isdigit():
            out.append(int(mid[len(tag):]))
    return out


class EjabberdClusterTest(xt.LabTest):
    prefix = "ejcluster-"

    # ------------------------------------------------------------ set-up

    def cluster(self):
        cl = ec.EjabberdCluster(self.wd.path)
        self.cleanups.append(cl.stop)
        cl.start()
        return cl

    def dns(self, cl):
        rr = cl.a_records()
        for b in BRIDGES:
            rr += cl.records("xmpp-" + b, PREFER[b])
        u = Unbound(self.wd.path, rr).start()
        self.cleanups.append(u.stop)
        return u

    def agent(self, u, bridge, **keys):
        a = Agent(self.wd.path, name="xcompd-" + bridge, secret=SECRETS[bridge],
                  dns_server=u.address, service="_xmpp-%s._tcp" % bridge, **keys)
        a.conf["name"] = bridge
        a.write_conf(a.conf)
        a.start()
        self.cleanups.append(a.stop)
        return a

    def relay_agent(self, u, **keys):
        self.relay_port = free_port()
        return self.agent(u, "cb1", relay_listen="127.0.0.1:%d" % self.relay_port, **keys)

    def local(self, a):
        """The call bridge behind cb1's relay."""
        a.wait_status(lambda s: s.get("relay") == "listening", 10, "the relay listening")
        c = xt.Client(("127.0.0.1", self.relay_port), name="local")
        self.cleanups.append(c.close)
        c.open_stream(CB1)
        c.handshake(SECRETS["cb1"])
        a.wait_status(lambda s: s.get("relay") == "connected", 10, "relay connected")
        return c

    def far(self, node):
        c = node.component(FAR)
        self.cleanups.append(c.close)
        return c

    def wait_moved(self, a, cl, dead, seconds=15):
        """Poll the status file until the agent is connected to a node other
        than dead."""
        return a.wait_status(lambda s: s.get("state") == "connected" and
                             s.get("server") != dead.target, seconds, "moved off " + dead.name)

    def exactly_once(self, far, local, count, tag):
        """count messages far -> cb1, each received once by the local component."""
        drain(local, 0.2)
        far.send("".join(message(i, FARJID, CB1, tag) for i in range(count)))
        got = []
        deadline = time.monotonic() + xt.timeout(10)
        while len(got) < count and time.monotonic() < deadline:
            local._read(deadline)
            got = ids(local.pending(), tag)
        got = ids(drain(local, 0.3), tag)  # what was read and anything after it
        self.assertEqual(sorted(got), list(range(count)),
                         "%d of %d arrived, %d distinct" % (len(got), count, len(set(got))))
        self.assertEqual(bounced(drain(far, 0.05), tag), [])

    # ------------------------------------------------------------ tests

    def test_cluster_failover_rejoin_one_session(self):
        cl = self.cluster()
        x1, x2, x3 = cl.nodes
        print("     bring-up: joins took %s ms" % ", ".join("%.0f" % t for t in cl.join_ms))
        # Loopback only: epmd, the distribution and the service listeners.
        self.assertTrue(all(ec.loopback(ip) for _, ip, _ in ec.listening(cl.epmd.pid)))
        for n in cl.nodes:
            socks = [s for s in n.sockets() if s[0].startswith("tcp")]
            self.assertIn(("tcp", n.ip, n.port), socks, n.name)
            self.assertIn(("tcp", "127.0.0.1", n.dist_port), socks, n.name)
            self.assertEqual([s for s in socks if not ec.loopback(s[1])], [], n.name)
            self.assertIn("is started in the node %s" % n.nodename, n.log_text())

        u = self.dns(cl)
        # backoff-max 1: a node's failure is forgiven a second after its hold
        # ends, so cb1 can come back to node 1 (see below).
        agents = {"cb1": self.relay_agent(u, backoff_min=1, backoff_max=1)}
        agents.update((b, self.agent(u, b)) for b in BRIDGES[1:])
        for b, n in zip(BRIDGES, cl.nodes):
            st = agents[b].wait_connected(15, server=n.target)
            self.assertEqual(st["component"], jid(b))
        # The routes are the cluster's: every node knows every bridge, once.
        cl.wait_routes(cl.nodes, {b: 1 for b in BRIDGES})

        # local (behind cb1's relay, node 1) -> far (node 3) -> local.
        local, far = self.local(agents["cb1"]), self.far(x3)
        cl.wait_routes([x1], {FAR: 1})
        local.send(message(1, CB1, FARJID, "r"))
        raw, e = far.recv_stanza(10)
        self.assertEqual((e.get("id"), e.get("from")), ("r1", CB1), raw)
        far.send(message(2, FARJID, CB1, "r"))
        raw, e = local.recv_stanza(10)
        self.assertEqual((e.get("id"), e.get("from")), ("r2", FARJID), raw)
        # cb2 (node 2) and cb3 (node 3) answer far's pings through the cluster.
        for b in BRIDGES[1:]:
            far.send("<iq type='get' id='p-%s' from='%s' to='%s'><ping xmlns='%s'/></iq>" % (
                b, FARJID, jid(b), xt.NS_PING))
            raw, e = far.recv_stanza(10)
            self.assertEqual((e.get("type"), e.get("id"), e.get("from")),
                             ("result", "p-" + b, jid(b)), raw)

        # Node 1 SIGKILLed: cb1's agent moves to node 2 (its second
        # preference) and far's messages reach the local component again.
        moved = {}

        def watch():
            if "t" not in moved:
                st = agents["cb1"].status()
                if st and st.get("state") == "connected" and st.get("server") != x1.target:
                    moved["t"], moved["st"] = time.monotonic(), st
        t0 = time.monotonic()
        x1.process.signal(signal.SIGKILL)
        routed, sent = ec.wait_routed(far, FARJID, local, CB1, seconds=15, tag="w", also=watch)
        watch()
        st = self.wait_moved(agents["cb1"], cl, x1)
        moved.setdefault("t", time.monotonic())
        print("     node 1 SIGKILLed: cb1 connected to %s after %.0f ms; far -> cb1 through "
              "after %.0f ms (%d probes)" % (st["server"], (moved["t"] - t0) * 1000,
                                             routed * 1000, sent))
        x1.kill()
        self.assertEqual(st["server"], x2.target)
        self.assertEqual(st["failovers"], "1")
        for b in BRIDGES[1:]:
            self.assertEqual(agents[b].status()["failovers"], "0", b)
        cl.wait_members([x2, x3])

        # Node 1 restarted on its spool: it rejoins by itself.
        t1 = time.monotonic()
        x1.restart()
        cl.wait_members()
        print("     node 1 restarted: three running members after %.0f ms" % (
            (time.monotonic() - t1) * 1000))
        # One session of cb1 in the cluster, seen by every node; far's
        # stanzas arrive exactly once.
        cl.wait_routes(cl.nodes, {"cb1": 1})
        self.exactly_once(far, local, 50, "e")

        # And back: node 2 SIGKILLed once node 1's failure is forgiven (its
        # hold, about 250 ms, then backoff-max); cb1 returns to node 1, its
        # first preference: still one session in the cluster.
        time.sleep(max(0.0, t0 + 3.0 - time.monotonic()))
        x2.kill()
        st = self.wait_moved(agents["cb1"], cl, x2)
        self.assertEqual((st["server"], st["failovers"]), (x1.target, "2"))
        cl.wait_members([x1, x3])
        cl.wait_routes([x1, x3], {"cb1": 1})
        self.exactly_once(far, local, 50, "g")

    def test_relay_replay_across_sigkill(self):
        # A numbered stream local -> far (node 3) and one far -> cb1, one
        # stanza each way every 2 ms, while node 1 (cb1's) is SIGKILLed.
        # With relay-replay the agent sends again whatever node 1 had not
        # confirmed: nothing local sent is lost. What far sent that was still
        # inside node 1, or went into node 1's route before the cluster
        # withdrew it (about 20 ms), is lost by ejabberd without an error;
        # after that, until cb1 is back, it bounces.
        cl = self.cluster()
        x1, x2, x3 = cl.nodes
        u = self.dns(cl)
        a = self.relay_agent(u, relay_replay="on")
        a.wait_connected(15, server=x1.target)
        local, far = self.local(a), self.far(x3)
        cl.wait_routes([x1, x3], {"cb1": 1, FAR: 1})
        local.send(message(0, CB1, FARJID, "warm"))
        far.recv_stanza(10)

        sent_at = {}
        n_m = n_f = 0
        kill_at = moved_at = None
        t_start = time.monotonic()
        deadline = t_start + xt.timeout(20)
        while time.monotonic() < deadline:
            now = time.monotonic()
            local.send(message(n_m, CB1, FARJID, "m"))
            n_m += 1
            far.send(message(n_f, FARJID, CB1, "f"))
            sent_at[n_f] = now
            n_f += 1
            if kill_at is None and now - t_start > 0.2:
                kill_at = time.monotonic()
                x1.process.signal(signal.SIGKILL)
            if kill_at is not None and moved_at is None and n_f % 5 == 0:
                st = a.status()
                if st and st.get("state") == "connected" and st.get("server") != x1.target:
                    moved_at = time.monotonic()
            if moved_at is not None and now - moved_at > 0.3:
                break
            end = time.monotonic() + 0.002
            local._read(end)
            far._read(end)
        self.assertIsNotNone(moved_at, "cb1 did not move off node 1: %s" % a.status())
        x1.kill()
        far_text = drain(far, 1.0)
        local_text = drain(local, 1.0)
        got_m, got_f, bounced_f = ids(far_text, "m"), ids(local_text, "f"), bounced(far_text, "f")
        lost_m = sorted(set(range(n_m)) - set(got_m))
        lost_f = sorted(set(range(n_f)) - set(got_f) - set(bounced_f))
        window = [(sent_at[i] - kill_at) * 1000 for i in lost_f]
        print("     %d stanzas local -> far across the SIGKILL: %d lost, %d duplicates "
              "(relay-replay)" % (n_m, len(lost_m), len(got_m) - len(set(got_m))))
        print("     %d stanzas far -> cb1: %d delivered, %d bounced, %d lost by ejabberd%s; "
              "cb1 connected again after %.0f ms" % (
                  n_f, len(set(got_f)), len(set(bounced_f)), len(lost_f),
                  " (sent %.0f to %.0f ms after the kill)" % (window[0], window[-1])
                  if window else "", (moved_at - kill_at) * 1000))
        self.assertEqual(lost_m, [])
        # ejabberd loses only what was inside node 1 or sent into its route
        # before the cluster withdrew it: never after cb1 is connected again.
        self.assertEqual([i for i in lost_f if sent_at[i] >= moved_at], [])
        self.assertIn("relay: sending again", a.log_text())
        # Still one session of cb1 in the cluster.
        cl.wait_routes([x2, x3], {"cb1": 1})


def drain(client, quiet=0.3):
    return ec.drain(client, quiet)


def main(argv):
    why = ec.missing()
    if why:
        print("SKIP: %s" % why)
        return 77
    return xt.main(EjabberdClusterTest, argv, ("xcompd",))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
