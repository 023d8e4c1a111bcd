#!/usr/bin/env bash
# layers.sh: src/ keeps the layer order written in docs/architecture.md (tests/lib/layers.py):
# no file includes a module above its own layer or beside it, no two modules include each
# other. First the check itself is shown to catch what it must, on a copy of the tree with
# one bad include planted at a time (an upward include, a same-layer include, a cycle, a
# module missing from the table); then the real tree is checked.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
CHECK="$VISIOND_SOURCE_DIR/tests/lib/layers.py"
ARCH="$VISIOND_SOURCE_DIR/docs/architecture.md"

# planted NAME FILE LINE EXPECT: copies src/, appends LINE to FILE, expects the check to fail
# with a line matching EXPECT.
planted() {
  local name=$1 file=$2 line=$3 expect=$4
  rm -rf "$T/tree" && mkdir -p "$T/tree" && cp -r "$VISIOND_SOURCE_DIR/src" "$T/tree/src"
  mkdir -p "$(dirname "$T/tree/src/$file")"
  printf '%s\n' "$line" >>"$T/tree/src/$file"
  local rc=0
  /usr/bin/python3 "$CHECK" "$T/tree/src" "$ARCH" >"$T/out" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "$name: the check exited $rc on a planted bad include: $(cat "$T/out")"
  grep -q -- "$expect" "$T/out" || fail "$name: the check did not name it: $(cat "$T/out")"
  echo "ok: planted $name caught: $(grep -- "$expect" "$T/out" | head -1)"
}
planted "upward include" core/util.c '#include "api/api.h"' 'src/core/util.c:[0-9]*: core (layer 0) includes api/, above it'
planted "same-layer include" queue/queue.h '#include "train/classifier.h"' 'queue.h:[0-9]*: queue (layer 1) includes train/, beside it'
planted "cycle" infer/tensor.c '#include "image/decode.h"' 'modules include each other: image <-> infer$'
planted "unplaced module" newmod/x.c '#include "core/err.h"' 'src/newmod/: module missing from the layer table'

# The real tree.
/usr/bin/python3 "$CHECK" "$VISIOND_SOURCE_DIR/src" "$ARCH" || fail "src/ breaks the layer order"
