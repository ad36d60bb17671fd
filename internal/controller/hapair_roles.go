package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
	"github.com/tandem-dev/tandem/internal/replicate"
)

// PairLabel marks the Switchovers the operator creates for a pair.
const PairLabel = "tandem.dev/pair"

func recordOf(pair *tandemv1.HAPair) fence.Record {
	return fence.Record{Active: pair.Status.ActiveCluster, Epoch: pair.Status.Epoch}
}

// leaseRef locates the pair's witness Lease.
func leaseRef(pair *tandemv1.HAPair) fence.LeaseRef {
	w := pair.Spec.Witness
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

// remoteContext bounds a request to the peer or the witness by the probe
// timeout: a partitioned cluster must not hold a reconcile for the client's
// full timeout, or the active side would check its fencing deadline late.
func remoteContext(ctx context.Context, pair *tandemv1.HAPair) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, probeTimeout(pair))
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
		return ctrl.Result{}, nil
	}
	st := &tandemv1.WitnessStatus{}
	pair.Status.Witness = st
	c, err := r.witnessClient(ctx, pair)
	switch {
	case remote.IsInvalidKubeconfig(err):
		st.Message = fmt.Sprintf("spec.witness: %v", err)
		return ctrl.Result{}, nil
	case err == nil:
		var v fence.LeaseView
		rctx, cancel := remoteContext(ctx, pair)
		defer cancel()
		if v, err = r.Witness.Read(rctx, c, leaseRef(pair)); err == nil {
			s.witness, s.lease = c, &v
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

// reconcileRoles settles this cluster's role record against the peer's
// record and the witness Lease. The newest epoch wins: a side that learns a
// higher epoch naming the other cluster demotes itself. An active side that
// can renew neither the Lease nor reach its peer for the lease duration
// fences itself. A record naming this cluster at a higher epoch is not
// adopted here: promotion belongs to the Switchover that took the epoch,
// which also restores the workloads.
func (r *HAPairReconciler) reconcileRoles(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	local := recordOf(pair)
	sightings := []fence.Sighting{{Source: "this cluster's record", Record: local}}
	if s.peerPair != nil {
		sightings = append(sightings, fence.Sighting{Source: s.peer.Name + "'s record", Record: recordOf(s.peerPair)})
	}
	if s.lease != nil {
		sightings = append(sightings, fence.Sighting{Source: "the witness Lease", Record: s.lease.Record()})
	}
	newest, known, err := fence.Newest(sightings...)
	if err != nil {
		// Refuse to act on an ambiguous world: no sync, no fencing, no
		// promotion until a person or a higher epoch settles it.
		r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
		setDegraded(pair, tandemv1.BothActiveReason, fmt.Sprintf("Refusing to act: %v", err))
		s.stop = true
		return ctrl.Result{RequeueAfter: probePeriod(pair)}, nil
	}
	switch {
	case !known:
		return r.claimInitialRole(ctx, s)
	case !local.Known() || (newest.Record.Epoch > local.Epoch && newest.Record.Active != r.ClusterName):
		if err := r.adopt(ctx, s, newest); err != nil {
			return ctrl.Result{}, err
		}
	}
	setRecord(pair, recordOf(pair), s.peer.Name, r.ClusterName)
	if pair.Status.ActiveCluster != r.ClusterName {
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
		setDegraded(s.pair, tandemv1.TandemNotInstalledReason, fmt.Sprintf(
			"%s does not serve the tandem.dev API: install Tandem's CRDs and operator there, or it can neither know the pair nor take over", s.peer.Name))
		return
	}
	setDegraded(s.pair, tandemv1.RolesAgreedReason, rolesMessage(s.pair))
}

// claimInitialRole writes the first role record: spec.primary active at
// epoch 1. The primary claims Active only when the peer or the witness
// confirmed there is no record yet, so a pair re-created on one side never
// overrides what the other side has done since.
func (r *HAPairReconciler) claimInitialRole(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	first := fence.Record{Active: pair.Spec.Primary, Epoch: 1}
	if first.Active != r.ClusterName {
		setRecord(pair, first, s.peer.Name, r.ClusterName)
		pair.Status.LocalRole = tandemv1.RoleStandby
		r.setRolesAgreed(s)
		return ctrl.Result{}, nil
	}
	confirmed := s.peerAnswered || s.lease != nil
	var witnessErr error
	if s.lease != nil {
		rctx, cancel := remoteContext(ctx, pair)
		defer cancel()
		if witnessErr = r.Witness.Acquire(rctx, s.witness, leaseRef(pair), r.ClusterName, first.Epoch); witnessErr != nil {
			confirmed = false
		}
	}
	if !confirmed {
		r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
		pair.Status.LocalRole = tandemv1.RoleStandby
		msg := fmt.Sprintf("%s is spec.primary but does not claim Active before %s or the witness confirms no other record exists", r.ClusterName, s.peer.Name)
		if witnessErr != nil {
			msg += ": " + witnessErr.Error()
		}
		setDegraded(pair, tandemv1.RoleUnconfirmedReason, msg)
		setSyncedBlocked(pair, s, msg)
		s.stop = true
		return ctrl.Result{RequeueAfter: probePeriod(pair)}, nil
	}
	setRecord(pair, first, s.peer.Name, r.ClusterName)
	pair.Status.LocalRole = tandemv1.RoleActive
	r.setRolesAgreed(s)
	return ctrl.Result{}, nil
}

// adopt takes a newer record. A side that served until now demotes itself:
// its protected workloads go to 0 (their replica counts recorded), its sync
// stops. Nothing is deleted.
func (r *HAPairReconciler) adopt(ctx context.Context, s *hapairScope, newest fence.Sighting) error {
	pair := s.pair
	wasServing := pair.Status.ActiveCluster == r.ClusterName && pair.Status.LocalRole != tandemv1.RoleStandby
	setRecord(pair, newest.Record, s.peer.Name, r.ClusterName)
	if !wasServing || newest.Record.Active == r.ClusterName {
		return nil
	}
	r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
	parked, err := r.parkWorkloads(ctx, pair)
	if err != nil {
		return fmt.Errorf("demoting %s after %s showed %s: %w", r.ClusterName, newest.Source, newest.Record, err)
	}
	if err := r.stopServingTraffic(ctx, pair); err != nil {
		return fmt.Errorf("demoting %s: withdrawing its traffic: %w", r.ClusterName, err)
	}
	pair.Status.LocalRole = tandemv1.RoleStandby
	log.FromContext(ctx).Info("Demoted to standby", "seen", newest.Source, "record", newest.Record.String(), "parked", parked)
	what := fmt.Sprintf("%d workloads scaled to 0 with their replica counts recorded", parked)
	if parked == 0 {
		what = "its workloads were already at 0"
	}
	r.event(pair, corev1.EventTypeWarning, tandemv1.DemotedReason,
		"%s saw %s in %s and became the standby; %s; nothing deleted", r.ClusterName, newest.Record, newest.Source, what)
	return nil
}

// holdActiveRole keeps the active side's claim: it renews the witness
// Lease and fences itself when it has held neither the Lease nor contact
// with its peer for the lease duration (the Patroni rule). A fenced side
// serves again only once the witness confirms it still holds the Lease: the
// peer alone could be in the middle of taking it.
func (r *HAPairReconciler) holdActiveRole(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	if pair.Spec.Witness == nil {
		pair.Status.LocalRole = tandemv1.RoleActive
		r.setRolesAgreed(s)
		return ctrl.Result{}, nil
	}
	ref := leaseRef(pair)
	renewErr := errors.New("the witness does not answer")
	if s.witness != nil {
		renewErr = nil
		if r.now().Sub(r.Witness.LastRenew(ref)) >= renewInterval(pair)*9/10 {
			rctx, cancel := remoteContext(ctx, pair)
			renewErr = r.Witness.Renew(rctx, s.witness, ref, r.ClusterName, pair.Status.Epoch)
			cancel()
		}
	}
	var superseded *fence.SupersededError
	if errors.As(renewErr, &superseded) {
		return ctrl.Result{}, r.adoptThenStandby(ctx, s, fence.Sighting{Source: "the witness Lease", Record: fence.Record{Active: superseded.Holder, Epoch: superseded.Epoch}})
	}
	wasFenced := pair.Status.LocalRole == tandemv1.RoleFenced
	switch {
	case fence.MustFence(r.now(), r.Witness.LastRenew(ref), s.health.LastSuccess, ref.Duration):
		parked, err := r.parkWorkloads(ctx, pair)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("fencing %s: %w", r.ClusterName, err)
		}
		if err := r.stopServingTraffic(ctx, pair); err != nil {
			return ctrl.Result{}, fmt.Errorf("fencing %s: withdrawing its traffic: %w", r.ClusterName, err)
		}
		r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
		pair.Status.LocalRole = tandemv1.RoleFenced
		msg := fmt.Sprintf("%s renewed the witness Lease and reached %s neither in the last %s, so it stopped serving (%v); it serves again once the witness confirms its Lease",
			r.ClusterName, s.peer.Name, ref.Duration, renewErr)
		setDegraded(pair, tandemv1.FencedReason, msg)
		if !wasFenced {
			log.FromContext(ctx).Info("Fenced", "parked", parked, "reason", renewErr)
		}
		s.stop = true
		return ctrl.Result{RequeueAfter: probePeriod(pair)}, nil
	case wasFenced && renewErr != nil:
		setDegraded(pair, tandemv1.FencedReason, fmt.Sprintf("%s stays fenced until the witness confirms its Lease: %v", r.ClusterName, renewErr))
		s.stop = true
		return ctrl.Result{RequeueAfter: probePeriod(pair)}, nil
	case wasFenced:
		restored, err := r.unparkWorkloads(ctx, pair)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("unfencing %s: %w", r.ClusterName, err)
		}
		r.event(pair, corev1.EventTypeNormal, tandemv1.UnfencedReason,
			"%s holds the witness Lease again at epoch %d and nobody took over; %d workloads restored", r.ClusterName, pair.Status.Epoch, restored)
	}
	pair.Status.LocalRole = tandemv1.RoleActive
	if renewErr != nil {
		setDegraded(pair, tandemv1.WitnessUnreachableReason, fmt.Sprintf("%s cannot renew the witness Lease (%v); it serves while it reaches %s and fences itself %s after losing both",
			r.ClusterName, renewErr, s.peer.Name, ref.Duration))
		return ctrl.Result{}, nil
	}
	r.setRolesAgreed(s)
	return ctrl.Result{}, nil
}

