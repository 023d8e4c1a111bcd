#!/usr/bin/env python3
"""layers.py: checks that src/ keeps the layer order of docs/architecture.md.

usage: layers.py SRC_DIR ARCHITECTURE_MD

The order is the ```layers block of docs/architecture.md: one line per layer, "N: mod mod",
0 at the bottom. A file of module M may include its own module's headers and those of
modules in layers strictly below M's; anything else (a module above, or beside it in the
same layer) is an error, and so is a module missing from the table. Two modules that
include each other (directly or around a longer loop) are reported as a cycle too.
Prints every violation as FILE:LINE and exits 1 when there is one; 0 otherwise."""
import os
import re
import sys


def read_layers(md_path):
    text = open(md_path, encoding="utf-8").read()
    m = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M)
    if not m:
        sys.exit("%s: no ```layers block" % md_path)
    layer = {}
    for line in m.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        num, _, mods = line.partition(":")
        for mod in mods.split():
            layer[mod] = int(num)
    return layer


def main():
    src, md = sys.argv[1], sys.argv[2]
    layer = read_layers(md)
    mods = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    bad = []
    edges = {m: set() for m in mods}
    for m in mods:
        if m not in layer:
            bad.append("src/%s/: module missing from the layer table of %s" % (m, md))
            continue
        for root, _, files in os.walk(os.path.join(src, m)):
            for f in sorted(files):
                if not f.endswith((".c", ".h", ".cpp")):
                    continue
                path = os.path.join(root, f)
                rel = os.path.relpath(path, os.path.dirname(src.rstrip("/")))
                for n, line in enumerate(open(path, errors="replace"), 1):
                    inc = re.match(r'\s*#\s*include\s+"([^"/]+)/', line)
                    if not inc or inc.group(1) == m or inc.group(1) not in edges:
                        continue
                    t = inc.group(1)
                    edges[m].add(t)
                    if t not in layer:
                        continue  # reported as missing above
                    if layer[t] >= layer[m]:
                        where = "above" if layer[t] > layer[m] else "beside"
                        bad.append("%s:%d: %s (layer %d) includes %s/, %s it (layer %d)"
                                   % (rel, n, m, layer[m], t, where, layer[t]))
    # cycles between modules: strongly connected components of the include graph
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in mods:
        if v not in index:
            visit(v)
    for c in cycles:
        bad.append("modules include each other: %s" % " <-> ".join(c))
    for b in bad:
        print(b)
    if bad:
        print("FAIL: %d layer violation(s); the order is in %s" % (len(bad), md))
        return 1
    print("ok: %d modules keep the layer order of %s" % (len(mods), md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
