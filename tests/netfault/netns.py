"""netns: the netfault tier's own network namespace and its packet drops.

A netfault test calls enter() first. Outside a namespace of its own, enter()
runs the test again under `unshare --net` (a new network namespace with
only a loopback interface, which it brings up) and exits with that run's
status; where no namespace can be made it says so in one line and exits 77
(automake's skip). Inside, every process the test starts shares that
namespace, so its 127.0.0.0/8 and ::1 are the namespace's own, and the
nftables table made here (inet xcomp_fault) drops only the namespace's
packets: nothing touches the host's network or firewall.

Faults are nftables drop rules in the input hook: on loopback every packet
passes it once, so one rule there stops a flow in its direction, and the
sender learns nothing (a drop in the output hook would fail the sender's
sendmsg with EPERM at once, which no real network does).
  drop(addr, port, "to")     packets to addr:port (requests)
  drop(addr, port, "from")   packets from addr:port (replies)
  drop(addr, port)           both directions: a blackhole
  drop(addr, port, "to", syn_only=True)  only the SYNs: a connect that hangs
  drop(addr, port, "from", keep_synack=True)  all but the SYN-ACK: connects
                             succeed, then nothing comes back (a handshake
                             that hangs, TLS or XMPP)
  drop(addr, port, proto="udp")          DNS
  partition(a, b)            every packet between two addresses
Each returns a Fault with lift(); clear() lifts them all.
"""

import os
import re
import shutil
import subprocess
import sys

ENV = "XCOMP_NETNS"
TABLE = "xcomp_fault"


def _skip(why):
    print("netfault: SKIP: %s" % why, flush=True)
    sys.exit(77)


def _can_unshare():
    """None when a network namespace can be made here, else why not."""
    for tool in ("unshare", "nft", "ip"):
        if shutil.which(tool) is None:
            return "%s is missing (apt-get install util-linux nftables iproute2)" % tool
    r = subprocess.run(["unshare", "--net", "nft", "list", "tables"], capture_output=True,
                       text=True, timeout=20)
    if r.returncode != 0:
        return "cannot create a network namespace with nftables: %s" % (
            (r.stderr or r.stdout).strip().splitlines() or ["unshare failed"])[-1]
    return None


def run(*argv, check=True):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r.stdout


def _setup():
    run("ip", "link", "set", "lo", "up")
    subprocess.run(["nft", "-f", "-"], input=(
        "table inet %s {\n"
        "  chain in { type filter hook input priority 0; policy accept; }\n"
        "}\n" % TABLE), text=True, check=True, timeout=20)


def enter():
    """Run the calling script inside a network namespace of its own."""
    if os.environ.get(ENV) == "1":
        _setup()
        return
    why = _can_unshare()
    if why:
        _skip(why)
    env = dict(os.environ)
    env[ENV] = "1"
    argv = ["unshare", "--net", "--", sys.executable] + sys.argv
    sys.stdout.flush()
    os.execvpe("unshare", argv, env)


def inside():
    return os.environ.get(ENV) == "1"


class Fault:
    """Some drop rules, lifted together."""

    def __init__(self, what, handles):
        self.what = what
        self.handles = handles

    def lift(self):
        for h in self.handles:
            run("nft", "delete", "rule", "inet", TABLE, "in", "handle", str(h), check=False)
        self.handles = []
        _faults.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.lift()
        return False

    def __repr__(self):
        return "Fault(%s)" % self.what


_faults = set()


def _family(addr):
    return "ip6" if ":" in addr else "ip"


def _add(rule):
    out = run("nft", "--echo", "--handle", "add", "rule", "inet", TABLE, "in", *rule.split())
    m = re.search(r"# handle (\d+)", out)
    if m is None:
        raise RuntimeError("nft gave no handle for %r: %r" % (rule, out))
    return int(m.group(1))


def drop(addr, port=None, direction="both", syn_only=False, proto="tcp", keep_synack=False):
    """Drop packets to (and, for "both", from) addr[:port]."""
    if not inside():
        raise RuntimeError("netns.drop outside the test's namespace: call netns.enter() first")
    fam = _family(addr)
    rules = []
    if direction in ("to", "both"):
        r = "%s daddr %s" % (fam, addr)
        if port is not None:
            r += " %s dport %d" % (proto, port)
        if syn_only:
            r += " tcp flags & (fin|syn|rst|ack) == syn"
        rules.append(r + " drop")
    if direction in ("from", "both"):
        r = "%s saddr %s" % (fam, addr)
        if port is not None:
            r += " %s sport %d" % (proto, port)
        if keep_synack:
            r += " tcp flags & (syn|ack) != syn|ack"
        rules.append(r + " drop")
    f = Fault("%s %s:%s %s" % (proto, addr, port, direction), [_add(r) for r in rules])
    _faults.add(f)
    return f


def partition(a, b):
    """Drop every packet between addresses a and b, both ways."""
    fam = _family(a)
    rules = ["%s saddr %s %s daddr %s drop" % (fam, a, fam, b),
             "%s saddr %s %s daddr %s drop" % (fam, b, fam, a)]
    f = Fault("partition %s | %s" % (a, b), [_add(r) for r in rules])
    _faults.add(f)
    return f


def clear():
    for f in list(_faults):
        f.lift()


def counters():
    """The ruleset as nft lists it (for a failing test's message)."""
    return run("nft", "list", "table", "inet", TABLE, check=False)
