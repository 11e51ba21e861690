#!/usr/bin/env python3
"""xcompd under a service manager, without PID 1: the units checked by
systemd-analyze (verify, and the security exposure score), the sd_notify
protocol read from a real NOTIFY_SOCKET that the test binds (READY, STATUS as
the state changes, WATCHDOG at the asked pace, STOPPING, and nothing at all
without the socket), secrets through $CREDENTIALS_DIRECTORY, and the "user"
key's drop from root.

    python3 tests/integration/test_systemd.py [NAME-SUBSTRING...]
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcomptest as xt  # noqa: E402
from agenttest import Agent, AgentLab  # noqa: E402

SRCDIR = os.environ.get("XCOMP_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", "..")
UNITS = ("xcompd.service", "xcompd@.service")


def unit_path(unit):
    """The unit as the build made it from contrib/UNIT.in, with this build's paths."""
    return os.path.join(os.environ.get("XCOMP_BUILDDIR") or SRCDIR, "contrib", unit)
STATUS_CONNECTED = re.compile(
    r"^STATUS=connected to (\S+) since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def built_with_libsystemd():
    """Whether configure found libsystemd for this build (config.h says)."""
    builddir = os.environ.get("XCOMP_BUILDDIR") or SRCDIR
    try:
        with open(os.path.join(builddir, "config.h")) as f:
            return "#define HAVE_LIBSYSTEMD 1" in f.read()
    except OSError:
        return True  # an unusual build: test it


class NotifySocket:
    """An AF_UNIX datagram socket, as systemd binds for NOTIFY_SOCKET: every
    message received, with its arrival time, one entry per line."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []  # (monotonic time, "KEY=VALUE")
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self.lock:
                for line in data.decode().split("\n"):
                    if line:
                        self.messages.append((now, line))

    def lines(self, prefix=""):
        with self.lock:
            return [m for _, m in self.messages if m.startswith(prefix)]

    def times(self, line):
        with self.lock:
            return [t for t, m in self.messages if m == line]

    def wait(self, predicate, seconds=5.0, what="message"):
        """The first line that predicate accepts, waiting for it."""
        found = []

        def check():
            found[:] = [m for m in self.lines() if predicate(m)]
            return bool(found)
        try:
            xt.wait_until(check, seconds, what)
        except AssertionError:
            raise AssertionError("no %s; received %r" % (what, self.lines())) from None
        return found[0]

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


class SystemdTest(AgentLab):

    def notify_socket(self):
        if not built_with_libsystemd():
            self.skipTest("xcompd built without libsystemd: no sd_notify to test")
        n = NotifySocket(self.wd.join("notify.sock"))
        self.cleanups.append(n.close)
        return n

    def agent(self, u, env=None, watchdog_pid_self=False, name="xcompd", **keys):
        """An agent started with env added to a clean environment (no NOTIFY_SOCKET,
        WATCHDOG_* or CREDENTIALS_DIRECTORY of the test's own)."""
        a = Agent(self.wd.path, name=name, dns_server=u.address, **keys)
        self.start_agent(a, env, watchdog_pid_self)
        return a

    def start_agent(self, a, env=None, watchdog_pid_self=False, preexec=None):
        e = {k: v for k, v in os.environ.items() if k not in (
            "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY")}
        e.update(env or {})
        argv = [xt.program("xcompd"), "-f", a.conf_path]
        if watchdog_pid_self:
            # WATCHDOG_PID names the agent itself, as systemd sets it: the shell's pid,
            # which exec hands on.
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"',
                    "sh"] + argv
        a.process = xt.Process(argv, a.workdir, a.name, env=e)
        if preexec is not None:
            with open(a.process.logpath, "ab") as log:
                a.process.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                                  stderr=log, env=e, preexec_fn=preexec)
        else:
            a.process.start()
        self.cleanups.append(a.stop)
        return a

    # ---------------------------------------------------------- the units

    def analyze(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze not installed (Debian package systemd)")
        return tool

    def test_units_verify(self):
        tool = self.analyze()
        paths = []
        for unit in UNITS:
            with open(unit_path(unit)) as f:
                text = f.read()
            installed = re.search(r"^ExecStart=(\S+/xcompd) ", text, re.M).group(1)
            # The installed path does not exist here: the built program stands in.
            path = self.wd.join(unit)
            with open(path, "w") as f:
                f.write(text.replace(installed, xt.program("xcompd")))
            paths.append(path)
        r = subprocess.run([tool, "verify", "--man=no"] + paths, capture_output=True,
                           text=True, timeout=xt.timeout(60))
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        # It can fail: a misspelt setting is reported.
        bad = self.wd.join("bad.service")
        with open(bad, "w") as f:
            f.write(open(paths[0]).read().replace("Type=notify", "Type=notfy"))
        r = subprocess.run([tool, "verify", "--man=no", bad], capture_output=True, text=True,
                           timeout=xt.timeout(60))
        self.assertIn("notfy", r.stdout + r.stderr)

    def test_units_exposure_below_2(self):
        tool = self.analyze()
        for unit in UNITS:
            r = subprocess.run([tool, "security", "--offline=yes",
                                unit_path(unit)],
                               capture_output=True, text=True, timeout=xt.timeout(60))
            m = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", r.stdout)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            sys.stderr.write("  %s: exposure %s %s\n" % (unit, m.group(1), m.group(2)))
            self.assertLess(float(m.group(1)), 2.0, r.stdout)
            self.assertEqual(m.group(2), "OK")

    def test_units_agree(self):
        # The template is the single unit with %i: the same hardening, line for line.
        per_instance = ("Description=", "ExecStart=", "LoadCredential=", "RuntimeDirectory=")
        texts = {}
        for unit in UNITS:
            with open(unit_path(unit)) as f:
                texts[unit] = [ln for ln in f.read().splitlines()
                               if ln and not ln.startswith("#") and
                               not ln.startswith(per_instance)]
        self.assertEqual(texts[UNITS[0]], texts[UNITS[1]])
        with open(unit_path(UNITS[1])) as f:
            text = f.read()
        self.assertRegex(text, r"-f /\S*/xcomp/%i\.conf")
        self.assertIn("RuntimeDirectory=xcomp/%i\n", text)

    # ---------------------------------------------------------- sd_notify

    def test_notify_ready_status_failover_stopping(self):
        c = self.cluster()
        u = self.dns(c.records())
        n = self.notify_socket()
        a = self.agent(u, env={"NOTIFY_SOCKET": n.path})
        first = c.target(c.node("a"))
        a.wait_connected(server=first)
        n.wait(lambda m: m == "READY=1", what="READY=1")
        n.wait(lambda m: m.startswith("STATUS=connected to %s since " % first),
               what="STATUS connected to " + first)
        self.assertRegex(n.lines("STATUS=connected")[0], STATUS_CONNECTED)
        self.assertEqual(n.lines("WATCHDOG"), [])  # not asked for
        c.node("a").process.signal(signal.SIGKILL)
        st = a.wait_status(lambda s: s["state"] == "connected" and s["server"] != first, 3,
                           "failover")
        line = n.wait(lambda m: m.startswith("STATUS=connected to %s " % st["server"]),
                      what="STATUS connected to " + st["server"])
        self.assertRegex(line, STATUS_CONNECTED)
        # In between, what went wrong: the last error in words.
        statuses = n.lines("STATUS=")
        between = statuses[statuses.index(n.lines("STATUS=connected")[0]) + 1:
                           statuses.index(line)]
        self.assertTrue(any(s.startswith("STATUS=no session: ") and "a.tptac9.test" in s
                            for s in between), statuses)
        # The heartbeat rewrites of the status file say nothing new: no repeats.
        self.assertTrue(all(x != y for x, y in zip(statuses, statuses[1:])), statuses)
        a.process.signal(signal.SIGTERM)
        self.assertEqual(a.process.wait(), 0)
        n.wait(lambda m: m == "STOPPING=1", what="STOPPING=1")
        self.assertEqual(n.lines("STATUS=")[-1], "STATUS=stopped")
        self.assertEqual(n.lines("READY=1"), ["READY=1"])

    def test_notify_no_error_status_names_the_failure(self):
        # No node answers: the status says why, not just "connecting".
        c = self.cluster(nodes=1)
        c.node("a").stop()
        u = self.dns(c.records(prio=(10,), weight=(10,)))
        n = self.notify_socket()
        a = self.agent(u, env={"NOTIFY_SOCKET": n.path})
        n.wait(lambda m: m.startswith("STATUS=no session: ") and "a.tptac9.test" in m,
               what="STATUS naming the failed node")
        n.wait(lambda m: m == "READY=1", what="READY=1")
        a.stop()

    def test_watchdog_at_half_the_interval(self):
        c = self.cluster(nodes=1)
        u = self.dns(c.records(prio=(10,), weight=(10,)))
        n = self.notify_socket()
        a = self.agent(u, env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "600000"},
                       watchdog_pid_self=True)
        a.wait_connected()
        n.wait(lambda m: m == "WATCHDOG=1", what="WATCHDOG=1")
        time.sleep(3.0)
        times = n.times("WATCHDOG=1")
        gaps = sorted(y - x for x, y in zip(times, times[1:]))
        # WatchdogSec=0.6 s: every 0.3 s, so that no gap comes near the deadline.
        self.assertGreaterEqual(len(gaps), 8, gaps)
        self.assertTrue(0.25 < gaps[len(gaps) // 2] < 0.4, gaps)
        self.assertLess(gaps[-1], 0.55, gaps)
        a.process.signal(signal.SIGTERM)
        self.assertEqual(a.process.wait(), 0)
        n.wait(lambda m: m == "STOPPING=1", what="STOPPING=1")
        stop = n.times("STOPPING=1")[0]
        self.assertFalse([t for t in n.times("WATCHDOG=1") if t > stop + 0.05])

    def test_watchdog_for_another_pid_is_not_ours(self):
        # WATCHDOG_PID of another process: the watchdog is that one's (sd_watchdog_enabled).
        c = self.cluster(nodes=1)
        u = self.dns(c.records(prio=(10,), weight=(10,)))
        n = self.notify_socket()
        a = self.agent(u, env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "200000",
                               "WATCHDOG_PID": "1"})
        a.wait_connected()
        n.wait(lambda m: m == "READY=1", what="READY=1")
        time.sleep(0.5)
        self.assertEqual(n.lines("WATCHDOG"), [])
        a.stop()

    def test_no_notify_socket_no_datagram(self):
        # The socket is there, but the agent is not told of it: not one datagram.
        c = self.cluster()
        u = self.dns(c.records())
        n = self.notify_socket()
        a = self.agent(u, env={"WATCHDOG_USEC": "200000"}, watchdog_pid_self=True)
        first = c.target(c.node("a"))
        a.wait_connected(server=first)
        c.node("a").process.signal(signal.SIGKILL)
        a.wait_status(lambda s: s["state"] == "connected" and s["server"] != first, 3,
                      "failover")
        time.sleep(0.5)
        a.process.signal(signal.SIGTERM)
        self.assertEqual(a.process.wait(), 0)
        self.assertEqual(a.status()["state"], "stopped")
        time.sleep(0.2)
        self.assertEqual(n.lines(), [])

    # ---------------------------------------------------------- credentials

    def test_secret_from_credentials_directory(self):
        c = self.cluster(nodes=1)
        u = self.dns(c.records(prio=(10,), weight=(10,)))
        creds = self.wd.join("credentials")
        os.mkdir(creds, 0o700)
        fd = os.open(os.path.join(creds, "secret"), os.O_WRONLY | os.O_CREAT, 0o400)
        os.write(fd, b"s3cret\n")
        os.close(fd)
        a = Agent(self.wd.path, dns_server=u.address,
                  secret_file="${CREDENTIALS_DIRECTORY}/secret")
        # Without the variable (outside a unit): a configuration error that says so.
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path], capture_output=True,
                           text=True, timeout=xt.timeout(10),
                           env={k: v for k, v in os.environ.items()
                                if k != "CREDENTIALS_DIRECTORY"})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("CREDENTIALS_DIRECTORY is not set", r.stderr)
        self.start_agent(a, env={"CREDENTIALS_DIRECTORY": creds})
        a.wait_connected()

    # ---------------------------------------------------------- user

    def nobody(self):
        if os.geteuid() != 0:
            self.skipTest("not root: the drop to another user needs root")
        return pwd.getpwnam("nobody")

    def test_user_drop_from_root(self):
        pw = self.nobody()
        c = self.cluster(nodes=1)
        u = self.dns(c.records(prio=(10,), weight=(10,)))
        # Only nobody may write in the status directory: the agent must write as nobody.
        os.chmod(self.wd.path, 0o711)
        run = self.wd.join("run")
        os.mkdir(run, 0o755)
        os.chown(run, pw.pw_uid, pw.pw_gid)
        a = Agent(self.wd.path, dns_server=u.address, user="nobody",
                  status_file=os.path.join(run, "status"))
        a.status_path = os.path.join(run, "status")
        self.start_agent(a)
        a.wait_connected()
        with open("/proc/%d/status" % a.pid) as f:
            proc = f.read()
        uids = re.search(r"^Uid:\s+(.*)$", proc, re.M).group(1).split()
        gids = re.search(r"^Gid:\s+(.*)$", proc, re.M).group(1).split()
        self.assertEqual(uids, [str(pw.pw_uid)] * 4)
        self.assertEqual(gids, [str(pw.pw_gid)] * 4)
        groups = re.search(r"^Groups:\s*(.*)$", proc, re.M).group(1).split()
        self.assertNotIn("0", groups)
        self.assertEqual(os.stat(os.path.join(run, "status")).st_uid, pw.pw_uid)
        # SIGHUP reads the files as nobody: with the secret nobody's, a reload works, and
        # a new user waits for the next start.
        os.chown(a.secret_path, pw.pw_uid, pw.pw_gid)
        a.conf["user"] = "daemon"
        a.write_conf(a.conf)
        a.process.signal(signal.SIGHUP)
        a.process.wait_for_log(r"user: the change to daemon takes effect at the next start")
        a.process.wait_for_log(r"configuration reloaded")
        # Its heartbeat and a state change are still written, as nobody.
        c.node("a").process.signal(signal.SIGKILL)
        a.wait_status(lambda s: s["state"] != "connected", 3, "the drop seen")
        self.assertEqual(a.stop(), 0)
        self.assertEqual(a.status()["state"], "stopped")

    def test_user_drop_status_dir_not_writable(self):
        self.nobody()
        c = self.cluster(nodes=1)
        u = self.dns(c.records(prio=(10,), weight=(10,)))
        os.chmod(self.wd.path, 0o711)
        run = self.wd.join("run")
        os.mkdir(run, 0o755)  # root's: nobody cannot write here
        a = Agent(self.wd.path, dns_server=u.address, user="nobody",
                  status_file=os.path.join(run, "status"))
        a.status_path = os.path.join(run, "status")
        self.start_agent(a)
        self.assertEqual(a.process.wait(), 1)
        self.assertRegex(a.log_text(), r"cannot start as user nobody: status-file .*: "
                         r"cannot write in .*/run")

    def test_user_refused_when_not_root(self):
        pw = self.nobody()
        u = self.dns([])
        os.chmod(self.wd.path, 0o711)
        a = Agent(self.wd.path, dns_server=u.address, user="daemon")
        os.chmod(a.conf_path, 0o644)
        os.chown(a.secret_path, pw.pw_uid, pw.pw_gid)
        os.chown(self.wd.path, pw.pw_uid, pw.pw_gid)

        def become_nobody():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        self.start_agent(a, preexec=become_nobody)
        self.assertEqual(a.process.wait(), 1)
        self.assertIn("user daemon: xcompd runs as uid %d, not root, and cannot become daemon"
                      % pw.pw_uid, a.log_text())
        # Its own name is no switch at all: nobody may say user = nobody.
        a.conf["user"] = "nobody"
        a.write_conf(a.conf)
        os.chmod(a.conf_path, 0o644)
        self.start_agent(a, preexec=become_nobody)
        a.wait_status(lambda s: s.get("pid") == str(a.pid), 5, "running as nobody")
        self.assertEqual(a.stop(), 0)

    def test_user_unknown(self):
        u = self.dns([])
        a = Agent(self.wd.path, dns_server=u.address, user="no-such-user-xc")
        r = subprocess.run([xt.program("xcompd"), "-t", "-f", a.conf_path], capture_output=True,
                           text=True, timeout=xt.timeout(10))
        self.assertEqual(r.returncode, 1)
        self.assertIn("user no-such-user-xc: no such user", r.stderr)


if __name__ == "__main__":
    sys.exit(xt.main(SystemdTest, sys.argv[1:], ("xcompd", "xcomp-server")))
