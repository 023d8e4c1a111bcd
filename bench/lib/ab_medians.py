#!/usr/bin/env python3
"""ab_medians.py TIMES BIN...: the A/B summary of bench/index/ab.sh and
bench/pipeline/embed_jobs_ab.sh. TIMES holds one "BIN SECONDS" line per run; prints each
binary's median, its range and its speed against the first binary's (median against median)."""
import statistics
import sys

times = {}
for line in open(sys.argv[1]):
    b, s = line.split()
    times.setdefault(b, []).append(float(s))
first = statistics.median(times[sys.argv[2]])
for b in sys.argv[2:]:
    m = statistics.median(times[b])
    print("median %-32s %6.2f s (range %.2f-%.2f)  %.2fx the first's speed"
          % (b, m, min(times[b]), max(times[b]), first / m))
