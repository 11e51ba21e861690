#!/usr/bin/env python3
"""The relay against a real network fault: a steady numbered stream from the
local component (the call bridge) while the active node is blackholed with
nftables inside the test's own network namespace (see netns.py).

    python3 tests/netfault/test_netfault_relay.py [NAME-SUBSTRING...]
"""

import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faulttest as ft  # noqa: E402  (enters the namespace)
import xcomptest as xt  # noqa: E402
import netns  # noqa: E402
from agenttest import DOMAIN, GapWatch, RelayLab  # noqa: E402

CB1 = "cb1." + DOMAIN
CB2 = "cb2." + DOMAIN


def message(i):
    return "<message from='%s' to='%s' id='m%d'><body>number %d</body></message>" % (
        CB1, CB2, i, i)


class Collector:
    """Reads a client's stream in a thread; the message numbers, in arrival order."""

    def __init__(self, client):
        self.client = client
        self.sock = client.sock
        self.text = ""
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.1)
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            self.text += data.decode("utf-8", "replace")

    def numbers(self):
        return [int(x) for x in re.findall(r"id='m(\d+)'", self.text)]

    def stop(self):
        self.running = False
        self.thread.join(2)


class RelayFaults(RelayLab):

    def setUp(self):
        super().setUp()
        self.cleanups.append(netns.clear)

    def stream_through_blackhole(self, replay):
        """Message i every 10 ms for 6 s; node a blackholed from 1 s on."""
        na, nb = self.node("a", "127.0.0.2"), self.node("b", "127.0.0.3")
        a = self.agent([na, nb], relay_replay=replay, keepalive=1, keepalive_timeout=1)
        a.wait_connected(server="%s:%d" % (na.host, na.address[1]))
        local = self.local()
        # cb2, the far end, on each node: it reads through its own node.
        far = [Collector(na.component("cb2")), Collector(nb.component("cb2"))]
        for f in far:
            self.cleanups.append(f.stop)
        watch = GapWatch(a).start()
        self.cleanups.append(watch.stop)
        sent, t0, fault, self.sent_at = 0, time.monotonic(), None, []
        while (time.monotonic() - t0) < 6:
            local.send(message(sent))
            self.sent_at.append(time.monotonic())
            sent += 1
            if fault is None and (time.monotonic() - t0) >= 1:
                fault = netns.drop(*na.address)
                self.t_fault = t_fault = time.monotonic()
            time.sleep(0.01)
        a.wait_connected(seconds=xt.timeout(5), server="%s:%d" % (nb.host, nb.address[1]))
        # Relay traffic written to the blackholed node ends the session by the
        # bound (keepalive + keepalive-timeout + 1 s), not TCP's retransmissions.
        watch.stop()
        moved = watch.gaps[0][0] - t_fault
        ft.figure("relay-replay %s, blackholed mid-stream: the session ended after" % replay,
                  moved, 3.0)
        self.assertLess(moved, 3.0)
        fault.lift()
        time.sleep(1.5)
        got = far[0].numbers() + far[1].numbers()
        missing = sorted(set(range(sent)) - set(got))
        dup = len(got) - len(set(got))
        ft.figure("relay-replay %s, blackholed mid-stream: stanzas sent" % replay, sent,
                  unit="stanzas")
        ft.figure("relay-replay %s, blackholed mid-stream: lost" % replay, len(missing),
                  unit="stanzas")
        ft.figure("relay-replay %s, blackholed mid-stream: delivered twice" % replay, dup,
                  unit="stanzas")
        return sent, got, missing

    def test_replay_on_nothing_lost(self):
        sent, got, missing = self.stream_through_blackhole("on")
        self.assertEqual(missing, [])
        firsts = sorted(set(got), key=got.index)
        self.assertEqual(firsts, sorted(firsts), "order of first arrival")

    def test_replay_off_reports_the_loss(self):
        sent, got, missing = self.stream_through_blackhole("off")
        # Without replay, what was written to the blackholed node is gone: only
        # what was sent within the detection bound (keepalive + keepalive-timeout
        # + 1 s) of the fault.
        late = [i for i in missing if not 0 <= self.sent_at[i] - self.t_fault < 3.0]
        self.assertEqual(late, [], "lost outside the detection window")
        self.assertEqual(len(got), len(set(got)), "nothing twice without replay")
        if missing:
            print("replay off: lost m%d..m%d (%d stanzas), all sent while the node was "
                  "blackholed" % (missing[0], missing[-1], len(missing)))


if __name__ == "__main__":
    sys.exit(ft.main(RelayFaults))
