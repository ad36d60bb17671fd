package replicate

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/traffic"
	"github.com/tandem-dev/tandem/test/testbed"
)

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	return testbed.MustDecode(t, doc)[0]
}

func field(t *testing.T, u *unstructured.Unstructured, path string) any {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(u.Object, strings.Split(path, ".")...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  uid: 1234
  resourceVersion: "99"
  generation: 3
  creationTimestamp: "2026-01-01T00:00:00Z"
  managedFields: [{manager: kubectl}]
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: x, uid: abc}]
  finalizers: [example.com/cleanup]
  labels: {app: web, tandem.dev/pair: stale}
  annotations:
    deployment.kubernetes.io/revision: "4"
    kubectl.kubernetes.io/last-applied-configuration: "{}"
    tandem.dev/source-hash: stale
    tandem.dev/depends-on: configmap/flags
    team: payments
spec:
  replicas: 4
  template:
    spec:
      nodeSelector: {zone: east-1}
      initContainers: [{name: init, image: registry.east.example.com/init:1}]
      containers:
      - {name: app, image: "registry.east.example.com/shop/web:2"}
      - {name: side, image: "registry.east.example.community/side:1"}
status: {replicas: 4}
`

func TestTransformStripsClusterOwnedFields(t *testing.T) {
	out, hash, err := Transform(obj(t, deployment), Options{Pair: "shop", Policy: "apps", Mode: tandemv1.StandbyHot})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"metadata.uid", "metadata.resourceVersion", "metadata.generation", "metadata.creationTimestamp", "metadata.managedFields", "metadata.ownerReferences", "metadata.finalizers", "status"} {
		if v := field(t, out, p); v != nil {
			t.Errorf("%s = %v, want it stripped", p, v)
		}
	}
	ann := out.GetAnnotations()
	if _, ok := ann["deployment.kubernetes.io/revision"]; ok {
		t.Error("the source's revision annotation was copied")
	}
	if ann["team"] != "payments" || ann["tandem.dev/depends-on"] != "configmap/flags" {
		t.Errorf("user annotations lost: %v", ann)
	}
	if ann[HashAnnotation] != hash || hash == "stale" || len(hash) != 24 {
		t.Errorf("hash annotation %q, returned hash %q", ann[HashAnnotation], hash)
	}
	if l := out.GetLabels(); l[PairLabel] != "shop" || l[PolicyLabel] != "apps" || l["app"] != "web" {
		t.Errorf("labels = %v", l)
	}
	if r := field(t, out, "spec.replicas"); r != int64(4) {
		t.Errorf("hot standby replicas = %v, want 4", r)
	}
}

func TestTransformServicePVCJobPod(t *testing.T) {
	cases := []struct {
		name, doc string
		gone      []string
		kept      map[string]any
	}{
		{"service addresses", `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.0.0.5, clusterIPs: [10.0.0.5], type: NodePort, ports: [{port: 80, nodePort: 30080}]}`,
			[]string{"spec.clusterIP", "spec.clusterIPs"}, map[string]any{"spec.type": "NodePort"}},
		{"headless service stays headless", `
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None}`,
			nil, map[string]any{"spec.clusterIP": "None"}},
		{"PVC binding", `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop, annotations: {pv.kubernetes.io/bind-completed: "yes"}}
