package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// helmInstall installs charts/tandem into cluster c with helm (bin/helm,
// or $HELM), waiting until its Deployment is Available (kwok runs the pod
// without pulling the image).
func helmInstall(t *testing.T, c *testbed.Cluster, args ...string) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(testbed.RepoRoot(), "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm is not built: run `make helm` (or set HELM): %v", err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, append([]string{"install", "tandem", filepath.Join(testbed.RepoRoot(), "charts", "tandem"),
		"--kubeconfig", c.Kubeconfig, "--namespace", "tandem-system", "--create-namespace", "--wait", "--timeout", "2m"}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm install into %s: %v\n%s", c.Name, err, out.String())
	}
	return out.String()
}

// upChartBed brings up a bed for a helm-installed pair: the data centers
// and the witness (its Lease namespace created), and BIND for dnsZone.
func upChartBed(t *testing.T, opts testbed.UpOptions) (*testbed.Bed, map[string]*testbed.Cluster, testbed.DNSServer) {
	t.Helper()
	bed, clusters := upBed(t, opts)
	if err := clusters[testbed.Witness].Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tandem-system"}}); err != nil {
		t.Fatal(err)
	}
	srv, err := bed.StartDNS(dnsZone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bed.StopDNS() })
	return bed, clusters, srv
}