func (r *HAPairReconciler) adoptThenStandby(ctx context.Context, s *hapairScope, seen fence.Sighting) error {
	if err := r.adopt(ctx, s, seen); err != nil {
		return err
	}
	s.pair.Status.LocalRole = tandemv1.RoleStandby
	s.stop = true
	return nil
}

// reconcileFailureDetection is the standby's watch on the active side:
// after failureThreshold failed rounds the active side is lost. Manual mode
// reports it; Automatic mode takes the witness Lease at the next epoch, when
// there is a witness, and creates a Failover Switchover.
func (r *HAPairReconciler) reconcileFailureDetection(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	if pair.Status.LocalRole != tandemv1.RoleStandby || !s.health.Lost(pair.Spec.Failover.FailureThreshold) {
		return ctrl.Result{}, nil
	}
	lost := fmt.Sprintf("%s, the active side, is lost: %s", pair.Status.ActiveCluster, s.health.Describe(pair.Status.ActiveCluster))
	if pair.Spec.Failover.Mode != tandemv1.FailoverAutomatic {
		setDegraded(pair, tandemv1.ActiveLostReason, lost+fmt.Sprintf(
			"; spec.failover.mode is Manual, so nothing moves until someone applies a Switchover of type Failover with targetCluster %s", r.ClusterName))
		return ctrl.Result{}, nil
	}
	epoch := pair.Status.Epoch + 1
	if pair.Spec.Witness != nil {
		if s.witness == nil {
			setDegraded(pair, tandemv1.WitnessUnreachableReason, lost+"; not promoting: the witness does not answer, and only its Lease proves the active side cannot still be serving")
			return ctrl.Result{}, nil
		}
		rctx, cancel := remoteContext(ctx, pair)
		err := r.Witness.Acquire(rctx, s.witness, leaseRef(pair), r.ClusterName, epoch)
		cancel()
		switch {
		case fence.IsHeld(err):
			setDegraded(pair, tandemv1.LeaseHeldReason, lost+"; not promoting: "+err.Error())
			return ctrl.Result{}, nil
		case err != nil:
			setDegraded(pair, tandemv1.WitnessUnreachableReason, lost+"; not promoting: "+err.Error())
			return ctrl.Result{}, nil
		}
	}
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
		r.event(pair, corev1.EventTypeWarning, tandemv1.FailoverStartedReason, "%s; started Switchover %s to promote %s at epoch %d", lost, name, r.ClusterName, epoch)
	case apierrors.IsAlreadyExists(err):
		if err := r.Get(ctx, client.ObjectKeyFromObject(so), so); err != nil {
			return ctrl.Result{}, fmt.Errorf("reading Switchover %s/%s: %w", pair.Namespace, name, err)
		}
	default:
		return ctrl.Result{}, fmt.Errorf("creating Failover Switchover %s/%s: %w", pair.Namespace, name, err)
	}
	msg := fmt.Sprintf("%s; Switchover %s promotes %s at epoch %d (phase %s)", lost, name, r.ClusterName, epoch, orPending(so.Status.Phase))
	if so.Status.Phase == tandemv1.PhaseFailed {
		msg += "; delete it to try again"
	}
	setDegraded(pair, tandemv1.ActiveLostReason, msg)
	return ctrl.Result{}, nil
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

