"""clustertest: xcomp-server nodes clustered on loopback, for the cluster's
integration tests and bench/cluster.py.

Builds on xcomptest (processes stopped by pid, bounded waits) and pki (certtool):
  Lab       N nodes n1, n2, n3... on 127.0.0.1, .2, .3..., one cluster CA, each
            node's certificate naming its IP; set up in the seed's order:
            certs, cluster listen, cluster trust, cluster enable; start all;
            initialize on the first; join the others to it.
  Node      an xt.Server that also reads its "IP:PORT cluster" line from
            DIR/listening and knows call bridges cb1, cb2, cb3 (the same
            secrets on every node, so a component may connect anywhere).
  parse_cluster_status  `cluster status` as a dict (state, leader, term,
            members...); Lab.wait_for_leader: exactly one LEADER, every node
            agreeing on it and on the term.
  Sampler   `cluster status` of every node every 50 ms over the control
            socket, in threads; Sampler.leaders_per_term() for the check that
            no term ever has two leaders.
"""

import os
import re
import signal
import socket
import threading
import time

import pki as pkimod
import xcomptest as xt

DOMAIN = "tptac9.test"
BRIDGES = ("cb1", "cb2", "cb3")
SECRETS = {"cb1": "s3cret", "cb2": "s3cret-two", "cb3": "s3cret-three"}


def jid(bridge):
    return "%s.%s" % (bridge, DOMAIN)


def message(i, frm="cb1", to="cb3", tag="m"):
    return "<message from='%s' to='%s' id='%s%d'><body>number %d</body></message>" % (
        jid(frm), jid(to), tag, i, i)


def node_cert(ca, name, ip):
    """A node's key and certificate, for TLS both ways (server and client),
    naming the node by DNS name and by IP."""
    host = "%s.%s" % (name, DOMAIN)
    return ca._make(name, [
        'cn = "%s"' % host, 'dns_name = "%s"' % host, 'ip_address = "%s"' % ip,
        "signing_key", "encryption_key", "tls_www_server", "tls_www_client",
        "expiration_days = 365"], signer=ca.inter)


# ------------------------------------------------------------ cluster status

_PEER = re.compile(r"^(\S+:\d+)((?: \([^)]*\))*)$")
_FIELD = re.compile(r"^(Key file|Certificate file|Trust bundle|Node id|Term|Members)\s*: ?(.*)$")
_MEMBER = re.compile(r"^Member (\S+) (\S+:\d+) (.*)$")


def parse_cluster_status(text, rc=None):
    """`cluster status` as a dict:
    rc, text, state ("LEADER"...), peers [(addr, [marks])], leader (the
    address marked "(Leader)" or None), last_change, key, cert, trust,
    node_id, term (int), members_count, majority, members [{id, addr, rest,
    alive (bool), this (bool), components [jid...]}], events [text]."""
    st = {"rc": rc, "text": text, "state": None, "peers": [], "leader": None,
          "last_change": None, "members": [], "events": [], "term": None,
          "node_id": None, "members_count": None, "majority": None}
    in_peers = False
    for ln in text.splitlines():
        if ln.startswith("State: "):
            st["state"] = ln[len("State: "):]
        elif ln == "List of peers":
            in_peers = True
        elif ln.startswith("Last state change:"):
            in_peers = False
            st["last_change"] = ln.split(":", 1)[1].strip()
        elif in_peers and _PEER.match(ln):
            m = _PEER.match(ln)
            marks = re.findall(r"\(([^)]*)\)", m.group(2))
            st["peers"].append((m.group(1), marks))
            if "Leader" in marks:
                st["leader"] = m.group(1)
        elif _FIELD.match(ln):
            in_peers = False
            k, v = _FIELD.match(ln).groups()
            if k == "Term":
                st["term"] = int(v)
            elif k == "Members":
                m = re.match(r"(\d+)(?: \(majority (\d+))?", v)
                st["members_count"] = int(m.group(1)) if m else None
                st["majority"] = int(m.group(2)) if m and m.group(2) else None
            else:
                st[{"Key file": "key", "Certificate file": "cert", "Trust bundle": "trust",
                    "Node id": "node_id"}[k]] = v
        elif _MEMBER.match(ln):
            mid, addr, rest = _MEMBER.match(ln).groups()
            comps = []
            if "components: " in rest:
                comps = [c for c in re.split(r"[,\s]+", rest.split("components: ", 1)[1]) if c]
            st["members"].append({"id": mid, "addr": addr, "rest": rest,
                                  "this": rest.startswith("this node"),
                                  "alive": rest.startswith("this node") or
                                  rest.startswith("alive"),
                                  "components": comps})
        elif ln.startswith("Event: "):
            st["events"].append(ln[len("Event: "):])
    return st


