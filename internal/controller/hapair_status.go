package controller

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
)

// setRecord writes the role record into status, with the standby it
// implies.
func setRecord(pair *tandemv1.HAPair, rec fence.Record, peer, local string) {
	pair.Status.ActiveCluster = rec.Active
	pair.Status.Epoch = rec.Epoch
	pair.Status.StandbyCluster = peer
	if rec.Active == peer {
		pair.Status.StandbyCluster = local
	}
}

func rolesMessage(pair *tandemv1.HAPair) string {
	return fmt.Sprintf("%s is active at epoch %d; %s is the standby", pair.Status.ActiveCluster, pair.Status.Epoch, pair.Status.StandbyCluster)
}

// setDegraded sets Degraded: False with RolesAgreedReason when the roles
// are settled and both sides are accounted for, True with the reason
// otherwise.
func setDegraded(pair *tandemv1.HAPair, reason, message string) {
	status := metav1.ConditionTrue
	if reason == tandemv1.RolesAgreedReason {
		status = metav1.ConditionFalse
	}
	setCondition(pair, tandemv1.DegradedCondition, status, reason, message)
}

func setSuspended(pair *tandemv1.HAPair) {
	setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.SuspendedReason, "spec.suspend is set; nothing is copied")
}

func setLocalClusterUnknown(pair *tandemv1.HAPair, local string) {
	names := make([]string, len(pair.Spec.Clusters))
	for i, c := range pair.Spec.Clusters {
		names[i] = c.Name
	}
	setCondition(pair, tandemv1.StalledCondition, metav1.ConditionTrue, tandemv1.LocalClusterUnknownReason,
		fmt.Sprintf("This operator runs with --cluster-name %s, which is not one of spec.clusters (%s)", local, strings.Join(names, ", ")))
	removeCondition(pair, tandemv1.SyncedCondition)
}

func setPeerNotConfigured(pair *tandemv1.HAPair, err error) {
	pair.Status.Peer = nil
	setCondition(pair, tandemv1.PeerReachableCondition, metav1.ConditionUnknown, tandemv1.PeerNotConnectedReason, err.Error())
}

func setPeerKubeconfigInvalid(pair *tandemv1.HAPair, peer string, err error) {
	pair.Status.Peer = nil
	setCondition(pair, tandemv1.PeerReachableCondition, metav1.ConditionUnknown, tandemv1.PeerKubeconfigInvalidReason,
		fmt.Sprintf("Cannot probe %s: %v", peer, err))
}

// setPeerStatus records a probe round. The probe times are written every
// round, so status shows that probing goes on.
func setPeerStatus(pair *tandemv1.HAPair, peer string, h remote.Health) {
	st := &tandemv1.PeerStatus{
		Cluster:             peer,
		Reachable:           h.Reachable(),
		ConsecutiveFailures: int32(h.ConsecutiveFailures),
	}
	if !h.LastProbe.IsZero() {
		t := metav1.NewTime(h.LastProbe)
		st.LastProbeTime = &t
	}
	if !h.LastSuccess.IsZero() {
		t := metav1.NewTime(h.LastSuccess)
		st.LastSuccessTime = &t
	}
	pair.Status.Peer = st
	if h.Reachable() {
		setCondition(pair, tandemv1.PeerReachableCondition, metav1.ConditionTrue, tandemv1.PeerConnectedReason, h.Describe(peer))
		return
	}
	setCondition(pair, tandemv1.PeerReachableCondition, metav1.ConditionFalse, tandemv1.PeerUnreachableReason, h.Describe(peer))
}

func setSyncedOnStandby(pair *tandemv1.HAPair, active string) {
	setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.StandbySideReason,
		fmt.Sprintf("This cluster is the standby; %s copies the objects here and reports on them", active))
}

// setSyncedBlocked says why nothing is synced while the role is not
// settled: the peer's kubeconfig first, since fixing it settles the role.
func setSyncedBlocked(pair *tandemv1.HAPair, s *hapairScope, why string) {
	switch {
	case s.peer.KubeconfigSecretRef == nil:
		setSyncedInvalidSpec(pair, s.peerErr.Error())
	case s.peerConfig == nil && s.peerErr != nil:
		setSyncedPeerKubeconfigInvalid(pair, s.peer.Name, s.peerErr)
	default:
		setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.RoleUnconfirmedReason, why)
	}
}

func setSyncedInvalidSpec(pair *tandemv1.HAPair, msg string) {
	setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionFalse, tandemv1.InvalidSpecReason, msg)
}

func setSyncedPeerKubeconfigInvalid(pair *tandemv1.HAPair, peer string, err error) {
	setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.PeerKubeconfigInvalidReason,
		fmt.Sprintf("Cannot reach the standby %s: %v", peer, err))
}

