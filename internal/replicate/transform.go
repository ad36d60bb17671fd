// Package replicate copies the selected objects of the active cluster to the
// standby: transforms, server-side apply wave by wave, pruning, verification
// and keeping copies current through watches.
package replicate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
	"github.com/tandem-dev/tandem/internal/traffic"
)

// Labels and annotations Tandem puts on copies.
const (
	// PairLabel names the HAPair that owns a copy.
	PairLabel = "tandem.dev/pair"
	// PairNamespaceLabel names the namespace of that HAPair: two teams
	// may both call their pair shop and their policy app, and neither's
	// sync may take the other's copies for its own (and prune them).
	PairNamespaceLabel = "tandem.dev/pair-namespace"
	// PolicyLabel names the SyncPolicy that selected the source.
	PolicyLabel = "tandem.dev/policy"
	// HashAnnotation is the hash of the transformed source content the copy
	// was applied from.
	HashAnnotation = "tandem.dev/source-hash"
	// CreatedAnnotation marks copies Tandem created (as opposed to objects
	// that already existed on the standby and were adopted). Only these are
	// ever pruned.
	CreatedAnnotation = "tandem.dev/created"
	// ReplicasAnnotation keeps the source's replica count on a warm copy,
	// so promotion can restore it.
	ReplicasAnnotation = "tandem.dev/source-replicas"
	// SuspendAnnotation keeps a CronJob's source suspend value on a warm
	// copy.
	SuspendAnnotation = "tandem.dev/source-suspend"
	// ParkedNodeSelector is added to a warm DaemonSet's pod template so it
	// runs nowhere until promotion removes it.
	ParkedNodeSelector = "tandem.dev/warm-standby"
)

// Options say how one SyncPolicy transforms objects for one pair.
type Options struct {
	Pair          string
	PairNamespace string
	Policy        string
	Mode          tandemv1.StandbyMode
	Transforms    tandemv1.Transforms
}

// metadata fields the API server owns; a copy must not carry the source's.
// Finalizers belong to the source cluster's controllers too: a copy that
// carried, say, the snapshot controller's pvc-as-source-protection could
// never be deleted on a standby where no snapshot of it is taken.
var strippedMetadata = []string{
	"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
	"selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences", "finalizers",
}

// annotations that belong to the source cluster's controllers or tools.
var strippedAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	"deployment.kubernetes.io/revision",
	"pv.kubernetes.io/bind-completed",
	"pv.kubernetes.io/bound-by-controller",
	"volume.beta.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/selected-node",
}

