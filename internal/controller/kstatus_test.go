package controller

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// kstatusOf is what Flux and `kubectl wait`-style pipelines read of obj:
// cli-utils' own computation, not ours. It also runs the Argo CD health
// check the project ships (config/argocd/health.lua) on obj, and fails
// when Argo CD would read it otherwise.
func kstatusOf(t *testing.T, obj runtime.Object) *status.Result {
	t.Helper()
	res, u, err := testbed.Kstatus(obj)
	if err != nil {
		t.Fatal(err)
	}
	want := map[status.Status]string{status.CurrentStatus: "Healthy", status.InProgressStatus: "Progressing", status.FailedStatus: "Degraded"}[res.Status]
	if got, msg := argoHealth(t, u); got != want {
		t.Fatalf("Argo CD's health check says %s (%q) where kstatus says %s (%q)", got, msg, res.Status, res.Message)
	}
	return res
}

// argoHealth runs the shipped health check as Argo CD does: with gopher-lua,
// the object as the global obj, the returned table's status and message.
func argoHealth(t *testing.T, obj map[string]any) (string, string) {
	t.Helper()
	script := argoHealthScript(t)
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	lua.OpenBase(L)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("the health check fails: %v", err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the health check returned %v, not a table", L.Get(-1))
	}
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

// argoHealthScript is the health check the project ships for Argo CD.
func argoHealthScript(t *testing.T) string {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("..", "..", "config", "argocd", "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(script)
}

// toLua converts a JSON value the way Argo CD hands objects to its scripts.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range v {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range v {
			tbl.Append(toLua(L, e))
		}
		return tbl
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	}
	return lua.LNil
}

// The health check docs/api.md tells users to paste is the one tested.
func TestTheDocumentedArgoCDHealthCheckIsTheTestedOne(t *testing.T) {
	script := argoHealthScript(t)
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		if !strings.HasPrefix(line, "--") {
			body = append(body, "  "+line)
		}
	}
	if !strings.Contains(string(doc), "resource.customizations.health.tandem.dev_HAPair: |\n"+strings.Join(body, "\n")+"\n") {
		t.Fatal("docs/api.md's health check for HAPair is not config/argocd/health.lua")
	}
}

// Every phase of a Switchover reads as a user expects: in progress while
// it waits or runs, Current once it moved the service, Failed when it ended
// any other way (only a new Switchover changes that).
func TestSwitchoverKstatus(t *testing.T) {
	running := []tandemv1.StepStatus{{Name: "Preconditions", Phase: tandemv1.StepSucceeded}, {Name: "Quiesce", Phase: tandemv1.StepRunning}}
	failed := []tandemv1.StepStatus{{Name: "Preconditions", Phase: tandemv1.StepFailed, Message: "dc-west does not answer"}}
	cases := []struct {
		name  string
		phase tandemv1.SwitchoverPhase
		steps []tandemv1.StepStatus
		v     *verdict
		want  status.Status
	}{
		{"not started: runs on the other side", "", nil, &verdict{metav1.ConditionUnknown, tandemv1.ProgressingReason, "runs on dc-east"}, status.InProgressStatus},
		{"running", tandemv1.PhaseRunning, running, nil, status.InProgressStatus},
		{"a step past the point of no return overdue, still retrying", tandemv1.PhaseRunning, running,
			&verdict{metav1.ConditionFalse, tandemv1.StepTimedOutReason, "Step ScaleUp has run longer than its 2m0s timeout"}, status.FailedStatus},
		{"succeeded", tandemv1.PhaseSucceeded, nil, nil, status.CurrentStatus},
		{"a precondition failed", tandemv1.PhaseFailed, failed, &verdict{metav1.ConditionFalse, tandemv1.PreconditionFailedReason, "Precondition failed"}, status.FailedStatus},
		{"rolled back", tandemv1.PhaseRolledBack, failed, nil, status.FailedStatus},
		{"cancelled", tandemv1.PhaseCancelled, nil, nil, status.FailedStatus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			so := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Name: "to-west", Generation: 1},
				Spec:   tandemv1.SwitchoverSpec{PairRef: "shop", TargetCluster: "dc-west", Type: tandemv1.SwitchoverPlanned},
				Status: tandemv1.SwitchoverStatus{Phase: c.phase, Steps: c.steps, ObservedGeneration: 1}}
			setSwitchoverSummary(so, c.v)
			if got := kstatusOf(t, so).Status; got != c.want {
				t.Fatalf("kstatus %s, want %s; conditions %+v", got, c.want, so.Status.Conditions)
			}
			// Nothing is left of the other kstatus condition.
			if findCondition(so, tandemv1.ReconcilingCondition) != nil && findCondition(so, tandemv1.StalledCondition) != nil {
				t.Fatalf("both Reconciling and Stalled: %+v", so.Status.Conditions)
			}
		})
	}
}

