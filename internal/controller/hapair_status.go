package controller

import (
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/internal/volume"
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

// setFailoverSafe compares the witness Lease with the operator's takeover
// budget. The Lease is all that keeps the standby from promoting; only the
// leader renews it, so when the leader dies the Lease must outlast the time
// another process needs to become the leader, or an operator crash alone
// makes a failover while this side's workloads still run.
func setFailoverSafe(pair *tandemv1.HAPair, lease, budget time.Duration) {
	if budget <= 0 {
		removeCondition(pair, tandemv1.FailoverSafeCondition)
		return
	}
	if lease > budget {
		setCondition(pair, tandemv1.FailoverSafeCondition, metav1.ConditionTrue, tandemv1.LeaseOutlastsTakeoverReason, fmt.Sprintf(
			"spec.witness.leaseDuration %s outlasts the operator's takeover budget %s (leader-election lease and retry period)", lease, budget))
		return
	}
	setCondition(pair, tandemv1.FailoverSafeCondition, metav1.ConditionFalse, tandemv1.LeaseShorterThanTakeoverReason, fmt.Sprintf(
		"spec.witness.leaseDuration %s is not longer than the operator's takeover budget %s (leader-election lease and retry period): "+
			"if its leader dies, the standby can take the Lease while this side still serves; raise spec.witness.leaseDuration above %s "+
			"or shorten --leader-elect-lease-duration", lease, budget, budget))
}

func setSuspended(pair *tandemv1.HAPair) {
	setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.SuspendedReason, "spec.suspend is set; nothing is copied")
}

func localClusterUnknown(pair *tandemv1.HAPair, local string) *metav1.Condition {
	names := make([]string, len(pair.Spec.Clusters))
	for i, c := range pair.Spec.Clusters {
		names[i] = c.Name
	}
	removeCondition(pair, tandemv1.SyncedCondition)
	return &metav1.Condition{Reason: tandemv1.LocalClusterUnknownReason,
		Message: fmt.Sprintf("This operator runs with --cluster-name %s, which is not one of spec.clusters (%s)", local, strings.Join(names, ", "))}
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

// peerHeartbeat is how stale the probe times in status may grow while
// nothing else about the peer changes. Written every round they were a
// heartbeat in status: one write per pair per probe period (46 writes/s
// for 50 pairs at 1 s, docs/benchmarks.md) that told nobody anything new.
const peerHeartbeat = 30 * time.Second

// setPeerStatus records a probe round. The probe times move on at every
// change of reachability or failure count, and otherwise at least every
// peerHeartbeat, so status still shows that probing goes on.
func setPeerStatus(pair *tandemv1.HAPair, peer string, h remote.Health) {
	prev := pair.Status.Peer
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
	if prev != nil && prev.Cluster == st.Cluster && prev.Reachable == st.Reachable &&
		prev.ConsecutiveFailures == st.ConsecutiveFailures && prev.LastProbeTime != nil &&
		h.LastProbe.Sub(prev.LastProbeTime.Time) < peerHeartbeat {
		st.LastProbeTime, st.LastSuccessTime = prev.LastProbeTime, prev.LastSuccessTime
	}
	pair.Status.Peer = st
	if h.Reachable() {
		setCondition(pair, tandemv1.PeerReachableCondition, metav1.ConditionTrue, tandemv1.PeerConnectedReason, h.Describe(peer))
		return
	}
	setCondition(pair, tandemv1.PeerReachableCondition, metav1.ConditionFalse, tandemv1.PeerUnreachableReason, h.Describe(peer))
}

func setSyncPaused(pair *tandemv1.HAPair, by string) {
	setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.SyncPausedReason,
		fmt.Sprintf("Switchover %s paused the sync while it moves the service", by))
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
			selected: s.selected, outOfSync: s.outOfSync, failures: s.failures, failed: s.failed,
		})
	}
}

// syncCounts are what the Synced verdict is made of, for a pair or a policy.
type syncCounts struct {
	err                 error
	passed              bool // every sync has finished its first full pass
	selected, outOfSync int
	// failures are the first of them (status names at most ten per
	// policy); failed counts them all.
	failures []tandemv1.ObjectFailure
	failed   int
}

