package plan

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// Edge says From must wait until To exists. Reason names the rule that found
// it, for the plan preview and for cycle reports.
type Edge struct {
	From   Ref    `json:"from"`
	To     Ref    `json:"to"`
	Reason string `json:"reason"`
}

// Edge reasons: the rules that produce edges.
const (
	ReasonNamespace      = "namespace"
	ReasonConfigMap      = "pod template: configMap"
	ReasonSecret         = "pod template: secret"
	ReasonPVC            = "pod template: persistentVolumeClaim"
	ReasonServiceAccount = "pod template: serviceAccountName"
	ReasonPriorityClass  = "pod template: priorityClassName"
	ReasonPullSecret     = "pod template: imagePullSecrets"
	ReasonStorageClass   = "storageClassName"
	ReasonDataSource     = "persistentVolumeClaim dataSource"
	ReasonRoleRef        = "roleRef"
	ReasonSubject        = "subject"
	ReasonBackend        = "backend service"
	ReasonTLSSecret      = "tls secret"
	ReasonIngressClass   = "ingressClassName"
	ReasonParentRef      = "parentRef"
	ReasonScaleTarget    = "scaleTargetRef"
	ReasonPDBSelector    = "disruption budget selector"
	ReasonCRD            = "custom resource definition"
	ReasonWebhookService = "webhook service"
	ReasonAPIService     = "apiService service"
	ReasonSAPullSecret   = "serviceAccount imagePullSecrets"
	ReasonAnnotation     = DependsOnAnnotation
	ReasonPolicy         = "SyncPolicy extraDependencies"
)

const (
	gatewayGroup = "gateway.networking.k8s.io"
)

// refsOf returns the edges the built-in rules find for one object. Objects
// referenced only by name get the object's namespace; the caller drops edges
// to objects that are not selected (as missing dependencies) and resolves
// cluster-scoped targets.
func refsOf(obj *unstructured.Unstructured) []Edge {
	from := RefOf(obj)
	ns := obj.GetNamespace()
	var out []Edge
	add := func(to Ref, reason string) {
		if to.Name == "" || to == from {
			return
		}
		out = append(out, Edge{From: from, To: to, Reason: reason})
	}
	if ns != "" {
		add(Ref{Kind: "Namespace", Name: ns}, ReasonNamespace)
	}

	for _, podSpec := range PodSpecs(obj) {
		podSpecRefs(podSpec, ns, add)
	}

	switch from.GroupKind().String() {
	case "StatefulSet.apps":
		templates, _, _ := unstructured.NestedSlice(obj.Object, "spec", "volumeClaimTemplates")
		for _, t := range templates {
			if m, ok := t.(map[string]any); ok {
				add(Ref{Group: "storage.k8s.io", Kind: "StorageClass", Name: str(m, "spec", "storageClassName")}, ReasonStorageClass)
			}
		}
	case "PersistentVolumeClaim":
		add(Ref{Group: "storage.k8s.io", Kind: "StorageClass", Name: str(obj.Object, "spec", "storageClassName")}, ReasonStorageClass)
		for _, field := range []string{"dataSource", "dataSourceRef"} {
			src, ok, _ := unstructured.NestedMap(obj.Object, "spec", field)
			if !ok {
				continue
			}
			group := str(src, "apiGroup")
			srcNS := str(src, "namespace")
			if srcNS == "" {
				srcNS = ns
			}
			add(Ref{Group: group, Kind: str(src, "kind"), Namespace: srcNS, Name: str(src, "name")}, ReasonDataSource)
		}
	case "RoleBinding.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io":
		roleKind := str(obj.Object, "roleRef", "kind")
		roleNS := ns
		if roleKind == "ClusterRole" {
			roleNS = ""
		}
		add(Ref{Group: "rbac.authorization.k8s.io", Kind: roleKind, Namespace: roleNS, Name: str(obj.Object, "roleRef", "name")}, ReasonRoleRef)
		subjects, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
		for _, s := range subjects {
			m, ok := s.(map[string]any)
			if !ok || str(m, "kind") != "ServiceAccount" {
				continue
			}
			subjNS := str(m, "namespace")
			if subjNS == "" {
				subjNS = ns
			}
			add(Ref{Kind: "ServiceAccount", Namespace: subjNS, Name: str(m, "name")}, ReasonSubject)
		}
	case "Ingress.networking.k8s.io":
		add(Ref{Kind: "Service", Namespace: ns, Name: str(obj.Object, "spec", "defaultBackend", "service", "name")}, ReasonBackend)
		add(Ref{Group: "networking.k8s.io", Kind: "IngressClass", Name: str(obj.Object, "spec", "ingressClassName")}, ReasonIngressClass)
		rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "rules")
		for _, r := range rules {
			paths, _, _ := unstructured.NestedSlice(asMap(r), "http", "paths")
			for _, p := range paths {
				add(Ref{Kind: "Service", Namespace: ns, Name: str(asMap(p), "backend", "service", "name")}, ReasonBackend)
			}
		}
		tls, _, _ := unstructured.NestedSlice(obj.Object, "spec", "tls")
		for _, t := range tls {
			add(Ref{Kind: "Secret", Namespace: ns, Name: str(asMap(t), "secretName")}, ReasonTLSSecret)
		}
	case "HorizontalPodAutoscaler.autoscaling":
		target, _, _ := unstructured.NestedMap(obj.Object, "spec", "scaleTargetRef")
		group, _, _ := splitAPIVersion(str(target, "apiVersion"))
		add(Ref{Group: group, Kind: str(target, "kind"), Namespace: ns, Name: str(target, "name")}, ReasonScaleTarget)
	case "ServiceAccount":
		secrets, _, _ := unstructured.NestedSlice(obj.Object, "imagePullSecrets")
		for _, s := range secrets {
			add(Ref{Kind: "Secret", Namespace: ns, Name: str(asMap(s), "name")}, ReasonSAPullSecret)
		}
	case "ValidatingWebhookConfiguration.admissionregistration.k8s.io", "MutatingWebhookConfiguration.admissionregistration.k8s.io":
		hooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
		for _, h := range hooks {
			svc, ok, _ := unstructured.NestedMap(asMap(h), "clientConfig", "service")
			if ok {
				add(Ref{Kind: "Service", Namespace: str(svc, "namespace"), Name: str(svc, "name")}, ReasonWebhookService)
			}
		}
	case "APIService.apiregistration.k8s.io":
		// Registered before its Service exists, the API answers 503 and
		// discovery on the standby fails for every client.
		if svc, ok, _ := unstructured.NestedMap(obj.Object, "spec", "service"); ok {
			add(Ref{Kind: "Service", Namespace: str(svc, "namespace"), Name: str(svc, "name")}, ReasonAPIService)
		}
	}

	if from.Group == gatewayGroup && from.Kind != "Gateway" && from.Kind != "GatewayClass" {
		routeRefs(obj, ns, add)
	}
	return out
}

