#!/usr/bin/env python3
"""Chaos soak of xcompd with the relay (make soak; not part of make check).

Three xcomp-server nodes published by a real unbound, xcompd in front of them
with relay-listen and relay-replay = on, and a local component (a raw client
on the relay) sending a numbered stream of messages at a steady rate. For the
whole run a seeded script SIGKILLs nodes and restarts them later, SIGSTOPs
them and SIGCONTs them 0.5-5 s later, restarts them (SIGTERM), reorders and
removes SRV records and adds them back, and about once a minute takes every
node down for a moment. Then everything is restored and the stream drained.

The messages go from cb1 to cb1: whichever node the agent is on routes each
one straight back over the same session, and the relay hands it to the local
component. So the stream always passes through the node in use (no second
component has to be connected, or reconnected, to a node that has just been
restarted), and the relay's acknowledgement ping, answered after the echoes on
the same ordered stream, makes at-least-once exact: nothing may be missing.

Asserted, each printed with its figure:
  gaps   every time the agent is without an authenticated session (from the
         moment the node in use was hit, or the status file left "connected",
         to the status file saying "connected" again; counted from when some
         node could be used and stayed so: up, and in the records for their
         TTL + 1 s) is no longer than what the configuration allows, as the agent
         logged it: keepalive + keepalive-timeout to notice a silent node,
         its attempts (each at most connect-timeout + handshake-timeout),
         and the waits while every node was held after a failure (each at
         most backoff-max; a node that failed while it was down stays held
         for a while after it is back), plus a 0.5 s margin for the work in
         between;
  loss   every numbered message came back at least once, first arrivals in
         order; none bounced;
  fds    the agent's open descriptors, connected and quiet, are the same
         after the run as before, and never far above that during it;
  RSS    does not grow: the last quarter's median is within a margin of the
         second quarter's (the first quarter is warm-up);
  CPU    the agent's user + system time stays under 10 % of one core over
         the run, and under 50 % in any 5 s window (it never spins).

    python3 tests/soak/soak.py [--seconds N] [--seed S] [--rate R]

--seconds defaults to $SOAK_SECONDS, else 600. Exit status 0 when every
assertion held, 1 otherwise (the working directory is then kept). Loopback
only; every process is started here and stopped by its pid.
"""

import argparse
import heapq
import os
import random
import re
import select
import signal
import socket
import statistics
import sys
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import xcomptest as xt  # noqa: E402
from agenttest import (DOMAIN, SRV_NAME, Agent, Cluster, Unbound, a_record,  # noqa: E402
                       cpu_seconds, free_port, parse_status, rss_kib, srv_record)

CB1 = "cb1." + DOMAIN
SECRET = "s3cret"
TTL = 1  # SRV TTL: the agent re-resolves every second while connected
# How long after a change of the records the agent may still be given the old
# ones: the TTL, plus up to a second because the resolver's cache counts whole
# seconds (measured: up to 2.0 s with TTL 1).
DNS_LAG = TTL + 1.0
TICK = 0.02  # the sender's and the status sampler's period

# Small timers, so that detection is bounded and the run sees many failovers.
AGENT_CONF = {"keepalive": 1, "keepalive_timeout": 1, "connect_timeout": 1,
              "handshake_timeout": 1, "backoff_min": 1, "backoff_max": 2}

# A gap's time outside detection, attempts and backoffs: resolving (SRV and A
# from unbound on loopback, a few ms), the 20 ms sampling of the status file
# and of the log at both ends; the rest is scheduling on a busy 2-core machine.
MARGIN = 0.5
FD_SLACK = 4  # during the run: an attempt in progress and DNS queries in flight
RSS_SLACK_KB = 512
CPU_SHARE = 0.10
CPU_WINDOW_SHARE = 0.50


def now():
    return time.monotonic()


def message(i):
    return "<message from='%s' to='%s' id='s%d'><body>%d</body></message>" % (CB1, CB1, i, i)


# ------------------------------------------------------------------ the stream

