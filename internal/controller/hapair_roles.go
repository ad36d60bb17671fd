package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
)

// PairLabel marks the Switchovers the operator creates for a pair.
const PairLabel = "tandem.dev/pair"

func recordOf(pair *tandemv1.HAPair) fence.Record {
	return fence.Record{Active: pair.Status.ActiveCluster, Epoch: pair.Status.Epoch}
}

// leaseRef locates the pair's witness Lease. A pair without a witness gets
// the defaults, which still time its serving Lease.
func leaseRef(pair *tandemv1.HAPair) fence.LeaseRef {
	w := pair.Spec.Witness
	if w == nil {
		w = &tandemv1.WitnessSpec{}
	}
	ref := fence.LeaseRef{
		Namespace: w.Namespace, Name: fence.LeaseName(pair.Namespace, pair.Name), Duration: 15 * time.Second,
		Grace: probePeriod(pair) + 3*probeTimeout(pair),
	}
	if ref.Namespace == "" {
		ref.Namespace = "tandem-system"
	}
	if w.LeaseDuration != nil && w.LeaseDuration.Duration > 0 {
		ref.Duration = w.LeaseDuration.Duration
	}
	return ref
}

func probeTimeout(pair *tandemv1.HAPair) time.Duration {
	if t := pair.Spec.Failover.ProbeTimeout; t != nil && t.Duration > 0 {
		return t.Duration
	}
	return 2 * time.Second
}

func renewInterval(pair *tandemv1.HAPair) time.Duration {
	if w := pair.Spec.Witness; w != nil && w.RenewInterval != nil && w.RenewInterval.Duration > 0 {
		return w.RenewInterval.Duration
	}
	return 5 * time.Second
}

// reconcileWitness reads the pair's Lease on the witness cluster. A witness
// that cannot be reached is reported in status.witness; the role logic then
// decides with what it has.
func (r *HAPairReconciler) reconcileWitness(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	if pair.Spec.Witness == nil {
		pair.Status.Witness = nil
		removeCondition(pair, tandemv1.FailoverSafeCondition)
		return ctrl.Result{}, nil
	}
	setFailoverSafe(pair, leaseRef(pair).Duration, r.TakeoverBudget)
	st := &tandemv1.WitnessStatus{}
	pair.Status.Witness = st
	cfg, err := remote.ConfigFromSecret(ctx, r.Client, pair.Namespace, pair.Spec.Witness.KubeconfigSecretRef, r.Kubeconfig)
	if remote.IsInvalidKubeconfig(err) {
		st.Message = fmt.Sprintf("spec.witness: %v", err)
		return ctrl.Result{}, nil
	}
	if err == nil {
		r.Peers.SetWitness(pair.Namespace, pair.Name, cfg, probeTimeout(pair))
		var c client.Client
		if c, err = r.Peers.Witness(pair.Namespace, pair.Name); err == nil {
			var v fence.LeaseView
			if v, err = r.Witness.Read(ctx, c, leaseRef(pair)); err == nil {
				s.witness, s.lease = c, &v
			}
		}
	}
	if err != nil {
		st.Message = fmt.Sprintf("The witness does not answer: %v", err)
		return ctrl.Result{}, nil
	}
	st.Reachable = true
	st.Holder, st.Epoch = s.lease.Holder, s.lease.Epoch
	if !s.lease.RenewTime.IsZero() {
		t := metav1.NewTime(s.lease.RenewTime)
		st.RenewTime = &t
	}
	st.Message = "No Lease yet"
	if s.lease.Record().Known() {
		st.Message = fmt.Sprintf("The Lease is held by %s at epoch %d", s.lease.Holder, s.lease.Epoch)
	}
	return ctrl.Result{}, nil
}

// view is what this side knows of the roles in this round.
func (r *HAPairReconciler) view(s *hapairScope) fence.View {
	pair := s.pair
	v := fence.View{
		Local: r.ClusterName, Primary: pair.Spec.Primary,
		Record: recordOf(pair), Role: fence.Role(pair.Status.LocalRole),
		PeerAnswered: s.peerAnswered,
	}
	if s.peerPair != nil {
		rec := recordOf(s.peerPair)
		v.Peer = &rec
	}
	if s.lease != nil {
		rec := s.lease.Record()
		v.Lease = &rec
	}
	return v
}