def control_request(dir_, line, seconds=1.0):
    """One request over DIR/control.sock: (status, text), or (None, reason)
    when the server does not answer in time (a stopped process)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(seconds)
    data = b""
    try:
        s.connect(os.path.join(dir_, "control.sock"))
        s.sendall(line.encode() + b"\n")
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError as e:
        return None, str(e)
    finally:
        s.close()
    text = data.decode("utf-8", "replace")
    first, _, rest = text.partition("\n")
    try:
        return int(first), rest
    except ValueError:
        return None, "bad answer %r" % text[:200]


# ------------------------------------------------------------------- nodes

class Node(xt.Server):
    """An xcomp-server node of a cluster, named nI on 127.0.0.I."""

    def __init__(self, workdir, index, ca, policy="kick-new", settings=(), cert=None,
                 trust=None, enable=True):
        self.index = index
        self.ip = "127.0.0.%d" % index
        super().__init__(workdir, name="n%d" % index, domain=DOMAIN, listen=(self.ip + ":0",),
                         bridges=(), settings=[("conflict-policy", policy)] + list(settings))
        self.host = "n%d.%s" % (index, DOMAIN)
        for b in BRIDGES:
            self.must("callbridge", "add-secret", b, input=SECRETS[b] + "\n")
            self.secrets[b] = SECRETS[b]
        self.cluster_address = None
        self.ca = ca
        self.cert = cert or node_cert(ca, self.name, self.ip)
        self.trust = trust or ca.bundle
        if enable:
            self.configure()

    def configure(self, port=0):
        """The seed's order: certs, cluster listen, cluster trust, cluster enable."""
        self.must("certs", self.cert.key, self.cert.cert, self.ca.bundle)
        self.must("cluster", "listen", "%s:%d" % (self.ip, port))
        self.must("cluster", "trust", self.trust)
        self.must("cluster", "enable")

    def start(self):
        """Start and read DIR/listening: the client listeners and the
        "IP:PORT cluster" line (cluster_address, "IP:PORT")."""
        listening = os.path.join(self.dir, "listening")
        try:
            os.unlink(listening)  # left behind by a SIGKILL
        except FileNotFoundError:
            pass
        self.addresses, self.tls_addresses, self.clients = [], [], []
        self.process = xt.Process([xt.program("xcomp-server"), "-v", "-d", self.dir, "run"],
                                  self.workdir, self.name, valgrind=xt.VALGRIND).start()
        xt.wait_for_file(listening, 10, self.process)
        # The cluster line may follow the others: wait for the whole file.
        deadline = time.monotonic() + xt.timeout(5)
        while True:
            with open(listening) as f:
                lines = [ln.strip() for ln in f if ln.strip()]
            if any(ln.endswith(" cluster") for ln in lines) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        for ln in lines:
            words = ln.split()
            host, port = words[0].rsplit(":", 1)
            addr = (host.strip("[]"), int(port))
            if words[1:] == ["cluster"]:
                self.cluster_address = words[0]
            elif words[1:] == ["tls"]:
                self.addresses.append(addr)
                self.tls_addresses.append(addr)
            elif not words[1:]:
                self.addresses.append(addr)
            else:
                raise AssertionError("%s: unexpected line %r" % (listening, ln))
        return self

    def pin_ports(self):
        """Make the next start bind the same client and cluster ports (a
        member's address is its identity to the others)."""
        host, port = self.address
        self.must("listen", "none")
        self.must("listen", "%s:%d" % (host, port))
        if self.cluster_address:
            self.must("cluster", "listen", self.cluster_address)

    def running(self):
        return self.process is not None and self.process.proc.poll() is None

    def cluster_status(self):
        """`xcomp-server -d DIR cluster status` (the CLI), parsed."""
        r = self.cmd("cluster", "status")
        st = parse_cluster_status(r.stdout, r.returncode)
        st["stderr"] = r.stderr
        return st

    def quick_status(self, seconds=0.5):
        """The same over the control socket (no process spawned); None when
        the server does not answer in time."""
        rc, text = control_request(self.dir, "cluster status", seconds)
        if rc is None:
            return None
        return parse_cluster_status(text, rc)

    def kill(self, signo=signal.SIGKILL):
        self.process.signal(signo)
        if signo in (signal.SIGKILL, signal.SIGTERM):
            self.process.wait()

    def stop(self, seconds=5.0):
        if self.running():
            self.process.signal(signal.SIGCONT)  # a stopped node ignores SIGTERM
        return super().stop(seconds)


