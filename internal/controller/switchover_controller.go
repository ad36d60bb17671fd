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
	"github.com/tandem-dev/tandem/internal/remote"
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
	// ClusterName is the data center this operator runs in (--cluster-name).
	ClusterName string
	// LocalConfig reaches this cluster; the final sync check reads it.
	LocalConfig *rest.Config
	Pairs       *HAPairReconciler
	Events      events.EventRecorder
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

// SetupWithManager registers the reconciler.
func (r *SwitchoverReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&tandemv1.Switchover{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Named("switchover").
		Complete(r)
}

// switchoverScope is the per-reconcile state.
type switchoverScope struct {
	obj  *tandemv1.Switchover
	pair *tandemv1.HAPair
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
}

// runner is one type of switchover: its steps, how to run each, and how to
// roll back when a step fails before the service moved.
type runner interface {
	steps(s *switchoverScope) []string
	// runsHere says whether this cluster drives the switchover, and if not
	// why.
	runsHere(s *switchoverScope) (bool, string)
	run(ctx context.Context, s *switchoverScope, step string) (switchover.Result, error)
	// canRollBack says whether a failure of step may still be undone.
	canRollBack(step string) bool
	rollBack(ctx context.Context, s *switchoverScope) (switchover.Result, error)
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
	if switchover.Finished(obj.Status.Phase) {
		return ctrl.Result{}, r.releaseFinalizer(ctx, obj)
	}
	if !obj.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(obj, SwitchoverFinalizer) {
		return ctrl.Result{}, nil
	}
	before := obj.DeepCopy()
	defer func() {
		obj.Status.ObservedGeneration = obj.Generation
		setSwitchoverSummary(obj)
		recordRunningStep(obj)
		r.emitTransitions(obj, before)
		if equality.Semantic.DeepEqual(before.Status, obj.Status) {
			return
		}
		if err := r.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching status of Switchover %s: %w", req.NamespacedName, err))
			return
		}
		if switchover.Finished(obj.Status.Phase) {
			// Status writes do not trigger a reconcile; release now.
			retErr = errors.Join(retErr, r.releaseFinalizer(ctx, obj))
		}
	}()

	run := r.runnerFor(obj.Spec.Type)
	s := &switchoverScope{obj: obj, pair: &tandemv1.HAPair{}, timeout: 2 * time.Minute,
		cancelled: obj.Spec.Cancel || !obj.DeletionTimestamp.IsZero()}
	if obj.Spec.StepTimeout != nil && obj.Spec.StepTimeout.Duration > 0 {
		s.timeout = obj.Spec.StepTimeout.Duration
	}
	if err := r.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: obj.Spec.PairRef}, s.pair); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading HAPair %s/%s: %w", obj.Namespace, obj.Spec.PairRef, err)
		}
		r.failFast(obj, tandemv1.InvalidSpecReason, fmt.Sprintf("spec.pairRef: HAPair %s/%s does not exist on %s", obj.Namespace, obj.Spec.PairRef, r.ClusterName))
		return ctrl.Result{}, nil
	}
	if here, why := run.runsHere(s); !here {
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason, why)
		return ctrl.Result{}, nil
	}
	if orig := obj.DeepCopy(); obj.DeletionTimestamp.IsZero() && controllerutil.AddFinalizer(obj, SwitchoverFinalizer) {
		// A patch of the finalizers alone: an Update would send the spec
		// back re-serialised ("2m" as "2m0s") and trip the immutability rule.
		if err := r.Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding the finalizer to Switchover %s: %w", req.NamespacedName, err)
		}
		before.ObjectMeta = *obj.ObjectMeta.DeepCopy()
	}
	r.connect(ctx, s)

	now := r.now()
	steps := run.steps(s)
	d := switchover.Decide(&obj.Status, steps, now, s.timeout)
	switch d.Action {
	case switchover.Done:
		return ctrl.Result{}, nil
	case switchover.Start:
		if s.cancelled {
			r.finish(obj, tandemv1.PhaseCancelled, now)
			return ctrl.Result{}, nil
		}
		switchover.StartAll(&obj.Status, steps, now)
		obj.Status.FromCluster = s.pair.Status.ActiveCluster
		if obj.Spec.Type != tandemv1.SwitchoverDrill || drillOptions(obj).Mode == tandemv1.DrillLive {
			// The epoch the switchover will take; an isolated drill takes
			// none.
			obj.Status.Epoch = s.pair.Status.Epoch + 1
		}
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	case switchover.Begin:
		step := obj.Status.Steps[d.Step].Name
		if s.cancelled && step != switchover.StepRollBack {
			switch {
			case d.Step == 0:
				r.finish(obj, tandemv1.PhaseCancelled, now)
				return ctrl.Result{}, nil
			case run.canRollBack(step):
				switchover.FailAndRollBack(&obj.Status, d.Step, "cancelled before this step", now)
				return ctrl.Result{RequeueAfter: time.Millisecond}, nil
			}
			// Past the point of no return: finish moving the service.
		}
		switchover.BeginStep(&obj.Status, d.Step, now)
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	case switchover.TimeOut:
		step := obj.Status.Steps[d.Step]
		msg := fmt.Sprintf("timed out after %s: %s", s.timeout, step.Message)
		if run.canRollBack(step.Name) {
			switchover.FailAndRollBack(&obj.Status, d.Step, msg, now)
			return ctrl.Result{RequeueAfter: time.Millisecond}, nil
		}
		switchover.EndStep(&obj.Status, d.Step, tandemv1.StepFailed, msg, now)
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.StepTimedOutReason,
			fmt.Sprintf("Step %s timed out after %s: %s", step.Name, s.timeout, step.Message))
		return ctrl.Result{}, nil
	case switchover.Complete:
		r.complete(ctx, s, now)
		return ctrl.Result{}, nil
	}

	step := obj.Status.Steps[d.Step].Name
	if s.cancelled && run.canRollBack(step) {
		// A step that waits (for the final sync, for the target's
		// workloads) is a safe point too.
		switchover.FailAndRollBack(&obj.Status, d.Step, "cancelled while this step ran", now)
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	var res switchover.Result
	var err error
	if step == switchover.StepRollBack {
		res, err = run.rollBack(ctx, s)
	} else {
		res, err = run.run(ctx, s, step)
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("step %s of Switchover %s: %w", step, req.NamespacedName, err)
	}
	now = r.now()
	switch {
	case res.Phase == "":
		obj.Status.Steps[d.Step].Message = res.Message
		return ctrl.Result{RequeueAfter: res.Retry}, nil
	case res.Phase == tandemv1.StepFailed && d.Step == 0:
		switchover.EndStep(&obj.Status, d.Step, res.Phase, res.Message, now)
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.PreconditionFailedReason, "Precondition failed: "+res.Message)
		return ctrl.Result{}, nil
	case res.Phase == tandemv1.StepFailed && run.canRollBack(step):
		switchover.FailAndRollBack(&obj.Status, d.Step, res.Message, now)
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	case res.Phase == tandemv1.StepFailed:
		switchover.EndStep(&obj.Status, d.Step, res.Phase, res.Message, now)
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.StepFailedReason,
			fmt.Sprintf("Step %s failed: %s", step, res.Message))
		return ctrl.Result{}, nil
	}
	switchover.EndStep(&obj.Status, d.Step, res.Phase, res.Message, now)
	stepSeconds.WithLabelValues(string(obj.Spec.Type), step).Observe(now.Sub(obj.Status.Steps[d.Step].StartTime.Time).Seconds())
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// connect finds the peer: its health as probed by the HAPair controller
// and, when it answers, a client for it.
func (r *SwitchoverReconciler) connect(ctx context.Context, s *switchoverScope) {
	pair := s.pair
	s.health, s.probed = r.Pairs.Peers.Health(pair.Namespace, pair.Name)
	for _, c := range pair.Spec.Clusters {
		if c.Name == r.ClusterName {
			continue
		}
		if c.KubeconfigSecretRef == nil {
			s.peerErr = fmt.Errorf("spec.clusters[%s].kubeconfigSecretRef is not set", c.Name)
			return
		}
		cfg, err := remote.ConfigFromSecret(ctx, r.Client, pair.Namespace, *c.KubeconfigSecretRef, r.Pairs.Kubeconfig)
		if err != nil {
			s.peerErr = err
			return
		}
		s.peerCfg = cfg
	}
	s.peer, s.peerErr = r.Pairs.Peers.Client(pair.Namespace, pair.Name)
}

