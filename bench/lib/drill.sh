# bench/lib/drill.sh: the set-up shared by the drills that run `visiond up` under load
# (bench/chaos, bench/soak). Source it with NAME set; it checks the binary and the models,
# makes a work directory ($work) removed at exit (kept with KEEP=1, after every process
# naming it is killed) and says where it is.
# Environment: VISIOND (default build/visiond), MODELS (default data/models: scripts/models.sh).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export VISIOND_TEST_JOBS=1 # the drills enqueue `count` jobs, a test type (src/jobspec/jobspec.h)
VISIOND=${VISIOND:-$here/build/visiond}
MODELS=${MODELS:-$here/data/models}
[ -x "$VISIOND" ] || { echo "build visiond first ($VISIOND)" >&2; exit 1; }
[ -f "$MODELS/mobilenet_v2.onnx" ] || { echo "no models in $MODELS: scripts/models.sh --out $MODELS" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vd$NAME.XXXXXX")
cleanup() { pkill -9 -f -- "$work" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
echo "bench/$NAME: work directory $work"
