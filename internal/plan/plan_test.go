package plan

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

func objs(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("bad test YAML: %v\n%s", err, doc)
		}
		out = append(out, u)
	}
	return out
}

func edgeStrings(edges []Edge) []string {
	var s []string
	for _, e := range edges {
		s = append(s, fmt.Sprintf("%s -> %s (%s)", e.From, e.To, e.Reason))
	}
	return s
}

func TestEdgeRules(t *testing.T) {
	cases := []struct {
		name string
		docs string
		want []string // edges that must be present
	}{
		{"namespaced object needs its namespace", `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}`,
			[]string{"ConfigMap shop/cfg -> Namespace shop (namespace)"}},
		{"deployment pod template: volumes, env, envFrom, projected, csi, SA, priority, pull secrets", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      serviceAccountName: web
      priorityClassName: high
      imagePullSecrets: [{name: pull}]
      volumes:
      - {name: a, configMap: {name: vol-cm}}
      - {name: b, secret: {secretName: vol-secret}}
      - {name: c, persistentVolumeClaim: {claimName: data}}
      - {name: d, projected: {sources: [{configMap: {name: proj-cm}}, {secret: {name: proj-secret}}]}}
      - {name: e, csi: {driver: x, nodePublishSecretRef: {name: csi-secret}}}
      initContainers:
      - name: init
        env: [{name: A, valueFrom: {secretKeyRef: {name: init-secret, key: k}}}]
      containers:
      - name: app
        env: [{name: B, valueFrom: {configMapKeyRef: {name: env-cm, key: k}}}]
        envFrom: [{configMapRef: {name: from-cm}}, {secretRef: {name: from-secret}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
---
apiVersion: v1
kind: Secret
metadata: {name: pull, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: vol-cm, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: vol-secret, namespace: shop}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: proj-cm, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: proj-secret, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: csi-secret, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: init-secret, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: env-cm, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: from-cm, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: from-secret, namespace: shop}`,
			[]string{
				"Deployment.apps shop/web -> ServiceAccount shop/web (pod template: serviceAccountName)",
				"Deployment.apps shop/web -> PriorityClass.scheduling.k8s.io high (pod template: priorityClassName)",
				"Deployment.apps shop/web -> Secret shop/pull (pod template: imagePullSecrets)",
				"Deployment.apps shop/web -> ConfigMap shop/vol-cm (pod template: configMap)",
				"Deployment.apps shop/web -> Secret shop/vol-secret (pod template: secret)",
				"Deployment.apps shop/web -> PersistentVolumeClaim shop/data (pod template: persistentVolumeClaim)",
				"Deployment.apps shop/web -> ConfigMap shop/proj-cm (pod template: configMap)",
				"Deployment.apps shop/web -> Secret shop/proj-secret (pod template: secret)",
				"Deployment.apps shop/web -> Secret shop/csi-secret (pod template: secret)",
				"Deployment.apps shop/web -> Secret shop/init-secret (pod template: secret)",
				"Deployment.apps shop/web -> ConfigMap shop/env-cm (pod template: configMap)",
				"Deployment.apps shop/web -> ConfigMap shop/from-cm (pod template: configMap)",
				"Deployment.apps shop/web -> Secret shop/from-secret (pod template: secret)",
			}},
		{"cronjob and custom workload pod templates", `
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, envFrom: [{configMapRef: {name: cfg}}]}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: canary, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: c, envFrom: [{secretRef: {name: creds}}]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}`,
			[]string{
				"CronJob.batch shop/nightly -> ConfigMap shop/cfg (pod template: configMap)",
				"Rollout.argoproj.io shop/canary -> Secret shop/creds (pod template: secret)",
			}},
		{"PVC and StatefulSet claim templates need their StorageClass; PVC its data source", `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
spec:
  storageClassName: fast
  dataSource: {apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: snap}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  volumeClaimTemplates: [{metadata: {name: d}, spec: {storageClassName: fast}}]
  template: {spec: {containers: [{name: db}]}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: snap, namespace: shop}`,
			[]string{
				"PersistentVolumeClaim shop/data -> StorageClass.storage.k8s.io fast (storageClassName)",
				"PersistentVolumeClaim shop/data -> VolumeSnapshot.snapshot.storage.k8s.io shop/snap (persistentVolumeClaim dataSource)",
				"StatefulSet.apps shop/db -> StorageClass.storage.k8s.io fast (storageClassName)",
			}},
		{"role bindings need their role and service account subjects", `
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: web}, {kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: viewer}
subjects: [{kind: ServiceAccount, name: web, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: viewer}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}`,
			[]string{
				"RoleBinding.rbac.authorization.k8s.io shop/rb -> Role.rbac.authorization.k8s.io shop/reader (roleRef)",
				"RoleBinding.rbac.authorization.k8s.io shop/rb -> ServiceAccount shop/web (subject)",
				"ClusterRoleBinding.rbac.authorization.k8s.io crb -> ClusterRole.rbac.authorization.k8s.io viewer (roleRef)",
				"ClusterRoleBinding.rbac.authorization.k8s.io crb -> ServiceAccount shop/web (subject)",
			}},
		{"ingress needs services, TLS secret and class", `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  tls: [{secretName: web-tls}]
  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: Service
metadata: {name: fallback, namespace: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: web-tls, namespace: shop}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}`,
			[]string{
				"Ingress.networking.k8s.io shop/web -> Service shop/web (backend service)",
				"Ingress.networking.k8s.io shop/web -> Service shop/fallback (backend service)",
				"Ingress.networking.k8s.io shop/web -> Secret shop/web-tls (tls secret)",
				"Ingress.networking.k8s.io shop/web -> IngressClass.networking.k8s.io nginx (ingressClassName)",
			}},
		{"gateway API route needs backends and parent gateway", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{name: edge, namespace: infra}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: infra}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}`,
			[]string{
				"HTTPRoute.gateway.networking.k8s.io shop/web -> Service shop/web (backend service)",
				"HTTPRoute.gateway.networking.k8s.io shop/web -> Gateway.gateway.networking.k8s.io infra/edge (parentRef)",
			}},
		{"HPA needs its target; PDB the workloads it selects", `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other, namespace: shop}
spec:
  template: {metadata: {labels: {app: other}}, spec: {containers: [{name: c}]}}`,
			[]string{
				"HorizontalPodAutoscaler.autoscaling shop/web -> Deployment.apps shop/web (scaleTargetRef)",
				"PodDisruptionBudget.policy shop/web -> Deployment.apps shop/web (disruption budget selector)",
			}},
		{"custom resource needs its CRD", `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: shop}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec: {group: example.com, names: {kind: Widget, plural: widgets}}`,
			[]string{"Widget.example.com shop/w -> CustomResourceDefinition.apiextensions.k8s.io widgets.example.com (custom resource definition)"}},
		{"webhook configuration needs its service; service account its pull secrets", `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: hooks}
webhooks: [{name: a.example.com, clientConfig: {service: {namespace: shop, name: hook}}}]
---
apiVersion: v1
kind: Service
metadata: {name: hook, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa, namespace: shop}
imagePullSecrets: [{name: pull}]
---
apiVersion: v1
kind: Secret
metadata: {name: pull, namespace: shop}`,
			[]string{
				"ValidatingWebhookConfiguration.admissionregistration.k8s.io hooks -> Service shop/hook (webhook service)",
				"ServiceAccount shop/sa -> Secret shop/pull (serviceAccount imagePullSecrets)",
			}},
		{"an APIService needs the Service that serves it", `
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec: {group: metrics.k8s.io, version: v1beta1, service: {namespace: kube-system, name: metrics-server}}
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}`,
			[]string{"APIService.apiregistration.k8s.io v1beta1.metrics.k8s.io -> Service kube-system/metrics-server (apiService service)"}},
		{"depends-on annotation, same namespace, other namespace and cluster-scoped", `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations: {tandem.dev/depends-on: "configmap/flags, deployment.apps/infra/api, clusterrole.rbac.authorization.k8s.io/viewer"}
spec: {template: {spec: {containers: [{name: c}]}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: flags, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: infra}
spec: {template: {spec: {containers: [{name: c}]}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: viewer}`,
			[]string{
				"Deployment.apps shop/web -> ConfigMap shop/flags (tandem.dev/depends-on)",
				"Deployment.apps shop/web -> Deployment.apps infra/api (tandem.dev/depends-on)",
				"Deployment.apps shop/web -> ClusterRole.rbac.authorization.k8s.io viewer (tandem.dev/depends-on)",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Build(Input{Objects: objs(t, tc.docs)})
			got := map[string]bool{}
			for _, e := range edgeStrings(p.Edges) {
				got[e] = true
			}
			for _, w := range tc.want {
				if !got[w] {
					t.Errorf("missing edge %s\nhave:\n  %s", w, strings.Join(edgeStrings(p.Edges), "\n  "))
				}
			}
			if len(p.Cycles) > 0 || len(p.Invalid) > 0 {
				t.Errorf("unexpected cycles %v or invalid %v", p.Cycles, p.Invalid)
			}
			assertWavesRespectEdges(t, p)
		})
	}
}