// serviceAccountKubeconfig writes a kubeconfig that reaches cluster c as
// ServiceAccount ns/name, with a token from the TokenRequest API: what the
// operator's pod would get.
func serviceAccountKubeconfig(t *testing.T, c *testbed.Cluster, ns, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s/%s on %s: %v", ns, name, c.Name, err)
	}
	// The cluster entry (server and CA) of the admin kubeconfig, with the
	// ServiceAccount's token as the only credential.
	flat, err := c.FlatKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(flat)
	if err != nil {
		t.Fatal(err)
	}
	current := cfg.Contexts[cfg.CurrentContext]
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{name: {Token: tok.Status.Token}}
	cfg.Contexts = map[string]*clientcmdapi.Context{c.Name: {Cluster: current.Cluster, AuthInfo: name}}
	cfg.CurrentContext = c.Name
	path := filepath.Join(t.TempDir(), c.Name+"-"+name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// The chart installed with helm into each data center, each operator
// running with exactly the rights the chart gives its ServiceAccount and
// reaching the other side as the chart's tandem-peer ServiceAccount: the
// pair syncs, its DNS record follows a planned switchover, and the
// generated least-privilege RBAC is enough for all of it, both with the
// default ClusterRoles and with rbac.namespaces, where both identities'
// rights on namespaced kinds are Roles in the pair's namespace only.
func TestOperatorsRunWithTheChartsRBAC(t *testing.T) {
	for _, mode := range []struct {
		name       string
		namespaces []string // rbac.namespaces
	}{
		{"cluster-wide", nil},
		{"namespaced", []string{"shop"}},
	} {
		t.Run(mode.name, func(t *testing.T) { runWithTheChartsRBAC(t, mode.namespaces) })
	}
}

func runWithTheChartsRBAC(t *testing.T, namespaces []string) {
	ctx := context.Background()
	bed, clusters, srv := upChartBed(t, testbed.UpOptions{Witness: true, Nodes: 1})
	east, west := clusters[testbed.East], clusters[testbed.West]
	ops, operatorKubeconfig := map[string]*testbed.Operator{}, map[string]string{}
	for _, side := range []struct {
		c    *testbed.Cluster
		peer string
	}{{east, testbed.West}, {west, testbed.East}} {
		start := time.Now()
		helmArgs, opArgs := []string{"--set", "clusterName=" + side.c.Name}, []string{}
		if len(namespaces) > 0 {
			// The Roles go into the namespaces: they exist first.
			for _, ns := range namespaces {
				if err := side.c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
					t.Fatal(err)
				}
			}
			helmArgs = append(helmArgs, "--set", "rbac.namespaces={"+strings.Join(namespaces, ",")+"}")
			opArgs = append(opArgs, "--namespaces", strings.Join(namespaces, ","))
		}
		helmInstall(t, side.c, helmArgs...)
		t.Logf("helm install into %s: Deployment Available after %s", side.c.Name, time.Since(start).Round(10*time.Millisecond))
		if err := bed.StartExternalDNS(ctx, side.c.Name, testbed.ExternalDNSOptions{DNS: srv}); err != nil {
			t.Fatal(err)
		}
		kubeconfig := serviceAccountKubeconfig(t, side.c, "tandem-system", "tandem-operator")
		operatorKubeconfig[side.c.Name] = kubeconfig
		op := testbed.StartOperator(t, side.c, side.c.Name, append([]string{"--kubeconfig", kubeconfig, "--leader-elect"}, opArgs...)...)
		ops[side.c.Name] = op
		t.Cleanup(func() {
			if t.Failed() {
				data, _ := os.ReadFile(op.LogPath)
				if len(data) > 6000 {
					data = data[len(data)-6000:]
				}
				t.Logf("operator %s, log tail:\n%s", op.Cluster, data)
			}
		})
	}
	for _, op := range ops {
		if err := op.WaitHealthy(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	// Each side reaches the other as the chart's tandem-peer
	// ServiceAccount, as docs/install.md says to mint the kubeconfig.
	peerKubeconfig := func(_, to *testbed.Cluster) []byte {
		data, err := os.ReadFile(serviceAccountKubeconfig(t, to, "tandem-system", "tandem-peer"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	const ns = "shop"
	twoSidedPair(t, clusters, pairOptions{ns: ns, mode: tandemv1.FailoverAutomatic, witness: true, peerKubeconfig: peerKubeconfig, traffic: &tandemv1.TrafficSpec{
		Provider:    tandemv1.DNSProviderExternalDNS,
		ExternalDNS: &tandemv1.ExternalDNSSpec{VerifyServers: []string{srv.Addr}},
		DNS:         []tandemv1.DNSRecord{shopRecord()},
	}})
	waitRole(t, east, ns, tandemv1.RoleActive, testbed.East, 1, time.Minute)
	waitSynced(t, east, ns)
	waitAnswer(t, srv, shopName, eastIP, time.Minute)
	if len(namespaces) > 0 {
		outsideTheNamespaces(t, east, ns, operatorKubeconfig[testbed.East], serviceAccountKubeconfig(t, east, "tandem-system", "tandem-peer"))
	}

	so := switchoverTo(t, east, ns, "to-west", tandemv1.SwitchoverPlanned, testbed.West, nil)
	so = waitSwitchover(t, east, so, tandemv1.PhaseSucceeded, 2*time.Minute)
	if got := answer(t, srv, shopName); got != westIP {
		t.Fatalf("after the switchover BIND answers [%s], want %s", got, westIP)
	}
	waitSynced(t, west, ns)
	if err := waitAvailable(ctx, west.Client, ns, "web", 2); err != nil {
		t.Fatal(err)
	}
	t.Logf("with the chart's RBAC: planned switchover to dc-west in RTO %s; %s", so.Status.RTO.Duration, stepsLine(so))
}

// outsideTheNamespaces checks, on c, what rbac.namespaces promises beyond
// namespace ns: neither identity (the operator's and the peer's
// ServiceAccounts, behind kubeconfigs) can read a Secret elsewhere, and a
// pair elsewhere is not acted on.
func outsideTheNamespaces(t *testing.T, c *testbed.Cluster, ns string, kubeconfigs ...string) {
	t.Helper()
	ctx := context.Background()
	const other = "team-b"
	if err := testbed.GrantDNSNames(ctx, c.Client, other, shopName, drillName); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "db-password"},
		StringData: map[string]string{"password": "hunter2"}}); err != nil {
		t.Fatal(err)
	}
	for _, kubeconfig := range kubeconfigs {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		sa, err := client.New(cfg, client.Options{Scheme: testbed.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		var secret corev1.Secret
		if err := sa.Get(ctx, client.ObjectKey{Namespace: other, Name: "db-password"}, &secret); !apierrors.IsForbidden(err) {
			t.Fatalf("%s read a Secret in %s: err %v, want Forbidden", filepath.Base(kubeconfig), other, err)
		}
		if err := sa.List(ctx, &corev1.SecretList{}); !apierrors.IsForbidden(err) {
			t.Fatalf("%s listed Secrets cluster-wide: err %v, want Forbidden", filepath.Base(kubeconfig), err)
		}
	}
	var pair tandemv1.HAPair
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &pair); err != nil {
		t.Fatal(err)
	}
	elsewhere := &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "shop"}, Spec: pair.Spec}
	if err := c.Client.Create(ctx, elsewhere); err != nil {
		t.Fatal(err)
	}
	// The operator reconciles a pair it sees within milliseconds; one it
	// does not watch keeps the status it was created with.
	time.Sleep(3 * time.Second)
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(elsewhere), elsewhere); err != nil {
		t.Fatal(err)
	}
	if len(elsewhere.Status.Conditions) > 0 || elsewhere.Status.LocalRole != "" {
		t.Fatalf("the operator acted on a pair in %s, outside rbac.namespaces: status %+v", other, elsewhere.Status)
	}
	t.Logf("with rbac.namespaces=[%s]: no Secret in %s readable by the operator's or the peer's identity, the pair there untouched after 3s", ns, other)
}