class Stream:
    """The local component: numbered messages out at a steady rate, echoes in."""

    def __init__(self, client, rate):
        self.c = client
        self.sock = client.sock
        self.sock.settimeout(None)
        self.rate = rate
        self.sent = []  # send time of message i
        self.first = {}  # i -> time of its first arrival
        self.dups = 0
        self.out_of_order = 0
        self.highest = -1
        self.errors = []  # error stanzas and anything unexpected
        self.closed = None
        self.stop_sending = threading.Event()
        self.stop_reading = threading.Event()
        self.tx = threading.Thread(target=self._send, daemon=True)
        self.rx = threading.Thread(target=self._receive, daemon=True)

    def start(self):
        self.tx.start()
        self.rx.start()

    def _send(self):
        per_tick = max(1, int(round(self.rate * TICK)))
        t = now()
        i = 0
        try:
            while not self.stop_sending.is_set():
                batch = "".join(message(j) for j in range(i, i + per_tick))
                stamp = now()
                self.sock.sendall(batch.encode())
                self.sent.extend([stamp] * per_tick)
                i += per_tick
                t += per_tick / self.rate
                delay = t - now()
                if delay > 0:
                    time.sleep(delay)
        except OSError as e:
            self.closed = self.closed or "send: %s" % e

    def _receive(self):
        buf = self.c.pending()
        end = "</message>"
        ids = re.compile(r"""\sid=['"]s(\d+)['"]""")
        while not self.stop_reading.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if not r:
                continue
            try:
                data = self.sock.recv(1 << 16)
            except OSError as e:
                self.closed = "recv: %s" % e
                return
            if not data:
                self.closed = "the relay closed the local session"
                return
            t = now()
            buf += data.decode("utf-8", "replace")
            while True:
                k = buf.find(end)
                if k < 0:
                    break
                stanza, buf = buf[:k + len(end)], buf[k + len(end):]
                m = ids.search(stanza)
                if (m is None or "type='error'" in stanza or 'type="error"' in stanza
                        or stanza.count("<message") != 1):
                    self.errors.append(stanza[:300])
                    continue
                i = int(m.group(1))
                if i in self.first:
                    self.dups += 1
                    continue
                self.first[i] = t
                if i < self.highest:
                    self.out_of_order += 1
                self.highest = max(self.highest, i)
            if "</stream:stream>" in buf or "<stream:error" in buf:
                self.closed = "stream closed or stream error: %r" % buf[:300]
                return

    def missing(self):
        return [i for i in range(len(self.sent)) if i not in self.first]


# ------------------------------------------------------------------ the watcher

class Watcher:
    """Samples the status file every 20 ms, the agent's log as it grows, and
    /proc/PID each second: state changes, log lines and resources, timed."""

    def __init__(self, agent):
        self.agent = agent
        self.pid = agent.pid
        self.changes = []  # (t, state, server) at each change
        self.current = (None, None)
        self.lines = []  # (t, line)
        self.resources = []  # (t, fds, rss_kb, cpu_s)
        self.dead = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.log = open(agent.process.logpath, encoding="utf-8", errors="replace")
        self.partial = ""

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        next_res = 0.0
        while not self.stop.is_set():
            t = now()
            self.sample_status(t)
            self.read_log(t)
            if t >= next_res:
                try:
                    self.resources.append((t,) + resources(self.pid))
                except (OSError, ValueError) as e:
                    self.dead = "cannot read /proc/%d: %s" % (self.pid, e)
                next_res = t + 1.0
            if self.agent.process.poll() is not None:
                self.dead = "xcompd exited with %s" % self.agent.process.returncode
                return
            time.sleep(TICK)

    def sample_status(self, t):
        try:
            with open(self.agent.status_path) as f:
                st = parse_status(f.read())
        except (FileNotFoundError, AssertionError):
            return
        cur = (st.get("state"), st.get("server") if st.get("state") == "connected" else None)
        if cur != self.current:
            self.current = cur
            self.changes.append((t, cur[0], cur[1]))

    def read_log(self, t):
        text = self.partial + self.log.read()
        lines = text.split("\n")
        self.partial = lines.pop()
        self.lines.extend((t, ln) for ln in lines)

    def connected(self):
        return self.current[0] == "connected"


def resources(pid):
    """(open fds, VmRSS in kB, user + system CPU seconds) of a process."""
    return len(os.listdir("/proc/%d/fd" % pid)), rss_kib(pid), cpu_seconds(pid)


# ------------------------------------------------------------------ the chaos

