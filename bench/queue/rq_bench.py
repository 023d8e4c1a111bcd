"""rq_bench.py: the RQ side of bench/queue/run.sh.

  python3 rq_bench.py enqueue URL N   enqueues N no-op jobs (bench_jobs.noop) on queue
                                      'default' in one process; prints the seconds taken
  python3 rq_bench.py bulk URL N      the same with Queue.enqueue_many (RQ's bulk enqueue:
                                      one Redis pipeline per 1000 jobs)
  python3 rq_bench.py count URL       prints finished,failed,queued counts of 'default'

Run with Debian's /usr/bin/python3 (python3-rq). The worker side is RQ's own
`rq worker --burst`, which forks a work-horse per job."""
import sys
import time

from redis import Redis
from rq import Queue

import bench_jobs


def main():
    cmd, url = sys.argv[1], sys.argv[2]
    conn = Redis.from_url(url)
    q = Queue("default", connection=conn)
    if cmd == "enqueue":
        n = int(sys.argv[3])
        t0 = time.perf_counter()
        for _ in range(n):
            q.enqueue(bench_jobs.noop)
        print(f"{time.perf_counter() - t0:.6f}")
    elif cmd == "bulk":
        n = int(sys.argv[3])
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            data = [Queue.prepare_data(bench_jobs.noop) for _ in range(min(1000, n - i))]
            q.enqueue_many(data)
        print(f"{time.perf_counter() - t0:.6f}")
    elif cmd == "count":
        print(f"{q.finished_job_registry.count},{q.failed_job_registry.count},{len(q)}")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
