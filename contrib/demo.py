#!/usr/bin/env python3
"""The README's demo: the seed's topology, on one machine.

A CA and three node certificates made now with certtool; three xcomp-server
nodes on 127.0.0.1, .2 and .3 set up in the Meeting Server's order (cluster
listen, trust, enable; initialize on the first, join on the others); SRV
records for them in a local unbound for each call bridge's site, each listing
its own node first; three xcompd (cb1, cb2, cb3), each with a component of its
own behind its relay; cluster status on each node; a message from cb1 to cb3
across nodes and the answer; the leader killed; the new leader's cluster
status; the agents that were on the dead node connected elsewhere; the message
again. Everything it starts it stops, by pid.

    python3 contrib/demo.py        (after a build; sh contrib/quickstart.sh demo)
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
os.environ.setdefault("XCOMP_BUILDDIR", TOP)
os.environ.setdefault("XCOMP_SRCDIR", TOP)

import xcomptest as xt  # noqa: E402
from agenttest import DOMAIN, Agent, Unbound, a_record, srv_record  # noqa: E402

BRIDGES = ("cb1", "cb2", "cb3")
WD = ""  # the work directory, left out of the commands shown


def say(text):
    print("\n\033[1m== %s\033[0m" % text if sys.stdout.isatty() else "\n== %s" % text,
          flush=True)


def short(arg):
    arg = str(arg)
    if arg.startswith(TOP + "/"):
        arg = os.path.basename(arg)
    return arg.replace(WD + "/", "") if WD else arg


def show(argv, input=None, quiet=False, check=True):
    """Run a command, print it as typed and, unless quiet, what it printed."""
    print("$ " + " ".join(short(a) for a in argv), flush=True)
    r = subprocess.run(argv, input=input if input is not None else "", capture_output=True,
                       text=True, timeout=30, cwd=WD or None)
    if not quiet:
        sys.stdout.write(r.stdout + r.stderr)
    elif r.returncode != 0:
        sys.stdout.write(r.stderr)
    sys.stdout.flush()
    if check and r.returncode != 0 and not quiet:
        print("(exit status %d)" % r.returncode)
    if check and r.returncode != 0 and quiet:
        raise SystemExit("%s: exit status %d" % (os.path.basename(argv[0]), r.returncode))
    return r


# ------------------------------------------------------------------ the PKI

def certtool(*args):
    show(["certtool"] + list(args), quiet=True)


def template(name, lines):
    path = os.path.join(WD, name + ".tmpl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def make_pki():
    """The cluster's CA and one certificate per node, for TLS server and client
    use both (each node dials the others and takes their links)."""
    ca_key = os.path.join(WD, "ca.key")
    ca = os.path.join(WD, "cluster-ca.pem")
    certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", ca_key)
    t = template("ca", ['cn = "tptac9 cluster CA"', "ca", "cert_signing_key",
                        "expiration_days = 30"])
    certtool("--generate-self-signed", "--load-privkey", ca_key, "--template", t,
             "--outfile", ca)
    nodes = []
    for i in (1, 2, 3):
        key = os.path.join(WD, "xs%d.key" % i)
        crt = os.path.join(WD, "xs%d.crt" % i)
        certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", key)
        os.chmod(key, 0o600)
        t = template("xs%d" % i, ['cn = "xs%d.%s"' % (i, DOMAIN),
                                  'dns_name = "xs%d.%s"' % (i, DOMAIN),
                                  'ip_address = "127.0.0.%d"' % i,
                                  "tls_www_server", "tls_www_client", "signing_key",
                                  "expiration_days = 30"])
        certtool("--generate-certificate", "--load-privkey", key, "--load-ca-privkey", ca_key,
                 "--load-ca-certificate", ca, "--template", t, "--outfile", crt)
        nodes.append((key, crt))
    print("$ cat xs1.tmpl")
    print(open(os.path.join(WD, "xs1.tmpl")).read().rstrip())
    return ca, nodes


# ---------------------------------------------------------------- the nodes

class Node:
    """One xcomp-server node: its state directory and its process."""

    def __init__(self, i):
        self.i = i
        self.name = "xs%d" % i
        self.ip = "127.0.0.%d" % i
        self.host = "%s.%s" % (self.name, DOMAIN)
        self.dir = os.path.join(WD, self.name)
        self.process = None
        self.port = None  # the component listener
        self.cluster = None  # the cluster listener, "IP:PORT"

    def cmd(self, *args, input=None, quiet=False, check=True):
        return show([xt.program("xcomp-server"), "-d", self.dir] + list(args), input=input,
                    quiet=quiet, check=check)

    def run(self, *args, input=None):
        """The same, not shown."""
        return subprocess.run([xt.program("xcomp-server"), "-d", self.dir] + list(args),
                              input=input or "", capture_output=True, text=True, timeout=30)

    def start(self):
        print("$ xcomp-server -d %s run 2>%s.log &" % (self.name, self.name))
        listening = os.path.join(self.dir, "listening")
        self.process = xt.Process([xt.program("xcomp-server"), "-d", self.dir, "run"], WD,
                                  self.name).start()

        def ready():
            if self.process.poll() is not None:
                raise SystemExit("%s exited with %s:\n%s" % (
                    self.name, self.process.returncode, self.process.log_text()))
            try:
                with open(listening) as f:
                    lines = [ln.split() for ln in f if ln.strip()]
            except FileNotFoundError:
                return False
            for w in lines:
                if w[1:] == ["cluster"]:
                    self.cluster = w[0]
                elif not w[1:]:
                    self.port = int(w[0].rsplit(":", 1)[1])
            return self.port is not None and self.cluster is not None
        xt.wait_until(ready, 10, "%s listening" % self.name)
        return self

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def status(self):
        """cluster status: (exit status, state, leader address, text)."""
        r = self.run("cluster", "status")
        m = re.search(r"^State: (.*)$", r.stdout, re.M)
        leader = re.search(r"^(\S+) \(Leader\)$", r.stdout, re.M)
        return (r.returncode, m.group(1) if m else None, leader.group(1) if leader else None,
                r.stdout)

    def stop(self):
        if self.process:
            self.process.stop()


def wait_cluster(nodes, members, seconds=10):
    """Every node agrees on one leader and hears every other member."""
    def agreed():
        seen = set()
        for n in nodes:
            rc, state, leader, text = n.status()
            if rc != 0 or leader is None:
                return False
            if len(re.findall(r"^Member \S+ \S+ (?:this node|alive)", text, re.M)) != members:
                return False
            seen.add(leader)
        return len(seen) == 1
    xt.wait_until(agreed, seconds, "one leader that every node agrees on")


def wait_route(node, jid, seconds=5):
    """node knows where jid is connected (a Member line lists it)."""
    xt.wait_until(lambda: re.search(r"^Member .*components: .*\b%s\b" % re.escape(jid),
                                    node.status()[3], re.M) is not None,
                  seconds, "%s knowing where %s is" % (node.name, jid))


# ---------------------------------------------------------------- the bridges

def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bridge:
    """A call bridge: xcompd, and a component connected to its relay."""

    def __init__(self, i, secret, dns):
        self.name = BRIDGES[i]
        self.jid = "%s.%s" % (self.name, DOMAIN)
        self.secret = secret
        self.relay_port = free_tcp_port()
        self.agent = Agent(WD, name=self.name, secret=secret, dns_server=dns,
                           relay_listen="127.0.0.1:%d" % self.relay_port,
                           keepalive=5, keepalive_timeout=2, log_level="info")
        self.agent.conf["name"] = self.name
        self.agent.write_conf(self.agent.conf)
        self.local = None

    def start(self):
        print("$ xcompd -f %s.conf &" % self.name)
        self.agent.start()
        return self

    def connect_local(self):
        self.agent.wait_status(lambda s: s.get("relay") == "listening", 5, "relay listening")
        self.local = xt.Client(("127.0.0.1", self.relay_port), name=self.name)
        self.local.open_stream(self.jid)
        self.local.handshake(self.secret)

    def server(self):
        st = self.agent.status() or {}
        return st.get("server", "") if st.get("state") == "connected" else ""

    def stop(self):
        if self.local:
            self.local.close()
        self.agent.stop()


def node_of(bridge, nodes):
    host = bridge.server().rsplit(":", 1)[0]
    return next((n for n in nodes if n.host == host), None)


def exchange(a, b, nodes, n):
    """A message from a to b and b's answer, through whichever nodes they are on."""
    na, nb = node_of(a, nodes), node_of(b, nodes)
    print("%s is on %s, %s on %s" % (a.name, na.name, b.name, nb.name))
    t0 = time.monotonic()
    msg = ("<message from='%s' to='%s' id='m%d'><body>hello %s, from %s (%d)</body></message>"
           % (a.jid, b.jid, n, b.name, a.name, n))
    a.local.send(msg)
    raw, _ = b.local.recv_stanza(5)
    t1 = time.monotonic()
    print("%s -> %s: %s" % (a.name, b.name, raw))
    b.local.send("<message from='%s' to='%s' id='r%d'><body>got it</body></message>"
                 % (b.jid, a.jid, n))
    raw, _ = a.local.recv_stanza(5)
    t2 = time.monotonic()
    print("%s -> %s: %s" % (b.name, a.name, raw))
    print("(%.1f ms there, %.1f ms back)" % ((t1 - t0) * 1000, (t2 - t1) * 1000))


