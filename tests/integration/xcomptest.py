"""xcomptest: the integration tests' harness (Python 3 standard library only).

Real processes on loopback: a temporary directory per test (kept when the test
fails), processes started with their stderr in a log file there and stopped by
their pid (SIGTERM, then SIGKILL), readiness by waiting for a file, and a
scripted raw XMPP client for XEP-0114 streams. Every wait is bounded, so a
broken server fails a test instead of hanging it.

Environment:
  XCOMP_BUILDDIR        where the programs were built (default: the source top)
  XCOMP_VALGRIND=1      run xcomp-server under valgrind (--leak-check=full,
                        --error-exitcode=99); waits are scaled up
  XCOMP_TIMEOUT_SCALE   multiply every timeout (default 1, or 5 under valgrind)
  XCOMP_KEEP=1          keep the temporary directories of passing tests too
"""

import atexit
import codecs
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("XCOMP_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("XCOMP_BUILDDIR") or SRCDIR
VALGRIND = os.environ.get("XCOMP_VALGRIND", "") not in ("", "0", "no")
SCALE = float(os.environ.get("XCOMP_TIMEOUT_SCALE") or (5 if VALGRIND else 1))
KEEP = os.environ.get("XCOMP_KEEP", "") not in ("", "0", "no")

NS_COMPONENT = "jabber:component:accept"
NS_STREAMS = "http://etherx.jabber.org/streams"
NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PING = "urn:xmpp:ping"

# Findings of valgrind runs ("LOG: summary"), reported by the test driver.
valgrind_findings = []


def timeout(seconds=5.0):
    """A bounded wait, scaled for slow runs (valgrind)."""
    return seconds * SCALE


def program(name):
    path = os.path.join(BUILDDIR, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError("%s not found: build first, or set XCOMP_BUILDDIR" % path)
    return path


def valgrind_prefix(logpath):
    return ["valgrind", "--quiet", "--leak-check=full", "--error-exitcode=99",
            "--log-file=" + logpath]


def check_valgrind_log(path):
    """Record a valgrind log's errors and leaks; return a summary or None."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    first = [ln for ln in text.splitlines() if re.match(r"==\d+== \S", ln)][:12]
    summary = "%s:\n  %s" % (path, "\n  ".join(first))
    valgrind_findings.append(summary)
    return summary


# ---------------------------------------------------------------- directories

class Workdir:
    """A temporary directory, removed on success, kept (and named) on failure."""

    def __init__(self, name="test"):
        self.name = name
        self.path = None

    def __enter__(self):
        base = os.environ.get("TMPDIR") or "/tmp"
        self.path = tempfile.mkdtemp(prefix="xcomp-%s-" % self.name, dir=base)
        return self

    def __exit__(self, etype, evalue, tb):
        if etype is None and not KEEP:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            sys.stderr.write("  (kept %s)\n" % self.path)
        return False

    def join(self, *parts):
        return os.path.join(self.path, *parts)


def wait_for_file(path, seconds=5.0, proc=None):
    """Wait until path exists (and is not empty); fail early if proc dies."""
    deadline = time.monotonic() + timeout(seconds)
    while time.monotonic() < deadline:
        try:
            if os.path.getsize(path) > 0:
                return
        except FileNotFoundError:
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s exited with %s before writing %s; log:\n%s" % (
                proc.name, proc.returncode, path, proc.log_text()))
        time.sleep(0.01)
    raise AssertionError("%s did not appear within %.1f s" % (path, timeout(seconds)))


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    """A port that was free a moment ago, for programs that cannot report the
    port they got (bind to port 0 where the program allows it instead)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate, seconds=5.0, what="condition"):
    deadline = time.monotonic() + timeout(seconds)
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("%s not met within %.1f s" % (what, timeout(seconds)))


# ------------------------------------------------------------------ processes

class Process:
    """A process we started, stopped by its pid: SIGTERM, then SIGKILL."""

    def __init__(self, argv, workdir, name, valgrind=False, env=None):
        self.name = name
        self.logpath = os.path.join(workdir, name + ".log")
        self.vglog = None
        if valgrind:
            self.vglog = os.path.join(workdir, name + ".valgrind")
            argv = valgrind_prefix(self.vglog) + list(argv)
        self.argv = argv
        self.env = env
        self.proc = None
        self.returncode = None

    def start(self):
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=self.env, close_fds=True)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def poll(self):
        self.returncode = self.proc.poll()
        return self.returncode

    def signal(self, signo):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signo)

    def wait(self, seconds=5.0):
        """Exit status, or AssertionError (the process is left running)."""
        try:
            self.returncode = self.proc.wait(timeout(seconds))
        except subprocess.TimeoutExpired:
            raise AssertionError("%s (pid %d) still running after %.1f s" % (
                self.name, self.proc.pid, timeout(seconds))) from None
        return self.returncode

    def stop(self, seconds=5.0):
        """SIGTERM, wait, then SIGKILL. Returns the exit status (-9 if killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout(seconds))
            except subprocess.TimeoutExpired:
                sys.stderr.write("  %s (pid %d) ignored SIGTERM: SIGKILL\n" % (
                    self.name, self.proc.pid))
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.returncode = self.proc.returncode
        if self.vglog:
            check_valgrind_log(self.vglog)
        return self.returncode

    def wait_for_log(self, pattern, seconds=5.0):
        """Wait until the log matches pattern (a regex); the match."""
        deadline = time.monotonic() + timeout(seconds)
        while True:
            m = re.search(pattern, self.log_text(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before logging %r; log:\n%s" % (
                    self.name, self.proc.returncode, pattern, self.log_text()))
            if time.monotonic() >= deadline:
                raise AssertionError("%s: no %r in its log within %.1f s" % (
                    self.name, pattern, timeout(seconds)))
            time.sleep(0.01)

    def log_text(self):
        try:
            with open(self.logpath, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, etype, evalue, tb):
        self.stop()
        return False


def run_command(argv, workdir, input=None, seconds=10.0, valgrind=False, name="cmd"):
    """Run a short command to completion (bounded); a CompletedProcess with text."""
    vglog = None
    if valgrind:
        fd, vglog = tempfile.mkstemp(prefix=name + "-", suffix=".valgrind", dir=workdir)
        os.close(fd)
        argv = valgrind_prefix(vglog) + list(argv)
    try:
        return subprocess.run(argv, input=input if input is not None else "",
                              capture_output=True, text=True, timeout=timeout(seconds))
    finally:
        if vglog:
            check_valgrind_log(vglog)


# ---------------------------------------------------------------- XMPP client

ANY = object()  # "don't care" for expected values

_Q = r"""(?:'[^']*'|"[^"]*")"""
_ATTR = r"\s+[^\s=/>]+\s*=\s*" + _Q
_TAG = re.compile(r"<(/?)([^\s/>!?]+)((?:%s)*)\s*(/?)>" % _ATTR)
_HEADER = re.compile(r"(?:<\?xml\s[^>]*\?>\s*)?<stream:stream((?:%s)*)\s*>" % _ATTR)
_ATTRS = re.compile(r"""([^\s=]+)\s*=\s*(?:'([^']*)'|"([^"]*)")""")
_STREAM_ERROR = re.compile(
    r"<stream:error>"
    r"<(?P<cond>[a-z-]+) xmlns=(?P<q1>['\"])" + re.escape(NS_STREAM_ERRORS) + r"(?P=q1)/>"
    r"(?:<text xmlns=(?P<q2>['\"])" + re.escape(NS_STREAM_ERRORS) + r"(?P=q2)"
    r"(?: xml:lang=" + _Q + r")?>(?P<text>[^<]*)</text>)?"
    r"</stream:error></stream:stream>")


