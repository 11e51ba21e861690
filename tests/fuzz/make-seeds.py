#!/usr/bin/env python3
"""Write the seed corpora in tests/fuzz/corpus/ from real transcripts.

    XCOMP_BUILDDIR=. XCOMP_SRCDIR=. python3 tests/fuzz/make-seeds.py

Runs the server, Prosody, ejabberd, relay and probe suites with every raw
client recording what it sent and received (XCOMP_TRANSCRIPTS), runs an
agent to collect real status files, and turns all of it into seeds:
received streams for xs_server, sent streams for xs_component and relay,
xcompd.conf files for conf, status files for status, and DNS answers in
wire form for dns. Files named regress-* (inputs of past findings) are
kept; the other seeds are replaced.
"""
import glob
import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("XCOMP_SRCDIR", os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import xcomptest as xt  # noqa: E402
from agenttest import Agent, Cluster, Unbound  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
SUITES = ["test_server", "test_interop_prosody", "test_interop_ejabberd", "test_relay",
          "test_probe"]
MAX_SEED = 16384


class Corpus:
    def __init__(self, target):
        self.dir = os.path.join(CORPUS, target)
        os.makedirs(self.dir, exist_ok=True)
        for f in os.listdir(self.dir):
            if not f.startswith(("regress-", "found-")):
                os.unlink(os.path.join(self.dir, f))
        self.seen = set()

    def add(self, name, data):
        if len(data) > MAX_SEED:
            data = data[:MAX_SEED]
        h = hashlib.sha1(data).hexdigest()
        if h in self.seen:
            return
        self.seen.add(h)
        with open(os.path.join(self.dir, "%s-%s" % (name, h[:8])), "wb") as f:
            f.write(data)


def transcripts(where):
    env = dict(os.environ, XCOMP_TRANSCRIPTS=where)
    for s in SUITES:
        path = os.path.join(SRC, "tests", "integration", s + ".py")
        r = subprocess.run([sys.executable, path], env=env, capture_output=True, text=True)
        print("%s: %s" % (s, (r.stdout.strip().splitlines() or ["?"])[-1]))


def split_prefix(i):
    return struct.pack(">H", (i * 40503) & 0xffff)


def stream_seeds(where):
    server, component, relay = Corpus("xs_server"), Corpus("xs_component"), Corpus("relay")
    for i, path in enumerate(sorted(glob.glob(os.path.join(where, "*")))):
        data = open(path, "rb").read()
        name = os.path.basename(path).split("-")[0].replace("test_", "")
        if path.endswith(".recv"):
            server.add(name, split_prefix(i) + data)
            # Down the relay: upstream comes up, then sends this stream's stanzas.
            relay.add(name, b"\x01\x02" + chunks(1, after_header(data)))
        else:
            component.add(name, bytes([i & 1]) + split_prefix(i) + data)
            # The raw stream at the relay, before and after authentication.
            relay.add(name + "-raw", b"\x02" + chunks(0, data))
            relay.add(name, b"\x01\x02" + chunks(0, after_handshake(data)) + b"\x04\x03\x02")


def after_header(data):
    end = data.find(b">", data.find(b"<stream:stream"))
    return data[end + 1:] if end != -1 else data


def after_handshake(data):
    end = data.find(b"</handshake>")
    return data[end + len(b"</handshake>"):] if end != -1 else after_header(data)


def chunks(op, data):
    out = bytearray()
    for i in range(0, len(data), 255):
        part = data[i:i + 255]
        out += bytes([op, len(part)]) + part
    return bytes(out)


def name_wire(name):
    out = bytearray()
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return bytes(out) + b"\0"


def answer(flags, rcode, ttl, records):
    out = bytearray([flags, rcode]) + struct.pack(">I", ttl)
    for r in records:
        out += bytes([len(r)]) + r
    return bytes(out)


def dns_seeds():
    c = Corpus("dns")
    srv = [struct.pack(">HHH", p, w, port) + name_wire(t) for p, w, port, t in (
        (10, 60, 5347, "cb1.tptac9.com"), (20, 30, 5347, "cb2.tptac9.com"),
        (20, 10, 5347, "cb3.tptac9.com"), (20, 0, 5347, "cb2.tptac9.com"))]
    c.add("srv-cluster", b"\0" + answer(1, 0, 3600, srv))
    c.add("srv-secure", b"\0" + answer(1 | 4, 0, 60, srv[:1]))
    c.add("srv-null", b"\0" + answer(1, 0, 60, [struct.pack(">HHH", 0, 0, 0) + b"\0"]))
    c.add("srv-nxdomain", b"\0" + answer(2, 3, 0, []))
    c.add("srv-servfail", b"\0" + answer(0, 2, 0, []))
    c.add("srv-bogus", b"\0" + answer(1 | 8, 2, 0, srv[:1]))
    c.add("srv-resolver-error", b"\0" + answer(16, 0, 0, []))
    c.add("srv-compressed", b"\0" + answer(1, 0, 60, [struct.pack(">HHH", 1, 1, 5347) + b"\xc0\x0c"]))
    c.add("srv-underscore", b"\0" + answer(1, 0, 60, [struct.pack(">HHH", 1, 1, 1) + name_wire("a_b.x")]))
    a = [bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2])]
    aaaa = [bytes(15) + b"\1", bytes([0x20, 1, 0xd, 0xb8]) + bytes(11) + b"\2"]
    c.add("addr-both", b"\1" + answer(1, 0, 60, aaaa) + b"\0" + answer(1, 0, 300, a))
    c.add("addr-v4", b"\1" + answer(0, 0, 0, []) + b"\0" + answer(1, 0, 60, a))
    c.add("addr-short", b"\1" + answer(1, 0, 60, [b"\1\2\3"]) + b"\0" + answer(1, 0, 60, [b"\1\2\3\4\5"]))
    c.add("addr-nx", b"\1" + answer(2, 3, 0, []) + b"\0" + answer(2, 3, 0, []))


