package switchover

import (
	"fmt"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/remote"
)

// Failover step names, in order.
const (
	StepConfirmLoss    = "ConfirmLoss"
	StepPromote        = "BumpEpoch"
	StepRestoreVolumes = "RestoreVolumes"
	StepScaleUp        = "ScaleUp"
	StepFlipTraffic    = "FlipTraffic"
	StepRecord         = "RecordDataLoss"
)

// FailoverSteps are the steps of a Failover.
var FailoverSteps = []string{StepConfirmLoss, StepPromote, StepRestoreVolumes, StepScaleUp, StepFlipTraffic, StepRecord}

// LossCheck is what a Failover needs to know to confirm the active side is
// gone.
type LossCheck struct {
	Pair   *tandemv1.HAPair
	Target string
	Health remote.Health
	Probed bool
}

// Verdict of a check: ok, or wait (something may still change), or fail
// (it will not).
type Verdict struct {
	OK, Fail bool
	Message  string
}

// ConfirmLoss is the chain of checks before a Failover may take the next
// epoch: the target is the pair's standby, the active side was probed, and
// it failed failureThreshold rounds in a row. A peer that answers fails the
// Failover at once: promoting while it serves would make two active sides,
// and a Planned switchover is the way to move a live service.
func ConfirmLoss(c LossCheck) Verdict {
	pair := c.Pair
	active := pair.Status.ActiveCluster
	switch {
	case pair.Spec.Suspend:
		return Verdict{Fail: true, Message: fmt.Sprintf("HAPair %s is suspended (spec.suspend)", pair.Name)}
	case active == "":
		return Verdict{Message: fmt.Sprintf("HAPair %s has no role record on this side yet", pair.Name)}
	case active == c.Target:
		return Verdict{Fail: true, Message: fmt.Sprintf("%s is already the active side at epoch %d", c.Target, pair.Status.Epoch)}
	case pair.Status.LocalRole == tandemv1.RoleFenced:
		return Verdict{Fail: true, Message: fmt.Sprintf("%s is fenced", c.Target)}
	case !c.Probed:
		return Verdict{Message: fmt.Sprintf("%s has not been probed by this operator yet", active)}
	case c.Health.Reachable():
		return Verdict{Fail: true, Message: fmt.Sprintf("%s answers its probes: a failover now would leave two active sides; use a Planned switchover to move a live service", active)}
	case !c.Health.Lost(pair.Spec.Failover.FailureThreshold):
		return Verdict{Message: fmt.Sprintf("waiting for %d failed probe rounds of %s: %s", pair.Spec.Failover.FailureThreshold, active, c.Health.Describe(active))}
	}
	return Verdict{OK: true, Message: c.Health.Describe(active)}
}
