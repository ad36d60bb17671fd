package controller

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// The steps of a failover after its epoch run only while this side still
// holds that epoch: one that goes on past its timeout must not start
// workloads on a side another switchover has since demoted.
func TestFailoverStepsAfterThePromotionRunOnlyWhileItHolds(t *testing.T) {
	r := &SwitchoverReconciler{ClusterName: "dc-west"}
	ran := 0
	step := r.whilePromoted(func(context.Context, *switchoverScope) (switchover.Result, error) {
		ran++
		return switchover.Succeeded("workloads Available"), nil
	})
	cases := []struct {
		name   string
		active string
		epoch  int64
		phase  tandemv1.StepPhase
		runs   bool
		says   string
	}{
		{"this side holds the failover's epoch", "dc-west", 6, tandemv1.StepSucceeded, true, "workloads Available"},
		{"the cache has not seen the promotion yet", "dc-east", 5, "", false, "waiting to read the promotion: dc-west active at epoch 6"},
		{"another failover moved the pair on", "dc-east", 7, tandemv1.StepFailed, false, "moved on to dc-east active at epoch 7 after this failover took epoch 6"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ran = 0
			s := &switchoverScope{
				obj:  &tandemv1.Switchover{Status: tandemv1.SwitchoverStatus{Epoch: 6}},
				pair: &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Status: tandemv1.HAPairStatus{ActiveCluster: c.active, Epoch: c.epoch}},
			}
			res, err := step(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			if res.Phase != c.phase || (ran == 1) != c.runs || !strings.Contains(res.Message, c.says) {
				t.Fatalf("phase %q, ran %d, message %q; want phase %q, runs %v, message with %q", res.Phase, ran, res.Message, c.phase, c.runs, c.says)
			}
		})
	}
}
