#!/usr/bin/env python3
"""Integration tests of event.c, without the agent: tests/integration/
event_driver posts numbered events through the real loop and libcurl to
http_receiver.py on 127.0.0.1, which can answer, fail with 500, hang, send a
huge answer or be down, and speaks https with certificates from certtool.
Asserted through what the receiver recorded and the driver's output.

    python3 tests/integration/test_event.py [NAME-SUBSTRING...]
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from pki import PKI  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = "tests/integration/event_driver"
PYTHON = os.environ.get("PYTHON3") or sys.executable
ERROR_TEXT = "tab\t quote\" backslash\\ caf\u00e9 \u2713"


def package_version():
    with open(os.path.join(xt.BUILDDIR, "config.h")) as f:
        return re.search(r'^#define PACKAGE_VERSION "([^"]*)"', f.read(), re.M).group(1)


class Receiver:
    """http_receiver.py in the test's directory; mode as its control file."""

    def __init__(self, wd, name="receiver", mode="ok", cert=None):
        self.files = {k: wd.join("%s.%s" % (name, k))
                      for k in ("port", "out", "requests", "control")}
        self.set_mode(mode)
        argv = [PYTHON, os.path.join(HERE, "http_receiver.py"),
                "--port-file", self.files["port"], "--out", self.files["out"],
                "--requests", self.files["requests"], "--control", self.files["control"]]
        if cert is not None:
            argv += ["--cert", cert[0], "--key", cert[1]]
        self.process = xt.Process(argv, wd.path, name).start()
        xt.wait_for_file(self.files["port"], 5, self.process)
        with open(self.files["port"]) as f:
            self.port = int(f.read())
        self.url = "%s://127.0.0.1:%d/events" % ("https" if cert else "http", self.port)

    def set_mode(self, mode):
        tmp = self.files["control"] + ".tmp"
        with open(tmp, "w") as f:
            f.write(mode + "\n")
        os.rename(tmp, self.files["control"])

    def _lines(self, key):
        try:
            with open(self.files[key], encoding="utf-8") as f:
                return [json.loads(ln) for ln in f if ln.endswith("\n")]
        except FileNotFoundError:
            return []

    def bodies(self):
        """The events answered 2xx, in the order they came."""
        return self._lines("out")

    def requests(self):
        return self._lines("requests")

    def numbers(self):
        return [int(b["event"].split()[1]) for b in self.bodies()]

    def stop(self):
        self.process.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Driver:
    """event_driver URL COUNT with options; its stdout and stderr in one log."""

    def __init__(self, wd, url, count, *opts, name="driver"):
        argv = [xt.program(DRIVER)] + list(opts) + [url, str(count)]
        self.process = xt.Process(argv, wd.path, name, valgrind=xt.VALGRIND).start()

    def log(self):
        return self.process.log_text()

    def beats(self):
        """The latest heartbeat count the driver printed."""
        got = re.findall(r"^heartbeats (\d+) ", self.log(), re.M)
        return int(got[-1]) if got else 0

    def failures(self):
        return len(re.findall(r"events: POST to \S+ failed", self.log()))

    def finish(self, seconds=10.0, status=0):
        """Wait for the exit and check its status; the final line."""
        rc = self.process.wait(seconds)
        if rc != status:
            raise AssertionError("driver exited %s, expected %s; log:\n%s" % (
                rc, status, self.log()))
        return self.log().rstrip("\n").splitlines()[-1]

    def stop(self):
        self.process.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class EventTest(unittest.TestCase):

    def check_bodies(self, rcv, numbers):
        """The receiver accepted exactly these events, in this order, whole."""
        self.assertEqual(rcv.numbers(), list(numbers))
        for b in rcv.bodies():
            self.assertEqual(b, {
                "event": b["event"], "component": "cb1.tptac9.test", "state": "connected",
                "server": "xmpp1.tptac9.test:5347", "address": "127.0.0.1",
                "since": "2025-11-26T08:32:31Z", "last-error": None,
                "last-error-text": ERROR_TEXT})

    def test_in_order(self):
        """20 events arrive in order, as JSON, with our headers."""
        with xt.Workdir("event-order") as wd, Receiver(wd) as rcv, \
                Driver(wd, rcv.url, 20, "-b", "0,1") as drv:
            last = drv.finish()
            self.assertRegex(last, r"^delivered: heartbeats \d+ queued 0 dropped 0$")
            self.check_bodies(rcv, range(1, 21))
            reqs = rcv.requests()
            self.assertEqual(len(reqs), 20)
            for r in reqs:
                self.assertEqual(r["content-type"], "application/json")
                self.assertEqual(r["user-agent"], "xcompd/" + package_version())

    def test_down_then_up(self):
        """Connections refused at first: retried with backoff, then all arrive in order."""
        with xt.Workdir("event-down") as wd, Receiver(wd, mode="down") as rcv, \
                Driver(wd, rcv.url, 5, "-v", "-b", "0,1") as drv:
            xt.wait_until(lambda: drv.failures() >= 3, 10, "three failed POSTs")
            self.assertRegex(drv.log(), r"warning: events: POST to %s failed: "
                             r"Couldn't connect to server \(.*\); retrying in \d+\.\d s"
                             % re.escape(rcv.url))
            self.assertEqual(rcv.requests(), [])
            rcv.set_mode("ok")
            drv.finish()
            self.check_bodies(rcv, range(1, 6))
            self.assertRegex(drv.log(), r"info: events: %s accepts events again \(HTTP 200\) "
                             r"after \d+ failed POSTs" % re.escape(rcv.url))

    def test_500_retried(self):
        """A 500 keeps the event at the head: the same event again, then in order."""
        with xt.Workdir("event-500") as wd, Receiver(wd, mode="500") as rcv, \
                Driver(wd, rcv.url, 3, "-v", "-b", "0,1") as drv:
            xt.wait_until(lambda: len(rcv.requests()) >= 3, 10, "three POSTs answered 500")
            rcv.set_mode("ok")
            drv.finish()
            self.check_bodies(rcv, [1, 2, 3])
            failed = [r for r in rcv.requests() if r["mode"] == "500"]
            self.assertGreaterEqual(len(failed), 3)
            self.assertEqual({json.loads(r["body"])["event"] for r in failed}, {"test 1"})
            self.assertIn("failed: HTTP 500; retrying in", drv.log())

    def test_hang_loop_keeps_running(self):
        """A receiver that never answers: heartbeats keep coming, the POST times
        out after the event timeout and is retried."""
        with xt.Workdir("event-hang") as wd, Receiver(wd, mode="hang") as rcv, \
                Driver(wd, rcv.url, 3, "-v", "-t", "1", "-b", "0,1", "-H", "1") as drv:
            xt.wait_until(lambda: len(rcv.requests()) >= 1, 10, "the first POST")
            beats0 = drv.beats()
            xt.wait_until(lambda: len(rcv.requests()) >= 2, 10, "the retried POST")
            beats1 = drv.beats()
            first, second = rcv.requests()[:2]
            held = second["time"] - first["time"]
            sys.stderr.write("  %d heartbeats while the receiver held the POST %.2f s\n" % (
                beats1 - beats0, held))
            # Timed out after 1 s, then at most 100 ms of backoff.
            self.assertGreaterEqual(held, 0.9)
            self.assertLess(held, xt.timeout(3))
            # 50 ms heartbeats: at least half of them, even on a slow machine.
            self.assertGreaterEqual(beats1 - beats0, int(held / 0.05 / 2))
            self.assertEqual(json.loads(second["body"])["event"], "test 1")
            self.assertRegex(drv.log(), r"POST to \S+ failed: Timeout was reached")
            rcv.set_mode("ok")
            drv.finish()
            self.check_bodies(rcv, [1, 2, 3])

    def test_overflow_drops_oldest(self):
        """queue 4, 10 events while the receiver is down: 6 dropped, the newest 4 arrive."""
        with xt.Workdir("event-overflow") as wd, Receiver(wd, mode="down") as rcv, \
                Driver(wd, rcv.url, 10, "-q", "4", "-b", "0,1") as drv:
            drv.process.wait_for_log(r"^posted 10 queued 4 dropped 6$")
            xt.wait_until(lambda: drv.failures() >= 1, 10, "a failed POST")
            rcv.set_mode("ok")
            last = drv.finish()
            self.assertRegex(last, r"^delivered: heartbeats \d+ queued 0 dropped 6$")
            self.check_bodies(rcv, [7, 8, 9, 10])
            self.assertEqual(drv.log().count("dropped the oldest"), 6)

    def test_big_answer(self):
        """A 1 MiB answer is cut at the cap, and the 200 still delivers: no retry."""
        with xt.Workdir("event-big") as wd, Receiver(wd, mode="big") as rcv, \
                Driver(wd, rcv.url, 2, "-b", "0,1") as drv:
            drv.finish()
            self.check_bodies(rcv, [1, 2])
            self.assertEqual(len(rcv.requests()), 2)

    def test_endless_answer(self):
        """A 200 announcing 1 GiB: the driver reads 64 KiB, cuts the transfer,
        says so once and counts the events delivered (no retry). What the
        receiver managed to write is the cap plus the sockets' buffers."""
        with xt.Workdir("event-endless") as wd, Receiver(wd, mode="endless") as rcv, \
                Driver(wd, rcv.url, 3, "-b", "0,1") as drv:
            t0 = time.monotonic()
            drv.finish()
            self.assertLess(time.monotonic() - t0, 5)
            self.check_bodies(rcv, [1, 2, 3])
            self.assertEqual(len(rcv.requests()), 3)
            self.assertEqual(drv.failures(), 0)
            self.assertEqual(drv.log().count("answers with more than 64 KiB"), 1)
            xt.wait_until(lambda: rcv.process.log_text().count("endless answer:") == 3, 5,
                          "three answers ended")
            sent = [int(n) for n in re.findall(r"endless answer: (\d+) bytes sent",
                                               rcv.process.log_text())]
            self.assertTrue(all(n < 64 << 20 for n in sent), sent)

    def test_https_verified(self):
        """https with the CA file: verified and delivered."""
        with xt.Workdir("event-https") as wd:
            pki = PKI(wd.path)
            leaf = pki.leaf("receiver", cn="127.0.0.1", ips=["127.0.0.1"])
            chain = pki._cat("chain.pem", [leaf.cert, pki.inter.cert])
            with Receiver(wd, cert=(chain, leaf.key)) as rcv, \
                    Driver(wd, rcv.url, 3, "-c", pki.ca, "-b", "0,1") as drv:
                self.assertTrue(rcv.url.startswith("https://"))
                drv.finish()
                self.check_bodies(rcv, [1, 2, 3])

    def test_https_refused(self):
        """https with a wrong CA, or the system store: refused, retried, nothing sent."""
        with xt.Workdir("event-https-bad") as wd:
            pki = PKI(wd.path)
            other = PKI(wd.path, name="other", cn="other")
            leaf = pki.leaf("receiver", cn="127.0.0.1", ips=["127.0.0.1"])
            chain = pki._cat("chain.pem", [leaf.cert, pki.inter.cert])
            deadline = str(round(xt.timeout(2)))  # long enough for two handshakes
            with Receiver(wd, cert=(chain, leaf.key)) as rcv, \
                    Driver(wd, rcv.url, 2, "-v", "-c", other.ca, "-b", "0,1", "-d", deadline,
                           name="wrongca") as wrong, \
                    Driver(wd, rcv.url, 2, "-v", "-b", "0,1", "-d", deadline,
                           name="system") as system:
                for drv in (wrong, system):
                    last = drv.finish(seconds=4, status=1)
                    self.assertRegex(last, r"^deadline: heartbeats \d+ queued 2 dropped 0$")
                    self.assertGreaterEqual(drv.failures(), 2)
                    self.assertRegex(drv.log(), r"POST to \S+ failed: SSL peer certificate")
                self.assertEqual(rcv.bodies(), [])
                self.assertEqual(rcv.requests(), [])

    def test_free_in_flight(self):
        """The deadline comes while a POST hangs: event_free cancels it at once."""
        with xt.Workdir("event-free") as wd, Receiver(wd, mode="hang") as rcv, \
                Driver(wd, rcv.url, 2, "-t", "30", "-d", "1") as drv:
            t0 = time.monotonic()
            last = drv.finish(seconds=10, status=1)
            self.assertLess(time.monotonic() - t0, xt.timeout(5))
            self.assertRegex(last, r"^deadline: heartbeats \d+ queued 2 dropped 0$")
            self.assertEqual(len(rcv.requests()), 1)

    def test_dns_blackhole(self):
        """A DNS server that never answers: the resolve times out after the event
        timeout and the loop keeps running meanwhile, also when libcurl gives up
        on its resolver thread. Needs a mount namespace (to give the driver its
        own /etc/resolv.conf) and port 53 on 127.0.0.77; skipped without them."""
        unshare = shutil.which("unshare")
        if unshare is None:
            self.skipTest("no unshare")
        ns = [unshare, "-m"] if os.geteuid() == 0 else [unshare, "-r", "-m"]
        probe = subprocess.run(ns + ["true"], capture_output=True, timeout=xt.timeout(5))
        if probe.returncode != 0:
            self.skipTest("no mount namespace: %s" % probe.stderr.decode().strip())
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(dns.close)
        try:
            dns.bind(("127.0.0.77", 53))  # never read: no answer, no ICMP error
        except OSError as e:
            self.skipTest("cannot bind 127.0.0.77:53: %s" % e)
        with xt.Workdir("event-dns") as wd:
            conf = wd.join("resolv.conf")
            with open(conf, "w") as f:
                # A resolver thread that libcurl waited for would hold the loop 10 s.
                f.write("nameserver 127.0.0.77\noptions timeout:5 attempts:2\n")
            argv = ns + ["sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', conf,
                         xt.program(DRIVER), "-v", "-t", "1", "-b", "0,1", "-d", "3",
                         "http://events.example.org/", "1"]
            with xt.Process(argv, wd.path, "driver") as drv:
                t0 = time.monotonic()
                drv.wait(8)
                took = time.monotonic() - t0
                log = drv.log_text()
            hung = "Resolving timed out" in log
            if hung:
                self.assertEqual(drv.returncode, 1, log)
                self.assertLess(took, xt.timeout(5))
                beats = re.search(r"^deadline: heartbeats (\d+) queued 1 ", log, re.M)
                self.assertGreaterEqual(int(beats.group(1)), 30, log)
                self.assertGreaterEqual(log.count("Resolving timed out after"), 2, log)
        if not hung:
            self.skipTest("the lookup did not hang here (a resolver other than "
                          "/etc/resolv.conf?): %s" % log[-200:])

    def test_bad_url(self):
        """Only http and https: anything else is refused before the loop runs."""
        with xt.Workdir("event-url") as wd:
            for i, (url, why) in enumerate((
                    ("ftp://127.0.0.1/x", 'scheme "ftp" is not http or https'),
                    ("127.0.0.1:80/x", "not an http:// or https:// URL"),
                    ("http://", "event URL: No host part"))):
                with Driver(wd, url, 1, name="bad%d" % i) as drv:
                    drv.finish(status=2)
                    self.assertIn(why, drv.log())


if __name__ == "__main__":
    sys.exit(xt.main(EventTest, sys.argv[1:], programs=(DRIVER,)))
