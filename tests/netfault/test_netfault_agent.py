#!/usr/bin/env python3
"""The agent against real network faults: packets dropped with nftables inside
the test's own network namespace (see netns.py), not signals.

    python3 tests/netfault/test_netfault_agent.py [NAME-SUBSTRING...]
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faulttest as ft  # noqa: E402  (enters the namespace)
import xcomptest as xt  # noqa: E402
from pki import PKI  # noqa: E402

CB1 = "cb1.tptac9.test"


class AgentFaults(ft.FaultTest):

    def session_on(self, node):
        return "Component  : %s\n" % CB1 in node.must("status").stdout

    def test_blackhole_both_ways(self):
        c = self.cluster()
        a_node = c.node("a")
        self.server_keepalive(a_node, 1, 1)
        u = self.dns(c.records())
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        a.wait_connected(server=c.target(a_node))
        t0 = time.monotonic()
        fault = self.blackhole(a_node)
        st = self.wait_moved(a, c, a_node, xt.timeout(6))
        moved = self.elapsed(t0)
        ft.figure("blackhole both ways, connected elsewhere", moved, 3.0)
        self.assertLess(moved, xt.timeout(3.0))  # keepalive + keepalive-timeout + 1 s
        self.assertEqual(st["last-error"], "timeout")
        # The half-open session on a ends by the server's own bound, rule or not.
        xt.wait_until(lambda: not self.session_on(a_node), xt.timeout(4), "a's dead session gone")
        gone = self.elapsed(t0)
        ft.figure("blackhole both ways, the dead session gone from the node", gone, 3.0)
        self.assertLess(gone, xt.timeout(3.0))
        fault.lift()
        time.sleep(1.5)
        on = [n.name for n in c.nodes if self.session_on(n)]
        self.assertEqual(on, [c.by_server(a.wait_connected()["server"]).name])

    def one_direction(self, direction):
        c = self.cluster()
        a_node = c.node("a")
        self.server_keepalive(a_node, 1, 1)
        u = self.dns(c.records())
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        a.wait_connected(server=c.target(a_node))
        t0 = time.monotonic()
        self.blackhole(a_node, direction)
        self.wait_moved(a, c, a_node, xt.timeout(6))
        moved = self.elapsed(t0)
        ft.figure("packets %s the active node dropped, connected elsewhere" % direction,
                  moved, 3.0)
        self.assertLess(moved, xt.timeout(3.0))  # keepalive + keepalive-timeout + 1 s
        xt.wait_until(lambda: not self.session_on(a_node), xt.timeout(4), "a's dead session gone")

    def test_replies_dropped(self):
        self.one_direction("from")

    def test_requests_dropped(self):
        self.one_direction("to")

    def test_syns_dropped_from_the_start(self):
        c = self.cluster()
        a_node = c.node("a")
        u = self.dns(c.records())
        self.blackhole(a_node, "to", syn_only=True)
        t0 = time.monotonic()
        a = self.agent(u, connect_timeout=2)
        st = a.wait_connected(seconds=xt.timeout(5))
        took = self.elapsed(t0)
        self.assertNotEqual(st["server"], c.target(a_node))
        ft.figure("SYNs dropped at the first node, connected to the next", took, 2.5)
        self.assertLess(took, xt.timeout(2.5))  # connect-timeout + 0.5 s
        self.assertEqual(st["nodes"][0]["result"], "timeout")
        self.assertIn("connect-timeout", st["last-error-text"])

    def test_blackholed_during_the_handshake(self):
        c = self.cluster()
        a_node = c.node("a")
        u = self.dns(c.records())
        # TCP connects; the server's header never comes back.
        self.blackhole(a_node, "from", keep_synack=True)
        t0 = time.monotonic()
        a = self.agent(u, connect_timeout=2, handshake_timeout=3)
        st = a.wait_connected(seconds=xt.timeout(6))
        took = self.elapsed(t0)
        self.assertNotEqual(st["server"], c.target(a_node))
        ft.figure("blackholed during the XMPP handshake, connected to the next", took, 4.0)
        self.assertLess(took, xt.timeout(4.0))  # handshake-timeout + 1 s
        self.assertIn("handshake-timeout", st["last-error-text"])

    def test_blackholed_during_the_tls_handshake(self):
        p = PKI(self.wd.path)
        c = self.cluster(pki=p)
        a_node = c.node("a")
        u = self.dns(c.records())
        self.blackhole(a_node, "from", keep_synack=True)
        t0 = time.monotonic()
        a = self.agent(u, connect_timeout=2, handshake_timeout=3, tls="direct", tls_ca=p.ca)
        st = a.wait_connected(seconds=xt.timeout(6))
        took = self.elapsed(t0)
        self.assertNotEqual(st["server"], c.target(a_node))
        ft.figure("blackholed during the TLS handshake, connected to the next", took, 3.0)
        self.assertLess(took, xt.timeout(3.0))  # connect-timeout + 1 s
        self.assertIn("connect-timeout, TLS included", st["last-error-text"])


if __name__ == "__main__":
    sys.exit(ft.main(AgentFaults))
