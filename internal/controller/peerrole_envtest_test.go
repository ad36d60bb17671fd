package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/test/testbed"
)

// The shipped peer ClusterRole (config/rbac/peer_role.yaml) is all the
// other side's operator needs: a pair whose kubeconfig holds a token of a
// ServiceAccount bound to it, and to nothing else, is probed, mirrored,
// heartbeats and syncs the sample app without a Forbidden. With a rule of
// it missing, the pair says the peer refuses (PeerForbidden, kstatus
// Failed) instead of calling the peer unreachable.
func TestThePeerRoleIsEnoughToSync(t *testing.T) {
	ctx := context.Background()
	ns := "peer-role"
	data, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "config", "rbac", "peer_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	full := role.Rules
	// Without the rule that lets the sync list what it selects.
	role.Rules = slices.DeleteFunc(slices.Clone(full), func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "*") })
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tandem-peer"}}
	for _, obj := range []client.Object{&role, sa, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tandem-peer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}},
	}} {
		if err := west.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}
	if err := west.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("requesting a token for %s: %v", sa.Name, err)
	}
	kc, err := clientcmd.Write(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"dc-west": {Server: west.Config.Host, CertificateAuthorityData: west.Config.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"tandem-peer": {Token: tr.Status.Token}},
		Contexts:       map[string]*clientcmdapi.Context{"dc-west": {Cluster: "dc-west", AuthInfo: "tandem-peer"}},
		CurrentContext: "dc-west",
	})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, east.Client, ns, pairAndPolicy+"---"+app)
	kubeconfigSecret(t, ns, "dc-west-kubeconfig", kc)

	pair, _ := waitPair(t, ns, tandemv1.SyncedCondition, "the pair says the peer refuses", func(p *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Reason == tandemv1.PeerForbiddenReason
	})
	kstatusIs(t, east.Client, pair, kstatus.FailedStatus, "The peer identity may not sync to dc-west")
	role.Rules = full
	if err := west.Client.Update(ctx, &role); err != nil {
		t.Fatal(err)
	}

	waitPair(t, ns, tandemv1.SyncedCondition, "the pair syncs through the peer role", func(p *tandemv1.HAPair, c *metav1.Condition) bool {
		return c.Status == metav1.ConditionTrue
	})
	for _, obj := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "config"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}},
		&tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}},
		&tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}},
	} {
		waitFor(t, fmt.Sprintf("%T %s on dc-west", obj, obj.GetName()), func(ctx context.Context) (bool, error) {
			err := west.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			return err == nil, err
		})
	}
	var policy tandemv1.SyncPolicy
	if err := east.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &policy); err != nil {
		t.Fatal(err)
	}
	if len(policy.Status.Failures) > 0 {
		t.Fatalf("copies failed through the peer role: %+v", policy.Status.Failures)
	}
}