# ---------------------------------------------------------------- the demo

def main():
    global WD
    t_start = time.monotonic()
    xcomp = xt.program("xcomp")
    nodes, unbounds, bridges = [], [], []
    with xt.Workdir("demo") as wd:
        WD = wd.path
        os.chdir(WD)
        try:
            say("A CA for the cluster and a certificate for each node, made now with certtool")
            ca, pki = make_pki()

            say("Three XMPP nodes (xcomp-server) for %s on 127.0.0.1, .2 and .3, "
                "set up alike" % DOMAIN)
            nodes = [Node(i) for i in (1, 2, 3)]
            secrets = {}
            for n, (key, crt) in zip(nodes, pki):
                n.cmd("domain", DOMAIN, quiet=True)
                n.cmd("listen", "%s:0" % n.ip, quiet=True)
                for b in BRIDGES:
                    if n.i == 1:
                        out = n.cmd("callbridge", "add", b, quiet=True).stdout
                        secrets[b] = re.search(r"^Secret\s*: (\S+)$", out, re.M).group(1)
                    else:
                        n.cmd("callbridge", "add-secret", b, input=secrets[b] + "\n",
                              quiet=True)
                n.cmd("certs", key, crt, quiet=True)
                n.cmd("cluster", "listen", "%s:0" % n.ip, quiet=True)
                n.cmd("cluster", "trust", ca, quiet=True)
                n.cmd("cluster", "enable")
            nodes[1].cmd("callbridge", "list")
            for n in nodes:
                n.start()

            say("The cluster: initialized on xs1, joined from xs2 and xs3")
            nodes[0].cmd("cluster", "initialize")
            # One change at a time, each seen through before the next
            # (xcomp-server(8), Cluster limits): a leader first, then each join.
            xt.wait_until(lambda: nodes[0].status()[0] == 0, 10, "xs1 leading")
            for n in nodes[1:]:
                n.cmd("cluster", "join", nodes[0].cluster)
                xt.wait_until(lambda: n.status()[0] == 0, 10, "%s following" % n.name)
            wait_cluster(nodes, 3)
            for n in nodes:
                n.cmd("cluster", "status")

            say("Each call bridge's site resolver (unbound) publishes the three nodes as "
                "SRV records, its own node first")
            for i in range(3):
                order = [nodes[(i + k) % 3] for k in range(3)]
                rr = []
                for k, n in enumerate(order):
                    rr += [srv_record(10 * (k + 1), 10, n.port, n.host), a_record(n.host, n.ip)]
                u = Unbound(WD, rr, name="unbound-%s" % BRIDGES[i]).start()
                unbounds.append(u)
                show([xcomp, "resolve", "--dns-server", u.address, DOMAIN], check=False)

            say("Three xcompd, cb1, cb2 and cb3, each with its call bridge (a component) "
                "behind its relay")
            for i, b in enumerate(BRIDGES):
                bridges.append(Bridge(i, secrets[b], unbounds[i].address))
            print("$ cat cb1.conf")
            print(short(open(os.path.join(WD, "cb1.conf")).read().rstrip()))
            for b in bridges:
                b.start()
            for b in bridges:
                b.agent.wait_connected(5)
                b.connect_local()
                print("%s: connected to %s" % (b.name, b.server()))
            cb1, cb3 = bridges[0], bridges[2]
            wait_route(node_of(cb1, nodes), cb3.jid)
            nodes[0].cmd("cluster", "status")

            say("A message from cb1 to cb3, across nodes")
            exchange(cb1, cb3, nodes, 1)

            _, _, leader_addr, _ = nodes[0].status()
            leader = next(n for n in nodes if n.cluster == leader_addr)
            on_leader = [b for b in bridges if node_of(b, nodes) is leader]
            say("The leader, %s (%s), is killed (SIGKILL); on it: %s" % (
                leader.name, leader_addr, ", ".join(b.name for b in on_leader) or "nobody"))
            print("$ kill -KILL %d" % leader.process.pid)
            t0 = time.monotonic()
            leader.process.signal(signal.SIGKILL)
            leader.process.wait(5)
            rest = [n for n in nodes if n is not leader]

            say("The call bridges that were on %s are connected elsewhere" % leader.name)
            for b in on_leader:
                b.agent.wait_status(lambda s: s.get("state") == "connected" and
                                    not s.get("server", "").startswith(leader.host + ":"),
                                    10, "%s failed over" % b.name)
                print("%s: connected to %s %.0f ms after the kill" % (
                    b.name, b.server(), (time.monotonic() - t0) * 1000))
                show([xcomp, "status", "-s", b.agent.status_path], check=False)

            def new_leader():
                for n in rest:
                    rc, state, addr, _ = n.status()
                    if rc == 0 and addr and addr != leader_addr:
                        return next(m for m in rest if m.cluster == addr)
                return None
            say("A new leader")
            xt.wait_until(lambda: new_leader() is not None, 10, "a new leader")
            print("%s leads, %.0f ms after the kill" % (new_leader().name,
                                                       (time.monotonic() - t0) * 1000))
            new_leader().cmd("cluster", "status")
            wait_route(node_of(cb1, nodes), cb3.jid)

            say("The message again")
            exchange(cb1, cb3, nodes, 2)
        finally:
            for b in bridges:
                b.stop()
            for u in unbounds:
                u.stop()
            for n in nodes:
                n.stop()
            os.chdir(TOP)
        say("Everything stopped (%.0f s in all). Read more: man ./man/xcomp-server.8 "
            "(CLUSTER), man ./man/xcomp-troubleshooting.7" % (time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