// setSyncedVerdict sets Synced on a pair or a policy from its sync counts,
// with the same reasons and messages on both.
func setSyncedVerdict(obj conditioned, standby string, c syncCounts) {
	switch {
	case apierrors.IsForbidden(c.err):
		// Not a peer that is away: one that says no, until someone
		// changes what its identity may do.
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionFalse, tandemv1.PeerForbiddenReason,
			fmt.Sprintf("The peer identity may not sync to %s: %v; bind it to the ClusterRole tandem-peer, or add the kind to it (docs/security.md)", standby, c.err))
	case c.err != nil:
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.PeerUnreachableReason,
			fmt.Sprintf("Cannot sync to the standby %s: %v", standby, c.err))
	case !c.passed:
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
			fmt.Sprintf("The first sync to %s is running", standby))
	case len(c.failures) > 0 || c.outOfSync > 0:
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionFalse, tandemv1.SyncFailedReason,
			fmt.Sprintf("%d of %d objects are out of sync on %s%s", c.outOfSync, c.selected, standby, firstFailures(c.failures, c.failed)))
	default:
		setCondition(obj, tandemv1.SyncedCondition, metav1.ConditionTrue, tandemv1.SucceededReason,
			fmt.Sprintf("%d objects in sync on %s", c.selected, standby))
	}
}

// firstFailures names the first three of f, and how many more of total
// there are (f may be cut short already).
func firstFailures(f []tandemv1.ObjectFailure, total int) string {
	if len(f) == 0 {
		return ""
	}
	const show = 3
	var parts []string
	for _, x := range f[:min(len(f), show)] {
		parts = append(parts, x.Object+": "+x.Message)
	}
	if more := max(total, len(f)) - min(len(f), show); more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return "; " + strings.Join(parts, "; ")
}

// setHAPairSummary derives Ready, Reconciling and Stalled from the owned
// conditions and what the round found only the user can fix (stall).
// Ready follows Synced, unless the pair's names do not lead to the active
// side (TrafficReady False); VolumesProtected speaks for itself.
func setHAPairSummary(pair *tandemv1.HAPair, stall *metav1.Condition) {
	synced := findCondition(pair, tandemv1.SyncedCondition)
	peer := findCondition(pair, tandemv1.PeerReachableCondition)
	degraded := findCondition(pair, tandemv1.DegradedCondition)
	traffic := findCondition(pair, tandemv1.TrafficReadyCondition)
	if stall == nil {
		stall = userMustFix(synced, peer, degraded, traffic)
	}
	switch {
	case stall != nil:
		setCondition(pair, tandemv1.ReadyCondition, metav1.ConditionFalse, stall.Reason, stall.Message)
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
	case synced.Reason == tandemv1.StandbySideReason || synced.Reason == tandemv1.SuspendedReason:
		// A suspended object does what its spec asks, which is nothing:
		// kstatus reads it Current, with the reason saying why.
		setCondition(pair, tandemv1.ReadyCondition, metav1.ConditionTrue, synced.Reason, synced.Message)
	default:
		setCondition(pair, tandemv1.ReadyCondition, synced.Status, synced.Reason, synced.Message)
	}
	ready := findCondition(pair, tandemv1.ReadyCondition)
	setProgress(pair, hapairProgress(ready, stall != nil), ready)
}

// userMustFix is the condition, if any, that says the pair cannot go on
// until someone changes its spec, a Secret, the peer's installation or
// its Namespace's grant.
func userMustFix(synced, peer, degraded, traffic *metav1.Condition) *metav1.Condition {
	for _, c := range []*metav1.Condition{synced, peer} {
		if c != nil && (c.Reason == tandemv1.InvalidSpecReason || c.Reason == tandemv1.PeerKubeconfigInvalidReason || c.Reason == tandemv1.PeerForbiddenReason) {
			return c
		}
	}
	if degraded != nil && degraded.Status == metav1.ConditionTrue && degraded.Reason == tandemv1.TandemNotInstalledReason {
		return degraded
	}
	if traffic != nil && traffic.Status == metav1.ConditionFalse && traffic.Reason == tandemv1.NotGrantedReason {
		return traffic
	}
	return nil
}

// hapairProgress is what kstatus is told of a pair. Ready pairs (suspended
// ones too) are settled. A pair on its way there (its first sync pass, the
// primary waiting to confirm its role) is working. A pair that is not
// Ready for any other reason (its peer unreachable, its copies failing,
// fenced, both sides claiming Active) is stalled: it does not protect the
// service, and a health check must say so rather than wait for ever.
func hapairProgress(ready *metav1.Condition, userMustFix bool) progress {
	switch {
	case userMustFix:
		return stalled
	case ready.Reason == tandemv1.RoleUnconfirmedReason:
		return working
	default:
		return readyProgress(ready)
	}
}

func setBothActive(pair *tandemv1.HAPair, conflict error) {
	setDegraded(pair, tandemv1.BothActiveReason, fmt.Sprintf("Refusing to act: %v", conflict))
}

func setTandemNotInstalled(pair *tandemv1.HAPair, peer string) {
	setDegraded(pair, tandemv1.TandemNotInstalledReason, fmt.Sprintf(
		"%s does not serve the tandem.dev API: install Tandem's CRDs and operator there, or it can neither know the pair nor take over", peer))
}

