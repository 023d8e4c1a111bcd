"""enq_time.py: runs `visiond jobs enqueue ...` (the arguments) and times it from outside.

  python3 enq_time.py VISIOND jobs enqueue noop --count N --queue URL

Prints three numbers: the ids it printed, the process's wall time (spawn to exit), and the
rate from its first printed id to its exit: (ids - BATCH) / (exit - first read). The CLI prints
a batch's ids only once the batch is in (docs/queue.md, "Bulk enqueue"), so the first read comes
after the first batch of BATCH jobs ($ENQ_BATCH, default 1000: vd_queue_enqueue_many_max of the
queue, 10000 on SQLite) was committed and the jobs after it are the rest (none, and a rate of 0,
when one batch held them all): this leaves out the process start-up (~0.1 s of 118 shared objects bound
-z now) and the first batch, whatever the machine's load did to this one run's start-up."""
import os
import subprocess
import sys
import time

BATCH = int(os.environ.get("ENQ_BATCH", "1000"))  # the CLI's batch on this queue


def main():
    t0 = time.perf_counter()
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
    fd = p.stdout.fileno()
    ids = 0
    t_first = None
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        ids += b.count(b"\n")
        if t_first is None:
            t_first = time.perf_counter()
    rc = p.wait()
    t1 = time.perf_counter()
    if rc != 0:
        sys.exit(f"enq_time: {sys.argv[1]} exited with {rc}")
    rest = ids - min(ids, BATCH)
    steady = rest / (t1 - t_first) if rest and t1 > t_first else 0
    print(f"{ids} {t1 - t0:.6f} {steady:.0f}")


if __name__ == "__main__":
    main()
