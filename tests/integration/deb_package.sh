#!/usr/bin/env bash
# deb_package.sh: the Debian package (packaging/, CPack DEB) built from this build tree,
# installed with dpkg, used and removed, on this machine. Runs only as root with dpkg, and
# only where no visiond package, /usr/bin/visiond, /etc/visiond or /var/lib/visiond is
# present (it never touches an installation it did not make); skipped under ASan (the
# package is of the release build).
#   1. cpack -G DEB; the control file's dependencies are Debian's packages
#   2. dpkg -i: the system user visiond, /var/lib/visiond owned by it (0750), conffiles,
#      the bundled ONNX Runtime found through the rpath, man pages that render without a
#      groff warning, units that name the installed binary and config
#   3. the models made by the installed models.sh as the user visiond (else the shipped
#      data/models copied into /var/lib/visiond/models, as README.Debian says), the
#      config's listen line edited (as an admin would), `visiond up` started as the unit
#      does (its User, Group, WorkingDirectory, UMask and ExecStart, through setpriv),
#      a training session from uploads through the API, predictions, a clean stop
#   4. dpkg -r keeps /var/lib/visiond, the conffiles and the user; dpkg -i again reuses
#      them (same uid, edited config kept); dpkg -P removes /var/lib/visiond and
#      /etc/visiond and keeps the user (removed by the test if it made it)
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
PY=/usr/bin/python3

[ "$(id -u)" = 0 ] || skip "needs root (installs a package)"
command -v dpkg >/dev/null && command -v cpack >/dev/null && command -v setpriv >/dev/null ||
  skip "dpkg, cpack or setpriv missing"
[ -z "${VISIOND_TEST_SANITIZED:-}" ] || skip "the package is made from the release build"
status=$(dpkg-query -W -f='${Status}' visiond 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = "unknown ok not-installed" ] ||
  skip "a visiond package is on this machine ($status): not touching it"
for p in /usr/bin/visiond /etc/visiond /var/lib/visiond /etc/default/visiond \
  /etc/systemd/system/multi-user.target.wants/visiond.service; do
  [ ! -e "$p" ] || skip "$p exists: not touching an installation this test did not make"
done
user_before=$(getent passwd visiond || true)
installed=0
up=
cleanup() {
  [ -z "$up" ] || kill -9 $up 2>/dev/null || true
  pkill -9 -u visiond 2>/dev/null || true   # the children of a failed run, all visiond's
  [ "$installed" = 0 ] || dpkg -P visiond >/dev/null 2>&1 || true
  [ -n "$user_before" ] || ! getent passwd visiond >/dev/null || userdel visiond 2>/dev/null || true
  _vd_cleanup
}
trap cleanup EXIT
# pkill -u visiond above: only when the user is the package's, made by this test
[ -z "$user_before" ] || cleanup() { [ -z "$up" ] || kill -9 $up 2>/dev/null || true
  [ "$installed" = 0 ] || dpkg -P visiond >/dev/null 2>&1 || true; _vd_cleanup; }

# ---- 1. build -------------------------------------------------------------------------
t0=$(date +%s)
cpack --config "$VISIOND_BUILD_DIR/CPackConfig.cmake" -G DEB -B "$T/pkg" >"$T/cpack.log" 2>&1 ||
  { cat "$T/cpack.log"; fail "cpack failed"; }
deb=$(ls "$T"/pkg/visiond_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
# libpq5 and liblinear4 too: visiond opens them with dlopen (src/core/pq.h,
# src/train/liblinear.h), so only the package's own list has them
want="adduser libvips42 libjansson4 libmicrohttpd12 libhiredis0.14 libsqlite3-0 liblinear4 libpq5"
if readelf -d "$VISIOND" | grep -q 'libpq\.so'; then fail "visiond links libpq (core/pq.h loads it)"; fi
if readelf -d "$VISIOND" | grep -Eq 'liblinear\.so|blas'; then
  fail "visiond links liblinear or a BLAS (train/liblinear.h loads liblinear)"
fi
for d in $want; do
  echo "$depends" | grep -q "\b$d\b" || fail "Depends lacks $d: $depends"
done
dpkg-deb -c "$deb" >"$T/contents.txt"
grep -q '/var/lib/visiond' "$T/contents.txt" && fail "/var/lib/visiond must not be in the package's files (dpkg -r would try to remove it)"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$T/conffiles"
grep -qx /etc/visiond/visiond.conf "$T/conffiles" ||
  fail "visiond.conf is not a conffile"
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KB) in $(( $(date +%s) - t0 )) s"