// reconcileRoles settles this cluster's role record against the peer's
// record and the witness Lease (fence.Decide) and carries the decision out:
// demote when a newer record names the other cluster, claim the first
// record, or keep the active side's claim.
func (r *HAPairReconciler) reconcileRoles(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	d := fence.Decide(r.view(s), s.peer.Name)
	switch d.Action {
	case fence.Refuse:
		// Refuse to act on an ambiguous world: no sync, no fencing, no
		// promotion until a person or a higher epoch settles it.
		r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
		setBothActive(pair, d.Conflict)
		return ctrl.Result{RequeueAfter: probePeriod(pair)}, errStopPhases
	case fence.Unconfirmed:
		return r.stayUnconfirmed(s, nil)
	case fence.Claim:
		confirmed := r.now()
		if d.AcquireLease {
			if err := r.Witness.Acquire(ctx, s.witness, leaseRef(pair), r.ClusterName, d.Record.Epoch); err != nil {
				return r.stayUnconfirmed(s, err)
			}
		}
		s.confirmServing(confirmed, leaseRef(pair).Duration)
		setRecord(pair, d.Record, s.peer.Name, r.ClusterName)
		pair.Status.LocalRole = tandemv1.RoleActive
		r.setRolesAgreed(s)
		return ctrl.Result{}, nil
	}
	// d.Record is the adopted record, or this side's own when it stands.
	setRecord(pair, d.Record, s.peer.Name, r.ClusterName)
	if d.Demote {
		if err := r.demote(ctx, s, d.Source); err != nil {
			return ctrl.Result{}, err
		}
	}
	if d.Action == fence.Follow {
		pair.Status.LocalRole = tandemv1.RoleStandby
		r.setRolesAgreed(s)
		return ctrl.Result{}, nil
	}
	return r.holdActiveRole(ctx, s)
}

// setRolesAgreed clears Degraded, unless the peer cannot take over because
// Tandem is not installed there.
func (r *HAPairReconciler) setRolesAgreed(s *hapairScope) {
	if s.peerLacksAPI {
		setTandemNotInstalled(s.pair, s.peer.Name)
		return
	}
	setDegraded(s.pair, tandemv1.RolesAgreedReason, rolesMessage(s.pair))
}

// stayUnconfirmed keeps a new pair's primary from claiming Active before
// the peer or the witness confirms that no other record exists.
func (r *HAPairReconciler) stayUnconfirmed(s *hapairScope, witnessErr error) (ctrl.Result, error) {
	pair := s.pair
	r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
	pair.Status.LocalRole = tandemv1.RoleStandby
	msg := setRoleUnconfirmed(pair, r.ClusterName, s.peer.Name, witnessErr)
	setSyncedBlocked(pair, s, msg)
	return ctrl.Result{RequeueAfter: probePeriod(pair)}, errStopPhases
}

// demote stops a side that served until now, after the record it adopted
// from source named the other cluster: its protected workloads go to 0
// (their replica counts recorded), its routes are withdrawn, its sync
// stops. Nothing is deleted.
func (r *HAPairReconciler) demote(ctx context.Context, s *hapairScope, source string) error {
	pair := s.pair
	rec := recordOf(pair)
	r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
	// The pods stop serving first: parking them takes their grace period.
	if err := closeServing(ctx, r.servingClient(), pair); err != nil {
		return fmt.Errorf("demoting %s: %w", r.ClusterName, err)
	}
	parked, err := r.Workloads.Park(ctx, r.Client, pair)
	if err != nil {
		return fmt.Errorf("demoting %s after %s showed %s: %w", r.ClusterName, source, rec, err)
	}
	if err := r.stopServingTraffic(ctx, pair); err != nil {
		return fmt.Errorf("demoting %s: withdrawing its traffic: %w", r.ClusterName, err)
	}
	pair.Status.LocalRole = tandemv1.RoleStandby
	log.FromContext(ctx).Info("Demoted to standby", "seen", source, "record", rec.String(), "parked", parked)
	what := fmt.Sprintf("%d workloads scaled to 0 with their replica counts recorded", parked)
	if parked == 0 {
		what = "its workloads were already at 0"
	}
	pairEvent(r.Events, pair, corev1.EventTypeWarning, tandemv1.DemotedReason, actionDemote,
		"%s saw %s in %s and became the standby; %s; nothing deleted", r.ClusterName, rec, source, what)
	return nil
}

