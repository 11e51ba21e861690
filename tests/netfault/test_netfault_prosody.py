#!/usr/bin/env python3
"""The agent against real network faults with Prosody 0.12 as the XMPP
nodes: the active node's packets dropped with nftables inside the test's own
network namespace (see netns.py). The nodes, their set-up and the round trip
through them (a second component pinging cb1) are test_interop_prosody's.

    python3 tests/netfault/test_netfault_prosody.py [NAME-SUBSTRING...]
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faulttest as ft  # noqa: E402  (enters the namespace)
import netns  # noqa: E402
import xcomptest as xt  # noqa: E402
from test_interop_prosody import ProsodyTest, prosody_binary  # noqa: E402


class ProsodyFaults(ProsodyTest):

    def setUp(self):
        super().setUp()
        self.cleanups.append(netns.clear)

    def blackholed(self, direction):
        a_, b_, c_ = self.nodes()
        u = self.dns([a_, b_, c_])
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        a.wait_connected(server=a_.target)
        t0 = time.monotonic()
        fault = netns.drop(*a_.address, direction=direction)
        st = a.wait_status(lambda s: s["state"] == "connected" and s["server"] != a_.target,
                           xt.timeout(6), "failover")
        moved = time.monotonic() - t0
        ft.figure("Prosody node, packets %s dropped: connected elsewhere" % {
            "both": "to and from it", "to": "to it", "from": "from it"}[direction],
                  moved, 3.0)
        self.assertLess(moved, xt.timeout(3.0))  # keepalive + keepalive-timeout + 1 s
        self.assertEqual(st["last-error"], "timeout")
        self.assertEqual(st["nodes"][0]["result"], "timeout")
        fault.lift()
        # Through the node it moved to, a second component reaches cb1 and back.
        self.ping_cb1(self.by_server((b_, c_), st["server"]))
        return a_, a

    def test_blackhole_both_ways(self):
        self.blackholed("both")

    def test_replies_dropped(self):
        self.blackholed("from")

    def test_requests_dropped(self):
        self.blackholed("to")

    def test_syns_dropped_at_the_first_node(self):
        a_, b_, c_ = self.nodes()
        u = self.dns([a_, b_, c_])
        netns.drop(*a_.address, direction="to", syn_only=True)
        t0 = time.monotonic()
        a = self.agent(u, connect_timeout=2)
        st = a.wait_connected(seconds=xt.timeout(5))
        took = time.monotonic() - t0
        self.assertNotEqual(st["server"], a_.target)
        ft.figure("Prosody node, SYNs dropped at the first: connected to the next", took, 2.5)
        self.assertLess(took, xt.timeout(2.5))  # connect-timeout + 0.5 s
        self.ping_cb1(self.by_server((b_, c_), st["server"]))


# Only the faults here: test_interop_prosody's own tests are its to run.
for _name in dir(ProsodyTest):
    if _name.startswith("test_") and _name not in ProsodyFaults.__dict__:
        setattr(ProsodyFaults, _name, None)


if __name__ == "__main__":
    if prosody_binary() is None:
        print("SKIP: prosody not installed (apt-get install prosody)")
        sys.exit(77)
    sys.exit(ft.main(ProsodyFaults))