# ---- 2. install -----------------------------------------------------------------------
dpkg -i "$deb" >"$T/dpkg-i.log" 2>&1 || { cat "$T/dpkg-i.log"; fail "dpkg -i failed"; }
installed=1
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd visiond) || fail "no user visiond"
[ "$uid" -lt 1000 ] || fail "visiond is not a system user (uid $uid)"
[ "$home" = /var/lib/visiond ] && [ "$shell" = /usr/sbin/nologin ] || fail "user visiond: home $home shell $shell"
[ "$(stat -c '%U:%G %a' /var/lib/visiond)" = "visiond:visiond 750" ] ||
  fail "/var/lib/visiond: $(stat -c '%U:%G %a' /var/lib/visiond)"
[ "$(stat -c '%G %a' /etc/visiond/visiond.conf)" = "visiond 640" ] || fail "visiond.conf: $(stat -c '%G %a' /etc/visiond/visiond.conf)"
/usr/bin/visiond version | grep -q "^visiond " || fail "the installed binary does not run"
# ONNX Runtime is opened on first use (src/infer/ort_session.c), through the rpath
# $ORIGIN/../lib/visiond; the model-server unit below must have mapped the bundled copy
readelf -d /usr/bin/visiond >"$T/dyn.txt"  # (grep -q in a pipe would SIGPIPE it, under pipefail)
if grep -q 'libonnxruntime' "$T/dyn.txt"; then fail "visiond links ONNX Runtime (it opens it on use)"; fi
grep -Fq 'Library runpath: [$ORIGIN/../lib/visiond]' "$T/dyn.txt" ||
  { grep -i path "$T/dyn.txt"; fail "visiond's rpath is not \$ORIGIN/../lib/visiond"; }
# the light fork server (docs/worker.md, "Light horses") ships beside ONNX Runtime, without libvips
[ -x /usr/lib/visiond/visiond-horse ] || fail "no /usr/lib/visiond/visiond-horse in the package"
ldd /usr/lib/visiond/visiond-horse >"$T/ldd-horse.txt"
grep -q libsqlite3 "$T/ldd-horse.txt" || { cat "$T/ldd-horse.txt"; fail "ldd visiond-horse"; }
if grep -q libvips "$T/ldd-horse.txt"; then fail "visiond-horse links libvips"; fi
# Man pages: rendered from the package's files (a machine whose dpkg excludes
# /usr/share/man, as Debian's container images do, installs none of them).
dpkg-deb -x "$deb" "$T/root"
man_excluded=$(grep -rhs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/ || true)
pages=0
for cmd in "" $(/usr/bin/visiond --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do
  page=usr/share/man/man1/visiond${cmd:+-$cmd}.1.gz
  [ -f "$T/root/$page" ] || fail "no man page /$page in the package"
  [ -n "$man_excluded" ] || [ -f "/$page" ] || fail "/$page not installed"
  warn=$(zcat "$T/root/$page" | groff -man -Tutf8 -ww -z 2>&1)
  [ -z "$warn" ] || fail "$page: groff warns: $warn"
  MANWIDTH=80 man -l "$T/root/$page" >"$T/page.txt" 2>/dev/null
  grep -q "^NAME" "$T/page.txt" || fail "man -l $page shows no NAME"
  pages=$((pages + 1))
done
unit=/lib/systemd/system/visiond.service
for u in visiond visiond-api visiond-worker visiond-model-server; do
  [ -f "/lib/systemd/system/$u.service" ] || fail "no unit $u.service"
  exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "/lib/systemd/system/$u.service")
  [ "$exe" = /usr/bin/visiond ] || fail "$u.service runs $exe"
  grep -qx 'User=visiond' "/lib/systemd/system/$u.service" || fail "$u.service does not run as visiond"
done
wants=/etc/systemd/system/multi-user.target.wants/visiond.service
if command -v deb-systemd-helper >/dev/null; then
  [ "$(readlink "$wants")" = "$unit" ] || fail "visiond.service is not enabled ($wants)"
fi
if command -v systemd-analyze >/dev/null; then  # units, their binary and man: links check out
  out=$(systemd-analyze verify "$unit" /lib/systemd/system/visiond-{api,worker,model-server}.service 2>&1) ||
    fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify: $out"
