package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/test/testbed"
)

// upBed brings up dc-east and dc-west in a directory of the test's own and
// tears them down when the test ends, failing it if any process survives.
func upBed(t *testing.T, opts testbed.UpOptions) (*testbed.Bed, map[string]*testbed.Cluster) {
	t.Helper()
	ctx := context.Background()
	bed, err := testbed.NewBed(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bed.Down(context.Background()); err != nil {
			t.Errorf("tearing the test bed down: %v", err)
		}
	})
	clusters, err := bed.Up(ctx, opts)
	if err != nil {
		t.Fatalf("bringing the test bed up: %v", err)
	}
	byName := map[string]*testbed.Cluster{}
	for _, c := range clusters {
		byName[c.Name] = c
	}
	return bed, byName
}

func createDeployment(ctx context.Context, c client.Client, ns, name string, replicas int32) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	labels := map[string]string{"app": name}
	return c.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1"}}},
			},
		},
	})
}

func waitAvailable(ctx context.Context, c client.Client, ns, name string, replicas int32) error {
	return testbed.Poll(ctx, 60*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false, err
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue && d.Status.AvailableReplicas == replicas {
				return true, nil
			}
		}
		return false, fmt.Errorf("deployment %s/%s: %d/%d available", ns, name, d.Status.AvailableReplicas, replicas)
	})
}

// Both data centers are real clusters: a Deployment created in each is
// scheduled onto simulated nodes and becomes Available; and down leaves no
// process behind.
func TestTestbedBringsUpTwoDataCenters(t *testing.T) {
	ctx := context.Background()
	bed, clusters := upBed(t, testbed.UpOptions{})
	for _, name := range []string{testbed.East, testbed.West} {
		c := clusters[name]
		if c == nil {
			t.Fatalf("cluster %s was not created", name)
		}
		start := time.Now()
		if err := createDeployment(ctx, c.Client, "shop", "web", 3); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := waitAvailable(ctx, c.Client, "shop", "web", 3); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: Deployment with 3 replicas Available in %s", name, time.Since(start).Round(time.Millisecond))
	}

	var pids []int
	for _, name := range bed.Names() {
		for _, pid := range bed.PIDs(name) {
			pids = append(pids, pid)
		}
	}
	if len(pids) != 10 {
		t.Fatalf("want 5 processes per data center (etcd, apiserver, controller-manager, scheduler, kwok), got %d: %v", len(pids), pids)
	}
	if err := bed.Down(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if testbed.ProcessAlive(pid) {
			t.Errorf("process %d is still running after down", pid)
		}
	}
	if n := bed.Names(); len(n) != 0 {
		t.Errorf("clusters %v still exist after down", n)
	}
}

// Stopping a data center makes its API unreachable; starting it again brings
// it back with its state. Failover tests rely on exactly this.
func TestTestbedDataCenterGoesDarkAndReturns(t *testing.T) {
	ctx := context.Background()
	bed, clusters := upBed(t, testbed.UpOptions{Nodes: 1})
	east := clusters[testbed.East]
	if err := createDeployment(ctx, east.Client, "shop", "web", 1); err != nil {
		t.Fatal(err)
	}
	if err := waitAvailable(ctx, east.Client, "shop", "web", 1); err != nil {
		t.Fatal(err)
	}

	if err := bed.Stop(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	if pids := bed.PIDs(testbed.East); len(pids) != 0 {
		t.Fatalf("dc-east processes still running after stop: %v", pids)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := east.Client.Get(short, client.ObjectKey{Namespace: "shop", Name: "web"}, &appsv1.Deployment{})
	cancel()
	if err == nil {
		t.Fatal("dc-east still answered after it was stopped")
	}
	// The other data center is untouched.
	if err := clusters[testbed.West].Client.List(ctx, &corev1.NamespaceList{}); err != nil {
		t.Fatalf("dc-west stopped answering when dc-east went dark: %v", err)
	}

	start := time.Now()
	if err := bed.Start(ctx, testbed.East); err != nil {
		t.Fatal(err)
	}
	if err := waitAvailable(ctx, east.Client, "shop", "web", 1); err != nil {
		t.Fatalf("dc-east came back without its Deployment: %v", err)
	}
	t.Logf("dc-east back with its state in %s", time.Since(start).Round(time.Millisecond))
}
