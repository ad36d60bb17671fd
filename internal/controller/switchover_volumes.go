package controller

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/switchover"
	"github.com/tandem-dev/tandem/internal/volume"
)

// +kubebuilder:rbac:groups=snapshot.storage.k8s.io,resources=volumesnapshots,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=snapshot.storage.k8s.io,resources=volumesnapshotcontents,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get;list;watch

// volumePolicies returns the pair's SyncPolicies that configure
// spec.volumes, directed towards target. Missing and suspended policies
// protect nothing.
func volumePolicies(ctx context.Context, c client.Reader, pair *tandemv1.HAPair, target string) ([]volume.Policy, error) {
	policies, _, err := pairPolicies(ctx, c, pair)
	if err != nil {
		return nil, err
	}
	var out []volume.Policy
	for _, policy := range policies {
		if policy.Spec.Suspend || policy.Spec.Volumes == nil {
			continue
		}
		out = append(out, volume.Policy{Name: policy.Name, Spec: replicate.Directed(policy.Spec, pair.Spec.Primary, target)})
	}
	return out, nil
}

func pairRef(pair *tandemv1.HAPair) volume.PairRef {
	return volume.PairRef{Namespace: pair.Namespace, Name: pair.Name}
}

// csiVolumes carries out the switchover's volume steps with CSI snapshots.
type csiVolumes struct {
	// reader reads this cluster uncached: a snapshot taken a moment ago
	// must be seen.
	reader client.Reader
}

// volumePoll is how often a volume step looks again: snapshots become
// ready within a second or so, and every poll is a few reads.
const volumePoll = 250 * time.Millisecond

const noVolumePolicies = "No SyncPolicy of the pair configures spec.volumes: there are no volumes to carry"

// FinalSnapshot runs on the quiesced active side of a planned switchover
// (or live drill).
func (v csiVolumes) FinalSnapshot(ctx context.Context, m switchover.Move) (switchover.Result, error) {
	policies, err := volumePolicies(ctx, m.Local, m.Pair, m.To)
	if err != nil || len(policies) == 0 {
		return switchover.Skipped(noVolumePolicies), err
	}
	if m.Peer == nil {
		return switchover.Waiting(fmt.Sprintf("cannot reach %s to ship the final snapshots", m.To), volumePoll), nil
	}
	sides := volume.Sides{
		Pair:    pairRef(m.Pair),
		Active:  volume.Cluster{Name: m.From, Read: v.reader, Write: m.Local},
		Standby: &volume.Cluster{Name: m.To, Read: m.Peer, Write: m.Peer},
	}
	done, msg, err := volume.FinalSnapshot(ctx, sides, policies, m.Switchover.Name, string(m.Switchover.UID))
	switch {
	case err != nil:
		// The step's timeout bounds the retries; a snapshot that failed
		// for good fails the step then, and the switchover rolls back.
		return switchover.Waiting(err.Error(), volumePoll), nil
	case !done:
		return switchover.Waiting(msg, volumePoll), nil
	}
	return switchover.Succeeded(msg), nil
}

// Restore creates the protected PVCs on the side taking over: on this
// cluster in a failover, on the peer otherwise.
func (v csiVolumes) Restore(ctx context.Context, m switchover.Move) (switchover.Result, error) {
	policies, err := volumePolicies(ctx, m.Local, m.Pair, m.To)
	if err != nil || len(policies) == 0 {
		return switchover.Skipped(noVolumePolicies), err
	}
	so := m.Switchover
	target := volume.Cluster{Name: m.To, Read: v.reader, Write: m.Local}
	opts := volume.RestoreOptions{Epoch: m.Pair.Status.Epoch}
	switch {
	case so.Spec.Type == tandemv1.SwitchoverFailover:
		// The newest snapshot usable here; its age is data lost.
	case m.Peer == nil:
		return switchover.Waiting(fmt.Sprintf("cannot reach %s to restore its volumes", m.To), volumePoll), nil
	default:
		target = volume.Cluster{Name: m.To, Read: m.Peer, Write: m.Peer}
		if so.Spec.Type == tandemv1.SwitchoverDrill && drillOptions(so).Mode == tandemv1.DrillIsolated {
			opts.Drill = true
		} else {
			opts.Final = so.Name
		}
	}
	res, err := volume.Restore(ctx, target, pairRef(m.Pair), opts)
	if err != nil {
		return switchover.Waiting(err.Error(), volumePoll), nil
	}
	if !res.Done {
		return switchover.Waiting(res.Message, volumePoll), nil
	}
	if step := findStep(so, switchover.StepRestoreVolumes); step != nil && step.StartTime != nil {
		volume.ObserveRestore(pairRef(m.Pair), time.Since(step.StartTime.Time))
	}
	msg := res.Message
	if so.Spec.Type == tandemv1.SwitchoverFailover && !res.Oldest.IsZero() && so.Status.StartTime != nil {
		// RecordDataLoss starts the window here when the object
		// watermark is newer.
		oldest := metav1.NewMicroTime(res.Oldest)
		so.Status.DataLossSince = &oldest
		msg += fmt.Sprintf("; the oldest snapshot restored was taken %s before the failover started: volume writes after it are lost",
			max(0, so.Status.StartTime.Sub(res.Oldest)).Round(time.Millisecond))
	}
	return switchover.Succeeded(msg), nil
}

func findStep(so *tandemv1.Switchover, name string) *tandemv1.StepStatus {
	for i := range so.Status.Steps {
		if so.Status.Steps[i].Name == name {
			return &so.Status.Steps[i]
		}
	}
	return nil
}
