#!/usr/bin/env python3
"""The xcomp-server cluster against a real network partition: the leader's
address cut off from the other two nodes' with nftables inside the test's own
network namespace (see netns.py), not signals.

    python3 tests/netfault/test_netfault_cluster.py [NAME-SUBSTRING...]

The model: each node is a host, 127.0.0.2, .3 and .4, and a partition is the
network between two hosts dropping every packet (netns.partition). The
nodes' links dial from their cluster listen address, so a node's packets
carry its own address. The call bridges are other hosts: they connect from
127.0.0.1, which no rule touches, so each keeps its session with its own
node, as a bridge next to its node would; only node-to-node traffic is cut.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faulttest as ft  # noqa: E402  (enters the namespace)
import netns  # noqa: E402
import pki as pkimod  # noqa: E402
import xcomptest as xt  # noqa: E402
from clustertest import SECRETS, Lab, Node, Sampler, drain, jid, message  # noqa: E402
from xcomptest import NS_COMPONENT, NS_STANZA_ERRORS  # noqa: E402

ELECTION = 1.0  # cluster-election-timeout's default, seconds
BRIDGE_SOURCE = "127.0.0.1"  # where the call bridges connect from


class Lab3(Lab):
    """Three nodes on 127.0.0.2-4: 127.0.0.1 is left to the call bridges."""

    def __init__(self, workdir, first=2, n=3, **kw):
        self.workdir = workdir
        self.ca = pkimod.PKI(workdir, name="cluster-ca", cn="xcomp cluster")
        self.nodes = [Node(workdir, first + i, self.ca, **kw) for i in range(n)]
        self.serial = 0


class TimedSampler(Sampler):
    """clustertest.Sampler that also keeps when each answer came back:
    samples (sent, received, node name, state, term, leader address). The
    state a sample reports held at some moment between sent and received."""

    def sample(self, asked, node, st):
        return (asked, time.monotonic(), node.name, st["state"], st["term"], st["leader"])

    def two_leaders_at_once(self):
        """Proof from the samples of two LEADERs at one moment: a LEADER answer
        of node Y that lies wholly between two LEADER answers of node X in
        the same term, with no other answer of X between them (a node that
        stops leading cannot lead again in the same term, so X led all along).
        The list of (X, term, Y, Y's term, when)."""
        by_node = {}
        for s in sorted(self.samples):
            by_node.setdefault(s[2], []).append(s)
        found = []
        for x, xs in by_node.items():
            for a, b in zip(xs, xs[1:]):
                if a[3] != "LEADER" or b[3] != "LEADER" or a[4] != b[4]:
                    continue
                for y, ys in by_node.items():
                    if y == x:
                        continue
                    for c in ys:
                        if c[3] == "LEADER" and a[1] <= c[0] and c[1] <= b[0]:
                            found.append((x, a[4], y, c[4], c[0]))
        return found

    def leader_spans(self, name):
        """[(term, first sent, last received, last sent)] of name's LEADER answers."""
        spans = []
        for s in sorted(x for x in self.samples if x[2] == name):
            if s[3] != "LEADER":
                continue
            if spans and spans[-1][0] == s[4]:
                spans[-1] = (s[4], spans[-1][1], s[1], s[0])
            else:
                spans.append((s[4], s[0], s[1], s[0]))
        return spans


class ClusterFaults(ft.FaultTest):

    def lab(self):
        lab = Lab3(self.wd.path)
        self.cleanups.append(lab.stop)
        lab.start()
        return lab

    def component(self, node, bridge, name):
        """A session of bridge on node, from the bridges' own address."""
        c = xt.Client(node.address, name=name, source=(BRIDGE_SOURCE, 0))
        node.clients.append(c)
        c.open_stream(jid(bridge))
        c.handshake(SECRETS[bridge])
        return c

    def expect_unavailable(self, client, frm, to, seconds=3.0):
        """The next stanza from another than the test's streams is a
        service-unavailable bounce of a message frm -> to."""
        raw, e = client.recv_stanza(seconds)
        self.assertEqual(e.tag, "{%s}message" % NS_COMPONENT, raw)
        self.assertEqual((e.get("type"), e.get("from"), e.get("to")),
                         ("error", jid(to), jid(frm)), raw)
        self.assertIn("{%s}service-unavailable" % NS_STANZA_ERRORS,
                      [c.tag for c in e.iter()], raw)

    @staticmethod
    def sessions(st, bridge):
        """How many sessions of bridge a node's status lists, cluster-wide."""
        return sum(m["components"].count(jid(bridge)) for m in st["members"])

    def stream(self, sender, frm, receiver, to, until, every=0.02):
        """Numbered messages frm -> to every `every` seconds until until()
        says stop; [(number, time sent)] and the numbers received."""
        sent, got = [], set()
        tag = "p%d-" % time.monotonic_ns()
        i = 0
        while not until():
            sender.send(message(i, frm, to, tag=tag))
            sent.append((i, time.monotonic()))
            i += 1
            end = time.monotonic() + every
            while time.monotonic() < end:
                receiver._read(end)
            sender.pos = len(sender.data)  # bounces, if any
        # The last ones still on their way.
        end = time.monotonic() + xt.timeout(1.0)
        while len(got) < len(sent) and time.monotonic() < end:
            receiver._read(min(end, time.monotonic() + 0.05))
            got = {int(x) for x in _ids(receiver.pending(), tag)}
        receiver.pos = len(receiver.data)
        return sent, got

    def test_leader_partitioned_from_the_other_two(self):
        lab = self.lab()
        lead, sts = lab.wait_for_leader()
        term0 = sts[lead.name]["term"]
        a, b = [n for n in lab.nodes if n is not lead]
        c1 = self.component(lead, "cb1", "cb1@old-leader")
        c2 = self.component(a, "cb2", "cb2@" + a.name)
        c3 = self.component(b, "cb3", "cb3@" + b.name)
        lab.wait_components({lead: ["cb1"], a: ["cb2"], b: ["cb3"]})
        lab.exchange(c1, "cb1", c2, "cb2")
        lab.exchange(c2, "cb2", c3, "cb3")
        sampler = TimedSampler(lab.nodes).start()
        self.cleanups.append(sampler.stop)
        time.sleep(0.3)
        faults = []
        try:
            # ------------------------------------------------ the partition
            t0 = time.monotonic()
            for other in (a, b):
                faults.append(netns.partition(lead.ip, other.ip))

            def new_leader():
                with sampler.lock:
                    won = [s for s in sampler.samples if s[2] in (a.name, b.name) and
                           s[3] == "LEADER" and s[4] > term0]
                return min(won) if won else None
            # cb2 -> cb3 on the majority side, numbered, from the cut until a
            # second after the new leader is seen.
            bound_elected = 2 * ELECTION + 1.0  # the longest randomized timeout + 1 s
            give_up = t0 + xt.timeout(bound_elected + 2)
            # Raft's role on the old leader, which its status hides behind NO
            # QUORUM: the last time its log did not yet say it stepped down.
            stepped_line = (r"cluster: this node is no longer the leader \(term %d\): no "
                            r"majority answered within the election timeout" % term0)
            still_leading = [t0]

            def until():
                now = time.monotonic()
                if not re.search(stepped_line, lead.log_text()):
                    still_leading[0] = now
                won = new_leader()
                return now > give_up or (won is not None and now > won[1] + 1.0)
            sent, got = self.stream(c2, "cb2", c3, "cb3", until)
            drain(c2, quiet=0.1)  # bounces of the stream, if any
            won = new_leader()
            self.assertIsNotNone(won, "no new leader on the majority side within %.1f s:\n%s"
                                 % (bound_elected + 2, counters_and_views(lab)))
            elected = won[1] - t0
            new = lab.nodes[[n.name for n in lab.nodes].index(won[2])]
            ft.figure("leader partitioned: a new leader on the majority side", elected,
                      bound_elected)
            self.assertLess(elected, xt.timeout(bound_elected))
            ft.figure("leader partitioned: the old leader's step-down logged after the cut",
                      still_leading[0] - t0, ELECTION + 0.1)
            # Its answer came back while the old leader had not stepped down yet:
            # two leaders at once.
            self.assertLessEqual(still_leading[0], won[1],
                                 "the old leader stepped down %.3f s after the new leader "
                                 "was seen" % (still_leading[0] - won[1]))
            self.assertLess(still_leading[0] - t0, ELECTION + 0.1)
            lost = [i for i, _ in sent if i not in got]
            after = [i for i, ts in sent if ts >= won[1] and i not in got]
            gap = 0.0
            if lost:
                times = dict(sent)
                gap = times[lost[-1]] - t0
            ft.figure("leader partitioned: cb2 -> cb3 messages lost (of %d sent)" % len(sent),
                      len(lost), 0, unit="messages")
            ft.figure("leader partitioned: cb2 -> cb3 routing restored (last loss after the cut)",
                      gap, bound_elected)
            self.assertEqual(after, [], "messages lost after the new leader")
            self.assertEqual(lost, [], "the majority side's routing broke for %.2f s" % gap)

            # The old leader: NO QUORUM, exit 1, the others marked unreachable.
            last = [None]

            def no_quorum():
                last[0] = lead.cluster_status()
                return last[0]["state"] == "NO QUORUM"
            xt.wait_until(no_quorum, xt.timeout(ELECTION + 1), "NO QUORUM on the old leader")
            st = last[0]
            self.assertEqual((st["rc"], st["leader"]), (1, None), st["text"])
            marks = dict(st["peers"])
            for n in (a, b):
                self.assertEqual(marks.get(n.cluster_address), ["unreachable"], st["text"])
            lead.process.wait_for_log(r"cluster: no quorum", 1.0)
            with sampler.lock:
                old_spans = sampler.leader_spans(lead.name)
            # When its last LEADER answer was asked for: it said LEADER then or later.
            stepped = old_spans[-1][3] - t0 if old_spans else 0.0
            ft.figure("leader partitioned: the old leader's last LEADER answer after the cut",
                      stepped, ELECTION + 0.1)
            # One election timeout after a majority last answered (before the
            # cut), and the few ms the cut's rules and a loaded machine take.
            self.assertLess(stepped, ELECTION + 0.1, old_spans)

            # The minority side routes among its own components only.
            c1.send(message(1, "cb1", "cb2", "minority"))
            self.expect_unavailable(c1, "cb1", "cb2")
            # The majority side no longer routes to cb1 once the old leader is
            # out of sight: a bounce, not a stanza into the cut.
            xt.wait_until(lambda: not any(
                m["alive"] for m in a.quick_status()["members"]
                if m["addr"] == lead.cluster_address), xt.timeout(ELECTION + 1),
                "the old leader unreachable from %s" % a.name)
            c2.send(message(1, "cb2", "cb1", "majority"))
            self.expect_unavailable(c2, "cb2", "cb1")
            # A second cb1 session gets in on the majority side (its node sees no
            # other): after the heal exactly one must be left.
            c1b = self.component(a, "cb1", "cb1@" + a.name)
            lab.exchange(c3, "cb3", c1b, "cb1")

            # ------------------------------------------------ the heal
            t1 = time.monotonic()
            for f in faults:
                f.lift()
            final, sts = lab.wait_for_leader(seconds=xt.timeout(10))
            healed = time.monotonic() - t1
            bound_heal = 5.0
            ft.figure("partition healed: one leader every node agrees on", healed, bound_heal)
            self.assertLess(healed, xt.timeout(bound_heal))
            self.assertIs(final, new, "the leader changed at the heal")
            self.assertGreater(sts[lead.name]["term"], term0, sts[lead.name]["text"])
        finally:
            for f in faults:
                f.lift()
        # One cb1 session across the cluster: the conflict policy (kick-new:
        # the session on the node with the lower id stays) ends the other.
        ids = {n: sts[n.name]["node_id"] for n in lab.nodes}
        keep, lose, where = (c1, c1b, lead) if int(ids[lead], 16) < int(ids[a], 16) else (
            c1b, c1, a)
        lose.expect_stream_error("conflict", seconds=xt.timeout(5))
        if where is lead:
            want = {lead: ["cb1"], a: ["cb2"], b: ["cb3"]}
        else:
            want = {lead: [], a: ["cb1", "cb2"], b: ["cb3"]}
        lab.wait_components(want, seconds=xt.timeout(5))
        views = {}
        for n in lab.nodes:
            st = n.cluster_status()
            views[n.name] = st
            self.assertEqual(st["rc"], 0, st["text"])
            self.assertEqual(st["leader"], new.cluster_address, st["text"])
            self.assertEqual(sorted(m["addr"] for m in st["members"]),
                             sorted(x.cluster_address for x in lab.nodes), st["text"])
            self.assertTrue(all(m["alive"] for m in st["members"]), st["text"])
            for bridge in ("cb1", "cb2", "cb3"):
                self.assertEqual(self.sessions(st, bridge), 1, "%s: %s" % (bridge, st["text"]))
        routes = {n: sorted((m["addr"], tuple(sorted(m["components"])))
                            for m in views[n]["members"]) for n in views}
        self.assertEqual(len(set(map(tuple, routes.values()))), 1, routes)
        # Routing across the old cut, both ways.
        routed, _ = lab.wait_routed(c2, "cb2", keep, "cb1", seconds=3)
        ft.figure("partition healed: cb2 -> cb1 routed (after one leader and one session)",
                  routed, 1.0)
        self.assertLess(routed, xt.timeout(1.0))
        drain(keep, quiet=0.1)
        lab.exchange(keep, "cb1", c2, "cb2")
        lab.exchange(keep, "cb1", c3, "cb3")
        samples = sampler.stop()
        two = sampler.two_leaders_at_once()
        self.assertEqual(two, [], "two LEADERs at one moment")
        self.assertEqual(sampler.two_leaders(), {}, "two leaders in one term")
        for n in lab.nodes:
            self.assertTrue(any(s[2] == n.name for s in samples), "no sample of %s" % n.name)
        new_spans = sampler.leader_spans(new.name)
        gap = new_spans[-1][1] - old_spans[-1][2] if new_spans and old_spans else 0.0
        ft.figure("leader partitioned: from the old leader's last LEADER answer to the new "
                  "one's first", gap, None)
        self.assertGreater(gap, 0.0, (old_spans, new_spans))

    def test_long_partition_heals(self):
        # Longer than the links' TCP_USER_TIMEOUT (10 s): the links break and are
        # dialled again (their SYNs dropped) until the heal; then one leader, a
        # full cluster and routing across the old cut within a bound.
        lab = self.lab()
        lead, sts = lab.wait_for_leader()
        a, b = [n for n in lab.nodes if n is not lead]
        faults = [netns.partition(lead.ip, other.ip) for other in (a, b)]
        try:
            new, _ = lab.wait_for_leader(seconds=xt.timeout(5), nodes=(a, b))
            time.sleep(14)
        finally:
            t1 = time.monotonic()
            for f in faults:
                f.lift()
        final, sts = lab.wait_for_leader(seconds=xt.timeout(10))
        healed = time.monotonic() - t1

        def whole():
            for n in lab.nodes:
                st = n.cluster_status()
                if st["rc"] != 0 or st["leader"] != final.cluster_address or \
                        not all(m["alive"] for m in st["members"]) or len(st["members"]) != 3:
                    return False
            return True
        xt.wait_until(whole, xt.timeout(10), "every node sees the same leader and all members")
        whole_at = time.monotonic() - t1
        # A link dial gives up after two election timeouts and is retried within 1 s.
        ft.figure("long partition (14 s) healed: one leader every node agrees on", healed, 4.0)
        ft.figure("long partition (14 s) healed: every member alive everywhere", whole_at, 4.0)
        self.assertLess(whole_at, xt.timeout(4.0))
        # Call bridges that connect after the heal reach each other across the old cut.
        c1 = self.component(lead, "cb1", "cb1@" + lead.name)
        c2 = self.component(a, "cb2", "cb2@" + a.name)
        routed, _ = lab.wait_routed(c2, "cb2", c1, "cb1", seconds=5)
        ft.figure("long partition (14 s) healed: cb2 -> cb1 routed after the heal",
                  time.monotonic() - t1, 5.0)
        self.assertLess(time.monotonic() - t1, xt.timeout(5.0))
        self.assertIn(new, (a, b))

    def test_agent_cut_off_from_its_node_kick_new(self):
        # The seed's case on a real cluster: the network between cb1's agent and
        # its node dies, the cluster's own links do not. Under kick-new the other
        # nodes refuse cb1 while its half-open session lives on the first node;
        # that node's dead-session bound (keepalive 2 s + keepalive-timeout 1 s
        # here) ends it, and the agent gets in elsewhere.
        lab = Lab3(self.wd.path, policy="kick-new",
                   settings=[("keepalive", "2"), ("keepalive-timeout", "1")])
        self.cleanups.append(lab.stop)
        lab.start()
        lab.wait_for_leader()
        n1, n2, n3 = lab.nodes
        u = self.dns(lab.records(prio=(10, 20, 30)))
        a = self.agent(u, secret=SECRETS["cb1"], keepalive=1, keepalive_timeout=1,
                       backoff_min=1, backoff_max=2)
        a.wait_connected(server=lab.target(n1))
        lab.wait_components({n1: ["cb1"]})
        t0 = time.monotonic()
        fault = netns.drop(n1.address[0], n1.address[1])
        st = a.wait_status(lambda s: s["state"] == "connected" and
                           s["server"] != lab.target(n1), xt.timeout(10), "connected elsewhere")
        moved = time.monotonic() - t0
        # The node's bound (3 s) and one hold of backoff-max (2 s) after a conflict, + 1 s.
        ft.figure("agent cut off from its node (kick-new): connected to another node",
                  moved, 6.0)
        self.assertLess(moved, xt.timeout(6.0))
        other = lab.by_server(st["server"])
        want = {n: ["cb1"] if n is other else [] for n in lab.nodes}
        lab.wait_components(want, seconds=xt.timeout(3))
        fault.lift()
        time.sleep(2)
        # Healed: still one cb1 session in the whole cluster, where the agent is.
        lab.wait_components(want, seconds=xt.timeout(3))
        self.assertEqual(a.wait_connected()["server"], st["server"])
        self.assertIn("no reply to a keepalive ping", n1.log_text())


def _ids(text, tag):
    return re.findall(r"id='%s(\d+)'" % re.escape(tag), text)


def counters_and_views(lab):
    out = [netns.counters()]
    for n in lab.nodes:
        st = n.quick_status()
        out.append("--- %s\n%s" % (n.name, st["text"] if st else "(no answer)"))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(ft.main(ClusterFaults))
