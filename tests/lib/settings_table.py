#!/usr/bin/python3
"""settings_table.py: docs/configuration.md's "Every setting" table against the commands' --help.

    settings_table.py VISIOND DOC

Every flag a command's `--help` names (`--x`, `-o`; not -h/--help) must be in a row of the
table whose commands column names that command (or says "every command", checked against
`visiond --help`), and every flag a row gives a command must be in that command's help. Prints
the differences and exits 1 when there are any.
"""
import re
import subprocess
import sys

COMMANDS = ["dataset", "jobs", "queue", "worker", "convert", "model-server", "serve", "up",
            "faces", "embed", "train", "predict", "index", "search"]
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


def help_flags(visiond, cmd):
    argv = [visiond] + ([cmd] if cmd else []) + ["--help"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    text = p.stdout + p.stderr
    if p.returncode != 0 and not text:
        sys.exit("%s: no help (exit %d)" % (" ".join(argv), p.returncode))
    # A flag counts where help text declares one: on a usage line, at the start of a line
    # (an option's description: "  --data DIR", "  -o, --onnx"), or in brackets ("[--limit N]");
    # not a flag of another command named in a sentence ("see visiond worker --list-types").
    flags = set()
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("usage:"):
            flags |= set(FLAG.findall(s))
            continue
        m = re.match(r"^((?:-[a-zA-Z], )?--?[a-zA-Z][a-z0-9-]*)(?=\s|,|=|$)", s)
        if m:
            flags |= set(FLAG.findall(m.group(1)))
        for inner in re.findall(r"\[([^\]]*)\]", s):
            flags |= set(FLAG.findall(inner))
    return flags - {"-h", "--help"}


def table_rows(doc):
    text = open(doc, encoding="utf-8").read()
    start = text.index("## Every setting")
    rows = []
    for line in text[start:].splitlines():
        if not line.startswith("|") or line.startswith("|---") or line.startswith("| flag "):
            if rows and not line.startswith("|"):
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        flags = set(re.findall(r"`(-{1,2}[a-zA-Z][a-z0-9-]*)`", cells[0]))
        cmds = {c.strip() for c in cells[4].split(",")}
        rows.append((flags, cmds))
    if not rows:
        sys.exit("%s: no rows under '## Every setting'" % doc)
    return rows


def main():
    visiond, doc = sys.argv[1], sys.argv[2]
    rows = table_rows(doc)
    problems = []
    checked = 0
    for cmd in COMMANDS + [None]:
        name = cmd or "every command"
        have = help_flags(visiond, cmd)
        listed, everywhere = set(), set()
        for flags, cmds in rows:
            if name in cmds:
                listed |= flags
            if "every command" in cmds:
                everywhere |= flags
        for f in sorted(have - listed - everywhere):
            problems.append("%s --help names %s, which the table does not list for it" % (cmd or "visiond", f))
        for f in sorted(listed - have):
            problems.append("the table lists %s for %s, which its --help does not name" % (f, name))
        checked += len(have)
    for p in problems:
        print("settings: " + p, file=sys.stderr)
    print("settings: %d flags of %d commands checked against %s, %d differences"
          % (checked, len(COMMANDS), doc, len(problems)), file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
