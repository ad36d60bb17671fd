package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// MirrorAnnotation records, on each side's copy, the hash of the spec last
// mirrored between the sides. Comparing it with the current spec tells
// which side changed since.
const MirrorAnnotation = "tandem.dev/mirrored-spec"

// mirrorAction is what mirroring does with one object.
type mirrorAction int

const (
	mirrorNothing mirrorAction = iota
	// mirrorCreate creates the object on the peer.
	mirrorCreate
	// mirrorPush copies this side's spec to the peer.
	mirrorPush
	// mirrorPull copies the peer's spec here.
	mirrorPull
	// mirrorMark records the agreed hash on both sides.
	mirrorMark
)

// decideMirror compares the two copies of an object. The side whose spec
// moved away from the last mirrored hash wins. When both moved (concurrent
// edits), the active side's spec wins and the conflict is reported: a
// deterministic rule both operators reach on their own, so they converge
// instead of swapping specs.
func decideMirror(localHash, localMark string, peerExists bool, peerHash, peerMark string, localActive bool) (action mirrorAction, conflict bool) {
	switch {
	case !peerExists:
		return mirrorCreate, false
	case localHash == peerHash:
		if localMark != localHash || peerMark != peerHash {
			return mirrorMark, false
		}
		return mirrorNothing, false
	}
	localChanged, peerChanged := localHash != localMark, peerHash != peerMark
	switch {
	case localChanged && !peerChanged:
		return mirrorPush, false
	case peerChanged && !localChanged:
		return mirrorPull, false
	case localActive:
		return mirrorPush, true
	default:
		return mirrorPull, true
	}
}

