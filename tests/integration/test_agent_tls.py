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
import struct
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

    def dns(self, nodes, prio=None, name="unbound"):
        rr = []
        for i, n in enumerate(nodes):
            rr.append(srv_record(prio[i] if prio else 10 * (i + 1), 10, n.address[1], n.host))
            rr.append(a_record(n.host, n.address[0]))
        u = Unbound(self.wd.path, rr, name=name).start()
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

    def python_node(self, serve, name="unbound"):
        """a.tptac9.test on 127.0.0.1, a Python server: serve(conn) runs for each
        connection. Returns the Unbound (named name) that publishes it."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                try:
                    conn.settimeout(2)
                    serve(conn)
                except (ssl.SSLError, OSError):
                    pass
                finally:
                    conn.close()

        t = threading.Thread(target=loop, daemon=True)
        t.start()

        def halt():
            stop.set()
            t.join(2)
            listener.close()
        self.cleanups.append(halt)
        u = Unbound(self.wd.path, [srv_record(10, 10, port, "a." + DOMAIN),
                                   a_record("a." + DOMAIN, "127.0.0.1")], name=name).start()
        self.cleanups.append(u.stop)
        return u

    def test_client_certificate(self):
        client = self.pki.leaf("client", cn="cb1." + DOMAIN, client=True)
        n = self.node("a", "127.0.0.1", trust=self.pki.ca)
        u = self.dns([n])
        a = self.agent(u)
        st = self.failed_with(a, "the server requires a client certificate, and none is set "
                                 "(tls-cert, tls-key)")
        r = xt.run_command([xt.program("xcomp"), "status", "-s", a.status_path], self.wd.path)
        self.assertIn("See xcomp-troubleshooting(7), section TLS.", r.stdout)
        self.assertNotIn("CLOSED", r.stdout)
        self.assertNotIn("closed", st["nodes"][0]["result"])
        a.stop()
        # A client certificate from another CA is refused with a reason.
        other = PKI(self.wd.path, name="other", cn="other")
        stranger = other.leaf("stranger", cn="cb1." + DOMAIN, client=True)
        a1 = Agent(self.wd.path, name="stranger", secret=SECRET, dns_server=u.address,
                   tls="direct", tls_ca=self.pki.ca,
                   tls_cert=other._cat("stranger-chain.pem", [stranger.cert, other.inter.cert]),
                   tls_key=stranger.key).start()
        self.cleanups.append(a1.stop)
        self.failed_with(a1, "the server refused our client certificate CN=cb1.%s, issued by "
                             "CN=other intermediate CA" % DOMAIN)
        xt.wait_until(lambda: "untrusted issuer" in n.log_text(), 3, "the server's reason")
        a1.stop()
        # The right one, sent with its intermediate (tls-cert holds the chain).
        chain = self.pki._cat("client-chain.pem", [client.cert, self.pki.inter.cert])
        a2 = Agent(self.wd.path, name="withcert", secret=SECRET, dns_server=u.address,
                   tls="direct", tls_ca=self.pki.ca, tls_cert=chain,
                   tls_key=client.key).start()
        self.cleanups.append(a2.stop)
        a2.wait_connected()

    def test_client_certificate_refused_without_an_alert(self):
        """Servers that refuse a missing client certificate without an alert the
        agent gets to read: a TLS 1.3 server that resets the connection after the
        handshake (the agent has finished its side and sent its stream header),
        and a TLS 1.2 server (OpenSSL) that answers handshake_failure or hangs up.
        Each is a TLS failure about the certificate, not a close or a mismatch."""
        leaf = self.pki.leaf("a", cn="a." + DOMAIN, dns=["a." + DOMAIN])
        chain = self.pki._cat("chain.pem", [leaf.cert, self.pki.bundle])
        for version in ("TLSv1_3", "TLSv1_2"):
            with self.subTest(version=version):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
                ctx.load_cert_chain(chain, leaf.key)
                ctx.load_verify_locations(self.pki.ca)
                ctx.verify_mode = ssl.CERT_OPTIONAL if version == "TLSv1_3" else \
                    ssl.CERT_REQUIRED

                def serve(conn, ctx=ctx):
                    tls = ctx.wrap_socket(conn, server_side=True)
                    if tls.getpeercert() is None:
                        # A reset, no alert: SO_LINGER 0 then close.
                        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
                    tls.close()
                u = self.python_node(serve, name="unbound-" + version)
                a = self.agent(u, name="xcompd-" + version)
                self.failed_with(a, "the server requires a client certificate, and none is "
                                    "set (tls-cert, tls-key)")
                a.stop()

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

    def test_name_mismatch_lists_the_names_that_count(self):
        # The seed's shared certificate (CN = the domain) without this node among
        # its subjectAltNames: the CN is not a name the certificate is for.
        shared = self.pki.leaf("shared", cn=DOMAIN, dns=["a." + DOMAIN, "b." + DOMAIN])
        n = self.node("c", "127.0.0.1", cert=shared)
        a = self.agent(self.dns([n]))
        st = self.failed_with(a, "name mismatch")
        self.assertIn(
            "name mismatch: the certificate is for DNS:a.%s, DNS:b.%s only (its "
            "subjectAltNames), not %s nor c.%s; its CN=%s does not count: with "
            "subjectAltNames present, a client ignores the CN (RFC 6125, 6.4.4)" % (
                DOMAIN, DOMAIN, DOMAIN, DOMAIN, DOMAIN), st["last-error-text"])
        a.stop()
        # Without subjectAltNames the CN is what counts.
        n2 = self.node("d", "127.0.0.2", cert=self.pki.leaf("cn-only", cn="x.example"))
        a2 = self.agent(self.dns([n2], name="unbound-cn-only"), name="cn-only")
        st = self.failed_with(a2, "name mismatch")
        self.assertIn("name mismatch: the certificate is for CN=x.example (it has no "
                      "subjectAltName), not %s nor d.%s" % (DOMAIN, DOMAIN),
                      st["last-error-text"])
        self.assertNotIn("does not count", st["last-error-text"])

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
        seen = []

        def serve(conn):
            try:
                ctx.wrap_socket(conn, server_side=True).close()
                seen.append("handshake completed")
            except (ssl.SSLError, OSError) as e:
                seen.append(str(e))
        u = self.python_node(serve)
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
