#!/usr/bin/env python3
"""Interoperability: xcompd against real ejabberd 23.01 nodes on 127.0.0.1-3,
found through _xmpp-component._tcp SRV records served by a real unbound;
asserted through the agent's status file, the sockets of both sides and
ejabberd's own routing (stanzas sent through it by a second component).

Each ejabberd runs undistributed (no -sname/-name: the node is nonode@nohost),
so it starts no epmd and opens no distribution port: the only sockets it
listens on are its two ejabberd_service listeners on 127.0.0.x (checked).
Its configuration, Mnesia spool, logs and HOME live in the test's directory;
it is started with erl directly (not ejabberdctl), readiness is polled on its
service ports, and it is stopped by its pid, with its helper processes.

    python3 tests/integration/test_interop_ejabberd.py [NAME-SUBSTRING...]
"""

import glob
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import DOMAIN, Agent, Unbound, a_record, srv_record, listen_port  # noqa: E402
from pki import PKI  # noqa: E402

CB1 = "cb1." + DOMAIN
SECRET = "s3cret"
# A second component on every node: it sends stanzas to cb1 through ejabberd.
PROBE = "probe." + DOMAIN
PROBE_SECRET = "pr0be-s3cret"


def ejabberd_libs():
    """The directory to put in ERL_LIBS (it holds ejabberd-VERSION/), or None."""
    for pattern in ("/usr/lib/*/ejabberd-*/ebin/ejabberd.app",
                    "/usr/lib/ejabberd-*/ebin/ejabberd.app",
                    "/usr/lib/erlang/lib/ejabberd-*/ebin/ejabberd.app"):
        found = sorted(glob.glob(pattern))
        if found:
            return os.path.dirname(os.path.dirname(os.path.dirname(found[-1])))
    return None


def erl_binary():
    return shutil.which("erl")


# ------------------------------------------------------------------ /proc

def _proc_sockets():
    """Every TCP socket of the host: inode -> (state, local (ip, port), remote (ip, port))."""
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for ln in lines:
            w = ln.split()
            out[int(w[9])] = (int(w[3], 16), _addr(w[1]), _addr(w[2]))
    return out


def _addr(hexaddr):
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if len(raw) == 4:
        text = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        # Four little-endian 32-bit words.
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        text = socket.inet_ntop(socket.AF_INET6, raw)
        if text.startswith("::ffff:"):
            text = text[7:]
    return text, int(port, 16)


TCP_ESTABLISHED, TCP_LISTEN = 1, 10


def socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except FileNotFoundError:
        return out
    for fd in fds:
        try:
            m = re.match(r"socket:\[(\d+)\]$", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            continue
        if m:
            out.add(int(m.group(1)))
    return out


def tcp_sockets(pid):
    """The TCP sockets process pid holds: a list of (state, local, remote)."""
    every = _proc_sockets()
    return [every[i] for i in socket_inodes(pid) if i in every]


def descendants(pid):
    """pid's children, grandchildren, ... (from /proc/*/stat)."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def listening(pid):
    """(proto, ip, port) of every listening TCP socket and bound UDP socket of pid."""
    inodes = socket_inodes(pid)
    out = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open("/proc/net/" + proto) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for ln in lines:
            w = ln.split()
            if int(w[9]) not in inodes:
                continue
            if proto.startswith("tcp") and int(w[3], 16) != TCP_LISTEN:
                continue
            ip, port = _addr(w[1])
            out.append((proto, ip, port))
    return out


# ------------------------------------------------------------------ ejabberd

class PortTaken(Exception):
    pass


class Ejabberd:
    """One ejabberd 23.01 node on ip: an ejabberd_service listener for cb1
    (with secret; direct TLS when tls, the certificate, key and intermediate
    in certfile) and, on a port of its own, one for the probe component.
    ejabberd registers every host of a listener for each session
    authenticated on it (global_routes), so the probe must not share cb1's
    listener: it would be given cb1's stanzas."""

    def __init__(self, workdir, name, ip, secret=SECRET, tls=False, certfile=None,
                 certfiles=()):
        self.workdir = workdir
        self.name = name
        self.ip = ip
        self.host = "%s.%s" % (name, DOMAIN)
        self.dir = os.path.join(workdir, name)
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool)
        self.secret = secret
        self.tls = tls
        self.certfile = certfile
        self.certfiles = certfiles
        self.conf = os.path.join(self.dir, "ejabberd.yml")
        self.ejlog = os.path.join(self.dir, "ejabberd.log")
        self.process = None
        self.children = []
        self.stopped = False
        self.attempts = 0
        self.log_start = 0

    def write_conf(self):
        self.port = listen_port(self.ip)
        self.probe_port = listen_port(self.ip)
        lines = [
            "hosts:",
            '  - "%s"' % DOMAIN,
            "loglevel: info",
            # Never reach out: no ACME, no outgoing s2s (a stanza to an
            # unknown domain bounces at once instead of a DNS lookup).
            "acme:",
            "  auto: false",
            "s2s_access: none",
            "modules:",
            "  mod_ping: {}",
            "  mod_disco: {}",
            "listen:",
            "  -",
            "    port: %d" % self.port,
            '    ip: "%s"' % self.ip,
            "    module: ejabberd_service",
            "    tls: %s" % ("true" if self.tls else "false"),
        ]
        if self.certfile:
            lines.append('    certfile: "%s"' % self.certfile)
        lines += [
            "    hosts:",
            '      "%s":' % CB1,
            '        password: "%s"' % self.secret,
            "  -",
            "    port: %d" % self.probe_port,
            '    ip: "%s"' % self.ip,
            "    module: ejabberd_service",
            "    hosts:",
            '      "%s":' % PROBE,
            '        password: "%s"' % PROBE_SECRET,
        ]
        if self.certfiles:
            lines.append("certfiles:")
            lines += ['  - "%s"' % f for f in self.certfiles]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def pid(self):
        return self.process.pid

    @property
    def target(self):
        return "%s:%d" % (self.host, self.port)

    def records(self, priority, weight=10):
        return [srv_record(priority, weight, self.port, self.host),
                a_record(self.host, self.ip)]

    def environ(self):
        """The VM's environment: nothing of ours that starts with ERL_ or EJABBERD."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ERL_") and not k.startswith("EJABBERD")}
        env.update({
            "HOME": self.dir,
            "ERL_LIBS": ejabberd_libs(),
            "EJABBERD_CONFIG_PATH": self.conf,
            "EJABBERD_LOG_PATH": self.ejlog,
            "ERL_CRASH_DUMP": os.path.join(self.dir, "erl_crash.dump"),
        })
        return env

    def argv(self):
        # No -sname/-name: an undistributed node (nonode@nohost), hence no
        # epmd and no distribution listener. erl execs beam.smp: the pid we
        # get is the VM's.
        return [erl_binary(), "-noinput", "+K", "true", "-mnesia", "dir", '"%s"' % self.spool,
                "-s", "ejabberd"]

    def start(self):
        self.attempts += 1
        self.write_conf()
        self.process = xt.Process(self.argv(), self.workdir, self.name, env=self.environ())
        try:
            self.log_start = os.path.getsize(self.process.logpath)
        except FileNotFoundError:
            self.log_start = 0
        self.process.start()
        return self

    def wait_ready(self, seconds=15.0):
        """Poll the service ports until they accept connections, and make sure
        the listeners are this VM's. PortTaken if a port went to someone else
        in the meantime."""
        def up():
            if "Failed to open socket at" in self.log_text():
                raise PortTaken()
            if self.process.poll() is not None:
                raise AssertionError("%s exited with %s; log:\n%s" % (
                    self.name, self.process.returncode, self.process.log_text()[-3000:]))
            for port in (self.port, self.probe_port):
                try:
                    socket.create_connection((self.ip, port), timeout=0.2).close()
                except OSError:
                    return False
            mine = listening(self.pid)
            return all(("tcp", self.ip, p) in mine for p in (self.port, self.probe_port))
        xt.wait_until(up, seconds, "%s listening on %s:%d" % (self.name, self.ip, self.port))
        # The console log may lag behind the listeners.
        xt.wait_until(lambda: "is started in the node" in self.log_text(), 5,
                      "%s's start-up line" % self.name)
        self.children = descendants(self.pid)
        return self

    def signal(self, signo):
        self.process.signal(signo)
        if signo == signal.SIGSTOP:
            self.stopped = True
        elif signo == signal.SIGCONT:
            self.stopped = False

    def kill(self):
        """SIGKILL, reaped, with the VM's helper processes."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.signal(signal.SIGKILL)
        rc = self.process.wait()
        self.reap_children()
        return rc

    def reap_children(self):
        """erl_child_setup and its helpers (inet_gethost, eimp) end with the
        VM; make sure, by pid."""
        def gone():
            return all(_gone(c) for c in self.children)
        try:
            xt.wait_until(gone, 2, "%s's helpers gone" % self.name)
        except AssertionError:
            for c in self.children:
                if not _gone(c):
                    sys.stderr.write("  %s: helper %d left: SIGKILL\n" % (self.name, c))
                    try:
                        os.kill(c, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def log_text(self):
        """The log of this run (a restart appends to the same file)."""
        return self.process.log_text()[self.log_start:] if self.process else ""

    def service_sessions(self):
        """ejabberd's side: the peers (ip, port) of its ESTABLISHED connections
        on cb1's service port."""
        return sorted(remote for state, local, remote in tcp_sockets(self.pid)
                      if state == TCP_ESTABLISHED and local == (self.ip, self.port))

    def component(self, jid=PROBE, secret=PROBE_SECRET, name="probe"):
        """An authenticated session of the probe component on this node."""
        c = xt.Client((self.ip, self.probe_port), name=name)
        c.send(c.stream_header(jid))
        c.expect_header()
        c.handshake(secret)
        return c


def _gone(pid):
    """pid has exited (or is a zombie waiting for its parent)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def start_all(nodes):
    """Start nodes in parallel; wait until every one listens. A node whose
    port was taken between the check and ejabberd's bind starts again on
    another one."""
    for n in nodes:
        n.start()
    for n in nodes:
        while True:
            try:
                n.wait_ready()
                break
            except PortTaken:
                n.kill()
                if n.attempts >= 3:
                    raise AssertionError("%s: ports taken three times" % n.name)
                sys.stderr.write("  %s: port taken, starting again\n" % n.name)
                n.start()
    return nodes


def kill_all(nodes):
    """The tests' clean-up: ejabberd needs about 3 s to stop on SIGTERM and
    its spool is thrown away, so SIGKILL, by pid."""
    for n in nodes:
        if n.process is not None and n.process.poll() is None:
            n.process.signal(signal.SIGKILL)
    for n in nodes:
        n.kill()


class Replay:
    """A scripted node speaking ejabberd 23.01's bytes (header, handshake
    answer, and on shutdown() the system-shutdown error then a FIN without
    </stream:stream>), for the one behaviour of ejabberd that is a race."""

    HEADER = ("<?xml version='1.0'?><stream:stream id='%s' xml:lang='en' "
              "xmlns:stream='http://etherx.jabber.org/streams' from='%s' "
              "xmlns='jabber:component:accept'>")
    SHUTDOWN = ("<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                "</stream:error>")

    def __init__(self, host):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.address = self.sock.getsockname()
        self.accepted = 0
        self.halt = threading.Event()
        self.down = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.1)
        while not self.halt.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                self.serve(conn)
            except OSError:
                pass
            conn.close()

    def serve(self, conn):
        conn.settimeout(xt.timeout(3))
        data = b""
        while b">" not in data.split(b"<stream:stream", 1)[-1]:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        sid = str(random.getrandbits(64))
        conn.sendall((self.HEADER % (sid, CB1)).encode())
        data = b""
        while b"</handshake>" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        want = xt.Client.digest(sid, SECRET).encode()
        if b"<handshake>%s</handshake>" % want not in data:
            conn.sendall(b"<stream:error><not-authorized "
                         b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
                         b"</stream:stream>")
            return
        conn.sendall(b"<handshake/>")
        while not self.halt.is_set() and not self.down.wait(0.05):
            pass
        if self.down.is_set():
            conn.sendall(self.SHUTDOWN.encode())

    def shutdown(self):
        self.down.set()

    def stop(self):
        self.halt.set()
        self.thread.join(5)
        self.sock.close()


class EjabberdTest(xt.LabTest):
    prefix = "ejabberd-"

    # ------------------------------------------------------------ set-up

    def nodes(self, specs):
        """specs: (name, ip, keyword arguments) -> started Ejabberd nodes."""
        nodes = [Ejabberd(self.wd.path, name, ip, **kw) for name, ip, kw in specs]
        self.cleanups.append(lambda: kill_all(nodes))
        start_all(nodes)
        return nodes

    def dns(self, nodes):
        rr = []
        for i, n in enumerate(nodes):
            rr += n.records(10 * (i + 1))
        u = Unbound(self.wd.path, rr).start()
        self.cleanups.append(u.stop)
        return u

    def agent(self, u, **keys):
        a = Agent(self.wd.path, secret=SECRET, dns_server=u.address, **keys).start()
        self.cleanups.append(a.stop)
        return a

    def client(self, c):
        self.cleanups.append(c.close)
        return c

    def agent_sessions(self, a, node):
        """The agent's side: its sockets to node's service port, any state."""
        return [(state, local) for state, local, remote in tcp_sockets(a.pid)
                if remote == (node.ip, node.port)]

    def ping_cb1(self, node, count, prefix="lb"):
        """count pings from the probe component to cb1 through node; every one
        must come back answered by the agent. ejabberd spreads stanzas for a
        component over all its sessions at random: a second, dead session of
        ours would swallow about half of them."""
        probe = self.client(node.component())
        ids = ["%s-%d" % (prefix, i) for i in range(count)]
        probe.send("".join("<iq type='get' id='%s' from='%s' to='%s'><ping xmlns='%s'/></iq>" % (
            i, PROBE, CB1, xt.NS_PING) for i in ids))
        answered = []
        deadline = time.monotonic() + xt.timeout(5)
        try:
            while len(answered) < count and time.monotonic() < deadline:
                raw, e = probe.recv_stanza(max(0.05, deadline - time.monotonic()))
                self.assertEqual(e.tag, "{%s}iq" % xt.NS_COMPONENT, raw)
                self.assertEqual((e.get("type"), e.get("from"), e.get("to")),
                                 ("result", CB1, PROBE), raw)
                answered.append(e.get("id"))
        except AssertionError as err:
            if "no stanza within" not in str(err):
                raise
        self.assertEqual(sorted(answered), sorted(ids),
                         "%d of %d pings to cb1 through %s answered" % (
                             len(answered), count, node.name))
        probe.close()

    # ------------------------------------------------------------ tests

    def test_connect_by_srv(self):
        a_node, b_node = self.nodes([("a", "127.0.0.1", {}), ("b", "127.0.0.2", {})])
        # Only the two service listeners, on loopback; no epmd, no distribution.
        for n in (a_node, b_node):
            self.assertIn("is started in the node nonode@nohost", n.log_text())
            socks = [s for p in [n.pid] + n.children for s in listening(p)]
            self.assertEqual(sorted(socks), sorted([("tcp", n.ip, n.port),
                                                    ("tcp", n.ip, n.probe_port)]), n.name)
        u = self.dns([a_node, b_node])
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        st = a.wait_connected(10)
        self.assertEqual(st["server"], a_node.target)
        self.assertEqual(st["address"], "127.0.0.1")
        self.assertEqual(st["component"], CB1)
        self.assertEqual([n["target"] for n in st["nodes"]], [a_node.host, b_node.host])
        self.assertEqual([n["result"] for n in st["nodes"]], ["ok", "untried"])
        self.assertEqual(st["failovers"], "0")
        self.assertNotIn("last-error", st)
        self.assertIn("Accepted external component handshake authentication for %s from "
                      "127.0.0.1" % CB1, a_node.log_text())
        # Keepalive pings to the domain are answered (mod_ping): the session
        # outlives several keepalive periods.
        since = st["connected-since"]
        time.sleep(2.5)
        st = a.status()
        self.assertEqual((st["state"], st["connected-since"], st["failovers"]),
                         ("connected", since, "0"))
        self.assertNotIn("last-error", st)
        # Stanzas for cb1 reach the agent through ejabberd, and it answers.
        self.ping_cb1(a_node, 5)
        # SIGTERM: </stream:stream>, ejabberd answers it, clean exit.
        t0 = time.monotonic()
        a.process.signal(signal.SIGTERM)
        self.assertEqual(a.process.wait(5), 0)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(a.status()["state"], "stopped")
        xt.wait_until(lambda: a_node.service_sessions() == [], 3, "ejabberd closed its side")

    def test_failover_after_sigkill(self):
        a_node, b_node = self.nodes([("a", "127.0.0.1", {}), ("b", "127.0.0.2", {})])
        u = self.dns([a_node, b_node])
        a = self.agent(u)
        a.wait_connected(10, server=a_node.target)
        t0 = time.monotonic()
        a_node.kill()
        st = a.wait_connected(5, server=b_node.target)
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertEqual(st["failovers"], "1")
        self.assertEqual(st["last-error"], "closed")
        self.assertIn(a_node.target, st["last-error-text"])
        self.assertEqual([n["result"] for n in st["nodes"]], ["closed", "ok"])
        self.ping_cb1(b_node, 5)

    def test_sigterm_of_active_node(self):
        # ejabberd 23.01 on SIGTERM closes component connections at once, and
        # the VM exits (0) about a second later. What it sends first is a
        # race: mostly nothing (a bare FIN), sometimes
        # <stream:error><system-shutdown/></stream:error> and a FIN without
        # </stream:stream>. Either way the agent fails over at once.
        a_node, b_node = self.nodes([("a", "127.0.0.1", {}), ("b", "127.0.0.2", {})])
        u = self.dns([a_node, b_node])
        a = self.agent(u)
        a.wait_connected(10, server=a_node.target)
        t0 = time.monotonic()
        a_node.signal(signal.SIGTERM)
        st = a.wait_connected(5, server=b_node.target)
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertEqual(st["failovers"], "1")
        if st["last-error"] == "stream":
            self.assertIn("system-shutdown", st["last-error-text"])
        else:
            self.assertEqual(st["last-error"], "closed")
            self.assertEqual(st["last-error-text"], "connection closed by %s (127.0.0.1)" %
                             a_node.target)
        self.assertEqual(st["nodes"][0]["result"], st["last-error"])
        self.assertEqual(a_node.process.wait(5), 0)
        a_node.reap_children()

    def test_replayed_shutdown_without_stream_end(self):
        # The racy form of the above, made certain: ejabberd's own bytes
        # replayed by two scripted nodes; the first ends the session with
        # <system-shutdown/> and a FIN, without </stream:stream>.
        first, second = Replay("127.0.0.4"), Replay("127.0.0.5")
        self.cleanups += [first.stop, second.stop]
        a = Agent(self.wd.path, secret=SECRET, server="%s:%d %s:%d" % (
            first.address + second.address)).start()
        self.cleanups.append(a.stop)
        a.wait_connected(5, server="%s:%d" % first.address)
        t0 = time.monotonic()
        first.shutdown()
        st = a.wait_connected(3, server="%s:%d" % second.address)
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(st["last-error"], "stream")
        self.assertEqual(st["last-error-text"], "stream error from %s:%d: system-shutdown" %
                         first.address)
        self.assertEqual(st["nodes"][0]["result"], "stream")
        self.assertEqual(first.accepted, 1)

    def test_component_named_as_the_domain(self):
        # ejabberd answers <conflict/> "Unable to register route on existing local
        # domain" to a component named like one of its hosts; the agent's own
        # check refuses component = domain before it ever connects.
        a = Agent(self.wd.path, name="samename", secret=SECRET, component=DOMAIN)
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("component %s is the domain itself" % DOMAIN, r.stderr)

    def test_wrong_secret_on_one_node(self):
        a_node, b_node = self.nodes([("a", "127.0.0.1", {"secret": "not-the-secret"}),
                                     ("b", "127.0.0.2", {})])
        u = self.dns([a_node, b_node])
        a = self.agent(u)
        st = a.wait_connected(10, server=b_node.target)
        self.assertEqual(st["nodes"][0]["target"], a_node.host)
        self.assertEqual(st["nodes"][0]["result"], "auth")
        self.assertEqual(st["nodes"][1]["result"], "ok")
        self.assertEqual(st["last-error"], "auth")
        # ejabberd's not-authorized has no <text/>.
        self.assertEqual(st["last-error-text"],
                         "authentication failure at %s (not-authorized)" % a_node.target)
        self.assertIn("Failed external component handshake authentication for %s" % CB1,
                      a_node.log_text())
        self.ping_cb1(b_node, 3)

    def test_one_session_after_failover_and_back(self):
        # ejabberd accepts a second session for a connected component and
        # spreads stanzas over both: an abandoned socket the agent kept open
        # would be a live duplicate. A (priority 10) -> SIGSTOP A -> B;
        # SIGCONT A; SIGKILL B -> A again: exactly one session of ours on A.
        a_node, b_node = self.nodes([("a", "127.0.0.1", {}), ("b", "127.0.0.2", {})])
        u = self.dns([a_node, b_node])
        a = self.agent(u, keepalive=1, keepalive_timeout=1)
        a.wait_connected(10, server=a_node.target)
        first = self.agent_sessions(a, a_node)
        self.assertEqual([s for s, _ in first], [TCP_ESTABLISHED])
        self.assertEqual(a_node.service_sessions(), [first[0][1]])

        a_node.signal(signal.SIGSTOP)
        st = a.wait_connected(6, server=b_node.target)
        self.assertEqual(st["last-error"], "timeout")
        self.assertEqual(st["nodes"][0]["result"], "timeout")
        # The agent let go of the session on A: no socket of its own remains.
        self.assertEqual(self.agent_sessions(a, a_node), [])
        a_node.signal(signal.SIGCONT)
        # A reads the agent's FIN and ends that session.
        xt.wait_until(lambda: a_node.service_sessions() == [], 5,
                      "ejabberd A closed the abandoned session")

        b_node.kill()
        st = a.wait_connected(8, server=a_node.target)
        self.assertEqual(st["failovers"], "2")
        now = self.agent_sessions(a, a_node)
        self.assertEqual([s for s, _ in now], [TCP_ESTABLISHED], now)
        self.assertNotEqual(now[0][1], first[0][1])
        self.assertEqual(a_node.service_sessions(), [now[0][1]])
        self.assertEqual(a_node.log_text().count(
            "Accepted external component handshake authentication for %s" % CB1), 2)
        # ejabberd's own view: every stanza for cb1 reaches the one live session.
        self.ping_cb1(a_node, 20)

    def test_direct_tls(self):
        pki = PKI(self.wd.path)
        # The seed's certificate: the domain as CN, the domain and the node as
        # subjectAltNames. A direct-TLS ejabberd_service listener presents
        # the certificate of its own certfile option: one PEM file with the
        # certificate, its key and the intermediate.
        leaf = pki.leaf("a-cert", cn=DOMAIN, dns=[DOMAIN, "a." + DOMAIN])
        chain = pki._cat("a-chain.pem", [leaf.cert, leaf.key, pki.inter.cert])
        (a_node,) = self.nodes([("a", "127.0.0.1", {"tls": True, "certfile": chain})])
        u = self.dns([a_node])
        a = self.agent(u, tls="direct", tls_ca=pki.ca)
        st = a.wait_connected(10)
        self.assertEqual(st["server"], a_node.target)
        self.assertIn(st["tls"], ("TLS1.2", "TLS1.3"))
        self.assertIn("CN=%s" % DOMAIN, st["tls-peer"])
        self.assertIn("intermediate CA", st["tls-issuer"])
        self.assertIn("Accepted external component handshake authentication for %s" % CB1,
                      a_node.log_text())
        self.ping_cb1(a_node, 3)

    def test_direct_tls_without_listener_certfile(self):
        # ejabberd 23.01 does not give a service listener a certificate from
        # the global certfiles (not even one naming the domain): it accepts
        # the TCP connection and closes it at the first TLS record, logging
        # nothing. The agent says so, marks the node tls, and backs off.
        pki = PKI(self.wd.path)
        leaf = pki.leaf("a-cert", cn=DOMAIN, dns=[DOMAIN, "a." + DOMAIN])
        (a_node,) = self.nodes([("a", "127.0.0.1", {"tls": True, "certfiles": [
            leaf.cert, leaf.key, pki.inter.cert, pki.root.cert]})])
        u = self.dns([a_node])
        a = self.agent(u, tls="direct", tls_ca=pki.ca)
        st = a.wait_status(lambda s: s.get("last-error") == "tls", 5, "a TLS error")
        self.assertEqual(st["last-error-text"],
                         "TLS failure at %s (127.0.0.1): the server closed the connection "
                         "during the TLS handshake" % a_node.target)
        self.assertEqual(st["nodes"][0]["result"], "tls")
        a.wait_status(lambda s: s["state"] == "backoff", 3, "backoff")


def main(argv):
    if erl_binary() is None or ejabberd_libs() is None:
        print("SKIP: ejabberd not installed")
        return 77
    return xt.main(EjabberdTest, argv, ("xcompd",))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
