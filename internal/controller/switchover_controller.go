package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// SwitchoverFinalizer holds a running Switchover until it has reached a
// safe point, so deleting it cancels instead of abandoning a half-moved
// service.
const SwitchoverFinalizer = "tandem.dev/switchover"

// SwitchoverReconciler reconciles Switchovers through the step machine. A
// Failover runs on the cluster it promotes (the active side is gone); a
// Planned switchover and a drill run on the active side, which reaches the
// standby through its kubeconfig.
type SwitchoverReconciler struct {
	client.Client
	// CheckImages are the image prefixes a drill's check Job may run
	// (--check-job-images); any image when empty.
	CheckImages []string
	// ClusterName is the data center this operator runs in (--cluster-name).
	ClusterName string
	// LocalConfig reaches this cluster; the final sync check reads it.
	LocalConfig *rest.Config
	// Peers hands out clients for the peer and the witness, as the HAPair
	// controller's last probe round resolved them; Witness takes and hands
	// over the witness Lease; Syncs is stopped when a switchover pauses
	// the sync. All three are the HAPair controller's too.
	Peers   *remote.Peers
	Witness *fence.Witness
	Syncs   *replicate.Manager
	// Workloads parks and unparks the pair's workloads on either side;
	// Switchovers finds the pair's other unfinished Switchovers. Both
	// default to the manager's client.
	Workloads   Workloads
	Switchovers Switchovers
	// Heartbeats judges the active side's heartbeat here, shared with the
	// HAPair controller; a Failover does not promote while it is fresh.
	Heartbeats *Heartbeats
	// Grants judges the active side's serving Lease, shared with the
	// HAPair controller.
	Grants *PeerGrants
	Events events.EventRecorder
	// APIReader reads this cluster uncached (the manager's API reader);
	// the cached client when nil.
	APIReader client.Reader
	// Volumes and Traffic carry out the volume and traffic steps. Volumes
	// defaults to CSI snapshots (internal/volume); Traffic to DNS records
	// and routes (internal/traffic).
	Volumes switchover.Volumes
	Traffic switchover.Traffic
	// Clock is injected by tests; the real clock when nil.
	Clock clock.PassiveClock
}

func (r *SwitchoverReconciler) volumes() switchover.Volumes {
	if r.Volumes == nil {
		return csiVolumes{reader: r.reader()}
	}
	return r.Volumes
}

func (r *SwitchoverReconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *SwitchoverReconciler) traffic() switchover.Traffic {
	if r.Traffic == nil {
		return dnsTraffic{reader: r.reader()}
	}
	return r.Traffic
}

// move describes the switchover for the volume and traffic steps.
func (r *SwitchoverReconciler) move(s *switchoverScope) switchover.Move {
	return switchover.Move{Switchover: s.obj, Pair: s.pair, From: s.obj.Status.FromCluster, To: s.obj.Spec.TargetCluster, Here: r.ClusterName, Local: r.Client, Peer: s.peer}
}

// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tandem.dev,resources=switchovers/finalizers,verbs=update
// Promotion, demotion and fencing scale the pair's workloads on this cluster.
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;replicasets;daemonsets,verbs=patch
// +kubebuilder:rbac:groups="",resources=replicationcontrollers,verbs=patch
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=patch
// They park and restore with them the webhook configurations a pair copies
// (only those its policies name; the list comes from the read-all rule).
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=patch

