#!/usr/bin/env bash
# man_pages.sh: the man pages generated at build time from --help (packaging/mkman.py,
# BUILD/man) exist for visiond and every command `visiond --help` lists, render with
# groff without a warning, and show each command's options as its --help does.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v groff >/dev/null || skip "groff missing (Debian's groff-base)"
dir=$VISIOND_BUILD_DIR/man
[ -f "$dir/visiond.1" ] || fail "no $dir/visiond.1 (the visiond_man target builds it)"
n=0
for cmd in "" $("$VISIOND" --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do
  page=$dir/visiond${cmd:+-$cmd}.1
  [ -f "$page" ] && [ -f "$page.gz" ] || fail "no $page (or its .gz)"
  warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  [ -z "$warn" ] || fail "$page: groff warns: $warn"
  text=$(groff -man -Tutf8 -P-cbou "$page" 2>/dev/null)
  grep -q "^NAME" <<<"$text" || fail "$page: no NAME section"
  # every option of the command's --help appears in its page
  for opt in $("$VISIOND" ${cmd:+"$cmd"} --help 2>/dev/null | grep -Eo '^ +--[a-z][a-z-]+' | sort -u); do
    grep -q -- "$opt" <<<"$text" || fail "$page lacks $opt"
  done
  n=$((n + 1))
done
echo "man_pages: ok ($n pages)"
