"""agenttest: real unbound and real xcompd for the agent's integration tests.

Builds on xcomptest (processes stopped by pid, bounded waits, xcomp-server):
  Unbound  a DNS server from Debian's package on a free 127.0.0.1 port,
           serving a test zone; records change live through unbound-control.
  SignedZone  the test zone signed with keys made per test (ldnsutils), its
           trust anchor, and copies spoiled after signing;
  SignedUnbound  unbound serving such a zone file from an auth-zone.
  Agent    an xcompd with its own configuration, secret file and status file.
  Cluster  three xcomp-server nodes on 127.0.0.1-3 sharing cb1's secret,
           published as _xmpp-component._tcp SRV records.
  GapWatch the agent's time without a session, from its status file.
  rolling_restart  each node in turn stopped and started again.
"""

import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import xcomptest as xt

DOMAIN = "tptac9.test"
SRV_NAME = "_xmpp-component._tcp." + DOMAIN


def free_port(host="127.0.0.1", kind=socket.SOCK_DGRAM):
    """A port that was free a moment ago, for UDP and TCP both."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, kind)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
    raise RuntimeError("no free port")


def listen_port(ip):
    """A TCP port free on ip right now, below the ephemeral range: the ephemeral
    ports are busy with every test's outgoing connections, and a server
    (Prosody, ejabberd) may bind seconds after this check."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rnd = random.SystemRandom()
    for _ in range(200):
        port = rnd.randrange(max(1024, low - 12000), low)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((ip, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port on %s" % ip)


def unbound_binary():
    for path in (os.environ.get("UNBOUND_SERVER"), "/usr/sbin/unbound", shutil.which("unbound")):
        if path and path != "no" and os.access(path, os.X_OK):
            return path
    raise RuntimeError("unbound not found: apt-get install unbound")


def dns_query(port, name, qtype=6, seconds=0.5):
    """One UDP query to 127.0.0.1:port; the answer's rcode, or None."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\0"
    msg = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(seconds)
    try:
        s.sendto(msg, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
        return data[3] & 0x0F
    except OSError:
        return None
    finally:
        s.close()


class Unbound:
    """unbound -d on a free loopback port serving DOMAIN's records."""

    def __init__(self, workdir, records, name="unbound"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "unbound.conf")
        lines = [
            "server:",
            "    interface: 127.0.0.1@%d" % self.port,
            "    port: %d" % self.port,
            "    do-ip6: no",
            "    do-daemonize: no",
            '    chroot: ""',
            '    username: ""',
            '    directory: "%s"' % self.dir,
            '    pidfile: "%s/unbound.pid"' % self.dir,
            '    logfile: "%s/unbound.log"' % self.dir,
            "    use-syslog: no",
            "    access-control: 127.0.0.0/8 allow",
            "    do-not-query-localhost: no",
            '    module-config: "iterator"',
            '    local-zone: "." static',
        ]
        lines += self.zone_lines(records)
        lines += [
            "remote-control:",
            "    control-enable: yes",
            '    control-interface: "%s/control.sock"' % self.dir,
            "    control-use-cert: no",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.process = xt.Process([unbound_binary(), "-d", "-c", self.conf], workdir, name)

    def zone_lines(self, records):
        """The configuration lines that serve DOMAIN: local data, changed live."""
        lines = [
            '    local-zone: "%s." static' % DOMAIN,
            '    local-data: "%s. 3600 IN SOA ns.%s. admin.%s. 1 3600 900 604800 60"' % (
                DOMAIN, DOMAIN, DOMAIN),
        ]
        return lines + ['    local-data: "%s"' % r for r in records]

    @property
    def address(self):
        return "127.0.0.1@%d" % self.port

    def start(self):
        self.process.start()
        xt.wait_until(lambda: dns_query(self.port, DOMAIN) == 0 or self.process.poll() is not None,
                      10, "unbound answering on port %d" % self.port)
        if self.process.poll() is not None:
            raise AssertionError("unbound exited: %s" % self.process.log_text())
        return self

    def control(self, *args):
        ctl = os.path.join(os.path.dirname(unbound_binary()), "unbound-control")
        r = subprocess.run([ctl, "-c", self.conf] + list(args), capture_output=True, text=True,
                           timeout=10)
        if r.returncode != 0 or "error" in r.stdout:
            raise AssertionError("unbound-control %s: %s %s" % (args, r.stdout, r.stderr))
        return r.stdout

    def set_records(self, name, records):
        """Replace every record of name; libunbound caches until the TTL runs out."""
        self.control("local_data_remove", name)
        for r in records:
            self.control("local_data", r)

    def stop(self):
        return self.process.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def ldns_missing():
    """None when Debian's ldnsutils (ldns-keygen, ldns-signzone, ldns-key2ds)
    is installed; else the line a DNSSEC test skips with."""
    for tool in ("ldns-keygen", "ldns-signzone", "ldns-key2ds"):
        if shutil.which(tool) is None:
            return "%s not found: apt-get install ldnsutils" % tool
    return None


def _ldns(argv, cwd):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise AssertionError("%s: exit %d: %s%s" % (" ".join(argv), r.returncode, r.stdout,
                                                     r.stderr))
    return r.stdout


class SignedZone:
    """DOMAIN's records (zone file lines, as Unbound takes them) in a zone file
    signed with keys made for this zone alone (ldnsutils: a KSK and a ZSK,
    ECDSA P-256), and the file to give an agent as dnssec-trust-anchor (the
    KSK's DS). A signed copy can then be spoiled the ways an attacker or a
    broken signer would: a record changed after signing, a signature removed,
    signatures out of date, or the zone served unsigned."""

    def __init__(self, workdir, records, name="zone"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.unsigned = os.path.join(self.dir, DOMAIN + ".zone")
        lines = [
            "$ORIGIN %s." % DOMAIN,
            "%s. 3600 IN SOA ns.%s. admin.%s. 1 3600 900 604800 60" % (DOMAIN, DOMAIN, DOMAIN),
            "%s. 3600 IN NS ns.%s." % (DOMAIN, DOMAIN),
            "ns.%s. 3600 IN A 127.0.0.1" % DOMAIN,
        ] + list(records)
        with open(self.unsigned, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.ksk = _ldns(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", DOMAIN], self.dir).strip()
        self.zsk = _ldns(["ldns-keygen", "-a", "ECDSAP256SHA256", DOMAIN], self.dir).strip()
        self.anchor = os.path.join(self.dir, "trust-anchor.ds")
        with open(self.anchor, "w") as f:
            f.write(_ldns(["ldns-key2ds", "-n", self.ksk + ".key"], self.dir))

    def sign(self, inception=None, expiration=None, out="signed.zone"):
        """A signed copy (path); inception and expiration as YYYYMMDDhhmmss,
        by default ldns-signzone's (now, four weeks on)."""
        path = os.path.join(self.dir, out)
        argv = ["ldns-signzone", "-f", path]
        if inception:
            argv += ["-i", inception]
        if expiration:
            argv += ["-e", expiration]
        _ldns(argv + [self.unsigned, self.ksk, self.zsk], self.dir)
        return path

    def sign_expired(self):
        """Signed with signatures that ran out a year ago."""
        t = time.gmtime(time.time() - 366 * 86400)
        old = time.gmtime(time.time() - 400 * 86400)
        return self.sign(time.strftime("%Y%m%d%H%M%S", old), time.strftime("%Y%m%d%H%M%S", t),
                         out="expired.zone")

    @staticmethod
    def _edit(path, keep):
        """Rewrite path keeping the lines for which keep(fields, line) says
        what to write instead (a line, or None to drop it)."""
        out = []
        with open(path) as f:
            for line in f:
                fields = line.split()
                new = keep(fields, line) if len(fields) >= 5 else line
                if new is not None:
                    out.append(new)
        with open(path, "w") as f:
            f.writelines(out)

    def alter(self, path, owner, rtype, rdata):
        """Change the rdata of owner's rtype records in a signed file, leaving
        their signatures as they were (what an on-path attacker does)."""
        hits = []

        def keep(fields, line):
            if fields[0].rstrip(".").lower() == owner.rstrip(".").lower() and fields[3] == rtype:
                hits.append(line)
                return "\t".join(fields[:4] + [rdata]) + "\n"
            return line
        self._edit(path, keep)
        if not hits:
            raise AssertionError("no %s %s record in %s" % (owner, rtype, path))
        return path

    def drop_rrsig(self, path, owner, rtype):
        """Remove the signature of owner's rtype records from a signed file."""
        hits = []

        def keep(fields, line):
            if (fields[0].rstrip(".").lower() == owner.rstrip(".").lower()
                    and fields[3] == "RRSIG" and fields[4] == rtype):
                hits.append(line)
                return None
            return line
        self._edit(path, keep)
        if not hits:
            raise AssertionError("no RRSIG %s for %s in %s" % (rtype, owner, path))
        return path


class SignedUnbound(Unbound):
    """Unbound serving one zone file for DOMAIN from an auth-zone, with the
    RRSIGs it holds (a query with DO gets them), so that libunbound validates
    the answers itself. The file is served as it is: signed, spoiled or not
    signed at all."""

    def __init__(self, workdir, zonefile, name="unbound"):
        self.zonefile = zonefile
        super().__init__(workdir, [], name)

    def zone_lines(self, records):
        # "test." is one of unbound's built-in NXDOMAIN zones: lift it, and let
        # DOMAIN's queries through "." static to the auth-zone.
        return [
            '    local-zone: "test." nodefault',
            '    local-zone: "%s." transparent' % DOMAIN,
            "auth-zone:",
            '    name: "%s."' % DOMAIN,
            '    zonefile: "%s"' % self.zonefile,
            "    for-downstream: yes",
            "    for-upstream: yes",
            "    fallback-enabled: no",
        ]


def srv_record(priority, weight, port, target, ttl=60):
    return "%s. %d IN SRV %d %d %d %s." % (SRV_NAME, ttl, priority, weight, port, target)


def a_record(host, ip, ttl=60):
    return "%s. %d IN A %s" % (host, ttl, ip)


def parse_status(text):
    """A status file as a dict; node= lines as a list of dicts, in order."""
    st, nodes = {}, []
    for line in text.splitlines():
        if "=" not in line:
            raise AssertionError("status line without '=': %r" % line)
        k, v = line.split("=", 1)
        if k == "node":
            m = re.match(r"(\S+):(\d+) priority=(\d+) weight=(\d+) result=(\S+)$", v)
            if m is None:
                raise AssertionError("bad node line %r" % v)
            nodes.append({"target": m.group(1), "port": int(m.group(2)),
                          "priority": int(m.group(3)), "weight": int(m.group(4)),
                          "result": m.group(5)})
        else:
            st[k] = v
    st["nodes"] = nodes
    return st


def cpu_seconds(pid):
    """User + system CPU time of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    """Resident memory of a process (VmRSS), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


class Agent:
    """xcompd with a configuration of its own."""

    def __init__(self, workdir, name="xcompd", secret="s3cret", **keys):
        self.workdir = workdir
        self.name = name
        self.secret_path = os.path.join(workdir, name + ".secret")
        self.conf_path = os.path.join(workdir, name + ".conf")
        self.status_path = os.path.join(workdir, name + ".status")
        self.write_secret(secret)
        conf = {"name": "cb1", "domain": DOMAIN, "secret-file": self.secret_path,
                "status-file": self.status_path, "log-level": "debug",
                "connect-timeout": 2, "handshake-timeout": 3}
        conf.update({k.replace("_", "-"): v for k, v in keys.items()})
        self.write_conf(conf)
        self.process = None

    def write_secret(self, secret, mode=0o600):
        fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.write(fd, (secret + "\n").encode())
        os.close(fd)
        os.chmod(self.secret_path, mode)

    def write_conf(self, conf):
        self.conf = conf
        with open(self.conf_path, "w") as f:
            f.write("# written by agenttest\n")
            for k, v in conf.items():
                if v is not None:
                    f.write("%s = %s\n" % (k, v))

    def start(self, *extra):
        argv = [xt.program("xcompd"), "-f", self.conf_path] + list(extra)
        # XCOMP_VALGRIND=1: the agent under valgrind too (findings fail the run).
        self.process = xt.Process(argv, self.workdir, self.name, valgrind=xt.VALGRIND).start()
        return self

    @property
    def pid(self):
        return self.process.pid

    def status(self):
        try:
            with open(self.status_path) as f:
                return parse_status(f.read())
        except FileNotFoundError:
            return None

    def wait_status(self, predicate, seconds=5.0, what="status"):
        last = [None]

        def check():
            if self.process.poll() is not None:
                raise AssertionError("xcompd exited with %s; log:\n%s" % (
                    self.process.returncode, self.process.log_text()[-3000:]))
            last[0] = self.status()
            return last[0] is not None and predicate(last[0])
        try:
            xt.wait_until(check, seconds, what)
        except AssertionError as e:
            raise AssertionError("%s\nlast status: %s\nlog tail:\n%s" % (
                e, last[0], self.process.log_text()[-2500:])) from None
        return last[0]

    def wait_connected(self, seconds=5.0, server=None):
        def ok(st):
            return st.get("state") == "connected" and (server is None or st.get("server") == server)
        return self.wait_status(ok, seconds, "connected%s" % (" to " + server if server else ""))

    def cpu_seconds(self):
        return cpu_seconds(self.pid)

    def log_text(self):
        return self.process.log_text() if self.process else ""

    def stop(self):
        return self.process.stop() if self.process else None

    def __enter__(self):
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Cluster:
    """Three xcomp-server nodes a, b, c on 127.0.0.1-3 that share cb1's secret."""

    def __init__(self, workdir, secret="s3cret", policies=None, nodes=3, pki=None):
        """With pki (a pki.PKI), every node listens with TLS, its certificate naming it."""
        self.workdir = workdir
        self.secret = secret
        self.nodes = []
        self.tls = pki is not None
        policies = policies or {}
        for i in range(nodes):
            name = "abc"[i]
            settings = [("conflict-policy", policies.get(name, "kick-new"))]
            ip = "127.0.0.%d" % (i + 1)
            srv = xt.Server(workdir, name=name, domain=DOMAIN,
                            listen=() if pki else (ip + ":0",), bridges=(), settings=settings)
            if pki:
                leaf = pki.leaf(name, cn="%s.%s" % (name, DOMAIN), dns=["%s.%s" % (name, DOMAIN)])
                srv.must("certs", leaf.key, leaf.cert, pki.bundle)
                srv.must("listen", ip + ":0", "tls")
            srv.must("callbridge", "add-secret", "cb1", input=secret + "\n")
            srv.secrets["cb1"] = secret
            srv.host = "%s.%s" % (name, DOMAIN)
            self.nodes.append(srv)

    def start(self):
        for n in self.nodes:
            n.start()
        return self

    def node(self, name):
        return self.nodes["abc".index(name)]

    def by_server(self, server):
        """The node whose target:port the status file names."""
        for n in self.nodes:
            if "%s:%d" % (n.host, n.address[1]) == server:
                return n
        raise AssertionError("no node is %s" % server)

    def target(self, n):
        return "%s:%d" % (n.host, n.address[1])

    def records(self, prio=(10, 20, 20), weight=(60, 60, 60), ttl=60):
        rr = []
        for i, n in enumerate(self.nodes):
            rr.append(srv_record(prio[i], weight[i], n.address[1], n.host, ttl))
            rr.append(a_record(n.host, n.address[0]))
        return rr

    def restart(self, n):
        """Start a stopped node again on the same address and port."""
        host, port = n.address
        n.must("listen", "none")
        n.must("listen", "%s:%d" % (host, port), *(["tls"] if self.tls else []))
        try:
            os.unlink(os.path.join(n.dir, "listening"))  # left behind by a SIGKILL
        except FileNotFoundError:
            pass
        n.addresses = []
        n.clients = []
        n.start()

    def stop(self):
        for n in self.nodes:
            if n.process and n.process.proc.poll() is None:
                # A stopped (SIGSTOP) node must be continued before SIGTERM works.
                n.process.signal(signal.SIGCONT)
            n.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class GapWatch:
    """Reads the agent's status file every millisecond, in a thread, and
    records each time without a session: from the last reading that showed it
    connected to the first that shows it connected again (to any node; a move
    from one node to another between two readings counts too). A gap is
    (start, end, server before, server after), times from time.monotonic()."""

    def __init__(self, agent):
        self.agent = agent
        self.gaps = []
        self.running = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.running = True
        self.thread.start()
        return self

    def run(self):
        last_seen, server, lost = None, None, False
        while self.running:
            st = self.agent.status()
            t = time.monotonic()
            if st is not None and st.get("state") == "connected":
                if lost or (server is not None and st.get("server") != server):
                    self.gaps.append((last_seen, t, server, st.get("server")))
                last_seen, server, lost = t, st.get("server"), False
            elif st is not None and last_seen is not None:
                lost = True
            time.sleep(0.001)

    def stop(self):
        """Stop reading; the gaps that ended (one still open is not among them)."""
        self.running = False
        self.thread.join()
        return self.gaps

    def lengths(self):
        return [end - start for start, end, _, _ in self.gaps]

    def summary(self):
        """One line: how many gaps, the longest and the total."""
        ms = [1000 * x for x in self.lengths()]
        return "%d gaps, longest %.1f ms, total %.1f ms" % (len(ms), max(ms or [0]), sum(ms))


def rolling_restart(nodes, stop, start, pause=0.5, between=(0.5, 1.0), rng=random):
    """Each node in turn: stop(node) (SIGTERM, waited for), start(node) pause
    seconds later, then rng.uniform(*between) seconds before the next one, as
    an operator upgrades a cluster."""
    for n in nodes:
        stop(n)
        time.sleep(pause)
        start(n)
        time.sleep(rng.uniform(*between))


def cluster_rolling_restart(cluster, **kw):
    """rolling_restart of an xcomp-server Cluster, nodes a, b, c."""
    def stop(n):
        n.process.signal(signal.SIGTERM)
        n.process.wait()
    rolling_restart(cluster.nodes, stop, cluster.restart, **kw)


class AgentLab(xt.LabTest):
    """A LabTest with what the agent's tests start, each stopped at its end:
    xcomp-server nodes, an unbound serving their records, and agents."""

    def cluster(self, **kw):
        c = Cluster(self.wd.path, **kw).start()
        self.cleanups.append(c.stop)
        return c

    def dns(self, records):
        u = Unbound(self.wd.path, records).start()
        self.cleanups.append(u.stop)
        return u

    def agent(self, dns=None, start=True, **keys):
        if dns is not None:
            keys.setdefault("dns_server", dns.address)
        a = Agent(self.wd.path, **keys)
        if start:
            a.start()
            self.cleanups.append(a.stop)
        return a

    def server_keepalive(self, node, keepalive, keepalive_timeout):
        """xcomp-server's own keepalive (its dead-session bound), set on a
        running node (a SIGHUP reload)."""
        node.must("keepalive", str(keepalive))
        node.must("keepalive-timeout", str(keepalive_timeout))
        node.process.signal(signal.SIGHUP)
        node.process.wait_for_log(r"state reloaded")


RELAY_SECRET = "s3cret"


class RelayLab(xt.LabTest):
    """A LabTest for the relay: nodes that know cb1 (the agent's call bridge)
    and cb2 (the far end), an agent with relay-listen, and the local
    component (the call bridge) connected to it."""

    def node(self, name, ip):
        srv = xt.Server(self.wd.path, name=name, domain=DOMAIN, listen=(ip + ":0",),
                        bridges=("cb2",))
        srv.must("callbridge", "add-secret", "cb1", input=RELAY_SECRET + "\n")
        srv.host = "%s.%s" % (name, DOMAIN)
        srv.start()
        self.cleanups.append(srv.stop)
        return srv

    def agent(self, nodes, **keys):
        """An agent for nodes, in their order (SRV priorities 10, 20, ...)."""
        rr = []
        for i, n in enumerate(nodes):
            rr += [srv_record(10 * (i + 1), 10, n.address[1], n.host),
                   a_record(n.host, n.address[0])]
        u = Unbound(self.wd.path, rr).start()
        self.cleanups.append(u.stop)
        self.relay_port = free_port(kind=socket.SOCK_STREAM)
        keys.setdefault("relay_listen", "127.0.0.1:%d" % self.relay_port)
        a = Agent(self.wd.path, secret=RELAY_SECRET, dns_server=u.address, **keys).start()
        self.cleanups.append(a.stop)
        self.a = a
        return a

    def local(self, secret=RELAY_SECRET, expect_ok=True):
        """The call bridge: a component connected to the agent's relay."""
        self.a.wait_status(lambda s: s.get("relay") == "listening", 5, "the relay listening")
        c = xt.Client(("127.0.0.1", self.relay_port), name="local")
        self.cleanups.append(c.close)
        c.open_stream("cb1." + DOMAIN)
        c.handshake(secret, expect_ok=expect_ok)
        return c
