package switchover

import (
	"fmt"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/remote"
)

// Failover step names; the controller's table of the Failover type
// (internal/controller/switchover_failover.go) orders them.
const (
	StepConfirmLoss    = "ConfirmLoss"
	StepBumpEpoch      = "BumpEpoch"
	StepRestoreVolumes = "RestoreVolumes"
	StepScaleUp        = "ScaleUp"
	StepFlipTraffic    = "FlipTraffic"
	StepRecordDataLoss = "RecordDataLoss"
)

// LossCheck is what a Failover needs to know to confirm the active side is
// gone.
type LossCheck struct {
	Pair   *tandemv1.HAPair
	Target string
	Health remote.Health
	Probed bool
	// PeerFenced: the active side answers, and its own record says it is
	// Fenced at this side's epoch; it serves nothing, and it cannot
	// unfence without the witness Lease the Failover is about to take.
	PeerFenced bool
	// Heartbeat is how long ago this process last saw the active side's
	// heartbeat here change, and HeartbeatFresh whether that is within its
	// duration: an active side that still writes here is alive, whatever
	// the probes from here say (a partition one way).
	Heartbeat      time.Duration
	HeartbeatFresh bool
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
	case c.HeartbeatFresh:
		return Verdict{Message: fmt.Sprintf("%s renewed its heartbeat here %s ago: it is alive and reaches this side, whatever the probes from here say", active, c.Heartbeat.Round(100*time.Millisecond))}
	case c.Health.Reachable() && c.PeerFenced:
		return Verdict{OK: true, Message: fmt.Sprintf("%s answers but is fenced: it serves nothing", active)}
	case c.Health.Reachable():
		return Verdict{Fail: true, Message: fmt.Sprintf("%s answers its probes: a failover now would leave two active sides; use a Planned switchover to move a live service", active)}
	case !c.Health.Lost(pair.Spec.Failover.FailureThreshold):
		return Verdict{Message: fmt.Sprintf("waiting for %d failed probe rounds of %s: %s", pair.Spec.Failover.FailureThreshold, active, c.Health.Describe(active))}
	}
	return Verdict{OK: true, Message: c.Health.Describe(active)}
}

// Planned switchover step names, ordered by the controller's table
// (internal/controller/switchover_planned.go). The active side runs them.
const (
	StepPreconditions       = "Preconditions"
	StepQuiesce             = "Quiesce"
	StepFenceWrites         = "FenceWrites"
	StepFinalSync           = "FinalSync"
	StepFinalVolumeSnapshot = "FinalVolumeSnapshot"
	StepPauseSync           = "PauseSync"
	StepPromoteTarget       = "PromoteTarget"
	StepSwapRoles           = "SwapRoles"
	StepReverseSync         = "ReverseSync"
)

// PlannedCheck is what a Planned switchover checks before it touches
// anything.
type PlannedCheck struct {
	Pair          *tandemv1.HAPair
	Local, Target string
	// PeerPair is the pair as the target has it; nil with PeerErr when the
	// target did not answer.
	PeerPair *tandemv1.HAPair
	PeerErr  error
	// Others are the pair's other unfinished Switchovers.
	Others []string
	// MaxLag is the longest sync lag accepted.
	MaxLag time.Duration
}

// PlannedPreconditions runs the checks in order and returns the first that
// fails: each names what is wrong and what to do.
func PlannedPreconditions(c PlannedCheck) Verdict {
	for _, check := range []func(PlannedCheck) string{
		checkTarget, checkPeerConnected, checkLocalActive, checkNoOtherSwitchover, checkRecordsAgree,
	} {
		if msg := check(c); msg != "" {
			return Verdict{Fail: true, Message: msg}
		}
	}
	if msg := checkInSync(c); msg != "" {
		// A sync still running its pass (after a drill, after a restart)
		// is worth waiting for, until the step timeout; one that failed is
		// not.
		synced := apimeta.FindStatusCondition(c.Pair.Status.Conditions, tandemv1.SyncedCondition)
		return Verdict{Fail: synced == nil || synced.Status != metav1.ConditionUnknown, Message: msg}
	}
	return Verdict{OK: true, Message: fmt.Sprintf("%s is active at epoch %d, %s answers and agrees, the sync is current", c.Local, c.Pair.Status.Epoch, c.Target)}
}

