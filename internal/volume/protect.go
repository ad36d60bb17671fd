package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
)

// Cluster is one side: Read should be uncached (a snapshot created a moment
// ago must be seen, or it is taken twice).
type Cluster struct {
	Name  string
	Read  client.Reader
	Write client.Writer
}

// Policy is a SyncPolicy with spec.volumes, its transforms already directed
// towards the standby (replicate.Directed).
type Policy struct {
	Name string
	Spec tandemv1.SyncPolicySpec
}

// Sides is a pair's two clusters as protection sees them.
type Sides struct {
	Pair    PairRef
	Active  Cluster
	Standby *Cluster // nil when the standby does not answer
	// Objective is the pair's RPO objective, exported with the RPOs.
	Objective time.Duration
}

// claim is a protected PVC with the policy that protects it.
type claim struct {
	pvc    *corev1.PersistentVolumeClaim
	policy *Policy
}

// Report is the outcome of one protection round.
type Report struct {
	Claims []ClaimState
	// Wake is when the next round is due.
	Wake time.Duration
}

// APIMissingError says a cluster does not serve the VolumeSnapshot API.
type APIMissingError struct{ Cluster string }

func (e *APIMissingError) Error() string {
	return fmt.Sprintf("%s does not serve snapshot.storage.k8s.io/v1 VolumeSnapshots: install the CSI snapshot CRDs and snapshot-controller there", e.Cluster)
}

// Protector runs protection rounds. It remembers which snapshots it has
// measured, so each duration is observed once.
type Protector struct {
	mu       sync.Mutex
	measured map[string]bool
}

// Protect runs one round: take what is due, ship what is ready, prune past
// retention, and report each claim's RPO. Failures of single claims are in
// the report; an error means the round could not look at the clusters.
func (p *Protector) Protect(ctx context.Context, sides Sides, policies []Policy, now time.Time) (Report, error) {
	claims, unbound, err := protectedClaims(ctx, sides.Active.Read, policies)
	if err != nil {
		return Report{}, err
	}
	activeSnaps, err := listSnaps(ctx, sides.Active, sides.Pair)
	if err != nil {
		return Report{}, err
	}
	var standbySnaps []snapv1.VolumeSnapshot
	if sides.Standby != nil {
		if standbySnaps, err = listSnaps(ctx, *sides.Standby, sides.Pair); err != nil {
			var missing *APIMissingError
			if errors.As(err, &missing) {
				return Report{}, err
			}
			// The standby stopped answering: protect locally, ship later.
			sides.Standby = nil
		}
	}
	inUse := restoringFrom(claimsOf(claims))
	if sides.Standby != nil {
		restoring, err := restoredClaims(ctx, sides.Standby.Read, sides.Pair)
		if err == nil {
			for k := range restoringFrom(restoring) {
				inUse[k] = true
			}
		}
	}

	// One plan per policy (each has its own interval and retention), and
	// one with no claims for snapshots of claims no policy protects now.
	byPolicy := map[string][]ClaimKey{}
	policyOf := map[ClaimKey]string{}
	for k, c := range claims {
		byPolicy[c.policy.Name] = append(byPolicy[c.policy.Name], k)
		policyOf[k] = c.policy.Name
	}
	activeByPolicy := splitSnaps(activeSnaps, policyOf, inUse)
	standbyByPolicy := splitSnaps(standbySnaps, policyOf, inUse)

	byName := map[string]*snapv1.VolumeSnapshot{}
	for i := range activeSnaps {
		byName[activeSnaps[i].Namespace+"/"+activeSnaps[i].Name] = &activeSnaps[i]
	}
	report := Report{Wake: time.Hour}
	problems := map[ClaimKey]string{}
	fail := func(k ClaimKey, err error) {
		if problems[k] == "" {
			problems[k] = err.Error()
		}
	}
	names := append(policyNames(policies), "")
	for _, name := range names {
		in := Input{Now: now, Retention: 1, Interval: time.Hour, Unbound: unbound, Claims: byPolicy[name],
			Active: activeByPolicy[name], Standby: standbyByPolicy[name]}
		if pol := findPolicy(policies, name); pol != nil {
			in.Interval, in.Retention = interval(pol.Spec.Volumes), int(pol.Spec.Volumes.Retention)
		}
		plan := Decide(in)
		report.Wake = min(report.Wake, plan.Wake)
		for _, k := range plan.Take {
			c := claims[k]
			if err := take(ctx, sides, c, now); err != nil {
				snapshotFailures.WithLabelValues(sides.Pair.Namespace, sides.Pair.Name, "take").Inc()
				fail(k, err)
			}
		}
		for _, s := range plan.Ship {
			if sides.Standby == nil {
				fail(s.Key(), fmt.Errorf("snapshot %s is ready but the standby does not answer", s.Name))
				continue
			}
			if err := ship(ctx, sides, claims[s.Key()], byName[s.Namespace+"/"+s.Name], ""); err != nil {
				snapshotFailures.WithLabelValues(sides.Pair.Namespace, sides.Pair.Name, "ship").Inc()
				fail(s.Key(), err)
			}
		}
		for _, s := range plan.DeleteActive {
			if err := deleteSnapshot(ctx, sides.Active.Write, s); err != nil {
				fail(s.Key(), err)
			}
		}
		if sides.Standby != nil {
			for _, s := range plan.DeleteStandby {
				if err := deleteSnapshot(ctx, sides.Standby.Write, s); err != nil {
					fail(s.Key(), err)
				}
			}
		}
		for _, st := range plan.Claims {
			if msg := problems[st.Key]; msg != "" && st.Problem == "" {
				st.Problem = msg
			}
			report.Claims = append(report.Claims, st)
		}
	}
	sort.Slice(report.Claims, func(i, j int) bool { return report.Claims[i].Key.String() < report.Claims[j].Key.String() })
	p.measure(sides, activeSnaps, standbySnaps, now)
	recordRPO(sides.Pair, report.Claims, sides.Objective)
	return report, nil
}

