#!/usr/bin/env python3
"""Integration tests of xcompd and xcomp: a real unbound on a free port, three
real xcomp-server nodes on 127.0.0.1-3, the real agent, asserted through the
status file, the servers' logs and exit codes.

    python3 tests/integration/test_agent.py [NAME-SUBSTRING...]
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import (DOMAIN, SRV_NAME, AgentLab, GapWatch,  # noqa: E402
                       a_record, cluster_rolling_restart, dns_query, srv_record)

CB1 = "cb1." + DOMAIN
SERVER_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                 "xmlns:stream='http://etherx.jabber.org/streams' id='x1' from='%s'>" % CB1)


def dns_wire_len(name):
    return sum(len(label) + 1 for label in name.strip(".").split(".")) + 1


def srv_answer_size(targets):
    """Bytes of unbound's answer with SRV records to these targets: header,
    question, EDNS and one record each (owner compressed, target not)."""
    return 12 + dns_wire_len(SRV_NAME) + 4 + 11 + sum(18 + dns_wire_len(t) for t in targets)


class ScriptedPeer:
    """A TCP listener on 127.0.0.x that answers every connection with reply
    (after reading the client's stream header), then closes; counts them.
    With keep_reading, what the client sends after the reply, up to its
    close, is kept in received (bytes, one entry per connection)."""

    def __init__(self, host, reply=b"", keep_reading=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.address = self.sock.getsockname()
        self.reply = reply
        self.keep_reading = keep_reading
        self.received = []
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.reply:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(self.reply)
                    if self.keep_reading:
                        self.received.append(self.read_to_eof(conn))
                except OSError:
                    pass
            conn.close()

    @staticmethod
    def read_to_eof(conn):
        got = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return got
            got += chunk

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


class HoldingDNSProxy:
    """A UDP proxy in front of unbound that holds the answers back while
    holding is set, until release()."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = "127.0.0.1@%d" % self.sock.getsockname()[1]
        self.clients = {}  # DNS id -> client address
        self.held = []  # (answer, client address)
        self.holding = False
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                continue
            if peer != self.upstream:
                self.clients[data[:2]] = peer
                self.sock.sendto(data, self.upstream)
                continue
            client = self.clients.get(data[:2])
            with self.lock:
                if self.holding:
                    self.held.append((data, client))
                elif client:
                    self.sock.sendto(data, client)

    @staticmethod
    def qtype(msg):
        i = 12
        while msg[i]:
            i += msg[i] + 1
        return int.from_bytes(msg[i + 1:i + 3], "big")

    def held_types(self):
        with self.lock:
            return [self.qtype(m) for m, _ in self.held]

    def release(self):
        with self.lock:
            self.holding = False
            for m, client in self.held:
                self.sock.sendto(m, client)
            self.held = []

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


class AgentTest(AgentLab):

    def xcomp(self, *args):
        return subprocess.run([xt.program("xcomp")] + list(args), capture_output=True, text=True,
                              timeout=xt.timeout(10))

    # ---------------------------------------------------------- ordering

    def test_connects_to_lowest_priority_value(self):
        c = self.cluster()
        # b has the lowest priority value: it must win whatever the weights.
        u = self.dns(c.records(prio=(20, 5, 30), weight=(100, 1, 100)))
        a = self.agent(u)
        st = a.wait_connected()
        self.assertEqual(st["server"], c.target(c.node("b")))
        self.assertEqual(st["address"], "127.0.0.2")
        self.assertEqual(st["component"], CB1)
        self.assertEqual(st["domain"], DOMAIN)
        self.assertEqual(int(st["pid"]), a.pid)
        self.assertEqual([n["target"] for n in st["nodes"]],
                         ["b.tptac9.test", "a.tptac9.test", "c.tptac9.test"])
        self.assertEqual([n["result"] for n in st["nodes"]], ["ok", "untried", "untried"])
        self.assertEqual(st["failovers"], "0")
        self.assertNotIn("last-error", st)
        self.assertRegex(st["connected-since"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIn("cb1.tptac9.test authenticated", c.node("b").log_text())

    def test_weights_over_repeated_starts(self):
        c = self.cluster(nodes=2)
        u = self.dns(c.records(prio=(10, 10), weight=(70, 30)))
        firsts = {"a": 0, "b": 0}
        runs = 30
        for i in range(runs):
            a = self.agent(u, start=False, name="x%d" % i)
            a.start()
            try:
                st = a.wait_connected()
                firsts["ab"[[n.host for n in c.nodes].index(st["server"].split(":")[0])]] += 1
            finally:
                a.stop()
        # 70/30 over 30 starts: mean 21 for a; these bounds fail about once in 700 runs.
        self.assertTrue(13 <= firsts["a"] <= 29, firsts)
        self.assertGreaterEqual(firsts["b"], 1, firsts)

    # ---------------------------------------------------------- failover

    def test_sigkill_of_active_node(self):
        c = self.cluster()
        u = self.dns(c.records())
        a = self.agent(u)
        st = a.wait_connected(server=c.target(c.node("a")))
        t0 = time.monotonic()
        c.node("a").process.signal(signal.SIGKILL)
        st = a.wait_status(lambda s: s["state"] == "connected" and
                           s["server"] != c.target(c.node("a")), 3, "failover")
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 1.0)
        self.assertEqual(st["failovers"], "1")
        self.assertEqual(st["last-error"], "closed")
        self.assertIn("a.tptac9.test", st["last-error-text"])
        self.assertEqual(st["nodes"][0]["result"], "closed")

    def test_sigstop_of_active_node(self):
        c = self.cluster()
        u = self.dns(c.records())
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        a.wait_connected(server=c.target(c.node("a")))
        t0 = time.monotonic()
        c.node("a").process.signal(signal.SIGSTOP)
        try:
            st = a.wait_status(lambda s: s["state"] == "connected" and
                               s["server"] != c.target(c.node("a")), 5, "failover")
            elapsed = time.monotonic() - t0
        finally:
            c.node("a").process.signal(signal.SIGCONT)
        # keepalive + keepalive-timeout + 1 s
        self.assertLess(elapsed, 3.0)
        self.assertEqual(st["last-error"], "timeout")
        self.assertIn("keepalive", st["last-error-text"])

    def test_history_of_a_failover(self):
        # The night's history: the start, the session on a, a's death and the
        # session that ended the gap, from the file beside the status file.
        c = self.cluster()
        u = self.dns(c.records())
        a = self.agent(u)
        a.wait_connected(server=c.target(c.node("a")))
        c.node("a").process.signal(signal.SIGKILL)
        st = a.wait_status(lambda s: s["state"] == "connected" and
                           s["server"] != c.target(c.node("a")), 3, "failover")
        r = self.xcomp("history", "-s", a.status_path)
        print("\n$ xcomp history -s %s\n%s" % (a.status_path, r.stdout), end="")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"^\d{4}-\d\d-\d\d\n  \d\d:\d\d:\d\d started\n"
                         r"  \d\d:\d\d:\d\d connected to %s after [\d.]+ m?s\n"
                         r"  \d\d:\d\d:\d\d dropped by %s \(connection closed\)\n"
                         r"  \d\d:\d\d:\d\d connected to %s after \d+ ms\n"
                         r"Last 24 hours:   1 failover, [\d.]+ m?s without a session\n$" % (
                             re.escape(c.target(c.node("a"))), re.escape(c.target(c.node("a"))),
                             re.escape(st["server"])))
        r = self.xcomp("history", "-H", a.status_path + ".history", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual([e["event"] for e in j["events"]],
                         ["started", "connected", "dropped", "connected"])
        drop, again = j["events"][2], j["events"][3]
        self.assertEqual(drop["node"], c.target(c.node("a")))
        self.assertEqual(drop["reason"], "closed")
        self.assertIn("a.tptac9.test", drop["text"])
        self.assertEqual(again["node"], st["server"])
        # A failover to a live node: a gap of milliseconds, not a backoff.
        self.assertLess(again["gap"], 1.0)
        self.assertEqual(j["last-24h"]["failovers"], 1)
        self.assertGreaterEqual(j["last-24h"]["without-session"], again["gap"])
        r = self.xcomp("status", "-s", a.status_path)
        print("$ xcomp status -s %s\n%s" % (a.status_path, r.stdout), end="")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"\nLast 24 hours:   1 failover, \d+ ms without a session\n")
        a.process.signal(signal.SIGTERM)
        self.assertEqual(a.process.wait(5), 0)
        r = self.xcomp("history", "-f", a.conf_path)
        self.assertRegex(r.stdout, r"\d stopped, leaving %s\n" % re.escape(st["server"]))

    def test_history_none_and_cap(self):
        c = self.cluster(nodes=1)
        u = self.dns(c.records(prio=(10,), weight=(10,)))
        a = self.agent(u, history="none")
        a.wait_connected()
        self.assertFalse(os.path.exists(a.status_path + ".history"))
        r = self.xcomp("history", "-f", a.conf_path)
        self.assertEqual(r.returncode, 3)
        self.assertIn("history = none", r.stderr)
        r = self.xcomp("status", "-f", a.conf_path)
        self.assertNotIn("Last 24 hours", r.stdout)
        a.stop()
        # A file of its own, already at its cap: the oldest lines go, the new ones stay.
        path = self.wd.join("elsewhere.history")
        with open(path, "w") as f:
            for i in range(100):
                f.write("2026-11-26T03:12:%02dZ\tdropped\told%02d:5223\tclosed\n" % (i % 60, i))
        b = self.agent(u, name="capped", history=path, history_max=2048)
        b.wait_connected()
        text = open(path).read()
        self.assertLessEqual(len(text), 2048)
        self.assertNotIn("old00:", text)
        self.assertIn("old99:", text)
        self.assertRegex(text, r"\tstarted\n[^\n]*\tconnected\t%s\t\d+\.\d{3}\n$" %
                         re.escape(c.target(c.node("a"))))

    def test_server_keepalive_answered(self):
        c = self.cluster(nodes=1)
        n = c.node("a")
        self.server_keepalive(n, 1, 1)
        u = self.dns(c.records())
        a = self.agent(u, keepalive=30)  # only the server pings here
        st = a.wait_connected()
        time.sleep(4)
        self.assertEqual(a.wait_connected(), st)
        self.assertIn("Component  : %s\n" % CB1, n.must("status").stdout)
        log = n.log_text()
        self.assertEqual(log.count("cb1.tptac9.test authenticated"), 1, log)
        self.assertNotIn("connection-timeout", log)

    def test_server_drops_stopped_agent(self):
        c = self.cluster(nodes=1)
        n = c.node("a")
        self.server_keepalive(n, 1, 1)
        u = self.dns(c.records())
        a = self.agent(u)
        a.wait_connected()
        t0 = time.monotonic()
        a.process.signal(signal.SIGSTOP)
        try:
            xt.wait_until(lambda: "Component  : %s\n" % CB1 not in n.must("status").stdout,
                          xt.timeout(4.0), "the stopped agent's session dropped")
            # keepalive + keepalive-timeout + 1 s
            self.assertLess(time.monotonic() - t0, xt.timeout(3.0))
            # kick-new lets a new agent in: the dead session is gone
            b = self.agent(u, name="xcompd-b")
            b.wait_connected()
        finally:
            a.process.signal(signal.SIGCONT)
        a.stop()
        self.assertIn("no reply to a keepalive ping within 1 s", n.log_text())

    def test_wrong_secret_on_one_node(self):
        c = self.cluster()
        c.node("a").must("callbridge", "add-secret", "cb1", input="not-the-secret\n")
        c.node("a").process.signal(signal.SIGHUP)
        xt.wait_until(lambda: "state reloaded" in c.node("a").log_text(), 3, "reload")
        u = self.dns(c.records())
        a = self.agent(u)
        st = a.wait_connected()
        self.assertNotEqual(st["server"], c.target(c.node("a")))
        self.assertEqual(st["nodes"][0]["target"], "a.tptac9.test")
        self.assertEqual(st["nodes"][0]["result"], "auth")
        self.assertEqual(st["last-error"], "auth")
        self.assertEqual(st["last-error-text"],
                         "authentication failure at %s (not-authorized: Given token does not "
                         "match calculated token)" % c.target(c.node("a")))
        r = self.xcomp("status", "-s", a.status_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("See xcomp-troubleshooting(7), section AUTH.", r.stdout)

    def test_missing_srv_records(self):
        u = self.dns([a_record("a." + DOMAIN, "127.0.0.1")])
        a = self.agent(u)
        st = a.wait_status(lambda s: s["state"] == "backoff", 5, "backoff")
        self.assertEqual(st["last-error"], "dns")
        self.assertIn(SRV_NAME, st["last-error-text"])
        self.assertNotIn("server", st)
        r = self.xcomp("status", "-s", a.status_path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("DNS error", r.stdout)
        self.assertIn("section DNS.", r.stdout)

    def test_all_nodes_down_then_one_returns(self):
        c = self.cluster()
        u = self.dns(c.records())
        a = self.agent(u, backoff_min=1, backoff_max=4)
        a.wait_connected(server=c.target(c.node("a")))
        # The one in use last: the others are down when the agent tries them.
        for n in reversed(c.nodes):
            n.process.signal(signal.SIGKILL)
            n.process.wait()
        a.wait_status(lambda s: s["state"] == "backoff", 5, "backoff")
        cpu0, t0 = a.cpu_seconds(), time.monotonic()
        holds = re.compile(r"(\w)\.tptac9\.test:\d+: failure (\d+) in a row \(\w+\); "
                           r"not tried again for ([\d.]+) s")
        # Six seconds: long enough for CPU time, counted in 10-ms ticks, to mean something.
        time.sleep(6)
        cpu = a.cpu_seconds() - cpu0
        wall = time.monotonic() - t0
        self.assertGreaterEqual(len(holds.findall(a.log_text())), 15, a.log_text())
        per_node = {}
        for node, count, hold in holds.findall(a.log_text()):
            per_node.setdefault(node, []).append((int(count), float(hold)))
        self.assertEqual(sorted(per_node), ["a", "b", "c"], per_node)
        for node, seq in per_node.items():
            # Each node's own count and hold: a quarter of backoff-min at first
            # (equal jitter: 0.125-0.25 s), doubling to backoff-max (4 s).
            self.assertEqual([n for n, _ in seq], list(range(1, len(seq) + 1)), seq)
            for count, hold in seq:
                step = min(0.25 * 2 ** (count - 1), 4.0)
                self.assertTrue(step / 2 <= hold <= step, seq)
        self.assertLess(cpu / wall, 0.01, "cpu %.3f s over %.1f s" % (cpu, wall))
        waits = [float(d) for d in re.findall(r"next try in ([\d.]+) s", a.log_text())]
        self.assertTrue(waits and max(waits) <= 4.0, waits)
        c.restart(c.node("b"))
        st = a.wait_connected(seconds=8, server=c.target(c.node("b")))
        self.assertEqual(st["state"], "connected")

    def test_rolling_restart_costs_nothing(self):
        # Each node in turn gets SIGTERM and is back 0.5 s later, the next one
        # 0.5-1 s after that: a healthy node is there all the time. Distinct
        # priorities make the path a -> b -> c -> a certain, the one where a
        # "round" of nodes ended in a backoff of backoff-min (about 1 s).
        c = self.cluster()
        u = self.dns(c.records(prio=(10, 20, 30)))
        a = self.agent(u, keepalive=1, keepalive_timeout=1, backoff_min=1)
        a.wait_connected(server=c.target(c.node("a")))
        time.sleep(3.2)  # the session is stable
        watch = GapWatch(a).start()
        try:
            cluster_rolling_restart(c)
            st = a.wait_connected(3)
            time.sleep(0.2)
        finally:
            gaps = watch.stop()
        lengths = watch.lengths()
        print("rolling restart: %s" % watch.summary())
        self.assertEqual(len(gaps), 3, gaps)  # one a node: each is left once
        self.assertEqual([(g[2], g[3]) for g in gaps],
                         [(c.target(c.node(x)), c.target(c.node(y)))
                          for x, y in (("a", "b"), ("b", "c"), ("c", "a"))])
        self.assertLess(max(lengths), 0.3 * xt.SCALE, gaps)
        self.assertEqual(st["failovers"], "3")
        self.assertNotIn("next try in", a.log_text())

    def test_silent_node_is_tried_last(self):
        # a falls silent (SIGSTOP) and is found out by the keepalive; b then
        # holds the session long enough to count as stable, and is killed: c,
        # which never failed, goes before a, which failed more recently.
        c = self.cluster()
        u = self.dns(c.records(prio=(10, 20, 30)))
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        a.wait_connected(server=c.target(c.node("a")))
        c.node("a").process.signal(signal.SIGSTOP)
        try:
            a.wait_connected(5, server=c.target(c.node("b")))
            time.sleep(3.5)
            mark = len(a.log_text())
            t0 = time.monotonic()
            c.node("b").process.signal(signal.SIGKILL)
            st = a.wait_connected(3, server=c.target(c.node("c")))
            self.assertLess(time.monotonic() - t0, 1.0 * xt.SCALE)
            self.assertNotIn("connecting to a.", a.log_text()[mark:])
            self.assertEqual([n["result"] for n in st["nodes"]], ["timeout", "closed", "ok"])
        finally:
            c.node("a").process.signal(signal.SIGCONT)

    def test_every_node_refusing_does_not_spin(self):
        # a refuses the secret, b answers conflict (a stale session of ours),
        # a third peer accepts and closes at once: tried less and less often.
        c = self.cluster(nodes=2)
        c.node("a").must("callbridge", "add-secret", "cb1", input="not-the-secret\n")
        c.node("a").process.signal(signal.SIGHUP)
        xt.wait_until(lambda: "state reloaded" in c.node("a").log_text(), 3, "reload")
        stale = c.node("b").component("cb1")
        self.cleanups.append(stale.close)
        peer = ScriptedPeer("127.0.0.4")
        self.cleanups.append(peer.stop)
        servers = ["%s:%d" % n.address for n in c.nodes] + ["127.0.0.4:%d" % peer.address[1]]
        a = self.agent(server=" ".join(servers), backoff_min=1, backoff_max=8)
        a.wait_status(lambda s: s["state"] == "backoff", 5, "backoff")
        cpu0, t0 = a.cpu_seconds(), time.monotonic()
        time.sleep(6)
        cpu, wall = a.cpu_seconds() - cpu0, time.monotonic() - t0
        attempts = a.log_text().count("connecting to ")
        # Holds of 0.5-1, 1-2, 2-4, 4-8 s a node: at most 5 attempts each in 7 s.
        self.assertLessEqual(attempts, 15, a.log_text())
        self.assertLess(cpu / wall, 0.01, "cpu %.3f s over %.1f s" % (cpu, wall))
        st = a.status()
        self.assertEqual([n["result"] for n in st["nodes"]], ["auth", "conflict", "closed"])

    def test_sighup_when_not_connected_tries_at_once(self):
        # The records are missing: NXDOMAIN, which libunbound keeps for the
        # zone's negative TTL (60 s). The operator adds them and sends SIGHUP.
        c = self.cluster(nodes=1)
        u = self.dns([])
        a = self.agent(u, backoff_min=30, backoff_max=60)
        a.wait_status(lambda s: s["state"] == "backoff" and s.get("last-error") == "dns", 5)
        for r in c.records(prio=(10,)):
            u.control("local_data", r)
        t0 = time.monotonic()
        a.process.signal(signal.SIGHUP)
        a.wait_connected(1.0 * xt.SCALE)
        print("connected %.0f ms after SIGHUP" % ((time.monotonic() - t0) * 1000))
        self.assertIn("not connected: trying again now", a.log_text())
        # Connected: a SIGHUP that changes nothing keeps the session.
        a.process.signal(signal.SIGHUP)
        xt.wait_until(lambda: "the session is unchanged" in a.log_text(), 3, "reload")
        self.assertEqual(a.status()["failovers"], "0")
        self.assertEqual(a.log_text().count("connected to a."), 1)

    def test_records_change_after_ttl(self):
        c = self.cluster()
        u = self.dns(c.records(prio=(10, 20, 20), ttl=2))
        a = self.agent(u)
        a.wait_connected(server=c.target(c.node("a")))
        u.set_records(SRV_NAME, [srv_record(10, 1, c.node("c").address[1], "c." + DOMAIN, 2)])
        st = a.wait_connected(seconds=6, server=c.target(c.node("c")))
        self.assertEqual([n["target"] for n in st["nodes"]], ["c.tptac9.test"])

    def test_ttl_expiring_during_failover(self):
        # Found by the chaos soak: the records' TTL ran out while the agent
        # was failing over within a round (no new resolve), and the session
        # it then set up never looked at the records again.
        c = self.cluster()
        u = self.dns(c.records(prio=(10, 20, 30), ttl=1))
        a = self.agent(u)  # handshake-timeout 3 s: longer than the TTL
        a.wait_connected(server=c.target(c.node("a")))
        b = c.node("b")
        b.process.signal(signal.SIGSTOP)  # accepts, never answers
        try:
            c.node("a").process.signal(signal.SIGKILL)
            a.wait_connected(seconds=6, server=c.target(c.node("c")))
        finally:
            b.process.signal(signal.SIGCONT)
        u.set_records(SRV_NAME, [srv_record(20, 1, b.address[1], b.host, 1)])
        a.wait_connected(seconds=5, server=c.target(b))
        self.assertIn("c.tptac9.test:%d is no longer in the SRV records; moving" %
                      c.node("c").address[1], a.log_text())

    def test_refresh_answer_after_the_drop(self):
        # The answer to a TTL refresh asked while connected comes back after
        # the session dropped, while the agent backs off: it must not start
        # an attempt of its own (the backoff would then resolve again under
        # a live session and open a second one, leaking the first).
        c = self.cluster(nodes=1)
        u = self.dns(c.records(ttl=1))
        proxy = HoldingDNSProxy(u.port)
        self.cleanups.append(proxy.stop)
        a = self.agent(dns_server=proxy.address, backoff_min=3, backoff_max=3)
        n = c.node("a")
        a.wait_connected()
        proxy.holding = True
        xt.wait_until(lambda: 33 in proxy.held_types(), 5, "a refresh of the SRV records")
        n.process.signal(signal.SIGKILL)
        n.process.wait()
        a.wait_status(lambda s: s["state"] == "backoff", 3, "backoff")
        c.restart(n)
        proxy.release()
        a.wait_connected(seconds=6)
        time.sleep(4)  # past the backoff that was in force
        st = a.wait_connected()
        self.assertEqual(st["failovers"], "1")
        log = a.log_text()
        self.assertNotIn("no longer in the SRV records", log)
        self.assertNotIn("conflict", log)
        self.assertEqual(log.count("connected to a.tptac9.test"), 2, log)
        self.assertEqual(n.must("status").stdout.count("Component  : " + CB1), 1)

    def test_conflict_on_kick_new_node(self):
        c = self.cluster()
        stale = c.node("a").component("cb1")  # a stale session of ours, as after a crash
        u = self.dns(c.records())
        a = self.agent(u)
        st = a.wait_connected()
        self.assertNotEqual(st["server"], c.target(c.node("a")))
        self.assertEqual(st["nodes"][0]["result"], "conflict")
        self.assertEqual(st["last-error"], "conflict")
        self.assertIn("already connected", st["last-error-text"])
        stale.close()

    def test_conflict_alone_does_not_spin(self):
        c = self.cluster(nodes=1)
        c.node("a").component("cb1")
        u = self.dns(c.records())
        a = self.agent(u, backoff_min=1, backoff_max=2)
        a.wait_status(lambda s: s["state"] == "backoff" and s.get("last-error") == "conflict", 5)
        cpu0 = a.cpu_seconds()
        time.sleep(3)
        attempts = c.node("a").log_text().count("Component already connected")
        self.assertLessEqual(attempts, 5, c.node("a").log_text())
        self.assertLess(a.cpu_seconds() - cpu0, 0.05)

    def test_accept_and_close_does_not_spin(self):
        peer = ScriptedPeer("127.0.0.4")
        self.cleanups.append(peer.stop)
        a = self.agent(server="127.0.0.4:%d" % peer.address[1], backoff_min=1, backoff_max=2)
        a.wait_status(lambda s: s["state"] == "backoff" and s.get("last-error") == "closed", 5)
        cpu0, n0 = a.cpu_seconds(), peer.accepted
        time.sleep(3)
        # backoff 1 then 2 s (with jitter): a handful of attempts, not thousands
        self.assertLessEqual(peer.accepted - n0, 5)
        self.assertLess(a.cpu_seconds() - cpu0, 0.05)
        self.assertIn("before the handshake completed", a.status()["last-error-text"])

    def test_see_other_host(self):
        c = self.cluster(nodes=1)
        target = "%s:%d" % c.nodes[0].address
        peer = ScriptedPeer("127.0.0.4", (
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
            "xmlns:stream='http://etherx.jabber.org/streams' id='x1' from='cb1.tptac9.test'>"
            "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>%s"
            "</see-other-host></stream:error></stream:stream>" % target).encode())
        self.cleanups.append(peer.stop)
        a = self.agent(server="127.0.0.4:%d" % peer.address[1])
        st = a.wait_connected()
        self.assertEqual(st["server"], target)
        self.assertEqual(st["nodes"][0]["result"], "stream")
        self.assertIn("see-other-host", st["last-error-text"])
        self.assertEqual(peer.accepted, 1)

    def test_system_shutdown_fails_over_at_once(self):
        c = self.cluster()
        u = self.dns(c.records())
        a = self.agent(u)
        st = a.wait_connected(server=c.target(c.node("a")))
        t0 = time.monotonic()
        c.node("a").process.signal(signal.SIGTERM)
        st = a.wait_status(lambda s: s["state"] == "connected" and
                           s["server"] != c.target(c.node("a")), 3, "failover")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(st["last-error"], "stream")
        self.assertIn("system-shutdown", st["last-error-text"])
        self.assertEqual(st["nodes"][0]["result"], "stream")

    def test_lone_dot_target_means_no_service(self):
        u = self.dns([srv_record(0, 0, 0, "")])
        a = self.agent(u)
        st = a.wait_status(lambda s: s["state"] == "backoff", 5, "backoff")
        self.assertEqual(st["last-error"], "dns")
        self.assertIn(SRV_NAME, st["last-error-text"])
        self.assertEqual(st["nodes"], [])

    def test_status_heartbeat(self):
        c = self.cluster(nodes=1)
        u = self.dns(c.records())
        a = self.agent(u, keepalive=1)
        st = a.wait_connected()
        first = st["updated"]
        st = a.wait_status(lambda s: s["updated"] != first, 3, "a newer 'updated'")
        self.assertEqual(st["state"], "connected")

    def test_secret_appears_nowhere(self):
        # Not in the log (debug level, through an auth failure and a reload), the
        # status file, the argument list or the environment.
        secret = "Zq9-distinctive-s3cret-7Kp"
        c = self.cluster(nodes=2)
        c.node("a").must("callbridge", "add-secret", "cb1", input="other-secret\n")
        c.node("a").process.signal(signal.SIGHUP)
        for n in c.nodes[1:]:
            n.must("callbridge", "add-secret", "cb1", input=secret + "\n")
            n.process.signal(signal.SIGHUP)
        xt.wait_until(lambda: all("state reloaded" in n.log_text() for n in c.nodes), 3,
                      "reloads")
        u = self.dns(c.records())
        a = self.agent(u, start=False, secret=secret)
        a.start()
        st = a.wait_connected()
        self.assertEqual(st["nodes"][0]["result"], "auth")  # one failure logged, too
        pid = a.pid
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.assertNotIn(secret.encode(), f.read())
        with open("/proc/%d/environ" % pid, "rb") as f:
            self.assertNotIn(secret.encode(), f.read())
        a.process.signal(signal.SIGHUP)
        xt.wait_until(lambda: "session is unchanged" in a.log_text(), 3, "reload")
        a.stop()
        self.assertNotIn(secret, a.log_text())
        self.assertNotIn(secret, open(a.status_path).read())

    # ---------------------------------------------------------- signals

    def test_sigterm_closes_the_stream(self):
        c = self.cluster()
        u = self.dns(c.records())
        a = self.agent(u)
        st = a.wait_connected()
        node = c.by_server(st["server"])
        a.process.signal(signal.SIGTERM)
        self.assertEqual(a.process.wait(5), 0)
        st = a.status()
        self.assertEqual(st["state"], "stopped")
        xt.wait_until(lambda: "cb1.tptac9.test" in node.log_text() and
                      "closed its stream" in node.log_text(), 3, "server saw the close")
        r = self.xcomp("status", "-s", a.status_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("stopped", r.stdout)

    def test_sighup_with_new_secret(self):
        c = self.cluster()
        u = self.dns(c.records())
        a = self.agent(u)
        st = a.wait_connected()
        since = st["connected-since"]
        # Nothing that matters changed: the session stays.
        a.process.signal(signal.SIGHUP)
        xt.wait_until(lambda: "session is unchanged" in a.log_text(), 3, "reload")
        self.assertEqual(a.status()["connected-since"], since)
        for n in c.nodes:
            n.must("callbridge", "add-secret", "cb1", input="n3w-s3cret\n")
            n.process.signal(signal.SIGHUP)
        a.write_secret("n3w-s3cret")
        a.process.signal(signal.SIGHUP)
        xt.wait_until(lambda: "reconnecting" in a.log_text(), 3, "reconnect")
        xt.wait_until(lambda: "".join(n.log_text() for n in c.nodes).count(
            "cb1.tptac9.test authenticated") == 2, 5, "a second authentication")
        a.wait_connected()
        self.assertNotIn("n3w-s3cret", a.log_text())
        self.assertNotIn("n3w-s3cret", open(a.status_path).read())

    # ---------------------------------------------------------- configuration

    def test_world_readable_secret_refused(self):
        a = self.agent(start=False)
        a.write_secret("s3cret", mode=0o644)
        r = subprocess.run([xt.program("xcompd"), "-f", a.conf_path], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("readable by group or others (mode 644); run: chmod 600 %s" %
                      a.secret_path, r.stderr)

    def test_config_error_names_file_and_line(self):
        a = self.agent(start=False)
        with open(a.conf_path, "a") as f:
            f.write("keepalive = soon\n")
        lines = open(a.conf_path).read().count("\n")
        for argv in (["-f", a.conf_path], ["-t", "-f", a.conf_path]):
            r = subprocess.run([xt.program("xcompd")] + argv, capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertIn("%s:%d: keepalive: expected a whole number" % (a.conf_path, lines),
                          r.stderr)
        a.write_conf(a.conf)  # the file is good again: overrides apply on top of it
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path, "-o", "keepalive=5"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration %s OK" % a.conf_path, r.stdout)
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path, "-o", "keepalive=0"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("-o:1: keepalive: expected a whole number", r.stderr)
        r = subprocess.run([xt.program("xcompd"), "-f", a.conf_path, "-o", "colour=blue"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown key \"colour\"", r.stderr)

    def test_config_limits(self):
        """A line over 4096 bytes and a secret over 1024 characters: -t and a
        start both refuse, exit 1, naming the file and line or the secret file."""
        a = self.agent(start=False)
        with open(a.conf_path, "a") as f:
            f.write("status-file = /run/%s\n" % ("x" * 5000))
        lines = open(a.conf_path).read().count("\n")
        for argv in (["-t", "-f", a.conf_path], ["-f", a.conf_path]):
            r = subprocess.run([xt.program("xcompd")] + argv, capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 1)
            self.assertIn("%s:%d: line longer than 4096 bytes" % (a.conf_path, lines), r.stderr)
        a.write_conf(a.conf)
        a.write_secret("k" * 1025)
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("secret-file %s: the secret is longer than 1024 characters" %
                      a.secret_path, r.stderr)
        a.write_secret("k" * 1024)
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_fixed_servers_skip_dns(self):
        c = self.cluster(nodes=2)
        a = self.agent(server="%s:%d %s:%d" % (c.nodes[0].address + c.nodes[1].address),
                       dns_server="127.0.0.1@9")
        st = a.wait_connected()
        self.assertEqual(st["server"], "127.0.0.1:%d" % c.nodes[0].address[1])

    # ---------------------------------------------------------- limits

    def test_largest_srv_answer(self):
        """As many SRV records as one DNS message carries (64 KiB, here 2,600 and
        more): the agent orders them, uses the first 32 nodes, says how many it
        left out, and connects as fast as with three records, at little CPU."""
        c = self.cluster()
        records = c.records(prio=(10, 10, 10))
        targets = [n.host for n in c.nodes]
        # Decoys after the cluster, with single-label targets (NXDOMAIN here)
        # so that as many as possible fit in the 65,535 bytes of one answer.
        while srv_answer_size(targets + ["d%d." % len(targets)]) <= 65535:
            records.append("%s. 60 IN SRV 20 %d 5347 d%d." % (SRV_NAME, len(targets) % 100,
                                                             len(targets)))
            targets.append("d%d." % len(targets))
        total = len(targets)
        self.assertGreater(total, 2600)
        u = self.dns(records)
        t0 = time.monotonic()
        a = self.agent(u)
        st = a.wait_connected(xt.timeout(5))
        elapsed, cpu = time.monotonic() - t0, a.cpu_seconds()
        sys.stderr.write("%d SRV records: connected in %.3f s, agent CPU %.3f s\n" % (
            total, elapsed, cpu))
        self.assertLess(elapsed, xt.timeout(2.0))
        self.assertLess(cpu, xt.timeout(0.5))
        self.assertEqual(len(st["nodes"]), 32)
        self.assertEqual(sorted(n["target"] for n in st["nodes"][:3]),
                         [n.host for n in c.nodes])
        self.assertIn("%s: %d SRV records; trying the first 32 nodes in RFC 2782 order and "
                      "leaving out the other %d records" % (SRV_NAME, total, total - 32),
                      a.log_text())

    def test_srv_records_beyond_one_dns_message(self):
        """10,000 SRV records under one name are some 360 KB: no DNS message
        carries them, so unbound answers truncated, with no records, even over
        TCP. The agent reports a dns error that names the query, quickly, and
        waits in backoff without spinning."""
        records = [srv_record(10, i % 100, 5347, "n%d.%s" % (i, DOMAIN)) for i in range(10000)]
        self.assertGreater(srv_answer_size(["n%d.%s" % (i, DOMAIN) for i in range(10000)]),
                           65535)
        u = self.dns(records)
        t0 = time.monotonic()
        a = self.agent(u, backoff_min=1, backoff_max=2)
        st = a.wait_status(lambda s: s.get("last-error") == "dns", xt.timeout(5), "dns error")
        elapsed = time.monotonic() - t0
        self.assertIn(SRV_NAME, st["last-error-text"])
        self.assertIn("SERVFAIL", st["last-error-text"])
        cpu0 = a.cpu_seconds()
        time.sleep(2)
        sys.stderr.write("10000 SRV records: dns error after %.3f s, agent CPU %.3f s "
                         "then %.3f s over 2 s of backoff\n" % (
                             elapsed, cpu0, a.cpu_seconds() - cpu0))
        self.assertLess(elapsed, xt.timeout(2.0))
        self.assertLess(a.cpu_seconds() - cpu0, xt.timeout(0.1))

    def upstream_sends(self, payload):
        """An agent whose only node authenticates it, then sends payload;
        the status once it has given up on the node, and what it sent back."""
        peer = ScriptedPeer("127.0.0.4", (SERVER_HEADER + "<handshake/>" + payload).encode(),
                            keep_reading=True)
        self.cleanups.append(peer.stop)
        a = self.agent(server="127.0.0.4:%d" % peer.address[1], backoff_min=5, backoff_max=10,
                       name="xcompd-%d" % peer.address[1])
        st = a.wait_status(lambda s: s.get("last-error") == "stream", xt.timeout(5), "stream")
        xt.wait_until(lambda: peer.received, xt.timeout(3), "the agent's close")
        a.stop()
        return st, peer.received[0].decode()

    def test_upstream_xml_limits(self):
        """A node that breaks a parser limit gets policy-violation with a text
        that names the limit; the status says the same to the operator."""
        cases = [
            ("<message from='x@%s' to='%s'><body>%s</body></message>" % (
                DOMAIN, CB1, "b" * (1 << 20)), "stanza larger than 1048576 bytes"),
            ("<message>%s" % ("<a>" * 40), "elements nested deeper than 32 levels"),
            ("<message%s/>" % "".join(" a%d='v'" % i for i in range(65)),
             "more than 64 attributes on one element"),
            ("<message%s/>" % "".join(" xmlns:p%d='urn:p%d'" % (i, i) for i in range(17)),
             "more than 16 namespace declarations on one element"),
            ("<message to='%s'/>" % ("t" * 8193), "value of attribute to longer than 8192 bytes"),
        ]
        for payload, text in cases:
            with self.subTest(text=text):
                st, sent = self.upstream_sends(payload)
                self.assertIn("sent bad XML: %s (policy-violation)" % text,
                              st["last-error-text"])
                self.assertIn("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                              "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>%s</text>" %
                              text, sent)
        # The stanza limit itself passes: a 1 MiB stanza is delivered, not refused.
        body = "b" * ((1 << 20) - len("<message><body></body></message>"))
        peer = ScriptedPeer("127.0.0.5", (SERVER_HEADER + "<handshake/><message><body>" + body +
                                          "</body></message>").encode())
        self.cleanups.append(peer.stop)
        a = self.agent(server="127.0.0.5:%d" % peer.address[1], name="xcompd-exact")
        a.wait_status(lambda s: s.get("last-error") == "closed", xt.timeout(5), "the close")
        self.assertNotIn("sent bad XML", a.log_text())

    # ---------------------------------------------------------- xcomp

    def test_xcomp_status_exit_codes(self):
        c = self.cluster(nodes=1)
        u = self.dns(c.records())
        a = self.agent(u)
        a.wait_connected()
        r = self.xcomp("status", "-s", a.status_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"^XMPP connection: connected to a\.tptac9\.test:\d+ "
                         r"\(127\.0\.0\.1\) for ")
        r = self.xcomp("status", "-s", a.status_path, "--json")
        self.assertEqual(r.returncode, 0)
        import json
        j = json.loads(r.stdout)
        self.assertEqual(j["state"], "connected")
        self.assertEqual(j["nodes"][0]["target"], "a.tptac9.test")
        a.process.signal(signal.SIGKILL)
        a.process.wait()
        r = self.xcomp("status", "-s", a.status_path)
        self.assertEqual(r.returncode, 3, r.stdout)
        self.assertIn("not running", r.stdout)
        r = self.xcomp("status", "-s", self.wd.join("nothing-here"))
        self.assertEqual(r.returncode, 3)
        self.assertIn("cannot read the status file", r.stderr)

    # ---------------------------------------------------------- metrics

    def metrics_now(self, a, prom):
        """The metrics file and what xcomp status --prometheus prints from the
        status file; read again while the agent is between the two writes."""
        got, want = None, None
        for _ in range(40):
            try:
                got = open(prom).read()
                shutil.copy(a.status_path, self.wd.join("snapshot.status"))
            except FileNotFoundError:
                time.sleep(0.05)
                continue
            r = self.xcomp("status", "-s", self.wd.join("snapshot.status"), "--prometheus")
            want = r.stdout
            if got == want:
                return got
            time.sleep(0.05)
        self.assertEqual(got, want, "metrics-file and xcomp status --prometheus differ")

    def promtool_check(self, text):
        if shutil.which("promtool") is None:
            return print("SKIP promtool check: no promtool (Debian package prometheus)")
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=xt.timeout(20))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + text)

    def test_metrics_file(self):
        c = self.cluster()
        u = self.dns(c.records())
        prom = self.wd.join("xcomp.prom")
        a = self.agent(u, metrics_file=prom)
        a.wait_connected(server=c.target(c.node("a")))
        m = self.metrics_now(a, prom)
        self.promtool_check(m)
        self.assertIn('xcomp_connected{component="%s"} 1\n' % CB1, m)
        self.assertIn('xcomp_state{component="%s",state="connected"} 1\n' % CB1, m)
        self.assertIn('xcomp_failovers_total{component="%s"} 0\n' % CB1, m)
        self.assertIn('xcomp_last_failover_gap_seconds{component="%s"} 0.000\n' % CB1, m)
        self.assertIn('node="%s",result="ok"} 1\n' % c.target(c.node("a")), m)
        self.assertIn("# TYPE xcomp_failovers_total counter\n", m)
        c.node("a").process.signal(signal.SIGKILL)
        st = a.wait_status(lambda s: s["state"] == "connected" and
                           s["server"] != c.target(c.node("a")), 3, "failover")
        gap = float(st["last-failover-gap"])
        self.assertTrue(0 < gap < 3, st)
        m = self.metrics_now(a, prom)
        self.promtool_check(m)
        self.assertIn('xcomp_failovers_total{component="%s"} 1\n' % CB1, m)
        self.assertIn('xcomp_last_failover_gap_seconds{component="%s"} %s\n' % (
            CB1, st["last-failover-gap"]), m)
        self.assertIn('node="%s",result="closed"} 1\n' % c.target(c.node("a")), m)
        # Replaced through a rename: no temporary file is left for the collector.
        self.assertEqual(sorted(f for f in os.listdir(self.wd.path) if "prom" in f),
                         ["xcomp.prom"])
        a.stop()
        m = self.metrics_now(a, prom)
        self.assertIn('xcomp_state{component="%s",state="stopped"} 1\n' % CB1, m)
        self.assertIn('xcomp_connected{component="%s"} 0\n' % CB1, m)

    def test_metrics_file_errors(self):
        a = self.agent(start=False, metrics_file=self.wd.join("xcomp.txt"))
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("metrics-file: expected a file name ending in .prom", r.stderr)
        a.write_conf(dict(a.conf, **{"metrics-file": None}))
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path,
                            "-o", "metrics-file=" + a.status_path + ".prom",
                            "-o", "status-file=" + a.status_path + ".prom"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("metrics-file and status-file are the same file", r.stderr)
        r = self.xcomp("status", "--json", "--prometheus", "-s", a.status_path)
        self.assertEqual(r.returncode, 2)

    def test_xcomp_resolve(self):
        c = self.cluster()
        u = self.dns(c.records(prio=(10, 20, 20), weight=(5, 75, 25)))
        r = self.xcomp("resolve", "--dns-server", u.address, "--samples", "4000", DOMAIN)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("%s: 3 SRV records" % SRV_NAME, r.stdout)
        self.assertRegex(r.stdout, r"10\s+5\s+%d\s+a\.tptac9\.test\s+60\s+127\.0\.0\.1" %
                         c.node("a").address[1])
        self.assertRegex(r.stdout, r"1\. a\.tptac9\.test:%d" % c.node("a").address[1])
        # Priority 10 always comes first.
        self.assertRegex(r.stdout, r"a\.tptac9\.test\s+4000\s+100\.0 %")
        r = self.xcomp("resolve", "--dns-server", u.address, "nonexistent.test")
        self.assertEqual(r.returncode, 1)
        self.assertIn("_xmpp-component._tcp.nonexistent.test", r.stdout)

    # ---------------------------------------------------------- what a new operator tripped over

    def xcompd(self, *args):
        return subprocess.run([xt.program("xcompd")] + list(args), capture_output=True, text=True,
                              timeout=xt.timeout(10))

    def test_srv_name_as_server(self):
        """An SRV name in "server": -t warns and says to remove "server"; the
        agent warns at start, and its lookup error names the host once."""
        u = self.dns([a_record("a." + DOMAIN, "127.0.0.1")])
        a = self.agent(u, start=False, server=SRV_NAME + ":5223")
        warning = ("%s: server %s is an SRV name, not a host; remove \"server\" and the agent "
                   "looks up the SRV records (%s) itself" % (a.conf_path, SRV_NAME, SRV_NAME))
        r = self.xcompd("-t", "-f", a.conf_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("xcompd: warning: " + warning, r.stderr)
        self.assertIn("OK", r.stdout)
        a.start()
        self.cleanups.append(a.stop)
        st = a.wait_status(lambda s: s.get("last-error") == "dns", xt.timeout(5), "dns error")
        self.assertEqual(st["last-error-text"], "no DNS A or AAAA records for %s "
                         "(NXDOMAIN (no such domain))" % SRV_NAME)
        self.assertIn(warning, a.log_text())
        # The other server entries of a list are not SRV names: no warning.
        a.write_conf(dict(a.conf, server="cb_1.%s:5223 a.%s" % (DOMAIN, DOMAIN)))
        r = self.xcompd("-t", "-f", a.conf_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)

    def test_second_agent_on_one_status_file(self):
        """A second xcompd with the same status file refuses to start, naming
        the first one's pid; -t beside the first is fine; once the first has
        stopped, the second starts."""
        c = self.cluster(nodes=1)
        u = self.dns(c.records())
        first = self.agent(u)
        first.wait_connected()
        second = self.agent(u, start=False, name="xcompd-2", status_file=first.status_path)
        second.status_path = first.status_path
        r = self.xcompd("-f", second.conf_path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("xcompd: status-file %s is in use by another xcompd (pid %d holds %s.lock)"
                      % (first.status_path, first.pid, first.status_path), r.stderr)
        st = first.status()
        self.assertEqual(int(st["pid"]), first.pid)
        self.assertEqual(st["state"], "connected")
        r = self.xcompd("-t", "-f", second.conf_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(first.stop(), 0)
        second.start()
        self.cleanups.append(second.stop)
        second.wait_status(lambda s: s.get("pid") == str(second.pid) and
                           s.get("state") == "connected", xt.timeout(5), "the second agent")

    def test_reload_onto_a_held_status_file(self):
        """SIGHUP naming a status file that another agent holds keeps the old
        configuration; naming a free one moves the lock there."""
        first = self.agent(server="127.0.0.5:9", backoff_min=30, backoff_max=60)
        first.wait_status(lambda s: s.get("state") == "backoff", xt.timeout(5), "backoff")
        second = self.agent(server="127.0.0.5:9", backoff_min=30, backoff_max=60,
                            name="xcompd-2")
        second.wait_status(lambda s: s.get("state") == "backoff", xt.timeout(5), "backoff")
        second.write_conf(dict(second.conf, **{"status-file": first.status_path}))
        second.process.signal(signal.SIGHUP)
        st = second.wait_status(lambda s: s.get("last-error") == "config", xt.timeout(5),
                                "config error")
        self.assertEqual(st["last-error-text"], "configuration not reloaded: status-file %s is "
                         "in use by another xcompd (pid %d holds %s.lock); stop that one, or "
                         "give this one a status-file of its own" % (
                             first.status_path, first.pid, first.status_path))
        self.assertEqual(int(first.status()["pid"]), first.pid)
        moved = self.wd.join("moved.status")
        second.write_conf(dict(second.conf, **{"status-file": moved}))
        second.process.signal(signal.SIGHUP)
        xt.wait_until(lambda: os.path.exists(moved), xt.timeout(5), "the new status file")
        r = self.xcompd("-f", second.conf_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("pid %d holds %s.lock" % (second.pid, moved), r.stderr)

    def test_help(self):
        for argv in (["xcompd", "--help"], ["xcompd", "-h"], ["xcomp-server", "--help"],
                     ["xcomp-server", "-h"], ["xcomp", "--help"], ["xcomp", "-h"]):
            r = subprocess.run([xt.program(argv[0])] + argv[1:], capture_output=True, text=True,
                               timeout=xt.timeout(10))
            self.assertEqual(r.returncode, 0, "%s: %s" % (argv, r.stderr))
            self.assertTrue(r.stdout.startswith("usage: " + argv[0]), r.stdout)
            self.assertEqual(r.stderr, "")
        r = subprocess.run([xt.program("xcomp-server"), "--help"], capture_output=True, text=True,
                           timeout=xt.timeout(10))
        self.assertIn("usage: xcomp-server [-hv] -d DIR", r.stdout)
        # The default configuration is SYSCONFDIR/xcomp/xcompd.conf, where
        # make install and the Debian package put it, for xcompd and xcomp alike.
        r = self.xcompd("-h")
        m = re.search(r"\(default (/\S*)/xcomp/xcompd\.conf\)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        r = subprocess.run([xt.program("xcomp"), "-h"], capture_output=True, text=True,
                           timeout=xt.timeout(10))
        self.assertIn("(CONFIG: default %s/xcomp/xcompd.conf)" % m.group(1), r.stdout)
        r = self.xcompd("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^xcompd \S+\n$")
        r = self.xcompd("--no-such-option")
        self.assertEqual(r.returncode, 1)
        self.assertIn("usage: xcompd", r.stderr)

    def test_xcomp_status_json_without_status(self):
        """No status file, one that cannot be read, one that is not a status
        file, and a stale one: --json prints one object that says why, exit 3."""
        import json
        missing = self.wd.join("no-status-here")
        r = self.xcomp("status", "-s", missing, "--json")
        self.assertEqual(r.returncode, 3)
        j = json.loads(r.stdout)
        self.assertEqual((j["verdict"], j["state"], j["status-file"], j["nodes"]),
                         ("unknown", "unknown", missing, []))
        self.assertEqual(j["reason"], "cannot read the status file %s: No such file or directory"
                         % missing)
        r = self.xcomp("status", "-s", self.wd.path, "--json")  # a directory
        self.assertEqual(r.returncode, 3)
        self.assertEqual(json.loads(r.stdout)["reason"], "cannot read the status file %s: "
                         "Is a directory" % self.wd.path)
        garbage = self.wd.join("garbage")
        with open(garbage, "w") as f:
            f.write("not a status file\n")
        r = self.xcomp("status", "-s", garbage, "--json")
        self.assertEqual(r.returncode, 3)
        j = json.loads(r.stdout)
        self.assertEqual(j["state"], "unknown")
        self.assertIn("is not a status file", j["reason"])
        # Stale: the agent was killed; the file still says what it said, and why exit is 3.
        a = self.agent(self.dns([a_record("a." + DOMAIN, "127.0.0.1")]))
        a.wait_status(lambda s: s.get("state") == "backoff", xt.timeout(5), "backoff")
        pid = a.pid
        a.process.signal(signal.SIGKILL)
        a.process.wait()
        r = self.xcomp("status", "-s", a.status_path, "--json")
        self.assertEqual(r.returncode, 3)
        j = json.loads(r.stdout)
        self.assertEqual(j["verdict"], "stale")
        self.assertEqual(j["reason"], "the agent (pid %d) is not running" % pid)
        self.assertEqual(j["pid"], pid)

    def test_unknown_key_suggests_the_nearest(self):
        a = self.agent(start=False)
        r = self.xcompd("-t", "-f", a.conf_path, "-o", "keep-alive=5")
        self.assertEqual(r.returncode, 1)
        self.assertIn('-o:1: unknown key "keep-alive"; did you mean "keepalive"?', r.stderr)
        with open(a.conf_path, "a") as f:
            f.write("handshake_timout = 5\n")
        lines = open(a.conf_path).read().count("\n")
        for argv in (["-t", "-f", a.conf_path], ["-f", a.conf_path]):
            r = self.xcompd(*argv)
            self.assertEqual(r.returncode, 1)
            self.assertIn('%s:%d: unknown key "handshake_timout"; did you mean '
                          '"handshake-timeout"?' % (a.conf_path, lines), r.stderr)

    def test_status_directory_missing(self):
        """-t and a start say the same words about a status directory that
        cannot be created; one missing level is still created at start."""
        a = self.agent(start=False, server="127.0.0.5:9")
        deep = self.wd.join("no", "such", "status")
        words = ("xcompd: status-file %s: directory %s does not exist; create it (mkdir -p %s) "
                 "or set status-file\n" % (deep, os.path.dirname(deep), os.path.dirname(deep)))
        for argv in (["-t"], []):
            r = self.xcompd(*argv, "-f", a.conf_path, "-o", "status-file=" + deep)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stderr, words)
        self.assertFalse(os.path.exists(self.wd.join("no")))
        one = self.wd.join("new", "status")
        r = self.xcompd("-t", "-f", a.conf_path, "-o", "status-file=" + one)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(os.path.dirname(one)))
        a.start("-o", "status-file=" + one)
        self.cleanups.append(a.stop)
        xt.wait_until(lambda: os.path.exists(one), xt.timeout(5), "the status file")

    # ---------------------------------------------------------- misspelt SRV records

    def assert_hint(self, records, found, words, status="NXDOMAIN"):
        """The records published under a usual misspelling of SRV_NAME: the status
        file's last-error-text and xcomp status name the one found and the fix."""
        u = self.dns(records)
        a = self.agent(u, backoff_min=1, backoff_max=1)
        text = "no SRV records for %s (%s); found %s instead: %s" % (SRV_NAME, status, found,
                                                                     words)
        st = a.wait_status(lambda s: "found" in s.get("last-error-text", ""), 5, "the hint")
        self.assertEqual((st["state"], st["last-error"], st["last-error-text"]),
                         ("backoff", "dns", text))
        r = self.xcomp("status", "-s", a.status_path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("due to DNS error", r.stdout)
        self.assertIn("\nLast error:      %s (" % text, r.stdout)
        self.assertIn("section DNS.", r.stdout)
        self.assertIn(text, a.log_text())
        return u, a, text

    def test_hint_srv_name_without_the_dot(self):
        name = "_xmpp-component_tcp." + DOMAIN
        # TTL 0: libunbound keeps no copy, so every lookup of it reaches unbound.
        u, a, text = self.assert_hint(
            ["%s. 0 IN SRV 10 60 5347 a.%s." % (name, DOMAIN)], name,
            "the dot between _xmpp-component and _tcp is missing; rename the record")
        u.control("set_option", "log-queries:", "yes")
        # Backoff retries (1 s apart) keep the hint without asking again.
        rounds = a.log_text().count("state resolving")
        xt.wait_until(lambda: a.log_text().count("state resolving") >= rounds + 3,
                      xt.timeout(8), "three more rounds")
        self.assertEqual(a.status()["last-error-text"], text)
        # One query of this test's own, to show that unbound logs them: the only one.
        self.assertEqual(dns_query(u.port, name, qtype=33), 0)
        with open(os.path.join(u.dir, "unbound.log")) as f:
            self.assertEqual(f.read().count(" %s. SRV IN" % name), 1)

    def test_hint_client_records_only(self):
        name = "_xmpp-client._tcp." + DOMAIN
        self.assert_hint(
            ["%s. 60 IN SRV 0 0 5222 a.%s." % (name, DOMAIN),
             a_record("a." + DOMAIN, "127.0.0.1")],
            name, "those are the XMPP client records (port 5222), not for components; publish "
            "_xmpp-component._tcp records with the port the nodes accept components on")

    def test_hint_domain_doubled_by_a_zone_file(self):
        name = "%s.%s" % (SRV_NAME, DOMAIN)
        # NODATA: the name exists (an A record) but has no SRV records.
        self.assert_hint(
            ["%s. 60 IN SRV 10 60 5347 a.%s." % (name, DOMAIN), a_record(SRV_NAME, "127.0.0.9")],
            name, "the record was written in a zone file without the trailing dot, which "
            "appends the zone's name again; write its name as %s. (with the dot)" % SRV_NAME,
            status="NODATA")

    def test_hint_nothing_found(self):
        u = self.dns([a_record("a." + DOMAIN, "127.0.0.1")])
        a = self.agent(u, backoff_min=1, backoff_max=1)
        xt.wait_until(lambda: a.log_text().count("state resolving") >= 3, xt.timeout(5),
                      "a second round")
        self.assertEqual(a.status()["last-error-text"],
                         "%s: NXDOMAIN (no such domain)" % SRV_NAME)
        self.assertNotIn("found", a.log_text())

    def test_xcomp_resolve_address_target(self):
        # An SRV target may be an address: nothing to look up, as for the agent and probe.
        a = "a." + DOMAIN
        u = self.dns([srv_record(10, 10, 5347, "127.0.0.2"), srv_record(20, 10, 5348, a),
                      a_record(a, "127.0.0.1")])
        r = self.xcomp("resolve", "--dns-server", u.address, DOMAIN)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"\n  10 +10 +5347 +127\.0\.0\.2 +- +127\.0\.0\.2 "
                         r"\(an address: nothing to look up\)\n")
        self.assertRegex(r.stdout, r"\n  20 +10 +5348 +a\.tptac9\.test +60 +127\.0\.0\.1\n")
        self.assertNotIn("NXDOMAIN", r.stdout)
        self.assertIn("1. 127.0.0.2:5347", r.stdout)


if __name__ == "__main__":
    sys.exit(xt.main(AgentTest, sys.argv[1:], ("xcompd", "xcomp", "xcomp-server")))