fi
echo "installed: user visiond uid $uid, $pages man pages render, 4 units"

# ---- 3. run it as the unit would ------------------------------------------------------
# Models, as README.Debian says: made by the installed models.sh as the user visiond from
# the npm packages of scripts/setup.sh, else a converted models directory copied in.
npm=${VISIOND_PREFIX:-/opt/visiond}/deps/npm
models=$VISIOND_SOURCE_DIR/data/models
if [ -d "$npm/nsfwjs@4.3.0" ]; then
  t1=$(date +%s)
  (cd /var/lib/visiond && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin VISIOND_PREFIX="${VISIOND_PREFIX:-/opt/visiond}" \
    setpriv --reuid=visiond --regid=visiond --init-groups -- /usr/share/visiond/scripts/models.sh \
    --visiond /usr/bin/visiond --out /var/lib/visiond/models) >"$T/models.log" 2>&1 ||
    { cat "$T/models.log"; fail "models.sh as visiond failed"; }
  echo "models.sh as visiond: $(( $(date +%s) - t1 )) s"
elif [ -f "$models/mobilenet_v2.onnx" ]; then
  install -o visiond -g visiond -m 0640 "$models"/mobilenet_v2.* /var/lib/visiond/models/
else
  skip "no npm packages to make the models and no converted models to copy"
fi
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s/^listen = .*/listen = 127.0.0.1:$port/" /etc/visiond/visiond.conf
# start_unit UNIT LOG: runs UNIT's ExecStart the way systemd would (no systemd here): its
# User/Group (setpriv), WorkingDirectory, UMask, EnvironmentFile and a clean environment;
# the ExecStart's $VARS split into words as systemd splits them. Sets UNIT_PID.
start_unit() {
  local f=/lib/systemd/system/$1 key
  declare -A u=()
  for key in User Group WorkingDirectory UMask ExecStart EnvironmentFile; do
    u[$key]=$(sed -n "s/^$key=//p" "$f")
  done
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 bash -c '
    envfile=${1#-}; [ -z "$envfile" ] || [ ! -f "$envfile" ] || { set -a; . "$envfile"; set +a; }
    cd "$2" && umask "$3" && user=$4 group=$5 && eval "set -- $6"
    exec setpriv --reuid="$user" --regid="$group" --init-groups -- "$@"' _ \
    "${u[EnvironmentFile]}" "${u[WorkingDirectory]}" "${u[UMask]}" "${u[User]}" "${u[Group]}" \
    "${u[ExecStart]}" >"$2" 2>&1 &
  UNIT_PID=$!
}
start_unit visiond.service "$T/up.log"
up=$UNIT_PID
API=http://127.0.0.1:$port
healthy() { curl -sf "$API/healthz" | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] != "ok")'; }
wait_for 60 healthy || { cat "$T/up.log"; fail "visiond up (as the unit runs it) did not become healthy"; }
[ "$(ps -o user= -p "$up")" = visiond ] || fail "up does not run as visiond: $(ps -o user= -p "$up")"
wait_for 30 pgrep -u visiond -x vd-lightfork >/dev/null ||
  fail "the installed worker did not start its light fork server (/usr/lib/visiond/visiond-horse)"

"$VISIOND" dataset fashion-mnist --out "$T/media" --per-label 6 --split train >/dev/null 2>&1 ||
  skip "Fashion-MNIST files missing"
