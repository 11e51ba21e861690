#!/usr/bin/env python3
"""Integration tests of xcomp-server's TLS listeners: certificates made with
certtool (pki.py), Python's ssl module as the component's TLS client, the
server's log and exit codes asserted.

    python3 tests/integration/test_tls_server.py [NAME-SUBSTRING...]

prints one line per test and "N passed, M failed"; exits 0 when all pass.
XCOMP_BUILDDIR names the build tree; XCOMP_VALGRIND=1 runs the server under
valgrind (see xcomptest.py).
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pki  # noqa: E402
import xcomptest as xt  # noqa: E402

DOMAIN = "tptac9.test"
CB1 = "cb1." + DOMAIN
CB2 = "cb2." + DOMAIN
NODES = ["xs1." + DOMAIN, "xs2." + DOMAIN, "xs3." + DOMAIN]
NO_CERT = "the client sent no certificate"
NEEDS_CERTS = "a TLS listener needs certs: xcomp-server -d %s certs KEY CERT [BUNDLE]"


def client_context(ca, cert=None, key=None):
    """A TLS client that verifies the server against ca (and the name)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


class TLSClient(xt.Client):
    """The harness's scripted XMPP client, over TLS from the first byte."""

    def __init__(self, addr, context, hostname, name="tls-client"):
        super().__init__(addr, name=name)
        # wrap_socket runs the handshake, bounded by the socket's timeout.
        self.sock = context.wrap_socket(self.sock, server_hostname=hostname)

    def version(self):
        return self.sock.version()


def pem_blocks(text):
    """The certificates in PEM text, as DER, in order."""
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    return [ssl.PEM_cert_to_DER_cert(b + "\n") for b in blocks]


def der_of(path):
    with open(path) as f:
        blocks = pem_blocks(f.read())
    assert len(blocks) == 1, path
    return blocks[0]


def connection_refused_before_xml(client, seconds=3.0):
    """After a handshake the server did not accept: no XML arrives and the
    connection ends (TLS 1.3 clients finish their side first, so the refusal
    shows on the first read or write). True when it ended with EOF or a TLS
    alert before any XML."""
    deadline = time.monotonic() + xt.timeout(seconds)
    try:
        client.send(client.stream_header(CB1))
        while not client.eof:
            if not client._read(deadline):
                return False
    except (ssl.SSLError, OSError):
        return client.data == ""
    return client.data == ""