func (r *SwitchoverReconciler) failFast(obj *tandemv1.Switchover, reason, msg string) {
	now := metav1.NewMicroTime(r.now())
	obj.Status.Phase, obj.Status.CompletionTime = tandemv1.PhaseFailed, &now
	setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, reason, msg)
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
	done := metav1.NewTime(now)
	summary := &tandemv1.SwitchoverSummary{Name: s.obj.Name, Type: s.obj.Spec.Type, Phase: phase, CompletionTime: &done, RTO: st.RTO}
	pair := s.pair
	before := pair.DeepCopy()
	if s.obj.Spec.Type == tandemv1.SwitchoverDrill {
		pair.Status.LastDrill = summary
		recordDrill(pair, phase == tandemv1.PhaseSucceeded, now)
	} else {
		pair.Status.LastSwitchover = summary
	}
	if err := r.Status().Patch(ctx, pair, client.MergeFrom(before)); err != nil {
		// The Switchover itself is the record; the pair's summary is a
		// convenience the next switchover refreshes.
		logError(ctx, err, "Could not record the switchover on the pair", "pair", pair.Name)
	}
}

func (r *SwitchoverReconciler) releaseFinalizer(ctx context.Context, obj *tandemv1.Switchover) error {
	orig := obj.DeepCopy()
	if !controllerutil.RemoveFinalizer(obj, SwitchoverFinalizer) {
		return nil
	}
	if err := r.Patch(ctx, obj, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer of Switchover %s/%s: %w", obj.Namespace, obj.Name, err)
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
	r.Events.Eventf(obj, nil, eventType, string(obj.Status.Phase), "Switchover", "%s switchover to %s is %s", obj.Spec.Type, obj.Spec.TargetCluster, obj.Status.Phase)
}

func (r *SwitchoverReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock.Now()
	}
	return time.Now()
}

