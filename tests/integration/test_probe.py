#!/usr/bin/env python3
"""Integration tests of "xcomp probe": a real unbound on a free port, real
xcomp-server nodes on 127.0.0.1-3, a real xcompd where a test needs the
agent's session, and for TLS a small XEP-0114 server on Python's ssl module
(certificates from certtool) bound to loopback; asserted through the probe's
output and exit status.

    python3 tests/integration/test_probe.py [NAME-SUBSTRING...]
"""

import hashlib
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import (DOMAIN, Agent, AgentLab, Cluster, Unbound, a_record,  # noqa: E402
                       free_port, srv_record)
from pki import PKI  # noqa: E402

SECRET = "s3cret"
CB1 = "cb1." + DOMAIN
STEPS = ("DNS", "TCP connect", "stream header", "handshake", "close")


def step_re(step, text):
    """A step line: its name, a time in ms, then text (a regex)."""
    return re.compile(r"^  %s +\d+ ms  %s" % (re.escape(step), text), re.M)


class TLSPeer:
    """An XEP-0114 server over TLS (Python's ssl) on 127.0.0.x: it sends chain
    (a PEM file, leaf first), answers the stream header, checks the handshake
    against secret, keeps the session until the client closes it, and closes
    politely. One thread per connection, all joined by stop()."""

    def __init__(self, host, key, chain, secret=SECRET):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(chain, key)
        self.secret = secret
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.address = self.sock.getsockname()
        self.authenticated = 0
        self.tls_errors = []
        self.stopping = False
        self.threads = [threading.Thread(target=self.run, daemon=True)]
        self.threads[0].start()

    def run(self):
        self.sock.settimeout(0.1)
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self.connection, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def connection(self, conn):
        conn.settimeout(0.1)
        try:
            with self.ctx.wrap_socket(conn, server_side=True,
                                      do_handshake_on_connect=False) as tls:
                self.until(lambda: tls.do_handshake() or True)
                self.serve(tls)
        except (OSError, ssl.SSLError, AssertionError) as e:
            self.tls_errors.append(str(e))
        finally:
            conn.close()

    def until(self, step):
        """Retry step on socket timeouts until it returns something true, within 5 s
        (or for as long as the session lasts once authenticated), unless stopping."""
        deadline = time.monotonic() + xt.timeout(5)
        while not self.stopping:
            try:
                r = step()
                if r:
                    return r
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            if self.authenticated == 0 and time.monotonic() > deadline:
                raise AssertionError("TLS peer: client too slow")
        raise AssertionError("TLS peer: stopping")

    def read_until(self, tls, data, pattern):
        buf = [data]

        def step():
            m = re.search(pattern, buf[0])
            if m:
                return m
            b = tls.recv(4096)
            if not b:
                raise AssertionError("closed while waiting for %r" % pattern)
            buf[0] += b.decode()
            return None
        m = self.until(step)
        return m, buf[0][m.end():]

    def serve(self, tls):
        m, rest = self.read_until(tls, "", r"<stream:stream[^>]*\bto='([^']*)'[^>]*>")
        sid = uuid.uuid4().hex
        tls.sendall(("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' "
                     "from='%s' id='%s'>" % (xt.NS_COMPONENT, xt.NS_STREAMS, m.group(1),
                                             sid)).encode())
        m, rest = self.read_until(tls, rest, r"<handshake>([0-9a-f]*)</handshake>")
        if m.group(1) != hashlib.sha1((sid + self.secret).encode()).hexdigest():
            tls.sendall(("<stream:error><not-authorized xmlns='%s'/></stream:error>"
                         "</stream:stream>" % xt.NS_STREAM_ERRORS).encode())
            return
        self.authenticated += 1
        tls.sendall(b"<handshake/>")
        self.read_until(tls, rest, r"</stream:stream>")
        tls.sendall(b"</stream:stream>")

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(xt.timeout(5))
        self.sock.close()


