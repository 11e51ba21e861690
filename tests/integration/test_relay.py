#!/usr/bin/env python3
"""Integration tests of xcompd's relay: a local component (the scripted raw
client) connects to the agent as if it were an XMPP server; its stanzas go
through a real xcomp-server node to a second component and back, survive
failover, queue while no node is up, and bounce when the queue is full.

    python3 tests/integration/test_relay.py [NAME-SUBSTRING...]
"""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import DOMAIN, RELAY_SECRET, RelayLab  # noqa: E402
from xcomptest import NS_STANZA_ERRORS  # noqa: E402

CB1 = "cb1." + DOMAIN
CB2 = "cb2." + DOMAIN
SECRET = RELAY_SECRET


def message(i, frm=CB1, to=CB2):
    return "<message from='%s' to='%s' id='m%d'><body>number %d</body></message>" % (
        frm, to, i, i)


class RelayTest(RelayLab):

    def far(self, node):
        """The second component, cb2, on a node."""
        return node.component("cb2")

    # ------------------------------------------------------------ both ways

    def test_round_trip_unmodified(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent([n])
        a.wait_connected()
        st = a.wait_status(lambda s: s.get("relay") == "listening", 3, "relay listening")
        self.assertEqual(st["relay-queued"], "0")
        local = self.local()
        a.wait_status(lambda s: s.get("relay") == "connected", 3, "relay connected")
        r = subprocess.run([xt.program("xcomp"), "status", "-s", a.status_path],
                           capture_output=True, text=True, timeout=10)
        self.assertIn("Relay:           local component connected, 0 stanzas queued, 0 bounced",
                      r.stdout)
        far = self.far(n)
        odd = ("<message from='%s/x' to='%s' id='q1' type='chat'><body>h&amp;llo "
               "&lt;3</body><x xmlns='urn:example:a'><y a='1'/></x></message>" % (CB1, CB2))
        local.send(odd)
        raw, e = far.recv_stanza()
        self.assertEqual(e.attrib["id"], "q1")
        self.assertEqual(e.find("{jabber:component:accept}body").text, "h&llo <3")
        far.send("<iq type='get' id='i1' from='%s' to='%s'><query xmlns='urn:example:q'/></iq>"
                 % (CB2, CB1))
        raw, e = local.recv_stanza()
        self.assertEqual(raw, "<iq type='get' id='i1' from='%s' to='%s'><query "
                         "xmlns='urn:example:q'/></iq>" % (CB2, CB1))
        for i in range(50):
            local.send(message(i))
        got = [far.recv_stanza()[1].attrib["id"] for _ in range(50)]
        self.assertEqual(got, ["m%d" % i for i in range(50)])

    def test_pings(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent([n], keepalive=1, keepalive_timeout=1)
        a.wait_connected()
        local = self.local()
        far = self.far(n)
        # The agent's own keepalive pings and their replies stay out of the relay.
        local.expect_nothing(2.5)
        # A ping addressed to the component reaches it.
        far.send("<iq type='get' id='p9' from='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                 % (CB2, CB1))
        raw, e = local.recv_stanza()
        self.assertEqual(e.attrib["id"], "p9")

    def test_no_local_component(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent([n])
        a.wait_connected()
        far = self.far(n)
        far.send(message(1, frm=CB2, to=CB1))
        raw, e = far.recv_stanza()
        self.assertEqual(e.attrib["type"], "error")
        self.assertIn("{%s}service-unavailable" % NS_STANZA_ERRORS, raw_tags(e))
        far.send("<message from='%s' to='%s' type='error' id='e1'/>" % (CB2, CB1))
        far.expect_nothing(0.3)

    def test_second_local_session_conflict(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent([n])
        a.wait_connected()
        self.local()
        c = xt.Client(("127.0.0.1", self.relay_port), name="second")
        self.cleanups.append(c.close)
        c.send(c.stream_header(CB1))
        c.expect_header()
        c.expect_stream_error("conflict")

    def test_wrong_local_secret(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent([n])
        a.wait_connected()
        c = self.local(secret="wrong", expect_ok=False)
        c.expect_stream_error("not-authorized")

    def test_relay_secret_file(self):
        n = self.node("a", "127.0.0.1")
        path = self.wd.join("relay.secret")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"l0cal\n")
        os.close(fd)
        a = self.agent([n], relay_secret_file=path)
        a.wait_connected()
        self.local(secret="l0cal")

    def test_slixmpp_through_relay(self):
        # A real component library as the call bridge, unchanged, behind the agent.
        import test_interop_components as tic
        got = tic.LIBS.get("slixmpp")
        if isinstance(got, str):
            self.skipTest(got)
        argv, env = got
        n = self.node("a", "127.0.0.1")
        a = self.agent([n])
        a.wait_connected()
        a.wait_status(lambda s: s.get("relay") == "listening", 5, "relay listening")
        env = dict(env, XCOMP_SECRET=SECRET)
        slix = tic.Foreign(argv + ["127.0.0.1", str(self.relay_port), CB1, DOMAIN],
                           self.wd.path, "slix", env).start()
        self.cleanups.append(slix.stop)
        slix.expect("online")
        a.wait_status(lambda s: s.get("relay") == "connected", 3, "relay connected")
        far = self.far(n)
        far.send("<iq type='get' id='sp1' from='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                 % (CB2, CB1))
        raw, e = far.recv_stanza()
        self.assertEqual((e.attrib["type"], e.attrib["id"]), ("result", "sp1"), raw)
        slix.command("message %s hello through the relay" % CB2)
        raw, e = far.recv_stanza()
        self.assertEqual(e.find("{jabber:component:accept}body").text,
                         "hello through the relay")
        far.send("<message from='%s' to='%s'><body>and back</body></message>" % (CB2, CB1))
        slix.expect("message from %s: and back" % CB2)
        slix.command("ping " + DOMAIN)
        slix.expect("pong from " + DOMAIN)

    # ------------------------------------------------------------ outages

    def test_queue_while_down_then_in_order(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent([n], backoff_min=1, backoff_max=1)
        a.wait_connected()
        local = self.local()
        n.process.signal(signal.SIGKILL)
        n.process.wait()
        a.wait_status(lambda s: s["state"] != "connected", 3, "the drop")
        for i in range(20):
            local.send(message(i))
        st = a.wait_status(lambda s: s.get("relay-queued") == "20", 3, "20 queued")
        self.assertEqual(st["relay"], "connected")
        host, port = n.address
        n.must("listen", "none")
        n.must("listen", "%s:%d" % (host, port))
        os.unlink(os.path.join(n.dir, "listening"))  # left behind by SIGKILL
        n.addresses, n.clients = [], []
        n.start()
        far = self.far(n)
        a.wait_connected(seconds=6)
        got = [far.recv_stanza()[1].attrib["id"] for _ in range(20)]
        self.assertEqual(got, ["m%d" % i for i in range(20)])
        a.wait_status(lambda s: s.get("relay-queued") == "0", 3, "queue empty")

    def test_overflow_bounces(self):
        n = self.node("a", "127.0.0.1")
        a = self.agent([n], relay_queue=4096)
        a.wait_connected()
        local = self.local()
        n.process.signal(signal.SIGKILL)
        n.process.wait()
        a.wait_status(lambda s: s["state"] != "connected", 3, "the drop")
        big = "x" * 1000
        for i in range(6):
            local.send("<message from='%s' to='%s' id='b%d'><body>%s</body></message>" % (
                CB1, CB2, i, big))
        # Each stanza is about 1,080 bytes: three fit in 4,096, the other three bounce.
        bounced = []
        for _ in range(3):
            raw, e = local.recv_stanza()
            self.assertEqual(e.attrib["type"], "error", raw)
            self.assertEqual(e.find("{jabber:component:accept}error").attrib["type"], "wait")
            self.assertIn("{%s}resource-constraint" % NS_STANZA_ERRORS, raw_tags(e))
            bounced.append(e.attrib["id"])
        self.assertEqual(bounced, ["b3", "b4", "b5"])
        st = a.wait_status(lambda s: s.get("relay-bounced") == "3", 3, "3 bounced")
        self.assertEqual(st["relay-queued"], "3")
        # An error stanza is never bounced (no loops), even when it cannot be queued.
        local.send("<message from='%s' to='%s' type='error' id='e2'><body>%s</body></message>"
                   % (CB1, CB2, big))
        local.expect_nothing(0.3)
        # The operator is told once, not once per stanza.
        self.assertEqual(a.log_text().count("relay: queue full (relay-queue = 4096 bytes): "
                                            "stanzas from the local component are bounced"), 1)
        self.assertIn("an error stanza from the local component was dropped", a.log_text())

    def test_replay_on_failover(self):
        self._failover(replay=True)

    def test_no_replay_nothing_lost_during_outage(self):
        self._failover(replay=False)

    def _failover(self, replay):
        """A numbered stream through the relay while the active node is SIGKILLed."""
        na, nb = self.node("a", "127.0.0.1"), self.node("b", "127.0.0.2")
        a = self.agent([na, nb], relay_replay="on" if replay else "off")
        a.wait_connected(server="%s:%d" % (na.host, na.address[1]))
        local = self.local()
        far_a, far_b = self.far(na), self.far(nb)
        half = 300
        for i in range(half):
            local.send(message(i))
        na.process.signal(signal.SIGKILL)
        if not replay:
            # After the drop is noticed, nothing is lost: it waits for the next node.
            a.wait_connected(seconds=5, server="%s:%d" % (nb.host, nb.address[1]))
        for i in range(half, 2 * half):
            local.send(message(i))
        a.wait_connected(seconds=5, server="%s:%d" % (nb.host, nb.address[1]))
        got = []
        for c in (far_a, far_b):
            got += [int(x) for x in re.findall(r"id='m(\d+)'", drain(c))]
        missing = sorted(set(range(2 * half)) - set(got))
        if replay:
            # At least once: every stanza arrived, in order of first arrival.
            self.assertEqual(missing, [])
            firsts = sorted(set(got), key=got.index)
            self.assertEqual(firsts, sorted(firsts))
        else:
            # Only what was in flight to the killed node may be lost.
            self.assertEqual([i for i in missing if i >= half], [])


def drain(client, seconds=1.0):
    """Everything a client receives until it is quiet for a while."""
    text = ""
    deadline = time.monotonic() + xt.timeout(5)
    while time.monotonic() < deadline:
        try:
            more = client.recv_until(re.compile(r".", re.S), seconds=seconds)
        except AssertionError:
            break
        text += more
    return text + client.pending() if hasattr(client, "pending") else text


def raw_tags(e):
    return [c.tag for c in e.iter()]


if __name__ == "__main__":
    sys.exit(xt.main(RelayTest, sys.argv[1:], ("xcompd", "xcomp", "xcomp-server")))
