"""ejabberdcluster: three ejabberd 23.01 nodes clustered on loopback, for
test_ejabberd_cluster.py and bench/ejabberd_cluster.py.

Builds on test_interop_ejabberd (one node started by erl, readiness on its
service port, SIGKILL by pid with its helper processes):
  Epmd         a private epmd on a free port, bound to 127.0.0.1 (and ::1,
               which epmd always adds: still loopback), stopped by pid.
  ClusterNode  an Ejabberd distributed as xN@localhost: the distribution on
               127.0.0.1 at a fixed free port, the private epmd, the
               cluster's cookie in HOME/.erlang.cookie; one ejabberd_service
               listener on 127.0.0.N for cb1, cb2, cb3 and far, with
               global_routes: false (else one component's session
               registers a route for every host of the listener).
  EjabberdCluster  epmd and the nodes started; nodes 2.. join node 1 with
               ejabberd_admin:join_cluster through erl_call (what
               `ejabberdctl join_cluster` calls; ejabberdctl as root would
               switch to the ejabberd user, who cannot read our cookie);
               members() is ejabberd_admin:list_cluster(), the running
               Mnesia nodes.
"""

import glob
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time

import xcomptest as xt
from agenttest import DOMAIN, a_record, listen_port
from test_interop_ejabberd import (Ejabberd, descendants, ejabberd_libs, erl_binary, kill_all,
                                   listening, start_all)

BRIDGES = ("cb1", "cb2", "cb3")
FAR = "far"
SECRETS = {"cb1": "s3cret", "cb2": "s3cret-two", "cb3": "s3cret-three", FAR: "f4r-s3cret"}


def jid(name):
    return "%s.%s" % (name, DOMAIN)


def erl_call_binary():
    found = shutil.which("erl_call")
    if found:
        return found
    found = sorted(glob.glob("/usr/lib/erlang/lib/erl_interface-*/bin/erl_call"))
    return found[-1] if found else None


def epmd_binary():
    return shutil.which("epmd") or next(iter(sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))),
                                        None)


def missing():
    """Why the cluster cannot run here, or None."""
    if erl_binary() is None or ejabberd_libs() is None:
        return "ejabberd not installed"
    if erl_call_binary() is None:
        return "erl_call not installed (Debian: erlang-base)"
    if epmd_binary() is None:
        return "epmd not installed"
    return None


def loopback(ip):
    return ip.startswith("127.") or ip == "::1"


