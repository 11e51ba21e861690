#!/usr/bin/env python3
"""xcompd's event webhooks for real: a real HTTP receiver (http_receiver.py),
real xcomp-server nodes, real unbound; events in order, late delivery after
the receiver was down, and a hanging receiver that must not delay failover.

    python3 tests/integration/test_agent_events.py [NAME-SUBSTRING...]
"""

import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import Agent, Cluster, Unbound, rss_kib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class EventsTest(xt.LabTest):
    prefix = "events-"

    def receiver(self, mode="ok"):
        self.control = self.wd.join("control")
        self.out = self.wd.join("events.jsonl")
        with open(self.control, "w") as f:
            f.write(mode)
        port_file = self.wd.join("port")
        p = xt.Process([sys.executable, os.path.join(HERE, "http_receiver.py"), "--port-file",
                        port_file, "--out", self.out, "--control", self.control],
                       self.wd.path, "receiver").start()
        self.cleanups.append(p.stop)
        self.receiver_process = p
        xt.wait_for_file(port_file, 5, p)
        return "http://127.0.0.1:%s/events" % open(port_file).read().strip()

    def mode(self, mode):
        with open(self.control, "w") as f:
            f.write(mode)

    def events(self):
        try:
            with open(self.out) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def setup_agent(self, url, **keys):
        c = Cluster(self.wd.path).start()
        self.cleanups.append(c.stop)
        u = Unbound(self.wd.path, c.records()).start()
        self.cleanups.append(u.stop)
        a = Agent(self.wd.path, dns_server=u.address, event_url=url, **keys).start()
        self.cleanups.append(a.stop)
        return c, a

    def test_state_changes_in_order(self):
        url = self.receiver()
        c, a = self.setup_agent(url)
        a.wait_connected()
        c.node("a").process.signal(signal.SIGKILL)
        a.wait_status(lambda s: s["failovers"] == "1" and s["state"] == "connected", 3,
                      "failover")
        xt.wait_until(lambda: len(self.events()) >= 7, 5, "seven events")
        ev = self.events()
        states = [e["state"] for e in ev]
        self.assertEqual(states[:4], ["resolving", "connecting", "authenticating", "connected"])
        self.assertEqual(states[4:7], ["connecting", "authenticating", "connected"])
        last = ev[6]
        self.assertEqual(set(last), {"event", "component", "state", "server", "address", "since",
                                     "last-error", "last-error-text"})
        self.assertEqual(last["event"], "state")
        self.assertEqual(last["component"], "cb1.tptac9.test")
        self.assertEqual(last["last-error"], "closed")
        self.assertIn("a.tptac9.test", last["last-error-text"])
        self.assertEqual(ev[0]["last-error"], None)
        self.assertEqual(a.status()["events-dropped"], "0")

    def test_receiver_down_then_up(self):
        url = self.receiver(mode="down")
        c, a = self.setup_agent(url)
        a.wait_connected()
        time.sleep(0.5)
        self.assertEqual(self.events(), [])
        self.mode("ok")
        xt.wait_until(lambda: len(self.events()) >= 4, 8, "late delivery")
        self.assertEqual([e["state"] for e in self.events()][:4],
                         ["resolving", "connecting", "authenticating", "connected"])

    def test_hanging_receiver_does_not_delay_failover(self):
        url = self.receiver(mode="hang")
        c, a = self.setup_agent(url, event_timeout=30)
        a.wait_connected(server="%s:%d" % (c.node("a").host, c.node("a").address[1]))
        t0 = time.monotonic()
        c.node("a").process.signal(signal.SIGKILL)
        a.wait_status(lambda s: s["failovers"] == "1" and s["state"] == "connected", 3,
                      "failover")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(self.events(), [])

    def test_queue_overflow_counted(self):
        url = self.receiver(mode="down")
        c, a = self.setup_agent(url, event_queue=2)
        a.wait_connected()
        st = a.wait_status(lambda s: int(s.get("events-dropped", "0")) >= 1, 3, "drops")
        self.assertGreaterEqual(int(st["events-dropped"]), 1)

    def test_endless_answer(self):
        """A receiver that answers 200 with a body of 1 GiB: the agent reads
        64 KiB of each answer, counts the event delivered (the 2xx came) and
        goes on; its memory does not grow with the answers."""
        url = self.receiver(mode="endless")
        c, a = self.setup_agent(url)
        st = a.wait_connected()
        xt.wait_until(lambda: len(self.events()) >= 4, 5, "four events")
        rss0 = rss_kib(a.pid)
        for failovers in ("1", "2"):
            c.by_server(st["server"]).process.signal(signal.SIGKILL)
            st = a.wait_status(lambda s: s["failovers"] == failovers and
                               s["state"] == "connected", 3, "failover " + failovers)
        xt.wait_until(lambda: len(self.events()) >= 10, 5, "ten events")
        time.sleep(0.3)  # a retry would show up as an eleventh
        states = [e["state"] for e in self.events()]
        self.assertEqual(states, ["resolving", "connecting", "authenticating", "connected"] +
                         ["connecting", "authenticating", "connected"] * 2)
        grown = rss_kib(a.pid) - rss0
        sys.stderr.write("endless answers: agent RSS grew %d KiB over 6 events\n" % grown)
        self.assertLess(grown, 2048)
        self.assertEqual(a.status()["events-dropped"], "0")
        self.assertEqual(a.log_text().count("answers with more than 64 KiB; the agent reads "
                                            "no further"), 1)
        sent = [int(n) for n in re.findall(r"endless answer: (\d+) bytes sent",
                                           self.receiver_process.log_text())]
        self.assertTrue(sent and all(n < 64 << 20 for n in sent), sent)


if __name__ == "__main__":
    sys.exit(xt.main(EventsTest, sys.argv[1:], ("xcompd", "xcomp-server")))