# train NAME: a training session from uploads through the API, until it succeeds; sets SID
train() {
  local form=(-F "name=$1") l f created
  for l in trouser bag; do for f in "$T/media/$l"/*.png; do form+=(-F "$l=@$f"); done; done
  created=$(curl -sf "${form[@]}" "$API/training/sessions") || fail "POST /training/sessions failed"
  SID=$(echo "$created" | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  wait_for 600 ended "$SID" || fail "session $SID did not end"
  [ "$(state "$SID")" = succeeded ] || { curl -s "$API/training/sessions/$SID"; fail "session $SID: $(state "$SID")"; }
}
state() { curl -sf "$API/training/sessions/$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
ended() { case $(state "$1") in succeeded|failed|canceled) return 0;; esac; return 1; }
predict() { # SID: predicts an uploaded image with it
  local pred
  pred=$(curl -sf -F "x=@$(ls "$T"/media/bag/*.png | head -1)" "$API/training/sessions/$1/predict")
  echo "$pred" | grep -q '"label"' || fail "predict: $pred"
}
train deb
sid=$SID
predict "$sid"
bad=$(find /var/lib/visiond ! -user visiond | head -3)
[ -z "$bad" ] || fail "files in /var/lib/visiond not owned by visiond: $bad"
kill -TERM "$up"; rc=0; wait "$up" || rc=$?; up=
[ "$rc" = 0 ] || { tail -20 "$T/up.log"; fail "visiond up exited $rc on SIGTERM"; }
echo "ran: session $sid succeeded through the API as user visiond, stopped cleanly"

# The role units on one machine, on the same data: model server, worker, api.
sed -i "s/^VISIOND_API_OPTS=.*/VISIOND_API_OPTS=\"--listen 127.0.0.1:$port\"/" /etc/default/visiond
roles=()
for r in model-server worker api; do
  start_unit "visiond-$r.service" "$T/$r.log"
  roles+=("$UNIT_PID")
  up="${roles[*]}"   # killed by cleanup if the test fails
  [ "$r" != model-server ] || wait_for 30 test -S /var/lib/visiond/model.sock || { cat "$T/$r.log"; fail "the model-server unit did not start"; }
done
wait_for 60 healthy || { tail -5 "$T"/*.log; fail "the role units did not become healthy"; }
[ "$(state "$sid")" = succeeded ] || fail "the api unit does not see session $sid"
predict "$sid"
train deb-roles
grep -q ' /usr/lib/visiond/libonnxruntime\.so\.1$' "/proc/${roles[0]}/maps" ||
  fail "the model-server unit did not load the bundled ONNX Runtime (/usr/lib/visiond)"
for p in "${roles[@]}"; do
  [ "$(ps -o user= -p "$p")" = visiond ] || fail "a role unit does not run as visiond"
  kill -TERM "$p"; rc=0; wait "$p" || rc=$?
  [ "$rc" = 0 ] || { tail -5 "$T"/*.log; fail "a role unit (pid $p) exited $rc on SIGTERM"; }
done
up=
echo "ran: the api, worker and model-server units together: session $SID trained, $sid predicted"

# ---- 4. remove, reinstall, purge ------------------------------------------------------
dpkg -r visiond >"$T/dpkg-r.log" 2>&1 || { cat "$T/dpkg-r.log"; fail "dpkg -r failed"; }
[ ! -e /usr/bin/visiond ] || fail "dpkg -r left /usr/bin/visiond"
[ -f /var/lib/visiond/store.db ] && [ -f /var/lib/visiond/models/mobilenet_v2.onnx ] ||
  fail "dpkg -r removed data under /var/lib/visiond"
[ -f /etc/visiond/visiond.conf ] || fail "dpkg -r removed the conffile"
getent passwd visiond >/dev/null || fail "dpkg -r removed the user"
[ "$(dpkg-query -W -f='${Status}' visiond)" = "deinstall ok config-files" ] || fail "status after -r: $(dpkg-query -W -f='${Status}' visiond)"
dpkg -i "$deb" >"$T/dpkg-i2.log" 2>&1 || { cat "$T/dpkg-i2.log"; fail "reinstall failed"; }
[ "$(id -u visiond)" = "$uid" ] || fail "reinstall changed the uid: $(id -u visiond), was $uid"
grep -qx "listen = 127.0.0.1:$port" /etc/visiond/visiond.conf || fail "reinstall lost the edited config"
[ -f /var/lib/visiond/store.db ] || fail "reinstall lost the data"
dpkg -P visiond >"$T/dpkg-p.log" 2>&1 || { cat "$T/dpkg-p.log"; fail "dpkg -P failed"; }
installed=0
for p in /var/lib/visiond /etc/visiond /etc/default/visiond /usr/lib/visiond "$wants"; do
  [ ! -e "$p" ] && [ ! -L "$p" ] || fail "dpkg -P left $p"
done
status=$(dpkg-query -W -f='${Status}' visiond 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = "unknown ok not-installed" ] || fail "after dpkg -P: $status"
getent passwd visiond >/dev/null || fail "dpkg -P removed the system user (Debian keeps it)"
echo "deb_package: ok (remove keeps /var/lib/visiond and the user, purge removes the data; $(( $(date +%s) - t0 )) s)"
