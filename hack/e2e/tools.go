//go:build tools

// Package e2e pins k8s.io/kubernetes/test/e2e, whose test binary scripts/e2e-conformance.sh
// builds with `go test -c`.
package e2e

import _ "k8s.io/kubernetes/test/e2e"
