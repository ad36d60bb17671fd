package replicate

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

func TestCheckPatchRefusesWhatTheSyncOwns(t *testing.T) {
	many := "[" + strings.Repeat(`{"op":"test","path":"/spec","value":{}},`, MaxPatchOperations) + `{"op":"test","path":"/spec","value":{}}]`
	cases := []struct{ patch, err string }{
		{`{"op":"add"}`, "not an RFC 6902 JSON patch"},
		{`not json`, "not an RFC 6902 JSON patch"},
		{`[{"op":"merge","path":"/spec","value":1}]`, "unsupported operation"},
		{many, "101 operations, more than the 100"},
		{`[{"op":"replace","path":"/metadata/namespace","value":"kube-system"}]`, `operation 0 (replace "/metadata/namespace"): metadata is the sync's`},
		{`[{"op":"replace","path":"/metadata/name","value":"other"}]`, "metadata is the sync's"},
		{`[{"op":"add","path":"/spec/x","value":1},{"op":"move","from":"/metadata/name","path":"/spec/name"}]`, `operation 1 (move "/metadata/name")`},
		{`[{"op":"remove","path":"/metadata/annotations/tandem.dev~1source-replicas"}]`, "tandem.dev/ labels and annotations are Tandem's"},
		{`[{"op":"replace","path":"/metadata/labels","value":{}}]`, "apart from single labels and annotations"},
		{`[{"op":"replace","path":"/kind","value":"Secret"}]`, "kind is the sync's"},
		{`[{"op":"replace","path":"","value":{}}]`, "the whole object is the sync's"},
		{`[{"op":"add","path":"spec","value":1}]`, "not a JSON pointer"},
		// What a patch may do.
		{`[{"op":"add","path":"/metadata/labels/site","value":"west"}]`, ""},
		{`[{"op":"remove","path":"/metadata/annotations/example.com~1owner"}]`, ""},
		{`[{"op":"copy","from":"/metadata/name","path":"/metadata/labels/app"}]`, ""},
		{`[{"op":"test","path":"/metadata/name","value":"web"},{"op":"replace","path":"/spec/replicas","value":1}]`, ""},
	}
	for _, c := range cases {
		_, err := CheckPatch(c.patch)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v, want it accepted", c.patch, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%.80s: %v, want %q", c.patch, err, c.err)
		}
	}
}

// The bomb of the security review: copy operations that double an array
// sixty times. It is refused at the copy limit, naming the patch and the
// object, without allocating more than a few times that limit.
func TestACopyBombIsRefusedWithinItsBound(t *testing.T) {
	ops := []string{`{"op":"add","path":"/spec/bomb","value":["` + strings.Repeat("x", 1000) + `"]}`}
	for range 60 {
		ops = append(ops, `{"op":"copy","from":"/spec/bomb","path":"/spec/bomb/-"}`)
	}
	patch := "[" + strings.Join(ops, ",") + "]"
	opts := Options{Transforms: tandemv1.Transforms{Patches: []tandemv1.JSONPatchTransform{{
		Target: tandemv1.ObjectTarget{Group: "apps", Kind: "Deployment"}, Patch: patch,
	}}}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, _, err := Transform(obj(t, deployment), opts)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "spec.transforms.patches[0] on Deployment.apps shop/web") ||
		!strings.Contains(err.Error(), fmt.Sprint(MaxPatchCopyBytes)) {
		t.Fatalf("%d-byte copy bomb: %v; want it refused at the copy limit, naming the patch", len(patch), err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d-byte patch refused in %s, %d KiB allocated", len(patch), took, allocated>>10)
	if allocated > 32*MaxPatchCopyBytes {
		t.Fatalf("refusing the bomb allocated %d bytes, more than 32 times the copy limit", allocated)
	}
}
