#!/usr/bin/env bash
# Runs Kubernetes' own e2e specs (k8s.io/kubernetes/test/e2e, built from the Go module proxy
# through hack/e2e) against the embedded server (`kubeforge serve`) and the real control plane
# (testkit's `control_plane` example) side by side, and prints each one's pass count. The specs
# are the sig-api-machinery [Conformance] ones that need no kubelet; the only help they get is
# one Ready Node object. Specs that need a kubelet after all are skipped on both, and say so.
#
#   bash scripts/e2e-conformance.sh [embedded|control-plane|both|build]    (default: both;
#                                                                        build: the binary only)
#
# Fails when the embedded server fails a spec the real control plane passes (with `both`), or
# any spec (with `embedded` alone). scripts/test.sh runs it. Building the e2e binary after the
# control plane (scripts/control-plane.sh, which compiles most of its packages) takes about
# 3 minutes on 2 cores; the binary is cached in $KUBEFORGE_CACHE/e2e/ with the reports.
# It builds with $CARGO_TARGET_DIR (scripts/env.sh's default is the CI's): while a CI run uses
# that one, give this script your own, as two checkouts must never share a target at once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/env.sh
source scripts/env.sh
eval "$(bash scripts/control-plane.sh)"
KUBECTL="$KUBEBUILDER_ASSETS/kubectl"
WHICH="${1:-both}"

# The specs run (a ginkgo focus regex); KUBEFORGE_E2E_FOCUS replaces it, to try others.
LIST='\[sig-api-machinery\] (Watchers|Discovery|server version|CustomResourceDefinition resources|CustomResourceDefinition Watch|CustomResourceFieldSelectors|FieldValidation|Servers with support for Table transformation|Servers with support for API chunking|API priority and fairness|Namespaces) .*\[Conformance\]'
FOCUS="${KUBEFORGE_E2E_FOCUS:-$LIST}"
# Specs of that list skipped on both servers, each with why (a ginkgo skip regex per line).
SKIPS=(
  'CustomResourceFieldSelectors|deploys a conversion-webhook Pod, which needs a kubelet'
  'all pods are removed when a namespace is deleted|waits for Pods to terminate, which needs a kubelet'
  'all services are removed when a namespace is deleted|waits for the namespace controller of kube-controller-manager, which neither server runs here'
  'compacted away|waits for the 5-minute etcd compaction of kube-apiserver (10 min per server); the embedded server compacts only when a test asks (faults.compact), so it would fail there'
)
SKIP="${KUBEFORGE_E2E_SKIP:-$(printf '%s\n' "${SKIPS[@]}" | cut -d'|' -f1 | paste -sd'|')}"
OUT="$KUBEFORGE_CACHE/e2e"
mkdir -p "$OUT"
E2E="$OUT/e2e.test"
STAMP="$(cat hack/e2e/go.mod hack/e2e/go.sum <(go env GOVERSION) | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$E2E" || "$(cat "$E2E.stamp" 2>/dev/null)" != "$STAMP" ]]; then
  echo "e2e-conformance: building the e2e binary (k8s.io/kubernetes/test/e2e)" >&2
  (cd hack/e2e && GOMODCACHE="$KUBEFORGE_CACHE/go/mod" GOCACHE="$KUBEFORGE_CACHE/go/build" \
    GOFLAGS="-mod=readonly -trimpath -buildvcs=false" GOTOOLCHAIN=local \
    nice -n 19 go test -c -o "$E2E" k8s.io/kubernetes/test/e2e)
  echo "$STAMP" > "$E2E.stamp"
fi
if [[ "$WHICH" == build ]]; then
  exit 0 # scripts/test.sh builds the binary early, beside the tests, and runs the specs later
fi

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  exec 7>&- 2>/dev/null || true # the control plane's stdin: it stops when this closes
  sleep 2
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

wait_for_file() {
  for _ in $(seq 1 240); do [[ -s "$1" ]] && return 0; sleep 0.5; done
  echo "e2e-conformance: $1 did not appear" >&2
  return 1
}