spec: {volumeName: pvc-123, storageClassName: fast}`,
			[]string{"spec.volumeName", "metadata.annotations"}, map[string]any{"spec.storageClassName": "fast"}},
		{"job generated selector", `
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: shop}
spec:
  selector: {matchLabels: {batch.kubernetes.io/controller-uid: abc}}
  template: {metadata: {labels: {batch.kubernetes.io/controller-uid: abc, app: once}}, spec: {containers: [{name: c}]}}`,
			[]string{"spec.selector", "spec.template.metadata.labels.batch\\.kubernetes\\.io/controller-uid"}, map[string]any{"spec.template.metadata.labels.app": "once"}},
		{"pod node binding", `
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec: {nodeName: node-1, containers: [{name: c}]}`,
			[]string{"spec.nodeName"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Transform(obj(t, tc.doc), Options{Pair: "p", Policy: "s", Mode: tandemv1.StandbyHot})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range tc.gone {
				if g == "metadata.annotations" {
					if _, ok := out.GetAnnotations()["pv.kubernetes.io/bind-completed"]; ok {
						t.Error("PVC bind annotation copied")
					}
					continue
				}
				if strings.Contains(g, `\.`) {
					if _, ok := out.GetLabels()["batch.kubernetes.io/controller-uid"]; ok {
						t.Error("job uid label on the object")
					}
					tl, _, _ := unstructured.NestedStringMap(out.Object, "spec", "template", "metadata", "labels")
					if _, ok := tl["batch.kubernetes.io/controller-uid"]; ok {
						t.Error("job uid label on the template")
					}
					continue
				}
				if v := field(t, out, g); v != nil {
					t.Errorf("%s = %v, want it stripped", g, v)
				}
			}
			for p, want := range tc.kept {
				if v := field(t, out, p); v != want {
					t.Errorf("%s = %v, want %v", p, v, want)
				}
			}
			if ports, _, _ := unstructured.NestedSlice(out.Object, "spec", "ports"); len(ports) > 0 {
				if _, ok := ports[0].(map[string]any)["nodePort"]; ok {
					t.Error("nodePort copied")
				}
			}
		})
	}
}

func TestTransformWarmStandby(t *testing.T) {
	cases := []struct {
		name, doc, check string
		want             any
		ann, annValue    string
	}{
		{"deployment at 0 replicas", deployment, "spec.replicas", int64(0), ReplicasAnnotation, "4"},
		{"statefulset without replicas counts the default 1", `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec: {template: {spec: {containers: [{name: c}]}}}`, "spec.replicas", int64(0), ReplicasAnnotation, "1"},
		{"cronjob suspended", `
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec: {schedule: "0 1 * * *"}`, "spec.suspend", true, SuspendAnnotation, "false"},
		{"a parked source keeps the count it will be restored to", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, annotations: {tandem.dev/source-replicas: "5"}}
spec: {replicas: 0, template: {spec: {containers: [{name: c}]}}}`, "spec.replicas", int64(0), ReplicasAnnotation, "5"},
		{"a parked cronjob keeps whether it was suspended", `
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop, annotations: {tandem.dev/source-suspend: "false"}}
spec: {schedule: "0 1 * * *", suspend: true}`, "spec.suspend", true, SuspendAnnotation, "false"},
		{"daemonset parked", `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec: {template: {spec: {containers: [{name: c}]}}}`, "spec.template.spec.nodeSelector.tandem\\.dev/warm-standby", "parked", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Transform(obj(t, tc.doc), Options{Pair: "p", Policy: "s", Mode: tandemv1.StandbyWarm})
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if strings.Contains(tc.check, `\.`) {
				ns, _, _ := unstructured.NestedStringMap(out.Object, "spec", "template", "spec", "nodeSelector")
				got = ns[ParkedNodeSelector]
			} else {
				got = field(t, out, tc.check)
			}
			if got != tc.want {
				t.Errorf("%s = %v, want %v", tc.check, got, tc.want)
			}
			if tc.ann != "" && out.GetAnnotations()[tc.ann] != tc.annValue {
				t.Errorf("annotation %s = %q, want %q", tc.ann, out.GetAnnotations()[tc.ann], tc.annValue)
			}
		})
	}
}

