#!/usr/bin/env python3
"""Rolling restart (make bench; not a test): three xcomp-server nodes of equal
priority, each in turn stopped with SIGTERM and started again 0.5 s later, the
next one 0.5-1 s after that, while xcompd (keepalive 1, keepalive-timeout 1,
backoff-min 1) holds cb1's session. The status file is read every millisecond:
each time without a session is a gap. Prints the longest gap and the total per
rolling restart over BENCH_ROLLING_RUNS (20) runs, and their median and max.
A healthy node is there all the time, so every gap is avoidable beyond the
moment it takes to connect to the next node.

XCOMP_BUILDDIR=DIR points it at another build (the binaries before a change).
"""

import os
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import xcomptest as xt  # noqa: E402
from agenttest import Agent, Cluster, GapWatch, Unbound, cluster_rolling_restart  # noqa: E402

RUNS = int(os.environ.get("BENCH_ROLLING_RUNS", "20"))


def main():
    longest, total = [], []
    with xt.Workdir("bench-rolling") as wd:
        cluster = Cluster(wd.path).start()
        unbound = Unbound(wd.path, cluster.records(prio=(10, 10, 10))).start()
        agent = None
        try:
            agent = Agent(wd.path, name="rolling", dns_server=unbound.address, log_level="info",
                          keepalive=1, keepalive_timeout=1, backoff_min=1).start()
            for run in range(RUNS):
                agent.wait_connected(10)
                time.sleep(3.2)  # the session is stable: the run starts from rest
                watch = GapWatch(agent).start()
                cluster_rolling_restart(cluster)
                agent.wait_connected(10)
                time.sleep(0.2)
                watch.stop()
                gaps = [g * 1000 for g in watch.lengths()]
                longest.append(max(gaps or [0.0]))
                total.append(sum(gaps))
                print("run %2d: %d gaps, longest %7.1f ms, total %7.1f ms" % (
                    run + 1, len(gaps), longest[-1], total[-1]), flush=True)
        finally:
            if agent:
                agent.stop()
            unbound.stop()
            cluster.stop()
    print("rolling restart, 3 nodes, %d runs: longest gap median %.1f ms, max %.1f ms; "
          "total per restart median %.1f ms, max %.1f ms" % (
              RUNS, statistics.median(longest), max(longest), statistics.median(total),
              max(total)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