// measure observes, once per snapshot, how long it took to become ready on
// the active side and to become usable on the standby.
func (p *Protector) measure(sides Sides, active, standby []snapv1.VolumeSnapshot, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.measured == nil {
		p.measured = map[string]bool{}
	}
	seen := map[string]bool{}
	observe := func(list []snapv1.VolumeSnapshot, side string, role Role, stage string) {
		for i := range list {
			s := ToSnap(&list[i], nil)
			key := side + "/" + s.Namespace + "/" + s.Name
			seen[key] = true
			if s.Role != role || !s.Ready || p.measured[key] {
				continue
			}
			p.measured[key] = true
			snapshotDuration.WithLabelValues(sides.Pair.Namespace, sides.Pair.Name, stage).Observe(now.Sub(s.Taken).Seconds())
		}
	}
	observe(active, "active", RoleSource, "snapshot")
	observe(standby, "standby", RoleReplica, "replica")
	for k := range p.measured {
		if !seen[k] {
			delete(p.measured, k)
		}
	}
}

// protectedClaims lists the PVCs the policies protect, each with the first
// policy (by name) that selects it, and which of them are not bound (or
// being deleted: nothing to snapshot).
func protectedClaims(ctx context.Context, c client.Reader, policies []Policy) (map[ClaimKey]claim, map[ClaimKey]bool, error) {
	// Policies that name their namespaces are served by one list per
	// namespace; a namespace selector needs every namespace's labels and
	// every PVC. Rounds run every few seconds: a cluster-wide list of PVCs
	// when the policies name two namespaces would be waste.
	names := map[string]bool{}
	bySelector := false
	for _, p := range policies {
		if len(p.Spec.Namespaces.Names) == 0 {
			bySelector = true
		}
		for _, n := range p.Spec.Namespaces.Names {
			names[n] = true
		}
	}
	nsLabels := map[string]map[string]string{}
	var pvcs []corev1.PersistentVolumeClaim
	if bySelector {
		var nsList corev1.NamespaceList
		if err := c.List(ctx, &nsList); err != nil {
			return nil, nil, fmt.Errorf("listing namespaces: %w", err)
		}
		for _, n := range nsList.Items {
			nsLabels[n.Name] = n.Labels
		}
		var list corev1.PersistentVolumeClaimList
		if err := c.List(ctx, &list); err != nil {
			return nil, nil, fmt.Errorf("listing PersistentVolumeClaims: %w", err)
		}
		pvcs = list.Items
	} else {
		for n := range names {
			var list corev1.PersistentVolumeClaimList
			if err := c.List(ctx, &list, client.InNamespace(n)); err != nil {
				return nil, nil, fmt.Errorf("listing PersistentVolumeClaims in %s: %w", n, err)
			}
			if len(list.Items) > 0 {
				nsLabels[n] = nil // a policy with names never reads the labels
			}
			pvcs = append(pvcs, list.Items...)
		}
	}
	lookup := func(ns string) (map[string]string, bool) { l, ok := nsLabels[ns]; return l, ok }
	claims := map[ClaimKey]claim{}
	unbound := map[ClaimKey]bool{}
	for i := range policies {
		pol := &policies[i]
		filter, err := replicate.NewClaimFilter(pol.Spec)
		if err != nil {
			return nil, nil, fmt.Errorf("SyncPolicy %s: %w", pol.Name, err)
		}
		for j := range pvcs {
			pvc := &pvcs[j]
			k := ClaimKey{Namespace: pvc.Namespace, Name: pvc.Name}
			if _, taken := claims[k]; taken || !filter.Protects(pvc, lookup) {
				continue
			}
			claims[k] = claim{pvc: pvc, policy: pol}
			if pvc.Status.Phase != corev1.ClaimBound || pvc.DeletionTimestamp != nil {
				unbound[k] = true
			}
		}
	}
	return claims, unbound, nil
}

