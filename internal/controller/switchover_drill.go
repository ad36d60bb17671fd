package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/switchover"
	"github.com/tandem-dev/tandem/internal/volume"
)

// drillRunner rehearses a switchover. Isolated: the sync pauses, the
// standby's workloads come up next to production (roles, epoch and traffic
// untouched), the checks run against them, they go back to 0 and the sync
// resumes; the time to ready is the RTO the rehearsal measured. Live: a
// Planned switchover, a hold, and a Planned switchover back.
type drillRunner struct{ plannedRunner }

func drillOptions(obj *tandemv1.Switchover) tandemv1.DrillOptions {
	if obj.Spec.Drill != nil {
		return *obj.Spec.Drill
	}
	return tandemv1.DrillOptions{Mode: tandemv1.DrillIsolated}
}

// steps of a drill: isolated, or live (a Planned switchover, a hold and a
// Planned switchover back). An isolated drill can be cleaned up after a
// failure in any step until its checks have run.
func (d *drillRunner) steps(s *switchoverScope) []step {
	r := d.r
	if drillOptions(s.obj).Mode == tandemv1.DrillLive {
		return append(d.plannedRunner.steps(s),
			step{name: switchover.StepHold, run: r.hold, mustFinish: true, waits: holdFor},
			step{name: switchover.StepSwitchBack, run: r.switchBack, mustFinish: true},
			step{name: switchover.StepReport, run: r.writeReport},
		)
	}
	return []step{
		{name: switchover.StepPreconditions, run: r.plannedPreconditions},
		{name: switchover.StepPauseSync, run: r.pauseSync, canRollBack: true},
		{name: switchover.StepRestoreVolumes, run: r.restoreVolumes, canRollBack: true},
		{name: switchover.StepStartStandby, run: r.startStandby, canRollBack: true},
		{name: switchover.StepPublishDrillName, run: r.publishDrillName, canRollBack: true},
		{name: switchover.StepRunChecks, run: r.runChecks, canRollBack: true},
		// The standby's copy runs next to production and the sync is
		// paused until these finish.
		{name: switchover.StepStopStandby, run: r.stopStandby, mustFinish: true},
		{name: switchover.StepWithdrawDrillName, run: r.withdrawDrillName, mustFinish: true},
		{name: switchover.StepResumeSync, run: r.resumeSync, mustFinish: true},
		{name: switchover.StepReport, run: r.writeReport},
	}
}

// startStandby brings the standby's copy up next to production; the time
// to ready is the RTO the rehearsal measured.
func (r *SwitchoverReconciler) startStandby(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	res, err := r.startOnPeer(ctx, s)
	if err == nil && res.Phase == tandemv1.StepSucceeded {
		report(s).TimeToReady = s.obj.Status.RTO
	}
	return res, err
}

func (r *SwitchoverReconciler) publishDrillName(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	return r.traffic().PublishDrill(ctx, r.move(s))
}

func (r *SwitchoverReconciler) withdrawDrillName(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	return r.traffic().WithdrawDrill(ctx, r.move(s))
}

