package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/switchover"
	"github.com/tandem-dev/tandem/internal/volume"
)

// statusRefresh is how often a pair's status is refreshed when nothing else
// triggers a reconcile; the syncers also trigger one after every full pass.
const statusRefresh = 30 * time.Second

// HAPairReconciler reconciles HAPairs: it probes the peer cluster, mirrors
// the pair to it, settles this cluster's role against the peer's record and
// the witness Lease (demoting or fencing itself when it must), detects a
// lost active side and, on the active side, runs the sync of the pair's
// SyncPolicies to the standby, protects its volumes and keeps its DNS
// records and routes with the active side.
type HAPairReconciler struct {
	client.Client
	// ClusterName is the data center this operator runs in (--cluster-name).
	ClusterName string
	Syncs       *replicate.Manager
	Peers       *remote.Peers
	Witness     *fence.Witness
	Kubeconfig  remote.Policy
	Events      events.EventRecorder
	// Clock is injected by tests; the real clock when nil.
	Clock clock.PassiveClock
	// SyncEvents carries a pair to reconcile when its sync status changed.
	SyncEvents <-chan event.GenericEvent
	// APIReader reads this cluster uncached (the manager's API reader);
	// the cached client when nil.
	APIReader client.Reader
	// Volumes runs the volume protection rounds; its zero value is ready.
	Volumes volume.Protector
	// Workloads parks this side's workloads on demotion and fencing;
	// Switchovers finds the pair's unfinished Switchovers. Both default to
	// the manager's client.
	Workloads   Workloads
	Switchovers Switchovers
	// TakeoverBudget is the longest this operator can leave the witness
	// Lease unrenewed when its leader dies and another process takes over
	// (leader-election lease plus retry period); zero when unknown. A pair
	// whose witness Lease is not longer is flagged (FailoverSafe=False).
	TakeoverBudget time.Duration
	// Heartbeats judges the active side's heartbeat on this cluster; the
	// Switchover controller shares it. No heartbeat guard when nil.
	Heartbeats *Heartbeats
	// Grants judges the active side's serving Lease from the standby; the
	// Switchover controller shares it. A nil Grants sees no grant lapse.
	Grants *PeerGrants
}

// hapairScope is the per-reconcile state; the reconciler itself is shared
// by concurrent reconciles.
type hapairScope struct {
	pair *tandemv1.HAPair
	peer *tandemv1.ClusterSpec
	// peerConfig reaches the peer; nil when its kubeconfig Secret is not
	// set or not usable (peerErr says why).
	peerConfig *rest.Config
	peerErr    error
	health     remote.Health
	// peerPair is the pair as the peer has it, when the peer answered;
	// peerAnswered is also true when the peer answered that it has none.
	peerPair     *tandemv1.HAPair
	peerClient   client.Client
	peerAnswered bool
	peerLacksAPI bool
	// witness reaches the witness cluster and lease is the pair's Lease
	// there, both nil when there is no witness or it does not answer.
	witness client.Client
	lease   *fence.LeaseView
	summary syncSummary
	// patch writes the pair: the mirror's annotations during the phases,
	// the status once at the end.
	patch *patcher[*tandemv1.HAPair]
	// servingSince is when this round confirmed the active role, for
	// servingFor; zero when it did not (confirmServing).
	servingSince time.Time
	servingFor   time.Duration
	// stall is what this round found that only the user can fix (a spec
	// field the API server could not check, an operator flag); nil when
	// nothing. The summary makes it Ready=False and Stalled.
	stall *metav1.Condition
}

// +kubebuilder:rbac:groups=tandem.dev,resources=hapairs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=hapairs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=hapairs/finalizers,verbs=update
// +kubebuilder:rbac:groups=tandem.dev,resources=syncpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// The sync engine selects objects of every kind through discovery, so it
// reads every kind on this cluster; it writes only to the peer, with the
// peer kubeconfig's credentials. Narrow this with the Helm chart's values.
// +kubebuilder:rbac:groups=*,resources=*,verbs=get;list;watch

