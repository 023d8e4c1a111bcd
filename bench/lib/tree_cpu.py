#!/usr/bin/env python3
"""tree_cpu.py OUT CMD [ARG...]: runs CMD and writes to OUT the CPU seconds (user + system) that
CMD and every process it reaped used, transitively: getrusage(RUSAGE_CHILDREN) after CMD exits.
Exits with CMD's status.

Why not `perf stat -e task-clock`: a worker's horses are cloned by its fork server with
CLONE_PARENT (src/worker/forkserver.h), and perf's inherited counters miss part of their time
(measured 2026-12-06, 2,000 no-op jobs: perf stat 1.60-1.73 s, this 2.59-2.85 s, `perf sched
timehist` agreeing with this). The worker reaps its fork server and every horse, so their CPU
is in its own children's usage, and so in ours."""
import resource
import subprocess
import sys

rc = subprocess.call(sys.argv[2:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write("%.6f\n" % (r.ru_utime + r.ru_stime))
sys.exit(rc)