def attrs_of(text):
    """Attributes of one start tag's attribute text, unescaped."""
    out = {}
    for m in _ATTRS.finditer(text):
        out[m.group(1)] = unescape(m.group(2) if m.group(2) is not None else m.group(3))
    return out


def unescape(s):
    return (s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))


def parse_stanza(raw):
    """One stanza as received on a component stream, as an ElementTree element."""
    doc = "<stream:stream xmlns='%s' xmlns:stream='%s'>%s</stream:stream>" % (
        NS_COMPONENT, NS_STREAMS, raw)
    root = ET.fromstring(doc)
    if len(root) != 1:
        raise AssertionError("expected one element, got %d in %r" % (len(root), raw))
    return root[0]


def canon(elem):
    """An element's infoset (names, attributes, text, children) for comparison."""
    return (elem.tag, tuple(sorted(elem.attrib.items())), elem.text or "",
            tuple(canon(c) for c in elem), elem.tail or "")


def complete_element(text):
    """Length of the first complete element at the start of text, or None."""
    depth = 0
    pos = 0
    while True:
        m = _TAG.search(text, pos)
        if m is None:
            return None
        if depth == 0 and text[pos:m.start()].strip():
            raise AssertionError("text outside an element: %r" % text[:200])
        if m.group(1):
            depth -= 1
        elif not m.group(4):
            depth += 1
        pos = m.end()
        if depth == 0:
            return pos
        if depth < 0:
            raise AssertionError("unbalanced end tag in %r" % text[:200])


