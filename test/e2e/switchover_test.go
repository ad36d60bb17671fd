package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/volume"
	"github.com/tandem-dev/tandem/test/testbed"
)

// runningPair brings up the bed with a witness, the pair in namespace ns
// with web (2 replicas), api (3) and a ConfigMap on dc-east, and an
// operator per data center, and waits until dc-east is Active and synced.
func runningPair(t *testing.T, ns string, sample bool) (map[string]*testbed.Cluster, map[string]*testbed.Operator) {
	t.Helper()
	ctx := context.Background()
	// The sample SyncPolicy protects the sample app's PVC with snapshots.
	_, clusters := upPairBed(t, sample)
	east, west := clusters[testbed.East], clusters[testbed.West]
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverManual, witness: true, sample: sample})
	if !sample {
		if err := createDeployment(ctx, east.Client, ns, "api", 3); err != nil {
			t.Fatal(err)
		}
		if err := east.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"color": "blue"}}); err != nil {
			t.Fatal(err)
		}
	}
	ops := startOperators(t, east, west)
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 1, time.Minute)
	waitSynced(t, east, ns)
	return clusters, ops
}

// startOperators starts an operator for each data center and waits until
// they answer their health checks.
func startOperators(t *testing.T, clusters ...*testbed.Cluster) map[string]*testbed.Operator {
	t.Helper()
	ops := map[string]*testbed.Operator{}
	for _, c := range clusters {
		ops[c.Name] = testbed.StartOperator(t, c, c.Name)
		if err := ops[c.Name].WaitHealthy(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	return ops
}

func waitSynced(t *testing.T, c *testbed.Cluster, ns string) {
	t.Helper()
	if err := testbed.Poll(context.Background(), time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		p, err := getPair(ctx, c, ns)
		if err != nil {
			return false, err
		}
		cond := findCond(p.Status.Conditions, tandemv1.SyncedCondition)
		return cond != nil && cond.Status == metav1.ConditionTrue, fmt.Errorf("Synced %+v", cond)
	}); err != nil {
		t.Fatalf("%s never reported Synced: %v", c.Name, err)
	}
}

func switchoverTo(t *testing.T, on *testbed.Cluster, ns, name string, typ tandemv1.SwitchoverType, target string, drill *tandemv1.DrillOptions) *tandemv1.Switchover {
	t.Helper()
	so := &tandemv1.Switchover{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: tandemv1.SwitchoverSpec{PairRef: "shop", Type: typ, TargetCluster: target,
			StepTimeout: &metav1.Duration{Duration: time.Minute}, Drill: drill},
	}
	if err := on.Client.Create(context.Background(), so); err != nil {
		t.Fatalf("creating Switchover %s on %s: %v", name, on.Name, err)
	}
	return so
}

func waitSwitchover(t *testing.T, on *testbed.Cluster, so *tandemv1.Switchover, phase tandemv1.SwitchoverPhase, timeout time.Duration) *tandemv1.Switchover {
	t.Helper()
	if err := testbed.Poll(context.Background(), timeout, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := on.Client.Get(ctx, client.ObjectKeyFromObject(so), so); err != nil {
			return false, err
		}
		if so.Status.Phase == phase {
			return true, nil
		}
		return false, fmt.Errorf("phase %q, steps %s, conditions %+v", so.Status.Phase, stepsLine(so), so.Status.Conditions)
	}); err != nil {
		t.Fatalf("Switchover %s: %v", so.Name, err)
	}
	return so
}

// waitStepRunning waits until the Switchover records step as Running with a
// message containing says.
func waitStepRunning(t *testing.T, on *testbed.Cluster, so *tandemv1.Switchover, step, says string) {
	t.Helper()
	if err := testbed.Poll(context.Background(), time.Minute, 5*time.Millisecond, func(ctx context.Context) (bool, error) {
		if err := on.Client.Get(ctx, client.ObjectKeyFromObject(so), so); err != nil {
			return false, err
		}
		for _, s := range so.Status.Steps {
			if s.Name == step && s.Phase == tandemv1.StepRunning && strings.Contains(s.Message, says) {
				return true, nil
			}
		}
		return false, fmt.Errorf("steps %s", stepsLine(so))
	}); err != nil {
		t.Fatalf("waiting for step %s of Switchover %s: %v", step, so.Name, err)
	}
}

func stepsLine(so *tandemv1.Switchover) string {
	var parts []string
	for _, s := range so.Status.Steps {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", s.Name, s.Phase, s.Message))
	}
	return strings.Join(parts, " ")
}

