// Command tandem-operator runs the Tandem controllers in one data center.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlzap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/controller"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
	"github.com/tandem-dev/tandem/internal/replicate"
)

// clusterNamePattern is the pattern HAPair spec.clusters[].name accepts, so a
// mistyped --cluster-name fails at start instead of never matching a pair.
var clusterNamePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

type options struct {
	clusterName             string
	metricsAddr             string
	metricsSecure           bool
	probeAddr               string
	pprofAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	leaseDuration           time.Duration
	renewDeadline           time.Duration
	retryPeriod             time.Duration
	allowKubeconfigExec     bool
	allowInsecureKubeconfig bool
	allowKubeconfigProxy    bool
	allowRequestCIDRs       string
	denyRequestCIDRs        string
	requests                remote.AddressPolicy
	checkJobImages          string
	peerQPS                 float64
	peerBurst               int
	kubeQPS                 float64
	kubeBurst               int
	syncWorkers             int
	namespaces              string
	scope                   replicate.Scope
}

func (o *options) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.clusterName, "cluster-name", "", "Name of the data center this operator runs in, as listed in HAPair spec.clusters (required).")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; \"0\" turns it off.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorised through the API server (TokenReview and SubjectAccessReview).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "Address Go's /debug/pprof endpoints bind to, for profiling; \"0\" (the default) turns them off. Bind it to 127.0.0.1: the endpoints have no authentication.")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader, so only one replica of the operator acts at a time.")
	fs.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 10*time.Second, "How long a new leader waits for the old one's leader Lease to expire. With the retry period it is this operator's takeover budget (12s by default), which every pair's spec.witness.leaseDuration (15s by default) must exceed (condition FailoverSafe).")
	fs.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 7*time.Second, "How long the leader keeps trying to renew its Lease before it gives up leadership (and exits).")
	fs.DurationVar(&o.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often candidates try to take the leader Lease.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease; the pod's namespace when empty (required when running outside a cluster with --leader-elect).")
	fs.BoolVar(&o.allowKubeconfigExec, "allow-kubeconfig-exec", false, "Allow exec credential plugins in peer and witness kubeconfig Secrets (they run binaries inside the operator).")
	fs.BoolVar(&o.allowInsecureKubeconfig, "allow-insecure-kubeconfig", false, "Allow insecure-skip-tls-verify and plain http servers in peer and witness kubeconfig Secrets.")
	fs.BoolVar(&o.allowKubeconfigProxy, "allow-kubeconfig-proxy", false, "Allow proxy-url in peer and witness kubeconfig Secrets (the operator's requests and credentials then go through that proxy).")
	fs.StringVar(&o.allowRequestCIDRs, "allow-request-cidrs", "", "Comma-separated CIDRs that probe endpoints and drill HTTP checks may reach although loopback or link-local (refused otherwise: the operator's own ports, a cloud's metadata service).")
	fs.StringVar(&o.checkJobImages, "check-job-images", "", "Comma-separated image prefixes a drill's check Job may run (registry.example.com/checks/, say); any image when empty.")
	fs.StringVar(&o.denyRequestCIDRs, "deny-request-cidrs", "", "Comma-separated CIDRs that probe endpoints and drill HTTP checks may never reach: this cluster's pod and service networks, say.")
	fs.Float64Var(&o.peerQPS, "peer-qps", 1000, "Client-side rate limit of requests to the peer cluster.")
	fs.IntVar(&o.peerBurst, "peer-burst", 2000, "Client-side burst of requests to the peer cluster.")
	fs.Float64Var(&o.kubeQPS, "kube-api-qps", 50, "Client-side rate limit of requests to this cluster (volume protection reads and writes a few objects per PVC each round).")
	fs.IntVar(&o.kubeBurst, "kube-api-burst", 100, "Client-side burst of requests to this cluster.")
	fs.IntVar(&o.syncWorkers, "sync-workers", 16, "Objects applied to the standby in parallel, per SyncPolicy.")
	fs.StringVar(&o.namespaces, "namespaces", "", "Comma-separated namespaces the operator watches and acts in, when its rights are Roles there rather than a ClusterRole (the chart's rbac.namespaces); every namespace when empty. Pairs elsewhere are not seen, and the sync reads and writes namespaced objects only in these namespaces, on both clusters.")
}

