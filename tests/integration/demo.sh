#!/usr/bin/env bash
# demo.sh: the README's first command's main job, end to end (scripts/demo.sh at a
# smaller size): models, photos, visiond up, a training session over HTTP with
# progress, metrics, predictions on held-out images, faces, and a clean stop.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3"
out="$T/demo.log"
VISIOND_DEMO_DIR="$T/demo" DEMO_PER_LABEL=6 "$VISIOND_SOURCE_DIR/scripts/demo.sh" >"$out" 2>&1 \
  || { tail -40 "$out"; fail "scripts/demo.sh exited non-zero"; }
grep -q '^  succeeded \[#*\] 60/60' "$out" || { cat "$out"; fail "no finished progress line"; }
acc=$(sed -n 's/.*cv_accuracy \([0-9.]*\),.*/\1/p' "$out")
[ -n "$acc" ] || fail "no metrics line"
/usr/bin/python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.25 else 1)" "$acc" \
  || fail "cv_accuracy $acc is not clearly above chance (0.10)"
right=$(sed -n 's|^\([0-9]*\)/20 held-out images right|\1|p' "$out")
[ -n "$right" ] && [ "$right" -ge 8 ] || fail "held-out: '$right'/20 right"
for n in "sample1.jpg: 3 faces" "sample2.jpg: 3 faces" "sample3.jpg: 3 faces" \
         "sample4.jpg: 4 faces" "sample5.jpg: 5 faces" "sample6.jpg: 4 faces"; do
  grep -q "  $n" "$out" || { grep 'sample' "$out"; fail "want '$n'"; }
done
grep -q 'INFO  up\[[0-9]*\] stopped$' "$T/demo/up.log" || fail "visiond up did not stop cleanly"
sqlite3 "$T/demo/data/visiond.db" 'PRAGMA integrity_check' | grep -qx ok || fail "integrity_check"
echo "demo: cv_accuracy $acc, $right/20 held-out right, faces 3 3 3 4 5 4, clean stop"
