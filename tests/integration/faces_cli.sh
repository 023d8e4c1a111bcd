#!/usr/bin/env bash
# faces_cli.sh: `visiond faces` on the face-api photos and on a directory of broken
# files: per-file JSON, specific errors, the others still processed, SHA-256 as sha256sum.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
command -v jq >/dev/null || skip "jq not installed"
DEMO=/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo
[ -f "$DEMO/sample1.jpg" ] || skip "face-api demo photos not unpacked (scripts/setup.sh)"
export VISIOND_MODELS="$VISIOND_SOURCE_DIR/data/models:$VISIOND_SOURCE_DIR/models"

# Faces counted by eye in sample1..6.
want=(3 3 3 4 5 4)
"$VISIOND" faces "$DEMO"/sample{1,2,3,4,5,6}.jpg > "$T/faces.jsonl" || fail "faces exited $?"
[ "$(wc -l < "$T/faces.jsonl")" = 6 ] || fail "want 6 lines"
for i in 1 2 3 4 5 6; do
  line=$(sed -n "${i}p" "$T/faces.jsonl")
  got=$(jq '.faces | length' <<<"$line")
  [ "$got" = "${want[$((i-1))]}" ] || fail "sample$i: $got faces, want ${want[$((i-1))]}"
  sha=$(jq -r .sha256 <<<"$line")
  [ "$sha" = "$(sha256sum "$DEMO/sample$i.jpg" | cut -d' ' -f1)" ] || fail "sample$i: sha256 differs"
  # Every box inside the image, keypoints six.
  jq -e '.width as $w | .height as $h | all(.faces[]; .box[0] > -50 and .box[0] + .box[2] < $w + 50
         and .box[1] > -50 and .box[1] + .box[3] < $h + 50 and (.keypoints | length) == 6)' <<<"$line" \
    >/dev/null || fail "sample$i: a box or keypoints out of place"
done
echo "face counts: $(jq -c '.faces | length' "$T/faces.jsonl" | tr '\n' ' ')"

# Broken files between good ones.
B="$T/broken"; mkdir -p "$B"
: > "$B/empty.jpg"
echo "just some text" > "$B/text.jpg"
head -c 60000 "$DEMO/sample2.jpg" > "$B/truncated.jpg"
python3 - "$B/huge.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
echo '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>' > "$B/drawing.svg"
cp "$DEMO/sample3.jpg" "$B/good.jpg"
set +e
"$VISIOND" faces "$B/empty.jpg" "$B/text.jpg" "$B/good.jpg" "$B/truncated.jpg" "$B/huge.png" \
  "$B/drawing.svg" "$B/missing.jpg" > "$T/broken.jsonl"
rc=$?
set -e
[ "$rc" = 1 ] || fail "want exit 1 when a file fails, got $rc"
cat "$T/broken.jsonl" | jq -c 'if .error then [.path, .error.code, .error.message] else [.path, (.faces|length)] end' | sed "s|$B/||"
check() { # N CODE MESSAGE-PREFIX
  local line; line=$(sed -n "$1p" "$T/broken.jsonl")
  [ "$(jq -r .error.code <<<"$line")" = "$2" ] || fail "line $1: $(jq -c .error <<<"$line"), want $2"
  case "$(jq -r .error.message <<<"$line")" in "$3"*) ;; *) fail "line $1: message $(jq -r .error.message <<<"$line"), want $3...";; esac
}
check 1 bad_image "empty file"
check 2 bad_image "not an image"
[ "$(sed -n 3p "$T/broken.jsonl" | jq '.faces | length')" = 3 ] || fail "good.jpg between broken files"
check 4 bad_image "truncated JPEG"
check 5 too_large "too many pixels: 3600000000 > 100000000"
check 6 unsupported "unsupported format: svg"
check 7 not_found "no such file: '$B/missing.jpg'"

# Embeddings, when faceres has been converted.
if [ -f "$VISIOND_SOURCE_DIR/data/models/faceres.json" ]; then
  "$VISIOND" faces --embed "$DEMO/sample1.jpg" > "$T/emb.json"
  jq -e '.faces | length == 3 and all(.[]; (.vector | length) == 1024
         and ((.vector | map(. * .) | add) - 1 | fabs) < 1e-3)' "$T/emb.json" >/dev/null \
    || fail "embeddings: want 3 unit vectors of 1024"
  echo "embeddings: 3 x 1024, unit length"
else
  echo "embeddings not checked: data/models/faceres.json missing (scripts/models.sh)"
fi
echo PASS