func (o *options) validate() error {
	if o.clusterName == "" {
		return errors.New("--cluster-name is required: the name of this data center as listed in HAPair spec.clusters")
	}
	if len(o.clusterName) > 63 || !clusterNamePattern.MatchString(o.clusterName) {
		return fmt.Errorf("--cluster-name %q must be a DNS label (lower-case letters, digits and '-', at most 63 characters)", o.clusterName)
	}
	var err error
	if o.requests.Allowed, err = remote.ParsePrefixes(splitList(o.allowRequestCIDRs)); err != nil {
		return fmt.Errorf("--allow-request-cidrs: %w", err)
	}
	if o.requests.Denied, err = remote.ParsePrefixes(splitList(o.denyRequestCIDRs)); err != nil {
		return fmt.Errorf("--deny-request-cidrs: %w", err)
	}
	for _, ns := range splitList(o.namespaces) {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("--namespaces: %q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
		if !slices.Contains(o.scope, ns) {
			o.scope = append(o.scope, ns)
		}
	}
	return nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fence" {
		os.Exit(runFence(os.Args[2:]))
	}
	var opts options
	opts.bind(flag.CommandLine)
	zapOpts := ctrlzap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(ctrlzap.New(ctrlzap.UseFlagOptions(&zapOpts)))
	setupLog := ctrl.Log.WithName("setup")

	if err := opts.validate(); err != nil {
		setupLog.Error(err, "Refused the command line")
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		setupLog.Error(err, "Stopped the operator")
		os.Exit(1)
	}
}

