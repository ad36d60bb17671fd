//go:build tools

// Package tools pins the helm CLI the chart tests use; `make helm` builds
// it from the module proxy into bin/.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