class Chaos:
    """Seeded faults at random intervals, each undone later by a pending event."""

    def __init__(self, cluster, unbound, rng, watcher, logf):
        self.cluster = cluster
        self.unbound = unbound
        self.rng = rng
        self.watcher = watcher
        self.logf = logf
        self.nodes = {n.name: n for n in cluster.nodes}
        self.state = {name: "up" for name in self.nodes}  # up, killed, stopped
        self.busy = set()  # nodes with an undo pending
        self.in_dns = set(self.nodes)
        self.prio = {"a": 10, "b": 20, "c": 30}
        self.weight = {name: 50 for name in self.nodes}
        # (t, value) whenever a node goes down or comes up, leaves the SRV
        # records or comes back in them: when a node could be used.
        self.up_events = {name: [(-1e9, True)] for name in self.nodes}
        self.pub_events = {name: [(-1e9, True)] for name in self.nodes}
        self.pending = []  # heap of (t, n, fn, args)
        self.n = 0
        self.actions = 0
        self.counts = {}
        # [t, node name, kind, end]: what breaks a session at once (kill, restart)
        # or silently (stop, until end: the SIGCONT)
        self.hits = []
        self.all_down = []  # (start, end) of the deliberate all-down periods
        self.error = None
        self.t0 = now()

    def note(self, kind, text):
        self.actions += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.logf.write("%9.3f %s\n" % (now() - self.t0, text))
        self.logf.flush()

    def later(self, delay, fn, *args):
        self.n += 1
        heapq.heappush(self.pending, (now() + delay, self.n, fn, args))

    def publish(self):
        """Replace the SRV records at once: unbound's configuration rewritten
        and reloaded. (Removing the name and adding the records back one by
        one answers NXDOMAIN in between, and the agent's resolver caches that
        for the SOA's minimum, 60 s: an outage of the chaos's own making.)"""
        rr = []
        for name in sorted(self.in_dns):
            n = self.nodes[name]
            rr.append(srv_record(self.prio[name], self.weight[name], n.address[1], n.host, TTL))
        with open(self.unbound.conf) as f:
            lines = [ln for ln in f.read().splitlines() if SRV_NAME not in ln]
        i = lines.index("remote-control:")
        lines[i:i] = ['    local-data: "%s"' % r for r in rr]
        with open(self.unbound.conf + ".new", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(self.unbound.conf + ".new", self.unbound.conf)
        before = now()
        self.unbound.control("reload")
        after = now()
        for name in self.nodes:
            pub = name in self.in_dns
            if pub != self.pub_events[name][-1][1]:
                self.pub_events[name].append((after if pub else before, pub))

    def set_up(self, name, up):
        self.up_events[name].append((now(), up))

    def usable(self):
        return [x for x in self.nodes if self.state[x] == "up" and x in self.in_dns]

    def active(self):
        server = self.watcher.current[1]
        if server is None:
            return None
        try:
            return self.cluster.by_server(server).name
        except AssertionError:
            return None

    # -- faults and their undoing

    def kill(self, name):
        n = self.nodes[name]
        self.hits.append([now(), name, "kill", now()])
        n.process.signal(signal.SIGKILL)
        self.set_up(name, False)
        n.process.wait()
        self.state[name] = "killed"

    def restart(self, name):
        self.cluster.restart(self.nodes[name])
        self.set_up(name, True)
        self.state[name] = "up"

    def stop(self, name):
        self.hits.append([now(), name, "stop", None])
        self.nodes[name].process.signal(signal.SIGSTOP)
        self.set_up(name, False)
        self.state[name] = "stopped"

    def cont(self, name):
        self.nodes[name].process.signal(signal.SIGCONT)
        self.set_up(name, True)
        self.state[name] = "up"
        for h in self.hits:
            if h[1] == name and h[2] == "stop" and h[3] is None:
                h[3] = now()

    def undo(self, name):
        if self.state[name] == "killed":
            self.restart(name)
        elif self.state[name] == "stopped":
            self.cont(name)
        self.busy.discard(name)
        self.logf.write("%9.3f %s back\n" % (now() - self.t0, name))

    def readd(self, name):
        self.in_dns.add(name)
        self.publish()
        self.busy.discard(name)
        self.logf.write("%9.3f %s back in DNS\n" % (now() - self.t0, name))

    def end_all_down(self, names):
        for name in names:
            self.undo(name)
        self.all_down[-1] = (self.all_down[-1][0], now())

    # -- the choice

    def act(self):
        rng = self.rng
        free = [x for x in sorted(self.nodes) if x not in self.busy and self.state[x] == "up"]
        if not free:
            return
        active = self.active()
        # Half the time hit the node in use: that is what makes failovers.
        name = active if active in free and rng.random() < 0.5 else rng.choice(free)
        others_usable = [x for x in self.usable() if x != name]
        kind = rng.choices(["kill", "stop", "restart", "reorder", "remove"],
                           [25, 25, 15, 20, 15])[0]
        if kind in ("kill", "stop", "remove") and not others_usable:
            kind = "reorder"  # keep one node up and published, except in all-down
        if kind == "remove" and (name not in self.in_dns or len(self.in_dns) < 2):
            kind = "reorder"
        if kind == "kill":
            back = rng.uniform(0.5, 6.0)
            self.kill(name)
            self.busy.add(name)
            self.later(back, self.undo, name)
            self.note(kind, "SIGKILL %s%s, restart in %.1f s" % (
                name, " (active)" if name == active else "", back))
        elif kind == "stop":
            back = rng.uniform(0.5, 5.0)
            self.stop(name)
            self.busy.add(name)
            self.later(back, self.undo, name)
            self.note(kind, "SIGSTOP %s%s, SIGCONT in %.1f s" % (
                name, " (active)" if name == active else "", back))
        elif kind == "restart":
            n = self.nodes[name]
            self.hits.append([now(), name, "restart", now()])
            self.set_up(name, False)
            n.process.stop()
            self.cluster.restart(n)
            self.set_up(name, True)
            self.note(kind, "restart %s%s" % (name, " (active)" if name == active else ""))
        elif kind == "reorder":
            for x in self.nodes:
                self.prio[x] = rng.choice((10, 20, 30))
                self.weight[x] = rng.randint(0, 100)
            self.publish()
            self.note(kind, "SRV records: %s" % ", ".join(
                "%s %d/%d" % (x, self.prio[x], self.weight[x]) for x in sorted(self.in_dns)))
        else:
            back = rng.uniform(1.0, 8.0)
            self.in_dns.discard(name)
            self.busy.add(name)
            self.publish()
            self.later(back, self.readd, name)
            self.note(kind, "%s out of the SRV records%s, back in %.1f s" % (
                name, " (active)" if name == active else "", back))

    def take_all_down(self):
        """Every node that is up killed or stopped (the one in use killed, so
        that the session ends), all back together 1-3 s later."""
        names = [x for x in sorted(self.nodes) if self.state[x] == "up"]
        active = self.active()
        back = self.rng.uniform(1.0, 3.0)
        what = []
        for name in names:
            if name == active or self.rng.random() < 0.5:
                self.kill(name)
                what.append("SIGKILL " + name)
            else:
                self.stop(name)
                what.append("SIGSTOP " + name)
            self.busy.add(name)
        self.all_down.append((now(), None))
        self.later(back, self.end_all_down, names)
        self.note("all-down", "all down (%s; others already down), back in %.1f s" % (
            ", ".join(what) or "nothing up", back))

    # -- the run

    def run(self, seconds, stop_event):
        """Act until seconds have passed; then undo everything still pending."""
        rng = self.rng
        end = self.t0 + seconds
        next_act = self.t0 + rng.uniform(0.3, 3.0)
        # One all-down period in every minute of the run, not in its first or last 10 s.
        downs = []
        for start in range(0, int(seconds), 60):
            lo, hi = start + 10, min(start + 50, seconds - 10)
            if hi > lo:
                downs.append(self.t0 + rng.uniform(lo, hi))
        try:
            while not stop_event.is_set():
                t = now()
                if self.pending and self.pending[0][0] <= t:
                    _, _, fn, args = heapq.heappop(self.pending)
                    fn(*args)
                    continue
                if t >= end:
                    break
                if downs and downs[0] <= t:
                    downs.pop(0)
                    self.take_all_down()
                    continue
                if t >= next_act:
                    self.act()
                    next_act = now() + rng.uniform(0.3, 3.0)
                    continue
                wake = min([next_act, end] + downs[:1] + [p[0] for p in self.pending[:1]])
                time.sleep(max(0.0, min(0.05, wake - now())))
        except Exception as e:  # a node that would not restart, unbound-control failing
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.restore()

    def restore(self):
        while self.pending:
            _, _, fn, args = heapq.heappop(self.pending)
            try:
                fn(*args)
            except Exception as e:
                self.error = self.error or "%s: %s" % (type(e).__name__, e)
        for name in self.nodes:
            if self.state[name] != "up":
                self.undo(name)
        if self.in_dns != set(self.nodes):
            self.in_dns = set(self.nodes)
            self.publish()


# ------------------------------------------------------------------ analysis

WAITS = [
    # (regex on a log line, kind): where the configuration makes the agent wait
    (re.compile(r"within (\d+) s \(connect-timeout"), "connect-timeout"),
    (re.compile(r"within (\d+) s \(handshake-timeout\)"), "handshake-timeout"),
    (re.compile(r"within (\d+) s of a keepalive ping"), "keepalive"),
    (re.compile(r"lost: Connection timed out"), "user-timeout"),
    (re.compile(r"next try in (\d+)\.(\d{3}) s"), "backoff"),
]
ATTEMPT = re.compile(r"^xcompd: info: connecting to ")
RELAY_LINE = re.compile(r"^xcompd: \w+: relay: ")


def logged_waits(lines, conf, problems):
    """[(start, end, kind, seconds)]: where the agent's time went while it had
    no session, from its log, each checked against the configuration:
      keepalive  a silent node: keepalive + keepalive-timeout, logged as it ends;
      attempt    from "connecting to" to its outcome (the next line that is
                 not the relay's): at most connect-timeout + handshake-timeout;
      backoff    logged as it begins: at most backoff-max.
    The connect and handshake timeouts fall inside their attempts: only checked."""
    waits = []
    detect = conf["keepalive"] + conf["keepalive_timeout"]
    attempt_max = conf["connect_timeout"] + conf["handshake_timeout"]
    attempt = None
    for t, line in lines:
        if attempt is not None and not RELAY_LINE.search(line):
            if t - attempt > attempt_max + 0.3:
                problems.append("an attempt took %.2f s, more than connect-timeout + "
                                "handshake-timeout (%d s): ended by %s" % (
                                    t - attempt, attempt_max, line))
            waits.append((attempt, t, "attempts", t - attempt))
            attempt = None
        if ATTEMPT.search(line):
            attempt = t
            continue
        for rx, kind in WAITS:
            m = rx.search(line)
            if m is None:
                continue
            if kind == "backoff":
                s = int(m.group(1)) + int(m.group(2)) / 1000.0
                if s > conf["backoff_max"]:
                    problems.append("backoff %.3f s above backoff-max %d: %s" % (
                        s, conf["backoff_max"], line))
                waits.append((t, t + s, kind, s))
            elif kind in ("keepalive", "user-timeout"):
                if kind == "keepalive" and int(m.group(1)) != conf["keepalive_timeout"]:
                    problems.append("keepalive-timeout not as configured: %s" % line)
                waits.append((t - detect, t, "detection", detect))
            elif int(m.group(1)) != conf[kind.replace("-", "_")]:
                problems.append("%s not as configured: %s" % (kind, line))
    return waits


def gaps_of(changes, hits, cluster, t_from):
    """[(loss, left, back, why)]: each time without a session after t_from.
    left is when the status file stopped saying connected to the node in use
    (its first other sample), back when it said connected again; loss is when
    that node was hit (killed, restarted, or stopped and still stopped when
    the agent gave up on it), else the sample before left."""
    out = []
    session = None  # (start, node name) while connected
    loss = None
    for t, state, server in changes:
        if session is not None:
            start, node = session
            hit = [h for h in hits if h[1] == node and start <= h[0] <= t and
                   (h[2] != "stop" or h[3] is None or h[3] >= t - 0.3)]
            if hit:
                loss = (hit[-1][0], t, "%s of %s" % (hit[-1][2], node), hit[-1][2])
            else:
                loss = (t - TICK, t, "%s left" % node, None)
            session = None
        if state == "connected":
            node = cluster.by_server(server).name
            if loss is not None and loss[0] >= t_from:
                out.append((loss[0], loss[1], t, loss[2], loss[3], node))
            loss = None
            session = (t, node)
    return out


def held_since(events, t):
    """From a node's [(time, value)]: its value at t and since when it held."""
    value, start = None, None
    for te, v in events:
        if te > t:
            break
        if v != value:
            value, start = v, te
    return value, start


def usable_since(chaos, t, node_then):
    """The earliest time from which some node stayed usable until t: up, and
    in the SRV records for at least DNS_LAG (the agent's resolver may hold
    the previous answer that long). If none was by that measure, the node
    the agent reached at t, from when it came up."""
    starts = []
    for name in chaos.nodes:
        up, up_t = held_since(chaos.up_events[name], t)
        pub, pub_t = held_since(chaos.pub_events[name], t)
        if up and pub:
            starts.append(max(up_t, pub_t + DNS_LAG))
    if not starts:
        up, up_t = held_since(chaos.up_events[node_then], t)
        starts.append(up_t if up else t)
    return min(starts)


def connected_after(changes, t0):
    """Seconds from t0 until the status file said connected (0 if it did at t0)."""
    state = None
    for t, st, _ in changes:
        if t > t0 and state == "connected":
            return 0.0
        if t >= t0 and st == "connected":
            return t - t0
        state = st
    return float("nan") if state != "connected" else 0.0


def median_of(values):
    return statistics.median(values) if values else 0


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("SOAK_SECONDS") or 600))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--rate", type=int, default=200, help="messages a second (default 200)")
    args = ap.parse_args()
    try:
        for p in ("xcompd", "xcomp-server"):
            xt.program(p)
    except RuntimeError as e:
        print("soak: %s" % e)
        return 1
    # make interrupted, or a CI timeout: stop every process started here all the same.
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit("soak: terminated"))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    seconds = args.seconds
    print("soak: %.0f s, seed %d (repeat with --seed %d), %d messages/s" % (
        seconds, seed, seed, args.rate), flush=True)
    failures = []
    with xt.Workdir("soak") as wd:
        try:
            run(wd, seconds, rng, args.rate, failures)
        except Exception as e:
            failures.append("%s: %s" % (type(e).__name__, e))
        if failures:
            print("soak: FAILED")
            for f in failures:
                print("  " + f)
            print("  (working directory %s; chaos.log, xcompd.log)" % wd.path)
            # Keep the directory: Workdir keeps it when the block raises.
            raise SystemExit(1)
    return 0