// PodSpecs finds the pod specs of any workload kind: Pods, every built-in
// controller, CronJobs, and custom resources shaped like them
// (spec.template.spec with containers). They are copies: reading only.
func PodSpecs(obj *unstructured.Unstructured) []map[string]any {
	var specs []map[string]any
	for _, path := range [][]string{
		{"spec", "template", "spec"},
		{"spec", "jobTemplate", "spec", "template", "spec"},
	} {
		if m, ok, _ := unstructured.NestedMap(obj.Object, path...); ok {
			if _, hasContainers := m["containers"]; hasContainers {
				specs = append(specs, m)
			}
		}
	}
	if obj.GetKind() == "Pod" && obj.GroupVersionKind().Group == "" {
		if m, ok, _ := unstructured.NestedMap(obj.Object, "spec"); ok {
			specs = append(specs, m)
		}
	}
	return specs
}

func podSpecRefs(spec map[string]any, ns string, add func(Ref, string)) {
	volumes, _, _ := unstructured.NestedSlice(spec, "volumes")
	for _, v := range volumes {
		vm := asMap(v)
		add(Ref{Kind: "ConfigMap", Namespace: ns, Name: str(vm, "configMap", "name")}, ReasonConfigMap)
		add(Ref{Kind: "Secret", Namespace: ns, Name: str(vm, "secret", "secretName")}, ReasonSecret)
		add(Ref{Kind: "PersistentVolumeClaim", Namespace: ns, Name: str(vm, "persistentVolumeClaim", "claimName")}, ReasonPVC)
		add(Ref{Kind: "Secret", Namespace: ns, Name: str(vm, "csi", "nodePublishSecretRef", "name")}, ReasonSecret)
		sources, _, _ := unstructured.NestedSlice(vm, "projected", "sources")
		for _, s := range sources {
			sm := asMap(s)
			add(Ref{Kind: "ConfigMap", Namespace: ns, Name: str(sm, "configMap", "name")}, ReasonConfigMap)
			add(Ref{Kind: "Secret", Namespace: ns, Name: str(sm, "secret", "name")}, ReasonSecret)
		}
	}
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		containers, _, _ := unstructured.NestedSlice(spec, field)
		for _, c := range containers {
			cm := asMap(c)
			envs, _, _ := unstructured.NestedSlice(cm, "env")
			for _, e := range envs {
				em := asMap(e)
				add(Ref{Kind: "ConfigMap", Namespace: ns, Name: str(em, "valueFrom", "configMapKeyRef", "name")}, ReasonConfigMap)
				add(Ref{Kind: "Secret", Namespace: ns, Name: str(em, "valueFrom", "secretKeyRef", "name")}, ReasonSecret)
			}
			envFrom, _, _ := unstructured.NestedSlice(cm, "envFrom")
			for _, e := range envFrom {
				em := asMap(e)
				add(Ref{Kind: "ConfigMap", Namespace: ns, Name: str(em, "configMapRef", "name")}, ReasonConfigMap)
				add(Ref{Kind: "Secret", Namespace: ns, Name: str(em, "secretRef", "name")}, ReasonSecret)
			}
		}
	}
	if sa := str(spec, "serviceAccountName"); sa != "default" {
		add(Ref{Kind: "ServiceAccount", Namespace: ns, Name: sa}, ReasonServiceAccount)
	}
	add(Ref{Group: "scheduling.k8s.io", Kind: "PriorityClass", Name: str(spec, "priorityClassName")}, ReasonPriorityClass)
	pullSecrets, _, _ := unstructured.NestedSlice(spec, "imagePullSecrets")
	for _, s := range pullSecrets {
		add(Ref{Kind: "Secret", Namespace: ns, Name: str(asMap(s), "name")}, ReasonPullSecret)
	}
}

