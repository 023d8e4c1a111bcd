#!/usr/bin/env python3
"""ab.py: interleaved A/B rounds of bench_infer, robust to a noisy shared machine.

Each round runs bench_infer once as A and once as B, back to back, alternating
which goes first (round 1: A then B, round 2: B then A, ...). For every point
(in-process batch N, server N clients) it prints the median, lowest and highest
per-round B/A ratio of images/s, the median images/s and minor faults per image
of each side, and the load average before each round. Server RSS lines (after
preload, busy, after the runs, settled) are summarised as medians per side.

  bench/infer/ab.py --rounds 6 --a-env '' \
      --b-env 'MALLOC_MMAP_THRESHOLD_=2147483647 MALLOC_TRIM_THRESHOLD_=2147483647' \
      -- --inprocess-only --seconds 2 --batch 1 --batch 8 --batch 32 mobilenet_v2

--a-args / --b-args add bench_infer arguments to one side only (e.g.
--b-args '--server-arg --malloc-reuse=off'). Everything after -- goes to both.
bench_infer is build/bench_infer (bench/infer/run.sh builds it), or --a-bench / --b-bench
for a client-side change (e.g. a copy of the old build's); --visiond and
--models default to build/visiond and data/models.
"""
import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys

POINT = re.compile(
    r"^(in-process|server)\s+(\S+)\s+(batch\s+\d+|\d+ clients?)[^:]*:\s+([\d.]+) images/s.*?"
    r"minflt/image\s+([\d.]+)")
RSS = re.compile(r"([\d.]+) MiB after preload, ([\d.]+) MiB after the runs \(peak ([\d.]+) MiB\)")
CPU = re.compile(r"^server\s+(\S+)\s+(\d+ clients?): per image: server CPU ([\d.]+) ms.*?"
                 r"clients CPU ([\d.]+) ms")
BUSY = re.compile(r"while busy .*?: ([\d.]+) MiB; ([\d.]+) s after the last request: ([\d.]+) MiB")


def run(bench, env_str, args):
    env = dict(os.environ)
    for kv in shlex.split(env_str):
        k, _, v = kv.partition("=")
        env[k] = v
    out = subprocess.run([bench] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, check=False).stdout
    pts, rss, cpu = {}, {}, {}
    for line in out.splitlines():
        m = CPU.search(line)
        if m:
            cpu["server %s %s" % (m.group(1), m.group(2))] = float(m.group(3)) + float(m.group(4))
        m = POINT.search(line)
        if m:
            key = "%s %s %s" % (m.group(1), m.group(2), " ".join(m.group(3).split()))
            pts[key] = (float(m.group(4)), float(m.group(5)))
        m = RSS.search(line)
        if m:
            rss["preload"], rss["after runs"], rss["peak"] = map(float, m.groups())
        m = BUSY.search(line)
        if m:
            rss["busy"], rss["settled"] = float(m.group(1)), float(m.group(3))
    if not pts:
        sys.stderr.write("ab: bench_infer printed no points:\n" + out)
    return pts, rss, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--bench", default="build/bench_infer")
    ap.add_argument("--a-bench", default="", help="this side's bench_infer (default --bench)")
    ap.add_argument("--b-bench", default="", help="this side's bench_infer (default --bench)")
    ap.add_argument("--a-env", default="")
    ap.add_argument("--b-env", default="")
    ap.add_argument("--a-args", default="")
    ap.add_argument("--b-args", default="")
    ap.add_argument("--a-name", default="A")
    ap.add_argument("--b-name", default="B")
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    o = ap.parse_args()
    rest = o.rest[1:] if o.rest[:1] == ["--"] else o.rest
    if "--visiond" not in rest:
        rest = ["--visiond", "build/visiond"] + rest
    if "--models" not in rest:
        rest = ["--models", "data/models"] + rest
    side = {"A": (o.a_env, shlex.split(o.a_args)), "B": (o.b_env, shlex.split(o.b_args))}
    print("ab: A = %s: env [%s] args [%s]" % (o.a_name, o.a_env, o.a_args))
    print("ab: B = %s: env [%s] args [%s]" % (o.b_name, o.b_env, o.b_args))
    print("ab: both: %s" % " ".join(rest))
    res = {"A": [], "B": []}
    loads = []
    for r in range(o.rounds):
        load = open("/proc/loadavg").read().split()[:3]
        loads.append(float(load[0]))
        order = ["A", "B"] if r % 2 == 0 else ["B", "A"]
        for s in order:
            env, extra = side[s]
            bench = (o.a_bench if s == "A" else o.b_bench) or o.bench
            res[s].append(run(bench, env, rest + extra))
        line = []
        for key in res["A"][-1][0]:
            a = res["A"][-1][0][key][0]
            b = res["B"][-1][0].get(key, (0, 0))[0]
            line.append("%s %.2f" % (key, b / a if a else 0))
        print("round %d (%s first, load %s): B/A %s" % (r + 1, order[0], " ".join(load),
                                                        "; ".join(line)))
        sys.stdout.flush()
    print("\nload average (1 min) before the rounds: median %.2f, range %.2f-%.2f" %
          (statistics.median(loads), min(loads), max(loads)))
    print("%-34s %9s %9s %9s | %9s %9s | %11s %11s" %
          ("point", "B/A med", "min", "max", "A img/s", "B img/s", "A flt/img", "B flt/img"))
    keys = [k for k in res["A"][0][0]] if res["A"] and res["A"][0][0] else []
    for key in keys:
        ratios, av, bv, af, bf = [], [], [], [], []
        for (pa, _, _), (pb, _, _) in zip(res["A"], res["B"]):
            if key in pa and key in pb and pa[key][0] > 0:
                ratios.append(pb[key][0] / pa[key][0])
                av.append(pa[key][0])
                bv.append(pb[key][0])
                af.append(pa[key][1])
                bf.append(pb[key][1])
        if not ratios:
            continue
        print("%-34s %9.2f %9.2f %9.2f | %9.1f %9.1f | %11.1f %11.1f" %
              (key, statistics.median(ratios), min(ratios), max(ratios), statistics.median(av),
               statistics.median(bv), statistics.median(af), statistics.median(bf)))
    ckeys = [k for k in res["A"][0][2]] if res["A"] else []
    if ckeys:
        print("%-34s %9s %9s %9s | %9s %9s" %
              ("CPU per image (server + clients)", "B/A med", "min", "max", "A ms", "B ms"))
    for key in ckeys:
        pairs = [(ca[key], cb[key]) for (_, _, ca), (_, _, cb) in zip(res["A"], res["B"])
                 if key in ca and key in cb and ca[key] > 0]
        if pairs:
            rt = [b / a for a, b in pairs]
            print("%-34s %9.3f %9.3f %9.3f | %9.2f %9.2f" %
                  (key, statistics.median(rt), min(rt), max(rt),
                   statistics.median([a for a, _ in pairs]), statistics.median([b for _, b in pairs])))
    for s in ("A", "B"):
        rs = [r for _, r, _ in res[s] if r]
        if rs:
            print("%s server RSS MiB (medians): %s" % (s, ", ".join(
                "%s %.1f" % (k, statistics.median([r[k] for r in rs if k in r]))
                for k in ("preload", "busy", "after runs", "settled", "peak"))))


if __name__ == "__main__":
    main()
