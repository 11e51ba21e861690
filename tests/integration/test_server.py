#!/usr/bin/env python3
"""Integration tests of xcomp-server: real processes on loopback, a scripted
raw XMPP client, assertions on the exact wire forms and exit codes.

    python3 tests/integration/test_server.py [NAME-SUBSTRING...]

prints one line per test and "N passed, M failed"; exits 0 when all pass.
XCOMP_BUILDDIR names the build tree; XCOMP_VALGRIND=1 runs the server under
valgrind (see xcomptest.py).
"""

import os
import re
import signal
import socket
import stat
import sys
import threading
import time
import traceback
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pki  # noqa: E402
import xcomptest as xt  # noqa: E402
from xcomptest import ANY, NS_COMPONENT, NS_PING, NS_STANZA_ERRORS  # noqa: E402

DOMAIN = "tptac9.test"
CB1 = "cb1." + DOMAIN
CB2 = "cb2." + DOMAIN


def q(ns, name):
    return "{%s}%s" % (ns, name)


class FakeControl:
    """A stand-in for the server's side of DIR/control.sock (CLUSTER.md's
    protocol): records each request line and answers from answers, a dict
    from request line to the raw answer ("STATUS\\nTEXT")."""

    def __init__(self, directory, answers):
        self.path = os.path.join(directory, "control.sock")
        self.answers = answers
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.done = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while not data.endswith(b"\n"):
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except socket.timeout:
                    pass
                if not data:
                    continue  # a probe: connect and close
                line = data.decode().rstrip("\n")
                self.requests.append(line)
                conn.sendall(self.answers.get(line, "9\nunexpected request\n").encode())

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()
        os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def expect_service_unavailable(test, client, kind, frm, to, stanza_id):
    """The next stanza is the exact service-unavailable bounce."""
    raw, e = client.recv_stanza()
    test.assertEqual(e.tag, q(NS_COMPONENT, kind), raw)
    want = {"from": frm, "to": to, "type": "error"}
    if stanza_id is not None:
        want["id"] = stanza_id
    test.assertEqual(e.attrib, want, raw)
    test.assertEqual(len(e), 1, raw)
    err = e[0]
    test.assertEqual(err.tag, q(NS_COMPONENT, "error"), raw)
    test.assertEqual(err.attrib, {"type": "cancel"}, raw)
    test.assertEqual([c.tag for c in err], [q(NS_STANZA_ERRORS, "service-unavailable")], raw)
    test.assertEqual(len(err[0]), 0, raw)