func TestPolicyExtraDependencies(t *testing.T) {
	in := Input{
		Objects: objs(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: flags, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other, namespace: shop}`),
		Extra: []tandemv1.DependencyEdge{{
			From: tandemv1.ObjectTarget{Group: "apps", Kind: "Deployment"},
			To:   tandemv1.ObjectTarget{Kind: "ConfigMap", Name: "flags"},
		}},
	}
	p := Build(in)
	want := []string{"Deployment.apps shop/web -> ConfigMap shop/flags (SyncPolicy extraDependencies)"}
	if got := edgeStrings(p.Edges); !reflect.DeepEqual(got, want) {
		t.Fatalf("edges = %v, want %v", got, want)
	}
	if wave := waveOf(p, "Deployment.apps shop/web"); wave != 1 {
		t.Fatalf("Deployment in wave %d, want 1", wave)
	}
}

func TestWavesOrderASampleApp(t *testing.T) {
	p := Build(Input{Objects: objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: shop}
roleRef: {kind: Role, name: r}
subjects: [{kind: ServiceAccount, name: web}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {template: {spec: {serviceAccountName: web, containers: [{name: c, envFrom: [{configMapRef: {name: cfg}}]}]}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}}`)})
	want := [][]string{
		{"Namespace shop"},
		{"ConfigMap shop/cfg", "Role.rbac.authorization.k8s.io shop/r", "ServiceAccount shop/web"},
		{"Deployment.apps shop/web", "RoleBinding.rbac.authorization.k8s.io shop/rb"},
		{"HorizontalPodAutoscaler.autoscaling shop/web"},
	}
	if got := waveStrings(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("waves =\n%v\nwant\n%v", got, want)
	}
}

