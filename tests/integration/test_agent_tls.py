#!/usr/bin/env python3
"""Integration tests of xcompd over TLS (tls = direct): real xcomp-server nodes
with TLS listeners and certificate chains made by certtool in the test, a
real unbound, a Python TLS 1.0-only node; asserted through the status file.

    python3 tests/integration/test_agent_tls.py [NAME-SUBSTRING...]
"""

import os
import signal
import socket
import ssl
import sys
import threading
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import DOMAIN, Agent, Unbound, a_record, srv_record  # noqa: E402
from pki import PKI  # noqa: E402

SECRET = "s3cret"


class TlsTest(xt.LabTest):

    def setUp(self):
        super().setUp()
        self.pki = PKI(self.wd.path)

    # ------------------------------------------------------------ set-up

    def node(self, name, ip, cert=None, bundle=True, tls=True, trust=None):
        """An xcomp-server node a.tptac9.test etc. with a TLS (or plain) listener."""
        srv = xt.Server(self.wd.path, name=name, domain=DOMAIN, listen=(), bridges=())
        srv.must("callbridge", "add-secret", "cb1", input=SECRET + "\n")
        if tls:
            cert = cert or self.pki.leaf(name, cn="%s.%s" % (name, DOMAIN),
                                         dns=["%s.%s" % (name, DOMAIN)])
            args = ["certs", cert.key, cert.cert] + ([self.pki.bundle] if bundle else [])
            srv.must(*args)
            if trust:
                srv.must("trust", trust)
            srv.must("listen", "%s:0" % ip, "tls")
        else:
            srv.must("listen", "%s:0" % ip)
        srv.host = "%s.%s" % (name, DOMAIN)
        srv.start()
        self.cleanups.append(srv.stop)
        return srv

    def dns(self, nodes, prio=None):
        rr = []
        for i, n in enumerate(nodes):
            rr.append(srv_record(prio[i] if prio else 10 * (i + 1), 10, n.address[1], n.host))
            rr.append(a_record(n.host, n.address[0]))
        u = Unbound(self.wd.path, rr).start()
        self.cleanups.append(u.stop)
        return u

    def agent(self, u, **keys):
        keys.setdefault("tls", "direct")
        keys.setdefault("tls_ca", self.pki.ca)
        a = Agent(self.wd.path, secret=SECRET, dns_server=u.address, **keys).start()
        self.cleanups.append(a.stop)
        return a

    def failed_with(self, a, words, seconds=5):
        st = a.wait_status(lambda s: s.get("last-error") == "tls", seconds, "a TLS error")
        self.assertIn(words, st["last-error-text"])
        self.assertEqual(st["nodes"][0]["result"], "tls")
        return st

    # ------------------------------------------------------------ good

    def test_good_chain(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent(self.dns([n]))
        st = a.wait_connected()
        self.assertIn(st["tls"], ("TLS1.3", "TLS1.2"))
        self.assertIn("CN=a.tptac9.test", st["tls-peer"])
        self.assertIn("intermediate CA", st["tls-issuer"])
        self.assertRegex(st["tls-expires"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIn("cb1.tptac9.test authenticated", n.log_text())

    def test_one_certificate_for_all_nodes(self):
        # The seed: CN = the domain, the nodes as subjectAltNames.
        shared = self.pki.leaf("shared", cn=DOMAIN, dns=["a." + DOMAIN, "b." + DOMAIN])
        a_node = self.node("a", "127.0.0.1", cert=shared)
        b_node = self.node("b", "127.0.0.2", cert=shared)
        a = self.agent(self.dns([a_node, b_node]))
        st = a.wait_connected(server="%s:%d" % (a_node.host, a_node.address[1]))
        self.assertIn("CN=%s" % DOMAIN, st["tls-peer"])
        a_node.process.signal(signal.SIGKILL)
        st = a.wait_connected(server="%s:%d" % (b_node.host, b_node.address[1]))
        self.assertEqual(st["failovers"], "1")

    def test_tls_failure_on_one_node_moves_on(self):
        bad = self.node("a", "127.0.0.1", cert=self.pki.leaf(
            "old", cn="a." + DOMAIN, dns=["a." + DOMAIN], expired=True))
        good = self.node("b", "127.0.0.2")
        a = self.agent(self.dns([bad, good]))
        st = a.wait_connected(server="%s:%d" % (good.host, good.address[1]))
        self.assertEqual(st["nodes"][0]["result"], "tls")
        self.assertEqual(st["last-error"], "tls")
        self.assertIn("expired on 2021-01-01", st["last-error-text"])

    def test_client_certificate(self):
        client = self.pki.leaf("client", cn="cb1." + DOMAIN, client=True)
        n = self.node("a", "127.0.0.1", trust=self.pki.ca)
        u = self.dns([n])
        a = self.agent(u)
        self.failed_with(a, "client certificate")
        a.stop()
        # A client certificate from another CA is refused with a reason.
        other = PKI(self.wd.path, name="other", cn="other")
        stranger = other.leaf("stranger", cn="cb1." + DOMAIN, client=True)
        a1 = Agent(self.wd.path, name="stranger", secret=SECRET, dns_server=u.address,
                   tls="direct", tls_ca=self.pki.ca,
                   tls_cert=other._cat("stranger-chain.pem", [stranger.cert, other.inter.cert]),
                   tls_key=stranger.key).start()
        self.cleanups.append(a1.stop)
        self.failed_with(a1, "client certificate")
        xt.wait_until(lambda: "untrusted issuer" in n.log_text(), 3, "the server's reason")
        a1.stop()
        # The right one, sent with its intermediate (tls-cert holds the chain).
        chain = self.pki._cat("client-chain.pem", [client.cert, self.pki.inter.cert])
        a2 = Agent(self.wd.path, name="withcert", secret=SECRET, dns_server=u.address,
                   tls="direct", tls_ca=self.pki.ca, tls_cert=chain,
                   tls_key=client.key).start()
        self.cleanups.append(a2.stop)
        a2.wait_connected()

    # ------------------------------------------------------------ broken chains

    def test_leaf_without_intermediate(self):
        n = self.node("a", "127.0.0.1", bundle=False)
        a = self.agent(self.dns([n]))
        self.failed_with(a, "incomplete chain")

    def test_wrong_ca(self):
        other = PKI(self.wd.path, name="other", cn="other")
        n = self.node("a", "127.0.0.1")
        a = self.agent(self.dns([n]), tls_ca=other.ca)
        st = self.failed_with(a, "untrusted issuer")
        self.assertIn("xcomp test root CA", st["last-error-text"])

    def test_name_mismatch(self):
        n = self.node("a", "127.0.0.1", cert=self.pki.leaf("x", cn="x.example",
                                                          dns=["x.example"]))
        a = self.agent(self.dns([n]))
        st = self.failed_with(a, "name mismatch")
        self.assertIn("DNS:x.example", st["last-error-text"])
        self.assertIn("tptac9.test", st["last-error-text"])

    def test_expired(self):
        n = self.node("a", "127.0.0.1", cert=self.pki.leaf(
            "old", cn="a." + DOMAIN, dns=["a." + DOMAIN], expired=True))
        a = self.agent(self.dns([n]))
        self.failed_with(a, "certificate expired on 2021-01-01 00:00:00 UTC")

    def test_tls10_only_server_refused(self):
        # A node that speaks TLS 1.0 only, on loopback: Python's ssl with its
        # maximum set to TLS 1.0 (gnutls-serv cannot bind to one address).
        leaf = self.pki.leaf("a", cn="a." + DOMAIN, dns=["a." + DOMAIN])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(self.pki._cat("chain.pem", [leaf.cert, self.pki.bundle]), leaf.key)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        seen = []
        stop = threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                try:
                    conn.settimeout(2)
                    ctx.wrap_socket(conn, server_side=True).close()
                    seen.append("handshake completed")
                except (ssl.SSLError, OSError) as e:
                    seen.append(str(e))
                finally:
                    conn.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()

        def halt():
            stop.set()
            t.join(2)
            listener.close()
        self.cleanups.append(halt)
        u = Unbound(self.wd.path, [srv_record(10, 10, port, "a." + DOMAIN),
                                   a_record("a." + DOMAIN, "127.0.0.1")]).start()
        self.cleanups.append(u.stop)
        a = self.agent(u)
        self.failed_with(a, "protocol or cipher mismatch")
        self.assertNotIn("handshake completed", seen)

    # ------------------------------------------------------------ mismatched modes

    def test_plain_agent_against_tls_listener_fails_fast(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent(self.dns([n]), tls="off", connect_timeout=5, handshake_timeout=10)
        t0 = time.monotonic()
        st = a.wait_status(lambda s: s.get("last-error") in ("closed", "stream"), 3,
                           "a fast failure")
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertNotEqual(st["nodes"][0]["result"], "untried")

    def test_tls_agent_against_plain_listener_fails_fast(self):
        n = self.node("a", "127.0.0.1", tls=False)
        t0 = time.monotonic()
        a = self.agent(self.dns([n]), connect_timeout=5)
        st = self.failed_with(a, "does not speak TLS here", 3)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertIn("plain XML", st["last-error-text"])


if __name__ == "__main__":
    sys.exit(xt.main(TlsTest, sys.argv[1:], ("xcompd", "xcomp-server")))