class Epmd:
    """epmd -address 127.0.0.1 -port P, in the foreground, ours by pid."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.process = None
        self.port = None

    def start(self):
        for attempt in range(3):
            self.port = listen_port("127.0.0.1")
            self.process = xt.Process([epmd_binary(), "-address", "127.0.0.1", "-port",
                                       str(self.port)], self.workdir, "epmd").start()

            def up():
                if self.process.poll() is not None:
                    return True
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return True
                except OSError:
                    return False
            xt.wait_until(up, 10, "epmd on 127.0.0.1:%d" % self.port)
            if self.process.poll() is None and ("tcp", "127.0.0.1", self.port) in listening(
                    self.process.pid):
                return self
            self.process.stop()
            sys.stderr.write("  epmd: port %d taken, again\n" % self.port)
        raise AssertionError("epmd did not start: %s" % self.process.log_text())

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        return self.process.stop() if self.process else None


class ClusterNode(Ejabberd):
    """One distributed ejabberd node of an EjabberdCluster."""

    def __init__(self, cluster, name, ip):
        super().__init__(cluster.workdir, name, ip)
        self.cluster = cluster
        self.nodename = "%s@localhost" % name
        self.port = self.dist_port = None
        self.pinned = False
        self.members_seen = []

    def write_conf(self):
        if not self.pinned:
            self.port = listen_port(self.ip)
            self.dist_port = listen_port("127.0.0.1")
        self.probe_port = self.port  # Ejabberd.wait_ready checks both
        lines = [
            "hosts:",
            '  - "%s"' % DOMAIN,
            "loglevel: info",
            # Never reach out: no ACME, no outgoing s2s (a stanza for a
            # component that has no route bounces at once).
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
            "    global_routes: false",
            "    hosts:",
        ]
        for name, secret in SECRETS.items():
            lines += ['      "%s":' % jid(name), '        password: "%s"' % secret]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def environ(self):
        env = super().environ()
        env.update({"ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": str(self.cluster.epmd.port)})
        return env

    def argv(self):
        # Distribution on 127.0.0.1 only, at one port; the private epmd
        # (never one started by the VM). erl execs beam.smp: the pid is the VM's.
        return [erl_binary(), "-noinput", "-sname", self.nodename, "-start_epmd", "false",
                "+K", "true",
                "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
                "-kernel", "inet_dist_listen_min", str(self.dist_port),
                "-kernel", "inet_dist_listen_max", str(self.dist_port),
                "-mnesia", "dir", '"%s"' % self.spool, "-s", "ejabberd"]

    def start(self):
        path = os.path.join(self.dir, ".erlang.cookie")
        if not os.path.exists(path):  # mode 0400: a restart cannot write it again
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            os.write(fd, self.cluster.cookie.encode())
            os.close(fd)
        return super().start()

    def wait_ready(self, seconds=60.0):
        return super().wait_ready(seconds)

    def restart(self):
        """Start a killed node again on its own spool, ports and addresses."""
        self.pinned = True
        self.start()
        self.wait_ready()
        return self

    def note_children(self):
        """Add the VM's helper processes of now to those reaped after it (a
        join restarts ejabberd's application, which may start new ones)."""
        if self.alive():
            self.children = sorted(set(self.children) | set(descendants(self.pid)))

    def kill(self):
        """SIGKILL and reap, with the helpers."""
        self.note_children()
        return super().kill()

    def alive(self):
        return self.process is not None and self.process.poll() is None

    @property
    def target(self):
        return "%s:%d" % (self.host, self.port)

    def component(self, name=FAR, client_name=None):
        """An authenticated session of component name on this node."""
        c = xt.Client((self.ip, self.port), name=client_name or "%s@%s" % (name, self.name))
        c.send(c.stream_header(jid(name)))
        c.expect_header(seconds=10)
        c.handshake(SECRETS[name])
        return c

    def sockets(self):
        """(proto, ip, port) of the listening sockets of the VM and its helpers."""
        return sorted(set(s for p in [self.pid] + descendants(self.pid) for s in listening(p)))


