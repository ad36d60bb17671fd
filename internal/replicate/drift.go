package replicate

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Drifted reports whether the live copy on the standby differs from what
// Tandem would apply: a field Tandem sets is missing or has another value.
// Fields only the live object has (defaults, status, fields other managers
// own) are not drift.
func Drifted(desired, live *unstructured.Unstructured) bool {
	for k, v := range desired.Object {
		if k == "metadata" {
			continue
		}
		if !contains(live.Object[k], v) {
			return true
		}
	}
	return !contains(any(live.GetLabels()), toAny(desired.GetLabels())) ||
		!contains(any(live.GetAnnotations()), toAny(desired.GetAnnotations()))
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// contains says whether live holds everything want holds.
func contains(live, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		var l map[string]any
		switch lv := live.(type) {
		case map[string]any:
			l = lv
		case map[string]string:
			l = toAny(lv)
		default:
			return len(w) == 0 && live == nil
		}
		for k, v := range w {
			if !contains(l[k], v) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return len(w) == 0 && live == nil
		}
		for i := range w {
			if !contains(l[i], w[i]) {
				return false
			}
		}
		return true
	case int64:
		switch lv := live.(type) {
		case int64:
			return lv == w
		case float64:
			return lv == float64(w)
		}
		return false
	case float64:
		switch lv := live.(type) {
		case float64:
			return lv == w
		case int64:
			return float64(lv) == w
		}
		return false
	default:
		return live == want
	}
}