func logSteps(t *testing.T, so *tandemv1.Switchover) {
	t.Helper()
	for _, s := range so.Status.Steps {
		d := ""
		if s.StartTime != nil && s.EndTime != nil {
			d = s.EndTime.Sub(s.StartTime.Time).String()
		}
		t.Logf("  %-14s %-9s %-8s %s", s.Name, s.Phase, d, s.Message)
	}
}

// deploymentsAt checks each Deployment's spec.replicas and, for a running
// side, that it is Available with them.
func deploymentsAt(t *testing.T, c *testbed.Cluster, ns string, want map[string]int32) {
	t.Helper()
	ctx := context.Background()
	for name, n := range want {
		if n > 0 {
			if err := waitAvailable(ctx, c.Client, ns, name, n); err != nil {
				t.Fatalf("%s on %s: %v", name, c.Name, err)
			}
			continue
		}
		var d appsv1.Deployment
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil || *d.Spec.Replicas != 0 {
			t.Fatalf("%s on %s: want 0 replicas, got %v (%v)", name, c.Name, d.Spec.Replicas, err)
		}
	}
}

// verifyCopies checks by content hash that every object the policy selects
// on from has its exact copy on to.
func verifyCopies(t *testing.T, from, to *testbed.Cluster, ns, policyName string) int {
	t.Helper()
	ctx := context.Background()
	var policy tandemv1.SyncPolicy
	if err := from.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: policyName}, &policy); err != nil {
		t.Fatal(err)
	}
	var v *replicate.Verification
	if err := testbed.Poll(ctx, time.Minute, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		var err error
		pair, err := getPair(ctx, from, ns)
		if err != nil {
			return false, err
		}
		// The policy as it applies in this direction (mappings inverted
		// towards the primary).
		spec := replicate.Directed(policy.Spec, pair.Spec.Primary, to.Name)
		opts := replicate.Options{Pair: "shop", PairNamespace: ns, Policy: policyName, Mode: spec.StandbyMode, Transforms: spec.Transforms}
		v, err = replicate.Verify(ctx, from.Config, to.Config, nil, spec, opts, replicate.PairSecrets(pair))
		if err != nil {
			return false, err
		}
		return len(v.Differ) == 0, fmt.Errorf("%d of %d differ: %v", len(v.Differ), v.Checked, v.Differ)
	}); err != nil {
		t.Fatalf("copies on %s of %s's objects: %v", to.Name, from.Name, err)
	}
	return v.Checked
}

