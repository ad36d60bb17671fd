package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// The decoders never panic, whatever the bytes, and what decodes whole
// encodes back to what decodes the same. `go test -fuzz FuzzDecode` runs it
// for as long as one likes; as a test it runs the seeds.
func FuzzDecode(f *testing.F) {
	for _, file := range []string{"tandem_v1alpha1_hapair.yaml", "tandem_v1alpha1_syncpolicy.yaml", "tandem_v1alpha1_switchover.yaml"} {
		objs, err := testbed.ReadManifests(filepath.Join(testbed.RepoRoot(), "config", "samples", file))
		if err != nil {
			f.Fatal(err)
		}
		data, err := json.Marshal(objs[0].Object)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"metadata":{"name":"x"},"spec":{"failover":{"probePeriod":"soon"}}}`))
	f.Add([]byte(`{"metadata":{"name":"x"},"spec":{"transforms":{"patches":[1,2,{"patch":7}]}}}`))
	f.Add([]byte(`{"metadata":{"name":"x"},"spec":[[[[[[[[[]]]]]]]]]}`))
	f.Add([]byte(`{"metadata":7}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newObj := range []func() storedObject{
			func() storedObject { return &tandemv1.HAPair{} },
			func() storedObject { return &tandemv1.SyncPolicy{} },
			func() storedObject { return &tandemv1.Switchover{} },
		} {
			obj := newObj()
			if err := json.Unmarshal(data, obj); err != nil || obj.Undecodable() != nil {
				continue
			}
			again, err := json.Marshal(obj)
			if err != nil {
				t.Fatalf("%T decoded but does not encode: %v", obj, err)
			}
			back := newObj()
			if err := json.Unmarshal(again, back); err != nil || back.Undecodable() != nil {
				t.Fatalf("%T: its own encoding does not decode: %v %v", obj, err, back.Undecodable())
			}
		}
	})
}

// Random specs through admission: whatever a real API server stores
// decodes, so no user can store an object that stops the operator. Each
// case sets a few fields of a sample to values of the kinds that broke
// decoding before (durations that do not parse, numbers beyond their type,
// values of the wrong type). TANDEM_FUZZ_CASES and TANDEM_FUZZ_SEED run
// more, or others.
func TestAdmissionStoresOnlyWhatDecodes(t *testing.T) {
	cases, seed := 400, uint64(1)
	if n, err := strconv.Atoi(os.Getenv("TANDEM_FUZZ_CASES")); err == nil {
		cases = n
	}
	if s, err := strconv.ParseUint(os.Getenv("TANDEM_FUZZ_SEED"), 10, 64); err == nil {
		seed = s
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	values := []any{
		"soon", "-1s", "0s", "1ns", "99999999999999999999h", "1.5h", "",
		strings.Repeat("a", 300), "*", "a/b", "Deployment", "deployments",
		int64(0), int64(-1), int64(1) << 40, float64(1e20), 1.5,
		true, map[string]any{"x": int64(1)}, []any{int64(1), "b"}, nil,
	}
	ns := namespace(t)
	samples := map[string]*unstructured.Unstructured{}
	for _, file := range []string{"tandem_v1alpha1_hapair.yaml", "tandem_v1alpha1_syncpolicy.yaml", "tandem_v1alpha1_switchover.yaml"} {
		samples[file] = sample(t, file)
	}
	schemaPaths := map[string][][]string{}
	for kind, crd := range map[string]string{"HAPair": "tandem.dev_hapairs.yaml", "SyncPolicy": "tandem.dev_syncpolicies.yaml", "Switchover": "tandem.dev_switchovers.yaml"} {
		objs, err := testbed.ReadManifests(filepath.Join(testbed.RepoRoot(), "config", "crd", "bases", crd))
		if err != nil {
			t.Fatal(err)
		}
		versions, _, _ := unstructured.NestedSlice(objs[0].Object, "spec", "versions")
		spec, _, _ := unstructured.NestedMap(versions[0].(map[string]any), "schema", "openAPIV3Schema", "properties", "spec")
		schemaPaths[kind] = fromSchema(spec, "spec")
	}
	files := []string{"tandem_v1alpha1_hapair.yaml", "tandem_v1alpha1_syncpolicy.yaml", "tandem_v1alpha1_switchover.yaml"}
	stored := 0
	for i := range cases {
		obj := samples[files[i%len(files)]].DeepCopy()
		obj.SetNamespace(ns)
		obj.SetName(fmt.Sprintf("fuzz-%d", i))
		// Every field the schema has, set or not: the sample's own and
		// the rest, parents made as needed.
		paths := append(leaves(obj.Object["spec"], "spec"), schemaPaths[obj.GetKind()]...)
		var changes []string
		for range 1 + rng.IntN(3) {
			p, v := paths[rng.IntN(len(paths))], values[rng.IntN(len(values))]
			// A copy: a pool value set twice must not end up inside itself.
			setPath(obj.Object, p, runtime.DeepCopyJSONValue(v))
			changes = append(changes, fmt.Sprintf("%s=%v", strings.Join(p, "."), v))
		}
		if err := k8s.Create(context.Background(), obj); err != nil {
			continue
		}
		stored++
		typed := map[string]storedObject{"HAPair": &tandemv1.HAPair{}, "SyncPolicy": &tandemv1.SyncPolicy{}, "Switchover": &tandemv1.Switchover{}}[obj.GetKind()]
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), typed); err != nil {
			t.Fatal(err)
		}
		if e := typed.Undecodable(); e != nil {
			t.Errorf("%s %s was stored with %s, and does not decode: %v", obj.GetKind(), obj.GetName(), strings.Join(changes, ", "), e)
		}
	}
	t.Logf("%d random specs, %d stored (seed %d), every stored one decodes", cases, stored, seed)
	if stored == 0 {
		t.Fatal("nothing was stored: the cases test nothing")
	}
}

