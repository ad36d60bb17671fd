package testbed

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Scheme knows the built-in kinds and Tandem's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(tandemv1.AddToScheme(s))
	utilruntime.Must(snapv1.AddToScheme(s))
	return s
}

// APIServer is a real kube-apiserver and etcd started by envtest, with
// Tandem's CRDs and admission policies installed.
type APIServer struct {
	Name   string
	Env    *envtest.Environment
	Config *rest.Config
	Client client.Client
}

// StartAPIServer starts a kube-apiserver + etcd on 127.0.0.1, installs the
// CRDs from config/crd/bases and the admission policies from
// config/admission, and waits until the API server enforces them.
func StartAPIServer(ctx context.Context, name string) (*APIServer, error) {
	return startAPIServer(ctx, name, true)
}

// StartBareAPIServer starts a kube-apiserver + etcd with nothing of
// Tandem's installed, as a cluster is before its first helm install.
func StartBareAPIServer(ctx context.Context, name string) (*APIServer, error) {
	return startAPIServer(ctx, name, false)
}

func startAPIServer(ctx context.Context, name string, tandem bool) (*APIServer, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	root := RepoRoot()
	env := &envtest.Environment{BinaryAssetsDirectory: bin}
	if tandem {
		env.CRDDirectoryPaths, env.ErrorIfCRDPathMissing = []string{filepath.Join(root, "config", "crd", "bases")}, true
	}
	cfg, err := env.Start()
	if err != nil {
		// Start can fail after the processes are up (installing the CRDs,
		// say); stop them, or they outlive the test.
		_ = env.Stop()
		return nil, fmt.Errorf("starting API server %s: %w", name, err)
	}
	s := &APIServer{Name: name, Env: env, Config: cfg}
	s.Client, err = client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("client for API server %s: %w", name, err)
	}
	if !tandem {
		return s, nil
	}
	if err := ApplyDir(ctx, s.Client, filepath.Join(root, "config", "admission")); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("installing admission policies into %s: %w", name, err)
	}
	return s, nil
}

// Stop stops the API server and etcd.
func (s *APIServer) Stop() error {
	if err := s.Env.Stop(); err != nil {
		return fmt.Errorf("stopping API server %s: %w", s.Name, err)
	}
	return nil
}

// StartAPIServers starts n API servers in parallel (each takes a few
// seconds), stopping the ones that started when any fails.
func StartAPIServers(ctx context.Context, names ...string) ([]*APIServer, error) {
	type result struct {
		i   int
		s   *APIServer
		err error
	}
	ch := make(chan result, len(names))
	for i, n := range names {
		go func() {
			s, err := StartAPIServer(ctx, n)
			ch <- result{i, s, err}
		}()
	}
	servers := make([]*APIServer, len(names))
	var firstErr error
	for range names {
		r := <-ch
		servers[r.i] = r.s
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}
	if firstErr != nil {
		for _, s := range servers {
			if s != nil {
				_ = s.Stop()
			}
		}
		return nil, firstErr
	}
	return servers, nil
}

// Poll calls cond every interval until it returns true or the deadline
// passes; the last error cond returned is part of the timeout error.
func Poll(ctx context.Context, timeout, interval time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("timed out after %s: %w", timeout, last)
			}
			return fmt.Errorf("timed out after %s", timeout)
		case <-time.After(interval):
		}
	}
}

// Kubeconfig returns a kubeconfig for an admin of the API server, with
// credentials embedded, as a user would put in a peer kubeconfig Secret.
func (s *APIServer) Kubeconfig() ([]byte, error) {
	u, err := s.Env.AddUser(envtest.User{Name: "tandem-peer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding a user to API server %s: %w", s.Name, err)
	}
	return u.KubeConfig()
}