# XCOMP_TRANSCRIPTS=DIR: every Client writes what it sent and received
# there when the test program ends (seeds for the fuzz corpora, tests/fuzz).
_transcripts = []


def _write_transcripts():
    where = os.environ.get("XCOMP_TRANSCRIPTS")
    for i, c in enumerate(_transcripts):
        base = os.path.join(where, "%s-%d-%s" % (
            os.path.basename(sys.argv[0]).replace(".py", ""), i, c.name))
        for kind, data in (("sent", c.sent_raw), ("recv", c.recv_raw)):
            if data:
                with open("%s.%s" % (base, kind), "wb") as f:
                    f.write(bytes(data))


if os.environ.get("XCOMP_TRANSCRIPTS"):
    atexit.register(_write_transcripts)


class Client:
    """A scripted raw XMPP client on one TCP connection."""

    def __init__(self, addr, name="client", source=None):
        self.name = name
        self.sock = socket.create_connection(addr, timeout=timeout(5), source_address=source)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.data = ""  # everything received
        self.pos = 0  # what the test has consumed
        self.eof = False
        self.stream_id = None
        self.header = None
        self.sent_raw = self.recv_raw = None
        if os.environ.get("XCOMP_TRANSCRIPTS"):
            self.sent_raw, self.recv_raw = bytearray(), bytearray()
            _transcripts.append(self)

    # -- raw I/O

    def local_address(self):
        host, port = self.sock.getsockname()[:2]
        return "%s:%d" % (host, port)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self.sent_raw is not None:
            self.sent_raw += data
        self.sock.sendall(data)

    def send_slowly(self, data, chunk=1, pause=0.0005):
        """Send in tiny writes (one TCP segment each, with TCP_NODELAY)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self.sent_raw is not None:
            self.sent_raw += data
        for i in range(0, len(data), chunk):
            self.sock.sendall(data[i:i + chunk])
            if pause:
                time.sleep(pause)

    def _read(self, deadline):
        """Read once, until deadline. False on timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            b = b""
        if self.recv_raw is not None:
            self.recv_raw += b
        if not b:
            self.eof = True
            self.data += self.decoder.decode(b"", final=True)
        else:
            self.data += self.decoder.decode(b)
        return True

    def pending(self):
        return self.data[self.pos:]

    def recv_until(self, what, seconds=3.0):
        """Read until what (a substring or compiled regex) appears in the
        unconsumed text; consume and return the text up to its end."""
        deadline = time.monotonic() + timeout(seconds)
        while True:
            rest = self.data[self.pos:]
            if isinstance(what, re.Pattern):
                m = what.search(rest)
                end = m.end() if m else -1
            else:
                i = rest.find(what)
                end = i + len(what) if i >= 0 else -1
            if end >= 0:
                self.pos += end
                return rest[:end]
            if self.eof:
                raise AssertionError("%s: connection closed while waiting for %r; got %r" % (
                    self.name, getattr(what, "pattern", what), rest))
            if not self._read(deadline):
                raise AssertionError("%s: no %r within %.1f s; got %r" % (
                    self.name, getattr(what, "pattern", what), timeout(seconds), rest))

    def expect_closed(self, seconds=3.0):
        """Read to EOF (bounded), close, and return the text left unconsumed."""
        deadline = time.monotonic() + timeout(seconds)
        while not self.eof:
            if not self._read(deadline):
                raise AssertionError("%s: not closed within %.1f s; got %r" % (
                    self.name, timeout(seconds), self.pending()))
        rest = self.pending()
        self.pos = len(self.data)
        self.close()
        return rest

    def expect_nothing(self, seconds=0.3):
        """Assert that nothing arrives for this long (not scaled)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.eof:
            self._read(deadline)
        if self.pending() or self.eof:
            raise AssertionError("%s: expected nothing, got %r%s" % (
                self.name, self.pending(), " and EOF" if self.eof else ""))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        self.close()
        return False

    # -- XMPP

    def stream_header(self, to, ns=NS_COMPONENT, stream_ns=NS_STREAMS, decl=True, extra=""):
        """extra: more attributes, e.g. " xmlns:ex='urn:example'"."""
        h = "<?xml version='1.0'?>" if decl else ""
        h += "<stream:stream xmlns='%s' xmlns:stream='%s'" % (ns, stream_ns)
        if to is not None:
            h += " to='%s'" % to
        return h + extra + ">"

    def expect_header(self, seconds=3.0):
        """The server's stream header, as its attributes; sets stream_id."""
        text = self.recv_until(_HEADER, seconds)
        m = _HEADER.fullmatch(text)
        if m is None:
            raise AssertionError("%s: data before the stream header: %r" % (self.name, text))
        a = attrs_of(m.group(1))
        if a.get("xmlns") != NS_COMPONENT or a.get("xmlns:stream") != NS_STREAMS:
            raise AssertionError("%s: bad namespaces in header %r" % (self.name, text))
        if not a.get("id"):
            raise AssertionError("%s: no id in header %r" % (self.name, text))
        self.header = a
        self.stream_id = a["id"]
        return a

    def open_stream(self, to, **kw):
        """Send a component stream header; return the server's stream id."""
        self.send(self.stream_header(to, **kw))
        a = self.expect_header()
        if a.get("from") != to:
            raise AssertionError("%s: header from=%r, expected %r" % (self.name, a.get("from"), to))
        return self.stream_id

    @staticmethod
    def digest(stream_id, secret):
        return hashlib.sha1((stream_id + secret).encode("utf-8")).hexdigest()

    def handshake(self, secret, expect_ok=True):
        self.send("<handshake>%s</handshake>" % self.digest(self.stream_id, secret))
        if expect_ok:
            got = self.recv_until("<handshake/>")
            if got != "<handshake/>":
                raise AssertionError("%s: unexpected data before <handshake/>: %r" % (
                    self.name, got))

    def expect_stream_error(self, condition, text=ANY, seconds=3.0):
        """The next thing received is <stream:error> with this condition (and
        <text/>: ANY, None for none, or the exact text) then </stream:stream>,
        and the server closes the connection."""
        got = self.recv_until("</stream:stream>", seconds)
        m = _STREAM_ERROR.fullmatch(got)
        if m is None:
            raise AssertionError("%s: expected <%s/> stream error, got %r" % (
                self.name, condition, got))
        if m.group("cond") != condition:
            raise AssertionError("%s: expected <%s/>, got %r" % (self.name, condition, got))
        t = unescape(m.group("text")) if m.group("text") is not None else None
        if text is not ANY and t != text:
            raise AssertionError("%s: stream error text %r, expected %r" % (self.name, t, text))
        rest = self.expect_closed()
        if rest:
            raise AssertionError("%s: data after the stream's end: %r" % (self.name, rest))
        return t

    def recv_stanza(self, seconds=3.0):
        """The next complete element: (raw text, ElementTree element)."""
        deadline = time.monotonic() + timeout(seconds)
        while True:
            rest = self.data[self.pos:]
            n = complete_element(rest)
            if n is not None:
                self.pos += n
                raw = rest[:n]
                return raw, parse_stanza(raw)
            if self.eof:
                raise AssertionError("%s: closed while waiting for a stanza; got %r" % (
                    self.name, rest))
            if not self._read(deadline):
                raise AssertionError("%s: no stanza within %.1f s; got %r" % (
                    self.name, timeout(seconds), rest))

    def ping(self, to, frm, iq_id="ping1"):
        """XEP-0199 ping; asserts the exact result."""
        self.send("<iq type='get' id='%s' from='%s' to='%s'><ping xmlns='%s'/></iq>" % (
            iq_id, frm, to, NS_PING))
        raw, e = self.recv_stanza()
        want = {"type": "result", "id": iq_id, "from": to, "to": frm}
        if e.tag != "{%s}iq" % NS_COMPONENT or e.attrib != want or len(e) or (e.text or ""):
            raise AssertionError("%s: ping answer %r, expected an empty iq with %r" % (
                self.name, raw, want))


