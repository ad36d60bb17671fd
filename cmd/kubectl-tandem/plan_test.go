package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/test/testbed"
)

var (
	server     *testbed.APIServer
	kubeconfig string
)

func TestMain(m *testing.M) {
	s, err := testbed.StartAPIServer(context.Background(), "plugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	dir, _ := os.MkdirTemp("", "kubectl-tandem-")
	kc, err := s.Kubeconfig()
	if err == nil {
		kubeconfig = filepath.Join(dir, "kubeconfig")
		err = os.WriteFile(kubeconfig, kc, 0o600)
	}
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	_ = s.Stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const shop = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: dc-west-kubeconfig, namespace: shop}
stringData: {kubeconfig: "not copied"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {zone: east}
      containers: [{name: web, image: registry.east.example.com/web:1, envFrom: [{configMapRef: {name: config}}, {secretRef: {name: absent}}]}]
---
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {name: shop, namespace: shop}
spec:
  clusters:
  - {name: dc-east}
  - {name: dc-west, kubeconfigSecretRef: {name: dc-west-kubeconfig}}
  primary: dc-east
  syncPolicyRefs: [{name: app}]
---
apiVersion: tandem.dev/v1alpha1
kind: SyncPolicy
metadata: {name: app, namespace: shop}
spec:
  namespaces: {names: [shop]}
  transforms:
    imageRegistries: [{from: registry.east.example.com, to: registry.west.example.com}]
    removeFields: [{target: {group: apps, kind: Deployment}, paths: [spec.template.spec.nodeSelector]}]
`

func setup(t *testing.T) {
	t.Helper()
	for _, u := range testbed.MustDecode(t, shop) {
		if err := server.Client.Create(context.Background(), u); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
}

func runPlugin(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("kubectl tandem %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func TestPlanTable(t *testing.T) {
	setup(t)
	got := runPlugin(t, "plan", "app", "-n", "shop")
	want := `SyncPolicy shop/app for HAPair shop: 3 objects in 3 waves, standby mode Warm

WAVE  OBJECT                    CHANGES
1     Namespace shop            
2     ConfigMap shop/config     
3     Deployment.apps shop/web  replicas 3 -> 0 (warm standby; restored on promotion); image registry.east.example.com/web:1 -> registry.west.example.com/web:1; removed spec.template.spec.nodeSelector

Dependencies not selected (assumed present on the standby):
  Deployment.apps shop/web needs Secret shop/absent (pod template: secret)
`
	if got != want {
		t.Fatalf("kubectl tandem plan printed:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanJSON(t *testing.T) {
	setup(t)
	var p replicate.Preview
	if err := json.Unmarshal([]byte(runPlugin(t, "plan", "app", "-n", "shop", "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	if p.Waves != 3 || len(p.Items) != 3 || p.Items[2].Ref.Kind != "Deployment" || len(p.Missing) != 1 {
		t.Fatalf("preview = %+v", p)
	}
}

func TestPlanUnknownPolicy(t *testing.T) {
	var out, errOut bytes.Buffer
	cmd := newRootCommand(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"--kubeconfig", kubeconfig, "plan", "nope", "-n", "shop"})
	err := cmd.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "reading SyncPolicy shop/nope") {
		t.Fatalf("want an error naming the SyncPolicy, got %v", err)
	}
}