// Transform returns the copy of src to apply to the standby, and the hash of
// its content (which is also recorded on the copy, in HashAnnotation).
func Transform(src *unstructured.Unstructured, opts Options) (*unstructured.Unstructured, string, error) {
	obj := src.DeepCopy()
	ref := plan.RefOf(obj)
	for _, f := range strippedMetadata {
		unstructured.RemoveNestedField(obj.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(obj.Object, "status")
	if ann := obj.GetAnnotations(); ann != nil {
		for _, a := range strippedAnnotations {
			delete(ann, a)
		}
		for k := range ann {
			// A parked source (quiesced for a switchover, fenced, demoted)
			// keeps what it will be restored to: the copy must carry that,
			// not the 0 the source runs at for now.
			if strings.HasPrefix(k, "tandem.dev/") && k != plan.DependsOnAnnotation && k != ReplicasAnnotation && k != SuspendAnnotation && k != WebhookRulesAnnotation {
				delete(ann, k)
			}
		}
		setOrClear(obj.SetAnnotations, ann)
	}
	stripClusterOwned(obj, ref)

	for _, r := range opts.Transforms.RemoveFields {
		if plan.Matches(r.Target, ref) {
			for _, p := range r.Paths {
				unstructured.RemoveNestedField(obj.Object, strings.Split(p, ".")...)
			}
		}
	}
	for _, m := range opts.Transforms.ImageRegistries {
		mapImages(obj, m)
	}
	for _, m := range opts.Transforms.StorageClasses {
		mapStorageClass(obj, ref, m)
	}
	for i, p := range opts.Transforms.Patches {
		if !plan.Matches(p.Target, ref) {
			continue
		}
		patched, err := applyJSONPatch(obj, p.Patch)
		if err != nil {
			return nil, "", fmt.Errorf("spec.transforms.patches[%d] on %s: %w", i, ref, err)
		}
		obj = patched
	}
	if opts.Mode != tandemv1.StandbyHot {
		warm(obj, ref)
		if IsWebhookConfiguration(obj) {
			if _, err := parkWebhooks(obj); err != nil {
				return nil, "", err
			}
		}
	}
	if traffic.IsRoute(ref.GroupKind().String()) && obj.GetLabels()[traffic.RouteLabel] == "true" {
		// A route of spec.traffic.routes serves only on the active side,
		// even from a hot standby: the copy is parked the way the traffic
		// phase parks it, so the two never undo each other.
		traffic.Park(obj)
	}

	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[PairLabel] = opts.Pair
	labels[PairNamespaceLabel] = opts.PairNamespace
	labels[PolicyLabel] = opts.Policy
	obj.SetLabels(labels)

	hash, err := contentHash(obj)
	if err != nil {
		return nil, "", fmt.Errorf("hashing %s: %w", ref, err)
	}
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[HashAnnotation] = hash
	obj.SetAnnotations(ann)
	return obj, hash, nil
}

// stripClusterOwned removes fields the standby's own controllers must fill
// in: addresses, node bindings, volume bindings, generated selectors.
func stripClusterOwned(obj *unstructured.Unstructured, ref plan.Ref) {
	switch ref.GroupKind().String() {
	case "Service":
		// A headless Service stays headless: "None" is spec, not an address.
		if ip, _, _ := unstructured.NestedString(obj.Object, "spec", "clusterIP"); ip != "None" {
			unstructured.RemoveNestedField(obj.Object, "spec", "clusterIP")
			unstructured.RemoveNestedField(obj.Object, "spec", "clusterIPs")
		}
		unstructured.RemoveNestedField(obj.Object, "spec", "healthCheckNodePort")
		ports, _, _ := unstructured.NestedSlice(obj.Object, "spec", "ports")
		for _, p := range ports {
			if m, ok := p.(map[string]any); ok {
				delete(m, "nodePort")
			}
		}
		if ports != nil {
			_ = unstructured.SetNestedSlice(obj.Object, ports, "spec", "ports")
		}
	case "PersistentVolumeClaim":
		unstructured.RemoveNestedField(obj.Object, "spec", "volumeName")
	case "Pod":
		unstructured.RemoveNestedField(obj.Object, "spec", "nodeName")
	case "Job.batch":
		// The API server generates a Job's selector and the matching
		// template labels from the Job's uid, which differs on the standby.
		if manual, _, _ := unstructured.NestedBool(obj.Object, "spec", "manualSelector"); !manual {
			unstructured.RemoveNestedField(obj.Object, "spec", "selector")
			for _, l := range []string{"controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name"} {
				unstructured.RemoveNestedField(obj.Object, "spec", "template", "metadata", "labels", l)
			}
		}
	case "ServiceAccount":
		unstructured.RemoveNestedField(obj.Object, "secrets")
	case "Namespace":
		unstructured.RemoveNestedField(obj.Object, "spec", "finalizers")
	}
}

// warm parks a workload on the standby: no replicas, the source's count
// kept in an annotation for promotion.
func warm(obj *unstructured.Unstructured, ref plan.Ref) {
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	switch ref.GroupKind().String() {
	case "Deployment.apps", "StatefulSet.apps", "ReplicaSet.apps", "ReplicationController":
		replicas, found, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas")
		if !found {
			replicas = 1 // the API server's default
		}
		if _, parked := ann[ReplicasAnnotation]; !parked {
			ann[ReplicasAnnotation] = strconv.FormatInt(replicas, 10)
		}
		_ = unstructured.SetNestedField(obj.Object, int64(0), "spec", "replicas")
	case "CronJob.batch":
		suspend, _, _ := unstructured.NestedBool(obj.Object, "spec", "suspend")
		if _, parked := ann[SuspendAnnotation]; !parked {
			ann[SuspendAnnotation] = strconv.FormatBool(suspend)
		}
		_ = unstructured.SetNestedField(obj.Object, true, "spec", "suspend")
	case "DaemonSet.apps":
		_ = unstructured.SetNestedField(obj.Object, "parked", "spec", "template", "spec", "nodeSelector", ParkedNodeSelector)
	default:
		return
	}
	obj.SetAnnotations(ann)
}

func mapImages(obj *unstructured.Unstructured, m tandemv1.Mapping) {
	for _, path := range [][]string{
		{"spec", "template", "spec"},
		{"spec", "jobTemplate", "spec", "template", "spec"},
		{"spec"},
	} {
		spec, ok, _ := unstructured.NestedMap(obj.Object, path...)
		if !ok {
			continue
		}
		changed := false
		for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
			containers, _, _ := unstructured.NestedSlice(spec, field)
			for _, c := range containers {
				cm, ok := c.(map[string]any)
				if !ok {
					continue
				}
				if img, ok := cm["image"].(string); ok && hasRegistryPrefix(img, m.From) {
					cm["image"] = m.To + strings.TrimPrefix(img, m.From)
					changed = true
				}
			}
			if changed {
				_ = unstructured.SetNestedSlice(spec, containers, field)
			}
		}
		if changed {
			_ = unstructured.SetNestedMap(obj.Object, spec, path...)
		}
	}
}

// hasRegistryPrefix matches whole path segments: registry.example.com must
// not rewrite registry.example.community/app.
func hasRegistryPrefix(image, prefix string) bool {
	if !strings.HasPrefix(image, prefix) {
		return false
	}
	rest := image[len(prefix):]
	return rest == "" || strings.HasSuffix(prefix, "/") || rest[0] == '/' || rest[0] == ':' || rest[0] == '@'
}

func mapStorageClass(obj *unstructured.Unstructured, ref plan.Ref, m tandemv1.Mapping) {
	switch ref.GroupKind().String() {
	case "PersistentVolumeClaim":
		if sc, _, _ := unstructured.NestedString(obj.Object, "spec", "storageClassName"); sc == m.From {
			_ = unstructured.SetNestedField(obj.Object, m.To, "spec", "storageClassName")
		}
	case "StatefulSet.apps":
		templates, _, _ := unstructured.NestedSlice(obj.Object, "spec", "volumeClaimTemplates")
		for _, t := range templates {
			if tm, ok := t.(map[string]any); ok {
				if sc, _, _ := unstructured.NestedString(tm, "spec", "storageClassName"); sc == m.From {
					_ = unstructured.SetNestedField(tm, m.To, "spec", "storageClassName")
				}
			}
		}
		if templates != nil {
			_ = unstructured.SetNestedSlice(obj.Object, templates, "spec", "volumeClaimTemplates")
		}
	}
}

// contentHash is a stable hash of the object: encoding/json sorts map keys.
func contentHash(obj *unstructured.Unstructured) (string, error) {
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12]), nil
}

func setOrClear(set func(map[string]string), m map[string]string) {
	if len(m) == 0 {
		set(nil)
		return
	}
	set(m)
}
