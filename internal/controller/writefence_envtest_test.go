package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/test/testbed"
)

// fencedPair is pairAndPolicy, suspended (the test runs the step itself),
// with a policy that copies only what is labelled app=shop.
var fencedPair = strings.NewReplacer(
	"primary: dc-east\n", "primary: dc-east\n  suspend: true\n",
	"namespaces: {names: [NS]}\n", "namespaces: {names: [NS]}\n  selector: {matchLabels: {app: shop}}\n",
).Replace(pairAndPolicy)

// Once FenceWrites has ended, the very next write to an object the pair
// copies is refused: the step waits until the API server enforces the
// policy rather than returning when it is stored (a write in between was
// acknowledged and lost in CI). Objects the pair does not copy, the sync's
// own copies and Leases still pass, and once the fence is lifted writes
// pass again. Run many times, since the gap it closes is milliseconds.
func TestTheWriteFenceRefusesTheFirstWriteAfterItsStep(t *testing.T) {
	ctx := context.Background()
	const ns = "write-fence"
	apply(t, east.Client, ns, fencedPair)
	var pair tandemv1.HAPair
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &pair); err != nil {
		t.Fatal(err)
	}
	configMap := func(name string, labels map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	}
	copied := map[string]string{"app": "shop"}
	waited := 0
	const rounds = 15
	for i := range rounds {
		so := &tandemv1.Switchover{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("to-west-%d", i)},
			Spec: tandemv1.SwitchoverSpec{PairRef: "shop", TargetCluster: "dc-west", Type: tandemv1.SwitchoverPlanned}}
		deadline := time.Now().Add(10 * time.Second)
		for {
			res, err := controller.FenceWrites(ctx, east.Client, "dc-east", so, &pair)
			if err != nil {
				t.Fatalf("FenceWrites: %v", err)
			}
			if res.Phase == tandemv1.StepSucceeded {
				break
			}
			if res.Phase != "" || time.Now().After(deadline) {
				t.Fatalf("FenceWrites for %s: %+v", so.Name, res)
			}
			waited++
			time.Sleep(res.Retry)
		}
		err := east.Client.Create(ctx, configMap(fmt.Sprintf("late-%d", i), copied))
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "is switching over to dc-west (Switchover "+so.Name+")") {
			t.Fatalf("round %d: a write to a copied object right after FenceWrites: %v, want it refused naming the Switchover", i, err)
		}
		for _, obj := range []client.Object{
			configMap(fmt.Sprintf("unselected-%d", i), nil),
			configMap(fmt.Sprintf("copy-%d", i), map[string]string{"app": "shop", replicate.PairLabel: "shop"}),
			&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("election-%d", i), Labels: copied}},
		} {
			if err := east.Client.Create(ctx, obj); err != nil {
				t.Fatalf("round %d: %T %s under the fence: %v, want it admitted", i, obj, obj.GetName(), err)
			}
		}
		if err := controller.LiftWriteFence(ctx, east.Client, so); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("after-%d", i)
		if err := testbed.Poll(ctx, 10*time.Second, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
			err := east.Client.Create(ctx, configMap(name, copied))
			return err == nil, err
		}); err != nil {
			t.Fatalf("round %d: writes after the fence is lifted: %v", i, err)
		}
	}
	t.Logf("%d rounds: FenceWrites waited %d times for the API server to enforce the fence", rounds, waited)
}
