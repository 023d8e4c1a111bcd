"""bench_jobs.py: the job functions RQ's work-horses run in bench/queue/run.sh."""


def noop():
    return None
