#!/usr/bin/env bash
# faces_server.sh: the face pipeline through a real model server (vd_runner over the
# client) gives the same faces and embeddings as in-process ONNX Runtime.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v jq >/dev/null || skip "jq not installed"
DEMO=/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || skip "face-api demo photos not unpacked (scripts/setup.sh)"
SRC_MODELS="$VISIOND_SOURCE_DIR/models"
mkdir -p "$T/data/models"
cp "$SRC_MODELS/blazeface_back.json" "$T/data/models/"
embed=()
if [ -f "$VISIOND_SOURCE_DIR/data/models/faceres.json" ]; then
  cp "$VISIOND_SOURCE_DIR/data/models/faceres.json" "$VISIOND_SOURCE_DIR/data/models/faceres.onnx" "$T/data/models/"
  embed=(--embed)
else
  echo "faceres not converted: detection only"
fi

"$VISIOND" model-server --data "$T/data" --threads 1 > "$T/server.out" 2> "$T/server.err" &
track $!
wait_for 30 test -s "$T/server.out" || { cat "$T/server.err" >&2; fail "model server did not start"; }
SOCK="unix:$T/data/model.sock"

imgs=("$DEMO/sample1.jpg" "$DEMO/sample5.jpg" "$T/nope.jpg")
set +e
VISIOND_MODELS="$T/data/models" "$VISIOND" faces "${embed[@]}" "${imgs[@]}" > "$T/local.jsonl"
"$VISIOND" faces --server "$SOCK" "${embed[@]}" "${imgs[@]}" > "$T/remote.jsonl"
rc=$?
set -e
[ "$rc" = 1 ] || fail "want exit 1 (one missing file), got $rc"
[ "$(sed -n 3p "$T/remote.jsonl" | jq -r .error.code)" = not_found ] || fail "missing file through the server"
for i in 1 2; do
  a=$(sed -n "${i}p" "$T/local.jsonl"); b=$(sed -n "${i}p" "$T/remote.jsonl")
  na=$(jq '.faces | length' <<<"$a"); nb=$(jq '.faces | length' <<<"$b")
  [ "$na" = "$nb" ] && [ "$na" -gt 0 ] || fail "image $i: $na faces in-process, $nb via the server"
  # Same boxes (within 0.5 px) and, with embeddings, cosine > 0.999 face by face.
  jq -e -n --argjson a "$a" --argjson b "$b" '
    [range(0; $a.faces | length) as $k | $a.faces[$k] as $x | $b.faces[$k] as $y |
      ([range(0;4) | ($x.box[.] - $y.box[.]) | fabs] | max) < 0.5 and
      (if $x.vector then ([range(0; $x.vector | length) | $x.vector[.] * $y.vector[.]] | add) > 0.999 else true end)
    ] | all' >/dev/null || fail "image $i: faces differ between in-process and server"
  echo "image $i: $na faces, same in-process and through the model server"
done
echo PASS