class EjabberdCluster:
    """epmd and n ClusterNodes x1..xn on 127.0.0.1..n, one cookie."""

    def __init__(self, workdir, n=3):
        self.workdir = workdir
        self.cookie = secrets.token_hex(16)
        self.epmd = Epmd(workdir)
        self.nodes = [ClusterNode(self, "x%d" % (i + 1), "127.0.0.%d" % (i + 1))
                      for i in range(n)]
        self.join_ms = []

    # -- control

    def erl_call(self, node, expr, seconds=30):
        """Evaluate expr on node through erl_call: its printed result
        ("{ok, ...}"), or AssertionError. erl_call finds the node through the
        private epmd and reads the cookie from HOME."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": node.dir,
               "ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": str(self.epmd.port)}
        try:
            r = subprocess.run([erl_call_binary(), "-timeout", str(int(xt.timeout(seconds))),
                                "-sname", node.nodename, "-e"], input=expr + "\n", env=env,
                               capture_output=True, text=True, timeout=xt.timeout(seconds) + 10)
        except subprocess.TimeoutExpired:
            raise AssertionError("erl_call on %s: %r did not return" % (node.name, expr)) from None
        if r.returncode != 0 or not r.stdout.startswith("{ok"):
            raise AssertionError("erl_call on %s: %r: exit %d: %s%s" % (
                node.name, expr, r.returncode, r.stdout, r.stderr))
        return r.stdout.strip()

    def members(self, node):
        """ejabberd_admin:list_cluster() on node: the running members' names."""
        out = self.erl_call(node, "ejabberd_admin:list_cluster().", seconds=10)
        return sorted(re.findall(r"x\d+@localhost", out))

    def routes(self, node, names):
        """How many routes (component sessions) node's router has for each jid."""
        # A tuple: erl_call prints a list of small integers as a string.
        expr = "list_to_tuple([length(mnesia:dirty_read(route, H)) || H <- [%s]])." % ",".join(
            '<<"%s">>' % jid(n) for n in names)
        out = self.erl_call(node, expr, seconds=10)
        m = re.fullmatch(r"\{ok,\s*\{([\d,\s]*)\}\}", out)
        if m is None:
            raise AssertionError("routes on %s: %s" % (node.name, out))
        return dict(zip(names, [int(x) for x in re.findall(r"\d+", m.group(1))]))

    def wait_routes(self, nodes, want, seconds=15):
        """Every node in nodes has want[name] routes for each component name
        (Mnesia replicates a registration to the others a moment later)."""
        last = {}

        def ok():
            for n in nodes:
                last[n.name] = self.routes(n, list(want))
                if last[n.name] != want:
                    return False
            return True
        try:
            xt.wait_until(ok, seconds, "routes %s" % want)
        except AssertionError as e:
            raise AssertionError("%s; last seen %s" % (e, last)) from None

    def wait_members(self, expected=None, nodes=None, seconds=60):
        """Every node in nodes lists exactly expected (default: all) as running."""
        nodes = nodes or [n for n in self.nodes if n.alive()]
        want = sorted(n.nodename for n in (expected or self.nodes))
        last = {}

        def ok():
            for n in nodes:
                try:
                    last[n.name] = self.members(n)
                except AssertionError as e:
                    last[n.name] = str(e)
                if last[n.name] != want:
                    return False
            return True
        try:
            xt.wait_until(ok, seconds, "members %s" % want)
        except AssertionError as e:
            raise AssertionError("%s; last seen %s" % (e, last)) from None

    def join(self, node, to):
        """ejabberd's own join: node's ejabberd stops, copies to's Mnesia and
        starts again (its listeners are down for a moment)."""
        t0 = time.monotonic()
        out = self.erl_call(node, 'ejabberd_admin:join_cluster(<<"%s">>).' % to.nodename, 60)
        if out.replace(" ", "") != "{ok,ok}":
            raise AssertionError("join_cluster on %s: %s" % (node.name, out))
        xt.wait_until(lambda: ("tcp", node.ip, node.port) in listening(node.pid), 30,
                      "%s listening again after the join" % node.name)
        node.note_children()
        self.join_ms.append((time.monotonic() - t0) * 1000)

    # -- bring-up

    def start(self):
        self.epmd.start()
        start_all(self.nodes)
        for n in self.nodes:
            n.pinned = True
        for n in self.nodes[1:]:
            self.join(n, self.nodes[0])
        self.wait_members()
        return self

    def stop(self):
        for n in self.nodes:
            n.note_children()
        kill_all(self.nodes)
        self.epmd.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- DNS

    def records(self, service_label, order, ttl=60):
        """SRV records under _SERVICE._tcp.DOMAIN for the nodes, priorities
        10, 20, 30 in order (indexes into nodes), and their A records."""
        rr = []
        for prio, i in enumerate(order):
            n = self.nodes[i]
            rr.append("_%s._tcp.%s. %d IN SRV %d 10 %d %s." % (
                service_label, DOMAIN, ttl, 10 * (prio + 1), n.port, n.host))
        return rr

    def a_records(self):
        return [a_record(n.host, n.ip) for n in self.nodes]

    def by_target(self, server):
        for n in self.nodes:
            if n.target == server:
                return n
        raise AssertionError("no node is %s" % server)


def wait_routed(sender, frm, receiver, to, seconds=10.0, every=0.005, tag="w", also=None):
    """Send numbered messages frm -> to (jids) every `every` seconds until one
    reaches receiver; bounces coming back to the sender are dropped. also():
    called after every message (e.g. to watch an agent's status). The time
    it took and the number sent."""
    t0 = time.monotonic()
    deadline = t0 + xt.timeout(seconds)
    sent = 0
    while time.monotonic() < deadline:
        sender.send("<message from='%s' to='%s' id='%s%d'><body>probe</body></message>" % (
            frm, to, tag, sent))
        sent += 1
        end = time.monotonic() + every
        while time.monotonic() < end:
            receiver._read(end)
            if "id='%s" % tag in receiver.pending():
                return time.monotonic() - t0, sent
        if also:
            also()
        sender.pos = len(sender.data)
        sender._read(time.monotonic() + 0.0005)
    raise AssertionError("no message %s -> %s within %.1f s (%d sent)" % (
        frm, to, xt.timeout(seconds), sent))


def drain(client, quiet=0.3, seconds=10.0):
    """Everything a client receives until it is quiet for `quiet` seconds."""
    deadline = time.monotonic() + xt.timeout(seconds)
    while time.monotonic() < deadline and not client.eof:
        if not client._read(min(deadline, time.monotonic() + quiet)):
            break
    text = client.pending()
    client.pos = len(client.data)
    return text