func TestCycleIsReportedAndNotApplied(t *testing.T) {
	p := Build(Input{Objects: objs(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: shop, annotations: {tandem.dev/depends-on: configmap/b}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b, namespace: shop, annotations: {tandem.dev/depends-on: configmap/c}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: shop, annotations: {tandem.dev/depends-on: configmap/a}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {template: {spec: {containers: [{name: c, envFrom: [{configMapRef: {name: a}}]}]}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: fine, namespace: shop}`)})
	wantCycle := []Ref{
		{Kind: "ConfigMap", Namespace: "shop", Name: "a"},
		{Kind: "ConfigMap", Namespace: "shop", Name: "b"},
		{Kind: "ConfigMap", Namespace: "shop", Name: "c"},
	}
	if !reflect.DeepEqual(p.Cycles, [][]Ref{wantCycle}) {
		t.Fatalf("cycles = %v, want %v", p.Cycles, wantCycle)
	}
	if want := []Ref{{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}}; !reflect.DeepEqual(p.Blocked, want) {
		t.Fatalf("blocked = %v, want %v", p.Blocked, want)
	}
	// Everything off the cycle is still planned (the Namespace is not
	// selected here, so it is a missing dependency, not a blocker).
	if got := waveStrings(p); !reflect.DeepEqual(got, [][]string{{"ConfigMap shop/fine"}}) {
		t.Fatalf("waves = %v", got)
	}
	if msg := p.CycleMessage(); msg != "cycle between ConfigMap shop/a, ConfigMap shop/b, ConfigMap shop/c" {
		t.Fatalf("cycle message = %q", msg)
	}
}

func TestMissingDependencyIsReportedNotFatal(t *testing.T) {
	p := Build(Input{Objects: objs(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {template: {spec: {containers: [{name: c, envFrom: [{secretRef: {name: absent}}]}]}}}`)})
	want := []string{
		"Deployment.apps shop/web -> Namespace shop (namespace)",
		"Deployment.apps shop/web -> Secret shop/absent (pod template: secret)",
	}
	if got := edgeStrings(p.Missing); !reflect.DeepEqual(got, want) {
		t.Fatalf("missing = %v, want %v", got, want)
	}
	if p.Len() != 1 {
		t.Fatalf("the Deployment was not planned: %v", waveStrings(p))
	}
}

// A custom resource whose CRD the policy does not select depends on that
// CRD all the same: the plan names it as missing, so PlanValid and
// kubectl tandem plan say what the standby must already serve.
func TestAnUnselectedCRDIsAMissingDependency(t *testing.T) {
	in := Input{
		Objects: objs(t, `
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: main, namespace: monitoring}`),
		CRDs: map[string]string{"Prometheus.monitoring.coreos.com": "prometheuses.monitoring.coreos.com"},
	}
	p := Build(in)
	want := "Prometheus.monitoring.coreos.com monitoring/main -> CustomResourceDefinition.apiextensions.k8s.io prometheuses.monitoring.coreos.com (custom resource definition)"
	if got := edgeStrings(p.Missing); !slices.Contains(got, want) {
		t.Fatalf("missing = %v, want it to hold %q", got, want)
	}
	// Selected, the CRD is an edge and goes first.
	in.Objects = append(in.Objects, objs(t, `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheuses.monitoring.coreos.com}
spec: {group: monitoring.coreos.com, names: {kind: Prometheus, plural: prometheuses}}`)...)
	p = Build(in)
	if got := edgeStrings(p.Missing); slices.ContainsFunc(got, func(e string) bool { return strings.Contains(e, "CustomResourceDefinition") }) {
		t.Fatalf("the selected CRD is reported missing: %v", got)
	}
	if len(p.Waves) != 2 || RefOf(p.Waves[0][0]).Kind != "CustomResourceDefinition" {
		t.Fatalf("waves %v: want the CRD first", waveStrings(p))
	}
}

func TestBadAnnotationIsReported(t *testing.T) {
	p := Build(Input{Objects: objs(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: shop, annotations: {tandem.dev/depends-on: "just-a-name"}}`)})
	if len(p.Invalid) != 1 || !strings.Contains(p.Invalid[0].Error(), `ConfigMap shop/a: annotation tandem.dev/depends-on: "just-a-name" is not kind[.group]/name`) {
		t.Fatalf("invalid = %v", p.Invalid)
	}
	if p.Len() != 1 {
		t.Fatal("an object with a bad annotation must still be planned")
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	var docs []string
	for i := range 40 {
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: cm-%d, namespace: ns-%d}`, i, i%3))
		docs = append(docs, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web-%d, namespace: ns-%d}
spec: {template: {spec: {containers: [{name: c, envFrom: [{configMapRef: {name: cm-%d}}]}]}}}`, i, i%3, i))
	}
	for i := range 3 {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-%d}", i))
	}
	base := objs(t, strings.Join(docs, "\n---\n"))
	first := Build(Input{Objects: base})
	for seed := range 20 {
		shuffled := append([]*unstructured.Unstructured(nil), base...)
		rand.New(rand.NewSource(int64(seed))).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		p := Build(Input{Objects: shuffled})
		if !reflect.DeepEqual(waveStrings(p), waveStrings(first)) || !reflect.DeepEqual(p.Edges, first.Edges) {
			t.Fatalf("input order %d changed the plan", seed)
		}
	}
	if len(first.Waves) != 3 || first.Len() != 83 {
		t.Fatalf("want 83 objects in 3 waves, got %d in %d", first.Len(), len(first.Waves))
	}
}

func waveStrings(p *Plan) [][]string {
	var out [][]string
	for _, w := range p.Waves {
		var names []string
		for _, o := range w {
			names = append(names, RefOf(o).String())
		}
		out = append(out, names)
	}
	return out
}

func waveOf(p *Plan, ref string) int {
	for i, w := range p.Waves {
		for _, o := range w {
			if RefOf(o).String() == ref {
				return i
			}
		}
	}
	return -1
}

func assertWavesRespectEdges(t *testing.T, p *Plan) {
	t.Helper()
	for _, e := range p.Edges {
		if from, to := waveOf(p, e.From.String()), waveOf(p, e.To.String()); from <= to {
			t.Errorf("%s is in wave %d but depends on %s in wave %d", e.From, from, e.To, to)
		}
	}
}