// setSwitchoverSummary derives Ready from the phase and the steps.
func setSwitchoverSummary(obj *tandemv1.Switchover) {
	st := obj.Status
	switch st.Phase {
	case tandemv1.PhaseSucceeded:
		msg := fmt.Sprintf("%s is active at epoch %d", obj.Spec.TargetCluster, st.Epoch)
		if obj.Spec.Type == tandemv1.SwitchoverDrill && st.Report != nil {
			msg = st.Report.Summary
		}
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionTrue, tandemv1.SucceededReason, msg)
	case tandemv1.PhaseCancelled:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.CancelledReason,
			"Cancelled at a safe point; the pair is as it was before the switchover")
	case tandemv1.PhaseRolledBack:
		setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.RolledBackReason,
			"A step failed before the service moved; the pair is as it was before the switchover: "+failedStep(st))
	case tandemv1.PhaseFailed:
		if obj.Spec.Type == tandemv1.SwitchoverDrill && st.Report != nil {
			setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionFalse, tandemv1.StepFailedReason, st.Report.Summary)
		}
	case tandemv1.PhaseRunning:
		for _, s := range st.Steps {
			if s.Phase == tandemv1.StepRunning || s.Phase == tandemv1.StepPending {
				setCondition(obj, tandemv1.ReadyCondition, metav1.ConditionUnknown, tandemv1.ProgressingReason,
					fmt.Sprintf("Step %s: %s", s.Name, orDash(s.Message)))
				return
			}
		}
	}
}

func failedStep(st tandemv1.SwitchoverStatus) string {
	for _, s := range st.Steps {
		if s.Phase == tandemv1.StepFailed {
			return s.Name + ": " + s.Message
		}
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstN(items []string, n int) string {
	if len(items) <= n {
		return fmt.Sprint(items)
	}
	return fmt.Sprintf("%v and %d more", items[:n], len(items)-n)
}