// SetupWithManager registers the reconciler.
func (r *SwitchoverReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Workloads.Policies == nil {
		r.Workloads.Policies = mgr.GetClient()
	}
	if r.Switchovers.Reader == nil {
		r.Switchovers.Reader = mgr.GetClient()
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&tandemv1.Switchover{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Named("switchover").
		Complete(r)
}

// switchoverScope is the per-reconcile state.
type switchoverScope struct {
	obj  *tandemv1.Switchover
	pair *tandemv1.HAPair
	// patch writes the Switchover: its finalizer, then its status once.
	patch *patcher[*tandemv1.Switchover]
	// health of the peer as this operator's probes see it.
	health remote.Health
	probed bool
	// peer reaches the other cluster; nil with peerErr when it does not
	// answer.
	peer      client.Client
	peerCfg   *rest.Config
	peerErr   error
	timeout   time.Duration
	cancelled bool
	// overdue: the running step is past the step timeout and past the
	// point of no return, so it goes on rather than fail.
	overdue bool
	// verdict is why the Switchover stopped or cannot run here, for Ready;
	// nil while the phase says it all.
	verdict *verdict
}

// verdict is a Ready condition the phase alone does not tell.
type verdict struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

// step is one step of a switchover type: its name in status, what it does,
// whether a failure (or a cancel) there may still be undone, and whether,
// past the point of no return, it must finish: giving up on it would leave
// the service half moved (a side promoted with its workloads at 0, a
// drill's copy running next to production), so a timeout marks it overdue
// and it goes on. waits is how long the step waits by design (a live
// drill's hold), added to the step timeout. doneEarlier finds the mark an
// earlier run left when it did the step's work and then crashed or lost
// its status write: the step is then done, run again or not, and even
// past its timeout, since undoing it is no longer up to this side.
type step struct {
	name        string
	run         func(context.Context, *switchoverScope) (switchover.Result, error)
	canRollBack bool
	mustFinish  bool
	waits       func(*switchoverScope) time.Duration
	doneEarlier func(context.Context, *switchoverScope) (switchover.Result, bool)
}

// runner is one type of switchover: its table of steps, where it runs, and
// how to roll back when a step fails before the service moved.
type runner interface {
	steps(s *switchoverScope) []step
	// runsHere says whether this cluster drives the switchover, and if not
	// why.
	runsHere(s *switchoverScope) (bool, string)
	rollBack(ctx context.Context, s *switchoverScope) (switchover.Result, error)
}

// earlierRun is what an earlier run of the step left done, if anything.
func (st step) earlierRun(ctx context.Context, s *switchoverScope) (switchover.Result, bool) {
	if st.doneEarlier == nil {
		return switchover.Result{}, false
	}
	return st.doneEarlier(ctx, s)
}

func stepNames(steps []step) []string {
	names := make([]string, len(steps))
	for i, st := range steps {
		names[i] = st.name
	}
	return names
}

// stepNamed finds a step of the table; the RollBack step a failure
// appends is not in it.
func stepNamed(steps []step, name string) (step, bool) {
	for _, st := range steps {
		if st.name == name {
			return st, true
		}
	}
	return step{}, false
}

func canRollBack(steps []step, name string) bool {
	st, ok := stepNamed(steps, name)
	return ok && st.canRollBack
}

func (r *SwitchoverReconciler) runnerFor(t tandemv1.SwitchoverType) runner {
	switch t {
	case tandemv1.SwitchoverFailover:
		return &failoverRunner{r}
	case tandemv1.SwitchoverPlanned:
		return &plannedRunner{r}
	case tandemv1.SwitchoverDrill:
		return &drillRunner{plannedRunner{r}}
	}
	return nil
}

// Reconcile advances the step machine by one move and patches status once,
// with the resourceVersion as a precondition so two operators can never
// both believe they moved the same step.
func (r *SwitchoverReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := &tandemv1.Switchover{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !switchover.Finished(obj.Status.Phase) {
		// A running Switchover is read again past the cache. The step
		// machine requeues itself a millisecond after each status write,
		// sooner than the watch brings that write back: from the cached
		// copy it would run the step it has just recorded a second time,
		// and then lose the status write to the optimistic lock. Ended
		// ones, the many, stay on the cache.
		if err := r.reader().Get(ctx, req.NamespacedName, obj); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	if obj.Undecodable() != nil {
		// Its steps are unknown, so none is run or rolled back, and its
		// finalizer stays until the field is fixed or removed by hand.
		return ctrl.Result{}, reportUndecodable(ctx, r.Client, r.Events, obj)
	}
	s := &switchoverScope{obj: obj, pair: &tandemv1.HAPair{}, patch: newPatcher(r.Client, obj), timeout: 2 * time.Minute,
		cancelled: obj.Spec.Cancel || !obj.DeletionTimestamp.IsZero()}
	if switchover.Finished(obj.Status.Phase) {
		return ctrl.Result{}, r.releaseFinalizer(ctx, s)
	}
	if !obj.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(obj, SwitchoverFinalizer) {
		return ctrl.Result{}, nil
	}
	defer func() {
		retErr = errors.Join(retErr, r.record(ctx, s, retErr))
	}()
	if obj.Spec.StepTimeout != nil && obj.Spec.StepTimeout.Duration > 0 {
		s.timeout = obj.Spec.StepTimeout.Duration
	}
	if err := r.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: obj.Spec.PairRef}, s.pair); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading HAPair %s/%s: %w", obj.Namespace, obj.Spec.PairRef, err)
		}
		r.failFast(s, tandemv1.InvalidSpecReason, fmt.Sprintf("spec.pairRef: HAPair %s/%s does not exist on %s", obj.Namespace, obj.Spec.PairRef, r.ClusterName))
		return ctrl.Result{}, nil
	}
	if s.pair.Undecodable() != nil {
		// Retried with back-off: the step waits for the pair to be fixed.
		return ctrl.Result{}, fmt.Errorf("spec.pairRef: %w", undecodableRef("HAPair", s.pair))
	}
	run := r.runnerFor(obj.Spec.Type)
	if here, why := run.runsHere(s); !here {
		s.verdict = &verdict{metav1.ConditionUnknown, tandemv1.ProgressingReason, why}
		return ctrl.Result{}, nil
	}
	if obj.DeletionTimestamp.IsZero() && controllerutil.AddFinalizer(obj, SwitchoverFinalizer) {
		if err := s.patch.Patch(ctx, obj, false); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding the finalizer to Switchover %s: %w", req.NamespacedName, err)
		}
	}
	r.connect(s)
	return r.decide(ctx, s, run)
}

