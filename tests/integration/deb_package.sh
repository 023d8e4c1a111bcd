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
#   3. the shipped models copied into /var/lib/visiond/models (as README.Debian says), the
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
for p in /usr/bin/visiond /etc/visiond /var/lib/visiond /etc/default/visiond; do
  [ ! -e "$p" ] || skip "$p exists: not touching an installation this test did not make"
done
user_before=$(getent passwd visiond || true)
installed=0
up=
cleanup() {
  [ -z "$up" ] || kill -9 "$up" 2>/dev/null || true
  pkill -9 -u visiond 2>/dev/null || true   # the children of a failed run, all visiond's
  [ "$installed" = 0 ] || dpkg -P visiond >/dev/null 2>&1 || true
  [ -n "$user_before" ] || ! getent passwd visiond >/dev/null || userdel visiond 2>/dev/null || true
  _vd_cleanup
}
trap cleanup EXIT
# pkill -u visiond above: only when the user is the package's, made by this test
[ -z "$user_before" ] || cleanup() { [ -z "$up" ] || kill -9 "$up" 2>/dev/null || true
  [ "$installed" = 0 ] || dpkg -P visiond >/dev/null 2>&1 || true; _vd_cleanup; }

# ---- 1. build -------------------------------------------------------------------------
t0=$(date +%s)
cpack --config "$VISIOND_BUILD_DIR/CPackConfig.cmake" -G DEB -B "$T/pkg" >"$T/cpack.log" 2>&1 ||
  { cat "$T/cpack.log"; fail "cpack failed"; }
deb=$(ls "$T"/pkg/visiond_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
for d in adduser libvips42 libjansson4 libmicrohttpd12 libhiredis0.14 libsqlite3-0 liblinear4; do
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
# the rpath is $ORIGIN/../lib/visiond: ldd shows /usr/bin/../lib/visiond/
ldd /usr/bin/visiond >"$T/ldd.txt"  # (grep -q in a pipe would SIGPIPE it, under pipefail)
grep -Eq 'libonnxruntime\.so\.1 => /usr/(bin/\.\./)?lib/visiond/libonnxruntime\.so\.1 ' "$T/ldd.txt" ||
  { cat "$T/ldd.txt"; fail "the bundled ONNX Runtime is not what the binary loads"; }
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
echo "installed: user visiond uid $uid, $pages man pages render, 4 units"

# ---- 3. run it as the unit would ------------------------------------------------------
models=$VISIOND_SOURCE_DIR/data/models
if [ -f "$models/mobilenet_v2.onnx" ]; then
  install -o visiond -g visiond -m 0640 "$models"/mobilenet_v2.* /var/lib/visiond/models/
else # no converted models here: make them as README.Debian says, and time it
  [ -d "${VISIOND_PREFIX:-/opt/visiond}/deps/npm/nsfwjs@4.3.0" ] || skip "no models and no npm packages to make them"
  t1=$(date +%s)
  setpriv --reuid=visiond --regid=visiond --init-groups -- /usr/share/visiond/scripts/models.sh \
    --visiond /usr/bin/visiond --out /var/lib/visiond/models >"$T/models.log" 2>&1 ||
    { cat "$T/models.log"; fail "models.sh as visiond failed"; }
  echo "models.sh as visiond: $(( $(date +%s) - t1 )) s"
fi
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s/^listen = .*/listen = 127.0.0.1:$port/" /etc/visiond/visiond.conf
user=$(sed -n 's/^User=//p' "$unit") group=$(sed -n 's/^Group=//p' "$unit")
wd=$(sed -n 's/^WorkingDirectory=//p' "$unit") mask=$(sed -n 's/^UMask=//p' "$unit")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
# no systemd here: the unit's settings by hand (a clean environment, like systemd's)
(cd "$wd" && umask "$mask" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  setpriv --reuid="$user" --regid="$group" --init-groups -- $exec_start) >"$T/up.log" 2>&1 &
up=$!
API=http://127.0.0.1:$port
healthy() { curl -sf "$API/healthz" | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] != "ok")'; }
wait_for 60 healthy || { cat "$T/up.log"; fail "visiond up (as the unit runs it) did not become healthy"; }
[ "$(ps -o user= -p "$up")" = visiond ] || fail "up does not run as visiond: $(ps -o user= -p "$up")"

"$VISIOND" dataset fashion-mnist --out "$T/media" --per-label 6 --split train >/dev/null 2>&1 ||
  skip "Fashion-MNIST files missing"
form=(-F name=deb)
for l in trouser bag; do for f in "$T/media/$l"/*.png; do form+=(-F "$l=@$f"); done; done
created=$(curl -sf "${form[@]}" "$API/training/sessions") || fail "POST /training/sessions failed"
sid=$(echo "$created" | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])')
state() { curl -sf "$API/training/sessions/$sid" | $PY -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
ended() { case $(state) in succeeded|failed|canceled) return 0;; esac; return 1; }
wait_for 600 ended || fail "session $sid did not end"
[ "$(state)" = succeeded ] || { curl -s "$API/training/sessions/$sid"; tail -20 "$T/up.log"; fail "session $sid: $(state)"; }
pred=$(curl -sf -F "x=@$(ls "$T"/media/bag/*.png | head -1)" "$API/training/sessions/$sid/predict")
echo "$pred" | grep -q '"label"' || fail "predict: $pred"
bad=$(find /var/lib/visiond ! -user visiond | head -3)
[ -z "$bad" ] || fail "files in /var/lib/visiond not owned by visiond: $bad"
kill -TERM "$up"; rc=0; wait "$up" || rc=$?; up=
[ "$rc" = 0 ] || { tail -20 "$T/up.log"; fail "visiond up exited $rc on SIGTERM"; }
echo "ran: session $sid succeeded through the API as user visiond, stopped cleanly"

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
for p in /var/lib/visiond /etc/visiond /etc/default/visiond /usr/lib/visiond; do
  [ ! -e "$p" ] || fail "dpkg -P left $p"
done
status=$(dpkg-query -W -f='${Status}' visiond 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = "unknown ok not-installed" ] || fail "after dpkg -P: $status"
getent passwd visiond >/dev/null || fail "dpkg -P removed the system user (Debian keeps it)"
echo "deb_package: ok (remove keeps /var/lib/visiond and the user, purge removes the data; $(( $(date +%s) - t0 )) s)"
