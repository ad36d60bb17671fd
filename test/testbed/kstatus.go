package testbed

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Kstatus is what Flux, Argo CD and `kubectl wait`-style pipelines read of
// obj: cli-utils' own computation on the object as the API server serves it,
// so a test asserts the ecosystem's verdict rather than our reading of our
// conditions.
func Kstatus(obj runtime.Object) (*kstatus.Result, map[string]any, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, nil, err
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: u})
	return res, u, err
}
