#!/usr/bin/env python3
"""contrib/ejabberd-cluster.yml, the sample component listener of one node of
an ejabberd cluster (xcompd(8), "Running at scale"), loaded as it is by a
real ejabberd 23.01: only its two per-node macros, the listener's address
and port, are set to the test's (127.0.0.1 and a free port).

The node runs undistributed and is started and stopped by pid, as in
test_interop_ejabberd.py; no DNS: the agent is given the node with server.

    python3 tests/integration/test_contrib_ejabberd.py [NAME-SUBSTRING...]
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import Agent, listen_port  # noqa: E402
from test_interop_ejabberd import (  # noqa: E402
    Ejabberd, ejabberd_libs, erl_binary, kill_all, start_all)

SAMPLE = os.path.join(os.environ.get("XCOMP_SRCDIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")), "contrib", "ejabberd-cluster.yml")
# The sample's domain, names and placeholder secrets, as it has them.
DOMAIN = "tptac9.com"
BRIDGES = {"cb%d.%s" % (i, DOMAIN): "CB%d-SECRET" % i for i in (1, 2, 3)}


def set_macro(text, name, value):
    """text with the define_macro line of name set to value; the sample must
    have that line exactly once."""
    new, n = re.subn(r"(?m)^(  %s: )\S+" % name, lambda m: m.group(1) + value, text)
    if n != 1:
        raise AssertionError("%s: %d lines define %s, expected 1" % (SAMPLE, n, name))
    return new


class SampleNode(Ejabberd):
    """An ejabberd node whose configuration is the sample, with the test's
    address and port: one listener, which wait_ready checks twice."""

    def write_conf(self):
        self.port = self.probe_port = listen_port(self.ip)
        with open(SAMPLE) as f:
            text = f.read()
        text = set_macro(text, "NODE_IP", '"%s"' % self.ip)
        text = set_macro(text, "COMPONENT_PORT", str(self.port))
        with open(self.conf, "w") as f:
            f.write(text)


class ContribEjabberdTest(xt.LabTest):
    prefix = "contrib-ejabberd-"

    def node(self):
        n = SampleNode(self.wd.path, "xmpp1", "127.0.0.1")
        self.cleanups.append(lambda: kill_all([n]))
        start_all([n])
        return n

    def bridge(self, node, jid):
        """An authenticated session of the bridge jid on node's listener."""
        c = xt.Client((node.ip, node.port), name=jid.split(".")[0])
        self.cleanups.append(c.close)
        c.send(c.stream_header(jid))
        c.expect_header()
        c.handshake(BRIDGES[jid])
        return c

    def test_every_bridge_with_its_secret(self):
        node = self.node()
        for jid in sorted(BRIDGES):
            self.bridge(node, jid)
            # ejabberd's log is written after the answer: wait for the line.
            line = "Accepted external component handshake authentication for %s" % jid
            xt.wait_until(lambda: line in node.log_text(), 5, "%r in ejabberd's log" % line)
        # Another bridge's secret is refused.
        c = xt.Client((node.ip, node.port), name="wrong")
        self.cleanups.append(c.close)
        c.send(c.stream_header("cb1." + DOMAIN))
        c.expect_header()
        c.handshake(BRIDGES["cb2." + DOMAIN], expect_ok=False)
        self.assertIn("<not-authorized", c.recv_until("</stream:error>"))

    def test_global_routes_false(self):
        # cb1's session routes cb1 only: a stanza for cb2, not connected, is
        # bounced to cb1 as an error. With ejabberd's default (global_routes:
        # true) the sessions of cb1 and cb3 would each hold a route for cb2,
        # and ejabberd would hand the stanza to one of them at random (seen
        # here with the sample changed to true: 5 of 6 to cb1, 1 to cb3).
        node = self.node()
        cb1, cb3 = self.bridge(node, "cb1." + DOMAIN), self.bridge(node, "cb3." + DOMAIN)
        cb1.send("<message from='cb1.%s' to='cb3.%s' id='m1'><body>hi</body></message>" % (
            DOMAIN, DOMAIN))
        raw, e = cb3.recv_stanza()
        self.assertEqual((e.get("from"), e.get("to"), e.get("id")),
                         ("cb1." + DOMAIN, "cb3." + DOMAIN, "m1"), raw)
        cb1.send("<iq type='get' id='q2' from='cb1.%s' to='cb2.%s'><ping xmlns='%s'/></iq>" % (
            DOMAIN, DOMAIN, xt.NS_PING))
        raw, e = cb1.recv_stanza()
        self.assertEqual((e.get("type"), e.get("id"), e.get("from")),
                         ("error", "q2", "cb2." + DOMAIN), raw)
        cb3.expect_nothing()

    def test_agent_on_the_sample(self):
        node = self.node()
        a = Agent(self.wd.path, name="cb1", secret=BRIDGES["cb1." + DOMAIN], domain=DOMAIN,
                  server="%s:%d" % (node.ip, node.port), keepalive=1,
                  keepalive_timeout=1).start()
        self.cleanups.append(a.stop)
        st = a.wait_connected(10)
        self.assertEqual(st["component"], "cb1." + DOMAIN)
        # mod_ping answers the agent's keepalive pings to the domain: the
        # session outlives several keepalive periods.
        since = st["connected-since"]
        time.sleep(2.5)
        st = a.status()
        self.assertEqual((st["state"], st["connected-since"], st["failovers"]),
                         ("connected", since, "0"))
        # Another bridge reaches the agent's component through the node.
        cb3 = self.bridge(node, "cb3." + DOMAIN)
        cb3.ping("cb1." + DOMAIN, "cb3." + DOMAIN)


def main(argv):
    if erl_binary() is None or ejabberd_libs() is None:
        print("SKIP: ejabberd not installed")
        return 77
    return xt.main(ContribEjabberdTest, argv, ("xcompd",))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
