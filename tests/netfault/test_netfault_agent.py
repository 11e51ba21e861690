#!/usr/bin/env python3
"""The agent against real network faults: packets dropped with nftables inside
the test's own network namespace (see netns.py), not signals.

    python3 tests/netfault/test_netfault_agent.py [NAME-SUBSTRING...]
"""

import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faulttest as ft  # noqa: E402  (enters the namespace)
import netns  # noqa: E402
import xcomptest as xt  # noqa: E402
from agenttest import DOMAIN, a_record, srv_record  # noqa: E402
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

    def blackholed_in_handshake(self, what, bound, words, pki=None, **keys):
        """TCP connects to the first node; nothing comes back from it after."""
        c = self.cluster(pki=pki)
        a_node = c.node("a")
        u = self.dns(c.records())
        self.blackhole(a_node, "from", keep_synack=True)
        t0 = time.monotonic()
        a = self.agent(u, connect_timeout=2, handshake_timeout=3, **keys)
        st = a.wait_connected(seconds=xt.timeout(6))
        took = self.elapsed(t0)
        self.assertNotEqual(st["server"], c.target(a_node))
        ft.figure("blackholed during the %s, connected to the next" % what, took, bound)
        self.assertLess(took, xt.timeout(bound))
        self.assertIn(words, st["last-error-text"])

    def test_blackholed_during_the_handshake(self):
        # The server's header never comes back: handshake-timeout + 1 s.
        self.blackholed_in_handshake("XMPP handshake", 4.0, "handshake-timeout")

    def test_blackholed_during_the_tls_handshake(self):
        # The ServerHello never comes back: connect-timeout + 1 s.
        p = PKI(self.wd.path)
        self.blackholed_in_handshake("TLS handshake", 3.0, "connect-timeout, TLS included",
                                     pki=p, tls="direct", tls_ca=p.ca)

    def test_dns_server_blackholed_while_connected(self):
        c = self.cluster()
        a_node = c.node("a")
        u = self.dns(c.records(ttl=1))
        a = self.agent(u, backoff_min=1, backoff_max=4)
        before = a.wait_connected(server=c.target(a_node))
        dns = [netns.drop("127.0.0.1", u.port, "to", proto=p) for p in ("udp", "tcp")]
        t0 = time.monotonic()
        st = a.wait_status(lambda s: s.get("last-error") == "dns", xt.timeout(20),
                           "a failed refresh")
        ft.figure("DNS server blackholed, the failed refresh in the status", self.elapsed(t0))
        self.assertRegex(st["last-error-text"],
                         r"^_xmpp-component\._tcp\.tptac9\.test SRV: no answer from the DNS "
                         r"server 127\.0\.0\.1@%d \(" % u.port)
        self.assertNotIn("SERVFAIL", st["last-error-text"])
        # A failed refresh never drops a session that works.
        time.sleep(3)
        st = a.wait_connected(server=c.target(a_node))
        self.assertEqual(st["connected-since"], before["connected-since"])
        self.assertEqual(st["failovers"], "0")
        # While DNS is away, a leaves the records; when it returns, the agent follows.
        u.set_records("_xmpp-component._tcp.tptac9.test",
                      [r for r in c.records(ttl=1) if " SRV " in r and "a.tptac9" not in r])
        for f in dns:
            f.lift()
        t1 = time.monotonic()
        self.wait_moved(a, c, a_node, xt.timeout(8), "moved off a after DNS returned")
        ft.figure("DNS back, record change followed", self.elapsed(t1), 6.0)
        self.assertLess(self.elapsed(t1), xt.timeout(6.0))  # backoff-max + TTL + 1 s
        self.assertIn("is no longer in the SRV records", a.log_text())

    def test_dns_server_answers_servfail(self):
        # The other half of the words: a server that answers SERVFAIL says so.
        srv = ServfailServer()
        self.cleanups.append(srv.stop)
        r = subprocess.run([xt.program("xcomp"), "resolve", "--dns-server", "127.0.0.1@%d" % srv.port,
                            "tptac9.test"], capture_output=True, text=True, timeout=30)
        self.assertIn("SERVFAIL (server failure) from the DNS server 127.0.0.1@%d" % srv.port,
                      r.stdout + r.stderr)

    def test_flapping_link(self):
        # One node, its link dropped and restored every few hundred ms for 30 s.
        c = self.cluster(nodes=1)
        a_node = c.node("a")
        self.server_keepalive(a_node, 1, 1)
        u = self.dns(c.records())
        a = self.agent(u, keepalive=1, keepalive_timeout=1, backoff_min=1, backoff_max=2)
        a.wait_connected()
        rnd = random.Random(15)
        states = set()
        cpu0, t0 = a.cpu_seconds(), time.monotonic()
        while self.elapsed(t0) < 30:
            with self.blackhole(a_node):
                time.sleep(rnd.uniform(0.2, 0.6))
            states.add(a.status()["state"])
            time.sleep(rnd.uniform(0.2, 0.6))
        cpu = (a.cpu_seconds() - cpu0) / self.elapsed(t0)
        ft.figure("flapping link for 30 s, agent CPU", cpu * 100, 5.0, unit="%")
        self.assertLess(cpu, 0.05)
        # The link dies for good: the status stops saying connected by the bound.
        t1 = time.monotonic()
        fault = self.blackhole(a_node)
        a.wait_status(lambda s: s["state"] != "connected", xt.timeout(4), "not connected")
        ft.figure("after flapping, the link down: the status no longer says connected",
                  self.elapsed(t1), 3.0)
        self.assertLess(self.elapsed(t1), xt.timeout(3.0))  # keepalive + keepalive-timeout + 1 s
        fault.lift()
        t2 = time.monotonic()
        a.wait_connected(seconds=xt.timeout(5))
        ft.figure("after flapping, the link back: connected", self.elapsed(t2), 3.0)
        self.assertLess(self.elapsed(t2), xt.timeout(3.0))  # backoff-max + 1 s
        # One session on the node, the dead ones gone by its own bound.
        time.sleep(2.5)
        self.assertEqual(a_node.must("status").stdout.count("Component  : %s\n" % CB1), 1)

    def test_defaults_detect_a_blackhole(self):
        # xcompd's and xcomp-server's defaults: keepalive 10 s, keepalive-timeout 5 s.
        c = self.cluster()
        a_node = c.node("a")
        u = self.dns(c.records())
        a = self.agent(u)
        a.wait_connected(server=c.target(a_node))
        t0 = time.monotonic()
        self.blackhole(a_node)
        self.wait_moved(a, c, a_node, xt.timeout(20))
        moved = self.elapsed(t0)
        ft.figure("defaults, blackhole both ways, connected elsewhere", moved, 16.0)
        self.assertLess(moved, xt.timeout(16.0))  # keepalive + keepalive-timeout + 1 s
        xt.wait_until(lambda: not self.session_on(a_node), xt.timeout(16), "a's dead session gone")
        ft.figure("defaults, blackhole both ways, the dead session gone from the node",
                  self.elapsed(t0), 16.0)
        self.assertLess(self.elapsed(t0), xt.timeout(16.0))

    def test_late_answers_are_not_a_dead_node(self):
        # A busy node: every byte both ways 2 s late (a 4-s round trip, within
        # the default keepalive-timeout of 5 s) for 30 s: no drop, either side.
        c = self.cluster(nodes=1)
        a_node = c.node("a")
        proxy = ft.DelayProxy("127.0.0.5", a_node.address, 2.0)
        self.cleanups.append(proxy.stop)
        u = self.dns([srv_record(10, 10, proxy.address[1], "slow." + DOMAIN),
                      a_record("slow." + DOMAIN, "127.0.0.5")])
        a = self.agent(u, handshake_timeout=10)
        st = a.wait_connected(seconds=xt.timeout(10))
        time.sleep(30)
        now = a.wait_connected()
        self.assertEqual((now["server"], now["connected-since"], now["failovers"]),
                         (st["server"], st["connected-since"], "0"))
        pings = proxy.to_upstream.count(b"xcomp-ping-")
        ft.figure("late answers (4-s round trip) for 30 s, keepalive pings answered late",
                  pings, unit="pings")
        self.assertGreaterEqual(pings, 2)
        self.assertEqual(st["failovers"], "0")
        log = a_node.log_text()
        self.assertEqual(log.count("cb1.tptac9.test authenticated"), 1, log)
        self.assertNotIn("connection-timeout", log)


class ServfailServer:
    """A UDP DNS server on 127.0.0.1 that answers SERVFAIL to every question."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            if len(data) >= 12:
                reply = bytearray(data)
                reply[2] |= 0x80
                reply[3] = (reply[3] & 0xF0) | 0x80 | 2
                self.sock.sendto(bytes(reply), peer)

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


if __name__ == "__main__":
    sys.exit(ft.main(AgentFaults))