// stopStandby parks the standby's copy again and deletes what the drill
// made there.
func (r *SwitchoverReconciler) stopStandby(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	if s.peer == nil {
		return switchover.Waiting(fmt.Sprintf("cannot reach %s: %v", s.obj.Spec.TargetCluster, s.peerErr), time.Second), nil
	}
	if err := r.endSwitchoverServing(ctx, s); err != nil {
		return switchover.Result{}, err
	}
	n, err := r.Workloads.Park(ctx, s.peer, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	if err := r.deleteCheckJobs(ctx, s); err != nil {
		return switchover.Result{}, err
	}
	left, err := r.deleteDrillClaims(ctx, s)
	if err != nil {
		return switchover.Result{}, err
	}
	msg := fmt.Sprintf("%d workloads on %s back at 0, the check Jobs deleted", n, s.obj.Spec.TargetCluster)
	if len(left) > 0 {
		// Deleted; their finalizers are the storage's business. The
		// drill does not hold the sync paused for them, and a later
		// restore replaces any that linger.
		msg += fmt.Sprintf(", the drill's PVCs deleted (%s)", firstN(left, 3))
	}
	return switchover.Succeeded(msg), nil
}

func (r *SwitchoverReconciler) resumeSync(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	if err := r.pausePairSync(ctx, s.pair, ""); err != nil {
		return switchover.Result{}, err
	}
	return switchover.Succeeded("The sync resumed; its next pass repairs anything the drill left"), nil
}

// rollBack after a failed isolated drill only cleans up: the standby back
// at 0 and the sync running.
func (d *drillRunner) rollBack(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	if drillOptions(s.obj).Mode == tandemv1.DrillLive {
		return d.plannedRunner.rollBack(ctx, s)
	}
	r := d.r
	if s.peer == nil {
		return switchover.Waiting(fmt.Sprintf("waiting for %s to answer, to scale it back to 0: %v", s.obj.Spec.TargetCluster, s.peerErr), probePeriod(s.pair)), nil
	}
	if err := r.endSwitchoverServing(ctx, s); err != nil {
		return switchover.Result{}, err
	}
	if _, err := r.Workloads.Park(ctx, s.peer, s.pair); err != nil {
		return switchover.Result{}, err
	}
	if res, err := r.traffic().WithdrawDrill(ctx, r.move(s)); err != nil || res.Phase == "" {
		return res, err
	}
	if err := r.deleteCheckJobs(ctx, s); err != nil {
		return switchover.Result{}, err
	}
	if _, err := r.deleteDrillClaims(ctx, s); err != nil {
		return switchover.Result{}, err
	}
	if err := r.pausePairSync(ctx, s.pair, ""); err != nil {
		return switchover.Result{}, err
	}
	if _, err := r.writeReport(ctx, s); err != nil {
		return switchover.Result{}, err
	}
	return switchover.Succeeded(fmt.Sprintf("%s back at 0, the sync resumed", s.obj.Spec.TargetCluster)), nil
}

func report(s *switchoverScope) *tandemv1.SwitchoverReport {
	if s.obj.Status.Report == nil {
		s.obj.Status.Report = &tandemv1.SwitchoverReport{}
	}
	return s.obj.Status.Report
}

// runChecks runs the drill's checks against the standby's running copy,
// each once, and records the results; a failed check fails the drill's
// report, not the step, so the cleanup always runs.
func (r *SwitchoverReconciler) runChecks(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	if s.peer != nil {
		// The standby's fence sidecars serve the drill's checks.
		if err := r.openSwitchoverServing(ctx, s); err != nil {
			return switchover.Result{}, err
		}
	}
	rep := report(s)
	opts := drillOptions(s.obj)
	done := map[string]bool{}
	for _, c := range rep.Checks {
		done[c.Name] = true
	}
	for _, c := range opts.Checks {
		if done[c.Name] {
			continue
		}
		start := r.now()
		var err error
		var pending bool
		switch {
		case c.HTTP != nil:
			if err = r.Peers.CheckHTTP(ctx, c.HTTP.URL, c.HTTP.ExpectStatus, 10*time.Second); err != nil {
				err = fmt.Errorf("%s %w", c.HTTP.URL, err)
			}
		case c.Job != nil:
			pending, err = r.jobCheck(ctx, s, c.Name, c.Job)
		default:
			err = fmt.Errorf("the check has neither http nor job")
		}
		if pending {
			return switchover.Waiting(fmt.Sprintf("check %s: the Job runs on %s", c.Name, s.obj.Spec.TargetCluster), time.Second), nil
		}
		res := tandemv1.CheckResult{Name: c.Name, Passed: err == nil, Duration: &metav1.Duration{Duration: r.now().Sub(start).Round(time.Millisecond)}}
		if err != nil {
			res.Message = err.Error()
		}
		rep.Checks = append(rep.Checks, res)
	}
	passed := 0
	for _, c := range rep.Checks {
		if c.Passed {
			passed++
		}
	}
	return switchover.Succeeded(fmt.Sprintf("%d of %d checks passed", passed, len(rep.Checks))), nil
}

// jobCheck runs a Job on the standby and reports whether it is still
// running, or how it ended. The Job is named after the drill and the check,
// so a repeated reconcile finds it instead of starting another.
func (r *SwitchoverReconciler) jobCheck(ctx context.Context, s *switchoverScope, name string, c *tandemv1.JobCheck) (bool, error) {
	if s.peer == nil {
		return false, fmt.Errorf("cannot reach %s: %v", s.obj.Spec.TargetCluster, s.peerErr)
	}
	if err := jobNamespaceGranted(ctx, r.Client, s.obj.Namespace, c.Namespace); err != nil {
		return false, err
	}
	if err := checkJobAllowed(ctx, s.peer, s.obj.Spec.TargetCluster, name, c, r.CheckImages); err != nil {
		return false, err
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: truncate(s.obj.Name+"-"+name, 63),
		Labels: map[string]string{PairLabel: s.pair.Name, replicate.DrillLabel: s.obj.Name}}}
	err := s.peer.Get(ctx, client.ObjectKeyFromObject(job), job)
	if apierrors.IsNotFound(err) {
		job.Spec = batchv1.JobSpec{
			BackoffLimit:            ptr.To(int32(0)),
			TTLSecondsAfterFinished: ptr.To(int32(3600)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy:      corev1.RestartPolicyNever,
				ServiceAccountName: c.ServiceAccountName,
				// A token only for a ServiceAccount its owner lent to checks.
				AutomountServiceAccountToken: ptr.To(c.ServiceAccountName != ""),
				Containers: []corev1.Container{{Name: "check", Image: c.Image, Command: c.Command,
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					}}},
			}},
		}
		if err := s.peer.Create(ctx, job); err != nil {
			return false, fmt.Errorf("creating Job %s/%s on %s: %w", job.Namespace, job.Name, s.obj.Spec.TargetCluster, err)
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, cond := range job.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete:
			return false, nil
		case batchv1.JobFailed:
			return false, fmt.Errorf("Job %s/%s failed: %s", job.Namespace, job.Name, cond.Message)
		}
	}
	if timeout := c.Timeout; timeout != nil && r.now().Sub(job.CreationTimestamp.Time) > timeout.Duration {
		return false, fmt.Errorf("Job %s/%s did not finish within %s", job.Namespace, job.Name, timeout.Duration)
	}
	return true, nil
}