// holdActiveRole keeps the active side's claim: it renews the witness
// Lease when due and carries out fence.DecideHold.
func (r *HAPairReconciler) holdActiveRole(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	in := fence.HoldInput{
		Local: r.ClusterName, Now: r.now(), Witness: pair.Spec.Witness != nil, Role: fence.Role(pair.Status.LocalRole),
		LastPeerContact: s.health.LastSuccess,
	}
	if in.Witness {
		ref := leaseRef(pair)
		in.LeaseDuration = ref.Duration
		in.RenewErr = errors.New("the witness does not answer")
		if s.witness != nil {
			in.RenewErr = nil
			if r.now().Sub(r.Witness.LastRenew(ref)) >= renewInterval(pair)*9/10 {
				in.RenewErr = r.Witness.Renew(ctx, s.witness, ref, r.ClusterName, pair.Status.Epoch)
			}
		}
		in.LastRenew = r.Witness.LastRenew(ref)
	}
	d := fence.DecideHold(in)
	switch d.Action {
	case fence.Yield:
		setRecord(pair, d.Superseded, s.peer.Name, r.ClusterName)
		if d.Demote {
			if err := r.demote(ctx, s, fence.SourceWitness); err != nil {
				return ctrl.Result{}, err
			}
		}
		pair.Status.LocalRole = tandemv1.RoleStandby
		return ctrl.Result{}, errStopPhases
	case fence.Fence:
		return r.fence(ctx, s, in.RenewErr)
	case fence.StayFenced:
		setStaysFenced(pair, r.ClusterName, in.RenewErr)
		return ctrl.Result{RequeueAfter: probePeriod(pair)}, errStopPhases
	case fence.Unfence:
		restored, err := r.Workloads.UnparkAtOnce(ctx, r.Client, pair)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("unfencing %s: %w", r.ClusterName, err)
		}
		pairEvent(r.Events, pair, corev1.EventTypeNormal, tandemv1.UnfencedReason, actionUnfence,
			"%s holds the witness Lease again at epoch %d and nobody took over; %d workloads restored", r.ClusterName, pair.Status.Epoch, restored.changed)
	}
	pair.Status.LocalRole = tandemv1.RoleActive
	s.confirmServing(servingConfirmed(in, r.now()), leaseRef(pair).Duration)
	if d.Action == fence.ServeWithoutWitness {
		setServingWithoutWitness(pair, r.ClusterName, s.peer.Name, in.RenewErr, in.LeaseDuration)
		return ctrl.Result{}, nil
	}
	r.setRolesAgreed(s)
	return ctrl.Result{}, nil
}

// servingConfirmed is when the active role was last confirmed: the newer
// of the last witness renewal and the last probe round that reached the
// peer, the two MustFence counts; now for a pair without a witness, whose
// active side serves as long as its operator runs.
func servingConfirmed(in fence.HoldInput, now time.Time) time.Time {
	if !in.Witness {
		return now
	}
	if in.LastPeerContact.After(in.LastRenew) {
		return in.LastPeerContact
	}
	return in.LastRenew
}

// fence stops an active side that has renewed the witness Lease and
// reached its peer neither within the lease duration.
func (r *HAPairReconciler) fence(ctx context.Context, s *hapairScope, renewErr error) (ctrl.Result, error) {
	pair := s.pair
	wasFenced := pair.Status.LocalRole == tandemv1.RoleFenced
	if err := closeServing(ctx, r.servingClient(), pair); err != nil {
		return ctrl.Result{}, fmt.Errorf("fencing %s: %w", r.ClusterName, err)
	}
	parked, err := r.Workloads.Park(ctx, r.Client, pair)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("fencing %s: %w", r.ClusterName, err)
	}
	if err := r.stopServingTraffic(ctx, pair); err != nil {
		return ctrl.Result{}, fmt.Errorf("fencing %s: withdrawing its traffic: %w", r.ClusterName, err)
	}
	r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
	pair.Status.LocalRole = tandemv1.RoleFenced
	setFenced(pair, r.ClusterName, s.peer.Name, leaseRef(pair).Duration, renewErr)
	if !wasFenced {
		log.FromContext(ctx).Info("Fenced", "parked", parked, "reason", renewErr)
	}
	return ctrl.Result{RequeueAfter: probePeriod(pair)}, errStopPhases
}