// setRoleUnconfirmed says why the primary does not claim Active yet, and
// returns the message.
func setRoleUnconfirmed(pair *tandemv1.HAPair, local, peer string, witnessErr error) string {
	msg := fmt.Sprintf("%s is spec.primary but does not claim Active before %s or the witness confirms no other record exists", local, peer)
	if witnessErr != nil {
		msg += ": " + witnessErr.Error()
	}
	setDegraded(pair, tandemv1.RoleUnconfirmedReason, msg)
	return msg
}

func setFenced(pair *tandemv1.HAPair, local, peer string, lease time.Duration, renewErr error) {
	setDegraded(pair, tandemv1.FencedReason, fmt.Sprintf(
		"%s renewed the witness Lease and reached %s neither in the last %s, so it stopped serving (%v); it serves again once the witness confirms its Lease",
		local, peer, lease, renewErr))
}

func setStaysFenced(pair *tandemv1.HAPair, local string, renewErr error) {
	setDegraded(pair, tandemv1.FencedReason, fmt.Sprintf("%s stays fenced until the witness confirms its Lease: %v", local, renewErr))
}

func setServingWithoutWitness(pair *tandemv1.HAPair, local, peer string, renewErr error, lease time.Duration) {
	setDegraded(pair, tandemv1.WitnessUnreachableReason, fmt.Sprintf(
		"%s cannot renew the witness Lease (%v); it serves while it reaches %s and fences itself %s after losing both", local, renewErr, peer, lease))
}

func setActiveLostManual(pair *tandemv1.HAPair, lost, local string) {
	setDegraded(pair, tandemv1.ActiveLostReason, lost+fmt.Sprintf(
		"; spec.failover.mode is Manual, so nothing moves until someone applies a Switchover of type Failover with targetCluster %s", local))
}

// setNotPromoting says why the standby does not promote although the active
// side is lost: the witness does not answer, or still holds the Lease.
func setNotPromoting(pair *tandemv1.HAPair, reason, lost string, leaseErr error) {
	why := "the witness does not answer, and only its Lease proves the active side cannot still be serving"
	if leaseErr != nil {
		why = leaseErr.Error()
	}
	setDegraded(pair, reason, lost+"; not promoting: "+why)
}

func setFailoverStarted(pair *tandemv1.HAPair, lost string, so *tandemv1.Switchover, local string, epoch int64) {
	msg := fmt.Sprintf("%s; Switchover %s promotes %s at epoch %d (phase %s)", lost, so.Name, local, epoch, orPending(so.Status.Phase))
	if so.Status.Phase == tandemv1.PhaseFailed {
		msg += "; delete it to try again"
	}
	setDegraded(pair, tandemv1.ActiveLostReason, msg)
}

// setClaims writes each claim's protection and the pair's summary: the
// oldest among the newest replicas, and the worst RPO.
func setClaims(pair *tandemv1.HAPair, claims []volume.ClaimState) {
	v := pair.Status.Volumes
	v.ProtectedPVCs = int32(len(claims))
	v.Claims = make([]tandemv1.ClaimProtection, 0, len(claims))
	v.NewestReplicatedSnapshot, v.CurrentRPO = nil, nil
	var oldest time.Time
	var worst time.Duration
	missing := false
	for _, c := range claims {
		cp := tandemv1.ClaimProtection{
			Namespace: c.Key.Namespace, Name: c.Key.Name, Message: c.Problem,
			NewestSnapshot: metaTime(c.NewestSnapshot), NewestReplica: metaTime(c.NewestReplica),
		}
		if c.RPO >= 0 {
			cp.RPO = &metav1.Duration{Duration: c.RPO.Round(time.Second)}
			worst = max(worst, c.RPO)
			if oldest.IsZero() || c.NewestReplica.Before(oldest) {
				oldest = c.NewestReplica
			}
		} else {
			missing = true
		}
		v.Claims = append(v.Claims, cp)
	}
	if len(claims) > 0 && !missing {
		v.NewestReplicatedSnapshot = metaTime(oldest)
		v.CurrentRPO = &metav1.Duration{Duration: worst.Round(time.Second)}
	}
}