# ---------------------------------------------------------------- xcomp-server

class Server:
    """An xcomp-server state directory and, once started, its running process.

    listen entries are "ADDR:PORT" or "ADDR:PORT tls". Once started, addresses
    holds every listener as (host, port) in DIR/listening's order and
    tls_addresses the TLS ones among them; address is the first plain one.
    """

    def __init__(self, workdir, name="server", domain="tptac9.test", listen=("127.0.0.2:0",),
                 bridges=("cb1", "cb2"), settings=()):
        self.workdir = workdir
        self.name = name
        self.dir = os.path.join(workdir, name)
        self.domain = domain
        self.secrets = {}
        self.process = None
        self.addresses = []
        self.tls_addresses = []
        self.clients = []
        if domain:
            self.must("domain", domain)
        for a in listen:
            self.must("listen", *a.split())
        for b in bridges:
            out = self.must("callbridge", "add", b).stdout
            m = re.search(r"^Secret\s*: (\S+)$", out, re.M)
            if m is None:
                raise AssertionError("no secret in %r" % out)
            self.secrets[b] = m.group(1)
        for args in settings:
            self.must(*args)

    def cmd(self, *args, input=None, seconds=10.0):
        """Run xcomp-server -d DIR ARGS...; a CompletedProcess (text)."""
        return run_command([program("xcomp-server"), "-d", self.dir] + list(args), self.workdir,
                           input=input, seconds=seconds, valgrind=VALGRIND, name="cmd")

    def must(self, *args, input=None):
        r = self.cmd(*args, input=input)
        if r.returncode != 0:
            raise AssertionError("xcomp-server %s: exit %d: %s" % (
                " ".join(args), r.returncode, r.stderr.strip()))
        return r

    def jid(self, name):
        return "%s.%s" % (name, self.domain)

    def start(self):
        listening = os.path.join(self.dir, "listening")
        self.process = Process([program("xcomp-server"), "-v", "-d", self.dir, "run"],
                               self.workdir, self.name, valgrind=VALGRIND).start()
        wait_for_file(listening, 10, self.process)
        with open(listening) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        for ln in lines:
            # "ADDR:PORT" or "ADDR:PORT tls"
            words = ln.split()
            host, port = words[0].rsplit(":", 1)
            addr = (host.strip("[]"), int(port))
            self.addresses.append(addr)
            if words[1:] == ["tls"]:
                self.tls_addresses.append(addr)
            elif words[1:]:
                raise AssertionError("%s: unexpected line %r" % (listening, ln))
        return self

    @property
    def address(self):
        """The first plain listener (the first listener if all are TLS)."""
        plain = [a for a in self.addresses if a not in self.tls_addresses]
        return (plain or self.addresses)[0]

    @property
    def tls_address(self):
        return self.tls_addresses[0]

    def connect(self, name=None, addr=None):
        c = Client(addr or self.address, name=name or "client%d" % (len(self.clients) + 1))
        self.clients.append(c)
        return c

    def component(self, bridge, name=None, addr=None):
        """An authenticated session of call bridge 'bridge'."""
        c = self.connect(name or bridge, addr)
        c.open_stream(self.jid(bridge))
        c.handshake(self.secrets[bridge])
        return c

    def stop(self, seconds=5.0):
        """Close our clients, then SIGTERM; the exit status."""
        for c in self.clients:
            c.close()
        if self.process is None:
            return None
        return self.process.stop(seconds)

    def log_text(self):
        return self.process.log_text() if self.process else ""

    def __enter__(self):
        if self.process is None:
            self.start()
        return self

    def __exit__(self, etype, evalue, tb):
        rc = self.stop()
        if etype is None and rc is not None and rc != 0:
            raise AssertionError("%s exited with %d after SIGTERM (99: valgrind found errors); "
                                 "log:\n%s" % (self.name, rc, self.log_text()[-3000:]))
        return False