func checkTarget(c PlannedCheck) string {
	switch {
	case c.Pair.Spec.Suspend:
		return fmt.Sprintf("HAPair %s is suspended (spec.suspend)", c.Pair.Name)
	case c.Target == c.Local:
		return fmt.Sprintf("spec.targetCluster %s is the cluster this switchover runs on; name the standby", c.Target)
	}
	for _, cl := range c.Pair.Spec.Clusters {
		if cl.Name == c.Target {
			return ""
		}
	}
	return fmt.Sprintf("spec.targetCluster %s is not one of HAPair %s's clusters", c.Target, c.Pair.Name)
}

func checkLocalActive(c PlannedCheck) string {
	switch st := c.Pair.Status; {
	case st.LocalRole == tandemv1.RoleFenced:
		return fmt.Sprintf("%s is fenced: it cannot hand over a service it does not serve; use a Failover", c.Local)
	case st.ActiveCluster == c.Target:
		return fmt.Sprintf("%s is already the active side at epoch %d", c.Target, st.Epoch)
	case st.ActiveCluster == "":
		return fmt.Sprintf("%s has no role record for HAPair %s yet", c.Local, c.Pair.Name)
	case st.ActiveCluster != c.Local || st.LocalRole != tandemv1.RoleActive:
		return fmt.Sprintf("a Planned switchover runs on the active side; %s is %s (active: %s)", c.Local, st.LocalRole, st.ActiveCluster)
	}
	return ""
}

func checkNoOtherSwitchover(c PlannedCheck) string {
	if len(c.Others) > 0 {
		return fmt.Sprintf("another switchover of HAPair %s is running: %s", c.Pair.Name, strings.Join(c.Others, ", "))
	}
	return ""
}

func checkPeerConnected(c PlannedCheck) string {
	if c.PeerErr != nil {
		return fmt.Sprintf("%s cannot be reached, so nothing can be handed over: %v; use a Failover if it is gone", c.Target, c.PeerErr)
	}
	if c.PeerPair == nil {
		return fmt.Sprintf("%s does not have HAPair %s yet", c.Target, c.Pair.Name)
	}
	return ""
}

func checkRecordsAgree(c PlannedCheck) string {
	mine, theirs := c.Pair.Status, c.PeerPair.Status
	if theirs.ActiveCluster != mine.ActiveCluster || theirs.Epoch != mine.Epoch {
		return fmt.Sprintf("the role records disagree: %s says %s at epoch %d, %s says %s at epoch %d",
			c.Local, mine.ActiveCluster, mine.Epoch, c.Target, theirs.ActiveCluster, theirs.Epoch)
	}
	if theirs.LocalRole == tandemv1.RoleFenced {
		return fmt.Sprintf("%s is fenced", c.Target)
	}
	return ""
}

func checkInSync(c PlannedCheck) string {
	synced := apimeta.FindStatusCondition(c.Pair.Status.Conditions, tandemv1.SyncedCondition)
	if synced == nil || synced.Status != metav1.ConditionTrue {
		msg := "no sync has run"
		if synced != nil {
			msg = synced.Message
		}
		return fmt.Sprintf("the standby is not in sync: %s", msg)
	}
	if s := c.Pair.Status.Sync; s != nil && s.Lag != nil && c.MaxLag > 0 && s.Lag.Duration > c.MaxLag {
		return fmt.Sprintf("the sync lags %s behind, more than %s", s.Lag.Duration, c.MaxLag)
	}
	return ""
}

// Drill step names. An isolated drill brings the standby's copy up next to
// production and takes it down again; a live drill is a Planned switchover,
// a hold, and a Planned switchover back.
const (
	StepStartStandby = "StartStandby"
	StepRunChecks    = "RunChecks"
	// StepPublishDrillName and StepWithdrawDrillName publish and remove
	// the records' drill names pointing at the standby.
	StepPublishDrillName  = "PublishDrillName"
	StepWithdrawDrillName = "WithdrawDrillName"
	StepStopStandby       = "StopStandby"
	StepResumeSync        = "ResumeSync"
	StepReport            = "Report"
	StepHold              = "Hold"
	StepSwitchBack        = "SwitchBack"
)