func run(opts options) error {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(tandemv1.AddToScheme(scheme))
	utilruntime.Must(snapv1.AddToScheme(scheme))

	metricsOpts := metricsserver.Options{
		BindAddress:   opts.metricsAddr,
		SecureServing: opts.metricsSecure,
	}
	if opts.metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cfg := ctrl.GetConfigOrDie()
	cfg.QPS, cfg.Burst = float32(opts.kubeQPS), opts.kubeBurst
	// Nothing reads managedFields from the caches; they are a large part
	// of every cached object.
	watched := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if !opts.scope.Cluster() {
		// Roles in these namespaces are all the rights the operator has on
		// namespaced kinds: its caches must not list anything elsewhere.
		watched.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range opts.scope {
			watched.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   watched,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  opts.probeAddr,
		PprofBindAddress:        opts.pprofAddr,
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        "tandem-operator." + opts.clusterName + ".tandem.dev",
		LeaderElectionNamespace: opts.leaderElectionNamespace,
		LeaseDuration:           &opts.leaseDuration,
		RenewDeadline:           &opts.renewDeadline,
		RetryPeriod:             &opts.retryPeriod,
		// A new leader must not act while the old one still might; the
		// release on cancel keeps handover fast on a clean shutdown.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	// Sync status changes reach the controllers through these channels, so
	// status follows a full pass without polling.
	pairEvents := make(chan event.GenericEvent, 1024)
	policyEvents := make(chan event.GenericEvent, 1024)
	notify := func(k replicate.Key) {
		trySend(pairEvents, &tandemv1.HAPair{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Pair}})
		trySend(policyEvents, &tandemv1.SyncPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Policy}})
	}
	syncs, err := replicate.NewManager(mgr.GetConfig(), opts.scope, notify, ctrl.Log.WithName("sync"))
	if err != nil {
		return fmt.Errorf("creating the sync manager: %w", err)
	}
	syncs.Workers = opts.syncWorkers
	if err := mgr.Add(syncs); err != nil {
		return fmt.Errorf("adding the sync manager: %w", err)
	}
	kubeconfigPolicy := remote.Policy{
		AllowExec: opts.allowKubeconfigExec, AllowInsecure: opts.allowInsecureKubeconfig, AllowProxy: opts.allowKubeconfigProxy,
		QPS: float32(opts.peerQPS), Burst: opts.peerBurst,
	}
	recorder := mgr.GetEventRecorder("tandem-operator")

	// The services both the HAPair and the Switchover controller use.
	ctx := ctrl.SetupSignalHandler()
	if err := controller.SetupIndexes(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the field indexes: %w", err)
	}
	// With --namespaces a List across all namespaces is refused: the
	// scoped client lists namespace by namespace instead (unstructured
	// lists, such as the workloads', bypass the caches).
	kube := remote.ScopedClient{Client: mgr.GetClient(), Scope: opts.scope}
	peers, witness, heartbeats, grants := &remote.Peers{Scheme: scheme, Addresses: opts.requests, Scope: opts.scope}, &fence.Witness{}, &controller.Heartbeats{}, &controller.PeerGrants{}
	workloads := controller.Workloads{Policies: kube}
	switchovers := controller.Switchovers{Reader: kube}

	if err := (&controller.HAPairReconciler{
		Client: kube, ClusterName: opts.clusterName, Syncs: syncs,
		Peers: peers, Witness: witness, Workloads: workloads, Switchovers: switchovers,
		Kubeconfig: kubeconfigPolicy, Events: recorder, SyncEvents: pairEvents,
		APIReader: mgr.GetAPIReader(), TakeoverBudget: opts.takeoverBudget(), Heartbeats: heartbeats, Grants: grants,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the HAPair controller: %w", err)
	}
	if err := (&controller.SyncPolicyReconciler{
		Client: kube, ClusterName: opts.clusterName, Syncs: syncs,
		Events: recorder, SyncEvents: policyEvents,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the SyncPolicy controller: %w", err)
	}
	if err := (&controller.SwitchoverReconciler{
		Client: kube, ClusterName: opts.clusterName, LocalConfig: mgr.GetConfig(),
		CheckImages: splitList(opts.checkJobImages), Peers: peers, Witness: witness, Syncs: syncs, Workloads: workloads, Switchovers: switchovers,
		Events: recorder, APIReader: mgr.GetAPIReader(), Heartbeats: heartbeats, Grants: grants,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Switchover controller: %w", err)
	}

	// The early fence acts before the caches are of use (a data center
	// coming back): it reads and writes this cluster directly.
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating the early fence's client: %w", err)
	}
	scoped := remote.ScopedClient{Client: direct, Scope: opts.scope}
	if err := mgr.Add(&controller.EarlyFence{
		Client: scoped, Reader: scoped, ClusterName: opts.clusterName,
		Peers: peers, Witness: witness, Workloads: controller.Workloads{Policies: scoped},
		Kubeconfig: kubeconfigPolicy, Elected: mgr.Elected(),
	}); err != nil {
		return fmt.Errorf("adding the early fence: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}

	ctrl.Log.WithName("setup").Info("Started the operator", "cluster", opts.clusterName)
	return mgr.Start(ctx)
}

// takeoverBudget is the longest this side can go without a leader renewing
// its witness Lease when the leader dies and another replica (or the
// restarted one) takes over: the old leader's Lease must expire, and a
// candidate tries again every retry period. Zero without leader election:
// then a restart is the only takeover, and its time is the kubelet's.
func (o options) takeoverBudget() time.Duration {
	if !o.leaderElect {
		return 0
	}
	return o.leaseDuration + o.retryPeriod
}

// trySend queues a reconcile of obj unless the channel is full, in which case
// reconciles are queued already and status refreshes periodically anyway: a
// syncer must never block on the controllers.
func trySend(ch chan<- event.GenericEvent, obj client.Object) {
	select {
	case ch <- event.GenericEvent{Object: obj}:
	default:
	}
}

// splitList reads a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