// A planned switchover moves the sample app (hack/demo-app.yaml under the
// sample SyncPolicy) to dc-west with nothing lost: every synced object is on
// dc-west with the source's content (the FinalSync step compares hashes),
// dc-west runs storefront with its original 3 replicas, dc-east is at 0,
// the roles and the epoch are swapped, the sync flows from dc-west to
// dc-east (with the policy's mappings inverted); then the app moves back.
func TestPlannedSwitchoverAndBack(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	clusters, ops := runningPair(t, ns, true)
	east, west := clusters[testbed.East], clusters[testbed.West]

	// A write just before the switchover starts must arrive.
	var cm corev1.ConfigMap
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "feature-flags"}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["last-write"] = "just before the switchover"
	if err := east.Client.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	// A client keeps writing on dc-east while it says it is Active: from
	// the final sync on its writes are refused, and every write it was
	// told succeeded is on dc-west afterwards.
	writer := writeWhileActive(east, ns, "late", map[string]string{"app.kubernetes.io/part-of": "shop"})
	so := waitSwitchover(t, east, switchoverTo(t, east, ns, "to-west", tandemv1.SwitchoverPlanned, testbed.West, nil), tandemv1.PhaseSucceeded, 2*time.Minute)
	acked, refused := writer.stop()
	t.Logf("planned switchover to dc-west: RTO %s", so.Status.RTO.Duration)
	logSteps(t, so)
	// With nothing failing, no step ran from a stale copy of the status
	// and lost its write to the optimistic lock.
	if errs := ops[testbed.East].ReconcileErrors("switchover"); len(errs) > 0 {
		t.Errorf("the switchover controller on dc-east failed %d reconciles of a switchover with nothing failing, the first: %s", len(errs), errs[0])
	}
	if st := findStepStatus(so, "FinalSync"); st == nil || !strings.Contains(st.Message, "identical on dc-west (compared by content hash)") {
		t.Fatalf("FinalSync did not compare the copies: %+v", st)
	}
	if len(refused) == 0 || !strings.Contains(refused[0], "is switching over to dc-west (Switchover to-west)") {
		t.Fatalf("no write on dc-east was refused during the switchover (%d acknowledged): %q", len(acked), refused)
	}
	for _, name := range acked {
		if err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{}); err != nil {
			t.Fatalf("ConfigMap %s, acknowledged by dc-east during the switchover, is not on dc-west: %v", name, err)
		}
	}
	var fences admissionregistrationv1.ValidatingAdmissionPolicyList
	if err := east.Client.List(ctx, &fences, client.HasLabels{controller.WriteFenceLabel}); err != nil || len(fences.Items) != 0 {
		t.Fatalf("write fences left on dc-east after the switchover: %d (%v)", len(fences.Items), err)
	}
	t.Logf("during the switchover dc-east acknowledged %d writes, all on dc-west after it, and refused %d: %s", len(acked), len(refused), refused[0])

	waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 30*time.Second)
	waitRole(t, east, ns, tandemv1.RoleStandby, testbed.West, 2, 30*time.Second)
	deploymentsAt(t, west, ns, map[string]int32{"storefront": 3})
	deploymentsAt(t, east, ns, map[string]int32{"storefront": 0})
	var orders corev1.PersistentVolumeClaim
	if err := west.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "orders"}, &orders); err != nil ||
		orders.Annotations[volume.RestoredFromAnnotation] == "" || *orders.Spec.StorageClassName != "fast-west" || orders.Status.Phase != corev1.ClaimBound {
		t.Fatalf("PVC orders on dc-west: %v; want it Bound, restored from the final snapshot, in storage class fast-west: %+v", err, orders)
	}
	if err := west.Client.Get(ctx, client.ObjectKeyFromObject(&cm), &cm); err != nil || cm.Data["last-write"] != "just before the switchover" {
		t.Fatalf("the write made just before the switchover: %v on dc-west (%v)", cm.Data, err)
	}
	var site corev1.ConfigMap
	if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-config"}, &site)
		return err == nil && site.Data["SITE"] == "east", fmt.Errorf("%v %v", site.Data, err)
	}); err != nil {
		t.Fatalf("the copy on dc-east carries the patch for dc-east: %v", err)
	}
	n := verifyCopies(t, west, east, ns, "shop")
	t.Logf("the sync now flows from dc-west to dc-east: %d objects identical by hash", n)
	// A change on the new active side reaches the old one.
	cm.Data["new-checkout"] = "false"
	if err := west.Client.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	if err := testbed.Poll(ctx, 30*time.Second, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		var got corev1.ConfigMap
		err := east.Client.Get(ctx, client.ObjectKeyFromObject(&cm), &got)
		return err == nil && got.Data["new-checkout"] == "false", fmt.Errorf("%v %v", got.Data, err)
	}); err != nil {
		t.Fatalf("a change on dc-west never reached dc-east: %v", err)
	}

	// Back with the kubectl plugin, which creates the Switchover on dc-west
	// and follows it to the end.
	plugin, err := testbed.PluginBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(plugin, "switchover", "shop", "--to", testbed.East, "--name", "to-east", "-n", ns, "--kubeconfig", west.Kubeconfig).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl tandem switchover: %v\n%s", err, out)
	}
	t.Logf("kubectl tandem switchover shop --to dc-east:\n%s", out)
	for _, want := range []string{"Switchover shop/to-east created", "PromoteTarget", "SwapRoles", "Phase", "Succeeded", "RTO"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the plugin's output lacks %q", want)
		}
	}
	back := waitSwitchover(t, west, &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-east"}}, tandemv1.PhaseSucceeded, time.Minute)
	t.Logf("planned switchover back to dc-east: RTO %s", back.Status.RTO.Duration)
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 3, 30*time.Second)
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 3, 30*time.Second)
	deploymentsAt(t, east, ns, map[string]int32{"storefront": 3})
	deploymentsAt(t, west, ns, map[string]int32{"storefront": 0})
	verifyCopies(t, east, west, ns, "shop")
}