CONFIGS = {
    "contrib": None,
    "relay-events": """# a call bridge behind the relay
name = cb1
domain = tptac9.com
secret-file = /etc/xcomp/cb1.secret
dns-server = 127.0.0.1@5353
keepalive = 10
keepalive-timeout = 5
backoff-min = 1
backoff-max = 30
relay-listen = 127.0.0.1:5347
relay-replay = on
relay-queue = 1048576
event-url = https://hooks.example.com/xcomp
event-timeout = 5
event-queue = 100
log-level = debug
""",
    "servers-tls": """name = cb2
domain = tptac9.com
component = bridge.tptac9.com
secret = inline-secret
server = cb1.tptac9.com:5347
server = [::1]:5347
server = 127.0.0.1
port = 5347
tls = direct
tls-name = tptac9.com
tls-priority = NORMAL:-VERS-TLS1.0
status-file = /run/xcompd/status
""",
    "broken": """name = cb1
domain tptac9.com
keepalive = 99999999999
unknown-key = 1
backoff-min = 60
backoff-max = 1
""",
}


def conf_seeds():
    c = Corpus("conf")
    for name, text in CONFIGS.items():
        if text is None:
            text = open(os.path.join(SRC, "contrib", "xcompd.conf")).read()
        for mode in (0, 1):
            c.add("%s-%s" % (name, "file" if mode == 0 else "string"), bytes([mode]) + text.encode())
    for name, secret in (("plain", b"s3cret\n"), ("crlf", b"s3cret\r\n"), ("empty", b"\n"),
                         ("two-lines", b"first\nsecond\n"), ("long", b"x" * 1100 + b"\n")):
        c.add("secret-" + name, b"\2" + secret)


def status_seeds():
    c = Corpus("status")
    with xt.Workdir("seeds") as wd:
        cl = Cluster(wd.path).start()
        u = Unbound(wd.path, cl.records()).start()
        ag = Agent(wd.path, dns_server=u.address, keepalive=1, keepalive_timeout=1,
                   relay_listen="unix:" + wd.join("relay.sock"))
        try:
            ag.start()
            ag.wait_connected()
            c.add("connected", open(ag.status_path, "rb").read())
            cl.by_server(ag.status()["server"]).process.signal(signal.SIGKILL)
            ag.wait_status(lambda st: st.get("failovers", "0") != "0")
            c.add("failover", open(ag.status_path, "rb").read())
            for n in cl.nodes:
                if n.process.proc.poll() is None:
                    n.process.signal(signal.SIGKILL)
            ag.wait_status(lambda st: st.get("state") != "connected", seconds=10)
            c.add("down", open(ag.status_path, "rb").read())
        finally:
            ag.stop()
            u.stop()
            cl.stop()
        c.add("stopped", open(ag.status_path, "rb").read())
    c.add("tls", b"state=connected\nserver=a.tptac9.test:5347\naddress=127.0.0.1\n"
          b"tls=TLS1.3\ntls-cipher=AES-256-GCM\ntls-peer=CN=tptac9.test\n"
          b"tls-issuer=CN=ca\ntls-expires=2027-11-26T10:57:16Z\nupdated=2026-11-26T10:00:00Z\n"
          b"pid=1\nsince=2026-11-26T09:00:00Z\n")


def main():
    where = tempfile.mkdtemp(prefix="xcomp-transcripts-")
    try:
        transcripts(where)
        stream_seeds(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    dns_seeds()
    conf_seeds()
    status_seeds()
    for d in sorted(os.listdir(CORPUS)):
        print("%s: %d seeds" % (d, len(os.listdir(os.path.join(CORPUS, d)))))


if __name__ == "__main__":
    main()