func TestTransformPolicyTransforms(t *testing.T) {
	opts := Options{Pair: "p", Policy: "s", Mode: tandemv1.StandbyHot, Transforms: tandemv1.Transforms{
		RemoveFields: []tandemv1.FieldRemoval{{
			Target: tandemv1.ObjectTarget{Group: "apps", Kind: "Deployment"},
			Paths:  []string{"spec.template.spec.nodeSelector"},
		}},
		Patches: []tandemv1.JSONPatchTransform{{
			Target: tandemv1.ObjectTarget{Group: "apps", Kind: "Deployment", Name: "web"},
			Patch:  `[{"op":"add","path":"/metadata/labels/site","value":"west"}]`,
		}},
		ImageRegistries: []tandemv1.Mapping{{From: "registry.east.example.com", To: "registry.west.example.com"}},
	}}
	out, _, err := Transform(obj(t, deployment), opts)
	if err != nil {
		t.Fatal(err)
	}
	if v := field(t, out, "spec.template.spec.nodeSelector"); v != nil {
		t.Errorf("nodeSelector not removed: %v", v)
	}
	if out.GetLabels()["site"] != "west" {
		t.Errorf("patch not applied: labels %v", out.GetLabels())
	}
	containers, _, _ := unstructured.NestedSlice(out.Object, "spec", "template", "spec", "containers")
	inits, _, _ := unstructured.NestedSlice(out.Object, "spec", "template", "spec", "initContainers")
	images := []string{containers[0].(map[string]any)["image"].(string), containers[1].(map[string]any)["image"].(string), inits[0].(map[string]any)["image"].(string)}
	want := []string{"registry.west.example.com/shop/web:2", "registry.east.example.community/side:1", "registry.west.example.com/init:1"}
	for i := range want {
		if images[i] != want[i] {
			t.Errorf("image %d = %s, want %s", i, images[i], want[i])
		}
	}

	pvc := obj(t, `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
spec: {storageClassName: fast-east}`)
	out, _, err = Transform(pvc, Options{Transforms: tandemv1.Transforms{StorageClasses: []tandemv1.Mapping{{From: "fast-east", To: "fast-west"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if sc := field(t, out, "spec.storageClassName"); sc != "fast-west" {
		t.Errorf("storage class = %v, want fast-west", sc)
	}
}

func TestTransformBadPatchNamesThePatchAndObject(t *testing.T) {
	opts := Options{Transforms: tandemv1.Transforms{Patches: []tandemv1.JSONPatchTransform{{
		Target: tandemv1.ObjectTarget{Group: "apps", Kind: "Deployment"},
		Patch:  `[{"op":"replace","path":"/spec/nothing/here","value":1}]`,
	}}}}
	_, _, err := Transform(obj(t, deployment), opts)
	if err == nil || !strings.Contains(err.Error(), "spec.transforms.patches[0] on Deployment.apps shop/web") {
		t.Fatalf("want an error naming the patch and the object, got %v", err)
	}
}

func TestTransformHashIsStableAndTracksContent(t *testing.T) {
	opts := Options{Pair: "p", Policy: "s"}
	_, h1, _ := Transform(obj(t, deployment), opts)
	_, h2, _ := Transform(obj(t, deployment), opts)
	if h1 != h2 {
		t.Fatal("same source, different hashes")
	}
	changed := obj(t, deployment)
	_ = unstructured.SetNestedField(changed.Object, int64(5), "spec", "replicas")
	_, h3, _ := Transform(changed, opts)
	if h3 == h1 {
		t.Fatal("a changed replica count did not change the hash")
	}
	// Fields the API server owns do not change the hash.
	bumped := obj(t, deployment)
	bumped.SetResourceVersion("100")
	_, h4, _ := Transform(bumped, opts)
	if h4 != h1 {
		t.Fatal("a new resourceVersion changed the hash")
	}
}

// A route of spec.traffic.routes (labelled by the active side) is parked on
// the standby's copy, warm or hot, so the copy never serves; other routes
// are copied as they are.
func TestTransformParksPairRoutes(t *testing.T) {
	const ingress = `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  labels: {tandem.dev/route: "true"}
spec:
  ingressClassName: nginx
`
	for _, mode := range []tandemv1.StandbyMode{tandemv1.StandbyWarm, tandemv1.StandbyHot} {
		out, _, err := Transform(obj(t, ingress), Options{Pair: "shop", Policy: "app", Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if got := field(t, out, "spec.ingressClassName"); got != traffic.ParkedIngressClass {
			t.Errorf("%s standby: the copy's class is %v, want %s", mode, got, traffic.ParkedIngressClass)
		}
		if got := out.GetAnnotations()[traffic.ParkedAnnotation]; got != "nginx" {
			t.Errorf("%s standby: the copy keeps %q to restore, want nginx", mode, got)
		}
	}
	plain := obj(t, strings.Replace(ingress, `labels: {tandem.dev/route: "true"}`, `labels: {app: web}`, 1))
	out, _, err := Transform(plain, Options{Pair: "shop", Policy: "app", Mode: tandemv1.StandbyWarm})
	if err != nil {
		t.Fatal(err)
	}
	if got := field(t, out, "spec.ingressClassName"); got != "nginx" {
		t.Errorf("an Ingress that is no route of the pair: class %v, want nginx", got)
	}
}