// workloadsOn lists the pair's protected workloads on the cluster c reads,
// selected by the pair's SyncPolicies as this cluster has them (mirroring
// keeps them the same on both sides).
func (r *HAPairReconciler) workloadsOn(ctx context.Context, c client.Client, pair *tandemv1.HAPair) ([]*unstructured.Unstructured, error) {
	var specs []tandemv1.SyncPolicySpec
	for _, ref := range pair.Spec.SyncPolicyRefs {
		var p tandemv1.SyncPolicy
		if err := r.Get(ctx, client.ObjectKey{Namespace: pair.Namespace, Name: ref.Name}, &p); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading SyncPolicy %s/%s: %w", pair.Namespace, ref.Name, err)
		}
		specs = append(specs, p.Spec)
	}
	return replicate.Workloads(ctx, c, specs, replicate.PairSecrets(pair))
}

func (r *HAPairReconciler) parkWorkloads(ctx context.Context, pair *tandemv1.HAPair) (int, error) {
	return r.parkOn(ctx, r.Client, pair)
}

func (r *HAPairReconciler) unparkWorkloads(ctx context.Context, pair *tandemv1.HAPair) (int, error) {
	run, err := r.unparkOn(ctx, r.Client, pair)
	return run.changed, err
}

// parkOn scales the pair's workloads on the cluster c reaches to 0 and
// returns how many it changed.
func (r *HAPairReconciler) parkOn(ctx context.Context, c client.Client, pair *tandemv1.HAPair) (int, error) {
	ws, err := r.workloadsOn(ctx, c, pair)
	if err != nil {
		return 0, err
	}
	run, err := eachWorkload(ctx, ws, func(ctx context.Context, w *unstructured.Unstructured) (bool, error) {
		return replicate.Park(ctx, c, w)
	})
	return run.changed, err
}

