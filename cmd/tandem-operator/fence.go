package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tandem-dev/tandem/internal/fence"
)

// fenceOptions are the fence sidecar's flags (`tandem-operator fence`).
type fenceOptions struct {
	pair     string
	listen   string
	upstream string
}

func (o *fenceOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.pair, "pair", "", "The HAPair whose serving Lease opens the fence, as NAMESPACE/NAME (required).")
	fs.StringVar(&o.listen, "listen", ":8080", "Address the fence serves the app's clients on.")
	fs.StringVar(&o.upstream, "upstream", "", "Where the app listens: http://127.0.0.1:PORT, or unix:///PATH for a socket in a volume the two containers share (required).")
}

func (o *fenceOptions) validate() (namespace, name string, target *url.URL, err error) {
	namespace, name, ok := strings.Cut(o.pair, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return "", "", nil, fmt.Errorf("--pair %q must be NAMESPACE/NAME", o.pair)
	}
	target, err = url.Parse(o.upstream)
	if err != nil || (target.Scheme != "http" && target.Scheme != "unix") || (target.Scheme == "http" && target.Host == "") || (target.Scheme == "unix" && target.Path == "") {
		return "", "", nil, fmt.Errorf("--upstream %q must be http://HOST:PORT or unix:///PATH", o.upstream)
	}
	return namespace, name, target, nil
}

// runFence is the data-plane fence: a reverse proxy in front of the app,
// in the app's pod, that passes requests only while this side's serving
// Lease grants it (fence.Gate), and answers 503 otherwise. It needs no
// operator to close: a grant runs out by itself.
func runFence(args []string) int {
	fs := flag.NewFlagSet("fence", flag.ContinueOnError)
	var o fenceOptions
	o.bind(fs)
	zapOpts := ctrlzap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := ctrlzap.New(ctrlzap.UseFlagOptions(&zapOpts)).WithName("fence")
	namespace, pair, target, err := o.validate()
	if err != nil {
		log.Error(err, "Refused the command line")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serveFence(ctx, log, namespace, pair, o.listen, target); err != nil {
		log.Error(err, "Stopped the fence")
		return 1
	}
	return 0
}

func serveFence(ctx context.Context, log logr.Logger, namespace, pair, listen string, target *url.URL) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("reaching this cluster's API server: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	gate := &fence.Gate{}
	lease := fence.ServingLeaseName(pair)
	// One Lease, watched by name: RBAC can limit the pod's rights to it
	// (resourceNames), and the watch delivers each renewal at once.
	lw := cache.NewFilteredListWatchFromClient(cs.CoordinationV1().RESTClient(), "leases", namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = "metadata.name=" + lease
	})
	informer := cache.NewSharedIndexInformer(lw, &coordinationv1.Lease{}, 0, cache.Indexers{})
	observe := func(obj any) {
		l, _ := obj.(*coordinationv1.Lease)
		gate.Observe(l)
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(any) { gate.Observe(nil) },
	}); err != nil {
		return err
	}
	go informer.Run(ctx.Done())
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) && len(informer.GetStore().List()) == 0 {
			gate.Observe(nil) // read, and there is none: closed
		}
	}()
	go logTransitions(ctx, log.WithValues("lease", namespace+"/"+lease), gate)

	srv := &http.Server{Addr: listen, Handler: fenceHandler(gate, upstreamProxy(target)), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("Serving", "listen", listen, "upstream", target.String(), "lease", namespace+"/"+lease)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// fenceStatusPath answers whether the fence is open, from the fence itself
// (so a probe of the sidecar does not depend on the app); every other path
// goes to the app while the fence is open.
const fenceStatusPath = "/tandem-fence/status"

func fenceHandler(gate *fence.Gate, app http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		open, why := gate.Open()
		if r.URL.Path == fenceStatusPath {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"open": open, "reason": why})
			return
		}
		if !open {
			w.Header().Set("Tandem-Fence", "closed")
			http.Error(w, "tandem fence: this data center may not serve now: "+why, http.StatusServiceUnavailable)
			return
		}
		app.ServeHTTP(w, r)
	})
}

func upstreamProxy(target *url.URL) http.Handler {
	if target.Scheme != "unix" {
		return httputil.NewSingleHostReverseProxy(target)
	}
	socket := target.Path
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "app"})
	p.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return p
}

// logTransitions logs each time the fence opens or closes, with why.
func logTransitions(ctx context.Context, log logr.Logger, gate *fence.Gate) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	last := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		open, why := gate.Open()
		switch {
		case open == last:
			continue
		case open:
			log.Info("Open: this side's role is confirmed")
		default:
			log.Info("Closed", "reason", why)
		}
		last = open
	}
}
