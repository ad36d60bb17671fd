package v1alpha1_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// A list holding one object whose body does not decode still decodes, as
// the informers read it through the API machinery's codecs: the good
// objects whole, the bad one with its metadata and the field that failed.
func TestAListDecodesAroundAnUndecodableObject(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := tandemv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	cases := []struct {
		name, list, bad, field, cause string
		into                          runtime.Object
	}{{
		name: "a duration that does not parse",
		list: `{"apiVersion":"tandem.dev/v1alpha1","kind":"HAPairList","items":[
  {"apiVersion":"tandem.dev/v1alpha1","kind":"HAPair","metadata":{"name":"good","namespace":"a"},"spec":{"primary":"dc-east"}},
  {"apiVersion":"tandem.dev/v1alpha1","kind":"HAPair","metadata":{"name":"bad","namespace":"a","generation":3},
   "spec":{"primary":"dc-east","traffic":{"verifyTimeout":"soon"}},"status":{"activeCluster":"dc-east","epoch":4}}]}`,
		bad: "bad", field: "spec.traffic.verifyTimeout", cause: `invalid duration "soon"`,
	}, {
		name: "a number beyond its type, in a list element",
		list: `{"apiVersion":"tandem.dev/v1alpha1","kind":"SyncPolicyList","items":[
  {"apiVersion":"tandem.dev/v1alpha1","kind":"SyncPolicy","metadata":{"name":"bad","namespace":"a"},
   "spec":{"transforms":{"patches":[{"target":{"kind":"ConfigMap"},"patch":"[]"},{"target":{"kind":"Secret"},"patch":7}]}}},
  {"apiVersion":"tandem.dev/v1alpha1","kind":"SyncPolicy","metadata":{"name":"good","namespace":"a"},"spec":{}}]}`,
		bad: "bad", field: "spec.transforms.patches[1].patch", cause: "cannot unmarshal number",
	}, {
		name: "two bad fields: one is named",
		list: `{"apiVersion":"tandem.dev/v1alpha1","kind":"SwitchoverList","items":[
  {"apiVersion":"tandem.dev/v1alpha1","kind":"Switchover","metadata":{"name":"bad","namespace":"a"},
   "spec":{"pairRef":"shop","stepTimeout":"99999999999999999999h","drill":{"holdFor":"x"}}},
  {"apiVersion":"tandem.dev/v1alpha1","kind":"Switchover","metadata":{"name":"good","namespace":"a"},"spec":{"pairRef":"shop"}}]}`,
		bad: "bad", field: "spec.", cause: "invalid duration",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj, _, err := decoder.Decode([]byte(c.list), nil, nil)
			if err != nil {
				t.Fatalf("decoding the list: %v", err)
			}
			items, err := meta(obj)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 2 {
				t.Fatalf("%d items, want 2", len(items))
			}
			for _, it := range items {
				e := it.Undecodable()
				if it.GetName() != c.bad {
					if e != nil {
						t.Errorf("%s: undecodable %v, want it whole", it.GetName(), e)
					}
					continue
				}
				if e == nil {
					t.Fatalf("%s decoded, want it undecodable", it.GetName())
				}
				if !strings.HasPrefix(e.Field, c.field) || !strings.Contains(e.Cause, c.cause) {
					t.Errorf("%s: field %q cause %q, want %q… and %q", it.GetName(), e.Field, e.Cause, c.field, c.cause)
				}
				if !strings.HasPrefix(e.Error(), e.Field+" cannot be decoded: ") {
					t.Errorf("message %q does not name the field first", e.Error())
				}
				if it.GetNamespace() != "a" {
					t.Errorf("the undecodable object lost its metadata: namespace %q", it.GetNamespace())
				}
				if p, ok := it.(*tandemv1.HAPair); ok && (p.Status.ActiveCluster != "dc-east" || p.Status.Epoch != 4 || p.Spec.Primary != "") {
					t.Errorf("undecodable pair: status %+v spec %+v; want the role record kept and the spec empty", p.Status, p.Spec)
				}
			}
		})
	}
}

type decodable interface {
	GetName() string
	GetNamespace() string
	Undecodable() *tandemv1.DecodeError
}

func meta(obj runtime.Object) ([]decodable, error) {
	var out []decodable
	switch l := obj.(type) {
	case *tandemv1.HAPairList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *tandemv1.SyncPolicyList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *tandemv1.SwitchoverList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	}
	return out, nil
}

// An object that decodes again after a bad version is whole: a decoder
// reusing the object forgets the earlier failure.
func TestAnObjectDecodedAgainForgetsTheFailure(t *testing.T) {
	var p tandemv1.HAPair
	if err := p.UnmarshalJSON([]byte(`{"metadata":{"name":"p"},"spec":{"failover":{"probePeriod":"soon"}}}`)); err != nil || p.Undecodable() == nil {
		t.Fatalf("first decode: %v, undecodable %v", err, p.Undecodable())
	}
	if err := p.UnmarshalJSON([]byte(`{"metadata":{"name":"p"},"spec":{"primary":"dc-east"}}`)); err != nil || p.Undecodable() != nil {
		t.Fatalf("second decode: %v, undecodable %v", err, p.Undecodable())
	}
	if p.Spec.Primary != "dc-east" {
		t.Fatalf("spec %+v", p.Spec)
	}
}