// The operator of dc-east is killed while the switchover is at the step the
// test picks; restarted, it resumes from status and the switchover ends as
// if nothing happened: nothing duplicated, nothing lost.
func TestSwitchoverResumesAfterTheOperatorIsKilled(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	clusters, ops := runningPair(t, ns, false)
	east, west := clusters[testbed.East], clusters[testbed.West]
	so := switchoverTo(t, east, ns, "to-west", tandemv1.SwitchoverPlanned, testbed.West, nil)
	const killAt = "PromoteTarget"
	waitStepRunning(t, east, so, killAt, "")
	ops[testbed.East].Kill()
	t.Logf("killed the operator of dc-east with %s Running", killAt)
	if err := ops[testbed.East].Restart(); err != nil {
		t.Fatal(err)
	}
	so = waitSwitchover(t, east, so, tandemv1.PhaseSucceeded, 2*time.Minute)
	logSteps(t, so)
	waitRole(t, west, ns, tandemv1.RoleActive, testbed.West, 2, 30*time.Second)
	waitRole(t, east, ns, tandemv1.RoleStandby, testbed.West, 2, 30*time.Second)
	deploymentsAt(t, west, ns, map[string]int32{"web": 2, "api": 3})
	deploymentsAt(t, east, ns, map[string]int32{"web": 0, "api": 0})
	var list tandemv1.SwitchoverList
	if err := east.Client.List(ctx, &list, client.InNamespace(ns)); err != nil || len(list.Items) != 1 {
		t.Fatalf("Switchovers on dc-east after the restart: %d (%v)", len(list.Items), err)
	}
	var rs appsv1.ReplicaSetList
	if err := west.Client.List(ctx, &rs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	perDeployment := map[string]int{}
	for _, r := range rs.Items {
		perDeployment[r.OwnerReferences[0].Name]++
	}
	for d, n := range perDeployment {
		if n != 1 {
			t.Fatalf("Deployment %s on dc-west has %d ReplicaSets: its template changed during the switchover", d, n)
		}
	}
	verifyCopies(t, west, east, ns, "app")
}

// An isolated drill brings dc-west's copy up next to production, runs its
// checks and writes a report, and leaves roles, epoch and dc-east's
// workloads untouched. A drill scheduled with @every fires on its own.
func TestDrills(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	clusters, _ := runningPair(t, ns, false)
	east, west := clusters[testbed.East], clusters[testbed.West]

	drill := waitSwitchover(t, east, switchoverTo(t, east, ns, "drill", tandemv1.SwitchoverDrill, testbed.West, &tandemv1.DrillOptions{
		Mode: tandemv1.DrillIsolated,
		Checks: []tandemv1.DrillCheck{{Name: "smoke", Job: &tandemv1.JobCheck{Namespace: ns, Image: "registry.example/smoke:1",
			Timeout: &metav1.Duration{Duration: 30 * time.Second}}}},
	}), tandemv1.PhaseSucceeded, 2*time.Minute)
	rep := drill.Status.Report
	if rep == nil || !rep.Passed || rep.TimeToReady == nil || len(rep.Checks) != 1 || !rep.Checks[0].Passed {
		t.Fatalf("drill report = %+v", rep)
	}
	t.Logf("isolated drill: %s", rep.Summary)
	logSteps(t, drill)
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, 10*time.Second)
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 1, 10*time.Second)
	deploymentsAt(t, east, ns, map[string]int32{"web": 2, "api": 3})
	deploymentsAt(t, west, ns, map[string]int32{"web": 0, "api": 0})
	p, err := getPair(ctx, east, ns)
	if err != nil || p.Status.LastDrill == nil || p.Status.LastDrill.Name != "drill" {
		t.Fatalf("status.lastDrill = %+v (%v)", p.Status.LastDrill, err)
	}
	waitSynced(t, east, ns)

	// A live drill: a planned switchover to dc-west, a hold, and back.
	live := waitSwitchover(t, east, switchoverTo(t, east, ns, "live", tandemv1.SwitchoverDrill, testbed.West, &tandemv1.DrillOptions{
		Mode: tandemv1.DrillLive, HoldFor: &metav1.Duration{Duration: 3 * time.Second},
	}), tandemv1.PhaseSucceeded, 3*time.Minute)
	t.Logf("live drill: %s", live.Status.Report.Summary)
	logSteps(t, live)
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 3, 30*time.Second)
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 3, 30*time.Second)
	deploymentsAt(t, east, ns, map[string]int32{"web": 2, "api": 3})
	deploymentsAt(t, west, ns, map[string]int32{"web": 0, "api": 0})
	waitSynced(t, east, ns)

	// A schedule that fires within the test.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := getPair(ctx, east, ns)
		if err != nil {
			return err
		}
		p.Spec.Drills = &tandemv1.DrillSchedule{Schedule: "@every 20s", SuccessfulHistoryLimit: ptr.To(int32(1))}
		return east.Client.Update(ctx, p)
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var fired tandemv1.Switchover
	if err := testbed.Poll(ctx, 90*time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		var list tandemv1.SwitchoverList
		if err := east.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"tandem.dev/drill-of": "shop"}); err != nil {
			return false, err
		}
		for _, s := range list.Items {
			if s.Status.Phase == tandemv1.PhaseSucceeded {
				fired = s
				return true, nil
			}
		}
		return false, fmt.Errorf("%d scheduled drills, none succeeded yet", len(list.Items))
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("scheduled drill %s succeeded %s after the schedule was set: %s", fired.Name, time.Since(start).Round(100*time.Millisecond), fired.Status.Report.Summary)
	p, _ = getPair(ctx, east, ns)
	if p.Status.NextDrill == nil || p.Status.LastDrillScheduleTime == nil {
		t.Fatalf("status.nextDrill %v, lastDrillScheduleTime %v", p.Status.NextDrill, p.Status.LastDrillScheduleTime)
	}
}