class ProbeTest(AgentLab):

    def cluster(self, wrong_secret_on=None, **kw):
        c = Cluster(self.wd.path, secret=SECRET, **kw)
        if wrong_secret_on:
            c.node(wrong_secret_on).must("callbridge", "add-secret", "cb1",
                                         input="not-the-secret\n")
        c.start()
        self.cleanups.append(c.stop)
        return c

    def conf(self, dns=None, **keys):
        """An agent's configuration (the agent is not started)."""
        if dns is not None:
            keys.setdefault("dns_server", dns.address)
        return Agent(self.wd.path, secret=SECRET, **keys)

    def probe(self, *args, expect=None):
        """xcomp probe ARGS (under valgrind with XCOMP_VALGRIND=1, whose findings fail the run)."""
        r = xt.run_command([xt.program("xcomp"), "probe"] + list(args), self.wd.path,
                           seconds=30, valgrind=xt.VALGRIND, name="probe")
        if expect is not None:
            self.assertEqual(r.returncode, expect, "exit %d\n%s%s" % (
                r.returncode, r.stdout, r.stderr))
        return r

    @staticmethod
    def node_text(out, target):
        """The part of the output about one node, from its heading to its result."""
        m = re.search(r"^Node \d+ of \d+: %s\n(.*?)^Result: [^\n]*\n" % re.escape(target),
                      out, re.M | re.S)
        if m is None:
            raise AssertionError("no section for %s in:\n%s" % (target, out))
        return m.group(0)

    def assert_passed(self, out, target, steps=STEPS):
        text = self.node_text(out, target)
        for s in steps:
            self.assertRegex(text, step_re(s, ""), text)
        self.assertNotIn("FAILED", text)
        self.assertIn("Result: %s passed" % target, text)
        return text

    # ------------------------------------------------------------ plain TCP

    def test_every_srv_node_passes(self):
        c = self.cluster()
        u = self.dns(c.records(prio=(10, 20, 30)))
        a = self.conf(u)
        r = self.probe("-f", a.conf_path, expect=0)
        out = r.stdout
        self.assertRegex(out, step_re("DNS", r"_xmpp-component\._tcp\.%s: 3 SRV records, "
                                      r"TTL 60 s" % re.escape(DOMAIN)))
        # Distinct priorities: the order is fixed, a then b then c.
        self.assertEqual(re.findall(r"^Node (\d) of 3: (\S+)$", out, re.M),
                         [("1", c.target(c.node("a"))), ("2", c.target(c.node("b"))),
                          ("3", c.target(c.node("c")))])
        for n in c.nodes:
            text = self.assert_passed(out, c.target(n))
            self.assertRegex(text, step_re("DNS", r"%s: %s \(TTL 60 s\)" % (
                re.escape(n.host), re.escape(n.address[0]))))
            self.assertRegex(text, step_re("TCP connect", r"connected to %s port %d$" % (
                re.escape(n.address[0]), n.address[1])))
            self.assertRegex(text, step_re("stream header", r"from %s, id \S+$" % re.escape(CB1)))
            self.assertRegex(text, step_re("handshake", r"accepted"))
            self.assertRegex(text, step_re("close", r"the server closed its stream too"))
            self.assertIn("%s authenticated" % CB1, n.log_text())
        self.assertIn("Summary: 3 nodes probed, 3 passed, 0 failed.", out)
        self.assertNotIn("TLS ", out.split("TLS: off")[1])

    def test_wrong_secret_on_one_node(self):
        c = self.cluster(wrong_secret_on="b")
        u = self.dns(c.records(prio=(10, 20, 30)))
        a = self.conf(u)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        b = c.target(c.node("b"))
        text = self.node_text(out, b)
        self.assertRegex(text, step_re(
            "handshake", r"FAILED: authentication failure at %s \(not-authorized: Given token "
            r"does not match calculated token\)\n  See xcomp-troubleshooting\(7\), section "
            r"AUTH\.\nResult: %s failed at the handshake step \(auth\)\.\n$" % (
                re.escape(b), re.escape(b))))
        for s in STEPS[:3]:
            self.assertRegex(text, step_re(s, ""))
        self.assertNotRegex(text, step_re("close", ""))
        # The failure stops that node only.
        self.assert_passed(out, c.target(c.node("a")))
        self.assert_passed(out, c.target(c.node("c")))
        self.assertIn("Summary: 3 nodes probed, 2 passed, 1 failed: %s (auth)." % b, out)

    def test_no_srv_records(self):
        u = self.dns([a_record("a." + DOMAIN, "127.0.0.1")])
        a = self.conf(u)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        self.assertRegex(out, step_re("DNS", r"FAILED: .*_xmpp-component\._tcp\.%s" %
                                      re.escape(DOMAIN)))
        self.assertIn("See xcomp-troubleshooting(7), section DNS.", out)
        self.assertNotIn("Node 1", out)
        self.assertIn("Summary: the SRV lookup failed; no node probed.", out)

    def test_no_address_for_target(self):
        u = self.dns([srv_record(10, 10, 5347, "gone." + DOMAIN)])
        a = self.conf(u)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        text = self.node_text(out, "gone.%s:5347" % DOMAIN)
        self.assertRegex(text, step_re("DNS", r"FAILED: no DNS A or AAAA records for gone\."))
        self.assertIn("section DNS.", text)

    def test_refused_port(self):
        port = free_port("127.0.0.1", socket.SOCK_STREAM)
        a = self.conf(server="127.0.0.1:%d" % port)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        target = "127.0.0.1:%d" % port
        text = self.node_text(out, target)
        self.assertRegex(text, step_re("DNS", r"127\.0\.0\.1 is an address"))
        self.assertRegex(text, step_re(
            "TCP connect", r"FAILED: cannot connect to %s \(127\.0\.0\.1\): Connection refused\n"
            r"  See xcomp-troubleshooting\(7\), section CONNECT\.\n" % re.escape(target)))
        # HOST:PORT on the command line says the same.
        out2 = self.probe("-f", a.conf_path, target, expect=1).stdout
        self.assertIn("section CONNECT.", self.node_text(out2, target))

    def test_agent_holds_the_session_here(self):
        c = self.cluster()  # kick-new everywhere
        u = self.dns(c.records(prio=(10, 20, 30)))
        a = self.conf(u)
        a.start()
        self.cleanups.append(a.stop)
        st = a.wait_connected(server=c.target(c.node("a")))
        out = self.probe("-f", a.conf_path, expect=0).stdout
        held = c.target(c.node("a"))
        self.assertIn("Agent: connected to %s (127.0.0.1)" % held, out)
        text = self.node_text(out, held)
        self.assertIn("the agent holds the session here", text)
        self.assertNotIn("FAILED", text)
        self.assertIn("Result: %s passed: the agent holds the session here." % held, text)
        self.assert_passed(out, c.target(c.node("b")))
        self.assert_passed(out, c.target(c.node("c")))
        # By address and port too, and the agent's session is untouched.
        addr = "%s:%d" % c.node("a").address
        out = self.probe("-f", a.conf_path, addr, expect=0).stdout
        self.assertIn("Result: %s passed: the agent holds the session here." % addr, out)
        st2 = a.status()
        self.assertEqual((st2["state"], st2["server"], st2["connected-since"], st2["failovers"]),
                         ("connected", held, st["connected-since"], "0"))

    def test_conflict_without_the_agent_is_a_failure(self):
        c = self.cluster(nodes=1)
        cb1 = c.node("a").component("cb1")  # someone else holds cb1's session
        self.cleanups.append(cb1.close)
        a = self.conf(server="127.0.0.1:%d" % c.node("a").address[1])
        out = self.probe("-f", a.conf_path, expect=1).stdout
        self.assertRegex(out, step_re("handshake", r"FAILED: conflict at 127\.0\.0\.1:\d+: %s "
                                      r"is already connected there" % re.escape(CB1)))
        self.assertIn("section CONFLICT.", out)

    def test_silent_node_times_out(self):
        # A listener that never accepts: the kernel completes the TCP connect, nobody talks.
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        self.cleanups.append(silent.close)
        target = "127.0.0.1:%d" % silent.getsockname()[1]
        a = self.conf(server=target, handshake_timeout=1)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        m = step_re("stream header", r"FAILED: no stream header from %s within 1 s "
                    r"\(handshake-timeout\)" % re.escape(target)).search(out)
        self.assertIsNotNone(m, out)
        self.assertGreaterEqual(int(re.search(r"(\d+) ms", m.group(0)).group(1)), 950)
        self.assertIn("section TIMEOUT.", out)

    def test_unknown_component(self):
        srv = xt.Server(self.wd.path, name="a", domain=DOMAIN, listen=("127.0.0.1:0",),
                        bridges=("cb2",)).start()
        self.cleanups.append(srv.stop)
        a = self.conf(server="127.0.0.1:%d" % srv.address[1])
        out = self.probe("-f", a.conf_path, expect=1).stdout
        self.assertRegex(out, r"FAILED: stream error from 127\.0\.0\.1:\d+: host-unknown")
        self.assertIn("section STREAM.", out)

    def test_secret_file_refused(self):
        c = self.cluster(nodes=1)
        a = self.conf(server="127.0.0.1:%d" % c.node("a").address[1])
        os.chmod(a.secret_path, 0o644)
        out = self.probe("-f", a.conf_path, expect=2).stdout
        # The steps before the handshake still run.
        for s in STEPS[:3]:
            self.assertRegex(out, step_re(s, "(?!FAILED)"))
        self.assertRegex(out, step_re(
            "handshake", r"FAILED: not attempted: secret-file %s: readable by group or others "
            r"\(mode 644\); run: chmod 600 " % re.escape(a.secret_path)))
        self.assertIn("section CONFIG.", out)

    def test_config_errors(self):
        missing = os.path.join(self.wd.path, "nope.conf")
        r = self.probe("-f", missing, expect=2)
        self.assertIn("%s: cannot open" % missing, r.stderr)
        self.assertIn("section CONFIG", r.stderr)
        a = self.conf(server="127.0.0.1:1")
        r = self.probe("-f", a.conf_path, "bad host:x", expect=2)
        self.assertIn("is not HOST[:PORT]", r.stderr)
        r = self.probe("-f", a.conf_path, "a", "b", expect=2)
        self.assertIn("usage:", r.stderr)
        # Without -f: xcompd's default configuration, named when it is missing.
        m = re.search(r"default (\S+/xcompd\.conf)",
                      subprocess.run([xt.program("xcompd"), "-h"], capture_output=True,
                                     text=True, timeout=10).stdout)
        if m and not os.path.exists(m.group(1)):
            r = self.probe(expect=2)
            self.assertIn("%s: cannot open" % m.group(1), r.stderr)
            self.assertIn("xcompd's default configuration file", r.stderr)

    # ------------------------------------------------------------ TLS

    def tls_setup(self, chain="full", ca=None):
        """A TLS peer at a.tptac9.test (127.0.0.1) in SRV; the agent's configuration."""
        self.pki = PKI(self.wd.path)
        leaf = self.pki.leaf("a", cn=DOMAIN, dns=[DOMAIN, "a." + DOMAIN])
        path = os.path.join(self.wd.path, "chain.pem")
        with open(path, "w") as out:
            for f in [leaf.cert] + ([self.pki.inter.cert] if chain == "full" else []):
                with open(f) as inp:
                    out.write(inp.read())
        peer = TLSPeer("127.0.0.1", leaf.key, path)
        self.cleanups.append(peer.stop)
        u = self.dns([srv_record(10, 10, peer.address[1], "a." + DOMAIN),
                      a_record("a." + DOMAIN, "127.0.0.1")])
        a = self.conf(u, tls="direct", tls_ca=ca or self.pki.ca)
        return peer, a, "a.%s:%d" % (DOMAIN, peer.address[1])

    def assert_chain(self, text, n):
        self.assertIn("certificate chain as received, %d certificate%s, leaf first:" % (
            n, "s" if n > 1 else ""), text)
        leaf = text.index("1. subject  CN=%s" % DOMAIN)
        self.assertRegex(text, r"issuer   CN=xcomp test intermediate CA\n")
        self.assertRegex(text, r"valid    \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ to "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(expires in 36[45] days\)")
        self.assertIn("SAN      DNS:%s, DNS:a.%s" % (DOMAIN, DOMAIN), text)
        if n > 1:
            self.assertGreater(text.index("2. subject  CN=xcomp test intermediate CA"), leaf)

    def test_tls_good_chain(self):
        peer, a, target = self.tls_setup()
        out = self.probe("-f", a.conf_path, expect=0).stdout
        self.assertIn("TLS: direct; the certificate must be for %s or the node's name" % DOMAIN,
                      out)
        text = self.assert_passed(out, target, STEPS[:2] + ("TLS",) + STEPS[2:])
        self.assertRegex(text, step_re("TLS", r"TLS1\.[23], cipher \(TLS1\.[23]\)-\S+"))
        self.assert_chain(text, 2)
        self.assertRegex(text, r"verified: the chain leads to a CA in %s" % re.escape(
            self.pki.ca))
        self.assertEqual(peer.authenticated, 1, peer.tls_errors)

    def test_tls_untrusted_issuer(self):
        other = PKI(self.wd.path, name="other", cn="other")
        peer, a, target = self.tls_setup(ca=other.ca)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        text = self.node_text(out, target)
        self.assertRegex(text, step_re(
            "TLS", r"FAILED: TLS failure at %s \(127\.0\.0\.1\): untrusted issuer: the chain "
            r"ends at CN=xcomp test root CA, which is not in %s" % (
                re.escape(target), re.escape(other.ca))))
        self.assert_chain(text, 2)
        self.assertIn("See xcomp-troubleshooting(7), section TLS.", text)
        self.assertIn("failed at the TLS step (tls)", text)
        self.assertNotRegex(text, step_re("stream header", ""))
        self.assertEqual(peer.authenticated, 0)

    def test_tls_incomplete_chain(self):
        peer, a, target = self.tls_setup(chain="leaf")
        out = self.probe("-f", a.conf_path, expect=1).stdout
        text = self.node_text(out, target)
        self.assertRegex(text, step_re("TLS", r"FAILED: TLS failure at %s \(127\.0\.0\.1\): "
                                       r"incomplete chain: the server sent only its own "
                                       r"certificate" % re.escape(target)))
        self.assert_chain(text, 1)
        self.assertIn("See xcomp-troubleshooting(7), section TLS.", text)
        self.assertEqual(peer.authenticated, 0)

    def test_tls_to_a_plain_node(self):
        c = self.cluster(nodes=1)
        self.pki = PKI(self.wd.path)
        a = self.conf(server="127.0.0.1:%d" % c.node("a").address[1], tls="direct",
                      tls_ca=self.pki.ca)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        self.assertRegex(out, step_re("TLS", r"FAILED: .*does not speak TLS here"))
        self.assertIn("section TLS.", out)

    def test_tls_xcomp_server_nodes(self):
        """xcomp-server's own TLS listener: a node with its bundle, one without."""
        self.pki = PKI(self.wd.path)
        leaf = self.pki.leaf("node", cn=DOMAIN, dns=[DOMAIN, "a." + DOMAIN, "b." + DOMAIN])
        nodes = []
        for i, name in enumerate("ab"):
            srv = xt.Server(self.wd.path, name=name, domain=DOMAIN, listen=(), bridges=())
            srv.must("callbridge", "add-secret", "cb1", input=SECRET + "\n")
            r = srv.cmd("listen", "127.0.0.%d:0" % (i + 1), "tls")
            if r.returncode != 0:
                self.skipTest("xcomp-server has no TLS listener: " + r.stderr.strip())
            srv.must("certs", leaf.key, leaf.cert, *([self.pki.bundle] if name == "a" else []))
            srv.start()
            self.cleanups.append(srv.stop)
            nodes.append(srv)
        u = self.dns([srv_record(10 * (i + 1), 10, n.addresses[0][1], "%s.%s" % ("ab"[i], DOMAIN))
                      for i, n in enumerate(nodes)] +
                     [a_record("%s.%s" % ("ab"[i], DOMAIN), n.addresses[0][0])
                      for i, n in enumerate(nodes)])
        a = self.conf(u, tls="direct", tls_ca=self.pki.ca)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        good = "a.%s:%d" % (DOMAIN, nodes[0].addresses[0][1])
        text = self.assert_passed(out, good, STEPS[:2] + ("TLS",) + STEPS[2:])
        self.assert_chain(text, 3)  # the bundle ends with the root
        self.assertIn("3. subject  CN=xcomp test root CA", text)
        text = self.node_text(out, "b.%s:%d" % (DOMAIN, nodes[1].addresses[0][1]))
        self.assertRegex(text, step_re("TLS", r"FAILED: .*incomplete chain"))
        self.assert_chain(text, 1)
        self.assertIn("section TLS.", text)

    def test_tls_client_certificate_refused(self):
        """A node that requires a client certificate (xcomp-server trust) and gets
        none: with TLS 1.3 the refusal comes after the TLS step, and it is a TLS
        failure (section TLS), not a closed connection."""
        self.pki = PKI(self.wd.path)
        leaf = self.pki.leaf("node", cn="a." + DOMAIN, dns=["a." + DOMAIN])
        srv = xt.Server(self.wd.path, name="a", domain=DOMAIN, listen=(), bridges=())
        srv.must("callbridge", "add-secret", "cb1", input=SECRET + "\n")
        srv.must("certs", leaf.key, leaf.cert, self.pki.bundle)
        srv.must("trust", self.pki.ca)
        srv.must("listen", "127.0.0.1:0", "tls")
        srv.start()
        self.cleanups.append(srv.stop)
        host, port = srv.addresses[0]
        u = self.dns([srv_record(10, 10, port, "a." + DOMAIN), a_record("a." + DOMAIN, host)])
        a = self.conf(u, tls="direct", tls_ca=self.pki.ca)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        text = self.node_text(out, "a.%s:%d" % (DOMAIN, port))
        self.assertRegex(text, r"FAILED: TLS failure at a\.%s:%d \(127\.0\.0\.1\): the server "
                         r"requires a client certificate, and none is set \(tls-cert, "
                         r"tls-key\)" % (re.escape(DOMAIN), port))
        self.assertIn("See xcomp-troubleshooting(7), section TLS.", text)
        self.assertRegex(text, r"failed at the (TLS|stream header) step \(tls\)")
        self.assertNotIn("CLOSED", text)
        self.assertNotIn("(closed)", out)

    def test_tls_agent_status_and_probe(self):
        peer, a, target = self.tls_setup()
        a.start()
        self.cleanups.append(a.stop)
        st = a.wait_connected(server=target)
        self.assertEqual(st.get("tls-peer"), "CN=" + DOMAIN, st)
        r = xt.run_command([xt.program("xcomp"), "status", "-f", a.conf_path], self.wd.path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^TLS: +TLS1\.[23], cipher \(TLS1\.[23]\)-\S+$")
        self.assertRegex(r.stdout, r"(?m)^Certificate: +CN=%s, issued by CN=xcomp test "
                         r"intermediate CA, valid until %s \(expires in 36[45] days\)$" % (
                             re.escape(DOMAIN), re.escape(st["tls-expires"])))
        out = self.probe("-f", a.conf_path, expect=0).stdout
        text = self.node_text(out, target)
        self.assertRegex(text, step_re("TLS", r"TLS1\.[23]"))
        self.assertIn("Result: %s passed: the agent holds the session here." % target, text)
        self.assertEqual(peer.authenticated, 1)

    # ------------------------------------------------------------ xcomp status

    def status_file(self, **keys):
        """A status file of a live, connected agent (this process stands in for it)."""
        now = time.time()
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        lines = ["state=connected", "since=" + iso, "updated=" + iso, "pid=%d" % os.getpid(),
                 "component=" + CB1, "domain=" + DOMAIN, "server=a.%s:5223" % DOMAIN,
                 "address=127.0.0.1", "connected-since=" + iso]
        lines += ["%s=%s" % (k.replace("_", "-"), v) for k, v in keys.items()]
        lines += ["failovers=0", "node=a.%s:5223 priority=0 weight=0 result=ok" % DOMAIN]
        path = os.path.join(self.wd.path, "status")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def status(self, *args):
        return xt.run_command([xt.program("xcomp"), "status"] + list(args), self.wd.path)

    def test_status_tls_lines(self):
        cipher = "(TLS1.3)-(ECDHE-SECP256R1)-(ECDSA-SECP256R1-SHA256)-(AES-256-GCM)"
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 10.5 * 86400))
        path = self.status_file(tls="TLS1.3", tls_cipher=cipher, tls_peer="CN=" + DOMAIN,
                                tls_issuer="CN=Example CA,O=Example", tls_expires=expires)
        r = self.status("-s", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("\nTLS:             TLS1.3, cipher %s\n" % cipher, r.stdout)
        self.assertIn("\nCertificate:     CN=%s, issued by CN=Example CA,O=Example, valid until "
                      "%s (expires in 10 days)\n" % (DOMAIN, expires), r.stdout)
        r = self.status("-s", path, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for k, v in (("tls", "TLS1.3"), ("tls-cipher", cipher), ("tls-peer", "CN=" + DOMAIN),
                     ("tls-expires", expires)):
            self.assertIn('"%s": "%s"' % (k, v), r.stdout)
        expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3.2 * 86400))
        path = self.status_file(tls="TLS1.2", tls_cipher="x", tls_peer="CN=p", tls_issuer="CN=i",
                                tls_expires=expired)
        self.assertIn("valid until %s (expired 3 days ago)" % expired,
                      self.status("-s", path).stdout)
        # Plain TCP: no TLS lines.
        r = self.status("-s", self.status_file())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("TLS:", r.stdout)
        self.assertNotIn("Certificate:", r.stdout)

    # ------------------------------------------------------------ misspelt SRV records

    def test_srv_hint_names_what_it_found(self):
        # Records without the dot between the labels, and client records: both said.
        nodot, client = "_xmpp-component_tcp." + DOMAIN, "_xmpp-client._tcp." + DOMAIN
        u = self.dns(["%s. 60 IN SRV 10 60 5347 a.%s." % (nodot, DOMAIN),
                      "%s. 60 IN SRV 0 0 5222 a.%s." % (client, DOMAIN),
                      a_record("a." + DOMAIN, "127.0.0.1")])
        a = self.conf(u)
        out = self.probe("-f", a.conf_path, expect=1).stdout
        self.assertRegex(out, step_re("DNS", r"FAILED: _xmpp-component\._tcp\.%s: NXDOMAIN" %
                                      re.escape(DOMAIN)))
        self.assertRegex(out, step_re(
            "DNS", r"found %s instead: the dot between _xmpp-component and _tcp is missing; "
            r"rename the record\n +priority 10 +weight 60 +port 5347 +a\.%s\n" % (
                re.escape(nodot), re.escape(DOMAIN))))
        self.assertRegex(out, step_re(
            "DNS", r"found %s instead: those are the XMPP client records \(port 5222\), not "
            r"for components; .*\n +priority 0 +weight 0 +port 5222 +a\.%s\n" % (
                re.escape(client), re.escape(DOMAIN))))
        self.assertIn("See xcomp-troubleshooting(7), section DNS.", out)
        self.assertIn("Summary: the SRV lookup failed; no node probed.", out)

    def test_srv_hint_doubled_domain_and_nothing_found(self):
        doubled = "_xmpp-component._tcp.%s.%s" % (DOMAIN, DOMAIN)
        u = self.dns(["%s. 60 IN SRV 10 60 5347 a.%s." % (doubled, DOMAIN)])
        out = self.probe("-f", self.conf(u).conf_path, expect=1).stdout
        self.assertRegex(out, step_re(
            "DNS", r"found %s instead: the record was written in a zone file without the "
            r"trailing dot" % re.escape(doubled)))
        self.assertEqual(out.count("found "), 1, out)
        # Nothing anywhere: the names asked are listed.
        u2 = Unbound(self.wd.path, [a_record("a." + DOMAIN, "127.0.0.1")], name="unbound2")
        u2.start()
        self.cleanups.append(u2.stop)
        out = self.probe("-f", self.conf(u2, name="other").conf_path, expect=1).stdout
        self.assertRegex(out, step_re(
            "DNS", r"no records under the usual misspellings either \(_xmpp-component_tcp\.%s, "
            r"_xmpp-client\._tcp\.%s, _xmpp-component\._tcp\.%s\.%s\)\n  See xcomp-trouble" % (
                (re.escape(DOMAIN),) * 4)))

    # ------------------------------------------------------------ HOST's port

    def test_host_takes_the_port_of_its_srv_record(self):
        c = self.cluster()
        u = self.dns(c.records(prio=(10, 20, 30)))
        # Nothing listens on the configuration's port.
        cport = free_port("127.0.0.1", socket.SOCK_STREAM)
        a = self.conf(u, port=cport)
        b = c.node("b")
        out = self.probe("-f", a.conf_path, b.host, expect=0).stdout
        self.assertIn("\nSRV records, for the port of %s\n" % b.host, out)
        self.assertIn("%s is a target: probing the port of its record, as the agent would" %
                      b.host, out)
        self.assertIn("\nNode 1 of 1: %s\n" % c.target(b), out)
        self.assert_passed(out, c.target(b))
        # HOST:PORT given wins.
        out = self.probe("-f", a.conf_path, "%s:%d" % (b.host, cport), expect=1).stdout
        self.assertNotIn("SRV records", out)
        self.assertIn("section CONNECT.", self.node_text(out, "%s:%d" % (b.host, cport)))
        # A HOST that is not a target keeps the configuration's port.
        out = self.probe("-f", a.conf_path, "127.0.0.2", expect=1).stdout
        self.assertIn("127.0.0.2 is not a target of these records", out)
        self.assertIn("probing 127.0.0.2 at the configured port %d" % cport, out)
        text = self.node_text(out, "127.0.0.2:%d" % cport)
        self.assertRegex(text, step_re("TCP connect", r"FAILED: .*Connection refused"))

    def test_host_port_without_srv_records(self):
        c = self.cluster(nodes=1)
        u = self.dns([a_record("a." + DOMAIN, "127.0.0.1")])
        a = self.conf(u, port=c.node("a").address[1])
        out = self.probe("-f", a.conf_path, "a." + DOMAIN, expect=0).stdout
        self.assertRegex(out, step_re("DNS", r"_xmpp-component\._tcp\.%s: NXDOMAIN" %
                                      re.escape(DOMAIN)))
        self.assertNotIn("FAILED", out)
        self.assertIn("probing a.%s at the configured port %d" % (DOMAIN, c.node("a").address[1]),
                      out)
        self.assert_passed(out, c.target(c.node("a")))

    def test_srv_target_that_is_an_address(self):
        c = self.cluster(nodes=1)
        port = c.node("a").address[1]
        u = self.dns([srv_record(10, 10, port, "127.0.0.1")])
        out = self.probe("-f", self.conf(u).conf_path, expect=0).stdout
        text = self.assert_passed(out, "127.0.0.1:%d" % port)
        self.assertRegex(text, step_re("DNS", r"127\.0\.0\.1 is an address: nothing to look up"))

    def test_probes_no_more_nodes_than_the_agent_tries(self):
        # 40 records, one priority each, on refused ports: the agent tries the first 32
        # (SRV_USE_MAX), so the probe probes those and says that the rest are left out.
        # Distinct ports: a repeated target:port is one node (srv_order), and a port that was
        # free a moment ago may well be handed out again.
        ports = []
        while len(ports) < 40:
            port = free_port("127.0.0.1", socket.SOCK_STREAM)
            if port not in ports:
                ports.append(port)
        u = self.dns([srv_record(i, 10, port, "127.0.0.1") for i, port in enumerate(ports)])
        out = self.probe("-f", self.conf(u).conf_path, expect=1).stdout
        self.assertIn("40 SRV records", out)
        self.assertIn("the agent tries at most 32 nodes: the other 8 records are left out", out)
        self.assertEqual(re.findall(r"^Node \d+ of (\d+): 127\.0\.0\.1:(\d+)$", out, re.M),
                         [("32", str(port)) for port in ports[:32]])
        self.assertIn("Summary: 32 nodes probed, 0 passed, 32 failed", out)


if __name__ == "__main__":
    sys.exit(xt.main(ProbeTest, sys.argv[1:], ("xcomp", "xcompd", "xcomp-server")))
