# Shared environment for kubeforge scripts (sourced, not run).
# Everything expensive lives under ~/.cache/kubeforge so clean clones reuse it.
export KUBEFORGE_CACHE="${KUBEFORGE_CACHE:-$HOME/.cache/kubeforge}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KUBEFORGE_CACHE/target}"
