#!/usr/bin/env python3
"""Integration tests of the xcomp-server cluster (issue 13): three nodes on
127.0.0.1-3 with certificates from certtool, set up in the seed's order of
commands, components on different nodes, leaders killed and stopped.

    python3 tests/integration/test_cluster.py [NAME-SUBSTRING...]

prints one line per test and "N passed, M failed"; exits 0 when all pass.
"""

import os
import re
import signal
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pki  # noqa: E402
import xcomptest as xt  # noqa: E402
from agenttest import Agent, Unbound, free_port  # noqa: E402
from clustertest import (DOMAIN, SECRETS, Lab, Node, Sampler, drain, jid, message,  # noqa: E402
                         node_cert)
from xcomptest import NS_COMPONENT, NS_STANZA_ERRORS  # noqa: E402

CB1, CB2, CB3 = jid("cb1"), jid("cb2"), jid("cb3")
ELECTION = 1.0  # the default election timeout, seconds


def ids(client, n, frm=None):
    """The ids of the next n stanzas (from frm only, if given; others kept aside)."""
    got, other = [], []
    while len(got) < n:
        raw, e = client.recv_stanza()
        if frm is None or e.get("from") == frm:
            got.append(e.get("id"))
        else:
            other.append(e)
    return got, other


class ClusterTest(xt.LabTest):
    prefix = "cluster-"

    def lab(self, n=3, start=True, **kw):
        lab = Lab(self.wd.path, n=n, **kw)
        self.cleanups.append(lab.stop)
        if start:
            lab.start()
        return lab

    def expect_unavailable(self, client, frm, to):
        """The next stanza is a service-unavailable bounce of a message to -> frm."""
        raw, e = client.recv_stanza()
        self.assertEqual(e.tag, "{%s}message" % NS_COMPONENT, raw)
        self.assertEqual((e.get("type"), e.get("from"), e.get("to")), ("error", to, frm), raw)
        self.assertIn("{%s}service-unavailable" % NS_STANZA_ERRORS, [c.tag for c in e.iter()],
                      raw)

    # ------------------------------------------------------------ election

    def test_election_among_three(self):
        lab = self.lab()
        lead, sts = lab.wait_for_leader()
        self.assertEqual(sorted(s["state"] for s in sts.values()),
                         ["FOLLOWER", "FOLLOWER", "LEADER"])
        addrs = sorted(n.cluster_address for n in lab.nodes)
        node_ids = set()
        for n in lab.nodes:
            st = n.cluster_status()  # the CLI this time
            self.assertEqual(st["rc"], 0, st["text"] + st["stderr"])
            lines = st["text"].splitlines()
            # The seed's lines first, in its order.
            self.assertEqual(lines[0], "State: " + ("LEADER" if n is lead else "FOLLOWER"))
            self.assertEqual(lines[1], "List of peers")
            self.assertEqual(sorted(lines[2:5]), sorted(
                a + (" (Leader)" if a == lead.cluster_address else "") for a in addrs),
                st["text"])
            self.assertRegex(lines[5], r"^Last state change: \d{4}-[A-Z][a-z]{2}-\d\d "
                                       r"\d\d:\d\d:\d\d$")
            self.assertEqual(lines[6:9], [
                "Key file           : %s" % os.path.basename(n.cert.key),
                "Certificate file   : %s" % os.path.basename(n.cert.cert),
                "Trust bundle       : %s" % os.path.basename(n.trust)])
            self.assertEqual(lines[9], "")
            self.assertEqual((st["members_count"], st["majority"]), (3, 2), st["text"])
            self.assertEqual(sorted(m["addr"] for m in st["members"]), addrs, st["text"])
            this = [m for m in st["members"] if m["this"]]
            self.assertEqual([m["addr"] for m in this], [n.cluster_address], st["text"])
            self.assertEqual(this[0]["id"], st["node_id"])
            self.assertTrue(all(m["alive"] for m in st["members"]), st["text"])
            node_ids.add(frozenset(m["id"] for m in st["members"]))
            self.assertEqual(st["term"], sts[lead.name]["term"])
        self.assertEqual(len(node_ids), 1, "the nodes disagree on the member ids")
        self.assertEqual(len(next(iter(node_ids))), 3)
        term = sts[lead.name]["term"]
        lead.process.wait_for_log(r"cluster: this node is the leader \(term %d\)" % term)
        for n in lab.nodes:
            if n is not lead:
                n.process.wait_for_log(r"cluster: leader is %s \(term %d\)" % (
                    re.escape(lead.cluster_address), term))

    # ------------------------------------------------------------ routing

    def test_routing_across_nodes_in_order(self):
        lab = self.lab()
        n1, n2, n3 = lab.nodes
        c1, c2, c3 = lab.component(n1, "cb1"), lab.component(n2, "cb2"), lab.component(n3, "cb3")
        lab.wait_components({n1: ["cb1"], n2: ["cb2"], n3: ["cb3"]})
        raw = ("<message from='%s/r' to='%s' id='odd' type='chat'><body>h&amp;llo &lt;3</body>"
               "<x xmlns='urn:example:a'><y a='1'/></x></message>" % (CB1, CB3))
        c1.send(raw)
        self.assertEqual(c3.recv_stanza()[0], raw)
        n = 200
        for i in range(n):
            c1.send(message(i, "cb1", "cb3", "a"))
            c3.send(message(i, "cb3", "cb1", "b"))
            c2.send(message(i, "cb2", "cb1", "c"))
        self.assertEqual(ids(c3, n)[0], ["a%d" % i for i in range(n)])
        got = [c1.recv_stanza()[1] for _ in range(2 * n)]
        self.assertEqual([e.get("id") for e in got if e.get("from") == CB3],
                         ["b%d" % i for i in range(n)])
        self.assertEqual([e.get("id") for e in got if e.get("from") == CB2],
                         ["c%d" % i for i in range(n)])
        # Nobody holds cb2 any more: service-unavailable, as on one node.
        c2.close()
        lab.wait_components({n2: []})
        c1.send("<message from='%s' to='%s' id='gone'><body>x</body></message>" % (CB1, CB2))
        self.expect_unavailable(c1, CB1, CB2)
        c1.expect_nothing(0.2)
        c3.expect_nothing(0.01)

    # ------------------------------------------------------------ failures

    def test_leader_killed(self):
        lab = self.lab()
        lead, sts = lab.wait_for_leader()
        term0 = sts[lead.name]["term"]
        a, b = [n for n in lab.nodes if n is not lead]
        ca, cb = lab.component(a, "cb1"), lab.component(b, "cb2")
        lab.wait_components({a: ["cb1"], b: ["cb2"]})
        lab.exchange(ca, "cb1", cb, "cb2")
        t0 = time.monotonic()
        lead.kill(signal.SIGKILL)
        routed, _ = lab.wait_routed(ca, "cb1", cb, "cb2", seconds=2)
        drain(cb, quiet=0.1)
        new, sts = lab.wait_for_leader(nodes=[a, b], not_node=lead, seconds=6)
        elected = time.monotonic() - t0
        self.assertGreater(sts[new.name]["term"], term0)
        self.assertLess(routed, 1.0, "routing between the survivors stopped for %.2f s" % routed)
        self.assertLess(elected, xt.timeout(3 * ELECTION + 1), "election took %.2f s" % elected)
        new.process.wait_for_log(r"cluster: this node is the leader \(term %d\)" %
                                 sts[new.name]["term"])
        lab.exchange(ca, "cb1", cb, "cb2")
        lab.exchange(cb, "cb2", ca, "cb1")
        for n in (a, b):
            st = n.cluster_status()
            self.assertEqual((st["rc"], st["members_count"]), (0, 3), st["text"])
            dead = [m for m in st["members"] if m["addr"] == lead.cluster_address]
            self.assertEqual(len(dead), 1, st["text"])
            # "since when it is unreachable" (issue 13): it was heard until the kill.
            self.assertRegex(dead[0]["rest"], r"^unreachable since \d{4}-", st["text"])

    def test_leader_stopped_then_continued(self):
        lab = self.lab()
        lead, sts = lab.wait_for_leader()
        term0 = sts[lead.name]["term"]
        a, b = [n for n in lab.nodes if n is not lead]
        ca, cb = lab.component(a, "cb1"), lab.component(b, "cb2")
        lab.wait_components({a: ["cb1"], b: ["cb2"]})
        sampler = Sampler(lab.nodes).start()
        try:
            time.sleep(0.2)
            t0 = time.monotonic()
            lead.kill(signal.SIGSTOP)
            new, sts = lab.wait_for_leader(nodes=[a, b], not_node=lead, seconds=6)
            elected = time.monotonic() - t0
            term1 = sts[new.name]["term"]
            self.assertGreater(term1, term0)
            # Not before the followers stop hearing the leader: the election timeout
            # from its last keep-alive (up to 200 ms before the stop).
            self.assertGreaterEqual(elected, 0.75 * ELECTION, "a new leader after %.2f s" % elected)
            self.assertLess(elected, xt.timeout(3 * ELECTION + 1), "after %.2f s" % elected)
            lab.wait_routed(ca, "cb1", cb, "cb2", seconds=2)
            drain(cb, quiet=0.1)
            t1 = time.monotonic()
            lead.process.signal(signal.SIGCONT)
            final, sts = lab.wait_for_leader(seconds=6)
            # The old leader stepped down: it answers with a newer term than its own.
            self.assertGreater(sts[lead.name]["term"], term0, sts[lead.name]["text"])
            time.sleep(0.3)
        finally:
            samples = sampler.stop()
        self.assertEqual(sampler.two_leaders(), {}, "two leaders in one term")
        for n in lab.nodes:
            self.assertTrue(any(s[1] == n.name for s in samples), "no sample of %s" % n.name)
        # The followers were sampled through the pause, every ~50 ms.
        during = [s for s in samples if t0 < s[0] < t1 and s[1] == a.name]
        self.assertGreaterEqual(len(during), int((t1 - t0) / 0.05 / 3), (t1 - t0, len(during)))
        stale = [s for s in samples if s[1] == lead.name and s[0] > t1 + 1.0 and
                 s[2] == "LEADER" and s[3] <= term0]
        self.assertEqual(stale, [], "the old leader did not step down")
        lab.exchange(ca, "cb1", cb, "cb2")

    def test_two_of_three_killed_no_quorum_then_rejoin(self):
        lab = self.lab()
        n1, n2, n3 = lab.nodes
        lab.wait_for_leader()
        c3 = lab.component(n3, "cb3")
        c1, c2 = lab.component(n1, "cb1"), lab.component(n1, "cb2")
        lab.wait_components({n1: ["cb1", "cb2"], n3: ["cb3"]})
        n2.kill(signal.SIGKILL)
        n3.kill(signal.SIGKILL)
        last = [None]

        def no_quorum():
            last[0] = n1.cluster_status()
            return last[0]["state"] == "NO QUORUM"
        try:
            xt.wait_until(no_quorum, 3 * ELECTION + 1, "NO QUORUM on the survivor")
        except AssertionError as e:
            raise AssertionError("%s: %s" % (e, last[0]["text"])) from None
        st = last[0]
        self.assertEqual(st["rc"], 1, st["text"])
        self.assertIsNone(st["leader"], st["text"])
        marks = dict(st["peers"])
        self.assertEqual(marks.get(n1.cluster_address), [], st["text"])
        for n in (n2, n3):
            self.assertEqual(marks.get(n.cluster_address), ["unreachable"], st["text"])
        n1.process.wait_for_log(r"cluster: no quorum", 1.0)
        # It still routes between its own components, both ways.
        lab.exchange(c1, "cb1", c2, "cb2")
        lab.exchange(c2, "cb2", c1, "cb1")
        # A component on a dead node is nowhere.
        c1.send(message(1, "cb1", "cb3", "dead"))
        self.expect_unavailable(c1, CB1, CB3)
        # Restarted, same DIR: the two find the cluster again and so does the survivor.
        lab.restart(n2)
        lab.restart(n3)
        lead, sts = lab.wait_for_leader(seconds=10)
        for st in sts.values():
            self.assertEqual(st["members_count"], 3, st["text"])
        c3 = lab.component(n3, "cb3")
        lab.wait_components({n1: ["cb1", "cb2"], n3: ["cb3"]})
        lab.exchange(c1, "cb1", c3, "cb3")
        lab.exchange(c3, "cb3", c2, "cb2")

    def test_restarted_nodes_rejoin(self):
        lab = self.lab()
        lead, sts = lab.wait_for_leader()
        before = {n.name: sts[n.name]["node_id"] for n in lab.nodes}
        term0 = sts[lead.name]["term"]
        # A follower restarted: it finds the cluster again.
        f = [n for n in lab.nodes if n is not lead][0]
        lab.restart(f)
        lead2, sts = lab.wait_for_leader(seconds=8)
        # The whole cluster stopped and started again: same members, a new term.
        for n in lab.nodes:
            n.process.signal(signal.SIGTERM)
        for n in lab.nodes:
            self.assertEqual(n.process.wait(), 0, n.log_text()[-2000:])
        r = lab.nodes[0].cmd("cluster", "status")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("xcomp-server -d %s run" % lab.nodes[0].dir, r.stderr)
        for n in lab.nodes:
            lab.restart(n)
        lead3, sts = lab.wait_for_leader(seconds=10)
        self.assertEqual({n.name: sts[n.name]["node_id"] for n in lab.nodes}, before)
        self.assertGreater(sts[lead3.name]["term"], term0)
        for st in sts.values():
            self.assertEqual(st["members_count"], 3, st["text"])
        n1, _, n3 = lab.nodes
        c1, c3 = lab.component(n1, "cb1"), lab.component(n3, "cb3")
        lab.wait_components({n1: ["cb1"], n3: ["cb3"]})
        lab.exchange(c1, "cb1", c3, "cb3")

    # ------------------------------------------------------------ membership

    def test_reset_and_rejoin_from_the_same_address(self):
        lab = self.lab()
        lead, sts = lab.wait_for_leader()
        victim = [n for n in lab.nodes if n is not lead][-1]
        old_id = sts[victim.name]["node_id"]
        addr = victim.cluster_address
        r = victim.cmd("reset")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("stop it first", r.stderr)
        victim.process.signal(signal.SIGTERM)
        victim.process.wait()
        r = victim.cmd("reset")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr + r.stdout, r"xcomp-server -d .+ cluster remove %s\n" %
                         re.escape(addr))
        for f in ("xcomp-server.conf", "callbridges", "cluster", "listening"):
            self.assertFalse(os.path.exists(os.path.join(victim.dir, f)), f)
        # The same node set up again from scratch, on the same addresses.
        host, port = victim.address
        victim.must("domain", DOMAIN)
        victim.must("listen", "%s:%d" % (host, port))
        for b in ("cb1", "cb2", "cb3"):
            victim.must("callbridge", "add-secret", b, input=SECRETS[b] + "\n")
        victim.configure(port=int(addr.rsplit(":", 1)[1]))
        # The others no longer hear the old member.
        xt.wait_until(lambda: any(m["addr"] == addr and not m["alive"]
                                  for m in (lead.quick_status() or {"members": []})["members"]),
                      3 * ELECTION, "the old member unreachable")
        victim.start()
        self.assertEqual(victim.cluster_address, addr)
        r = lab.join(victim, lead)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "joined the cluster at %s: leader %s, 3 members\n" % (
            lead.cluster_address, lead.cluster_address))
        _, sts = lab.wait_for_leader(seconds=8)
        new_id = sts[victim.name]["node_id"]
        self.assertNotEqual(new_id, old_id)
        event = "replaced the stale member %s at %s: it was reset without leaving the cluster" % (
            old_id, addr)
        for n in lab.nodes:
            st = sts[n.name]
            self.assertEqual(st["members_count"], 3, st["text"])
            addrs = [m["addr"] for m in st["members"]]
            self.assertEqual(len(addrs), len(set(addrs)), "duplicate member: " + st["text"])
            self.assertNotIn(old_id, [m["id"] for m in st["members"]], st["text"])
            self.assertIn(new_id, [m["id"] for m in st["members"]], st["text"])
        self.assertTrue(any(e.endswith(event) for e in sts[lead.name]["events"]),
                        sts[lead.name]["text"])
        self.assertIn("cluster: " + event, lead.log_text())
        c1 = lab.component(lab.nodes[0] if victim is not lab.nodes[0] else lead, "cb1")
        cv = lab.component(victim, "cb3")
        lab.wait_components({victim: ["cb3"]})
        lab.exchange(c1, "cb1", cv, "cb3")

    def test_wrong_trust_bundle_refused(self):
        lab = self.lab(n=1)
        n1 = lab.nodes[0]
        other = pki.PKI(self.wd.path, name="other-ca", cn="another cluster")
        # n2 trusts another CA only: it refuses n1's certificate.
        n2 = Node(self.wd.path, 2, other)
        n2.start()
        self.cleanups.append(n2.stop)
        problems = []
        r = lab.join(n2, n1)
        self.assertEqual((r.returncode, r.stdout), (1, ""), r.stderr)
        # xcomp-server(8): the agent's TLS reasons, after the address.
        if not re.search(r"^cannot join: %s: untrusted issuer: the chain ends at CN=xcomp "
                         r"cluster root CA, which is not in %s\n$" % (
                             re.escape(n1.cluster_address), re.escape(other.bundle)), r.stderr):
            problems.append(r.stderr)
        # n3 trusts the cluster's CA but its own certificate comes from another:
        # n1 refuses it.
        n3 = Node(self.wd.path, 3, other, trust=lab.ca.bundle)
        n3.start()
        self.cleanups.append(n3.stop)
        r = lab.join(n3, n1)
        self.assertEqual((r.returncode, r.stdout), (1, ""), r.stderr)
        if not re.search(r"^cannot join: %s: the server refused our client certificate "
                         r"CN=n3\.%s, issued by CN=another cluster intermediate CA"
                         # the alert when it arrives, or the closed connection
                         r"(: it asked for one and closed| \(alert: )" % (
                             re.escape(n1.cluster_address), re.escape(DOMAIN)), r.stderr):
            problems.append(r.stderr)
        st = n1.cluster_status()
        self.assertEqual((st["rc"], st["state"], st["members_count"]), (0, "LEADER", 1),
                         st["text"])
        # Unreachable: nothing listens there.
        dead = "127.0.0.1:%d" % free_port()
        r = n3.cmd("cluster", "join", dead, seconds=20)
        self.assertEqual(r.returncode, 1)
        if "cannot join: %s is unreachable" % dead not in r.stderr:
            problems.append(r.stderr)
        self.assertEqual(problems, [], "not the join outcome lines of xcomp-server(8)")

    def raw_peer(self, node, cert):
        """A TLS connection to node's cluster port with cert, as another node would open."""
        host, port = node.cluster_address.rsplit(":", 1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(cert.cert, cert.key)
        s = socket.create_connection((host, int(port)), timeout=xt.timeout(3))
        t = ctx.wrap_socket(s)
        t.settimeout(xt.timeout(3))
        return t

    @staticmethod
    def read_until(t, pattern, seconds=3.0):
        data, deadline = "", time.monotonic() + xt.timeout(seconds)
        while re.search(pattern, data) is None and time.monotonic() < deadline:
            try:
                chunk = t.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk.decode("utf-8", "replace")
        return data

    def test_join_from_a_live_members_address_refused(self):
        lab = self.lab(n=2)
        n1, n2 = lab.nodes
        lab.wait_for_leader()
        # A node with a trusted certificate claims n2's address, which is alive.
        t = self.raw_peer(n1, node_cert(lab.ca, "n9", "127.0.0.9"))
        t.sendall(("<?xml version='1.0'?><stream:stream xmlns='urn:xcomp:cluster:1' "
                   "xmlns:stream='http://etherx.jabber.org/streams'>"
                   "<hello i='0badcafe' a='%s' e='0'/><j i='0badcafe' a='%s'/>" % (
                       n2.cluster_address, n2.cluster_address)).encode())
        got = self.read_until(t, r"<jr [^>]*>")
        t.close()
        self.assertRegex(got, r"<jr ok='0' why='a live member already has the address %s "
                              r"\(id [0-9a-f]{8}\)'/>" % re.escape(n2.cluster_address))
        st = n1.cluster_status()
        self.assertEqual((st["rc"], st["members_count"]), (0, 2), st["text"])
        self.assertNotIn("0badcafe", st["text"])

    def test_garbage_from_a_trusted_peer(self):
        """A peer with a trusted certificate that sends broken XML, oversize
        elements or nonsense loses its link and nothing else."""
        lab = self.lab(n=2)
        n1, n2 = lab.nodes
        lead, _ = lab.wait_for_leader()
        header = ("<?xml version='1.0'?><stream:stream xmlns='urn:xcomp:cluster:1' "
                  "xmlns:stream='http://etherx.jabber.org/streams'>")
        cert = node_cert(lab.ca, "n9", "127.0.0.9")
        for junk in ("<hello i='zz' a='1.2.3.4:5' e='x'/><r t='nope'/><ms e='99999999'>"
                     "bad@ 00000001@ @127.0.0.1:1</ms><f j='x' h='9'/><c j='a' u='1'/>",
                     "<hello i='00000001' a='x'/><r t='hb' n='999' f='1' o='2' x='0'/>",
                     "<j i='0' a=''/><rm i='1' o='2' q='3'/><k j='cb1.%s' w='x'/>" % DOMAIN,
                     "<unclosed><<<", "<f j='%s'>%s</f>" % (jid("cb1"), "x" * (2 << 20))):
            t = self.raw_peer(n1, cert)
            try:
                t.sendall((header + junk).encode())
                self.read_until(t, r"$^", seconds=0.3)
            except OSError:
                pass  # the node hung up on it: fine
            t.close()
        # The cluster is as it was, and carries stanzas.
        lab.wait_for_leader()
        st = n1.cluster_status()
        self.assertEqual((st["rc"], st["members_count"]), (0, 2), st["text"])
        c1, c2 = lab.component(n1, "cb1"), lab.component(n2, "cb2")
        lab.wait_components({n1: ["cb1"], n2: ["cb2"]})
        lab.exchange(c1, "cb1", c2, "cb2")
        lab.exchange(c2, "cb2", c1, "cb1")
        self.assertIn("cluster: link from", n1.log_text())

    def test_untrusted_client_refused_on_cluster_port(self):
        lab = self.lab(n=1)
        n1 = lab.nodes[0]
        host, port = n1.cluster_address.rsplit(":", 1)
        ca = lab.ca
        self_signed = ca._make("selfsigned", ['cn = "n9.%s"' % DOMAIN, 'ip_address = "127.0.0.9"',
                                              "signing_key", "tls_www_client", "tls_www_server",
                                              "expiration_days = 365"])
        other = pki.PKI(self.wd.path, name="other-ca", cn="another cluster")
        foreign = node_cert(other, "n8", "127.0.0.8")

        def attempt(cert):
            """'refused: ...' or 'accepted' (no alert, no close within 0.5 s)."""
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if cert:
                ctx.load_cert_chain(cert.cert, cert.key)
            s = socket.create_connection((host, int(port)), timeout=xt.timeout(3))
            try:
                t = ctx.wrap_socket(s)
            except (ssl.SSLError, OSError) as e:
                s.close()
                return "refused: handshake: %s" % e
            try:
                t.settimeout(0.5)
                data = t.recv(4096)
                if not data:
                    return "refused: closed"
                return "accepted (it sent %d bytes)" % len(data)
            except socket.timeout:
                return "accepted"
            except (ssl.SSLError, OSError) as e:
                return "refused: %s" % e
            finally:
                t.close()
        # A certificate the cluster trusts gets through the handshake (the
        # control: the refusals below are about the certificate).
        trusted = node_cert(ca, "n7", "127.0.0.7")
        self.assertEqual(attempt(trusted)[:8], "accepted")
        for what, cert in (("self-signed", self_signed), ("another CA", foreign),
                           ("no certificate", None)):
            got = attempt(cert)
            self.assertTrue(got.startswith("refused"), "%s: %s" % (what, got))
        st = n1.cluster_status()
        self.assertEqual((st["rc"], st["members_count"]), (0, 1), st["text"])

    # ------------------------------------------------------------ conflicts

    def test_kick_new_across_nodes(self):
        lab = self.lab(policy="kick-new")
        n1, n2, n3 = lab.nodes
        old = lab.component(n1, "cb1", name="old")
        c3 = lab.component(n3, "cb3")
        lab.wait_components({n1: ["cb1"], n3: ["cb3"]})
        new = n2.connect(name="new")
        new.open_stream(CB1)
        new.handshake(SECRETS["cb1"], expect_ok=False)
        new.expect_stream_error("conflict")
        lab.exchange(c3, "cb3", old, "cb1")
        lab.exchange(old, "cb1", c3, "cb3")
        st = n3.quick_status()
        self.assertEqual(sum(m["components"].count(CB1) for m in st["members"]), 1, st["text"])
        # Once the old session ends, the component is welcome on another node.
        old.close()
        lab.wait_components({n1: []})
        new = lab.component(n2, "cb1", name="new2")
        lab.exchange(c3, "cb3", new, "cb1")

    def test_kick_new_two_sessions_meet(self):
        """Two sessions of cb1 got in on two nodes that could not see each other
        (one of them paused past the election timeout): when they see each other
        again, under kick-new one session goes, the same one as seen from both
        nodes: the session on the node with the lower id stays."""
        lab = self.lab(policy="kick-new")
        n1, n2, n3 = lab.nodes
        first = lab.component(n2, "cb1", name="first")
        c3 = lab.component(n3, "cb3")
        lab.wait_components({n2: ["cb1"], n3: ["cb3"]})
        ids = {n: n.cluster_status()["node_id"] for n in (n1, n2)}
        n2.process.signal(signal.SIGSTOP)
        try:
            xt.wait_until(lambda: not [m for m in n1.cluster_status()["members"]
                                       if m["addr"] == n2.cluster_address][0]["alive"],
                          10, "n1 seeing n2 unreachable")
            second = lab.component(n1, "cb1", name="second")  # n2's cb1 is out of sight
        finally:
            n2.process.signal(signal.SIGCONT)
        keep, lose = (first, second) if int(ids[n2], 16) < int(ids[n1], 16) else (second, first)
        lose.expect_stream_error("conflict", seconds=10)
        where = n2 if keep is first else n1
        lab.wait_components({where: ["cb1"], n3: ["cb3"]}, seconds=10)
        for n in lab.nodes:
            st = n.cluster_status()
            self.assertEqual(sum(m["components"].count(CB1) for m in st["members"]), 1,
                             st["text"])
        lab.exchange(c3, "cb3", keep, "cb1")
        lab.exchange(keep, "cb1", c3, "cb3")

    def test_kick_old_across_nodes(self):
        lab = self.lab(policy="kick-old")
        n1, n2, n3 = lab.nodes
        old = lab.component(n1, "cb1", name="old")
        c3 = lab.component(n3, "cb3")
        lab.wait_components({n1: ["cb1"], n3: ["cb3"]})
        new = lab.component(n2, "cb1", name="new")
        old.expect_stream_error("conflict")
        # The first stanza after the kick goes to the new session.
        lab.exchange(c3, "cb3", new, "cb1")
        lab.exchange(new, "cb1", c3, "cb3")
        lab.wait_components({n1: [], n2: ["cb1"]})

    # ------------------------------------------------------------ agents

    def test_agent_reachable_through_another_node(self):
        lab = self.lab(policy="kick-new")
        n1, n2, n3 = lab.nodes
        u = Unbound(self.wd.path, lab.records(prio=(10, 20, 30))).start()
        self.cleanups.append(u.stop)
        relay_port = free_port(kind=socket.SOCK_STREAM)
        a = Agent(self.wd.path, secret=SECRETS["cb1"], dns_server=u.address,
                  relay_listen="127.0.0.1:%d" % relay_port).start()
        self.cleanups.append(a.stop)
        a.wait_connected(server=lab.target(n1))
        a.wait_status(lambda s: s.get("relay") == "listening", 5, "the relay listening")
        local = xt.Client(("127.0.0.1", relay_port), name="local")
        self.cleanups.append(local.close)
        local.open_stream(CB1)
        local.handshake(SECRETS["cb1"])
        c3 = lab.component(n3, "cb3")
        lab.wait_components({n1: ["cb1"], n3: ["cb3"]})
        lab.exchange(c3, "cb3", local, "cb1")
        t0 = time.monotonic()
        n1.kill(signal.SIGKILL)
        lab.wait_routed(c3, "cb3", local, "cb1", seconds=3, every=0.01)
        elapsed = time.monotonic() - t0
        st = a.wait_connected()
        self.assertNotEqual(st["server"], lab.target(n1))
        self.assertNotIn("conflict", st.get("last-error", ""), st)
        self.assertLess(elapsed, 1.0, "cb1 reachable again after %.2f s" % elapsed)
        drain(local, quiet=0.1)
        lab.exchange(local, "cb1", c3, "cb3")


if __name__ == "__main__":
    sys.exit(xt.main(ClusterTest, sys.argv[1:], ("xcomp-server", "xcompd")))