// holdFor is how long a live drill's standby serves before it switches
// back.
func holdFor(s *switchoverScope) time.Duration {
	if h := drillOptions(s.obj).HoldFor; h != nil {
		return h.Duration
	}
	return 5 * time.Minute
}

// hold keeps a live drill on the standby for holdFor.
func (r *SwitchoverReconciler) hold(_ context.Context, s *switchoverScope) (switchover.Result, error) {
	holdFor := holdFor(s)
	var since time.Time
	for _, st := range s.obj.Status.Steps {
		if st.Name == switchover.StepHold && st.StartTime != nil {
			since = st.StartTime.Time
		}
	}
	if left := holdFor - r.now().Sub(since); left > 0 {
		return switchover.Waiting(fmt.Sprintf("%s serves; switching back in %s", s.obj.Spec.TargetCluster, left.Round(time.Second)), left), nil
	}
	return switchover.Succeeded(fmt.Sprintf("%s served for %s", s.obj.Spec.TargetCluster, holdFor)), nil
}

// switchBack creates, on the side that is now active, the Planned
// switchover back to this side, and waits for it.
func (r *SwitchoverReconciler) switchBack(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	if s.peer == nil {
		return switchover.Waiting(fmt.Sprintf("cannot reach %s: %v", s.obj.Spec.TargetCluster, s.peerErr), time.Second), nil
	}
	back := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: s.obj.Namespace, Name: truncate(s.obj.Name+"-back", 253),
		Labels: map[string]string{PairLabel: s.pair.Name}}}
	if err := s.peer.Get(ctx, client.ObjectKeyFromObject(back), back); apierrors.IsNotFound(err) {
		back.Spec = tandemv1.SwitchoverSpec{PairRef: s.pair.Name, Type: tandemv1.SwitchoverPlanned, TargetCluster: r.ClusterName,
			StepTimeout: s.obj.Spec.StepTimeout, Reason: "The switch back of live drill " + s.obj.Name}
		if err := s.peer.Create(ctx, back); err != nil {
			return switchover.Result{}, fmt.Errorf("creating Switchover %s on %s: %w", back.Name, s.obj.Spec.TargetCluster, err)
		}
		return switchover.Waiting(fmt.Sprintf("Switchover %s on %s moves the service back", back.Name, s.obj.Spec.TargetCluster), time.Second), nil
	} else if err != nil {
		return switchover.Waiting(err.Error(), time.Second), nil
	}
	switch back.Status.Phase {
	case tandemv1.PhaseSucceeded:
		return switchover.Succeeded(fmt.Sprintf("Switchover %s moved the service back to %s", back.Name, r.ClusterName)), nil
	case tandemv1.PhaseFailed, tandemv1.PhaseRolledBack, tandemv1.PhaseCancelled:
		return switchover.Failed(fmt.Sprintf("Switchover %s back to %s ended %s", back.Name, r.ClusterName, back.Status.Phase)), nil
	}
	return switchover.Waiting(fmt.Sprintf("Switchover %s back to %s is %s", back.Name, r.ClusterName, orPending(back.Status.Phase)), time.Second), nil
}

