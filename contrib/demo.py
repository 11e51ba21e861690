#!/usr/bin/env python3
"""The README's demo: a local unbound serving _xmpp-component._tcp records for
three xcomp-server nodes on 127.0.0.1-3, xcompd connecting by those records,
the active node killed, and the status showing the failover and its reason.
Everything it starts it stops, by pid."""

import os
import signal
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
os.environ.setdefault("XCOMP_BUILDDIR", TOP)
os.environ.setdefault("XCOMP_SRCDIR", TOP)

import xcomptest as xt  # noqa: E402
from agenttest import DOMAIN, Agent, Cluster, Unbound  # noqa: E402


def say(text):
    print("\n\033[1m== %s\033[0m" % text if sys.stdout.isatty() else "\n== %s" % text,
          flush=True)


def show(argv):
    print("$ " + " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv)))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    sys.stdout.write(r.stdout + r.stderr)
    sys.stdout.flush()
    return r


def main():
    xcomp = xt.program("xcomp")
    with xt.Workdir("demo") as wd:
        say("Three XMPP nodes (xcomp-server) for %s on 127.0.0.1, .2 and .3" % DOMAIN)
        cluster = Cluster(wd.path, secret="kvgP1SRzWVabhiPVAb1").start()
        unbound = None
        agent = None
        try:
            show([xt.program("xcomp-server"), "-d", cluster.node("a").dir, "callbridge", "list"])
            say("A local unbound publishes them as SRV records (priority 10, 20, 20)")
            unbound = Unbound(wd.path, cluster.records(prio=(10, 20, 20))).start()
            show([xcomp, "resolve", "--dns-server", unbound.address, "--samples", "1000", DOMAIN])

            say("xcompd connects to the node with the lowest priority value")
            agent = Agent(wd.path, secret="kvgP1SRzWVabhiPVAb1", dns_server=unbound.address,
                          keepalive=5, keepalive_timeout=2, log_level="info")
            print("$ cat %s" % os.path.basename(agent.conf_path))
            print(open(agent.conf_path).read().rstrip())
            agent.start()
            st = agent.wait_connected()
            show([xcomp, "status", "-s", agent.status_path])

            active = cluster.by_server(st["server"])
            say("The active node %s is killed (SIGKILL)" % active.host)
            t0 = time.monotonic()
            active.process.signal(signal.SIGKILL)
            st = agent.wait_status(lambda s: s["state"] == "connected" and
                                   s["server"] != cluster.target(active), 5, "failover")
            print("connected to %s %.0f ms later" % (st["server"], (time.monotonic() - t0) * 1000))
            show([xcomp, "status", "-s", agent.status_path])
            print("$ cat %s" % os.path.basename(agent.status_path))
            print(open(agent.status_path).read().rstrip())

            say("SIGTERM: the agent closes its stream and says so")
            agent.process.signal(signal.SIGTERM)
            print("xcompd exited with %d" % agent.process.wait(5))
            show([xcomp, "status", "-s", agent.status_path])
            say("The agent's log")
            print(agent.log_text().rstrip())
        finally:
            if agent:
                agent.stop()
            if unbound:
                unbound.stop()
            cluster.stop()
        say("Everything stopped. Read more: man ./man/xcompd.8, man ./man/xcomp-troubleshooting.7")
    return 0


if __name__ == "__main__":
    sys.exit(main())