func specHash(spec any) string {
	data, _ := json.Marshal(spec)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// reconcileMirror copies the pair and the SyncPolicies it refers to to the
// peer, and changes made on the peer back here, so the side that survives
// always knows the pair. Deletions are not mirrored: deleting the pair on
// one side must not take it from the other. Status is never mirrored; each
// side writes its own.
func (r *HAPairReconciler) reconcileMirror(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	if s.peerClient == nil || !s.peerAnswered || s.peerLacksAPI {
		return ctrl.Result{}, nil
	}
	pair := s.pair
	// Mirroring is best effort each round; a slow peer must not hold up
	// the role checks that follow.
	ctx, cancel := context.WithTimeout(ctx, 2*probeTimeout(pair))
	defer cancel()
	localActive := pair.Status.ActiveCluster == r.ClusterName
	// A nil *HAPair in a client.Object would not compare equal to nil.
	var theirs client.Object
	if s.peerPair != nil {
		theirs = s.peerPair.DeepCopy()
	}
	// The pair is the object this reconcile is about: it is written
	// through the reconcile's patcher, which keeps its resourceVersion
	// current for the status write at the end.
	writePair := func(ctx context.Context, _ client.Object, change func()) error {
		saved := pair.DeepCopy()
		change()
		err := s.patch.Patch(ctx, pair, true)
		if err != nil {
			pair.Spec, pair.Annotations = saved.Spec, saved.Annotations
		}
		return err
	}
	if err := r.mirror(ctx, s.peerClient, s.peer.Name, pair, theirs, localActive, pair, writePair); err != nil {
		return ctrl.Result{}, err
	}
	// A policy that does not decode is not mirrored; the sync reports it.
	policies, _, err := pairPoliciesAsWritten(ctx, r.Client, pair)
	if err != nil && !isUndecodable(err) {
		return ctrl.Result{}, err
	}
	for i := range policies {
		ours := &policies[i]
		var peerPolicy tandemv1.SyncPolicy
		var theirsPolicy client.Object
		switch err := s.peerClient.Get(ctx, client.ObjectKeyFromObject(ours), &peerPolicy); {
		case err == nil:
			theirsPolicy = &peerPolicy
		case !apierrors.IsNotFound(err):
			log.FromContext(ctx).V(1).Info("Could not read a SyncPolicy on the peer", "policy", client.ObjectKeyFromObject(ours).String(), "error", err.Error())
			continue
		}
		if err := r.mirror(ctx, s.peerClient, s.peer.Name, ours, theirsPolicy, localActive, pair, r.writeLocal); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// localWriter writes this side's copy of a mirrored object after change
// modified it, with its resourceVersion as the precondition.
type localWriter func(ctx context.Context, obj client.Object, change func()) error

// writeLocal writes a SyncPolicy of the pair on this cluster.
func (r *HAPairReconciler) writeLocal(ctx context.Context, obj client.Object, change func()) error {
	orig := obj.DeepCopyObject().(client.Object)
	change()
	return r.Patch(ctx, obj, mergeFrom(orig, true))
}

// mirror settles one object between the sides; theirs is nil when the peer
// has none. Both are typed HAPairs or SyncPolicies; ours is written through
// local.
func (r *HAPairReconciler) mirror(ctx context.Context, peer client.Client, peerName string, ours, theirs client.Object, localActive bool, pair *tandemv1.HAPair, local localWriter) error {
	kind := fmt.Sprintf("%T", ours)[len("*v1alpha1."):]
	ourHash := specHash(specOf(ours))
	var theirHash, theirMark string
	if theirs != nil {
		theirHash, theirMark = specHash(specOf(theirs)), theirs.GetAnnotations()[MirrorAnnotation]
	}
	action, conflict := decideMirror(ourHash, ours.GetAnnotations()[MirrorAnnotation], theirs != nil, theirHash, theirMark, localActive)
	if conflict {
		pairEvent(r.Events, pair, corev1.EventTypeWarning, tandemv1.MirrorConflictReason, actionMirror,
			"%s %s was changed on both %s and %s since it was last mirrored; the active side's spec was kept", kind, ours.GetName(), r.ClusterName, peerName)
	}
	markLocal := func(hash string) error {
		if ours.GetAnnotations()[MirrorAnnotation] == hash {
			return nil
		}
		return local(ctx, ours, func() { setMark(ours, hash) })
	}
	var err error
	switch action {
	case mirrorNothing:
		return nil
	case mirrorCreate:
		err = peer.Create(ctx, fresh(ours, ourHash))
		if err == nil {
			pairEvent(r.Events, pair, corev1.EventTypeNormal, tandemv1.MirroredReason, actionMirror, "Created %s %s on %s", kind, ours.GetName(), peerName)
			err = markLocal(ourHash)
		}
	case mirrorPush:
		setSpec(theirs, specOf(ours))
		err = writeMarked(ctx, peer, theirs, ourHash)
		if err == nil {
			pairEvent(r.Events, pair, corev1.EventTypeNormal, tandemv1.MirroredReason, actionMirror, "Copied the spec of %s %s to %s", kind, ours.GetName(), peerName)
			err = markLocal(ourHash)
		}
	case mirrorPull:
		err = local(ctx, ours, func() {
			setSpec(ours, specOf(theirs))
			setMark(ours, theirHash)
		})
		if err == nil {
			err = mark(ctx, peer, theirs, theirHash)
		}
	case mirrorMark:
		if err = markLocal(ourHash); err == nil {
			err = mark(ctx, peer, theirs, ourHash)
		}
	}
	if apierrors.IsConflict(err) || (action == mirrorCreate && apierrors.IsNotFound(err)) || errors.Is(err, context.DeadlineExceeded) {
		// Someone wrote in between, or the namespace is not on the peer
		// yet (the sync creates it): the next round compares again.
		return nil
	}
	if err != nil {
		return fmt.Errorf("mirroring %s %s/%s with %s: %w", kind, ours.GetNamespace(), ours.GetName(), peerName, err)
	}
	return nil
}

func specOf(obj client.Object) any {
	switch o := obj.(type) {
	case *tandemv1.HAPair:
		return o.Spec
	case *tandemv1.SyncPolicy:
		return o.Spec
	}
	panic(fmt.Sprintf("mirroring %T", obj))
}

func setSpec(obj client.Object, spec any) {
	switch o := obj.(type) {
	case *tandemv1.HAPair:
		in := spec.(tandemv1.HAPairSpec)
		o.Spec = *in.DeepCopy()
	case *tandemv1.SyncPolicy:
		in := spec.(tandemv1.SyncPolicySpec)
		o.Spec = *in.DeepCopy()
	}
}

// fresh is a new copy of obj for the peer: name, labels, annotations and
// spec; no status, no server-set metadata.
func fresh(obj client.Object, hash string) client.Object {
	meta := metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: obj.GetName(), Labels: obj.GetLabels(), Annotations: map[string]string{}}
	for k, v := range obj.GetAnnotations() {
		if k != "kubectl.kubernetes.io/last-applied-configuration" {
			meta.Annotations[k] = v
		}
	}
	meta.Annotations[MirrorAnnotation] = hash
	switch o := obj.(type) {
	case *tandemv1.HAPair:
		return &tandemv1.HAPair{ObjectMeta: meta, Spec: *o.Spec.DeepCopy()}
	case *tandemv1.SyncPolicy:
		return &tandemv1.SyncPolicy{ObjectMeta: meta, Spec: *o.Spec.DeepCopy()}
	}
	panic(fmt.Sprintf("mirroring %T", obj))
}

// writeMarked updates the peer's copy obj (its spec already set) with the
// mirror hash; the resourceVersion it was read at is the precondition.
func writeMarked(ctx context.Context, c client.Client, obj client.Object, hash string) error {
	setMark(obj, hash)
	return c.Update(ctx, obj)
}

func setMark(obj client.Object, hash string) {
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[MirrorAnnotation] = hash
	obj.SetAnnotations(ann)
}

// mark records the agreed hash on the peer's copy.
func mark(ctx context.Context, c client.Client, obj client.Object, hash string) error {
	if obj.GetAnnotations()[MirrorAnnotation] == hash {
		return nil
	}
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, MirrorAnnotation, hash))
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
}