// unparkOn restores the pair's workloads on the cluster c reaches.
func (r *HAPairReconciler) unparkOn(ctx context.Context, c client.Client, pair *tandemv1.HAPair) (workloadRun, error) {
	ws, err := r.workloadsOn(ctx, c, pair)
	if err != nil {
		return workloadRun{}, err
	}
	return eachWorkload(ctx, ws, func(ctx context.Context, w *unstructured.Unstructured) (bool, error) {
		return replicate.Unpark(ctx, c, w)
	})
}

// workloadRun is what a park or unpark did: of total workloads, how many it
// changed and which (changed or not) are not Available yet.
type workloadRun struct {
	total, changed int
	waiting        []string
}

// workloadWorkers bound the parallel patches of a park or unpark: while a
// switchover runs the service is down, and 50 sequential round trips are
// seconds on a busy API server.
const workloadWorkers = 16

// eachWorkload runs do on every workload in parallel.
func eachWorkload(ctx context.Context, ws []*unstructured.Unstructured, do func(context.Context, *unstructured.Unstructured) (bool, error)) (workloadRun, error) {
	var mu sync.Mutex
	run := workloadRun{total: len(ws)}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workloadWorkers)
	for _, w := range ws {
		g.Go(func() error {
			changed, err := do(ctx, w)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if changed {
				run.changed++
			}
			if changed || !replicate.Available(w) {
				run.waiting = append(run.waiting, w.GetNamespace()+"/"+w.GetName())
			}
			return nil
		})
	}
	err := g.Wait()
	sort.Strings(run.waiting)
	return run, err
}

func (r *HAPairReconciler) event(pair *tandemv1.HAPair, eventType, reason, format string, args ...any) {
	if r.Events != nil {
		r.Events.Eventf(pair, nil, eventType, reason, "Roles", format, args...)
	}
}

func (r *HAPairReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock.Now()
	}
	return time.Now()
}

// witnessClient reaches the pair's witness cluster.
func (r *HAPairReconciler) witnessClient(ctx context.Context, pair *tandemv1.HAPair) (client.Client, error) {
	cfg, err := remote.ConfigFromSecret(ctx, r.Client, pair.Namespace, pair.Spec.Witness.KubeconfigSecretRef, r.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return r.Peers.ClientFor(cfg)
}
