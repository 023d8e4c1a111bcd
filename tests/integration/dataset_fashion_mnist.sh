#!/usr/bin/env bash
# dataset_fashion_mnist.sh: `visiond dataset fashion-mnist` writes N PNGs per label in one
# folder per label, prints a JSON summary, and refuses bad arguments with a usage error.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
dir=${VISIOND_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
[ -e "$dir/t10k-images-idx3-ubyte.gz" ] || [ -e "$dir/t10k-images-idx3-ubyte" ] ||
  skip "no Fashion-MNIST under $dir (Debian package dataset-fashion-mnist)"

out=$("$VISIOND" dataset fashion-mnist --out "$T/fm" --per-label 4 --split train) ||
  fail "dataset command failed"
echo "$out" | grep -q '"files":40' || fail "unexpected summary: $out"
labels=$(ls "$T/fm" | wc -l)
[ "$labels" = 10 ] || fail "expected 10 label folders, got $labels"
for d in "$T"/fm/*; do
  n=$(ls "$d"/train-*.png | wc -l)
  [ "$n" = 4 ] || fail "$d has $n PNGs, expected 4"
done
if command -v vipsheader >/dev/null; then
  vipsheader "$T/fm/sneaker/"*.png | grep -q '28x28 uchar, 1 band' || fail "not 28x28 grey PNGs"
fi

set +e
"$VISIOND" dataset fashion-mnist --out "$T/x" --per-label 0 2>"$T/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "--per-label 0: exit $rc, expected 2"
grep -q '^visiond: --per-label' "$T/err" || fail "no usage message: $(cat "$T/err")"
set +e
"$VISIOND" dataset fashion-mnist --out "$T/x" --per-label 2 --from "$T/none" 2>"$T/err"; rc=$?
set -e
[ "$rc" = 1 ] || fail "missing data: exit $rc, expected 1"
grep -q 'not found' "$T/err" || fail "no not-found message: $(cat "$T/err")"
echo "ok: dataset fashion-mnist"