class ServerTest(unittest.TestCase):
    maxDiff = None

    def server(self, **kw):
        return xt.server(self._testMethodName.replace("test_", ""), **kw)

    # ------------------------------------------------------------ handshake

    def test_success(self):
        with self.server() as srv:
            c = srv.connect()
            c.send(c.stream_header(CB1))
            hdr = c.expect_header()
            self.assertEqual(hdr["from"], CB1)
            self.assertRegex(hdr["id"], r"^[0-9a-f-]{16,}$")
            self.assertNotIn("to", hdr)
            c.send("<handshake>%s</handshake>" % c.digest(c.stream_id, srv.secrets["cb1"]))
            self.assertEqual(c.recv_until("<handshake/>"), "<handshake/>")
            c.ping(DOMAIN, CB1)
            c.send("</stream:stream>")
            self.assertEqual(c.recv_until("</stream:stream>"), "</stream:stream>")
            self.assertEqual(c.expect_closed(), "")
            self.assertIn("cb1.tptac9.test authenticated from", srv.log_text())

    def test_stream_ids_differ(self):
        with self.server() as srv:
            ids = set()
            for i in range(3):
                c = srv.connect()
                ids.add(c.open_stream(CB1, decl=False))
            self.assertEqual(len(ids), 3)

    def test_wrong_secret(self):
        with self.server() as srv:
            c = srv.connect()
            c.open_stream(CB1)
            c.send("<handshake>%s</handshake>" % c.digest(c.stream_id, "not-the-secret"))
            c.expect_stream_error("not-authorized", "Given token does not match calculated token")
            log = srv.log_text()
            self.assertIn("authentication failure for cb1.tptac9.test", log)
            self.assertNotIn(srv.secrets["cb1"], log)
            # The secret of cb2 does not open cb1 either.
            c = srv.connect()
            c.open_stream(CB1)
            c.handshake(srv.secrets["cb2"], expect_ok=False)
            c.expect_stream_error("not-authorized", "Given token does not match calculated token")
            # The right secret still works after the failures.
            srv.component("cb1").ping(DOMAIN, CB1)

    def test_unknown_component(self):
        with self.server() as srv:
            for to in ("nobody." + DOMAIN, "cb1.other.test", DOMAIN):
                c = srv.connect(name=to)
                c.send(c.stream_header(to))
                c.expect_header()
                c.expect_stream_error("host-unknown")

    def test_missing_to(self):
        with self.server() as srv:
            c = srv.connect()
            c.send(c.stream_header(None))
            hdr = c.expect_header()
            self.assertEqual(hdr.get("from"), DOMAIN)
            c.expect_stream_error("improper-addressing")

    def test_handshake_timeout(self):
        with self.server(settings=[("handshake-timeout", "1")]) as srv:
            t0 = time.monotonic()
            # half a handshake, then a stall
            c = srv.connect(name="half-handshake")
            c.open_stream(CB1)
            c.send("<handshake>%s" % c.digest(c.stream_id, srv.secrets["cb1"])[:20])
            # nothing at all
            n = srv.connect(name="silent")
            # an authenticated session is not timed out
            a = srv.component("cb1")
            c.expect_stream_error("connection-timeout", seconds=3)
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.9)
            self.assertLess(elapsed, xt.timeout(2.0))
            n.expect_header(seconds=1)
            n.expect_stream_error("connection-timeout", seconds=1)
            a.expect_nothing(max(0.0, t0 + 1.3 - time.monotonic()))
            a.ping(DOMAIN, CB1)

    # ------------------------------------------------------------ keepalive

    def expect_server_ping(self, client, jid, seconds=3.0):
        """The next stanza is the server's keepalive ping to jid; its id."""
        raw, e = client.recv_stanza(seconds=seconds)
        self.assertEqual(e.tag, q(NS_COMPONENT, "iq"), raw)
        self.assertEqual({k: v for k, v in e.attrib.items() if k != "id"},
                         {"type": "get", "from": DOMAIN, "to": jid}, raw)
        self.assertEqual([c.tag for c in e], [q(NS_PING, "ping")], raw)
        self.assertTrue(e.get("id"), raw)
        return e.get("id")

    def test_keepalive_settings(self):
        with self.server() as srv:
            for key, default, good, bad, bounds in (
                    ("keepalive", "10", "7", ("0", "3601", "x", ""), "1..3600"),
                    ("keepalive-timeout", "5", "4", ("0", "301", "-1"), "1..300")):
                self.assertEqual(srv.must(key).stdout, default + "\n")
                for v in bad:
                    r = srv.cmd(key, v)
                    self.assertEqual((r.returncode, r.stdout), (1, ""), (key, v))
                    self.assertEqual(r.stderr, "xcomp-server: usage: %s [%s]\n" % (key, bounds))
                self.assertEqual(srv.must(key).stdout, default + "\n")
                srv.must(key, good)
                self.assertEqual(srv.must(key).stdout, good + "\n")
            with open(os.path.join(srv.dir, "xcomp-server.conf")) as f:
                conf = f.read()
            self.assertIn("\nkeepalive = 7\nkeepalive-timeout = 4\n", conf)
            # a bad value in the file is refused with the key named
            with open(os.path.join(srv.dir, "xcomp-server.conf"), "a") as f:
                f.write("keepalive-timeout = 0\n")
            r = srv.cmd("keepalive")
            self.assertEqual(r.returncode, 1)
            self.assertIn("keepalive-timeout: expected seconds from 1 to 300", r.stderr)

    def test_keepalive_answered(self):
        settings = [("keepalive", "1"), ("keepalive-timeout", "1")]
        with self.server(settings=settings) as srv:
            a = srv.component("cb1")
            b = srv.component("cb2")
            t0 = time.monotonic()
            ids, got = set(), {a: 0, b: 0}
            while time.monotonic() - t0 < 4.0:
                for c, jid in ((a, CB1), (b, CB2)):
                    # only the server's pings arrive: nothing of the other's replies
                    if xt.complete_element(c.pending()) is None and \
                            not c._read(time.monotonic() + 0.05):
                        continue
                    if xt.complete_element(c.pending()) is None:
                        continue
                    ping_id = self.expect_server_ping(c, jid, seconds=0.1)
                    ids.add(ping_id)
                    got[c] += 1
                    if c is a and got[a] == 1:
                        # an error proves life as well as a result does
                        c.send("<iq type='error' id='%s' from='%s' to='%s'><error "
                               "type='cancel'><service-unavailable xmlns='%s'/></error></iq>" % (
                                   ping_id, jid, DOMAIN, NS_STANZA_ERRORS))
                    elif c is a and got[a] == 2:
                        # a reply to the server's id addressed to another component
                        c.send("<iq type='result' id='%s' from='%s' to='%s'/>" % (
                            ping_id, jid, CB2))
                    else:
                        c.send("<iq type='result' id='%s' from='%s' to='%s'/>" % (
                            ping_id, jid, DOMAIN))
            self.assertGreaterEqual(got[a], 3, got)
            self.assertGreaterEqual(got[b], 3, got)
            self.assertEqual(len(ids), got[a] + got[b])
            status = srv.must("status").stdout
            self.assertIn("Component  : %s\n" % CB1, status)
            self.assertIn("Component  : %s\n" % CB2, status)
            # Our own pings still answered, while the server's keep coming.
            for c, jid in ((a, CB1), (b, CB2)):
                c.send("<iq type='get' id='own1' from='%s' to='%s'><ping xmlns='%s'/></iq>" % (
                    jid, DOMAIN, xt.NS_PING))
                while True:
                    raw, e = c.recv_stanza()
                    if e.attrib.get("id", "").startswith("xcomp-server-ping-"):
                        c.send("<iq type='result' id='%s' from='%s' to='%s'/>" % (
                            e.attrib["id"], jid, DOMAIN))
                        continue
                    self.assertEqual(e.attrib, {"type": "result", "id": "own1", "from": DOMAIN,
                                                "to": jid}, raw)
                    break
            self.assertNotIn("connection-timeout", srv.log_text())

    def test_keepalive_drops_dead_session(self):
        settings = [("keepalive", "1"), ("keepalive-timeout", "1"),
                    ("conflict-policy", "kick-new")]
        with self.server(settings=settings) as srv:
            a = srv.component("cb1", name="silent")  # never reads nor answers again
            t0 = time.monotonic()
            early = srv.connect(name="early")
            early.open_stream(CB1)
            early.handshake(srv.secrets["cb1"], expect_ok=False)
            early.expect_stream_error("conflict", "Component already connected")
            xt.wait_until(lambda: "Component  : %s\n" % CB1 not in srv.must("status").stdout,
                          seconds=xt.timeout(4.0), what="the silent cb1 dropped")
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 1.8)
            self.assertLess(elapsed, xt.timeout(3.0))
            srv.process.wait_for_log(r"cb1\.tptac9\.test \(\S+\): stream error "
                                     r"<connection-timeout/>: no reply to a keepalive ping "
                                     r"within 1 s")
            # the component comes back (kick-new refused it while the dead one stayed)
            srv.component("cb1", name="back").ping(DOMAIN, CB1)
            self.expect_server_ping(a, CB1)
            a.expect_stream_error("connection-timeout")

    def test_keepalive_reload(self):
        with self.server() as srv:
            a = srv.component("cb1", name="silent")
            srv.must("keepalive", "1")
            srv.must("keepalive-timeout", "1")
            srv.process.signal(signal.SIGHUP)
            srv.process.wait_for_log(r"state reloaded")
            t0 = time.monotonic()
            self.expect_server_ping(a, CB1, seconds=2.0)
            a.expect_stream_error("connection-timeout", seconds=2.0)
            self.assertLess(time.monotonic() - t0, xt.timeout(3.0))
            self.assertNotIn("Component  : %s\n" % CB1, srv.must("status").stdout)

    def test_split_writes(self):
        with self.server() as srv:
            a = srv.component("cb2")
            c = srv.connect()
            c.send_slowly(c.stream_header(CB1))
            c.expect_header()
            c.send_slowly("<handshake>%s</handshake>" % c.digest(c.stream_id, srv.secrets["cb1"]))
            self.assertEqual(c.recv_until("<handshake/>"), "<handshake/>")
            # Multi-byte UTF-8 split across writes, entities, a nested namespace.
            msg = ("<message from='%s' to='%s' id='split1'><body>caf\u00e9 \u2713 &amp; "
                   "&lt;ok&gt;</body><x xmlns='urn:example:x' k='v'/></message>" % (CB1, CB2))
            c.send_slowly(msg)
            raw, e = a.recv_stanza()
            self.assertEqual(xt.canon(e), xt.canon(xt.parse_stanza(msg)), raw)
            self.assertEqual(e.find(q(NS_COMPONENT, "body")).text, "caf\u00e9 \u2713 & <ok>")

    # -------------------------------------------------------- conflict policies

    def test_conflict_kick_new(self):
        with self.server(settings=[("conflict-policy", "kick-new")]) as srv:
            old = srv.component("cb1", name="old")
            new = srv.connect(name="new")
            new.open_stream(CB1)
            new.handshake(srv.secrets["cb1"], expect_ok=False)
            new.expect_stream_error("conflict", "Component already connected")
            old.ping(DOMAIN, CB1)
            b = srv.component("cb2")
            b.send("<message from='%s' to='%s' id='k1'><body>hi</body></message>" % (CB2, CB1))
            raw, e = old.recv_stanza()
            self.assertEqual(e.get("id"), "k1")
            status = srv.must("status").stdout
            self.assertEqual(status.count("Component  : %s\n" % CB1), 1, status)

    def test_conflict_kick_old(self):
        with self.server(settings=[("conflict-policy", "kick-old")]) as srv:
            old = srv.component("cb1", name="old")
            new = srv.component("cb1", name="new")
            old.expect_stream_error("conflict")
            new.ping(DOMAIN, CB1)
            b = srv.component("cb2")
            b.send("<message from='%s' to='%s' id='k2'><body>hi</body></message>" % (CB2, CB1))
            raw, e = new.recv_stanza()
            self.assertEqual(e.get("id"), "k2")
            status = srv.must("status").stdout
            self.assertEqual(status.count("Component  : %s\n" % CB1), 1, status)
            self.assertIn("Address    : %s\n" % new.local_address(), status)

    def test_conflict_allow(self):
        with self.server(settings=[("conflict-policy", "allow")]) as srv:
            a1 = srv.component("cb1", name="a1")
            a2 = srv.component("cb1", name="a2")
            a1.ping(DOMAIN, CB1, "p1")
            a2.ping(DOMAIN, CB1, "p2")
            status = srv.must("status").stdout
            self.assertEqual(status.count("Component  : %s\n" % CB1), 2, status)
            b = srv.component("cb2")
            for i in range(4):
                b.send("<message from='%s' to='%s' id='m%d'><body>%d</body></message>" % (
                    CB2, CB1, i, i))
            got1 = [a1.recv_stanza()[1].get("id") for _ in range(2)]
            got2 = [a2.recv_stanza()[1].get("id") for _ in range(2)]
            self.assertIn(got1, (["m0", "m2"], ["m1", "m3"]), (got1, got2))
            self.assertIn(got2, (["m0", "m2"], ["m1", "m3"]), (got1, got2))
            self.assertNotEqual(got1, got2)
            a1.expect_nothing(0.1)
            a2.expect_nothing(0.1)

    # ------------------------------------------------------------- routing

    def test_routing(self):
        with self.server() as srv:
            a = srv.component("cb1")
            b = srv.component("cb2")
            # message a -> b, content with escapes, non-ASCII and foreign namespaces
            msg = ("<message from='alice@%s/desk' to='bob@%s/phone' id='r1' type='chat' "
                   "xml:lang='nl'><body>Hallo &amp; &lt;welkom&gt; &quot;x&quot; "
                   "\u20ac</body><thread>t1</thread><x xmlns='urn:example:meta' a='1' "
                   "b='&apos;2&apos;'><y>deep</y><z/></x></message>" % (CB1, CB2))
            a.send(msg)
            raw, e = b.recv_stanza()
            self.assertEqual(xt.canon(e), xt.canon(xt.parse_stanza(msg)), raw)
            # iq b -> a and the result back
            iq = ("<iq type='get' id='q1' from='%s' to='%s'><query xmlns='jabber:iq:version'/>"
                  "</iq>" % (CB2, CB1))
            b.send(iq)
            raw, e = a.recv_stanza()
            self.assertEqual(xt.canon(e), xt.canon(xt.parse_stanza(iq)), raw)
            res = ("<iq type='result' id='q1' from='%s' to='%s'><query xmlns='jabber:iq:version'>"
                   "<name>cb1</name><version>1.0</version></query></iq>" % (CB1, CB2))
            a.send(res)
            raw, e = b.recv_stanza()
            self.assertEqual(xt.canon(e), xt.canon(xt.parse_stanza(res)), raw)
            # presence too, and nothing else arrives anywhere
            pres = "<presence from='%s' to='%s'/>" % (CB1, CB2)
            a.send(pres)
            raw, e = b.recv_stanza()
            self.assertEqual(xt.canon(e), xt.canon(xt.parse_stanza(pres)), raw)
            a.expect_nothing(0.1)
            b.expect_nothing(0.1)

    def test_routing_mixed_content(self):
        # Text on both sides of a child element, as XHTML-IM (XEP-0071) bodies have.
        with self.server() as srv:
            a = srv.component("cb1")
            b = srv.component("cb2")
            msg = ("<message from='%s' to='%s' id='x1'><body>Hello world!</body>"
                   "<html xmlns='http://jabber.org/protocol/xhtml-im'>"
                   "<body xmlns='http://www.w3.org/1999/xhtml'><p>Hello <b>world</b>!</p>"
                   "</body></html></message>" % (CB1, CB2))
            a.send(msg)
            raw, e = b.recv_stanza()
            self.assertEqual(xt.canon(e), xt.canon(xt.parse_stanza(msg)), raw)

    def test_routing_header_prefix(self):
        # A prefix declared on the sender's stream header is not declared on
        # the receiver's: the stanza must arrive with its namespaces intact.
        with self.server() as srv:
            b = srv.component("cb2")
            a = srv.connect(name="prefixed")
            a.open_stream(CB1, extra=" xmlns:ex='urn:example:prefixed'")
            a.handshake(srv.secrets["cb1"])
            a.send("<message from='%s' to='%s' id='hp'><ex:data ex:k='v'>x</ex:data></message>"
                   % (CB1, CB2))
            raw, e = b.recv_stanza()
            want = ("<message from='%s' to='%s' id='hp'><data xmlns='urn:example:prefixed' "
                    "xmlns:ex='urn:example:prefixed' ex:k='v'>x</data></message>" % (CB1, CB2))
            self.assertEqual(xt.canon(e), xt.canon(xt.parse_stanza(want)), raw)

    def test_service_unavailable(self):
        with self.server(bridges=("cb1", "cb2", "cb3")) as srv:
            a = srv.component("cb1")
            # configured but offline
            a.send("<message from='%s' to='user@%s/r' id='s1'><body>x</body></message>" % (
                CB1, CB2))
            expect_service_unavailable(self, a, "message", "user@%s/r" % CB2, CB1, "s1")
            # unknown domain, iq
            a.send("<iq type='set' id='s2' from='%s' to='nowhere.example'><q xmlns='urn:x'/></iq>"
                   % CB1)
            expect_service_unavailable(self, a, "iq", "nowhere.example", CB1, "s2")
            # to the server's domain, not a ping
            a.send("<message from='%s' to='%s' id='s3'><body>x</body></message>" % (CB1, DOMAIN))
            expect_service_unavailable(self, a, "message", DOMAIN, CB1, "s3")
            # never in reply to an error
            a.send("<message from='%s' to='%s' type='error' id='s4'><error type='cancel'>"
                   "<item-not-found xmlns='%s'/></error></message>" % (CB1, CB2, NS_STANZA_ERRORS))
            a.send("<iq from='%s' to='nowhere.example' type='error' id='s5'/>" % CB1)
            a.expect_nothing(0.3)
            a.ping(DOMAIN, CB1)
            # once cb2 is online, the same message reaches it
            b = srv.component("cb2")
            a.send("<message from='%s' to='user@%s/r' id='s6'><body>x</body></message>" % (
                CB1, CB2))
            raw, e = b.recv_stanza()
            self.assertEqual(e.get("id"), "s6")
            # and after it leaves, bounces again
            b.send("</stream:stream>")
            b.recv_until("</stream:stream>")
            b.expect_closed()
            a.ping(DOMAIN, CB1, "sync")  # the server has seen cb2 leave
            a.send("<message from='%s' to='%s' id='s7'/>" % (CB1, CB2))
            expect_service_unavailable(self, a, "message", CB2, CB1, "s7")

    def test_ping(self):
        with self.server() as srv:
            a = srv.component("cb1")
            a.send("<iq type='get' id='ping-&amp;-1' from='%s' to='%s'><ping xmlns='%s'/></iq>"
                   % (CB1, DOMAIN, NS_PING))
            raw, e = a.recv_stanza()
            self.assertEqual(e.tag, q(NS_COMPONENT, "iq"), raw)
            self.assertEqual(e.attrib, {"type": "result", "id": "ping-&-1", "from": DOMAIN,
                                        "to": CB1}, raw)
            self.assertEqual(len(e), 0, raw)
            a.ping(DOMAIN, "someone@%s/x" % CB1, "p2")
            # a result to the server is swallowed
            a.send("<iq type='result' id='r' from='%s' to='%s'/>" % (CB1, DOMAIN))
            a.expect_nothing(0.1)

    # ----------------------------------------------------------- stream errors

    def test_oversize_stanza(self):
        def message(size, stanza_id):
            head = "<message from='%s' to='%s' id='%s'><body>" % (CB1, CB2, stanza_id)
            tail = "</body></message>"
            return head + "a" * (size - len(head) - len(tail)) + tail

        with self.server(settings=[("max-stanza", "4096")]) as srv:
            a = srv.component("cb1")
            b = srv.component("cb2")
            a.send(message(4096, "o1"))  # the limit itself is allowed
            raw, e = b.recv_stanza()
            self.assertEqual((len(raw), e.get("id")), (4096, "o1"))
            a.send(message(4097, "o2"))
            a.expect_stream_error("policy-violation")
            a = srv.component("cb1", name="cb1-5000")
            a.send(message(5000, "o3"))
            a.expect_stream_error("policy-violation")
            b.expect_nothing(0.1)
            b.ping(DOMAIN, CB2)
            srv.component("cb1", name="cb1-again").ping(DOMAIN, CB1)

    def test_parser_limits(self):
        """Each limit of the XML parser ends the stream with policy-violation and
        a text that names it, before and after authentication; the server
        goes on serving."""
        stanza_cases = [
            ("<message from='%s' to='%s'>%s" % (CB1, CB2, "<a>" * 40),
             "elements nested deeper than 32 levels"),
            ("<message%s/>" % "".join(" a%d='v'" % i for i in range(65)),
             "more than 64 attributes on one element"),
            ("<message%s/>" % "".join(" xmlns:p%d='urn:p%d'" % (i, i) for i in range(17)),
             "more than 16 namespace declarations on one element"),
            ("<message from='%s' to='%s' id='%s'/>" % (CB1, CB2, "i" * 8193),
             "value of attribute id longer than 8192 bytes"),
            ("<message xmlns:p='urn:%s'/>" % ("u" * 8189),
             "namespace name longer than 8192 bytes"),
        ]
        with self.server() as srv:
            b = srv.component("cb2")
            for i, (payload, text) in enumerate(stanza_cases):
                a = srv.component("cb1", name="limit%d" % i)
                a.send(payload)
                a.expect_stream_error("policy-violation", text)
            c = srv.connect(name="big-header")
            c.send(c.stream_header(CB1, extra=" x='%s'" % ("h" * 4096)))
            c.expect_header()
            c.expect_stream_error("policy-violation", "stream header larger than 4096 bytes")
            b.expect_nothing(0.1)
            b.ping(DOMAIN, CB2)
            srv.component("cb1", name="cb1-again").ping(DOMAIN, CB1)
            log = srv.log_text()
            for _, text in stanza_cases:
                self.assertIn("stream error <policy-violation/>: %s" % text, log)

    def test_doctype_billion_laughs(self):
        with self.server() as srv:
            ents = ['<!ENTITY lol "lol">'] + [
                '<!ENTITY lol%d "%s">' % (i, ("&lol%s;" % (i - 1 if i > 1 else "")) * 10)
                for i in range(1, 10)]
            c = srv.connect()
            c.send("<?xml version='1.0'?><!DOCTYPE stream:stream [%s]>" % "".join(ents)
                   + c.stream_header(CB1, decl=False).replace("'>", "'>&lol9;"))
            c.expect_header()
            c.expect_stream_error("restricted-xml")
            # an entity declared after the header is impossible; a DOCTYPE
            # after authentication is not-well-formed or restricted, never accepted
            a = srv.component("cb1")
            a.send("<!DOCTYPE x [<!ENTITY a 'b'>]>")
            got = a.recv_until("</stream:stream>")
            self.assertRegex(got, r"<(restricted-xml|not-well-formed) ")
            a.expect_closed()
            # the server is still healthy
            srv.component("cb2").ping(DOMAIN, CB2)
            srv.component("cb1").ping(DOMAIN, CB1)

    def test_restricted_xml(self):
        with self.server() as srv:
            for name, junk in (("comment", "<!-- hello -->"),
                               ("pi", "<?foo bar?>"),
                               ("comment-in-stanza", "<message from='%s' to='%s'><!-- x -->"
                                "</message>" % (CB1, CB2))):
                a = srv.component("cb1", name=name)
                a.send(junk)
                a.expect_stream_error("restricted-xml")
            # before the header, too
            c = srv.connect(name="comment-first")
            c.send("<!-- hi -->" + c.stream_header(CB1, decl=False))
            c.expect_header()
            c.expect_stream_error("restricted-xml")

    def test_bad_xml(self):
        with self.server() as srv:
            a = srv.component("cb1", name="mismatch")
            a.send("<message from='%s' to='%s'><body>x</message>" % (CB1, CB2))
            a.expect_stream_error("not-well-formed")
            a = srv.component("cb1", name="garbage")
            a.send("<<>>")
            a.expect_stream_error("not-well-formed")
            c = srv.connect(name="client-ns")
            c.send(c.stream_header(CB1, ns="jabber:client"))
            c.expect_header()
            c.expect_stream_error("invalid-namespace")
            c = srv.connect(name="stream-ns")
            c.send(c.stream_header(CB1, stream_ns="urn:not:streams"))
            c.expect_header()
            c.expect_stream_error("invalid-namespace")
            srv.component("cb1").ping(DOMAIN, CB1)

    def test_invalid_from(self):
        with self.server() as srv:
            b = srv.component("cb2")
            a = srv.component("cb1", name="foreign-from")
            a.send("<message from='%s' to='%s' id='f1'><body>x</body></message>" % (CB2, CB2))
            a.expect_stream_error("invalid-from")
            b.expect_nothing(0.1)
            a = srv.component("cb1", name="domain-from")
            a.send("<message from='%s' to='%s'/>" % (DOMAIN, CB2))
            a.expect_stream_error("invalid-from")
            a = srv.component("cb1", name="no-to")
            a.send("<message from='%s'><body>x</body></message>" % CB1)
            a.expect_stream_error("improper-addressing")
            a = srv.component("cb1", name="no-from")
            a.send("<message to='%s'><body>x</body></message>" % CB2)
            a.expect_stream_error("improper-addressing")
            # users at the component's domain are fine
            a = srv.component("cb1", name="user-from")
            a.send("<message from='u@%s/r' to='%s' id='f2'/>" % (CB1, CB2))
            self.assertEqual(b.recv_stanza()[1].get("id"), "f2")
            b.ping(DOMAIN, CB2)

    def test_client_close(self):
        with self.server() as srv:
            c = srv.connect()
            c.open_stream(CB1)
            c.send("</stream:stream>")
            self.assertEqual(c.recv_until("</stream:stream>"), "</stream:stream>")
            self.assertEqual(c.expect_closed(), "")

    # ------------------------------------------------------- process control

    def test_sigterm(self):
        with xt.Workdir("sigterm") as wd:
            srv = xt.Server(wd.path)
            with srv:
                a = srv.component("cb1")
                b = srv.component("cb2")
                h = srv.connect(name="in-handshake")
                h.open_stream(CB1)
                n = srv.connect(name="no-header")
                a.ping(DOMAIN, CB1)  # all four accepted by now
                b.ping(DOMAIN, CB2)
                t0 = time.monotonic()
                srv.process.signal(signal.SIGTERM)
                for c in (a, b, h):
                    c.expect_stream_error("system-shutdown")
                n.expect_header()
                n.expect_stream_error("system-shutdown")
                self.assertEqual(srv.process.wait(), 0, srv.log_text())
                self.assertLess(time.monotonic() - t0, xt.timeout(1.5))
                self.assertFalse(os.path.exists(os.path.join(srv.dir, "listening")))
                self.assertFalse(os.path.exists(os.path.join(srv.dir, "control.sock")))
                r = srv.cmd("status")
                self.assertEqual(r.returncode, 1)
                self.assertIn("not running", r.stderr)

    @unittest.skipIf(xt.VALGRIND, "valgrind keeps descriptors of its own")
    def test_out_of_descriptors_does_not_spin(self):
        """accept fails with EMFILE while connections wait: the listener rests
        instead of spinning, the log says so once, and it serves again once
        descriptors are free."""
        import resource

        def cpu_seconds(pid):
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        with xt.Workdir("emfile") as wd:
            srv = xt.Server(wd.path)
            with srv:
                pid = srv.process.pid
                srv.component("cb1").ping(DOMAIN, CB1)
                used = len(os.listdir("/proc/%d/fd" % pid))
                soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
                resource.prlimit(pid, resource.RLIMIT_NOFILE, (used + 2, hard))
                waiting = [srv.connect(name="fill%d" % i) for i in range(6)]
                xt.wait_until(lambda: "Too many open files" in srv.log_text(), 5,
                              "accept failing with EMFILE")
                t0 = cpu_seconds(pid)
                time.sleep(xt.timeout(1.5))
                self.assertLess(cpu_seconds(pid) - t0, 0.5, "the server spins on EMFILE")
                self.assertEqual(srv.log_text().count("Too many open files"), 1,
                                 srv.log_text())
                resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
                for c in waiting:
                    c.open_stream(CB2)
                srv.component("cb2").ping(DOMAIN, CB2)

    def test_status(self):
        with self.server() as srv:
            r = srv.cmd("status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("Component", r.stdout)
            a = srv.component("cb1")
            h = srv.connect(name="in-handshake")
            h.open_stream(CB2)
            r = srv.cmd("status")
            self.assertEqual(r.returncode, 0, r.stderr)
            host, port = srv.address
            self.assertRegex(
                r.stdout,
                r"\ADomain     : tptac9\.test\nPolicy     : kick-new\n"
                r"Listening  : %s:%d\n"
                r"\*\*\*\nComponent  : cb1\.tptac9\.test\nAddress    : %s\n"
                r"Since      : \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n\Z" % (
                    re.escape(host), port, re.escape(a.local_address())))
            self.assertNotIn(CB2, r.stdout)

    def test_status_of_a_stopped_server(self):
        """A SIGSTOPped server: status says so within its 5 s, not after a long wait."""
        with self.server() as srv:
            srv.process.signal(signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                r = srv.cmd("status", seconds=20)
                took = time.monotonic() - t0
            finally:
                srv.process.signal(signal.SIGCONT)
            self.assertEqual((r.returncode, r.stdout), (2, ""))
            self.assertIn("did not answer within 5 s (is the process stopped, or stuck?)",
                          r.stderr)
            self.assertLess(took, 10)
            self.assertEqual(srv.cmd("status").returncode, 0)

    def test_sighup_reload(self):
        with self.server() as srv:
            a = srv.component("cb1")
            out = srv.must("callbridge", "add", "cb3").stdout
            secret3 = re.search(r"^Secret\s*: (\S+)$", out, re.M).group(1)
            srv.must("callbridge", "remove", "cb2")
            srv.must("conflict-policy", "kick-old")
            srv.process.signal(signal.SIGHUP)
            srv.process.wait_for_log(r"state reloaded")
            c = srv.connect(name="cb3")
            c.open_stream("cb3." + DOMAIN)
            c.handshake(secret3)
            c.ping(DOMAIN, "cb3." + DOMAIN)
            c = srv.connect(name="cb2-removed")
            c.send(c.stream_header(CB2))
            c.expect_header()
            c.expect_stream_error("host-unknown")
            srv.component("cb1", name="cb1-new").ping(DOMAIN, CB1)
            a.expect_stream_error("conflict")  # kick-old now
            self.assertEqual(srv.process.poll(), None)

    def test_run_twice(self):
        # A second "run" on a state directory in use must not take over its
        # control socket and listening file.
        with self.server() as srv:
            a = srv.component("cb1")
            listening = os.path.join(srv.dir, "listening")
            with open(listening) as f:
                before = f.read()
            second = xt.Process([xt.program("xcomp-server"), "-d", srv.dir, "run"], srv.workdir,
                                "second", valgrind=xt.VALGRIND)
            with second:
                try:
                    rc = second.wait(1.5)
                except AssertionError:
                    rc = None
            self.assertIsNotNone(rc, "the second server kept running: " + second.log_text())
            self.assertNotEqual(rc, 0)
            self.assertIn("running", second.log_text())
            with open(listening) as f:
                self.assertEqual(f.read(), before)
            r = srv.cmd("status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Address    : %s\n" % a.local_address(), r.stdout)

    # ------------------------------------------------------- state commands

    def test_state_commands(self):
        with xt.Workdir("state") as wd:
            d = wd.join("state")

            def run(*args, input=None):
                return xt.run_command([xt.program("xcomp-server"), "-d", d] + list(args),
                                      wd.path, input=input, valgrind=xt.VALGRIND)

            r = run("callbridge", "list")
            self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
            self.assertEqual(run("domain", DOMAIN).returncode, 0)
            self.assertEqual(run("domain").stdout, DOMAIN + "\n")
            r = run("callbridge", "add", "cb1")
            self.assertEqual(r.returncode, 0, r.stderr)
            m = re.fullmatch(r"Callbridge : cb1\nDomain     : tptac9\.test\n"
                             r"Secret     : ([A-Za-z0-9]{16,})\n", r.stdout)
            self.assertIsNotNone(m, r.stdout)
            secret1 = m.group(1)
            r = run("callbridge", "add", "cb1")
            self.assertEqual((r.returncode, r.stdout), (1, ""))
            self.assertIn("exists already", r.stderr)
            r = run("callbridge", "add-secret", "cb2", input="s3cr3t-Value!\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("s3cr3t-Value!", r.stdout + r.stderr)
            r = run("callbridge", "list")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "***\nCallbridge : cb1\nDomain     : tptac9.test\n"
                             "Secret     : %s\n***\nCallbridge : cb2\nDomain     : tptac9.test\n"
                             "Secret     : s3cr3t-Value!\n" % secret1)
            secrets = os.path.join(d, "callbridges")
            self.assertEqual(stat.S_IMODE(os.stat(secrets).st_mode), 0o600)
            # bad input
            for args, inp in ((("callbridge", "add-secret", "cb3"), ""),
                              (("callbridge", "add-secret", "cb3"), "has space\n"),
                              (("callbridge", "add", "bad name"), None),
                              (("callbridge", "add", "bad.name"), None),
                              (("callbridge", "remove", "cb9"), None),
                              (("callbridge", "frob", "cb1"), None),
                              (("listen", "nonsense"), None),
                              (("listen", "localhost:5223"), None),
                              (("conflict-policy", "kick-everyone"), None),
                              (("max-stanza", "10"), None),
                              (("handshake-timeout", "0"), None),
                              (("domain", "not a domain"), None),
                              (("frobnicate",), None)):
                r = run(*args, input=inp)
                self.assertEqual(r.returncode, 1, (args, r.stdout, r.stderr))
                self.assertRegex(r.stderr, r"^xcomp-server: \S", args)
            self.assertIn("unknown command", run("frobnicate").stderr)
            self.assertEqual(run("callbridge", "list").stdout.count("***"), 2)
            # settings round-trip
            self.assertEqual(run("conflict-policy", "allow").returncode, 0)
            self.assertEqual(run("conflict-policy").stdout, "allow\n")
            self.assertEqual(run("listen", "127.0.0.2:5223").returncode, 0)
            self.assertEqual(run("listen", "127.0.0.2:5223").returncode, 1)
            self.assertEqual(run("listen").stdout, "127.0.0.2:5223\n")
            self.assertEqual(run("max-stanza", "4096").returncode, 0)
            self.assertEqual(run("max-stanza").stdout, "4096\n")
            # remove
            r = run("callbridge", "remove", "cb1")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run("callbridge", "list")
            self.assertEqual(r.stdout, "***\nCallbridge : cb2\nDomain     : tptac9.test\n"
                             "Secret     : s3cr3t-Value!\n")
            self.assertEqual(run("callbridge", "remove", "cb1").returncode, 1)
            # add-secret replaces
            r = run("callbridge", "add-secret", "cb2", input="n3w-s3cret\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Secret     : n3w-s3cret\n", run("callbridge", "list").stdout)
            # usage
            r = xt.run_command([xt.program("xcomp-server"), "status"], wd.path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("usage", r.stderr)
            # a secrets file others can read is refused, naming the fix
            os.chmod(secrets, 0o644)
            for args in (("callbridge", "list"), ("domain", "x.test"), ("run",)):
                r = run(*args)
                self.assertNotEqual(r.returncode, 0, args)
                self.assertIn("chmod 600", r.stderr, args)
                self.assertNotIn("n3w-s3cret", r.stdout + r.stderr)
            self.assertEqual(run("domain").returncode, 1)
            os.chmod(secrets, 0o600)
            self.assertEqual(run("domain").stdout, DOMAIN + "\n")

    def test_cluster_state_commands(self):
        with xt.Workdir("cluster-state") as wd:
            d = wd.join("state")
            ca = pki.PKI(wd.path)
            node = ca.leaf("node", cn=DOMAIN, ips=["127.0.0.1"])

            def run(*args):
                return xt.run_command([xt.program("xcomp-server"), "-d", d] + list(args),
                                      wd.path, valgrind=xt.VALGRIND)

            def refused(args, *parts):
                r = run(*args)
                self.assertEqual((r.returncode, r.stdout), (1, ""), (args, r.stderr))
                self.assertRegex(r.stderr, r"^xcomp-server: \S", args)
                for part in parts:
                    self.assertIn(part, r.stderr, args)
                return r

            r = run("cluster")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "Enabled            : no\nListen             : (not set)\n"
                             "Trust bundle       : (not set)\nKeepalive          : 200 ms\n"
                             "Election timeout   : 1000 ms\n")
            # Enabling names each missing piece and the command that sets it.
            refused(("cluster", "enable"), "cannot enable the cluster",
                    "xcomp-server -d %s certs KEY CERT" % d,
                    "xcomp-server -d %s cluster trust BUNDLE" % d,
                    "xcomp-server -d %s cluster listen IP:PORT" % d)
            # The peers dial the listen address: a specific IP.
            for addr in ("0.0.0.0:5400", "[::]:5400"):
                refused(("cluster", "listen", addr), "means every address",
                        "the other members dial this address")
            refused(("cluster", "listen", "node1.tptac9.test:5400"), "is not an IP address",
                    "the other members dial this address")
            refused(("cluster", "listen", "127.0.0.1"), "expected IP:PORT")
            self.assertEqual(run("cluster", "listen").stdout, "(not set)\n")
            self.assertEqual(run("cluster", "listen", "127.0.0.1:5400").returncode, 0)
            self.assertEqual(run("cluster", "listen").stdout, "127.0.0.1:5400\n")
            # The trust bundle: PEM certificates, stored absolute, a leaf warned about.
            refused(("cluster", "trust", node.key), "cluster trust bundle")
            refused(("cluster", "trust", wd.join("missing.pem")), "No such file or directory")
            r = run("cluster", "trust", node.cert)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("warning: cluster trust bundle %s: not a CA certificate" % node.cert,
                          r.stderr)
            r = run("cluster", "trust", os.path.relpath(ca.bundle))
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.assertEqual(run("cluster", "trust").stdout, ca.bundle + "\n")
            # Timing: the election timeout more than twice the keepalive.
            self.assertEqual(run("cluster", "keepalive").stdout, "200\n")
            refused(("cluster", "keepalive", "600"), "more than twice",
                    "raise cluster election-timeout first")
            refused(("cluster", "keepalive", "5"), "from 20 to 10000 milliseconds")
            refused(("cluster", "election-timeout", "400"), "lower cluster keepalive first")
            self.assertEqual(run("cluster", "election-timeout", "3000").returncode, 0)
            self.assertEqual(run("cluster", "keepalive", "600").returncode, 0)
            self.assertEqual(run("cluster", "keepalive").stdout, "600\n")
            self.assertEqual(run("cluster", "election-timeout").stdout, "3000\n")
            # Now only certs are missing.
            r = refused(("cluster", "enable"), "xcomp-server -d %s certs KEY CERT" % d)
            self.assertNotIn("cluster trust BUNDLE", r.stderr)
            self.assertNotIn("cluster listen IP:PORT", r.stderr)
            self.assertEqual(run("certs", node.key, node.cert, ca.bundle).returncode, 0)
            r = run("cluster", "enable")
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
            self.assertIn("Enabled            : yes\n", run("cluster").stdout)
            refused(("cluster", "trust", "none"), "cluster disable")
            refused(("certs", "none"), "cluster disable")
            with open(os.path.join(d, "xcomp-server.conf")) as f:
                conf = f.read()
            for line in ("cluster-enabled = yes", "cluster-listen = 127.0.0.1:5400",
                         "cluster-trust = " + ca.bundle, "cluster-keepalive = 600",
                         "cluster-election-timeout = 3000"):
                self.assertIn(line + "\n", conf)
            self.assertEqual(run("cluster", "disable").returncode, 0)
            refused(("cluster", "frob"), "unknown cluster command \"frob\"", "listen, trust, "
                    "enable, disable, keepalive, election-timeout", "initialize, join, remove, "
                    "status")
            # The control commands need the running server: exit 3, naming "run".
            for args in (("cluster", "status"), ("cluster", "join", "127.0.0.2:5400"),
                         ("cluster", "initialize"), ("cluster", "remove", "127.0.0.2:5400")):
                r = run(*args)
                self.assertEqual((r.returncode, r.stdout), (3, ""), (args, r.stderr))
                self.assertIn("not running for %s" % d, r.stderr)
                self.assertIn("xcomp-server -d %s run" % d, r.stderr)
            refused(("cluster", "join"), "usage: cluster join HOST:PORT")
            # "status" keeps its exit code 1 when the server does not run.
            r = run("status")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("not running for %s" % d, r.stderr)

    def test_reset(self):
        with xt.Workdir("reset") as wd:
            d = wd.join("state")

            def run(*args):
                return xt.run_command([xt.program("xcomp-server"), "-d", d] + list(args),
                                      wd.path, valgrind=xt.VALGRIND)

            self.assertEqual(run("domain", DOMAIN).returncode, 0)
            self.assertEqual(run("callbridge", "add", "cb1").returncode, 0)
            # A member of a three-node cluster, as the server writes DIR/cluster.
            with open(os.path.join(d, "cluster"), "w") as f:
                f.write("id = 5eed5eed\nepoch = 3\nterm = 7\nvoted-for = 0\n"
                        "member = 1a2b3c4d 127.0.0.1:5400\n"
                        "member = 0badcafe 127.0.0.2:5400\n"
                        "member = 5eed5eed 127.0.0.3:5400\n")
            r = run("reset")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("warning: this node (127.0.0.3:5400, id 5eed5eed) is a member of a "
                          "cluster with 2 other members", r.stderr)
            self.assertIn("on another member", r.stderr)
            self.assertEqual(r.stdout, "xcomp-server -d <other node's DIR> cluster remove "
                             "127.0.0.3:5400\n")
            self.assertEqual(sorted(os.listdir(d)), [])
            self.assertEqual(run("domain").stdout, "(not set)\n")
            self.assertEqual(run("callbridge", "list").stdout, "")
            # A one-node cluster, or none: nobody to warn about.
            self.assertEqual(run("domain", DOMAIN).returncode, 0)
            with open(os.path.join(d, "cluster"), "w") as f:
                f.write("id = 1a2b3c4d\nmember = 1a2b3c4d 127.0.0.1:5400\n")
            r = run("reset")
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
            self.assertEqual(os.listdir(d), [])
            r = run("reset")
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
            r = run("reset", "now")
            self.assertEqual(r.returncode, 1)
            self.assertIn("usage", r.stderr)

    def test_reset_refused_while_running(self):
        with self.server() as srv:
            r = srv.cmd("reset")
            self.assertEqual((r.returncode, r.stdout), (1, ""), r.stderr)
            self.assertIn("running: stop it first", r.stderr)
            self.assertTrue(os.path.exists(os.path.join(srv.dir, "xcomp-server.conf")))
            self.assertTrue(os.path.exists(os.path.join(srv.dir, "callbridges")))
            srv.component("cb1").ping(DOMAIN, CB1)
            self.assertEqual(srv.stop(), 0)
            r = srv.cmd("reset")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(srv.dir, "xcomp-server.conf")))

    def test_cluster_control_client(self):
        # The CLI's side of the control protocol, against a scripted server.
        with xt.Workdir("control") as wd:
            d = wd.join("state")
            os.mkdir(d, 0o700)

            def run(*args):
                return xt.run_command([xt.program("xcomp-server"), "-d", d] + list(args),
                                      wd.path, valgrind=xt.VALGRIND)

            status = ("State: NO QUORUM\nList of peers\n127.0.0.1:5400\n"
                      "127.0.0.2:5400 (unreachable)\n")
            answers = {
                "cluster status": "1\n" + status,
                "cluster join 127.0.0.1:5400":
                    "0\njoined the cluster at 127.0.0.1:5400: leader 127.0.0.1:5400, "
                    "3 members\n",
                "cluster join 127.0.0.9:5400":
                    "1\ncannot join: 127.0.0.9:5400 is unreachable (Connection refused)\n",
                "cluster remove 0badcafe": "0\nremoved 127.0.0.2:5400 (id 0badcafe): 2 members\n",
                "cluster initialize": "garbage without a status line",
                "cluster reload": "0\ncluster settings reloaded\n",
            }
            with FakeControl(d, answers) as fake:
                r = run("cluster", "status")
                self.assertEqual((r.returncode, r.stdout, r.stderr), (1, status, ""))
                r = run("cluster", "join", "127.0.0.1:5400")
                self.assertEqual((r.returncode, r.stderr), (0, ""))
                self.assertEqual(r.stdout, "joined the cluster at 127.0.0.1:5400: leader "
                                 "127.0.0.1:5400, 3 members\n")
                r = run("cluster", "join", "127.0.0.9:5400")
                self.assertEqual((r.returncode, r.stdout), (1, ""))
                self.assertEqual(r.stderr, "cannot join: 127.0.0.9:5400 is unreachable "
                                 "(Connection refused)\n")
                r = run("cluster", "remove", "0badcafe")
                self.assertEqual((r.returncode, r.stderr), (0, ""))
                r = run("cluster", "initialize")
                self.assertEqual((r.returncode, r.stdout), (2, ""))
                self.assertIn("gave no status line", r.stderr)
                # A setting changed while the server runs: it reloads, and says so.
                r = run("cluster", "keepalive", "300")
                self.assertEqual((r.returncode, r.stdout, r.stderr),
                                 (0, "cluster settings reloaded\n", ""))
                # Reading a setting changes nothing: no reload.
                r = run("cluster", "keepalive")
                self.assertEqual((r.returncode, r.stdout), (0, "300\n"))
                r = run("cluster", "listen", "0.0.0.0:5400")
                self.assertEqual(r.returncode, 1)
                r = run("reset")
                self.assertEqual(r.returncode, 1)
                self.assertIn("stop it first", r.stderr)
                self.assertEqual(fake.requests, [
                    "cluster status", "cluster join 127.0.0.1:5400",
                    "cluster join 127.0.0.9:5400", "cluster remove 0badcafe",
                    "cluster initialize", "cluster reload"])
            # Stopped: the setting is saved and no reload is attempted.
            r = run("cluster", "keepalive", "250")
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_run_unconfigured(self):
        with xt.Workdir("unconfigured") as wd:
            d = wd.join("state")
            prog = xt.program("xcomp-server")
            r = xt.run_command([prog, "-d", d, "run"], wd.path, valgrind=xt.VALGRIND)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("xcomp-server -d %s domain" % d, r.stderr)
            xt.run_command([prog, "-d", d, "domain", DOMAIN], wd.path)
            r = xt.run_command([prog, "-d", d, "run"], wd.path, valgrind=xt.VALGRIND)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("xcomp-server -d %s listen" % d, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "listening")))
            # a port in use is an error at start, not a silent non-listener
            with xt.server("busy") as srv:
                host, port = srv.address
                xt.run_command([prog, "-d", d, "listen", "%s:%d" % (host, port)], wd.path)
                r = xt.run_command([prog, "-d", d, "run"], wd.path, valgrind=xt.VALGRIND)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("%s:%d" % (host, port), r.stderr)
                srv.component("cb1").ping(DOMAIN, CB1)


# ------------------------------------------------------------------ driver

if __name__ == "__main__":
    sys.exit(xt.main(ServerTest, sys.argv[1:], ("xcomp-server",)))
