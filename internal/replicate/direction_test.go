package replicate

import (
	"testing"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// After a switchover the sync runs from dc-west to dc-east: the mappings
// written for dc-east -> dc-west run backwards, and a patch meant for
// dc-west is not applied to dc-east.
func TestDirectedInvertsMappingsAndFiltersPatches(t *testing.T) {
	spec := tandemv1.SyncPolicySpec{Transforms: tandemv1.Transforms{
		ImageRegistries: []tandemv1.Mapping{{From: "registry.east", To: "registry.west"}},
		StorageClasses:  []tandemv1.Mapping{{From: "fast-east", To: "fast-west"}},
		Patches: []tandemv1.JSONPatchTransform{
			{Patch: `[{"op":"replace","path":"/data/SITE","value":"west"}]`, ToCluster: "dc-west"},
			{Patch: `[{"op":"replace","path":"/data/SITE","value":"east"}]`, ToCluster: "dc-east"},
			{Patch: `[{"op":"remove","path":"/data/DEBUG"}]`},
		},
	}}
	forward := Directed(spec, "dc-east", "dc-west")
	if m := forward.Transforms.StorageClasses[0]; m.From != "fast-east" || m.To != "fast-west" {
		t.Fatalf("forward storage class mapping = %+v", m)
	}
	if n := len(forward.Transforms.Patches); n != 2 || forward.Transforms.Patches[0].ToCluster != "dc-west" {
		t.Fatalf("forward patches = %+v", forward.Transforms.Patches)
	}
	back := Directed(spec, "dc-east", "dc-east")
	if m := back.Transforms.StorageClasses[0]; m.From != "fast-west" || m.To != "fast-east" {
		t.Fatalf("reverse storage class mapping = %+v", m)
	}
	if m := back.Transforms.ImageRegistries[0]; m.From != "registry.west" || m.To != "registry.east" {
		t.Fatalf("reverse registry mapping = %+v", m)
	}
	if n := len(back.Transforms.Patches); n != 2 || back.Transforms.Patches[0].ToCluster != "dc-east" {
		t.Fatalf("reverse patches = %+v", back.Transforms.Patches)
	}
	if spec.Transforms.StorageClasses[0].From != "fast-east" {
		t.Fatal("Directed changed the policy it was given")
	}
}