// SetupWithManager registers the reconciler.
func (r *HAPairReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Workloads.Policies == nil {
		r.Workloads.Policies = mgr.GetClient()
	}
	if r.Switchovers.Reader == nil {
		r.Switchovers.Reader = mgr.GetClient()
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&tandemv1.HAPair{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&tandemv1.SyncPolicy{}, handler.EnqueueRequestsFromMapFunc(r.pairsOfPolicy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("hapair")
	if r.SyncEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.SyncEvents, &handler.EnqueueRequestForObject{}))
	}
	return b.Complete(r)
}

func (r *HAPairReconciler) pairsOfPolicy(ctx context.Context, obj client.Object) []reconcile.Request {
	var pairs tandemv1.HAPairList
	if err := r.List(ctx, &pairs, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, p := range pairs.Items {
		if refersTo(&p, obj.GetName()) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
		}
	}
	return out
}

func refersTo(p *tandemv1.HAPair, policy string) bool {
	for _, ref := range p.Spec.SyncPolicyRefs {
		if ref.Name == policy {
			return true
		}
	}
	return false
}

// Reconcile runs the phases in order and patches status once.
func (r *HAPairReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := &tandemv1.HAPair{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			// Copies already on the standby stay: deleting a pair must
			// never delete data.
			r.Syncs.StopPair(req.Namespace, req.Name, nil)
			r.Peers.Forget(req.Namespace, req.Name)
			forgetRoleMetrics(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		r.Syncs.StopPair(req.Namespace, req.Name, nil)
		return ctrl.Result{}, nil
	}
	if obj.Undecodable() != nil {
		// Its spec is unknown: its sync stops (the copies stay), and
		// nothing probes, renews or fences for it until it is fixed.
		r.Syncs.StopPair(req.Namespace, req.Name, nil)
		return ctrl.Result{}, reportUndecodable(ctx, r.Client, r.Events, obj)
	}

	s := &hapairScope{pair: obj, patch: newPatcher(r.Client, obj)}
	defer func() {
		err := r.patchStatus(ctx, s, retErr)
		if err == nil {
			r.writeServing(ctx, s)
		}
		retErr = errors.Join(retErr, err)
	}()

	if obj.Spec.Suspend {
		r.Syncs.StopPair(obj.Namespace, obj.Name, nil)
		setSuspended(obj)
		return ctrl.Result{}, nil
	}
	res, err := runPhases(ctx, s,
		r.reconcileMembers,
		r.reconcilePeer,
		r.reconcileMirror,
		r.reconcileWitness,
		r.reconcileRoles,
		r.reconcileFailureDetection,
		r.reconcileSync,
		r.reconcileHeartbeat,
		r.reconcileVolumes,
		r.reconcileTraffic,
		r.reconcileDrills,
	)
	if err != nil {
		return ctrl.Result{}, err
	}
	return soonest(res, ctrl.Result{RequeueAfter: nextRound(obj)}), nil
}

// patchStatus derives the summary conditions, records the metrics and
// events of the round and writes the status once. A round that failed
// midway (and will be retried) does not claim to have observed the spec.
func (r *HAPairReconciler) patchStatus(ctx context.Context, s *hapairScope, reconcileErr error) error {
	obj, before := s.pair, s.patch.Before()
	setHAPairSummary(obj, s.stall)
	recordRoleMetrics(obj, before, obj.Status.LocalRole == tandemv1.RoleStandby && s.health.Lost(obj.Spec.Failover.FailureThreshold))
	recordDrillMetrics(obj)
	recordWitnessMetrics(obj)
	if observedSpec(reconcileErr) {
		obj.Status.ObservedGeneration = obj.Generation
	}
	r.emitTransitions(obj, before)
	if equality.Semantic.DeepEqual(before.Status, obj.Status) {
		return nil
	}
	// The role record is the fencing token: a record written from a stale
	// read must fail, not overwrite a newer one.
	lock := recordOf(obj) != recordOf(before)
	if err := s.patch.PatchStatus(ctx, obj, lock); err != nil {
		return fmt.Errorf("patching status of HAPair %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	return nil
}

// nextRound is when the next probe round (and lease renewal) is due.
func nextRound(pair *tandemv1.HAPair) time.Duration {
	next := min(probePeriod(pair), statusRefresh)
	if pair.Spec.Witness != nil && pair.Status.LocalRole == tandemv1.RoleActive {
		next = min(next, renewInterval(pair))
	}
	return next
}

// probePeriod is spec.failover.probePeriod, defaulted by the API server to
// 5s; the same default here for a pair created before the field existed.
func probePeriod(pair *tandemv1.HAPair) time.Duration {
	if p := pair.Spec.Failover.ProbePeriod; p != nil && p.Duration > 0 {
		return p.Duration
	}
	return 5 * time.Second
}

// reconcilePeer reads the peer's kubeconfig Secret and runs one probe round
// of the peer's API server and endpoints. An unreachable peer is a
// condition, never an error: the reconcile goes on and probes again next
// period.
func (r *HAPairReconciler) reconcilePeer(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	if s.peer.KubeconfigSecretRef == nil {
		s.peerErr = fmt.Errorf("spec.clusters[%s].kubeconfigSecretRef is required: the operator in %s reaches %s through it", s.peer.Name, r.ClusterName, s.peer.Name)
		setPeerNotConfigured(pair, s.peerErr)
		return ctrl.Result{}, nil
	}
	cfg, err := remote.ConfigFromSecret(ctx, r.Client, pair.Namespace, *s.peer.KubeconfigSecretRef, r.Kubeconfig)
	if err != nil {
		if !remote.IsInvalidKubeconfig(err) {
			return ctrl.Result{}, err
		}
		s.peerErr = err
		setPeerKubeconfigInvalid(pair, s.peer.Name, err)
		return ctrl.Result{}, nil
	}
	s.peerConfig = cfg

	var endpoints []tandemv1.ProbeEndpoint
	var refused []string
	for i, e := range pair.Spec.Failover.Endpoints {
		if e.Cluster != s.peer.Name {
			continue
		}
		// A URL the operator refuses is the spec's fault, not the peer's:
		// it is not probed rather than counted as a failed probe, which
		// would start a failover.
		if err := r.Peers.Addresses.CheckURL(e.URL); err != nil {
			refused = append(refused, fmt.Sprintf("spec.failover.endpoints[%d].url: %v", i, err))
			continue
		}
		endpoints = append(endpoints, e)
	}
	if len(refused) > 0 {
		s.stall = &metav1.Condition{Reason: tandemv1.InvalidSpecReason, Message: strings.Join(refused, "; ") + "; not probed"}
	}
	spec := remote.ProbeSpec{
		Namespace: pair.Namespace, Pair: pair.Name, Peer: s.peer.Name, Config: cfg, Endpoints: endpoints,
		Policy: pair.Spec.Failover.ProbePolicy, Timeout: probeTimeout(pair), Threshold: pair.Spec.Failover.FailureThreshold,
		Period: probePeriod(pair),
	}
	h := r.Peers.Probe(ctx, spec)
	s.health = h
	setPeerStatus(pair, s.peer.Name, h)
	if !h.Reachable() {
		return ctrl.Result{}, nil
	}
	c, err := r.Peers.Client(pair.Namespace, pair.Name)
	if err != nil {
		// Lost between the probe and now: the next round tells.
		return ctrl.Result{}, nil
	}
	var theirs tandemv1.HAPair
	switch err := readPair(ctx, c, client.ObjectKeyFromObject(pair), &theirs); {
	case err == nil:
		s.peerPair, s.peerAnswered = &theirs, true
	case apierrors.IsNotFound(err):
		s.peerAnswered = true
	case meta.IsNoMatchError(err):
		// The peer answers but does not serve Tandem's API: it knows no
		// record, and nothing can be mirrored to it.
		s.peerAnswered, s.peerLacksAPI = true, true
	default:
		log.FromContext(ctx).V(1).Info("Could not read the pair on the peer", "peer", s.peer.Name, "error", err.Error())
	}
	s.peerClient = c
	return ctrl.Result{}, nil
}

// SyncPausedAnnotation on an HAPair names the Switchover that paused its
// sync: from the end of a planned switchover's final sync until the roles
// are swapped, and during a drill, the active side must not write to the
// standby's workloads.
const SyncPausedAnnotation = "tandem.dev/sync-paused-by"

// syncPausedBy says whether a running Switchover paused the pair's sync. A
// pause whose Switchover is gone or finished is stale and ignored, so a
// crash can never leave a pair paused for good.
func (r *HAPairReconciler) syncPausedBy(ctx context.Context, pair *tandemv1.HAPair) (string, bool, error) {
	name := pair.Annotations[SyncPausedAnnotation]
	if name == "" {
		return "", false, nil
	}
	var so tandemv1.Switchover
	if err := r.Get(ctx, client.ObjectKey{Namespace: pair.Namespace, Name: name}, &so); err != nil {
		if apierrors.IsNotFound(err) {
			return name, false, nil
		}
		return name, false, fmt.Errorf("reading Switchover %s/%s: %w", pair.Namespace, name, err)
	}
	return name, !switchover.Finished(so.Status.Phase), nil
}

// reconcileMembers finds this cluster and its peer in spec.clusters.
func (r *HAPairReconciler) reconcileMembers(_ context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	var local *tandemv1.ClusterSpec
	local, s.peer = members(pair, r.ClusterName)
	if local == nil || s.peer == nil {
		r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
		s.stall = localClusterUnknown(pair, r.ClusterName)
		return ctrl.Result{}, reconcile.TerminalError(fmt.Errorf("cluster %s is not one of spec.clusters", r.ClusterName))
	}
	return ctrl.Result{}, nil
}

// members finds this cluster and its peer in the pair's spec.clusters;
// either is nil when it is not there.
func members(pair *tandemv1.HAPair, local string) (self, peer *tandemv1.ClusterSpec) {
	for i := range pair.Spec.Clusters {
		if c := &pair.Spec.Clusters[i]; c.Name == local {
			self = c
		} else {
			peer = c
		}
	}
	return self, peer
}

// reconcileSync runs, on the active side, one sync per referenced
// SyncPolicy to the standby, and stops the rest.
func (r *HAPairReconciler) reconcileSync(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	if pair.Status.LocalRole != tandemv1.RoleActive {
		r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
		setSyncedOnStandby(pair, pair.Status.ActiveCluster)
		return ctrl.Result{}, nil
	}
	if by, paused, err := r.syncPausedBy(ctx, pair); err != nil || paused {
		if paused {
			r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
			setSyncPaused(pair, by)
		}
		return ctrl.Result{}, err
	}
	switch {
	case s.peer.KubeconfigSecretRef == nil:
		r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
		setSyncedInvalidSpec(pair, s.peerErr.Error())
		return ctrl.Result{}, nil
	case s.peerConfig == nil:
		// The Secret is not watched; the periodic reconcile looks again.
		r.Syncs.StopPair(pair.Namespace, pair.Name, nil)
		setSyncedPeerKubeconfigInvalid(pair, s.peer.Name, s.peerErr)
		return ctrl.Result{}, nil
	}
	target := s.peerConfig
	fingerprint := remote.Fingerprint(target)

	policies, missing, err := pairPolicies(ctx, r.Client, pair)
	undecodable := err
	if err != nil && !isUndecodable(err) {
		return ctrl.Result{}, err
	}
	keep := map[string]bool{}
	var invalid []string
	for _, policy := range policies {
		if policy.Spec.Suspend {
			continue
		}
		if err := replicate.CheckSelection(policy.Spec); err != nil {
			// Its author mends it (its PlanValid says how); the pair's
			// other policies sync on.
			invalid = append(invalid, fmt.Sprintf("SyncPolicy %s: %v", policy.Name, err))
			continue
		}
		key := replicate.Key{Namespace: pair.Namespace, Pair: pair.Name, Policy: policy.Name}
		spec := replicate.Directed(policy.Spec, pair.Spec.Primary, s.peer.Name)
		// The grant narrows the spec without changing its generation: a
		// grant given or withdrawn restarts the sync with its new reach.
		reach := fmt.Sprint(spec.Namespaces.Names, spec.Namespaces.Selector, spec.Resources.Include)
		if err := r.Syncs.Ensure(ctx, key, spec, target, excludedFromSync(pair),
			fmt.Sprintf("%s/%d/%d/%s/%s", fingerprint, pair.Generation, policy.Generation, s.peer.Name, reach)); err != nil {
			return ctrl.Result{}, fmt.Errorf("starting the sync of SyncPolicy %s/%s: %w", pair.Namespace, policy.Name, err)
		}
		keep[policy.Name] = true
	}
	r.Syncs.StopPair(pair.Namespace, pair.Name, keep)

	s.summary = summarize(r.Syncs, pair, keep)
	pair.Status.Sync = s.summary.status()
	setSyncedFromSummary(pair, s.peer.Name, missing, s.summary)
	if undecodable != nil {
		// The others sync on; this one only its author can mend.
		setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionFalse, tandemv1.InvalidSpecReason,
			fmt.Sprintf("spec.syncPolicyRefs: %v; it is not synced", undecodable))
	}
	if len(invalid) > 0 {
		setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionFalse, tandemv1.InvalidSpecReason,
			strings.Join(invalid, "; ")+"; not synced")
	}
	return ctrl.Result{}, nil
}

func (r *HAPairReconciler) emitTransitions(obj, before *tandemv1.HAPair) {
	if r.Events == nil {
		return
	}
	emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.SyncedCondition)
	emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.PeerReachableCondition)
	emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.DegradedCondition)
	emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.FailoverSafeCondition)
	emitConditionTransition(r.Events, obj, before.Status.Conditions, obj.Status.Conditions, tandemv1.VolumesProtectedCondition)
}