// A pair reads Current when it protects the service (or is suspended),
// InProgress on its way there, Failed when it does not protect it, and
// Failed with the field named when only its spec can fix it. Once the
// fault is gone it reads Current again.
func TestHAPairKstatus(t *testing.T) {
	type conds map[string][3]string // type -> status, reason, message
	cases := []struct {
		name  string
		conds conds
		stall *metav1.Condition
		want  status.Status
		says  string
	}{
		{"not reconciled yet", conds{}, nil, status.InProgressStatus, ""},
		{"the first sync pass", conds{tandemv1.SyncedCondition: {"Unknown", tandemv1.ProgressingReason, "copying 12 objects"}}, nil, status.InProgressStatus, ""},
		{"in sync", conds{tandemv1.SyncedCondition: {"True", tandemv1.SucceededReason, "12 objects in sync on dc-west"}}, nil, status.CurrentStatus, ""},
		{"the standby side", conds{tandemv1.SyncedCondition: {"Unknown", tandemv1.StandbySideReason, "dc-east copies to this side"}}, nil, status.CurrentStatus, ""},
		{"suspended", conds{tandemv1.SyncedCondition: {"Unknown", tandemv1.SuspendedReason, "spec.suspend is set"}}, nil, status.CurrentStatus, ""},
		{"a switchover pauses the sync", conds{tandemv1.SyncedCondition: {"Unknown", tandemv1.SyncPausedReason, "Switchover to-west runs"}}, nil, status.InProgressStatus, ""},
		{"the primary confirming its role", conds{
			tandemv1.SyncedCondition:   {"Unknown", tandemv1.RoleUnconfirmedReason, "waiting"},
			tandemv1.DegradedCondition: {"True", tandemv1.RoleUnconfirmedReason, "dc-east does not claim Active yet"}}, nil, status.InProgressStatus, ""},
		{"the peer unreachable", conds{
			tandemv1.SyncedCondition:        {"True", tandemv1.SucceededReason, "12 objects"},
			tandemv1.PeerReachableCondition: {"False", tandemv1.PeerUnreachableReason, "dc-west: 3 probes failed"}}, nil, status.FailedStatus, "3 probes failed"},
		{"copies failing", conds{tandemv1.SyncedCondition: {"False", tandemv1.SyncFailedReason, "2 of 12 objects are out of sync"}}, nil, status.FailedStatus, "out of sync"},
		{"a SyncPolicy that does not exist", conds{tandemv1.SyncedCondition: {"False", tandemv1.InvalidSpecReason, "spec.syncPolicyRefs[0]: SyncPolicy app does not exist"}}, nil, status.FailedStatus, "spec.syncPolicyRefs[0]"},
		{"an unusable kubeconfig Secret", conds{tandemv1.PeerReachableCondition: {"Unknown", tandemv1.PeerKubeconfigInvalidReason, "Secret dc-west-kubeconfig: no key kubeconfig"}}, nil, status.FailedStatus, "no key kubeconfig"},
		{"a bad drill schedule, though in sync", conds{tandemv1.SyncedCondition: {"True", tandemv1.SucceededReason, "12 objects"}},
			&metav1.Condition{Reason: tandemv1.InvalidSpecReason, Message: `spec.drills.schedule "every day": expected 5 fields`}, status.FailedStatus, "spec.drills.schedule"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pair := &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Name: "shop", Generation: 2}, Status: tandemv1.HAPairStatus{ObservedGeneration: 2}}
			// What the previous round left must not decide this one.
			setCondition(pair, tandemv1.StalledCondition, metav1.ConditionTrue, tandemv1.InvalidSpecReason, "from an earlier round")
			for typ, v := range c.conds {
				setCondition(pair, typ, metav1.ConditionStatus(v[0]), v[1], v[2])
			}
			setHAPairSummary(pair, c.stall)
			if res := kstatusOf(t, pair); res.Status != c.want || (c.says != "" && !strings.Contains(res.Message, c.says)) {
				t.Fatalf("kstatus %s %q, want %s saying %q; conditions %+v", res.Status, res.Message, c.want, c.says, pair.Status.Conditions)
			}
		})
	}
	// A spec the controller has not acted on yet is in progress, whatever
	// the conditions say.
	pair := &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Name: "shop", Generation: 3}, Status: tandemv1.HAPairStatus{ObservedGeneration: 2}}
	setCondition(pair, tandemv1.SyncedCondition, metav1.ConditionTrue, tandemv1.SucceededReason, "12 objects")
	setHAPairSummary(pair, nil)
	if got := kstatusOf(t, pair).Status; got != status.InProgressStatus {
		t.Fatalf("generation 3 observed 2: kstatus %s, want InProgress", got)
	}
}