# run_specs NAME KUBECONFIG: one Ready Node, then the specs; prints "NAME: P of N passed".
run_specs() {
  local name="$1" kubeconfig="$2"
  "$KUBECTL" --kubeconfig "$kubeconfig" apply -f - >/dev/null <<'NODE'
apiVersion: v1
kind: Node
metadata:
  name: e2e-node
  labels: {kubernetes.io/hostname: e2e-node, kubernetes.io/os: linux}
NODE
  local now
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  "$KUBECTL" --kubeconfig "$kubeconfig" patch node e2e-node --subresource=status --type=merge -p \
    "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"ready\",\"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null
  # A kubelet-less node keeps the not-ready taint kube-apiserver's admission puts on new nodes
  # (the node lifecycle controller would lift it); the suite waits for schedulable nodes.
  "$KUBECTL" --kubeconfig "$kubeconfig" patch node e2e-node --type=merge -p '{"spec":{"taints":null}}' >/dev/null
  local log="$OUT/$name.log"
  "$E2E" --kubeconfig="$kubeconfig" --provider=skeleton --e2e-verify-service-account=false \
    --minStartupPods=0 --ginkgo.focus="$FOCUS" --ginkgo.skip="$SKIP" --ginkgo.no-color --ginkgo.timeout=40m \
    --report-dir="$OUT/$name" >"$log" 2>&1 || true
  local summary
  summary="$(grep -a -E '^(SUCCESS|FAIL)! -- ' "$log" | tail -1)"
  local passed failed
  passed="$(sed -n 's/.* \([0-9]*\) Passed.*/\1/p' <<<"$summary")"
  failed="$(sed -n 's/.* \([0-9]*\) Failed.*/\1/p' <<<"$summary")"
  if [[ -z "$passed" ]]; then
    echo "e2e-conformance: $name: no summary in $log" >&2
    return 1
  fi
  echo "e2e conformance on $name: $passed of $((passed + failed)) passed, ${#SKIPS[@]} skipped (log: $log)"
  # The failed specs' names, one per line, for the comparison at the end.
  grep -a -E '^\s+\[(FAIL|PANICKED!)\]' "$log" | sed -E 's/^\s+\[(FAIL|PANICKED!)\] //' \
    | sort -u >"$TMP/$name.failed" || true
  sed "s/^/  $name failed: /" "$TMP/$name.failed"
  if [[ -n "${KUBEFORGE_SKIP_LOG:-}" ]]; then
    for skip in "${SKIPS[@]}"; do
      echo "e2e conformance on $name: spec \"${skip%%|*}\" skipped: it ${skip#*|}" >>"$KUBEFORGE_SKIP_LOG"
    done
  fi
}

if [[ "$WHICH" == embedded || "$WHICH" == both ]]; then
  cargo build -q -p kubeforge-cli
  "$CARGO_TARGET_DIR/debug/kubeforge" serve --port 0 --kubeconfig-out "$TMP/embedded.kubeconfig" \
    >"$OUT/kubeforge-serve.log" 2>&1 &
  PIDS+=($!)
  wait_for_file "$TMP/embedded.kubeconfig"
  run_specs embedded "$TMP/embedded.kubeconfig"
  kill "${PIDS[-1]}"
fi
if [[ "$WHICH" == control-plane || "$WHICH" == both ]]; then
  cargo build -q -p kubeforge-testkit --example control_plane
  # The example prints `KUBECONFIG=<path>` and runs until its stdin closes: fd 7 holds the
  # fifo open, and closing it (cleanup) stops the control plane cleanly.
  mkfifo "$TMP/hold"
  "$CARGO_TARGET_DIR/debug/examples/control_plane" <"$TMP/hold" >"$TMP/control-plane.out" \
    2>"$OUT/control-plane-server.log" &
  PIDS+=($!)
  exec 7>"$TMP/hold"
  wait_for_file "$TMP/control-plane.out"
  for _ in $(seq 1 240); do grep -q '^KUBECONFIG=' "$TMP/control-plane.out" && break; sleep 0.5; done
  real_kubeconfig="$(sed -n 's/^KUBECONFIG=//p' "$TMP/control-plane.out")"
  run_specs control-plane "$real_kubeconfig"
fi

# The verdict: the embedded server must pass what the real control plane passes.
if [[ "$WHICH" == both ]]; then
  ours="$(comm -23 "$TMP/embedded.failed" "$TMP/control-plane.failed")"
  if [[ -n "$ours" ]]; then
    echo "e2e-conformance: the embedded server fails specs the real control plane passes:" >&2
    sed 's/^/  /' <<<"$ours" >&2
    exit 1
  fi
elif [[ "$WHICH" == embedded && -s "$TMP/embedded.failed" ]]; then
  exit 1
fi
