package controller

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// A planned switchover promises zero loss, so from the final sync on the
// old side must not accept a change the target will never see: the sync is
// verified once and then paused, and after the swap the new active side's
// copies replace whatever was written here. The write fence is a
// ValidatingAdmissionPolicy the switchover installs on the old side before
// its final sync and removes when it ends (or rolls back): in the
// namespaces the pair's policies select, it refuses every create, update
// and delete of a top-level object their selectors match, except the
// sync's own copies (labelled with the pair) and objects a controller owns
// (pods, ReplicaSets, EndpointSlices: the cluster's own machinery, which
// must keep stopping the parked workloads). Tandem's own objects, Leases,
// Events, the traffic objects the switchover rewrites here (DNSEndpoints,
// Ingresses, HTTPRoutes), PVCs and VolumeSnapshots (the data moves in the
// final snapshot, whose controllers update both) are never fenced. A
// client sees the policy's message naming the Switchover.
//
// An API server learns of a new policy through its own informers, some
// milliseconds after the create returns, and until then admits what the
// policy would refuse: a write in that gap is acknowledged, missed by the
// final sync, and lost (TestPlannedSwitchoverAndBack caught one in CI). So
// the step ends only once the fence refuses a probe: a dry-run create of a
// Lease labelled WriteFenceProbeLabel in the pair's namespace, matched by a
// binding of its own that is written after all the others. The API
// server's binding informer sees them in the order they were written, so
// the probe's refusal means every binding before it is in force too. The
// other bindings leave probe-labelled objects alone, so a refusal naming
// the probe comes from the probe's binding only. With several API servers
// behind one address the probe reaches one of them: docs/switchover.md
// says so.
const (
	// WriteFenceLabel on a fence's policy and bindings names its
	// Switchover, <namespace>.<name>.
	WriteFenceLabel = "tandem.dev/write-fence-of"
	// WriteFenceProbeLabel marks the dry-run object that proves the
	// fence is in force.
	WriteFenceProbeLabel = "tandem.dev/write-fence-probe"
)

// writeFenceProbeMessage is what the fence answers the probe.
const writeFenceProbeMessage = "the Tandem write fence is in force"

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=get;list;watch;create;update;patch;delete;deletecollection

func writeFenceName(so *tandemv1.Switchover) string {
	return "tandem-write-fence." + so.Namespace + "." + so.Name
}

func writeFenceOwner(so *tandemv1.Switchover) string { return so.Namespace + "." + so.Name }

// fenceWrites installs the write fence on this side. It repeats safely:
// what is there is updated.
func (r *SwitchoverReconciler) fenceWrites(ctx context.Context, s *switchoverScope) (switchover.Result, error) {
	policies, err := allPairPolicies(ctx, r.Client, s.pair)
	if err != nil {
		return switchover.Result{}, err
	}
	// One binding per way a policy selects namespaces, with the policy's
	// object selector: what it copies, by namespace and label.
	var matches []admissionv1.MatchResources
	for _, p := range policies {
		if p.Spec.Suspend {
			continue
		}
		var namespaces []*metav1.LabelSelector
		if len(p.Spec.Namespaces.Names) > 0 {
			namespaces = append(namespaces, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: p.Spec.Namespaces.Names,
			}}})
		}
		if p.Spec.Namespaces.Selector != nil {
			namespaces = append(namespaces, p.Spec.Namespaces.Selector)
		}
		for _, ns := range namespaces {
			matches = append(matches, admissionv1.MatchResources{NamespaceSelector: ns, ObjectSelector: withoutProbe(p.Spec.Selector)})
		}
	}
	if len(matches) == 0 {
		return switchover.Skipped("the pair's SyncPolicies select no namespace: there is nothing to fence"), nil
	}
	// The probe's binding comes last: see the comment at the top.
	matches = append(matches, admissionv1.MatchResources{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": s.pair.Namespace}},
		ObjectSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{WriteFenceProbeLabel: writeFenceOwner(s.obj)}},
	})
	want := writeFencePolicy(s.obj, s.pair)
	policy := &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: want.Name}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, policy, func() error {
		policy.Labels, policy.Spec = want.Labels, want.Spec
		return nil
	}); err != nil {
		return switchover.Result{}, fmt.Errorf("writing ValidatingAdmissionPolicy %s: %w", want.Name, err)
	}
	for i := range matches {
		binding := &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: want.Name + "." + strconv.Itoa(i)}}
		if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, binding, func() error {
			binding.Labels = want.Labels
			binding.Spec = admissionv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        want.Name,
				ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
				MatchResources:    &matches[i],
			}
			return nil
		}); err != nil {
			return switchover.Result{}, fmt.Errorf("writing ValidatingAdmissionPolicyBinding %s: %w", binding.Name, err)
		}
	}
	if inForce, err := r.writeFenceInForce(ctx, s); err != nil || !inForce {
		return switchover.Waiting(fmt.Sprintf("ValidatingAdmissionPolicy %s is written; waiting for %s's API server to enforce it", policy.Name, r.ClusterName), 50*time.Millisecond), err
	}
	return switchover.Succeeded(fmt.Sprintf("%s refuses changes to the objects the pair copies until the switchover ends (ValidatingAdmissionPolicy %s)", r.ClusterName, policy.Name)), nil
}

