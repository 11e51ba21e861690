#!/usr/bin/env python3
"""Integration tests of dnssec-trust-anchor against a signed zone: the test
zone signed inside each test with keys made for it (Debian's ldnsutils),
served by a real unbound from an auth-zone with its signatures, and the KSK's
DS given as the trust anchor. Asserted for xcompd (status file), "xcomp
resolve" and "xcomp probe" (output and exit status):

  valid records            connected / resolved, "DNSSEC validated"
  SRV changed after signing, A changed after signing, signatures expired,
  the SRV's signature removed, the zone served unsigned, a trust anchor that
  is not the zone's key
                           code dnssec, the query named, the reason and what
                           to fix; and never a connection to the forged
                           target (a listener there counts every connection)
  no trust anchor          the forged A record is followed (the control)

    python3 tests/integration/test_dnssec.py [NAME-SUBSTRING...]
"""

import os
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import (DOMAIN, SRV_NAME, Agent, Cluster, SignedUnbound,  # noqa: E402
                       SignedZone, a_record, ldns_missing, srv_record)

SECRET = "s3cret"
NODE = "a." + DOMAIN
FORGED = "forged." + DOMAIN
FORGED_IP = "127.0.0.9"  # not one of a Cluster's 127.0.0.1-3


class Listener:
    """The forged target: a TCP listener on FORGED_IP that accepts and counts
    every connection (and closes it), in a thread joined by stop()."""

    def __init__(self, ip, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.peers = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            self.peers.append(peer)
            conn.close()

    def stop(self):
        if self.running:
            self.running = False
            self.thread.join()
            self.sock.close()
        return self.peers


class DnssecTest(xt.LabTest):
    prefix = "dnssec-"

    def setUp(self):
        super().setUp()
        # The genuine node, a.tptac9.test on 127.0.0.1, and the forged one on
        # FORGED_IP at the same port; both names are in the signed zone.
        self.cluster = Cluster(self.wd.path, secret=SECRET, nodes=1).start()
        self.cleanups.append(self.cluster.stop)
        self.node = self.cluster.node("a")
        self.port = self.node.address[1]
        self.forged = Listener(FORGED_IP, self.port)
        self.cleanups.append(self.forged.stop)
        self.zone = SignedZone(self.wd.path, [
            srv_record(10, 60, self.port, NODE),
            a_record(NODE, self.node.address[0]),
            a_record(FORGED, FORGED_IP),
        ])

    # ------------------------------------------------------------ helpers

    def serve(self, zonefile):
        u = SignedUnbound(self.wd.path, zonefile).start()
        self.cleanups.append(u.stop)
        return u

    def conf(self, u, anchor=None, **keys):
        return Agent(self.wd.path, secret=SECRET, dns_server=u.address,
                     dnssec_trust_anchor=anchor or self.zone.anchor, **keys)

    def xcomp(self, *args, expect=None):
        r = xt.run_command([xt.program("xcomp")] + list(args), self.wd.path, seconds=20,
                           valgrind=xt.VALGRIND, name="xcomp")
        if expect is not None:
            self.assertEqual(r.returncode, expect, "xcomp %s: exit %d\n%s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def assert_no_forged_connection(self):
        peers = self.forged.stop()
        self.assertEqual(peers, [], "connections reached the forged target %s:%d" % (
            FORGED_IP, self.port))

    def why_re(self, query, reason, advice, anchor=None):
        """The words every program uses for a validation failure: the query,
        libunbound's reason, what to do, and the trust anchor file."""
        return (r"DNSSEC validation failed for %s: %s.* \(%s[^()]*\); trust anchor %s" % (
            re.escape(query), reason, re.escape(advice), re.escape(anchor or self.zone.anchor)))

    def check_rejected(self, zonefile, query, reason, advice, failed_node=False, anchor=None):
        """The agent, resolve and probe all reject what zonefile serves: code
        dnssec, the query, the reason and the fix named, no connection anywhere."""
        u = self.serve(zonefile)
        why = self.why_re(query, reason, advice, anchor)
        a = self.conf(u, anchor)
        with a:
            st = a.wait_status(lambda s: s.get("last-error") == "dnssec", 5,
                               "last-error=dnssec")
            self.assertNotEqual(st["state"], "connected")
            self.assertRegex(st["last-error-text"], why)
            if failed_node:
                # The SRV answer was good: the node is known, and failed at its address.
                self.assertEqual([(n["target"], n["port"], n["result"]) for n in st["nodes"]],
                                 [(NODE, self.port, "dnssec")])
                self.assertNotIn("no DNS A or AAAA records", st["last-error-text"])
            else:
                self.assertEqual(st["nodes"], [])
        self.assertNotIn("authenticated", self.node.log_text())

        r = self.xcomp("resolve", "-f", a.conf_path, expect=1)
        self.assertRegex(r.stdout, why)
        if failed_node:
            self.assertIn("DNSSEC validation failed for the addresses of 1 target: the agent "
                          "will not connect there", r.stdout)
        self.assertNotIn(FORGED_IP, r.stdout)

        r = self.xcomp("probe", "-f", a.conf_path, expect=1)
        self.assertRegex(r.stdout, r"FAILED: %s" % why)
        self.assertIn("See xcomp-troubleshooting(7), section DNSSEC.", r.stdout)
        self.assertNotRegex(r.stdout, r"TCP connect")
        if failed_node:
            self.assertIn("Summary: 1 node probed, 0 passed, 1 failed: %s:%d (dnssec)." % (
                NODE, self.port), r.stdout)
        else:
            self.assertIn("Summary: the SRV lookup failed; no node probed.", r.stdout)
        self.assert_no_forged_connection()

    # ------------------------------------------------------------ tests

    def test_valid_zone_connects(self):
        u = self.serve(self.zone.sign())
        with self.conf(u) as a:
            st = a.wait_connected(5, server="%s:%d" % (NODE, self.port))
            self.assertEqual(st["address"], self.node.address[0])
            self.assertNotIn("last-error", st)
        r = self.xcomp("resolve", "-f", a.conf_path, expect=0)
        self.assertIn("%s: 1 SRV record, TTL 60 s, DNSSEC validated" % SRV_NAME, r.stdout)
        self.assertRegex(r.stdout, r"%s +60 +%s\n" % (re.escape(NODE), self.node.address[0]))
        r = self.xcomp("probe", "-f", a.conf_path, expect=0)
        self.assertIn("1 SRV record, TTL 60 s, DNSSEC validated", r.stdout)
        self.assertIn("%s: %s (TTL 60 s, DNSSEC validated)" % (NODE, self.node.address[0]),
                      r.stdout)
        self.assertIn("Summary: 1 node probed, 1 passed, 0 failed.", r.stdout)
        self.assert_no_forged_connection()

    def test_srv_changed_after_signing(self):
        # The forged SRV record names a host whose own A record is genuine.
        path = self.zone.alter(self.zone.sign(), SRV_NAME, "SRV",
                               "10 60 %d %s." % (self.port, FORGED))
        self.check_rejected(path, SRV_NAME + " SRV", "ECDSA signature verification failed",
                            "the records are not those that were signed: changed after signing")

    def test_a_changed_after_signing(self):
        path = self.zone.alter(self.zone.sign(), NODE, "A", FORGED_IP)
        self.check_rejected(path, NODE + " A", "ECDSA signature verification failed",
                            "the records are not those that were signed: changed after signing",
                            failed_node=True)

    def test_signatures_expired(self):
        self.check_rejected(self.zone.sign_expired(), SRV_NAME + " SRV", "signature expired",
                            "the zone's signatures are out of date: re-sign the zone")

    def test_signature_missing(self):
        path = self.zone.drop_rrsig(self.zone.sign(), SRV_NAME, "SRV")
        self.check_rejected(path, SRV_NAME + " SRV", "no signatures",
                            "the answer came without signatures: sign the zone")

    def test_a_signature_missing(self):
        path = self.zone.drop_rrsig(self.zone.sign(), NODE, "A")
        self.check_rejected(path, NODE + " A", "no signatures",
                            "the answer came without signatures: sign the zone",
                            failed_node=True)

    def test_unsigned_zone_under_the_anchor(self):
        self.check_rejected(self.zone.unsigned, SRV_NAME + " SRV", "no DNSKEY rrset",
                            "the zone has no DNSKEY records: it is not signed")

    def test_anchor_of_another_key(self):
        other = SignedZone(self.wd.path, [], name="other")
        self.check_rejected(self.zone.sign(), SRV_NAME + " SRV", "no keys have a DS",
                            "the zone's keys do not match the trust anchor: update the trust "
                            "anchor", anchor=other.anchor)

    def test_forged_node_skipped_for_the_next(self):
        # Two genuine nodes; a's A record is forged: the agent fails a with
        # dnssec, connects to b, and never to the forged address.
        os.mkdir(os.path.join(self.wd.path, "two"))
        two = Cluster(os.path.join(self.wd.path, "two"), secret=SECRET, nodes=2).start()
        self.cleanups.append(two.stop)
        a, b = two.node("a"), two.node("b")
        forged = Listener(FORGED_IP, a.address[1])
        self.cleanups.append(forged.stop)
        zone = SignedZone(self.wd.path, [
            srv_record(10, 60, a.address[1], NODE), a_record(NODE, a.address[0]),
            srv_record(20, 60, b.address[1], b.host), a_record(b.host, b.address[0]),
        ], name="zone2")
        u = self.serve(zone.alter(zone.sign(), NODE, "A", FORGED_IP))
        with self.conf(u, zone.anchor) as agent:
            st = agent.wait_connected(5, server=two.target(b))
            self.assertEqual([(n["target"], n["result"]) for n in st["nodes"]],
                             [(NODE, "dnssec"), (b.host, "ok")])
            self.assertRegex(agent.log_text(), self.why_re(
                NODE + " A", "ECDSA signature verification failed", "the records are not",
                zone.anchor))
        self.assertNotIn("authenticated", a.log_text())
        self.assertEqual(forged.stop(), [])

    def test_without_anchor_the_forgery_is_followed(self):
        # The control: without dnssec-trust-anchor the changed A record is
        # believed, and the forged target's listener sees the agent.
        path = self.zone.alter(self.zone.sign(), NODE, "A", FORGED_IP)
        u = self.serve(path)
        a = Agent(self.wd.path, secret=SECRET, dns_server=u.address)
        with a:
            xt.wait_until(lambda: self.forged.peers, 5, "a connection to the forged target")
        self.assertEqual(self.forged.stop()[0][0], "127.0.0.1")


if __name__ == "__main__":
    # Without ldnsutils there is no signed zone: skip (77), saying what to install.
    if ldns_missing():
        print("SKIP: %s" % ldns_missing())
        sys.exit(77)
    sys.exit(xt.main(DnssecTest, sys.argv[1:], ("xcomp", "xcompd", "xcomp-server")))