// record writes what the reconcile decided: Ready, Reconciling, Stalled
// and the metrics from the status, the status itself under the optimistic
// lock, and, once the Switchover has ended, its finalizer released. A
// reconcile that failed midway does not claim to have observed the spec.
func (r *SwitchoverReconciler) record(ctx context.Context, s *switchoverScope, reconcileErr error) error {
	obj, before := s.obj, s.patch.Before()
	if observedSpec(reconcileErr) {
		obj.Status.ObservedGeneration = obj.Generation
	}
	setSwitchoverSummary(obj, s.verdict)
	recordRunningStep(obj)
	r.emitTransitions(obj, before)
	if equality.Semantic.DeepEqual(before.Status, obj.Status) {
		return nil
	}
	if err := s.patch.PatchStatus(ctx, obj, true); err != nil {
		return fmt.Errorf("patching status of Switchover %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	if switchover.Finished(obj.Status.Phase) {
		// Status writes do not trigger a reconcile; release now.
		return r.releaseFinalizer(ctx, s)
	}
	return nil
}

// decide moves the step machine: start, begin a step, time one out, roll
// back on a cancel, complete, or run the current step.
func (r *SwitchoverReconciler) decide(ctx context.Context, s *switchoverScope, run runner) (ctrl.Result, error) {
	obj, now := s.obj, r.now()
	steps := run.steps(s)
	d := switchover.Decide(&obj.Status, stepNames(steps), now, s.timeout)
	again := ctrl.Result{RequeueAfter: time.Millisecond}
	switch d.Action {
	case switchover.Done:
		return ctrl.Result{}, nil
	case switchover.Start:
		if s.cancelled {
			r.finish(obj, tandemv1.PhaseCancelled, now)
			return ctrl.Result{}, nil
		}
		switchover.StartAll(&obj.Status, stepNames(steps), now)
		obj.Status.FromCluster = s.pair.Status.ActiveCluster
		if obj.Spec.Type != tandemv1.SwitchoverDrill || drillOptions(obj).Mode == tandemv1.DrillLive {
			// The epoch the switchover will take; an isolated drill takes
			// none.
			obj.Status.Epoch = s.pair.Status.Epoch + 1
		}
		return again, nil
	case switchover.Begin:
		name := obj.Status.Steps[d.Step].Name
		if s.cancelled && name != switchover.StepRollBack {
			switch {
			case d.Step == 0:
				r.finish(obj, tandemv1.PhaseCancelled, now)
				return ctrl.Result{}, nil
			case canRollBack(steps, name):
				switchover.FailAndRollBack(&obj.Status, d.Step, "cancelled before this step", now)
				return again, nil
			}
			// Past the point of no return: finish moving the service.
		}
		switchover.BeginStep(&obj.Status, d.Step, now)
		return again, nil
	case switchover.TimeOut:
		st := obj.Status.Steps[d.Step]
		def, _ := stepNamed(steps, st.Name)
		if res, ok := def.earlierRun(ctx, s); ok {
			return r.recordStep(s, steps, d.Step, res), nil
		}
		msg := fmt.Sprintf("timed out after %s: %s", s.timeout, st.Message)
		switch {
		case def.waits != nil && st.StartTime != nil && now.Sub(st.StartTime.Time) <= s.timeout+def.waits(s):
			// Still inside the time it waits by design.
		case canRollBack(steps, st.Name):
			switchover.FailAndRollBack(&obj.Status, d.Step, msg, now)
			return again, nil
		case def.mustFinish || st.Name == switchover.StepRollBack:
			// The step goes on; the Switchover says it is overdue and on
			// what.
			s.overdue = true
		default:
			switchover.EndStep(&obj.Status, d.Step, tandemv1.StepFailed, msg, now)
			s.verdict = &verdict{metav1.ConditionFalse, tandemv1.StepTimedOutReason, fmt.Sprintf("Step %s %s", st.Name, msg)}
			return ctrl.Result{}, nil
		}
	case switchover.Complete:
		r.complete(ctx, s, now)
		return ctrl.Result{}, nil
	}
	name := obj.Status.Steps[d.Step].Name
	if s.cancelled && canRollBack(steps, name) {
		// A step that waits (for the final sync, for the target's
		// workloads) is a safe point too.
		switchover.FailAndRollBack(&obj.Status, d.Step, "cancelled while this step ran", now)
		return again, nil
	}
	do := run.rollBack
	if st, ok := stepNamed(steps, name); ok {
		if res, ok := st.earlierRun(ctx, s); ok {
			return r.recordStep(s, steps, d.Step, res), nil
		}
		do = st.run
	} else if name != switchover.StepRollBack {
		do = func(context.Context, *switchoverScope) (switchover.Result, error) {
			return switchover.Failed("unknown step " + name), nil
		}
	}
	res, err := do(ctx, s)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("step %s of Switchover %s/%s: %w", name, obj.Namespace, obj.Name, err)
	}
	return r.recordStep(s, steps, d.Step, res), nil
}