// writeFenceInForce reports whether the API server refuses the fence's
// probe: a dry-run create, which runs admission and stores nothing.
func (r *SwitchoverReconciler) writeFenceInForce(ctx context.Context, s *switchoverScope) (bool, error) {
	probe := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "tandem-write-fence-probe-",
		Namespace:    s.pair.Namespace,
		Labels:       map[string]string{WriteFenceProbeLabel: writeFenceOwner(s.obj)},
	}}
	err := r.Create(ctx, probe, client.DryRunAll)
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), writeFenceProbeMessage):
		return true, nil
	default:
		return false, fmt.Errorf("probing the write fence with a dry-run Lease in namespace %s: %w", s.pair.Namespace, err)
	}
}

// withoutProbe is a policy's object selector that leaves the fence's probe
// to the probe's own binding.
func withoutProbe(sel *metav1.LabelSelector) *metav1.LabelSelector {
	out := &metav1.LabelSelector{}
	if sel != nil {
		out = sel.DeepCopy()
	}
	out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{Key: WriteFenceProbeLabel, Operator: metav1.LabelSelectorOpDoesNotExist})
	return out
}

func writeFencePolicy(so *tandemv1.Switchover, pair *tandemv1.HAPair) *admissionv1.ValidatingAdmissionPolicy {
	all := []string{"*"}
	rule := func(group string, resources ...string) admissionv1.NamedRuleWithOperations {
		return admissionv1.NamedRuleWithOperations{RuleWithOperations: admissionv1.RuleWithOperations{
			Operations: []admissionv1.OperationType{admissionv1.OperationAll},
			Rule:       admissionv1.Rule{APIGroups: []string{group}, APIVersions: all, Resources: resources},
		}}
	}
	namespaced := admissionv1.NamespacedScope
	message := fmt.Sprintf("HAPair %s/%s is switching over to %s (Switchover %s): this side accepts no change to the objects it copies until the switchover ends",
		pair.Namespace, pair.Name, so.Spec.TargetCluster, so.Name)
	return &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: writeFenceName(so), Labels: map[string]string{WriteFenceLabel: writeFenceOwner(so)}},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{
				ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update, admissionv1.Delete},
					Rule:       admissionv1.Rule{APIGroups: all, APIVersions: all, Resources: all, Scope: &namespaced},
				}}},
				// The switchover itself writes the traffic objects on
				// this side (FlipTraffic disables its routes and moves its
				// records, a rollback restores them): routing, not data.
				// A PVC's data travels in the final snapshot, whose
				// controllers update the PVC and the snapshots here.
				ExcludeResourceRules: []admissionv1.NamedRuleWithOperations{
					rule("", "persistentvolumeclaims"),
					rule("snapshot.storage.k8s.io", "*"),
					rule(tandemv1.GroupVersion.Group, "*"),
					rule("", "events"),
					rule("events.k8s.io", "events"),
					rule("externaldns.k8s.io", "dnsendpoints"),
					rule("networking.k8s.io", "ingresses"),
					rule("gateway.networking.k8s.io", "httproutes"),
				},
			},
			Variables: []admissionv1.Variable{
				{Name: "obj", Expression: "request.operation == 'DELETE' ? oldObject : object"},
			},
			// Leases are matched only so the probe can be one (the
			// operator may create Leases, and nothing the fence refuses):
			// every other Lease passes, leader elections go on.
			Validations: []admissionv1.Validation{{
				Expression: fmt.Sprintf(`!(has(variables.obj.metadata.labels) && %q in variables.obj.metadata.labels)`, WriteFenceProbeLabel),
				Message:    writeFenceProbeMessage,
				Reason:     ptr.To(metav1.StatusReasonForbidden),
			}, {
				Expression: fmt.Sprintf(`request.resource.group == 'coordination.k8s.io' ||
(has(variables.obj.metadata.labels) && %[1]q in variables.obj.metadata.labels && variables.obj.metadata.labels[%[1]q] == %[2]q &&
  (!(%[3]q in variables.obj.metadata.labels) || variables.obj.metadata.labels[%[3]q] == %[4]q)) ||
(has(variables.obj.metadata.ownerReferences) && variables.obj.metadata.ownerReferences.exists(o, has(o.controller) && o.controller))`,
					replicate.PairLabel, pair.Name, replicate.PairNamespaceLabel, pair.Namespace),
				Message: message,
				Reason:  ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}
}

// liftWriteFence removes the fence of a Switchover, if it installed one.
func (r *SwitchoverReconciler) liftWriteFence(ctx context.Context, so *tandemv1.Switchover) error {
	sel := client.MatchingLabels{WriteFenceLabel: writeFenceOwner(so)}
	if err := r.DeleteAllOf(ctx, &admissionv1.ValidatingAdmissionPolicyBinding{}, sel); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the write fence of Switchover %s/%s: %w", so.Namespace, so.Name, err)
	}
	err := r.Delete(ctx, &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: writeFenceName(so)}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the write fence of Switchover %s/%s: %w", so.Namespace, so.Name, err)
	}
	return nil
}
