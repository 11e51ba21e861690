#!/usr/bin/env python3
"""Interoperability: xcompd against three real Prosody 0.12 nodes on
127.0.0.1-3, found through _xmpp-component._tcp SRV records served by a real
unbound; asserted through the agent's status file, Prosody's own logs and a
second component (a scripted raw client) that sends stanzas to cb1 through
Prosody.

Each Prosody runs in the foreground (prosody -F) with its configuration, data,
pid file and log in the test's directory. c2s and s2s are disabled and their
port lists are empty, every interface setting names the node's own address,
and the component listener is on a free port: the only socket a node listens
on is its component port (checked at start). Readiness is polled on that
port; a node is stopped by its pid (SIGCONT first if it was stopped, then
SIGTERM, then SIGKILL).

    python3 tests/integration/test_interop_prosody.py [NAME-SUBSTRING...]

PROSODY=/path/to/prosody picks the binary (PROSODY=no: behave as if missing).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import (DOMAIN, Agent, GapWatch, Unbound, a_record, listen_port,  # noqa: E402
                       rolling_restart, srv_record)

CB1 = "cb1." + DOMAIN
SECRET = "s3cret"
# A second component on every node: a raw scripted client that sends stanzas
# to cb1 through Prosody.
ECHO = "echo." + DOMAIN
ECHO_SECRET = "ech0-s3cret"

NOT_AUTHORIZED_TEXT = "Given token does not match calculated token"
CONFLICT_TEXT = "Component already connected"
# Prosody's log lines (mod_component), counted by the tests.
LOG_AUTHENTICATED = "External component successfully authenticated"
LOG_CONFLICT = "Second component attempted to connect, denying connection"
LOG_INCOMING = "Incoming Jabber component connection"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def prosody_binary():
    env = os.environ.get("PROSODY")
    if env is not None:
        return env if env not in ("", "no") and os.access(env, os.X_OK) else None
    for path in ("/usr/bin/prosody", shutil.which("prosody")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def tcp_listeners(pid):
    """(ip, port) of every listening TCP socket process pid holds."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                m = re.match(r"socket:\[(\d+)\]$", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                continue
            if m:
                inodes.add(int(m.group(1)))
    except FileNotFoundError:
        return set()
    out = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for ln in lines:
            w = ln.split()
            if int(w[9]) in inodes and int(w[3], 16) == 10:  # TCP_LISTEN
                hexip, hexport = w[1].split(":")
                raw = bytes.fromhex(hexip)
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1]) if len(raw) == 4 else hexip
                out.add((ip, int(hexport, 16)))
    return out


def attrs(elem):
    """A stanza's attributes, without the xml:lang='en' that Prosody adds to
    every stanza it routes (it takes the sending stream's xml:lang); asserts
    that the lang, if there, is 'en'."""
    a = dict(elem.attrib)
    lang = a.pop(XML_LANG, None)
    if lang not in (None, "en"):
        raise AssertionError("xml:lang=%r on %r" % (lang, a))
    return a


class PortTaken(Exception):
    pass