// overdueVerdict says that a step past the point of no return has run
// longer than the step timeout and is still retrying: only a fix of what
// it waits for (named in the message) moves it on.
func overdueVerdict(s *switchoverScope, i int) *verdict {
	st := s.obj.Status.Steps[i]
	return &verdict{metav1.ConditionFalse, tandemv1.StepTimedOutReason,
		fmt.Sprintf("Step %s has run longer than its %s timeout and cannot be undone, the service has moved: still retrying: %s",
			st.Name, s.timeout, orDash(st.Message))}
}

// recordStep records what running step i found: still waiting, failed
// (rolling back where it can), or done.
func (r *SwitchoverReconciler) recordStep(s *switchoverScope, steps []step, i int, res switchover.Result) ctrl.Result {
	obj, now := s.obj, r.now()
	name := obj.Status.Steps[i].Name
	switch {
	case res.Phase == "":
		obj.Status.Steps[i].Message = res.Message
		if s.overdue {
			s.verdict = overdueVerdict(s, i)
		}
		return ctrl.Result{RequeueAfter: res.Retry}
	case res.Phase == tandemv1.StepFailed && i == 0:
		switchover.EndStep(&obj.Status, i, res.Phase, res.Message, now)
		s.verdict = &verdict{metav1.ConditionFalse, tandemv1.PreconditionFailedReason, "Precondition failed: " + res.Message}
		return ctrl.Result{}
	case res.Phase == tandemv1.StepFailed && canRollBack(steps, name):
		switchover.FailAndRollBack(&obj.Status, i, res.Message, now)
		return ctrl.Result{RequeueAfter: time.Millisecond}
	case res.Phase == tandemv1.StepFailed:
		switchover.EndStep(&obj.Status, i, res.Phase, res.Message, now)
		s.verdict = &verdict{metav1.ConditionFalse, tandemv1.StepFailedReason, fmt.Sprintf("Step %s failed: %s", name, res.Message)}
		return ctrl.Result{}
	}
	switchover.EndStep(&obj.Status, i, res.Phase, res.Message, now)
	stepSeconds.WithLabelValues(string(obj.Spec.Type), name).Observe(now.Sub(obj.Status.Steps[i].StartTime.Time).Seconds())
	return ctrl.Result{RequeueAfter: time.Millisecond}
}

// connect finds the peer: its health as probed by the HAPair controller
// and, when it answers, a client for it (bounded by the probe timeout).
func (r *SwitchoverReconciler) connect(s *switchoverScope) {
	pair := s.pair
	s.health, s.probed = r.Peers.Health(pair.Namespace, pair.Name)
	s.peerCfg, s.peerErr = r.Peers.Config(pair.Namespace, pair.Name)
	if s.peerErr != nil {
		return
	}
	s.peer, s.peerErr = r.Peers.Client(pair.Namespace, pair.Name)
}

func (r *SwitchoverReconciler) failFast(s *switchoverScope, reason, msg string) {
	now := metav1.NewMicroTime(r.now())
	s.obj.Status.Phase, s.obj.Status.CompletionTime = tandemv1.PhaseFailed, &now
	s.verdict = &verdict{metav1.ConditionFalse, reason, msg}
}