class Lab:
    """n nodes on 127.0.0.1..n with one cluster CA.

        lab = Lab(workdir).start()   # configured, started, initialized, joined
        leader, statuses = lab.wait_for_leader()
        c1, c3 = lab.component(lab.nodes[0], "cb1"), lab.component(lab.nodes[2], "cb3")
        lab.exchange(c1, "cb1", c3, "cb3")
        lab.stop()
    """

    def __init__(self, workdir, n=3, policy="kick-new", settings=(), ca=None):
        self.workdir = workdir
        self.ca = ca or pkimod.PKI(workdir, name="cluster-ca", cn="xcomp cluster")
        self.nodes = [Node(workdir, i + 1, self.ca, policy=policy, settings=settings)
                      for i in range(n)]
        self.serial = 0

    # -- bring-up

    def start(self, form=True):
        for n in self.nodes:
            n.start()
        if form:
            self.form()
        return self

    def form(self):
        """initialize on the first node, join the others to it, one by one."""
        first = self.nodes[0]
        r = first.cmd("cluster", "initialize")
        if r.returncode != 0:
            raise AssertionError("cluster initialize on %s: exit %d: %s%s\nlog:\n%s" % (
                first.name, r.returncode, r.stdout, r.stderr, first.log_text()[-2000:]))
        self.wait_for_leader(nodes=[first])
        for n in self.nodes[1:]:
            r = self.join(n, first)
            if r.returncode != 0:
                raise AssertionError("cluster join on %s: exit %d: %s%s\nlog:\n%s" % (
                    n.name, r.returncode, r.stdout, r.stderr, n.log_text()[-2000:]))
        return self.wait_for_leader()

    def join(self, node, to):
        return node.cmd("cluster", "join", to.cluster_address, seconds=20)

    def restart(self, node):
        """Start a stopped or killed node again on the same ports, same DIR."""
        if node.running():
            node.process.signal(signal.SIGCONT)
            node.process.signal(signal.SIGTERM)
            node.process.wait()
        node.pin_ports()
        node.start()
        return node

    def stop(self):
        for n in self.nodes:
            n.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- for bench/failover.py's rounds()

    def target(self, n):
        return "%s:%d" % (n.host, n.address[1])

    def by_server(self, server):
        for n in self.nodes:
            if self.target(n) == server:
                return n
        raise AssertionError("no node is %s" % server)

    def records(self, prio=(10, 20, 30), weight=(10, 10, 10), ttl=60):
        import agenttest
        rr = []
        for i, n in enumerate(self.nodes):
            rr.append(agenttest.srv_record(prio[i], weight[i], n.address[1], n.host, ttl))
            rr.append(agenttest.a_record(n.host, n.address[0]))
        return rr

    # -- the cluster's view

    def live(self):
        return [n for n in self.nodes if n.running()]

    def leader_view(self, nodes=None):
        """(leader node, {name: status}) when exactly one node says LEADER and
        every node of nodes says the same leader and term; else (None, statuses)."""
        nodes = nodes if nodes is not None else self.live()
        sts = {n.name: n.quick_status() for n in nodes}
        if any(s is None for s in sts.values()):
            return None, sts
        leaders = [n for n in nodes if sts[n.name]["state"] == "LEADER"]
        if len(leaders) != 1:
            return None, sts
        lead = leaders[0]
        want = (lead.cluster_address, sts[lead.name]["term"])
        for n in nodes:
            s = sts[n.name]
            if s["rc"] != 0 or (s["leader"], s["term"]) != want:
                return None, sts
            if n is not lead and s["state"] != "FOLLOWER":
                return None, sts
        return lead, sts

    def wait_for_leader(self, seconds=10.0, nodes=None, not_node=None):
        """Exactly one LEADER among nodes (default: the running ones), every
        one of them agreeing on it and on the term, and every member alive in
        every node's view. not_node: a leader other than this one."""
        last = [None]

        def ok():
            lead, sts = self.leader_view(nodes)
            last[0] = sts
            if lead is None or lead is not_node:
                return False
            want = {n.cluster_address for n in (nodes if nodes is not None else self.live())}
            for s in sts.values():
                alive = {m["addr"] for m in s["members"] if m["alive"]}
                if not want <= alive:
                    return False
            last[0] = (lead, sts)
            return True
        try:
            xt.wait_until(ok, seconds, "one leader that every node agrees on")
        except AssertionError as e:
            views = last[0] if isinstance(last[0], dict) else {}
            raise AssertionError("%s; last views:\n%s" % (e, "\n".join(
                "--- %s\n%s" % (k, v["text"] if v else "(no answer)")
                for k, v in views.items()))) from None
        return last[0]

    def wait_components(self, where, seconds=5.0, nodes=None):
        """Wait until every node (default: the running ones) lists the
        components of where ({node: [bridge...]}) on that node's member line."""
        nodes = nodes if nodes is not None else self.live()
        want = {n.cluster_address: sorted(jid(b) for b in bs) for n, bs in where.items()}
        last = {}

        def ok():
            for n in nodes:
                st = n.quick_status()
                last[n.name] = st
                if st is None:
                    return False
                have = {m["addr"]: sorted(m["components"]) for m in st["members"]}
                if any(have.get(a) != c for a, c in want.items()):
                    return False
            return True
        try:
            xt.wait_until(ok, seconds, "components %s in every node's view" % want)
        except AssertionError as e:
            raise AssertionError("%s; last views:\n%s" % (e, "\n".join(
                "--- %s\n%s" % (k, v["text"] if v else "(no answer)")
                for k, v in last.items()))) from None

    # -- components

    def component(self, node, bridge, name=None):
        """An authenticated session of bridge on node."""
        return node.component(bridge, name=name or "%s@%s" % (bridge, node.name))

    def exchange(self, sender, frm, receiver, to, seconds=3.0):
        """One message frm -> to through the cluster; asserts it arrives unchanged."""
        self.serial += 1
        raw = message(self.serial, frm, to, tag="x")
        sender.send(raw)
        while True:
            got, e = receiver.recv_stanza(seconds)
            # wait_routed's probes ("w...") and their bounces may still come
            if not (e.get("id") or "").startswith("w"):
                break
        if got != raw:
            raise AssertionError("%s got %r, expected %r" % (receiver.name, got, raw))
        return got

    def wait_routed(self, sender, frm, receiver, to, seconds=5.0, every=0.02):
        """Send numbered messages frm -> to every `every` seconds until one
        arrives (bounces to the sender are read and dropped); the time it took
        and the number sent."""
        t0 = time.monotonic()
        deadline = t0 + xt.timeout(seconds)
        sent = 0
        tag = "w%d-" % self.serial
        self.serial += 1
        while time.monotonic() < deadline:
            sender.send(message(sent, frm, to, tag=tag))
            sent += 1
            end = time.monotonic() + every
            while time.monotonic() < end:
                receiver._read(end)
                if tag in receiver.pending():
                    # drop what is left of the numbered stream once it arrives
                    return time.monotonic() - t0, sent
            sender.pos = len(sender.data)  # bounces
            sender._read(time.monotonic() + 0.001)
        raise AssertionError("no message %s -> %s within %.1f s (%d sent)" % (
            frm, to, xt.timeout(seconds), sent))


