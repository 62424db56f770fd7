#!/usr/bin/env bash
# The one command that runs every Porthole test (README.md). On a fresh machine it installs
# what the tests need, or stops saying exactly what is missing:
#   - a Python venv (.venv) with the OpenTelemetry SDK and the deltalake/pyarrow readers
#   - s3s-fs, a real S3-compatible server (.tools/bin/s3s-fs)
#   - kubectl's built-in kustomize, to render the deploy/ overlays for validation
#   - Debian's prometheus and promtool, the reference the PromQL conformance test compares with
# then builds the workspace once and runs all unit and end-to-end tests against it.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "tests/run.sh: '$1' is missing: $2" >&2; exit 1; }
}
need cargo "install the Rust toolchain (1.95) with rustup"
need python3 "install Python 3.11 with the venv module"
need openssl "install Debian's openssl package (the TLS tests make their certificates with it)"

# One build from clean serves every test: incremental state would only add GBs to target/.
export CARGO_INCREMENTAL=0
# A clean build takes ~5 GB in target/ (the venv, s3s-fs, node_modules and the tests' data
# ~2 GB more). Say so first rather than fail mid-build with "No space left on device".
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ ! -d target/debug ] && [ "$free_kb" -lt $((8 * 1024 * 1024)) ]; then
    echo "tests/run.sh: $((free_kb / 1024)) MiB free on this disk; a clean build and its tests need about 8 GiB" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ] || ! cmp -s tests/python/requirements.lock .venv/.porthole-requirements; then
    echo "==> Python test environment (.venv)"
    python3 -m venv .venv || { echo "tests/run.sh: python3 -m venv failed; install python3-venv" >&2; exit 1; }
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.lock
    cp tests/python/requirements.lock .venv/.porthole-requirements
fi

if [ ! -x .tools/bin/s3s-fs ]; then
    echo "==> s3s-fs (S3-compatible test server)"
    cargo install s3s-fs --version 0.14.1 --features binary --locked --root .tools
fi

# Installs Debian package $1 (for: $2) unless every command after it is on PATH; without
# root or apt-get, stops saying what to install.
debian_package() {
    local package=$1 why=$2 missing=""
    shift 2
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || missing="$missing '$cmd'"
    done
    [ -z "$missing" ] && return 0
    echo "==> $package (Debian package; $why)"
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "tests/run.sh:$missing missing: install Debian's $package package (sudo apt-get install $package)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "$package" >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "$package" >/dev/null; } \
        || { echo "tests/run.sh: apt-get install $package failed" >&2; exit 1; }
}

debian_package prometheus "the PromQL reference" prometheus promtool
need node "install Node.js 20 (the web UI is built with npm and embedded in the binary)"
need npm "install npm (comes with Node.js 20)"
debian_package chromium "the browser the UI tests drive" chromium

echo "==> web UI packages (npm ci)"
(cd web && npm ci --no-audit --no-fund --loglevel=error)

echo "==> deploy: Dockerfiles and Kubernetes manifests"
bash deploy/validate.sh .venv/bin/python

echo "==> build"
cargo build --workspace --bins --tests

echo "==> tests"
failed=0
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast --failure-output final || failed=1
else
    cargo test --workspace --no-fail-fast || failed=1
fi

echo "==> web UI: unit tests (vitest) and browser tests (Playwright + chromium, against the binary's built-in UI)"
(cd web && npm test) || failed=1
(cd web && PORTHOLE_BIN=../target/debug/porthole PORTHOLE_PYTHON=../.venv/bin/python npm run e2e) || failed=1
exit "$failed"
