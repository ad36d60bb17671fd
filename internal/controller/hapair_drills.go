package controller

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// DrillOfLabel marks the Switchovers created by a pair's drill schedule.
const DrillOfLabel = "tandem.dev/drill-of"

// maxMissedSlots bounds the walk over missed schedule slots, as the CronJob
// controller does: a schedule that fires every second and an operator down
// for a day must not cost a reconcile 86,400 iterations.
const maxMissedSlots = 1000

// dueSlot returns the most recent slot of the schedule after last and at or
// before now (zero when none is due), and the next slot after now. Missed
// slots collapse into the most recent: an operator that was down runs one
// drill on return, not one per slot it missed.
func dueSlot(sched cron.Schedule, last, now time.Time) (due, next time.Time) {
	for t, i := sched.Next(last), 0; !t.IsZero() && !t.After(now); t, i = sched.Next(t), i+1 {
		due = t
		if i == maxMissedSlots {
			// Too many missed: the most recent slot before now.
			due = lastSlotBefore(sched, now)
			break
		}
	}
	return due, sched.Next(now)
}

func lastSlotBefore(sched cron.Schedule, now time.Time) time.Time {
	// Step back until a slot falls between the probe point and now.
	for back := time.Minute; back < 400*24*time.Hour; back *= 2 {
		var last time.Time
		for t := sched.Next(now.Add(-back)); !t.IsZero() && !t.After(now); t = sched.Next(t) {
			last = t
		}
		if !last.IsZero() {
			return last
		}
	}
	return now
}

// reconcileDrills creates the pair's scheduled drills, like a CronJob
// creates Jobs: on the active side only, one at a time (a slot that comes
// while a drill runs is skipped), and keeps the history limits.
func (r *HAPairReconciler) reconcileDrills(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	d := pair.Spec.Drills
	if d == nil || pair.Status.LocalRole != tandemv1.RoleActive {
		pair.Status.NextDrill = nil
		return ctrl.Result{}, nil
	}
	sched, err := cron.ParseStandard(d.Schedule)
	if err != nil {
		s.stall = drillScheduleInvalid(pair, err)
		return ctrl.Result{}, nil
	}
	now := r.now()
	last := pair.CreationTimestamp.Time
	if t := pair.Status.LastDrillScheduleTime; t != nil {
		last = t.Time
	}
	due, next := dueSlot(sched, last, now)
	nt := metav1.NewTime(next)
	pair.Status.NextDrill = &nt
	if err := r.pruneDrills(ctx, pair); err != nil {
		return ctrl.Result{}, err
	}
	if due.IsZero() || d.Suspend {
		return ctrl.Result{}, nil
	}
	running, err := r.busyWith(ctx, pair)
	if err != nil {
		return ctrl.Result{}, err
	}
	dt := metav1.NewTime(due)
	pair.Status.LastDrillScheduleTime = &dt
	if len(running) > 0 {
		pairEvent(r.Events, pair, corev1.EventTypeWarning, tandemv1.DrillSkippedReason, actionScheduleDrill, "The drill for %s was skipped: %s is still running", due.Format(time.RFC3339), running[0])
		return ctrl.Result{}, nil
	}
	template := d.Template.DeepCopy()
	so := &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: pair.Namespace, Name: fmt.Sprintf("%s-drill-%d", pair.Name, due.Unix()),
			Labels: map[string]string{PairLabel: pair.Name, DrillOfLabel: pair.Name}},
		Spec: tandemv1.SwitchoverSpec{PairRef: pair.Name, Type: tandemv1.SwitchoverDrill, TargetCluster: s.peer.Name, Drill: template,
			Reason: fmt.Sprintf("Scheduled by spec.drills.schedule %q for %s", d.Schedule, due.Format(time.RFC3339))},
	}
	switch err := r.Create(ctx, so); {
	case err == nil:
		pairEvent(r.Events, pair, corev1.EventTypeNormal, tandemv1.DrillStartedReason, actionScheduleDrill, "Started drill %s for the slot %s", so.Name, due.Format(time.RFC3339))
	case apierrors.IsAlreadyExists(err):
		// Created before a crash lost the status write; nothing more.
	default:
		return ctrl.Result{}, fmt.Errorf("creating drill Switchover %s/%s: %w", pair.Namespace, so.Name, err)
	}
	return ctrl.Result{}, nil
}

func (r *HAPairReconciler) scheduledDrills(ctx context.Context, pair *tandemv1.HAPair) ([]tandemv1.Switchover, error) {
	var list tandemv1.SwitchoverList
	if err := r.List(ctx, &list, client.InNamespace(pair.Namespace), client.MatchingLabels{DrillOfLabel: pair.Name}); err != nil {
		return nil, fmt.Errorf("listing the drills of HAPair %s/%s: %w", pair.Namespace, pair.Name, err)
	}
	return list.Items, nil
}

// busyWith lists the pair's unfinished Switchovers of any type: a drill slot
// that comes while one runs is skipped, as a CronJob with concurrency
// Forbid skips, rather than started only to fail its preconditions.
func (r *HAPairReconciler) busyWith(ctx context.Context, pair *tandemv1.HAPair) ([]string, error) {
	running, err := r.Switchovers.Unfinished(ctx, pair.Namespace, pair.Name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range running {
		if d.DeletionTimestamp.IsZero() {
			out = append(out, d.Name)
		}
	}
	return out, nil
}

// pruneDrills deletes finished scheduled drills beyond the history limits,
// oldest first.
func (r *HAPairReconciler) pruneDrills(ctx context.Context, pair *tandemv1.HAPair) error {
	drills, err := r.scheduledDrills(ctx, pair)
	if err != nil {
		return err
	}
	keep := map[bool]int{true: 3, false: 3}
	if l := pair.Spec.Drills.SuccessfulHistoryLimit; l != nil {
		keep[true] = int(*l)
	}
	if l := pair.Spec.Drills.FailedHistoryLimit; l != nil {
		keep[false] = int(*l)
	}
	sort.Slice(drills, func(i, j int) bool { return drills[i].CreationTimestamp.After(drills[j].CreationTimestamp.Time) })
	seen := map[bool]int{}
	for i := range drills {
		d := &drills[i]
		if !switchover.Finished(d.Status.Phase) || !d.DeletionTimestamp.IsZero() {
			continue
		}
		ok := d.Status.Phase == tandemv1.PhaseSucceeded
		seen[ok]++
		if seen[ok] <= keep[ok] {
			continue
		}
		if err := r.Delete(ctx, d); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting old drill %s/%s: %w", d.Namespace, d.Name, err)
		}
	}
	return nil
}