@contextlib.contextmanager
def server(test_name, **kw):
    """A temporary directory and a running xcomp-server in it, both cleaned up."""
    with Workdir(test_name) as wd:
        srv = Server(wd.path, **kw)
        with srv:
            yield srv


# ---------------------------------------------------------------- test driver

class LabTest(unittest.TestCase):
    """A test with a directory of its own (kept when the test fails) and a list
    of things to stop, stopped in reverse order whatever happens."""

    maxDiff = None
    prefix = ""

    def setUp(self):
        self.wd = Workdir(self.prefix + self._testMethodName.replace("test_", "")).__enter__()
        self.cleanups = []

    def tearDown(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # keep stopping the rest
                sys.stderr.write("  cleanup: %s\n" % e)
        # The result already holds this test's failure when tearDown runs.
        result = getattr(self._outcome, "result", None)
        failed = result is not None and any(
            t is self for t, _ in result.failures + result.errors)
        self.wd.__exit__(AssertionError if failed else None, None, None)


class LineResult(unittest.TestResult):
    """One line per test, then the failures, then "N passed, M failed"."""

    def startTest(self, test):
        super().startTest(test)
        self._t0 = time.monotonic()

    def _line(self, word, test):
        print("%-4s %s (%.2fs)" % (word, test._testMethodName, time.monotonic() - self._t0),
              flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line("ok", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line("FAIL", test)

    def addError(self, test, err):
        super().addError(test, err)
        self._line("ERR", test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line("skip", test)


def main(test_class, argv, programs=()):
    """Run test_class's tests (those whose names contain an argument, if any):
    one line each, the failures, valgrind's findings, "N passed, M failed".
    Exit status 0 when all passed, 77 (skip) when a program is not built."""
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromTestCase(test_class)
    if argv:
        suite = unittest.TestSuite(t for t in suite
                                   if any(a in t._testMethodName for a in argv))
    try:
        for name in programs:
            program(name)
    except RuntimeError as e:
        print("SKIP: %s" % e)
        return 77
    t0 = time.monotonic()
    result = LineResult()
    suite.run(result)
    for test, err in result.failures + result.errors:
        print("\n=== %s\n%s" % (test._testMethodName, err), end="")
    if valgrind_findings:
        print("\n=== valgrind")
        for f in valgrind_findings:
            print(f)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("%.1f s" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 and not valgrind_findings else 1