func setSyncedFromSummary(pair *tandemv1.HAPair, standby string, missing []string, s syncSummary) {
	switch {
	case len(missing) > 0:
		setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionFalse, tandemv1.InvalidSpecReason,
			fmt.Sprintf("spec.syncPolicyRefs names SyncPolicies that do not exist: %s", strings.Join(missing, ", ")))
	case s.running == 0 && s.firstErr == nil:
		setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
			"No SyncPolicy to copy: spec.syncPolicyRefs is empty or every policy is suspended")
	default:
		setSyncedVerdict(pair, standby, syncCounts{
			err: s.firstErr, passed: s.passed == s.running,
			selected: s.selected, outOfSync: s.outOfSync, failures: s.failures,
		})
	}
}

// syncCounts are what the Synced verdict is made of, for a pair or a policy.
type syncCounts struct {
	err                 error
	passed              bool // every sync has finished its first full pass
	selected, outOfSync int
	failures            []tandemv1.ObjectFailure
}

// setSyncedVerdict sets Synced on a pair or a policy from its sync counts,
// with the same reasons and messages on both.
func setSyncedVerdict(obj conditioned, standby string, c syncCounts) {
	switch {
	case c.err != nil:
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.PeerUnreachableReason,
			fmt.Sprintf("Cannot sync to the standby %s: %v", standby, c.err))
	case !c.passed:
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
			fmt.Sprintf("The first sync to %s is running", standby))
	case len(c.failures) > 0 || c.outOfSync > 0:
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionFalse, tandemv1.SyncFailedReason,
			fmt.Sprintf("%d of %d objects are out of sync on %s%s", c.outOfSync, c.selected, standby, firstFailures(c.failures)))
	default:
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionTrue, tandemv1.SucceededReason,
			fmt.Sprintf("%d objects in sync on %s", c.selected, standby))
	}
}

func firstFailures(f []tandemv1.ObjectFailure) string {
	if len(f) == 0 {
		return ""
	}
	const show = 3
	var parts []string
	for i, x := range f {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(f)-show))
			break
		}
		parts = append(parts, x.Object+": "+x.Message)
	}
	return "; " + strings.Join(parts, "; ")
}

// setHAPairSummary derives Ready and Stalled from the owned conditions.
// Ready follows Synced, unless the pair's names do not lead to the active
// side (TrafficReady False); VolumesProtected speaks for itself.
func setHAPairSummary(pair *tandemv1.HAPair) {
	if st := findCondition(pair, tandemv1.StalledCondition); st != nil && st.Status == metav1.ConditionTrue && st.Reason == tandemv1.LocalClusterUnknownReason {
		setCondition(pair, tandemv1.ReadyCondition, metav1.ConditionFalse, st.Reason, st.Message)
		return
	}
	synced := findCondition(pair, tandemv1.SyncedCondition)
	if synced != nil && synced.Reason == tandemv1.InvalidSpecReason {
		setCondition(pair, tandemv1.StalledCondition, metav1.ConditionTrue, synced.Reason, synced.Message)
	} else {
		removeCondition(pair, tandemv1.StalledCondition)
	}
	peer := findCondition(pair, tandemv1.PeerReachableCondition)
	degraded := findCondition(pair, tandemv1.DegradedCondition)
	traffic := findCondition(pair, tandemv1.TrafficReadyCondition)
	switch {
	case degraded != nil && degraded.Status == metav1.ConditionTrue &&
		(degraded.Reason == tandemv1.FencedReason || degraded.Reason == tandemv1.BothActiveReason || degraded.Reason == tandemv1.RoleUnconfirmedReason):
		setCondition(pair, tandemv1.ReadyCondition, metav1.ConditionFalse, degraded.Reason, degraded.Message)
	case peer != nil && peer.Status == metav1.ConditionFalse:
		// Without its peer the pair cannot fail over or be synced.
		setCondition(pair, tandemv1.ReadyCondition, metav1.ConditionFalse, peer.Reason, peer.Message)
	case traffic != nil && traffic.Status == metav1.ConditionFalse:
		// Users reach the service through its names: a name that does not
		// lead to the active side is an outage, however good the copies.
		setCondition(pair, tandemv1.ReadyCondition, metav1.ConditionFalse, traffic.Reason, traffic.Message)
	case synced == nil:
		setCondition(pair, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason, "Not reconciled yet")
	case synced.Reason == tandemv1.StandbySideReason:
		setCondition(pair, tandemv1.ReadyCondition, metav1.ConditionTrue, synced.Reason, synced.Message)
	default:
		setCondition(pair, tandemv1.ReadyCondition, synced.Status, synced.Reason, synced.Message)
	}
}