func (r *SwitchoverReconciler) finish(obj *tandemv1.Switchover, phase tandemv1.SwitchoverPhase, now time.Time) {
	t := metav1.NewMicroTime(now)
	obj.Status.Phase, obj.Status.CompletionTime = phase, &t
}

// complete ends a Switchover whose steps all ran: Succeeded, or RolledBack
// (Cancelled when a cancel caused the rollback), and records it on the pair.
func (r *SwitchoverReconciler) complete(ctx context.Context, s *switchoverScope, now time.Time) {
	st := &s.obj.Status
	phase := tandemv1.PhaseSucceeded
	switch {
	case switchover.RolledBack(st) && s.cancelled:
		phase = tandemv1.PhaseCancelled
	case switchover.RolledBack(st) && s.obj.Spec.Type == tandemv1.SwitchoverDrill:
		phase = tandemv1.PhaseFailed
	case switchover.RolledBack(st):
		phase = tandemv1.PhaseRolledBack
	case s.obj.Spec.Type == tandemv1.SwitchoverDrill && st.Report != nil && !st.Report.Passed:
		// A drill whose checks failed ran every step and still failed.
		phase = tandemv1.PhaseFailed
	}
	if rep := st.Report; rep != nil && s.obj.Spec.Type != tandemv1.SwitchoverDrill {
		// The report of a switchover or failover holds its traffic times;
		// it passed when every step did.
		rep.Passed = phase == tandemv1.PhaseSucceeded
	}
	r.finish(s.obj, phase, now)
	if st.RTO != nil {
		rtoSeconds.WithLabelValues(string(s.obj.Spec.Type)).Observe(st.RTO.Seconds())
	}
	if err := r.recordOnPair(ctx, s, phase, now); err != nil {
		// The Switchover itself is the record; the pair's summary is a
		// convenience the next switchover refreshes.
		logError(ctx, err, "Could not record the switchover on the pair", "pair", s.pair.Name)
	}
}

// recordOnPair writes the ended Switchover into the pair's status on this
// cluster: its last switchover or last drill.
func (r *SwitchoverReconciler) recordOnPair(ctx context.Context, s *switchoverScope, phase tandemv1.SwitchoverPhase, now time.Time) error {
	done := metav1.NewTime(now)
	summary := &tandemv1.SwitchoverSummary{Name: s.obj.Name, Type: s.obj.Spec.Type, Phase: phase, CompletionTime: &done, RTO: s.obj.Status.RTO}
	pair := s.pair
	before := pair.DeepCopy()
	if s.obj.Spec.Type == tandemv1.SwitchoverDrill {
		pair.Status.LastDrill = summary
		if phase == tandemv1.PhaseSucceeded {
			pair.Status.LastPassedDrill = summary
		}
	} else {
		pair.Status.LastSwitchover = summary
	}
	return r.Status().Patch(ctx, pair, client.MergeFrom(before))
}

// releaseFinalizer lets an ended Switchover go, once its write fence (a
// planned switchover's) is lifted: the finalizer is what guarantees that no
// fence outlives its Switchover, deleted or not.
func (r *SwitchoverReconciler) releaseFinalizer(ctx context.Context, s *switchoverScope) error {
	if !controllerutil.ContainsFinalizer(s.obj, SwitchoverFinalizer) {
		return nil
	}
	if err := r.liftWriteFence(ctx, s.obj); err != nil {
		return err
	}
	controllerutil.RemoveFinalizer(s.obj, SwitchoverFinalizer)
	if err := s.patch.Patch(ctx, s.obj, false); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer of Switchover %s/%s: %w", s.obj.Namespace, s.obj.Name, err)
	}
	return nil
}

func (r *SwitchoverReconciler) emitTransitions(obj, before *tandemv1.Switchover) {
	if r.Events == nil || before.Status.Phase == obj.Status.Phase || obj.Status.Phase == "" {
		return
	}
	eventType := corev1.EventTypeNormal
	switch obj.Status.Phase {
	case tandemv1.PhaseFailed, tandemv1.PhaseRolledBack, tandemv1.PhaseCancelled:
		eventType = corev1.EventTypeWarning
	}
	r.Events.Eventf(obj, nil, eventType, string(obj.Status.Phase), string(obj.Spec.Type), "%s switchover to %s is %s", obj.Spec.Type, obj.Spec.TargetCluster, obj.Status.Phase)
}

func (r *SwitchoverReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock.Now()
	}
	return time.Now()
}
