package chart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tandem-dev/tandem/test/testbed"
)

// previousChart is the chart as it was released before this one (0.1.0,
// `helm package` of charts/tandem at 12cc63f^): its CRDs were in crds/,
// which helm installs once and no upgrade touches, and they do not know
// AAAA records.
var previousChart = filepath.Join("testdata", "tandem-0.1.0.tgz")

// withAAAA is a pair a user of this release may apply: an IPv6 record.
const withAAAA = `
apiVersion: tandem.dev/v1alpha1
kind: HAPair
metadata: {name: shop, namespace: tandem-system}
spec:
  clusters:
  - {name: dc-east}
  - {name: dc-west, kubeconfigSecretRef: {name: dc-west-kubeconfig}}
  primary: dc-east
  traffic:
    provider: RFC2136
    rfc2136: {servers: ["127.0.0.1:53"], zone: example.com., tsigKeyName: tandem., tsigSecretRef: {name: tandem-tsig}}
    dns:
    - name: shop.example.com
      type: AAAA
      ttl: 30
      targets:
      - {cluster: dc-east, values: ["fd00:1::10"]}
      - {cluster: dc-west, values: ["fd00:2::10"]}
`

// A release of the previous chart, upgraded with a real helm upgrade to
// this one, gets this release's CRDs: a pair with an AAAA record, refused
// before, is accepted after. The CRDs are kept when the release is
// uninstalled, and so is every pair.
func TestHelmUpgradeFromThePreviousChartUpgradesTheCRDs(t *testing.T) {
	ctx := context.Background()
	srv, err := testbed.StartBareAPIServer(ctx, "upgrade")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	kc, err := srv.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	release := func(args ...string) {
		t.Helper()
		if out, err := helm(t, append(args, "--kubeconfig", kubeconfig, "--namespace", "tandem-system")...); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	pair := testbed.MustDecode(t, withAAAA)[0]
	applyPair := func(dryRun bool) error {
		opts := []client.PatchOption{client.FieldOwner("user"), client.ForceOwnership}
		if dryRun {
			opts = append(opts, client.DryRunAll)
		}
		return srv.Client.Patch(ctx, pair.DeepCopy(), client.Apply, opts...)
	}

	release("install", "tandem", previousChart, "--create-namespace", "--set", "clusterName=dc-east")
	if err := applyPair(true); err == nil || !strings.Contains(err.Error(), `Unsupported value: "AAAA"`) {
		t.Fatalf("the previous chart's CRDs took an AAAA record (%v): the test no longer starts from the previous release", err)
	}

	// The previous release's CRDs are not the release's own (helm put
	// them in from crds/): the first upgrade takes them over, as
	// docs/install.md says.
	release("upgrade", "tandem", chart, "--take-ownership", "--set", "clusterName=dc-east")
	if err := applyPair(false); err != nil {
		t.Fatalf("after helm upgrade, the API server refuses a pair with an AAAA record: %v", err)
	}
	for _, name := range []string{"hapairs.tandem.dev", "syncpolicies.tandem.dev", "switchovers.tandem.dev"} {
		crd := crdNamed(t, srv, name)
		if a := crd.GetAnnotations(); a["helm.sh/resource-policy"] != "keep" || a["meta.helm.sh/release-name"] != "tandem" {
			t.Fatalf("CRD %s after the upgrade: annotations %v, want the release's and resource-policy keep", name, a)
		}
	}
	// Later upgrades need nothing more.
	release("upgrade", "tandem", chart, "--set", "clusterName=dc-east", "--set", "replicaCount=1")

	release("uninstall", "tandem")
	if crd := crdNamed(t, srv, "hapairs.tandem.dev"); crd.GetDeletionTimestamp() != nil {
		t.Fatal("helm uninstall deleted the HAPair CRD, and every pair with it")
	}
	if err := srv.Client.Get(ctx, client.ObjectKeyFromObject(pair), pair.DeepCopy()); err != nil {
		t.Fatalf("the pair after helm uninstall: %v", err)
	}
}

func crdNamed(t *testing.T, srv *testbed.APIServer, name string) *unstructured.Unstructured {
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	if err := srv.Client.Get(context.Background(), client.ObjectKey{Name: name}, crd); err != nil {
		t.Fatalf("CRD %s: %v", name, err)
	}
	return crd
}