def run(wd, seconds, rng, rate, failures):
    conf = dict(AGENT_CONF)
    cluster = Cluster(wd.path, secret=SECRET)
    unbound = agent = stream = watcher = chaos = ct = None
    stop_chaos = threading.Event()
    try:
        cluster.start()
        rr = [a_record(n.host, n.address[0], 3600) for n in cluster.nodes]
        rr += [srv_record(p, 50, n.address[1], n.host, TTL)
               for p, n in zip((10, 20, 30), cluster.nodes)]
        unbound = Unbound(wd.path, rr).start()
        relay_port = free_port(kind=socket.SOCK_STREAM)
        agent = Agent(wd.path, secret=SECRET, dns_server=unbound.address, log_level="info",
                      relay_listen="127.0.0.1:%d" % relay_port, relay_replay="on", **conf)
        agent.start()
        agent.wait_connected(10)
        agent.wait_status(lambda s: s.get("relay") == "listening", 5, "the relay listening")
        client = xt.Client(("127.0.0.1", relay_port), name="local")
        client.open_stream(CB1)
        client.handshake(SECRET)
        agent.wait_status(lambda s: s.get("relay") == "connected", 5, "the relay connected")
        watcher = Watcher(agent).start()
        time.sleep(1.5)
        fds0 = settled_fds(watcher, agent.pid)
        stream = Stream(client, rate)
        stream.start()

        logf = open(wd.join("chaos.log"), "w")
        chaos = Chaos(cluster, unbound, rng, watcher, logf)
        ct = threading.Thread(target=chaos.run, args=(seconds, stop_chaos), daemon=True)
        t_start = now()
        cpu0 = resources(agent.pid)[2]
        ct.start()
        next_report = t_start + 60
        while ct.is_alive():
            ct.join(0.5)
            if watcher.dead or stream.closed:
                stop_chaos.set()
            if now() >= next_report and seconds > 90:
                r = watcher.resources[-1]
                print("  %4.0f s: %d chaos actions, %d sent, %d back, fds %d, RSS %d kB" % (
                    now() - t_start, chaos.actions, len(stream.sent), len(stream.first),
                    r[1], r[2]), flush=True)
                next_report += 60
        ct.join()
        t_chaos_end = now()
        logf.close()
        if chaos.error:
            failures.append("chaos: %s" % chaos.error)

        # Everything is back: the agent connects, the stream goes on a moment, then drains.
        recovery_limit = restore_limit(conf)
        try:
            agent.wait_connected(recovery_limit)
        except AssertionError as e:
            failures.append("no session within %.1f s of the restore: %s" % (
                recovery_limit, str(e).splitlines()[0]))
        time.sleep(2.0)
        stream.stop_sending.set()
        stream.tx.join(10)
        cpu1 = resources(agent.pid)[2]
        t_run = now() - t_start
        deadline = now() + xt.timeout(20)
        while now() < deadline and len(stream.first) < len(stream.sent) and not stream.closed:
            time.sleep(0.1)
        time.sleep(0.5)  # late duplicates
        stream.stop_reading.set()
        stream.rx.join(5)
        fds1 = settled_fds(watcher, agent.pid)
        watcher.stop.set()
        watcher.thread.join(5)
        watcher.read_log(now())

        report(failures, conf, seconds, t_start, t_chaos_end, t_run, cpu1 - cpu0, fds0, fds1,
               cluster, chaos, stream, watcher)
    finally:
        stop_chaos.set()
        if ct is not None:
            ct.join()
        if stream:
            stream.stop_sending.set()
            stream.stop_reading.set()
        if watcher:
            watcher.stop.set()
        if agent and agent.process:
            agent.stop()
        if unbound:
            unbound.stop()
        cluster.stop()