class Prosody:
    """One Prosody node NAME.tptac9.test on ip, serving components (jid ->
    secret) on a free port of its own."""

    def __init__(self, workdir, name, ip, components=None, options=()):
        self.workdir = workdir
        self.name = name
        self.ip = ip
        self.host = "%s.%s" % (name, DOMAIN)
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "data"))
        os.makedirs(os.path.join(self.dir, "certs"))
        self.components = dict(components if components is not None else
                               {CB1: SECRET, ECHO: ECHO_SECRET})
        self.options = list(options)
        self.port = None
        self.conf = os.path.join(self.dir, "prosody.cfg.lua")
        self.logpath = os.path.join(self.dir, "prosody.log")
        self.stopped = False
        self.clients = []
        self.process = None

    def write_conf(self, port=None):
        """A configuration with the component port given, or one that is free right now."""
        self.port = port or listen_port(self.ip)
        d, ip = self.dir, self.ip
        lines = [
            "-- written by test_interop_prosody.py",
            "run_as_root = true",
            'pidfile = "%s/prosody.pid"' % d,
            'data_path = "%s/data"' % d,
            'certificates = "%s/certs"' % d,
            'log = { debug = "%s" }' % self.logpath,
            # Every listener on this node's own address; only the component
            # port is open: c2s and s2s are off and, like HTTP, have no ports.
            'interfaces = { "%s" }' % ip,
            'local_interfaces = { "%s" }' % ip,
            'component_interfaces = { "%s" }' % ip,
            "component_ports = { %d }" % self.port,
            "c2s_ports = { }",
            "c2s_direct_tls_ports = { }",
            "legacy_ssl_ports = { }",
            "s2s_ports = { }",
            "s2s_direct_tls_ports = { }",
            "http_ports = { }",
            "https_ports = { }",
            'modules_disabled = { "c2s", "s2s", "offline" }',
            'modules_enabled = { "ping", "disco" }',
        ]
        lines += self.options
        lines.append('VirtualHost "%s"' % DOMAIN)
        for jid, secret in self.components.items():
            lines += ['Component "%s"' % jid, '    component_secret = "%s"' % secret]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def address(self):
        return (self.ip, self.port)

    @property
    def target(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def pid(self):
        return self.process.pid

    def records(self, priority, weight=10, ttl=60):
        return [srv_record(priority, weight, self.port, self.host, ttl),
                a_record(self.host, self.ip)]

    def start(self, keep_port=False):
        """Start; with keep_port, on the port of the last start (a restart)."""
        self.write_conf(self.port if keep_port else None)
        try:
            os.unlink(self.logpath)  # a new log for each start
        except FileNotFoundError:
            pass
        self.process = xt.Process([prosody_binary(), "-F", "--config", self.conf],
                                  self.workdir, "prosody-" + self.name).start()
        return self

    def wait_ready(self):
        """Poll the component port; then make sure it is the only listener.
        PortTaken if someone else took the port in the meantime."""
        def up():
            if "Failed to open server port" in self.log_text():
                raise PortTaken()
            if self.process.poll() is not None:
                raise AssertionError("prosody %s exited with %s; log:\n%s\n%s" % (
                    self.name, self.process.returncode, self.process.log_text()[-2000:],
                    self.log_text()[-2000:]))
            # The port, once this process holds it, accepts connections.
            if self.address not in tcp_listeners(self.pid):
                return False
            try:
                socket.create_connection(self.address, timeout=0.2).close()
            except OSError:
                return False
            return True
        xt.wait_until(up, 10, "prosody %s listening on %s:%d" % (self.name, self.ip, self.port))
        mine = tcp_listeners(self.pid)
        if mine != {self.address}:
            raise AssertionError("prosody %s listens on %s, expected only %s:%d" % (
                self.name, sorted(mine), self.ip, self.port))
        return self

    def signal(self, signo):
        self.process.signal(signo)
        if signo == signal.SIGSTOP:
            self.stopped = True
        elif signo == signal.SIGCONT:
            self.stopped = False

    def kill(self):
        """SIGKILL, reaped."""
        self.process.signal(signal.SIGKILL)
        return self.process.wait()

    def stop(self):
        for c in self.clients:
            c.close()
        if self.process is None:
            return None
        if self.process.poll() is None and self.stopped:
            self.signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        return self.process.stop()

    def log_text(self):
        try:
            with open(self.logpath, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def count(self, text):
        return self.log_text().count(text)

    def connect(self, name="raw"):
        c = xt.Client(self.address, name="%s@%s" % (name, self.name))
        self.clients.append(c)
        return c

    def component(self, jid=ECHO, secret=None):
        """An authenticated raw component session."""
        c = self.connect(jid.split(".")[0])
        c.open_stream(jid)
        c.handshake(secret if secret is not None else self.components[jid])
        return c


class ProsodyTest(xt.LabTest):
    def setUp(self):
        if prosody_binary() is None:
            self.skipTest("prosody not installed")
        super().setUp()

    # ------------------------------------------------------------ set-up

    def nodes(self, specs=(("a", {}), ("b", {}), ("c", {}))):
        """Prosody nodes a, b, c on 127.0.0.1-3, started side by side."""
        out = []
        for i, (name, kw) in enumerate(specs):
            p = Prosody(self.wd.path, name, "127.0.0.%d" % (i + 1), **kw)
            self.cleanups.append(p.stop)
            out.append(p.start())
        for p in out:  # started side by side; wait for each
            for attempt in range(3):
                try:
                    p.wait_ready()
                    break
                except PortTaken:
                    if attempt == 2:
                        raise
                    sys.stderr.write("  %s: port %d taken meanwhile; again\n" % (p.name, p.port))
                    p.stop()
                    p.start()
        return out

    def dns(self, nodes, prio=(10, 20, 20), weight=(10, 10, 10), ttl=60):
        rr = []
        for i, n in enumerate(nodes):
            rr += n.records(prio[i], weight[i], ttl)
        u = Unbound(self.wd.path, rr).start()
        self.cleanups.append(u.stop)
        return u

    def agent(self, u, **keys):
        a = Agent(self.wd.path, secret=SECRET, dns_server=u.address, **keys).start()
        self.cleanups.append(a.stop)
        return a

    def xcomp(self, *args):
        return subprocess.run([xt.program("xcomp")] + list(args), capture_output=True, text=True,
                              timeout=xt.timeout(10))

    def by_server(self, nodes, server):
        for n in nodes:
            if n.target == server:
                return n
        raise AssertionError("no node is %s" % server)

    def ping_cb1(self, node, iq_id="rt1"):
        """The second component pings cb1 through node; xcompd answers."""
        echo = node.component(ECHO)
        echo.send("<iq type='get' id='%s' to='%s' from='%s'><ping xmlns='%s'/></iq>" % (
            iq_id, CB1, ECHO, xt.NS_PING))
        raw, e = echo.recv_stanza()
        self.assertEqual(e.tag, "{%s}iq" % xt.NS_COMPONENT, raw)
        self.assertEqual(attrs(e), {"type": "result", "id": iq_id, "from": CB1, "to": ECHO}, raw)
        self.assertEqual(len(e), 0, raw)
        return echo

    # ------------------------------------------------------------ tests

    def test_connects_by_srv(self):
        a_, b_, c_ = self.nodes()
        # b has the lowest priority value: it must win whatever the weights.
        u = self.dns([a_, b_, c_], prio=(20, 5, 30), weight=(100, 1, 100))
        a = self.agent(u)
        st = a.wait_connected(5, server=b_.target)
        self.assertEqual(st["address"], "127.0.0.2")
        self.assertEqual(st["component"], CB1)
        self.assertEqual([n["target"] for n in st["nodes"]],
                         ["b.tptac9.test", "a.tptac9.test", "c.tptac9.test"])
        self.assertEqual([n["result"] for n in st["nodes"]], ["ok", "untried", "untried"])
        self.assertEqual(st["failovers"], "0")
        self.assertNotIn("last-error", st)
        xt.wait_until(lambda: b_.count(LOG_AUTHENTICATED) == 1, 2, "b's log")
        self.assertEqual(a_.count(LOG_INCOMING) + c_.count(LOG_INCOMING), 2,
                         "only the readiness probes reached a and c")
        r = self.xcomp("status", "-s", a.status_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"^XMPP connection: connected to b\.tptac9\.test:%d "
                         r"\(127\.0\.0\.2\) for " % b_.port)

    def test_sigkill_of_active_node(self):
        a_, b_, c_ = self.nodes()
        u = self.dns([a_, b_, c_])
        a = self.agent(u)
        a.wait_connected(server=a_.target)
        t0 = time.monotonic()
        a_.kill()
        st = a.wait_status(lambda s: s["state"] == "connected" and s["server"] != a_.target,
                           3, "failover")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(st["failovers"], "1")
        self.assertEqual(st["last-error"], "closed")
        self.assertEqual(st["last-error-text"],
                         "connection closed by %s (127.0.0.1)" % a_.target)
        self.assertEqual(st["nodes"][0]["result"], "closed")
        self.by_server((b_, c_), st["server"])  # one of the others

    def test_sigterm_of_active_node(self):
        # Prosody 0.12 sends no <system-shutdown/> to components on SIGTERM
        # (xcomp-server does): the component sees a bare FIN, no </stream:stream>.
        a_, b_, c_ = self.nodes()
        u = self.dns([a_, b_, c_])
        a = self.agent(u)
        a.wait_connected(server=a_.target)
        watcher = a_.component(ECHO)
        t0 = time.monotonic()
        a_.signal(signal.SIGTERM)
        st = a.wait_status(lambda s: s["state"] == "connected" and s["server"] != a_.target,
                           3, "failover")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(a_.process.wait(5), 0)
        self.assertEqual(watcher.expect_closed(), "", "Prosody sent bytes on SIGTERM")
        self.assertEqual(st["last-error"], "closed")
        self.assertEqual(st["last-error-text"],
                         "connection closed by %s (127.0.0.1)" % a_.target)
        self.assertEqual(st["nodes"][0]["result"], "closed")
        self.assertEqual(st["failovers"], "1")

    def test_rolling_restart_costs_nothing(self):
        # As an operator upgrades: each node in turn SIGTERMed (a bare FIN to
        # the agent), started again 0.5 s later on its port, the next one
        # 0.5-1 s after it listens. A healthy node is there all the time.
        a_, b_, c_ = self.nodes()
        u = self.dns([a_, b_, c_], prio=(10, 20, 30))
        a = self.agent(u, keepalive=1, keepalive_timeout=1, backoff_min=1)
        a.wait_connected(server=a_.target)
        time.sleep(3.2)  # the session is stable

        def stop(n):
            n.signal(signal.SIGTERM)
            n.process.wait(5)

        def start(n):
            n.start(keep_port=True)
            n.wait_ready()
        watch = GapWatch(a).start()
        try:
            rolling_restart((a_, b_, c_), stop, start)
            a.wait_connected(3)
            time.sleep(0.2)
        finally:
            gaps = watch.stop()
        lengths = watch.lengths()
        print("rolling restart of Prosody: %s" % watch.summary())
        self.assertEqual([(g[2], g[3]) for g in gaps],
                         [(a_.target, b_.target), (b_.target, c_.target),
                          (c_.target, a_.target)], gaps)
        self.assertLess(max(lengths), 0.3 * xt.SCALE, gaps)
        self.assertNotIn("next try in", a.log_text())

    def test_silent_node_is_tried_last(self):
        # a silent (SIGSTOP), found by the keepalive; the agent on b long
        # enough to be stable; b killed: c before a, which is still silent.
        a_, b_, c_ = self.nodes()
        u = self.dns([a_, b_, c_], prio=(10, 20, 30))
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        a.wait_connected(server=a_.target)
        a_.signal(signal.SIGSTOP)
        a.wait_connected(5, server=b_.target)
        time.sleep(3.5)
        mark = len(a.log_text())
        t0 = time.monotonic()
        b_.kill()
        a.wait_connected(3, server=c_.target)
        self.assertLess(time.monotonic() - t0, 1.0 * xt.SCALE)
        self.assertNotIn("connecting to a.", a.log_text()[mark:])

    def test_sigstop_of_active_node(self):
        a_, b_, c_ = self.nodes()
        u = self.dns([a_, b_, c_])
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        a.wait_connected(server=a_.target)
        t0 = time.monotonic()
        a_.signal(signal.SIGSTOP)
        st = a.wait_status(lambda s: s["state"] == "connected" and s["server"] != a_.target,
                           5, "failover")
        elapsed = time.monotonic() - t0
        # keepalive + keepalive-timeout + 1 s
        self.assertLess(elapsed, 3.0)
        self.assertEqual(st["last-error"], "timeout")
        self.assertEqual(st["last-error-text"],
                         "no reply from %s (127.0.0.1) within 1 s of a keepalive ping" %
                         a_.target)
        self.assertEqual(st["nodes"][0]["result"], "timeout")

    def test_keepalive_pings_answered(self):
        # mod_ping answers the agent's XEP-0199 pings to the domain: the
        # session stays up across several keepalive rounds.
        (a_,) = self.nodes((("a", {}),))
        u = self.dns([a_])
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        st = a.wait_connected()
        since = st["connected-since"]
        xt.wait_until(lambda: len(re.findall(r"<iq[^>]* id='xcomp-ping-\d+'", a_.log_text())) >= 2,
                      4, "two keepalive pings in prosody's log")
        st = a.status()
        self.assertEqual(st["state"], "connected")
        self.assertEqual(st["connected-since"], since)
        self.assertEqual(st["failovers"], "0")
        self.assertEqual(a_.count(LOG_INCOMING), 2)  # the readiness probe and the agent

    def test_wrong_secret_on_one_node(self):
        a_, b_, c_ = self.nodes((("a", {"components": {CB1: "not-the-secret"}}),
                                 ("b", {}), ("c", {})))
        u = self.dns([a_, b_, c_])
        a = self.agent(u)
        st = a.wait_connected()
        self.assertNotEqual(st["server"], a_.target)
        self.assertEqual(st["nodes"][0]["target"], "a.tptac9.test")
        self.assertEqual(st["nodes"][0]["result"], "auth")
        self.assertEqual(st["last-error"], "auth")
        self.assertEqual(st["last-error-text"],
                         "authentication failure at %s (not-authorized: %s)" % (
                             a_.target, NOT_AUTHORIZED_TEXT))
        self.assertIn("Component authentication failed for %s" % CB1, a_.log_text())
        r = self.xcomp("status", "-s", a.status_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("See xcomp-troubleshooting(7), section AUTH.", r.stdout)

    def test_component_not_configured_on_one_node(self):
        # Prosody 0.12 answers a stream to a JID it has no Component for
        # with a header whose id is EMPTY (id='' version='1.0', no from) and,
        # in the same write, <host-unknown/> "<jid> does not match any
        # configured external components".
        a_, b_, c_ = self.nodes((("a", {"components": {ECHO: ECHO_SECRET}}),
                                 ("b", {}), ("c", {})))
        u = self.dns([a_, b_, c_])
        a = self.agent(u)
        st = a.wait_connected()
        self.assertNotEqual(st["server"], a_.target)
        self.assertEqual(st["nodes"][0]["target"], "a.tptac9.test")
        self.assertEqual(st["nodes"][0]["result"], "stream")
        self.assertEqual(st["last-error"], "stream")
        # The operator must be told what Prosody said, not that the header
        # lacked an id.
        self.assertEqual(st["last-error-text"],
                         "stream error from %s: host-unknown: %s does not match any configured "
                         "external components" % (a_.target, CB1))

    def test_stale_session_after_sigstop(self):
        # The active node freezes (SIGSTOP) and the agent moves on. Prosody
        # keeps the old session (kick-new would refuse cb1 with <conflict/>)
        # until it thaws (SIGCONT) and reads the agent's FIN. Meanwhile the
        # frozen node becomes the only one left: the agent's attempts there
        # get no stream header. It must neither hammer the node nor give up
        # on it: thawed, the node must take the agent back.
        a_, b_, c_ = self.nodes()
        u = self.dns([a_, b_, c_])
        a = self.agent(u, keepalive=1, keepalive_timeout=1, handshake_timeout=2,
                       backoff_min=1, backoff_max=2)
        a.wait_connected(server=a_.target)
        a_.signal(signal.SIGSTOP)
        a.wait_status(lambda s: s["state"] == "connected" and s["server"] != a_.target,
                      5, "failover")
        for n in (b_, c_):
            n.kill()
        cpu0, t0 = a.cpu_seconds(), time.monotonic()
        timed_out = "no handshake from %s within 2 s (handshake-timeout)" % a_.target
        xt.wait_until(lambda: timed_out in a.log_text(), 6, "a handshake timeout at frozen a")
        # Thaw a while the agent's next attempt there waits for the header.
        a.wait_status(lambda s: s["state"] == "authenticating" and s.get("server") == a_.target,
                      5, "another attempt at a")
        a_.signal(signal.SIGCONT)
        st = a.wait_connected(4, server=a_.target)
        cpu = a.cpu_seconds() - cpu0
        wall = time.monotonic() - t0
        self.assertLess(cpu / wall, 0.02, "cpu %.3f s over %.1f s" % (cpu, wall))
        self.assertEqual(st["nodes"][0]["result"], "ok")
        # Bounded: the first session, the timed-out attempts, the last one
        # (plus the readiness probe): one per round of backoff 1-2 s.
        incoming = a_.count(LOG_INCOMING)
        self.assertLessEqual(incoming, 6, a_.log_text()[-3000:])
        self.assertLessEqual(a_.count(LOG_CONFLICT), 2, a_.log_text()[-3000:])
        self.assertEqual(a_.count(LOG_AUTHENTICATED), 2)
        self.ping_cb1(a_)

    def test_stale_session_kick_new(self):
        # A stale session of cb1 that Prosody still believes in (the host
        # that held it is frozen, its FIN not sent): kick-new refuses the
        # agent there with <conflict/> "Component already connected".
        a_, b_, c_ = self.nodes()
        stale = a_.component(CB1)
        u = self.dns([a_, b_, c_])
        a = self.agent(u, backoff_min=1, backoff_max=2)
        st = a.wait_connected()
        self.assertNotEqual(st["server"], a_.target)
        self.assertEqual(st["nodes"][0]["result"], "conflict")
        self.assertEqual(st["last-error"], "conflict")
        self.assertRegex(st["last-error-text"],
                         r"^conflict at %s: %s is already connected there \(%s\); "
                         r"retrying that node in \d+ s or later$" % (
                             re.escape(a_.target), re.escape(CB1), CONFLICT_TEXT))
        # Now a is the only node left: the agent retries it, bounded.
        for n in (b_, c_):
            n.kill()
        n0 = a_.count(LOG_CONFLICT)
        xt.wait_until(lambda: a_.count(LOG_CONFLICT) > n0, 5, "another conflict at a")
        cpu0, t0, n0 = a.cpu_seconds(), time.monotonic(), a_.count(LOG_CONFLICT)
        time.sleep(3)
        cpu = a.cpu_seconds() - cpu0
        self.assertLessEqual(a_.count(LOG_CONFLICT) - n0, 4, a_.log_text()[-3000:])
        self.assertLess(cpu / (time.monotonic() - t0), 0.02, "cpu %.3f s" % cpu)
        # The stale session ends (Prosody reads its FIN): the node is usable.
        stale.close()
        st = a.wait_connected(5, server=a_.target)
        self.assertEqual(st["nodes"][0]["result"], "ok")
        self.ping_cb1(a_)

    def test_stale_session_kick_old(self):
        # component_conflict_resolve = "kick_old": the node takes the agent at
        # once and ends the stale session with <conflict/> "Replaced by a new
        # connection".
        a_, b_ = self.nodes((("a", {"options": ['component_conflict_resolve = "kick_old"']}),
                             ("b", {})))
        stale = a_.component(CB1)
        u = self.dns([a_, b_])
        a = self.agent(u)
        st = a.wait_connected(server=a_.target)
        self.assertEqual(st["nodes"][0]["result"], "ok")
        self.assertNotIn("last-error", st)
        stale.expect_stream_error("conflict", "Replaced by a new connection")
        self.ping_cb1(a_)

    def test_stanza_round_trip(self):
        (a_,) = self.nodes((("a", {}),))
        u = self.dns([a_])
        a = self.agent(u)
        a.wait_connected()
        echo = self.ping_cb1(a_, "rt1")
        # Another payload: service-unavailable, from cb1, through Prosody.
        for typ, payload in (("get", "<query xmlns='jabber:iq:version'/>"),
                             ("set", "<query xmlns='jabber:iq:private'/>")):
            echo.send("<iq type='%s' id='rt-%s' to='%s' from='%s'>%s</iq>" % (
                typ, typ, CB1, ECHO, payload))
            raw, e = echo.recv_stanza()
            self.assertEqual(attrs(e), {"type": "error", "id": "rt-" + typ, "from": CB1,
                                        "to": ECHO}, raw)
            err = e.find("{%s}error" % xt.NS_COMPONENT)
            self.assertIsNotNone(err, raw)
            self.assertEqual(err.get("type"), "cancel", raw)
            self.assertIsNotNone(err.find("{%s}service-unavailable" % xt.NS_STANZA_ERRORS), raw)
        # A message is not answered (xcompd relays nothing yet).
        echo.send("<message to='%s' from='%s' id='m1'><body>hi</body></message>" % (CB1, ECHO))
        echo.expect_nothing(0.3)
        self.assertEqual(a.status()["state"], "connected")

    def test_sigterm_of_agent_closes_the_stream(self):
        (a_,) = self.nodes((("a", {}),))
        u = self.dns([a_])
        a = self.agent(u)
        a.wait_connected()
        t0 = time.monotonic()
        a.process.signal(signal.SIGTERM)
        self.assertEqual(a.process.wait(5), 0)
        # Prosody answers </stream:stream> at once: no need for the 1 s grace.
        self.assertLess(time.monotonic() - t0, 0.9)
        self.assertEqual(a.status()["state"], "stopped")
        xt.wait_until(lambda: "Received </stream:stream>" in a_.log_text(), 2, "prosody saw it")
        self.assertIn("component disconnected: %s" % CB1, a_.log_text())


def main(argv):
    if prosody_binary() is None:
        print("SKIP: prosody not installed")
        return 77
    return xt.main(ProsodyTest, argv, ("xcompd", "xcomp"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
