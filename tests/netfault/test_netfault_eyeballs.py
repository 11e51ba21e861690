#!/usr/bin/env python3
"""A node with two addresses, one of them dead: the agent and xcomp probe race
them the way RFC 8305 (Happy Eyeballs v2) says, instead of waiting out
connect-timeout on the dead one. The dead address is a real fault: its SYNs
are dropped with nftables inside the test's own network namespace (netns.py),
so its connect hangs as it does behind a firewall.

    python3 tests/netfault/test_netfault_eyeballs.py [NAME-SUBSTRING...]
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faulttest as ft  # noqa: E402  (enters the namespace)
import xcomptest as xt  # noqa: E402
from agenttest import DOMAIN, a_record, srv_record  # noqa: E402

SECRET = "s3cret"
V6 = "::1"
# RFC 8305's Connection Attempt Delay is 250 ms: the live address answers
# after it, plus the time of a loopback connect.
RACE_BOUND = 0.5


def aaaa_record(host, ip, ttl=60):
    """As agenttest.a_record, for AAAA (local here: faulttest.py is the lead's)."""
    return "%s. %d IN AAAA %s" % (host, ttl, ip)


class Eyeballs(ft.FaultTest):

    def node(self, name, v4, v6=V6):
        """An xcomp-server listening on [v6]:PORT and v4:PORT, the same port."""
        port = xt.free_port(v4)
        listen = ["%s:%d" % (v4, port)]
        if v6:
            listen.insert(0, "[%s]:%d" % (v6, port))
        srv = xt.Server(self.wd.path, name=name, domain=DOMAIN, listen=listen, bridges=())
        srv.must("callbridge", "add-secret", "cb1", input=SECRET + "\n")
        srv.secrets["cb1"] = SECRET
        srv.host = "%s.%s" % (name, DOMAIN)
        srv.v4, srv.v6, srv.port = v4, v6, port
        srv.start()
        self.cleanups.append(srv.stop)
        return srv

    def records(self, *nodes):
        rr = []
        for prio, n in enumerate(nodes):
            rr.append(srv_record(10 * (prio + 1), 10, n.port, n.host))
            rr.append(a_record(n.host, n.v4))
            if n.v6:
                rr.append(aaaa_record(n.host, n.v6))
        return rr

    def target(self, n):
        return "%s:%d" % (n.host, n.port)

    def hang(self, addr, node):
        """Drop the SYNs to addr:port: a connect there hangs."""
        return ft.netns.drop(addr, node.port, "to", syn_only=True)

    def race_ms(self, agent):
        """The race's time as the agent logs it at info."""
        m = re.search(r"connected first, after (\d+) ms", agent.log_text())
        self.assertIsNotNone(m, agent.log_text()[-2000:])
        return int(m.group(1))

    def connect_one_dead(self, dead, live_addr):
        a_node = self.node("a", "127.0.0.2")
        self.hang(dead, a_node)
        u = self.dns(self.records(a_node))
        t0 = time.monotonic()
        a = self.agent(u, connect_timeout=5)
        st = a.wait_connected(xt.timeout(8), server=self.target(a_node))
        took = self.elapsed(t0)
        self.assertEqual(st["address"], live_addr)
        return a, took

    def test_aaaa_dead_a_live(self):
        a, took = self.connect_one_dead(V6, "127.0.0.2")
        ft.figure("AAAA dead, A live: agent started to connected", took, RACE_BOUND)
        race = self.race_ms(a) / 1000.0
        ft.figure("AAAA dead, A live: the race (agent's log)", race, RACE_BOUND)
        self.assertLess(race, xt.timeout(RACE_BOUND))
        self.assertLess(took, xt.timeout(RACE_BOUND + 0.5))  # + process start, DNS, handshake
        log = a.log_text()
        self.assertRegex(log, r"trying ::1\b")
        self.assertRegex(log, r"trying 127\.0\.0\.2\b")
        self.assertRegex(log, r"::1 abandoned")

    def test_a_dead_aaaa_live(self):
        a, took = self.connect_one_dead("127.0.0.2", V6)
        ft.figure("A dead, AAAA live: agent started to connected", took, RACE_BOUND)
        # IPv6 is tried first (RFC 8305 section 4): it wins without a race.
        self.assertLess(took, xt.timeout(RACE_BOUND + 0.5))
        self.assertNotIn("abandoned", a.log_text())
        # And while connected, the dead A address costs nothing later either.
        self.assertEqual(a.status()["state"], "connected")

    def test_both_dead_next_node(self):
        a_node = self.node("a", "127.0.0.2")
        b_node = self.node("b", "127.0.0.3", v6=None)
        self.hang(V6, a_node)
        self.hang("127.0.0.2", a_node)
        u = self.dns(self.records(a_node, b_node))
        t0 = time.monotonic()
        a = self.agent(u, connect_timeout=2)
        st = a.wait_connected(xt.timeout(8), server=self.target(b_node))
        took = self.elapsed(t0)
        ft.figure("both addresses dead (connect-timeout 2): connected to the next node", took, 2.5)
        # One connect-timeout for the node's race, not one per address.
        self.assertGreater(took, 1.9)
        self.assertLess(took, xt.timeout(2.5))
        self.assertEqual(st["address"], "127.0.0.3")
        self.assertEqual(st["nodes"][0]["result"], "timeout")
        self.assertRegex(a.log_text(), r"no answer from %s within 2 s \(connect-timeout\): "
                         r"::1 \(no answer\), 127\.0\.0\.2 \(no answer\)" %
                         re.escape(self.target(a_node)))

    def test_probe_races(self):
        a_node = self.node("a", "127.0.0.2")
        self.hang(V6, a_node)
        u = self.dns(self.records(a_node))
        conf = self.agent(u, start=False, connect_timeout=5)
        t0 = time.monotonic()
        r = xt.run_command([xt.program("xcomp"), "probe", "-f", conf.conf_path], self.wd.path,
                           seconds=30, valgrind=xt.VALGRIND, name="probe")
        took = self.elapsed(t0)
        out = r.stdout
        print(out)
        self.assertEqual(r.returncode, 0, out + r.stderr)
        ft.figure("xcomp probe, AAAA dead, A live: whole run", took, RACE_BOUND)
        self.assertLess(took, xt.timeout(RACE_BOUND + 0.5))  # + process start, DNS, handshake
        m = re.search(r"^  TCP connect +(\d+) ms  connected to 127\.0\.0\.2 port %d" % a_node.port,
                      out, re.M)
        self.assertIsNotNone(m, out)
        ft.figure("xcomp probe: the TCP connect step", int(m.group(1)) / 1000.0, RACE_BOUND)
        self.assertLess(int(m.group(1)), RACE_BOUND * 1000 * xt.SCALE)
        self.assertRegex(out, r"(?m)^  TCP connect +\d+ ms  trying ::1 port %d$" % a_node.port)
        self.assertRegex(out, r"(?m)^  TCP connect +\d+ ms  trying 127\.0\.0\.2 port %d "
                         r"\(::1 has not answered yet\)$" % a_node.port)
        self.assertRegex(out, r"(?m)^  TCP connect +\d+ ms  ::1 abandoned after \d+ ms without an "
                         r"answer: 127\.0\.0\.2 connected first$")
        self.assertIn("Result: %s passed" % self.target(a_node), out)


if __name__ == "__main__":
    sys.exit(ft.main(Eyeballs))