type storedObject interface {
	client.Object
	Undecodable() *tandemv1.DecodeError
}

// leaves lists the paths below v: map keys, list indexes as numbers.
func leaves(v any, prefix ...string) [][]string {
	var out [][]string
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, leaves(x[k], append(append([]string{}, prefix...), k)...)...)
		}
	case []any:
		for i, e := range x {
			out = append(out, leaves(e, append(append([]string{}, prefix...), strconv.Itoa(i))...)...)
		}
	}
	return append(out, prefix)
}

// fromSchema lists the paths of an OpenAPI schema's properties; a list's
// element is index 0.
func fromSchema(schema map[string]any, prefix ...string) [][]string {
	out := [][]string{prefix}
	if props, ok := schema["properties"].(map[string]any); ok {
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if sub, ok := props[k].(map[string]any); ok {
				out = append(out, fromSchema(sub, append(append([]string{}, prefix...), k)...)...)
			}
		}
	}
	if items, ok := schema["items"].(map[string]any); ok {
		out = append(out, fromSchema(items, append(append([]string{}, prefix...), "0")...)...)
	}
	return out
}

// setPath sets the value at a path, making the maps and lists on the way
// (a number is a list index).
func setPath(obj map[string]any, path []string, v any) {
	var node any = obj
	for i, k := range path {
		last := i == len(path)-1
		var next any
		if !last {
			if _, err := strconv.Atoi(path[i+1]); err == nil {
				next = []any{map[string]any{}}
			} else {
				next = map[string]any{}
			}
		}
		switch n := node.(type) {
		case map[string]any:
			if last {
				n[k] = v
				return
			}
			if _, ok := n[k].(map[string]any); !ok {
				if _, ok := n[k].([]any); !ok {
					n[k] = next
				}
			}
			node = n[k]
		case []any:
			j, _ := strconv.Atoi(k)
			if j >= len(n) {
				return
			}
			if last {
				n[j] = v
				return
			}
			if _, ok := n[j].(map[string]any); !ok {
				n[j] = next
			}
			node = n[j]
		default:
			return
		}
	}
}