class TLSServerTest(unittest.TestCase):
    maxDiff = None

    @contextlib.contextmanager
    def lab(self):
        """A temporary directory (kept on failure) with the seed's lab PKI: one
        certificate for all nodes, CN = the domain, the nodes' names as
        subjectAltNames, signed by an intermediate; every server started in
        it is stopped by its pid at the end."""
        with xt.Workdir(self._testMethodName.replace("test_", "tls-")) as wd:
            self.wd = wd
            self.servers = []
            self.pki = pki.PKI(wd.path)
            self.node = self.pki.leaf("node", cn=DOMAIN, dns=NODES)
            try:
                yield
            except BaseException:
                self.stop_all()
                raise
            self.stop_all(check=True)

    def stop_all(self, check=False):
        bad = []
        for srv in self.servers:
            rc = srv.stop()
            if rc not in (None, 0):
                bad.append("%s exited with %d (99: valgrind found errors); log:\n%s" % (
                    srv.name, rc, srv.log_text()[-3000:]))
        if check and bad:
            raise AssertionError("\n".join(bad))

    def server(self, name="xs1", listen=("127.0.0.2:0 tls", "127.0.0.2:0"), certs=True,
               trust=None, settings=(), start=True):
        """A server whose certs are the node certificate and the bundle."""
        s = list(settings)
        if certs:
            s.insert(0, ("certs", self.node.key, self.node.cert, self.pki.bundle))
        if trust:
            s.append(("trust", trust))
        srv = xt.Server(self.wd.path, name=name, domain=DOMAIN, listen=listen, settings=s)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def tls(self, srv, ctx=None, hostname=NODES[0], addr=None, name=None):
        c = TLSClient(addr or srv.tls_address, ctx or client_context(self.pki.ca), hostname,
                      name=name or "tls%d" % (len(srv.clients) + 1))
        srv.clients.append(c)
        return c

    def authenticate(self, srv, c, bridge="cb1"):
        c.open_stream(srv.jid(bridge))
        c.handshake(srv.secrets[bridge])
        c.ping(DOMAIN, srv.jid(bridge))

    def assert_refused_run(self, srv, *needles):
        """run exits 1 at once, says why, and listens nowhere."""
        p = xt.Process([xt.program("xcomp-server"), "-d", srv.dir, "run"], srv.workdir,
                       srv.name + "-refused", valgrind=xt.VALGRIND)
        with p:
            rc = p.wait(5)
        self.assertEqual(rc, 1, p.log_text())
        for n in needles:
            self.assertIn(n, p.log_text())
        self.assertFalse(os.path.exists(os.path.join(srv.dir, "listening")))

    # ------------------------------------------------------------ sessions

    def test_component_over_tls(self):
        with self.lab():
            srv = self.server()
            self.assertEqual(len(srv.tls_addresses), 1)
            self.assertEqual(len(srv.addresses), 2)
            c = self.tls(srv)
            self.assertIn(c.version(), ("TLSv1.2", "TLSv1.3"))
            self.authenticate(srv, c)
            # A plain listener serves beside the TLS one.
            plain = srv.component("cb2")
            plain.ping(DOMAIN, CB2)
            # Stanzas cross between the TLS and the plain session.
            c.send("<message from='%s' to='%s' id='m1'><body>hi</body></message>" % (CB1, CB2))
            raw, e = plain.recv_stanza()
            self.assertEqual(e.attrib, {"from": CB1, "to": CB2, "id": "m1"}, raw)
            log = srv.log_text()
            self.assertRegex(log, r"cb1\.tptac9\.test authenticated from [0-9.:]+ over TLS\n")
            self.assertRegex(log, r"cb2\.tptac9\.test authenticated from [0-9.:]+\n")
            r = srv.must("status")
            (th, tp), (ph, pp) = srv.tls_address, srv.address
            self.assertIn("Listening  : %s:%d (tls)\nListening  : %s:%d\n" % (th, tp, ph, pp),
                          r.stdout)
            version = c.version().replace("v", "")  # Python's TLSv1.3 is GnuTLS's TLS1.3
            self.assertIn("Component  : %s\nAddress    : %s\nSince      : " % (
                CB1, c.local_address()), r.stdout)
            self.assertRegex(r.stdout, r"Address    : %s\nSince      : \S+\nTLS        : %s\n" % (
                re.escape(c.local_address()), re.escape(version)))
            # The plain session shows no TLS line.
            self.assertRegex(r.stdout, r"Address    : %s\nSince      : \S+\n(\*\*\*|\Z)" % (
                re.escape(plain.local_address())))
            with open(os.path.join(srv.dir, "listening")) as f:
                self.assertEqual(f.read(), "%s:%d tls\n%s:%d\n" % (th, tp, ph, pp))

    def test_chain_sent_in_order(self):
        with self.lab():
            # The certificate, then the bundle (intermediate, root last), as the seed
            # sets it up; gnutls-cli prints what it received.
            srv = self.server()
            host, port = srv.tls_address
            r = subprocess.run(["gnutls-cli", "--x509cafile", self.pki.ca, "--verify-hostname",
                                NODES[0], "--print-cert", "-p", str(port), host],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=xt.timeout(10))
            self.assertEqual(r.returncode, 0, r.stderr)
            got = pem_blocks(r.stdout)
            want = [der_of(self.node.cert), der_of(self.pki.inter.cert), der_of(self.pki.root.cert)]
            self.assertEqual(len(got), 3, r.stdout)
            self.assertEqual(got, want, "chain not leaf, intermediate, root")
            # GnuTLS sorts the chain: a bundle in the wrong order goes out in the
            # right one, and a certificate of another chain is left out.
            other = pki.PKI(self.wd.path, name="other", cn="other")
            mixed = self.pki._cat("mixed.pem", [self.pki.root.cert, other.root.cert,
                                                self.pki.inter.cert])
            srv = self.server("xs2", settings=[("certs", self.node.key, self.node.cert, mixed)],
                              certs=False)
            host, port = srv.tls_address
            r = subprocess.run(["gnutls-cli", "--x509cafile", self.pki.ca, "--verify-hostname",
                                NODES[0], "--print-cert", "-p", str(port), host],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=xt.timeout(10))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(pem_blocks(r.stdout), want, "chain not sorted")

    def test_one_certificate_for_all_nodes(self):
        with self.lab():
            # The seed's lab: the same key and certificate on every node; a client
            # checks each node under its own name.
            a = self.server("xs1")
            b = self.server("xs2")
            for srv, node in ((a, NODES[0]), (b, NODES[1])):
                c = self.tls(srv, hostname=node, name=node)
                self.authenticate(srv, c)
            # The name check is real: a name the certificate lacks is refused by the client.
            with self.assertRaises(ssl.SSLCertVerificationError):
                self.tls(a, hostname="xs9." + DOMAIN)
            # And so is an unknown CA.
            other = pki.PKI(self.wd.path, name="other", cn="other")
            with self.assertRaises(ssl.SSLCertVerificationError):
                self.tls(a, ctx=client_context(other.ca))

    def test_client_certificate_required_and_missing(self):
        with self.lab():
            srv = self.server(trust=self.pki.bundle)
            t0 = time.monotonic()
            try:
                c = self.tls(srv)
            except (ssl.SSLError, OSError):
                pass  # TLS 1.2: the handshake itself fails
            else:
                self.assertTrue(connection_refused_before_xml(c), c.data)
            self.assertLess(time.monotonic() - t0, xt.timeout(1))
            srv.process.wait_for_log(r"TLS handshake with [0-9.:]+ on [0-9.:]+ failed: " + NO_CERT)
            self.assertNotIn("authenticated", srv.log_text())

    def test_client_certificate_from_other_ca(self):
        with self.lab():
            srv = self.server(trust=self.pki.bundle)
            other = pki.PKI(self.wd.path, name="other", cn="other")
            bad = other.leaf("cb1", cn=CB1, client=True)
            # The whole chain, so that only the root is missing.
            chain = os.path.join(self.wd.path, "cb1-chain.pem")
            with open(chain, "w") as f:
                for part in (bad.cert, other.inter.cert):
                    with open(part) as inp:
                        f.write(inp.read())
            try:
                c = self.tls(srv, ctx=client_context(self.pki.ca, chain, bad.key))
            except (ssl.SSLError, OSError):
                pass
            else:
                self.assertTrue(connection_refused_before_xml(c), c.data)
            srv.process.wait_for_log(r"failed: untrusted issuer: the chain ends at "
                                     r"CN=other root CA, which is not in \S+/bundle\.pem")
            self.assertNotIn("authenticated", srv.log_text())

    def test_client_certificate_accepted(self):
        with self.lab():
            srv = self.server(trust=self.pki.bundle)
            r = srv.must("trust")
            self.assertEqual(r.stdout, "Trust bundle     : %s\n" % os.path.realpath(self.pki.bundle))
            cert = self.pki.leaf("cb1", cn=CB1, client=True)
            ctx = client_context(self.pki.ca, cert.cert, cert.key)
            c = self.tls(srv, ctx=ctx)
            self.authenticate(srv, c)
            r = srv.must("status")
            self.assertRegex(r.stdout, r"TLS        : TLS1\.[23], client certificate CN=%s\n" % (
                re.escape(CB1)))
            # The certificate does not replace the secret: both are needed.
            c = self.tls(srv, ctx=ctx, name="wrong-secret")
            c.open_stream(CB1)
            c.handshake("not-the-secret", expect_ok=False)
            c.expect_stream_error("not-authorized")
            # The plain listener asks for no certificate (it has no TLS at all).
            srv.component("cb2").ping(DOMAIN, CB2)

    def test_trust_bundle_of_leaf_certificates(self):
        """The seed's "xmpp cluster trust" bundle is the nodes' own certificates;
        trust takes CAs. A bundle holding a certificate that is not a CA is still
        accepted, with a warning that says what it then means: only that very
        certificate gets in, and nothing it issued."""
        with self.lab():
            srv = self.server(start=False)
            r = srv.must("trust", self.pki.bundle)
            self.assertEqual(r.stderr, "")
            cert = self.pki.leaf("cb1", cn=CB1, client=True)
            r = srv.must("trust", cert.cert)
            self.assertIn("xcomp-server: warning: trust bundle %s: not a CA certificate "
                          "(basicConstraints CA:FALSE or absent): CN=%s\n" % (
                              os.path.realpath(cert.cert), CB1), r.stderr)
            self.assertIn("admits only a component that presents that very certificate",
                          r.stderr)
            self.assertEqual(srv.must("trust").stdout,
                             "Trust bundle     : %s\n" % os.path.realpath(cert.cert))
            srv.start()
            # That very certificate gets in ...
            c = self.tls(srv, ctx=client_context(self.pki.ca, cert.cert, cert.key))
            self.authenticate(srv, c)
            # ... another one from the same CA does not.
            other = self.pki.leaf("cb1-other", cn=CB1, client=True)
            try:
                c = self.tls(srv, ctx=client_context(self.pki.ca, other.cert, other.key),
                             name="other")
            except (ssl.SSLError, OSError):
                pass
            else:
                self.assertTrue(connection_refused_before_xml(c), c.data)
            srv.process.wait_for_log(r"TLS handshake with [0-9.:]+ on [0-9.:]+ failed: ")

    # -------------------------------------------------- wrong side, fast

    def test_plain_client_on_tls_listener(self):
        with self.lab():
            srv = self.server()  # handshake-timeout 10 s: the close must not wait for it
            c = srv.connect(name="plain", addr=srv.tls_address)
            t0 = time.monotonic()
            c.send(c.stream_header(CB1))
            rest = c.expect_closed(seconds=1)
            self.assertLess(time.monotonic() - t0, xt.timeout(1))
            # No XML (there is no stream to carry an error); at most a TLS alert record.
            self.assertNotIn("<", rest)
            self.assertTrue(rest == "" or rest.startswith("\x15\x03"), repr(rest))
            srv.process.wait_for_log(r"failed: the client does not speak TLS here: it sent plain XML")

    def test_tls_client_on_plain_listener(self):
        with self.lab():
            srv = self.server()
            t0 = time.monotonic()
            with self.assertRaises(ssl.SSLError):
                self.tls(srv, addr=srv.address)
            self.assertLess(time.monotonic() - t0, xt.timeout(1))
            srv.process.wait_for_log(r"started a TLS handshake on a plain listener")

    def test_tls10_refused(self):
        with self.lab():
            srv = self.server()
            host, port = srv.tls_address
            mismatch = r"failed: protocol or cipher mismatch"
            refused = self.tls10_python(srv)
            if refused is None or not re.search(mismatch, srv.log_text()):
                # Python's OpenSSL would not even offer TLS 1.0: ask GnuTLS.
                r = subprocess.run(["gnutls-cli", "--x509cafile", self.pki.ca, "--verify-hostname",
                                    NODES[0], "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.0",
                                    "-p", str(port), host],
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   timeout=xt.timeout(10))
                self.assertNotEqual(r.returncode, 0, r.stdout)
                self.assertNotIn("Handshake was completed", r.stdout)
            srv.process.wait_for_log(mismatch)
            self.assertNotIn("TLS with", srv.log_text())  # no session was made

    def tls10_python(self, srv):
        """Try TLS 1.0 with Python: True when refused, None when Python cannot."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx = client_context(self.pki.ca)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            return None
        try:
            c = self.tls(srv, ctx=ctx, name="tls1.0")
        except ssl.SSLError as e:
            if "NO_PROTOCOLS_AVAILABLE" in str(e) or "NO_CIPHERS" in str(e):
                return None
            return True
        except OSError:
            return True
        self.fail("a TLS 1.0 handshake succeeded (%s)" % c.version())

    def test_tls_handshake_timeout(self):
        with self.lab():
            srv = self.server(settings=[("handshake-timeout", "1")])
            t0 = time.monotonic()
            c = srv.connect(name="silent", addr=srv.tls_address)  # TCP only, no ClientHello
            self.assertEqual(c.expect_closed(seconds=3), "")
            took = time.monotonic() - t0
            self.assertGreater(took, 0.9)
            self.assertLess(took, xt.timeout(2))
            srv.process.wait_for_log(r"TLS handshake with [0-9.:]+ on [0-9.:]+ failed: "
                                     r"not finished within 1 s")

    # ------------------------------------------------------ configuration

    def test_certs_command(self):
        with self.lab():
            srv = self.server(certs=False, start=False)
            r = srv.must("certs")
            self.assertEqual(r.stdout, "Key file         : (not set)\n"
                                       "Certificate file : (not set)\n"
                                       "CA Bundle file   : (none)\n"
                                       "Trust bundle     : (none: client certificates not "
                                       "requested)\n")
            # Relative paths are stored absolute.
            rel = os.path.relpath(self.node.key)
            srv.must("certs", rel, self.node.cert, self.pki.bundle)
            r = srv.must("certs")
            real = os.path.realpath
            self.assertEqual(r.stdout, "Key file         : %s\nCertificate file : %s\n"
                                       "CA Bundle file   : %s\nTrust bundle     : (none: client "
                                       "certificates not requested)\n" % (
                                           real(self.node.key), real(self.node.cert),
                                           real(self.pki.bundle)))
            with open(os.path.join(srv.dir, "xcomp-server.conf")) as f:
                conf = f.read()
            self.assertIn("tls-key = %s\n" % real(self.node.key), conf)
            self.assertIn("listen = 127.0.0.2:0 tls\n", conf)
            r = srv.must("listen")
            self.assertEqual(r.stdout, "127.0.0.2:0 tls\n127.0.0.2:0\n")
            # A key that is not the certificate's.
            r = srv.cmd("certs", self.pki.root.key, self.node.cert)
            self.assertEqual(r.returncode, 1)
            self.assertIn("do not match", r.stderr)
            r = srv.cmd("certs", self.node.key, os.path.join(self.wd.path, "missing.pem"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("missing.pem: No such file or directory", r.stderr)
            # The failed commands left the state as it was.
            self.assertIn(real(self.node.key), srv.must("certs").stdout)
            srv.must("certs", "none")
            self.assertIn("Key file         : (not set)\n", srv.must("certs").stdout)

    def test_key_mode_644_refused(self):
        with self.lab():
            srv = self.server(start=False)
            os.chmod(self.node.key, 0o644)
            r = srv.cmd("certs", self.node.key, self.node.cert, self.pki.bundle)
            self.assertEqual(r.returncode, 1)
            self.assertIn("key readable by group or others (mode 644); run: chmod 600 %s" % (
                os.path.realpath(self.node.key)), r.stderr)
            # Set while private, then opened up: run refuses, with the same advice.
            self.assert_refused_run(srv, "(mode 644); run: chmod 600 %s" % (
                os.path.realpath(self.node.key)))
            os.chmod(self.node.key, 0o600)
            srv.start()
            self.authenticate(srv, self.tls(srv))

    def test_run_refuses_broken_tls_state(self):
        with self.lab():
            # A TLS listener without certs.
            srv = self.server(name="nocerts", certs=False, start=False)
            self.assert_refused_run(srv, NEEDS_CERTS % srv.dir)
            # Certificates that vanished after "certs".
            srv = self.server(name="vanished", start=False)
            cert = os.path.realpath(self.node.cert)
            os.rename(cert, cert + ".moved")
            try:
                self.assert_refused_run(srv, "certificate %s: No such file or directory" % cert)
            finally:
                os.rename(cert + ".moved", cert)
            # "certs none" repairs a state the server refuses.
            srv.must("certs", "none")
            srv.must("listen", "none")
            srv.must("listen", "127.0.0.2:0")
            srv.start()
            srv.component("cb1").ping(DOMAIN, CB1)

    # ------------------------------------------------------------- stop

    def test_sigterm_over_tls(self):
        with self.lab():
            srv = self.server()
            a = self.tls(srv, name="online")
            self.authenticate(srv, a)
            h = self.tls(srv, name="in-handshake")
            h.open_stream(CB2)
            silent = srv.connect(name="mid-tls", addr=srv.tls_address)  # no ClientHello yet
            srv.process.wait_for_log(r"connection from %s on " % re.escape(silent.local_address()))
            t0 = time.monotonic()
            srv.process.signal(signal.SIGTERM)
            a.expect_stream_error("system-shutdown")
            h.expect_stream_error("system-shutdown")
            self.assertEqual(silent.expect_closed(), "")
            self.assertEqual(srv.process.wait(), 0, srv.log_text())
            self.assertLess(time.monotonic() - t0, xt.timeout(1.5))
            self.assertFalse(os.path.exists(os.path.join(srv.dir, "listening")))


if __name__ == "__main__":
    if shutil.which("certtool") is None or shutil.which("gnutls-cli") is None:
        print("SKIP: certtool and gnutls-cli are needed (apt-get install gnutls-bin)")
        sys.exit(77)
    sys.exit(xt.main(TLSServerTest, sys.argv[1:], ("xcomp-server",)))