// routeRefs handles Gateway API routes: backendRefs (Services by default) and
// parentRefs (Gateways by default), each possibly in another namespace.
func routeRefs(obj *unstructured.Unstructured, ns string, add func(Ref, string)) {
	parents, _, _ := unstructured.NestedSlice(obj.Object, "spec", "parentRefs")
	for _, p := range parents {
		pm := asMap(p)
		add(crossRef(pm, gatewayGroup, "Gateway", ns), ReasonParentRef)
	}
	rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "rules")
	for _, r := range rules {
		backends, _, _ := unstructured.NestedSlice(asMap(r), "backendRefs")
		for _, b := range backends {
			add(crossRef(asMap(b), "", "Service", ns), ReasonBackend)
		}
	}
}

// crossRef reads a Gateway API object reference, whose group and kind
// default to the given ones and whose namespace defaults to the route's.
func crossRef(m map[string]any, group, kind, ns string) Ref {
	r := Ref{Group: group, Kind: kind, Namespace: ns, Name: str(m, "name")}
	if g, ok := m["group"].(string); ok {
		r.Group = g
	}
	if k, ok := m["kind"].(string); ok && k != "" {
		r.Kind = k
	}
	if n, ok := m["namespace"].(string); ok && n != "" {
		r.Namespace = n
	}
	return r
}

// pdbEdges makes each PodDisruptionBudget depend on the workloads whose pod
// template labels its selector matches, in its namespace.
func pdbEdges(pdbs, workloads []*unstructured.Unstructured) []Edge {
	var out []Edge
	for _, pdb := range pdbs {
		sel, ok, _ := unstructured.NestedMap(pdb.Object, "spec", "selector")
		if !ok {
			continue
		}
		var ls metav1.LabelSelector
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sel, &ls); err != nil {
			continue
		}
		selector, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil || selector.Empty() {
			continue
		}
		for _, w := range workloads {
			if w.GetNamespace() != pdb.GetNamespace() {
				continue
			}
			podLabels, _, _ := unstructured.NestedStringMap(w.Object, "spec", "template", "metadata", "labels")
			if selector.Matches(labels.Set(podLabels)) {
				out = append(out, Edge{From: RefOf(pdb), To: RefOf(w), Reason: ReasonPDBSelector})
			}
		}
	}
	return out
}

func str(m map[string]any, path ...string) string {
	s, _, _ := unstructured.NestedString(m, path...)
	return s
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func splitAPIVersion(apiVersion string) (group, version string, ok bool) {
	for i := len(apiVersion) - 1; i >= 0; i-- {
		if apiVersion[i] == '/' {
			return apiVersion[:i], apiVersion[i+1:], true
		}
	}
	return "", apiVersion, apiVersion != ""
}
