#!/usr/bin/env python3
"""Foreign component libraries against xcomp-server: slixmpp (ComponentXMPP),
libstrophe (xmpp_connect_component) and xmpp.js (@xmpp/component), each a
small program under components/ that prints line events on its standard
output and takes commands on its standard input.

    python3 tests/integration/test_interop_components.py [NAME-SUBSTRING...]

For each library: it authenticates as cb1; a raw client authenticated as cb2
pings it and gets the library's answer; it pings the server's domain and
reports the pong; a message goes each way with its body checked; it closes
its stream cleanly. With a wrong secret it fails, and the test asserts the
library's own report of the failure.

Set-up, once per run and only for the tests selected:
  slixmpp     /usr/bin/python3 (python3-slixmpp is a Debian package: it does
              not import under another python that may run this file)
  libstrophe  compiled into the run's temporary directory with
              cc $(pkg-config --cflags --libs libstrophe)
  xmpp.js     npm install --prefix $XCOMP_BUILDDIR/tests/npm @xmpp/component@0.13,
              reused when it is there already; run with node
A library that is missing, or an npm registry that cannot be reached, skips
that library's tests with one line saying why.

What the libraries do on the wire (their debug logs are in the kept
temporary directory of a failed test: COMPONENT.log):
  slixmpp 1.8.3    header without an XML declaration, without version, in
                   double quotes; sets 'from' on everything it sends (replies
                   swap to/from for components); whitespace keepalive (one
                   space) every 300 s, tested here at 0.1 s
  libstrophe 0.12  XML declaration, version='1.0' and xml:lang='en' in the
                   header; <handshake xmlns='jabber:component:accept'>;
                   xmpp_stanza_reply() drops 'from' (xcomp-server then ends
                   the stream with improper-addressing), so the program sets
                   it; 0.12.x also dereferences a NULL XEP-0198 state on the
                   first stanza of any component connection, which the
                   program works around (see strophe_component.c)
  xmpp.js 0.13     XML declaration and version='1.0' in the header; adds our
                   JID as 'from' to every stanza without one; a stream error
                   is emitted twice as the same StreamError object
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from xcomptest import NS_COMPONENT  # noqa: E402

DOMAIN = "tptac9.test"
CB1 = "cb1." + DOMAIN
CB2 = "cb2." + DOMAIN
TOKEN_TEXT = "Given token does not match calculated token"

COMPONENTS = os.path.join(xt.HERE, "components")
SYSTEM_PYTHON = "/usr/bin/python3"
XMPPJS_SPEC = "@xmpp/component@0.13"
NPM_PREFIX = os.path.join(xt.BUILDDIR, "tests", "npm")


def q(ns, name):
    return "{%s}%s" % (ns, name)


def run(argv, seconds, env=None):
    """A short command, bounded; a CompletedProcess, or None when it cannot run."""
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=xt.timeout(seconds), env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None


def npm_reason(text):
    """The line of npm's error output that says why, without npm's prefixes."""
    lines = [re.sub(r"^npm (?:ERR!|error)\s+(?:network\s+|FetchError:\s+)?", "", ln).strip()
             for ln in (text or "").splitlines() if re.match(r"npm (?:ERR!|error) ", ln)]
    lines = [ln for ln in lines if ln]
    why = [ln for ln in lines if "request to" in ln or "reason:" in ln]
    return (why or lines or ["no error output"])[0]


# ----------------------------------------------------------------- set-up

class Libraries:
    """Each library's set-up, done once, on first use: argv prefix and env, or
    the reason it is skipped."""

    def __init__(self):
        self.tmp = None
        self.done = {}

    def tmpdir(self):
        if self.tmp is None:
            self.tmp = tempfile.mkdtemp(prefix="xcomp-interop-build-",
                                        dir=os.environ.get("TMPDIR") or "/tmp")
        return self.tmp

    def cleanup(self):
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def get(self, lib):
        """(argv, env) for lib, or a string: why it is skipped."""
        if lib not in self.done:
            self.done[lib] = getattr(self, "_setup_" + lib)()
            if isinstance(self.done[lib], str):
                print("SKIP %s: %s" % (lib, self.done[lib]), flush=True)
        return self.done[lib]

    def _setup_slixmpp(self):
        # A PYTHONHOME meant for the python running this file would break the system's.
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        r = run([SYSTEM_PYTHON, "-c", "import slixmpp"], 20, env)
        if r is None or r.returncode != 0:
            return "%s cannot import slixmpp (install python3-slixmpp)" % SYSTEM_PYTHON
        env["PYTHONIOENCODING"] = "utf-8"
        return [SYSTEM_PYTHON, os.path.join(COMPONENTS, "slix_component.py")], env

    def _setup_libstrophe(self):
        if shutil.which("pkg-config") is None or shutil.which("cc") is None:
            return "pkg-config or cc is not installed"
        version = run(["pkg-config", "--modversion", "libstrophe"], 10)
        flags = run(["pkg-config", "--cflags", "--libs", "libstrophe"], 10)
        if version is None or flags is None or version.returncode or flags.returncode:
            return "pkg-config finds no libstrophe (install libstrophe-dev)"
        out = os.path.join(self.tmpdir(), "strophe_component")
        argv = (["cc", "-Wall", "-Wextra", "-o", out,
                 os.path.join(COMPONENTS, "strophe_component.c"),
                 '-DSTROPHE_VERSION="%s"' % version.stdout.strip()]
                + shlex.split(flags.stdout))
        r = run(argv, 60)
        if r is None or r.returncode != 0:
            # libstrophe is there: a source that does not build is a failure, not a skip.
            raise AssertionError("%s failed:\n%s" % (" ".join(argv), r.stderr if r else ""))
        return [out], dict(os.environ)

    def _setup_xmppjs(self):
        node, npm = shutil.which("node"), shutil.which("npm")
        if node is None or npm is None:
            return "node or npm is not installed"
        modules = os.path.join(NPM_PREFIX, "node_modules")
        pkg = os.path.join(modules, "@xmpp", "component", "package.json")
        if not self._xmppjs_there(pkg):
            r = run([npm, "install", "--prefix", NPM_PREFIX, XMPPJS_SPEC, "--no-audit",
                     "--no-fund", "--no-update-notifier", "--fetch-timeout=20000",
                     "--fetch-retries=1", "--fetch-retry-mintimeout=1000",
                     "--fetch-retry-maxtimeout=2000"], 120)
            if r is None:
                return "npm install %s did not finish within %.0f s" % (
                    XMPPJS_SPEC, xt.timeout(120))
            if r.returncode != 0 or not self._xmppjs_there(pkg):
                return "npm install %s failed (exit %d): %s" % (
                    XMPPJS_SPEC, r.returncode, npm_reason(r.stderr + r.stdout))
        return ([node, os.path.join(COMPONENTS, "xmppjs_component.js")],
                dict(os.environ, NODE_PATH=modules))

    @staticmethod
    def _xmppjs_there(pkg):
        try:
            with open(pkg, encoding="utf-8") as f:
                return re.search(r'"version"\s*:\s*"0\.13\.', f.read()) is not None
        except OSError:
            return False


LIBS = Libraries()


# ------------------------------------------------------ a foreign component

class Foreign(xt.Process):
    """A component program: commands on its standard input, events on its
    standard output (NAME.out), its library's debug log on standard error
    (NAME.log). Stopped by its pid: EOF on standard input, then SIGTERM, then
    SIGKILL."""

    def __init__(self, argv, workdir, name, env):
        super().__init__(argv, workdir, name, env=env)
        self.outpath = os.path.join(workdir, name + ".out")

    def start(self):
        with open(self.logpath, "ab") as log, open(self.outpath, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=out,
                                         stderr=log, env=self.env, close_fds=True)
        return self

    def out_text(self):
        try:
            with open(self.outpath, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def lines(self):
        return self.out_text().splitlines()

    def command(self, line):
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def expect(self, line, seconds=5.0):
        """Wait until this exact line is on its standard output."""
        deadline = time.monotonic() + xt.timeout(seconds)
        while True:
            if line in self.lines():
                return
            if self.proc.poll() is not None and line not in self.lines():
                raise AssertionError("%s exited with %s before printing %r; out:\n%s\nlog:\n%s" % (
                    self.name, self.proc.returncode, line, self.out_text(),
                    self.log_text()[-3000:]))
            if time.monotonic() >= deadline:
                raise AssertionError("%s: no %r within %.1f s; out:\n%s" % (
                    self.name, line, xt.timeout(seconds), self.out_text()))
            time.sleep(0.01)

    def close_stdin(self):
        if self.proc is not None and self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def stop(self, seconds=5.0):
        self.close_stdin()
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(xt.timeout(0.5))
            except subprocess.TimeoutExpired:
                pass
        return super().stop(seconds)


# ------------------------------------------------------------------ tests

class ComponentsTest(unittest.TestCase):
    maxDiff = None

    def library(self, lib):
        """(argv, env) of lib's program; skips the test when lib is missing.
        Called before any temporary directory exists, so a skip leaves none."""
        got = LIBS.get(lib)
        if isinstance(got, str):
            self.skipTest(got)
        return got

    def foreign(self, lib, srv, secret, extra_env=None):
        argv, env = self.library(lib)
        host, port = srv.address
        env = dict(env)
        env.update(XCOMP_SECRET=secret, XCOMP_DEBUG="1", **(extra_env or {}))
        return Foreign(argv + [host, str(port), CB1, DOMAIN], srv.workdir, lib, env).start()

    def session(self, lib, extra_env=None):
        """The whole exchange with one library; the lines it printed."""
        self.library(lib)
        with xt.server(lib) as srv:
            with self.foreign(lib, srv, srv.secrets["cb1"], extra_env) as comp:
                comp.expect("online")
                self.assertIn("Component  : %s" % CB1, srv.must("status").stdout)
                b = srv.component("cb2")

                # cb2 pings the library's component: the library answers.
                b.ping(CB1, CB2, "ping-" + lib)
                comp.expect("got ping from %s" % CB2)

                # The library pings the server's domain and reports the result.
                comp.command("ping %s" % DOMAIN)
                comp.expect("pong from %s" % DOMAIN)

                # A message from the library to cb2, escaping included.
                comp.command("message %s hello from %s: a<b & c>d \u00fc" % (CB2, lib))
                raw, e = b.recv_stanza()
                self.assertEqual(e.tag, q(NS_COMPONENT, "message"), raw)
                self.assertEqual((e.get("from"), e.get("to")), (CB1, CB2), raw)
                self.assertEqual(e.findtext(q(NS_COMPONENT, "body")),
                                 "hello from %s: a<b & c>d \u00fc" % lib, raw)

                # A message from cb2 to the library.
                b.send("<message from='%s' to='%s' type='chat' id='m-%s'>"
                       "<body>5 &lt; 6 &amp; caf\u00e9 \u260e</body></message>" % (CB2, CB1, lib))
                comp.expect("message from %s: 5 < 6 & caf\u00e9 \u260e" % CB2)

                # Nothing else reached cb2 (no stray bounces or errors).
                b.expect_nothing(0.1)

                # The quit command: it closes its stream and exits 0.
                comp.command("quit")
                self.assertEqual(comp.wait(), 0, comp.out_text())
                comp.expect("disconnected" if lib != "slixmpp" else
                            "disconnected: End of stream")
                xt.wait_until(lambda: "%s (" % CB1 in srv.log_text() and
                              "closed its stream" in srv.log_text(), 5,
                              "the server's log of cb1's stream close")
                self.assertNotIn("stream error", srv.log_text())
                b.ping(DOMAIN, CB2, "after-" + lib)
                return comp.lines()

    def wrong_secret(self, lib, want):
        """A wrong secret: the library's own report is want; it exits 1. The
        lines it printed."""
        self.library(lib)
        with xt.server(lib + "-secret") as srv:
            with self.foreign(lib, srv, "not-the-secret") as comp:
                rc = comp.wait(10)
                self.assertEqual(rc, 1, comp.out_text())
                errors = [ln for ln in comp.lines() if ln.startswith("error: ")]
                self.assertEqual(errors[:1], [want], comp.out_text())
                self.assertNotIn("online", comp.lines())
                self.assertIn("authentication failure for %s" % CB1, srv.log_text())
                return comp.lines()

    # -------------------------------------------------------------- slixmpp

    def test_slixmpp_session(self):
        lines = self.session("slixmpp", {"XCOMP_KEEPALIVE": "0.1"})
        # slixmpp's whitespace keepalive went out during the session and
        # xcomp-server took it (the exchange went on and ended cleanly).
        self.assertIn("keepalive sent", lines)

    def test_slixmpp_wrong_secret(self):
        # slixmpp fires its 'stream_error' event with the StreamError stanza,
        # then 'disconnected' ("End of stream"); no exception, no failed_auth.
        lines = self.wrong_secret(
            "slixmpp", "error: stream error not-authorized: " + TOKEN_TEXT)
        self.assertIn("disconnected: End of stream", lines)

    # ----------------------------------------------------------- libstrophe

    def test_libstrophe_session(self):
        self.session("libstrophe")

    def test_libstrophe_wrong_secret(self):
        # The TCP connection succeeded, so libstrophe reports XMPP_CONN_DISCONNECT
        # (not XMPP_CONN_FAIL), error 0, and the stream error it stored.
        self.wrong_secret(
            "libstrophe", "error: XMPP_CONN_DISCONNECT error=0 "
            "stream_error=not-authorized text=" + TOKEN_TEXT)

    # -------------------------------------------------------------- xmpp.js

    def test_xmppjs_session(self):
        self.session("xmppjs")

    def test_xmppjs_wrong_secret(self):
        # StreamError (from @xmpp/connection), message "CONDITION - TEXT";
        # emitted a second time by @xmpp/component's handshake.
        lines = self.wrong_secret(
            "xmppjs", "error: StreamError: not-authorized - %s "
            "[condition=not-authorized text=%s]" % (TOKEN_TEXT, TOKEN_TEXT))
        self.assertIn("error again: StreamError", lines)


def available():
    """Is any of the three libraries there at all? (Cheap checks.)"""
    return (os.access(SYSTEM_PYTHON, os.X_OK) or shutil.which("pkg-config") is not None
            or (shutil.which("node") is not None and shutil.which("npm") is not None))


if __name__ == "__main__":
    if not available():
        print("SKIP: no slixmpp (%s), no pkg-config (libstrophe), no node and npm" %
              SYSTEM_PYTHON)
        sys.exit(77)
    try:
        rc = xt.main(ComponentsTest, sys.argv[1:], ("xcomp-server",))
    finally:
        LIBS.cleanup()
    sys.exit(rc)