// writeReport sums the drill up.
func (r *SwitchoverReconciler) writeReport(_ context.Context, s *switchoverScope) (switchover.Result, error) {
	rep := report(s)
	if rep.TimeToReady == nil {
		rep.TimeToReady = s.obj.Status.RTO
	}
	var failed []string
	for _, c := range rep.Checks {
		if !c.Passed {
			failed = append(failed, c.Name+": "+c.Message)
		}
	}
	for _, st := range s.obj.Status.Steps {
		if st.Phase == tandemv1.StepFailed {
			failed = append(failed, "step "+st.Name+": "+st.Message)
		}
	}
	rep.Passed = len(failed) == 0 && rep.TimeToReady != nil
	ready := "not reached"
	if rep.TimeToReady != nil {
		ready = rep.TimeToReady.Duration.String()
	}
	mode := drillOptions(s.obj).Mode
	if rep.Passed {
		rep.Summary = fmt.Sprintf("%s drill passed: %s ready in %s, %d checks passed", mode, s.obj.Spec.TargetCluster, ready, len(rep.Checks))
	} else {
		rep.Summary = fmt.Sprintf("%s drill failed (time to ready %s): %s", mode, ready, strings.Join(failed, "; "))
	}
	return switchover.Succeeded(rep.Summary), nil
}

// deleteCheckJobs removes the drill's check Jobs (and their pods) from the
// standby.
func (r *SwitchoverReconciler) deleteCheckJobs(ctx context.Context, s *switchoverScope) error {
	for _, c := range drillOptions(s.obj).Checks {
		if c.Job == nil {
			continue
		}
		err := s.peer.DeleteAllOf(ctx, &batchv1.Job{}, client.InNamespace(c.Job.Namespace),
			client.MatchingLabels{replicate.DrillLabel: s.obj.Name}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the check Jobs of drill %s on %s: %w", s.obj.Name, s.obj.Spec.TargetCluster, err)
		}
	}
	return nil
}

// deleteDrillClaims deletes the PVCs the drill restored on the standby and
// names those not gone yet.
func (r *SwitchoverReconciler) deleteDrillClaims(ctx context.Context, s *switchoverScope) ([]string, error) {
	c := volume.Cluster{Name: s.obj.Spec.TargetCluster, Read: s.peer, Write: s.peer}
	return volume.DeleteDrillClaims(ctx, c, pairRef(s.pair))
}