// reconcileFailureDetection is the standby's watch on the active side
// (fence.DecideTakeover): after failureThreshold failed rounds the active
// side is lost. Manual mode reports it; Automatic mode takes the witness
// Lease at the next epoch, when there is a witness, and creates a Failover
// Switchover.
func (r *HAPairReconciler) reconcileFailureDetection(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	lostByProbes := s.health.Lost(pair.Spec.Failover.FailureThreshold)
	if pair.Status.LocalRole == tandemv1.RoleStandby && lostByProbes {
		// Probes can fail one way: an active side that still writes
		// its heartbeat here is alive.
		age, fresh, err := r.Heartbeats.Fresh(ctx, r.Client, pair, r.now())
		if err != nil {
			return ctrl.Result{}, err
		}
		if fresh {
			setDegraded(pair, tandemv1.ActiveHeartbeatFreshReason, fmt.Sprintf(
				"%s does not answer this side's probes (%s) but renewed its heartbeat here %s ago: it is alive, not promoting",
				pair.Status.ActiveCluster, s.health.Describe(pair.Status.ActiveCluster), age.Round(100*time.Millisecond)))
			return ctrl.Result{}, nil
		}
	}
	// An active side that answers but whose grant lapsed serves nothing:
	// its operator is dead. The witness Lease still decides when this side
	// may take over.
	lapsed, lapsedWhy := false, ""
	if pair.Status.LocalRole == tandemv1.RoleStandby && sidecarFenced(pair) && !lostByProbes {
		var err error
		if lapsed, lapsedWhy, err = r.Grants.Lapsed(ctx, s.peerClient, pair, r.now()); err != nil {
			log.FromContext(ctx).V(1).Info("Could not read the active side's serving Lease", "error", err.Error())
		}
	}
	action := fence.DecideTakeover(fence.TakeoverInput{
		Role: fence.Role(pair.Status.LocalRole), Lost: lostByProbes || peerFenced(s) || lapsed,
		Automatic: pair.Spec.Failover.Mode == tandemv1.FailoverAutomatic,
		Witness:   pair.Spec.Witness != nil, WitnessAnswered: s.witness != nil,
	})
	if action == fence.Watch {
		return ctrl.Result{}, nil
	}
	lost := fmt.Sprintf("%s, the active side, is lost: %s", pair.Status.ActiveCluster, s.health.Describe(pair.Status.ActiveCluster))
	switch {
	case lostByProbes:
	case lapsed:
		lost = fmt.Sprintf("%s, the active side, answers but %s", pair.Status.ActiveCluster, lapsedWhy)
	default:
		lost = fmt.Sprintf("%s, the active side, answers but is fenced: it serves nothing", pair.Status.ActiveCluster)
	}
	epoch := pair.Status.Epoch + 1
	var leaseErr error
	if action == fence.TakeLease {
		leaseErr = r.Witness.Acquire(ctx, s.witness, leaseRef(pair), r.ClusterName, epoch)
		action = fence.AfterTakeLease(leaseErr)
	}
	switch action {
	case fence.ReportLost:
		setActiveLostManual(pair, lost, r.ClusterName)
		return ctrl.Result{}, nil
	case fence.WaitForWitness:
		setNotPromoting(pair, tandemv1.WitnessUnreachableReason, lost, leaseErr)
		return ctrl.Result{}, nil
	case fence.LeaseStillHeld:
		setNotPromoting(pair, tandemv1.LeaseHeldReason, lost, leaseErr)
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.startFailover(ctx, s, lost, epoch)
}

// peerFenced is true when the active side answers and says, in its own
// record at this side's epoch, that it is Fenced: it serves nothing, and it
// serves again only if the witness confirms its Lease, which the standby
// can take only once expired. Such a peer is not a live active side.
func peerFenced(s *hapairScope) bool { return fencedPeer(s.peerPair, s.pair, s.peer.Name) }

// fencedPeer: theirs, the pair as the peer has it, says the peer is active
// at this side's record and Fenced.
func fencedPeer(theirs, ours *tandemv1.HAPair, peer string) bool {
	return theirs != nil && theirs.Status.LocalRole == tandemv1.RoleFenced && recordOf(theirs) == recordOf(ours) && recordOf(theirs).Active == peer
}

// startFailover creates the Failover Switchover that promotes this side at
// epoch; one that exists already (a repeat after a crash) is reported.
func (r *HAPairReconciler) startFailover(ctx context.Context, s *hapairScope, lost string, epoch int64) error {
	pair := s.pair
	name := fmt.Sprintf("%s-failover-%d", pair.Name, epoch)
	so := &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: pair.Namespace, Name: name, Labels: map[string]string{PairLabel: pair.Name}},
		Spec: tandemv1.SwitchoverSpec{
			PairRef: pair.Name, Type: tandemv1.SwitchoverFailover, TargetCluster: r.ClusterName,
			Reason: truncate("Started by the operator of "+r.ClusterName+": "+lost, 1024),
		},
	}
	err := r.Create(ctx, so)
	switch {
	case err == nil:
		pairEvent(r.Events, pair, corev1.EventTypeWarning, tandemv1.FailoverStartedReason, actionFailover,
			"%s; started Switchover %s to promote %s at epoch %d", lost, name, r.ClusterName, epoch)
	case apierrors.IsAlreadyExists(err):
		if err := r.Get(ctx, client.ObjectKeyFromObject(so), so); err != nil {
			return fmt.Errorf("reading Switchover %s/%s: %w", pair.Namespace, name, err)
		}
	default:
		return fmt.Errorf("creating Failover Switchover %s/%s: %w", pair.Namespace, name, err)
	}
	setFailoverStarted(pair, lost, so, r.ClusterName, epoch)
	return nil
}

func orPending(p tandemv1.SwitchoverPhase) tandemv1.SwitchoverPhase {
	if p == "" {
		return tandemv1.PhasePending
	}
	return p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// Event actions: what the operator did when it recorded an event.
const (
	actionDemote        = "Demote"
	actionUnfence       = "Unfence"
	actionFailover      = "StartFailover"
	actionPromote       = "Promote"
	actionMirror        = "Mirror"
	actionScheduleDrill = "ScheduleDrill"
)

func (r *HAPairReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock.Now()
	}
	return time.Now()
}
