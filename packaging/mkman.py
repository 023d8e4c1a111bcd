#!/usr/bin/env python3
"""mkman.py VISIOND OUTDIR VERSION: man pages generated from the binary's --help.

Writes OUTDIR/visiond.1 (from `visiond --help`) and OUTDIR/visiond-CMD.1 for every
command that `visiond --help` lists (from `visiond CMD --help`), each also gzipped
(NAME.1.gz, what the package installs). The help texts are the
one source: a paragraph of plain lines is filled text, an indented block (options,
subcommands, examples) is kept as laid out, a line "heading:" alone starts a section.
"""

import gzip
import os
import re
import subprocess
import sys

DOCS = "/usr/share/doc/visiond"


def esc(line: str) -> str:
    """A line of text as roff: backslashes, and a leading '.' or "'" made literal."""
    line = line.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + line if line[:1] in (".", "'") else line


def help_text(visiond: str, *args: str) -> str:
    env = dict(os.environ, VISIOND_LOG_LEVEL="error")
    p = subprocess.run([visiond, *args, "--help"], capture_output=True, text=True, env=env,
                       check=False)
    if p.returncode != 0 or not p.stdout.strip():
        sys.exit(f"mkman: {visiond} {' '.join(args)} --help failed ({p.returncode}): {p.stderr}")
    return p.stdout


def body(text: str) -> list[str]:
    """The help text after its usage lines, as roff."""
    out = [".SH DESCRIPTION"]
    lines = text.rstrip("\n").split("\n")
    i = 0
    while i < len(lines) and lines[i].strip():  # the usage line(s): in SYNOPSIS
        i += 1
    mode = None  # None (between paragraphs), "text" or "pre" (an indented block)

    def close() -> None:
        if mode == "pre":
            out.extend([".fi", ".RE"])

    for line in lines[i:]:
        heading = re.fullmatch(r"([A-Za-z][A-Za-z ]*):", line)
        if not line.strip() or heading:
            close()
            if heading:
                out.append(".SH " + esc(heading.group(1).upper()))
            elif mode:
                out.append(".PP")
            mode = None
        elif line.startswith(" "):
            if mode != "pre":
                close()
                out.extend([".RS 2", ".nf"])
                mode = "pre"
            out.append(esc(line[2:] if line.startswith("  ") else line))
        else:
            close()
            if mode == "pre":
                out.append(".PP")
            mode = "text"
            out.append(esc(line))
    close()
    while len(out) > 1 and out[1] == ".PP":
        del out[1]
    return out[1:] if len(out) > 1 and out[1].startswith(".SH") else out


def page(name: str, summary: str, version: str, usage: list[str], rest: list[str],
         see_also: list[str]) -> str:
    title = name.upper().replace("-", "\\-")
    head = [f'.TH {title} 1 "" "visiond {version}" "visiond manual"',
            ".nh", ".SH NAME", f"{esc(name)} \\- {esc(summary)}", ".SH SYNOPSIS", ".nf"]
    head += [esc(u.replace("usage: ", "", 1).strip()) for u in usage]
    head.append(".fi")
    tail = [".SH FILES", ".TP", ".I /etc/visiond/visiond.conf",
            "settings of \\fBvisiond up\\fR (key = value; see \\fBvisiond\\-up\\fR(1))",
            ".TP", ".I /var/lib/visiond",
            "the data directory of the Debian package: queue, store, models, uploads",
            ".SH SEE ALSO", ", ".join("\\fB%s\\fR(1)" % s.replace("-", "\\-") for s in see_also),
            ".PP",
            f"The documentation in \\fI{DOCS}\\fR and the project's docs/ (api.md, "
            "configuration.md, operations.md).", ""]
    return "\n".join(head + rest + tail)


def usage_lines(text: str) -> list[str]:
    lines = text.split("\n")
    out = []
    for l in lines:
        if not l.strip():
            break
        out.append(l)
    return out


def main() -> None:
    visiond, outdir, version = sys.argv[1:4]
    os.makedirs(outdir, exist_ok=True)
    top = help_text(visiond)
    cmds = re.findall(r"^  ([a-z][a-z-]*) +(.+)$", top, re.M)
    if not cmds:
        sys.exit("mkman: no commands in 'visiond --help'")
    names = ["visiond-" + c for c, _ in cmds]
    written = []
    with open(os.path.join(outdir, "visiond.1"), "w") as f:
        f.write(page("visiond", "a self-hosted image-understanding service", version,
                     usage_lines(top), body(top), names))
    written.append("visiond.1")
    for cmd, summary in cmds:
        text = help_text(visiond, cmd)
        usage = usage_lines(text) if text.startswith("usage:") else [f"visiond {cmd}"]
        rest = body(text) if text.startswith("usage:") else [".SH DESCRIPTION",
                                                            esc(summary.capitalize() + ".")]
        others = ["visiond"] + [n for n in names if n != "visiond-" + cmd]
        with open(os.path.join(outdir, f"visiond-{cmd}.1"), "w") as f:
            f.write(page("visiond-" + cmd, summary, version, usage, rest, others))
        written.append(f"visiond-{cmd}.1")
    for name in written:  # compressed copies for the package (Debian policy 12.1)
        with open(os.path.join(outdir, name), "rb") as src:
            data = src.read()
        with open(os.path.join(outdir, name + ".gz"), "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
                gz.write(data)
    print(f"mkman: {len(written)} pages in {outdir} (NAME.1 and NAME.1.gz)")


if __name__ == "__main__":
    main()