func claimsOf(m map[ClaimKey]claim) []corev1.PersistentVolumeClaim {
	out := make([]corev1.PersistentVolumeClaim, 0, len(m))
	for _, c := range m {
		out = append(out, *c.pvc)
	}
	return out
}

// restoredClaims lists the PVCs Tandem restored for the pair.
func restoredClaims(ctx context.Context, c client.Reader, pair PairRef) ([]corev1.PersistentVolumeClaim, error) {
	var list corev1.PersistentVolumeClaimList
	if err := c.List(ctx, &list, client.MatchingLabels(pairLabels(pair))); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// restoringFrom names the snapshots PVCs are still being restored from.
func restoringFrom(pvcs []corev1.PersistentVolumeClaim) map[string]bool {
	out := map[string]bool{}
	for _, pvc := range pvcs {
		ds := pvc.Spec.DataSource
		if ds != nil && ds.Kind == "VolumeSnapshot" && pvc.Status.Phase != corev1.ClaimBound {
			out[pvc.Namespace+"/"+ds.Name] = true
		}
	}
	return out
}

func listSnaps(ctx context.Context, c Cluster, pair PairRef) ([]snapv1.VolumeSnapshot, error) {
	var list snapv1.VolumeSnapshotList
	if err := c.Read.List(ctx, &list, client.MatchingLabels(pairLabels(pair))); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return nil, &APIMissingError{Cluster: c.Name}
		}
		return nil, fmt.Errorf("listing VolumeSnapshots on %s: %w", c.Name, err)
	}
	return list.Items, nil
}

func splitSnaps(list []snapv1.VolumeSnapshot, policyOf map[ClaimKey]string, inUse map[string]bool) map[string][]Snap {
	out := map[string][]Snap{}
	for i := range list {
		s := ToSnap(&list[i], inUse)
		if s.Role == RoleKept || s.Claim == "" {
			continue
		}
		name := policyOf[s.Key()]
		out[name] = append(out[name], s)
	}
	return out
}

func policyNames(policies []Policy) []string {
	out := make([]string, len(policies))
	for i, p := range policies {
		out[i] = p.Name
	}
	return out
}

func findPolicy(policies []Policy, name string) *Policy {
	for i := range policies {
		if policies[i].Name == name {
			return &policies[i]
		}
	}
	return nil
}