def drain(client, quiet=0.3, seconds=5.0):
    """Everything a client receives until it is quiet for `quiet` seconds."""
    deadline = time.monotonic() + xt.timeout(seconds)
    while time.monotonic() < deadline and not client.eof:
        if not client._read(min(deadline, time.monotonic() + quiet)):
            break
    text = client.pending()
    client.pos = len(client.data)
    return text


class Sampler:
    """`cluster status` of each node every `period` seconds, one thread per
    node (a stopped node holds up only its own thread). samples: (time, node
    name, state, term, leader address, node id)."""

    def __init__(self, nodes, period=0.05):
        self.nodes = nodes
        self.period = period
        self.samples = []
        self.lock = threading.Lock()
        self.running = False
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True)
                        for n in nodes]

    def start(self):
        self.running = True
        for t in self.threads:
            t.start()
        return self

    def run(self, node):
        while self.running:
            t = time.monotonic()
            st = node.quick_status(seconds=self.period * 4) if node.running() else None
            if st is not None:
                with self.lock:
                    self.samples.append(self.sample(t, node, st))
            time.sleep(max(0.0, t + self.period - time.monotonic()))

    def sample(self, asked, node, st):
        """One sample of node's status st, asked for at asked."""
        return (asked, node.name, st["state"], st["term"], st["leader"], st["node_id"])

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join()
        return self.samples

    def leaders_per_term(self):
        """{term: set of node names that said LEADER in it}."""
        out = {}
        for _, name, state, term, _, _ in self.samples:
            if state == "LEADER":
                out.setdefault(term, set()).add(name)
        return out

    def two_leaders(self):
        """The terms in which two nodes said LEADER."""
        return {t: sorted(n) for t, n in self.leaders_per_term().items() if len(n) > 1}