def restore_limit(conf):
    """From everything up and published to connected: the round in progress
    (each node at most one timeout), the backoff, the records' TTL, a new round."""
    n, c = 3, max(conf["connect_timeout"], conf["handshake_timeout"])
    return (conf["keepalive"] + conf["keepalive_timeout"] + 2 * n * c + conf["backoff_max"] +
            TTL + MARGIN) * xt.SCALE


def settled_fds(watcher, pid):
    """The agent's descriptor count while connected and quiet: the least of a
    few samples (a DNS query or status write may hold one for a moment)."""
    xt.wait_until(watcher.connected, restore_limit(AGENT_CONF), "connected")
    counts = []
    for _ in range(10):
        counts.append(len(os.listdir("/proc/%d/fd" % pid)))
        time.sleep(0.1)
    return min(counts)


def report(failures, conf, seconds, t_start, t_chaos_end, t_run, cpu, fds0, fds1, cluster,
           chaos, stream, watcher):
    if watcher.dead:
        failures.append(watcher.dead)
    if stream.closed:
        failures.append("local component: %s" % stream.closed)

    # (a) gaps
    problems = []
    waits = logged_waits(watcher.lines, conf, problems)
    failures.extend(problems)
    gaps = gaps_of(watcher.changes, chaos.hits, cluster, t_start)
    longest = (0.0, 0.0, "")
    over = []
    unexplained = []  # each gap less the waits logged in it: the agent's own work
    glog = open(os.path.join(os.path.dirname(watcher.agent.status_path), "gaps.log"), "w")
    detect = conf["keepalive"] + conf["keepalive_timeout"]
    raw_longest = 0.0
    for loss, left, back, why, kind, node in gaps:
        raw_longest = max(raw_longest, back - loss)
        # While no node could be used (all down, or out of the records) the
        # agent can only wait: count from when one could, and stayed so.
        start = min(back, max(loss, usable_since(chaos, back, node)))
        length = back - start
        # A silent node holds the session until it is noticed, at most
        # keepalive + keepalive-timeout after it fell silent; a crash is seen
        # at once. Then the attempts, each bounded by its timeouts, and the
        # waits while every node was held (the usable one too, after it
        # failed while it was down), each bounded by backoff-max.
        stall = max(0.0, loss + detect - start) if kind == "stop" else 0.0
        inside = [w for w in waits if w[1] >= start and w[0] <= back]
        tried = [w[3] for w in inside if w[2] == "attempts"]
        backoffs = [w[3] for w in inside if w[2] == "backoff"]
        explained = stall + sum(tried) + sum(backoffs)
        unexplained.append(length - explained)
        allowed = (explained + MARGIN) * xt.SCALE
        detail = "detection %.2f, %d attempts %.2f, %d waits %.2f + margin %.1f" % (
            stall, len(tried), sum(tried), len(backoffs), sum(backoffs), MARGIN)
        if start > loss:
            detail += "; counted from +%.1f s, when a node could be used" % (start - t_start)
        entry = (length, allowed, "%s at +%.1f s: %s" % (why, loss - t_start, detail))
        glog.write("%.3f s, allowed %.3f s: %s\n" % (length, allowed, entry[2]))
        if length > longest[0]:
            longest = entry
        if length > allowed:
            over.append(entry)
    glog.close()
    with open(os.path.join(os.path.dirname(watcher.agent.status_path), "xcompd.timed.log"),
              "w") as f:
        for t, line in watcher.lines:
            f.write("%9.3f %s\n" % (t - chaos.t0, line))
    for length, allowed, what in over:
        failures.append("gap of %.2f s, more than the %.2f s its waits allow (%s)" % (
            length, allowed, what))

    # (b) loss
    missing = stream.missing()
    if missing:
        failures.append("%d of %d messages never came back (first: %s)" % (
            len(missing), len(stream.sent), missing[:10]))
    if stream.errors:
        failures.append("%d error or unexpected stanzas (first: %s)" % (
            len(stream.errors), stream.errors[0]))
    if stream.out_of_order:
        failures.append("%d messages first arrived out of order" % stream.out_of_order)
    latencies = sorted(stream.first[i] - stream.sent[i] for i in stream.first
                       if i < len(stream.sent))

    # (c) fds and RSS, (d) CPU
    res = [r for r in watcher.resources if t_start <= r[0] <= t_chaos_end]
    with open(os.path.join(os.path.dirname(watcher.agent.status_path), "resources.log"),
              "w") as f:
        f.write("# seconds  fds  rss_kB  cpu_s\n")
        for r in res:
            f.write("%8.1f %4d %7d %7.2f\n" % (r[0] - t_start, r[1], r[2], r[3]))
    if fds1 != fds0:
        failures.append("open descriptors %d before the run, %d after" % (fds0, fds1))
    fd_max = max([r[1] for r in res] or [0])
    if fd_max > fds0 + FD_SLACK:
        failures.append("up to %d open descriptors during the run (settled %d, slack %d)" % (
            fd_max, fds0, FD_SLACK))
    q = max(1, len(res) // 4)
    rss_q2 = median_of([r[2] for r in res[q:2 * q]])
    rss_q4 = median_of([r[2] for r in res[-q:]])
    rss_allowed = max(RSS_SLACK_KB, rss_q2 * 0.05)
    if rss_q4 > rss_q2 + rss_allowed:
        failures.append("RSS grew: median %d kB in the second quarter, %d kB in the last "
                        "(allowed +%d kB)" % (rss_q2, rss_q4, rss_allowed))
    if cpu > CPU_SHARE * t_run:
        failures.append("agent CPU %.1f s over %.0f s: more than %.0f %% of a core" % (
            cpu, t_run, CPU_SHARE * 100))
    worst_window = 0.0
    for i in range(len(res)):
        j = i
        while j + 1 < len(res) and res[j][0] - res[i][0] < 5.0:
            j += 1
        if res[j][0] - res[i][0] >= 4.5:
            worst_window = max(worst_window, (res[j][3] - res[i][3]) / (res[j][0] - res[i][0]))
    if worst_window > CPU_WINDOW_SHARE:
        failures.append("agent CPU %.0f %% of a core over a 5 s window (spinning?)" % (
            worst_window * 100))

    downs = ", ".join("%.1f s" % (e - s) for s, e in chaos.all_down if e)
    print("chaos: %s" % ", ".join("%d %s" % (v, k) for k, v in sorted(chaos.counts.items())))
    print("all-down periods: %d (%s)" % (len(chaos.all_down), downs or "none"))
    print("gaps: %d; longest %.2f s, allowed %.2f s (%s)" % (len(gaps), longest[0], longest[1],
                                                            longest[2]))
    print("longest time without a session, outages included: %.2f s" % raw_longest)
    if unexplained:
        print("time in a gap beyond its logged waits: median %.0f ms, max %.0f ms" % (
            median_of(unexplained) * 1000, max(unexplained) * 1000))
    for s, e in chaos.all_down:
        if e is not None:
            print("all-down of %.1f s at +%.0f s: connected %.2f s after the nodes came back" % (
                e - s, s - t_start, connected_after(watcher.changes, e)))
    print("bound per gap, from when a node could be used: detection (keepalive %d + "
          "keepalive-timeout %d, for a silent node) + attempts (each <= connect-timeout %d + "
          "handshake-timeout %d) + the waits with every node held (each <= backoff-max %d), as logged, "
          "+ %.1f s" % (conf["keepalive"], conf["keepalive_timeout"], conf["connect_timeout"],
                        conf["handshake_timeout"], conf["backoff_max"], MARGIN))
    if latencies:
        print("echo latency: median %.1f ms, p99 %.0f ms, max %.2f s" % (
            latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000,
            latencies[-1]))
    print("fds settled %d -> %d, at most %d during the run; RSS median %d kB (2nd quarter) -> "
          "%d kB (last), max %d kB; CPU %.1f s over %.0f s (%.1f %%), worst 5 s %.0f %%" % (
              fds0, fds1, fd_max, rss_q2, rss_q4, max([r[2] for r in res] or [0]), cpu, t_run,
              100 * cpu / t_run, worst_window * 100))
    print("soak: %.0f s, %d chaos actions, %d stanzas sent, %d lost, %d duplicates, longest gap "
          "%.1f s (bound %.1f s), fds %d->%d, RSS %.1f->%.1f MB, CPU %.1f s%s" % (
              seconds, chaos.actions, len(stream.sent), len(missing), stream.dups, longest[0],
              longest[1], fds0, fds1, rss_q2 / 1024, rss_q4 / 1024, cpu,
              "" if not failures else ": FAILED"), flush=True)


if __name__ == "__main__":
    sys.exit(main())