// syncSummary adds up the syncs of a pair.
type syncSummary struct {
	running, passed   int
	selected, inSync  int
	outOfSync, failed int
	lastFullSync      time.Time
	lag               time.Duration
	firstErr          error
	failures          []tandemv1.ObjectFailure
}

func summarize(m *replicate.Manager, pair *tandemv1.HAPair, policies map[string]bool) syncSummary {
	var s syncSummary
	for policy := range policies {
		st, ok := m.Status(replicate.Key{Namespace: pair.Namespace, Pair: pair.Name, Policy: policy})
		if !ok {
			continue
		}
		s.running++
		if st.Err != nil && s.firstErr == nil {
			s.firstErr = fmt.Errorf("SyncPolicy %s: %w", policy, st.Err)
		}
		if st.LastFullSync.IsZero() {
			continue
		}
		s.passed++
		s.selected += st.Selected
		s.inSync += st.InSync
		s.outOfSync += st.OutOfSync
		s.failed += len(st.Failures)
		s.failures = append(s.failures, st.FailureList()...)
		if s.lastFullSync.IsZero() || st.LastFullSync.Before(s.lastFullSync) {
			s.lastFullSync = st.LastFullSync
		}
		s.lag = max(s.lag, st.Lag)
	}
	return s
}

func (s syncSummary) status() *tandemv1.SyncSummary {
	out := &tandemv1.SyncSummary{
		Selected:  int32(s.selected),
		InSync:    int32(s.inSync),
		OutOfSync: int32(s.outOfSync),
		Failed:    int32(s.failed),
	}
	if !s.lastFullSync.IsZero() {
		t := metav1.NewTime(s.lastFullSync)
		out.LastFullSync = &t
	}
	if s.lag > 0 {
		out.Lag = &metav1.Duration{Duration: s.lag.Round(time.Millisecond)}
	}
	return out
}