// setVolumesProtected sets the condition from the claims: every one has a
// usable replica within the RPO objective, or the first problem.
func setVolumesProtected(pair *tandemv1.HAPair, claims []volume.ClaimState, standby string) {
	if len(claims) == 0 {
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionTrue, tandemv1.NoVolumesReason,
			"The pair's SyncPolicies configure spec.volumes but select no PVC")
		return
	}
	objective := rpoObjective(pair)
	var breached, failed, pending []string
	var worst time.Duration
	for _, c := range claims {
		switch {
		case c.RPO < 0:
			pending = append(pending, c.Key.String()+": "+c.Problem)
		case objective > 0 && c.RPO > objective:
			breached = append(breached, fmt.Sprintf("%s (%s)", c.Key, c.RPO.Round(time.Second)))
		case c.Problem != "":
			failed = append(failed, c.Key.String()+": "+c.Problem)
		}
		worst = max(worst, c.RPO)
	}
	switch {
	case len(breached) > 0:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.RPOBreachedReason,
			fmt.Sprintf("The newest snapshot usable on %s is older than spec.objectives.rpo (%s) for %d of %d PVCs: %s",
				standby, objective, len(breached), len(claims), joinFirst(breached, 3, ", ")))
	case len(failed) > 0:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.SnapshotFailedReason,
			joinFirst(failed, 3, "; "))
	case len(pending) > 0:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, tandemv1.ReplicaPendingReason,
			fmt.Sprintf("%d of %d PVCs have no snapshot usable on %s yet: %s", len(pending), len(claims), standby, joinFirst(pending, 3, "; ")))
	default:
		setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionTrue, tandemv1.ProtectedReason,
			fmt.Sprintf("%d PVCs have a snapshot usable on %s; the oldest is %s old (objective %s)", len(claims), standby, worst.Round(time.Second), objective))
	}
}

func setVolumesRetiring(pair *tandemv1.HAPair, local, msg string) {
	setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionUnknown, tandemv1.RetiringVolumesReason,
		"Retiring the PVCs left from when "+local+" was active: "+msg)
}

func setVolumesProtectedByActive(pair *tandemv1.HAPair, local string) {
	setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionUnknown, tandemv1.ProtectedByActiveReason,
		fmt.Sprintf("%s is the standby and holds no protected PVC; %s takes the snapshots and reports their RPO", local, pair.Status.ActiveCluster))
}

func setVolumesFailed(pair *tandemv1.HAPair, reason string, err error) {
	setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionFalse, reason, err.Error())
}

func setVolumesWaitForSwitchover(pair *tandemv1.HAPair, busy []string) {
	setCondition(pair, tandemv1.VolumesProtectedCondition, metav1.ConditionUnknown, tandemv1.SyncPausedReason,
		fmt.Sprintf("Snapshots wait while Switchover %s runs", joinFirst(busy, 3, ", ")))
}

func drillScheduleInvalid(pair *tandemv1.HAPair, err error) *metav1.Condition {
	return &metav1.Condition{Reason: tandemv1.InvalidSpecReason, Message: fmt.Sprintf("spec.drills.schedule %q: %v", pair.Spec.Drills.Schedule, err)}
}

// setTrafficReady derives TrafficReady from what the servers answer and
// what this reconcile could not do.
func setTrafficReady(pair *tandemv1.HAPair, cfg traffic.Config, seen []traffic.Seen, acted error, busy []string) {
	active := pair.Status.ActiveCluster
	var refused *traffic.RefusedError
	var routes routesError
	switch {
	case errors.As(acted, &refused):
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionFalse, tandemv1.DNSUpdateFailedReason, acted.Error()+"; the record was not changed")
		return
	case errors.As(acted, &routes):
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionFalse, tandemv1.RoutesFailedReason, acted.Error())
		return
	case acted != nil:
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionFalse, tandemv1.DNSUpdateFailedReason, acted.Error())
		return
	}
	var elsewhere, unverified []string
	for _, x := range seen {
		switch {
		case x.Cluster == active && len(x.Unreachable) == 0:
		case x.Cluster == active:
			unverified = append(unverified, x.Name+": "+x.Message)
		case x.Cluster != "":
			elsewhere = append(elsewhere, fmt.Sprintf("%s answers %s's targets", x.Name, x.Cluster))
		case len(x.Answer) == 0 && len(x.Unreachable) > 0:
			unverified = append(unverified, x.Name+": "+x.Message)
		default:
			elsewhere = append(elsewhere, x.Name+": "+x.Message)
		}
	}
	during := ""
	if len(busy) > 0 {
		during = " while Switchover " + strings.Join(busy, ", ") + " runs"
	}
	switch {
	case len(elsewhere) > 0 && len(busy) > 0:
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason, strings.Join(elsewhere, "; ")+during)
	case len(elsewhere) > 0:
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionFalse, tandemv1.PointsElsewhereReason,
			fmt.Sprintf("%s is active but %s", active, strings.Join(elsewhere, "; ")))
	case len(unverified) > 0:
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionUnknown, tandemv1.DNSNotVerifiedReason, strings.Join(unverified, "; "))
	default:
		var parts []string
		if len(seen) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s's targets at every authoritative server", count(len(seen), "record answers", "records answer"), active))
		}
		if n := len(pair.Spec.Traffic.Routes); n > 0 {
			parts = append(parts, fmt.Sprintf("%s enabled only on %s", count(n, "route", "routes"), active))
		}
		msg := strings.Join(parts, "; ")
		setCondition(pair, tandemv1.TrafficReadyCondition, metav1.ConditionTrue, tandemv1.PointsAtActiveReason, msg)
	}
}
