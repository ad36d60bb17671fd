package replicate

import (
	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Directed is the policy as it applies to a sync towards target. Mappings
// are written from the pair's primary's point of view; when the sync runs
// the other way (the primary is the target, after a switchover or a
// failover), they are inverted. Patches with toCluster apply only towards
// that cluster.
func Directed(spec tandemv1.SyncPolicySpec, primary, target string) tandemv1.SyncPolicySpec {
	out := *spec.DeepCopy()
	if target == primary {
		out.Transforms.ImageRegistries = inverted(out.Transforms.ImageRegistries)
		out.Transforms.StorageClasses = inverted(out.Transforms.StorageClasses)
	}
	var patches []tandemv1.JSONPatchTransform
	for _, p := range out.Transforms.Patches {
		if p.ToCluster == "" || p.ToCluster == target {
			patches = append(patches, p)
		}
	}
	out.Transforms.Patches = patches
	return out
}

func inverted(ms []tandemv1.Mapping) []tandemv1.Mapping {
	out := make([]tandemv1.Mapping, len(ms))
	for i, m := range ms {
		out[i] = tandemv1.Mapping{From: m.To, To: m.From}
	}
	return out
}
