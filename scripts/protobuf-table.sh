#!/usr/bin/env bash
# Regenerates the embedded API server's protobuf table and its test fixtures from the Go types of
# the Kubernetes version hack/protobuf-table/go.mod requires (see testkit/src/protobuf/):
#   testkit/src/protobuf/table.json     every built-in kind's message and every message's fields
#   testkit/src/protobuf/fixtures/      sample bodies as client-go sends them (.pb) and their JSON
# Run it after moving the Kubernetes version; it needs Go and the module proxy, not a cluster.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KUBEFORGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeforge}"
export GOMODCACHE="${KUBEFORGE_GOMODCACHE:-$CACHE/go/mod}"
export GOCACHE="${KUBEFORGE_GOCACHE:-$CACHE/go/build}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
OUT="$ROOT/testkit/src/protobuf"
cd "$ROOT/hack/protobuf-table"
rm -rf "$OUT/fixtures"
nice -n 19 go run . -out "$OUT/table.json" -fixtures "$OUT/fixtures"