// A policy reads InProgress until its first pass (or a pair that uses it),
// Current when in sync or suspended, Failed with an invalid plan.
func TestSyncPolicyKstatus(t *testing.T) {
	cases := []struct {
		name         string
		synced, plan [3]string
		want         status.Status
	}{
		{"first pass", [3]string{"Unknown", tandemv1.ProgressingReason, "waiting for the first pass"}, [3]string{}, status.InProgressStatus},
		{"in sync", [3]string{"True", tandemv1.SucceededReason, "12 objects"}, [3]string{"True", tandemv1.SucceededReason, "12 objects in 3 waves"}, status.CurrentStatus},
		{"used by no pair yet", [3]string{"Unknown", tandemv1.NotReferencedReason, "no HAPair refers to it"}, [3]string{}, status.InProgressStatus},
		{"suspended", [3]string{"Unknown", tandemv1.SuspendedReason, "spec.suspend is set"}, [3]string{}, status.CurrentStatus},
		{"a dependency cycle", [3]string{"True", tandemv1.SucceededReason, "12 objects"}, [3]string{"False", tandemv1.PlanCycleReason, "a cycle"}, status.FailedStatus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Name: "app", Generation: 1}, Status: tandemv1.SyncPolicyStatus{ObservedGeneration: 1}}
			setCondition(p, tandemv1.SyncedCondition, metav1.ConditionStatus(c.synced[0]), c.synced[1], c.synced[2])
			if c.plan[0] != "" {
				setCondition(p, tandemv1.PlanValidCondition, metav1.ConditionStatus(c.plan[0]), c.plan[1], c.plan[2])
			}
			setSyncPolicySummary(p)
			if got := kstatusOf(t, p).Status; got != c.want {
				t.Fatalf("kstatus %s, want %s; conditions %+v", got, c.want, p.Status.Conditions)
			}
		})
	}
}

// A reconcile that failed midway leaves observedGeneration behind, so the
// object stays InProgress; one that ended with a terminal error did all it
// can with this spec.
func TestObservedSpec(t *testing.T) {
	if !observedSpec(nil) || observedSpec(errors.New("the API server timed out")) || !observedSpec(reconcile.TerminalError(errors.New("not one of spec.clusters"))) {
		t.Fatal("observedSpec: want true for nil and terminal errors, false for others")
	}
}