// A planned switchover whose target cannot bring the app up (a Deployment
// pinned to a zone only dc-east has) waits in PromoteTarget; cancelling it
// there rolls back: dc-east runs everything again with the original counts,
// dc-west is back at 0, the roles never changed.
func TestCancelledSwitchoverRollsBack(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	clusters, _ := runningPair(t, ns, false)
	east, west := clusters[testbed.East], clusters[testbed.West]
	var nodes corev1.NodeList
	if err := east.Client.List(ctx, &nodes); err != nil {
		t.Fatal(err)
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		n.Labels["topology.kubernetes.io/zone"] = "east-1"
		if err := east.Client.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	pinned := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pinned"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pinned"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pinned"}},
				Spec: corev1.PodSpec{NodeSelector: map[string]string{"topology.kubernetes.io/zone": "east-1"},
					Containers: []corev1.Container{{Name: "app", Image: "registry.example/pinned:1"}}},
			},
		},
	}
	if err := east.Client.Create(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	deploymentsAt(t, east, ns, map[string]int32{"pinned": 1})
	if err := testbed.Poll(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var d appsv1.Deployment
		return west.Client.Get(ctx, client.ObjectKeyFromObject(pinned), &d) == nil, nil
	}); err != nil {
		t.Fatal("pinned never reached dc-west")
	}
	waitSynced(t, east, ns)

	so := switchoverTo(t, east, ns, "to-west", tandemv1.SwitchoverPlanned, testbed.West, nil)
	waitStepRunning(t, east, so, "PromoteTarget", "pinned")
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"cancel":true}}`))
	if err := east.Client.Patch(ctx, so, patch); err != nil {
		t.Fatal(err)
	}
	so = waitSwitchover(t, east, so, tandemv1.PhaseCancelled, time.Minute)
	logSteps(t, so)
	deploymentsAt(t, east, ns, map[string]int32{"web": 2, "api": 3, "pinned": 1})
	deploymentsAt(t, west, ns, map[string]int32{"web": 0, "api": 0, "pinned": 0})
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, 10*time.Second)
	waitRole(t, west, ns, tandemv1.RoleStandby, testbed.East, 1, 10*time.Second)
	waitSynced(t, east, ns)
	if err := testbed.Poll(ctx, 30*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := east.Client.Get(ctx, client.ObjectKeyFromObject(so), so)
		return err == nil && len(so.Finalizers) == 0, err
	}); err != nil {
		t.Fatalf("the finished Switchover keeps its finalizer: %v", so.Finalizers)
	}
}

func findStepStatus(so *tandemv1.Switchover, name string) *tandemv1.StepStatus {
	for i := range so.Status.Steps {
		if so.Status.Steps[i].Name == name {
			return &so.Status.Steps[i]
		}
	}
	return nil
}

// writer is a client that creates a ConfigMap (with the given labels) every
// 100ms on a cluster while the pair there says it is Active.
type writer struct {
	stopped chan struct{}
	done    chan struct{}
	acked   []string
	refused []string
}

func writeWhileActive(c *testbed.Cluster, ns, prefix string, labels map[string]string) *writer {
	w := &writer{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stopped:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			pair, err := getPair(ctx, c, ns)
			if err == nil && pair.Status.LocalRole == tandemv1.RoleActive {
				name := fmt.Sprintf("%s-%04d", prefix, i)
				err = c.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}})
				switch {
				case err == nil:
					w.acked = append(w.acked, name)
				case apierrors.IsForbidden(err) || apierrors.IsInvalid(err):
					w.refused = append(w.refused, err.Error())
				}
			}
			cancel()
		}
	}()
	return w
}

// stop ends the writes and returns the names acknowledged and the refusals.
func (w *writer) stop() (acked, refused []string) {
	close(w.stopped)
	<-w.done
	return w.acked, w.refused
}
