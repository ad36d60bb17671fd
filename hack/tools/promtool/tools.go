//go:build tools

// Package tools pins the promtool the chart tests check the PrometheusRule
// with; `make promtool` builds it from the module proxy into bin/.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