func interval(v *tandemv1.VolumeProtection) time.Duration {
	if v.Interval != nil && v.Interval.Duration > 0 {
		return v.Interval.Duration
	}
	return 5 * time.Minute
}

func standbyClass(v *tandemv1.VolumeProtection) string {
	if v.StandbySnapshotClassName != "" {
		return v.StandbySnapshotClassName
	}
	return v.SnapshotClassName
}

// take creates a snapshot of a claim on the active side.
func take(ctx context.Context, sides Sides, c claim, now time.Time) error {
	s := newSourceSnapshot(sides.Pair, c, snapshotName(c.pvc.Name, "snap", now))
	if err := sides.Active.Write.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating VolumeSnapshot %s/%s on %s: %w", s.Namespace, s.Name, sides.Active.Name, err)
	}
	return nil
}

func newSourceSnapshot(pair PairRef, c claim, name string) *snapv1.VolumeSnapshot {
	labels := pairLabels(pair)
	labels[ClaimLabel] = claimLabelValue(c.pvc.Name)
	labels[RoleLabel] = string(RoleSource)
	ann := map[string]string{ClaimAnnotation: c.pvc.Name}
	// The PVC as it is here, so this side can restore its own snapshot
	// when it becomes active again before the peer took a newer one (see
	// Restore). Without it the snapshot is only ever shipped.
	if spec, err := claimTemplate(c, pair, tandemv1.Transforms{}); err == nil {
		ann[ClaimSpecAnnotation] = spec
	}
	return &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   c.pvc.Namespace,
			Name:        name,
			Labels:      labels,
			Annotations: ann,
		},
		Spec: snapv1.VolumeSnapshotSpec{
			Source:                  snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To(c.pvc.Name)},
			VolumeSnapshotClassName: ptr.To(c.policy.Spec.Volumes.SnapshotClassName),
		},
	}
}

// ship makes a ready source snapshot usable on the standby: a
// pre-provisioned VolumeSnapshotContent with the mapped handle, and a
// VolumeSnapshot of the same name bound to it, carrying the PVC to restore.
func ship(ctx context.Context, sides Sides, c claim, src *snapv1.VolumeSnapshot, final string) error {
	if c.pvc == nil {
		return fmt.Errorf("snapshot %s: its PVC is not protected any more", src.Name)
	}
	if src.Status == nil || src.Status.BoundVolumeSnapshotContentName == nil {
		return fmt.Errorf("VolumeSnapshot %s/%s on %s has no content yet", src.Namespace, src.Name, sides.Active.Name)
	}
	var content snapv1.VolumeSnapshotContent
	if err := sides.Active.Read.Get(ctx, client.ObjectKey{Name: *src.Status.BoundVolumeSnapshotContentName}, &content); err != nil {
		return fmt.Errorf("reading VolumeSnapshotContent %s on %s: %w", *src.Status.BoundVolumeSnapshotContentName, sides.Active.Name, err)
	}
	if content.Status == nil || content.Status.SnapshotHandle == nil {
		return fmt.Errorf("VolumeSnapshotContent %s on %s has no snapshot handle yet", content.Name, sides.Active.Name)
	}
	vol := c.policy.Spec.Volumes
	handle, err := StandbyHandle(vol.HandleMapping, *content.Status.SnapshotHandle, src)
	if err != nil {
		return fmt.Errorf("SyncPolicy %s: %w", c.policy.Name, err)
	}
	claimSpec, err := claimTemplate(c, sides.Pair, c.policy.Spec.Transforms)
	if err != nil {
		return err
	}
	taken := ToSnap(src, nil).Taken

	// The storage object behind a replica is the storage's, not Tandem's:
	// under the same handle it is the source's own data, and under a
	// mapped one the storage's replication made it, and a mapping may name
	// what another content also points at. So pruning a replica never
	// deletes storage data: its content retains it, and the storage's own
	// retention removes it.
	policy := snapv1.VolumeSnapshotContentRetain
	labels := pairLabels(sides.Pair)
	labels[ClaimLabel] = claimLabelValue(c.pvc.Name)
	labels[RoleLabel] = string(RoleReplica)
	if final != "" {
		labels[FinalLabel] = final
	}
	class := standbyClass(vol)
	rc := &snapv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: contentName(src.Namespace, src.Name), Labels: labels},
		Spec: snapv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef:       corev1.ObjectReference{Namespace: src.Namespace, Name: src.Name},
			DeletionPolicy:          policy,
			Driver:                  content.Spec.Driver,
			VolumeSnapshotClassName: ptr.To(class),
			Source:                  snapv1.VolumeSnapshotContentSource{SnapshotHandle: ptr.To(handle)},
			SourceVolumeMode:        content.Spec.SourceVolumeMode,
		},
	}
	if err := sides.Standby.Write.Create(ctx, rc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating VolumeSnapshotContent %s on %s: %w", rc.Name, sides.Standby.Name, err)
	}
	rs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: src.Namespace,
			Name:      src.Name,
			Labels:    labels,
			Annotations: map[string]string{
				ClaimAnnotation:        c.pvc.Name,
				TakenAnnotation:        taken.UTC().Format(time.RFC3339Nano),
				ClaimSpecAnnotation:    claimSpec,
				SourceHandleAnnotation: *content.Status.SnapshotHandle,
			},
		},
		Spec: snapv1.VolumeSnapshotSpec{
			Source:                  snapv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To(rc.Name)},
			VolumeSnapshotClassName: ptr.To(class),
		},
	}
	if err := sides.Standby.Write.Create(ctx, rs); err != nil && !apierrors.IsAlreadyExists(err) {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s does not exist on %s yet (the object sync creates it)", src.Namespace, sides.Standby.Name)
		}
		return fmt.Errorf("creating VolumeSnapshot %s/%s on %s: %w", rs.Namespace, rs.Name, sides.Standby.Name, err)
	}
	return nil
}

