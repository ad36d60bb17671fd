package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AppPort is the port the test bed's app (test/app) serves on.
const AppPort = 8080

// AppOptions shape the app's manifests.
type AppOptions struct {
	// FrontDoor runs the app on its node's network, serving on the node's
	// address (HostIP, AppPort): the data center's stable address for the
	// app, which DNS records name, as a load balancer's would be in
	// production (the test bed has no kube-proxy and no load balancer).
	// Otherwise it serves on its pod IP.
	FrontDoor bool
	// Fence puts the app behind Tandem's fence sidecar for the HAPair of
	// this name in the app's namespace: the sidecar serves the app's port
	// and passes requests to the app (on a socket in the pod) only while
	// the pair's serving Lease grants this side. The pod's ServiceAccount
	// may read that one Lease.
	Fence string
}

// AppObjects is the test bed's app as a user would deploy it: a PVC of the
// test bed's storage and a Deployment running AppImage on the real node,
// Ready only once its volume holds its data.
func AppObjects(ns, name string, replicas int, o AppOptions) string {
	network := ""
	if o.FrontDoor {
		network = fmt.Sprintf(`
      hostNetwork: true
      dnsPolicy: Default`)
	}
	app := fmt.Sprintf(`      - name: app
        image: %[1]s
        imagePullPolicy: Never
        env:
        - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: LISTEN, value: "$(POD_IP):%[2]d"}
        ports: [{name: http, containerPort: %[2]d}]
        readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1}
        livenessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5}
        volumeMounts: [{name: data, mountPath: /data}]`, AppImage.Ref, AppPort)
	fenceObjects, account, socketVolume := "", "", ""
	if o.Fence != "" {
		// The app on a socket; the sidecar on the app's port, Ready only
		// while it passes the app's readiness through.
		app = fmt.Sprintf(`      - name: app
        image: %[1]s
        imagePullPolicy: Never
        env:
        - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: LISTEN, value: "unix:/run/app/app.sock"}
        volumeMounts: [{name: data, mountPath: /data}, {name: socket, mountPath: /run/app}]
      - name: tandem-fence
        image: %[2]s
        imagePullPolicy: Never
        args: [fence, --pair=%[3]s/%[4]s, "--listen=$(POD_IP):%[5]d", --upstream=unix:///run/app/app.sock]
        env:
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        ports: [{name: http, containerPort: %[5]d}]
        readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1}
        livenessProbe: {httpGet: {path: /tandem-fence/status, port: http}, periodSeconds: 5}
        volumeMounts: [{name: socket, mountPath: /run/app}]`, AppImage.Ref, OperatorImage.Ref, ns, o.Fence, AppPort)
		account = fmt.Sprintf(`
      serviceAccountName: %s`, name)
		socketVolume = `
      - name: socket
        emptyDir: {}`
		fenceObjects = fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {namespace: %[1]s, name: %[2]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {namespace: %[1]s, name: %[2]s-tandem-fence}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [tandem-serving-%[3]s]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {namespace: %[1]s, name: %[2]s-tandem-fence}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: %[2]s-tandem-fence}
subjects: [{kind: ServiceAccount, name: %[2]s, namespace: %[1]s}]
---
`, ns, name, o.Fence)
	}
	return fmt.Sprintf(`%[8]sapiVersion: v1
kind: PersistentVolumeClaim
metadata: {namespace: %[1]s, name: %[2]s-data}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: %[3]s
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {namespace: %[1]s, name: %[2]s}
spec:
  replicas: %[4]d
  strategy: {type: Recreate}
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      nodeSelector: {%[5]s: "true"}
      tolerations: [{key: %[6]s, operator: Exists, effect: NoSchedule}]
      terminationGracePeriodSeconds: 2%[7]s%[9]s
      containers:
%[10]s
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: %[2]s-data}%[11]s
`, ns, name, StorageClass, replicas, RealNodeLabel, RealNodeTaint, network, fenceObjects, account, app, socketVolume)
}

// AppStatus is what the app's GET / answers.
type AppStatus struct {
	Node          string `json:"node"`
	Pod           string `json:"pod"`
	Records       int    `json:"records"`
	DataCreatedOn string `json:"dataCreatedOn"`
}

// AppClient talks to one copy of the app over HTTP, as a user's client would.
type AppClient struct {
	// Base is http://<pod IP>:<port>.
	Base string
	HTTP *http.Client
}

// NewAppClient returns a client for the app at addr (an IP or host:port).
func NewAppClient(addr string) *AppClient {
	if !strings.Contains(addr, ":") {
		addr = fmt.Sprintf("%s:%d", addr, AppPort)
	}
	return &AppClient{Base: "http://" + addr, HTTP: &http.Client{Timeout: 2 * time.Second}}
}

// AppPodIP returns the pod IP of a Ready pod of the app, or an error saying
// what its pods are doing.
func AppPodIP(ctx context.Context, c client.Client, ns, name string) (string, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
		return "", err
	}
	var seen []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" && podReady(&p) {
			return p.Status.PodIP, nil
		}
		seen = append(seen, fmt.Sprintf("%s %s ready=%t", p.Name, p.Status.Phase, podReady(&p)))
	}
	return "", fmt.Errorf("no Ready pod of app %s/%s (%v)", ns, name, seen)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Put stores a record.
func (a *AppClient) Put(ctx context.Context, key, value string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.Base+"/records/"+key, strings.NewReader(value))
	if err != nil {
		return err
	}
	_, err = a.do(req, http.StatusCreated)
	return err
}

// Get reads a record; the second result says which node served it.
func (a *AppClient) Get(ctx context.Context, key string) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Base+"/records/"+key, nil)
	if err != nil {
		return "", "", err
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return "", "", fmt.Errorf("GET %s/records/%s: %w: %s", a.Base, key, ErrNoRecord, bytes.TrimSpace(body))
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("GET %s/records/%s: %s: %s", a.Base, key, resp.Status, bytes.TrimSpace(body))
	}
	return string(body), resp.Header.Get("X-Served-By"), nil
}

// ErrNoRecord is the app's answer for a key its volume lacks; any other
// error (a closed fence, a pod restarting) says nothing about the data.
var ErrNoRecord = errors.New("no such record")

// Status reads the app's status.
func (a *AppClient) Status(ctx context.Context) (AppStatus, error) {
	var s AppStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Base+"/", nil)
	if err != nil {
		return s, err
	}
	body, err := a.do(req, http.StatusOK)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(body, &s)
}

func (a *AppClient) do(req *http.Request, want int) ([]byte, error) {
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}