// claimTemplate is the PVC a restore creates, as JSON: the source's,
// transformed like every copied object (with the policy's transforms for
// the standby, none for this side's own snapshots), minus what belongs to
// the source's volume.
func claimTemplate(c claim, pair PairRef, transforms tandemv1.Transforms) (string, error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c.pvc)
	if err != nil {
		return "", err
	}
	u := &unstructured.Unstructured{Object: raw}
	u.SetAPIVersion("v1")
	u.SetKind("PersistentVolumeClaim")
	out, _, err := replicate.Transform(u, replicate.Options{
		Pair: pair.Name, PairNamespace: pair.Namespace, Policy: c.policy.Name, Mode: c.policy.Spec.StandbyMode, Transforms: transforms,
	})
	if err != nil {
		return "", fmt.Errorf("transforming PVC %s/%s for the standby: %w", c.pvc.Namespace, c.pvc.Name, err)
	}
	ann := out.GetAnnotations()
	// A restored PVC is not a copy the object sync may prune.
	delete(ann, replicate.CreatedAnnotation)
	delete(ann, replicate.HashAnnotation)
	out.SetAnnotations(ann)
	unstructured.RemoveNestedField(out.Object, "spec", "dataSource")
	unstructured.RemoveNestedField(out.Object, "spec", "dataSourceRef")
	unstructured.RemoveNestedField(out.Object, "spec", "volumeName")
	data, err := json.Marshal(out.Object)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// deleteSnapshot deletes a VolumeSnapshot and, for a replica, its
// pre-provisioned content (which a Retain policy would otherwise leave).
func deleteSnapshot(ctx context.Context, c client.Writer, s Snap) error {
	vs := &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}}
	if err := c.Delete(ctx, vs); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting VolumeSnapshot %s/%s: %w", s.Namespace, s.Name, err)
	}
	if s.Role == RoleReplica {
		vc := &snapv1.VolumeSnapshotContent{ObjectMeta: metav1.ObjectMeta{Name: contentName(s.Namespace, s.Name)}}
		if err := c.Delete(ctx, vc); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting VolumeSnapshotContent %s: %w", vc.Name, err)
		}
	}
	return nil
}
