package replicate

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
)

// Key names the sync of one SyncPolicy for one HAPair.
type Key struct {
	Namespace string
	Pair      string
	Policy    string
}

// Manager runs the syncers of this cluster while it is the active side.
// It is a controller-runtime Runnable: syncers live as long as the manager,
// not as long as the reconcile that started them.
type Manager struct {
	source    dynamic.Interface
	discovery discovery.CachedDiscoveryInterface
	informers *SourceInformers
	scope     Scope
	notify    func(Key)
	log       logr.Logger

	// Workers apply the objects of a wave in parallel, per sync.
	Workers int
	// RediscoverEvery is how often Ensure looks for new kinds on the active
	// cluster (a CRD installed after the sync started) and restarts a sync
	// whose kinds changed; 30s when zero.
	RediscoverEvery time.Duration

	ready   chan struct{}
	baseCtx context.Context

	mu      sync.Mutex
	syncers map[Key]*running
}

type running struct {
	syncer      *Syncer
	kinds       []Kind
	discovered  time.Time
	cancel      context.CancelFunc
	done        chan struct{}
	fingerprint string

	// errMu, not Manager.mu: the goroutine that records err must never wait
	// for a Manager that is waiting for it to finish.
	errMu sync.Mutex
	err   error
}

// NewManager prepares syncers that copy from the cluster behind source,
// reading and writing namespaced objects within scope on both clusters.
// notify is called when a sync's status changed.
func NewManager(source *rest.Config, scope Scope, notify func(Key), log logr.Logger) (*Manager, error) {
	dyn, err := dynamic.NewForConfig(source)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(source)
	if err != nil {
		return nil, err
	}
	return &Manager{
		source:    dyn,
		discovery: memory.NewMemCacheClient(dc),
		informers: NewSourceInformers(dyn, scope),
		scope:     scope,
		notify:    notify,
		log:       log,
		ready:     make(chan struct{}),
		syncers:   map[Key]*running{},
	}, nil
}

// Scope is where the syncs read and write namespaced objects.
func (m *Manager) Scope() Scope { return m.scope }

// Start implements manager.Runnable: it keeps the syncers running until ctx
// ends, then stops them.
func (m *Manager) Start(ctx context.Context) error {
	m.baseCtx = ctx
	close(m.ready)
	<-ctx.Done()
	m.mu.Lock()
	var stopped []*running
	for k := range m.syncers {
		stopped = append(stopped, m.detachLocked(k))
	}
	m.mu.Unlock()
	waitAll(stopped)
	m.informers.Stop()
	return nil
}

// Ensure runs the sync of key with the given policy and standby. A sync
// already running with the same fingerprint is left alone; a different
// fingerprint (a new policy generation, a new standby kubeconfig) restarts
// it.
func (m *Manager) Ensure(ctx context.Context, key Key, spec tandemv1.SyncPolicySpec, target *rest.Config, exclude map[plan.Ref]bool, fingerprint string) error {
	select {
	case <-m.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var kinds []Kind
	if r, ok := m.syncers[key]; ok {
		if r.fingerprint == fingerprint && time.Since(r.discovered) < m.rediscoverEvery() {
			return nil
		}
		if r.fingerprint == fingerprint {
			// Same inputs: restart only when the active cluster serves new
			// kinds (or stopped serving some).
			m.discovery.Invalidate()
			found, err := DiscoverKinds(m.discovery, spec)
			if err != nil {
				return err
			}
			r.discovered = time.Now()
			if sameKinds(found, r.kinds) {
				return nil
			}
			m.log.Info("Restarting a sync for new kinds", "namespace", key.Namespace, "hapair", key.Pair, "syncpolicy", key.Policy,
				"kinds", len(found), "before", len(r.kinds))
			kinds = found
		}
		// The old syncer must have stopped applying before the new one
		// starts; its workers exit within one request timeout.
		waitAll([]*running{m.detachLocked(key)})
	}
	if kinds == nil {
		m.discovery.Invalidate()
		found, err := DiscoverKinds(m.discovery, spec)
		if err != nil {
			return err
		}
		kinds = found
	}
	dyn, err := dynamic.NewForConfig(target)
	if err != nil {
		return fmt.Errorf("client for the standby: %w", err)
	}
	s, err := NewSyncer(Config{
		Namespace: key.Namespace, Pair: key.Pair, Policy: key.Policy,
		Spec: spec, Kinds: kinds, Target: dyn, Informers: m.informers, Scope: m.scope, Exclude: exclude, Workers: m.Workers,
		Notify: func() { m.notify(key) },
		Log:    m.log.WithValues("namespace", key.Namespace, "hapair", key.Pair, "syncpolicy", key.Policy),
	})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(m.baseCtx)
	r := &running{syncer: s, cancel: cancel, done: make(chan struct{}), fingerprint: fingerprint, kinds: kinds, discovered: time.Now()}
	m.syncers[key] = r
	go func() {
		defer close(r.done)
		if err := s.Run(runCtx); err != nil && runCtx.Err() == nil {
			r.errMu.Lock()
			r.err = err
			r.errMu.Unlock()
			m.log.Error(err, "Stopped a sync", "namespace", key.Namespace, "hapair", key.Pair, "syncpolicy", key.Policy)
			m.notify(key)
		}
	}()
	m.log.Info("Started a sync", "namespace", key.Namespace, "hapair", key.Pair, "syncpolicy", key.Policy, "kinds", len(kinds))
	return nil
}

// StopPair stops the syncs of a pair except those of the policies in keep,
// and returns once they no longer apply anything.
func (m *Manager) StopPair(namespace, pair string, keep map[string]bool) {
	m.mu.Lock()
	var stopped []*running
	for k := range m.syncers {
		if k.Namespace == namespace && k.Pair == pair && !keep[k.Policy] {
			stopped = append(stopped, m.detachLocked(k))
		}
	}
	m.mu.Unlock()
	waitAll(stopped)
}

func (m *Manager) detachLocked(k Key) *running {
	r := m.syncers[k]
	r.cancel()
	delete(m.syncers, k)
	m.log.Info("Stopped a sync", "namespace", k.Namespace, "hapair", k.Pair, "syncpolicy", k.Policy)
	return r
}

func waitAll(rs []*running) {
	for _, r := range rs {
		<-r.done
	}
}

// Status returns the status of a running sync.
func (m *Manager) Status(key Key) (Status, bool) {
	m.mu.Lock()
	r, ok := m.syncers[key]
	m.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	st := r.syncer.Status()
	r.errMu.Lock()
	if r.err != nil {
		st.Err = r.err
	}
	r.errMu.Unlock()
	return st, true
}

// Watermark of a pair: the oldest watermark of its running syncs (see
// Syncer.Watermark). ok is false when none runs or one has not made its
// first full pass: then no time bounds what the standby lacks.
func (m *Manager) Watermark(namespace, pair string) (w time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range m.syncers {
		if k.Namespace != namespace || k.Pair != pair {
			continue
		}
		sw := r.syncer.Watermark()
		if sw.IsZero() {
			return time.Time{}, false
		}
		if !ok || sw.Before(w) {
			w, ok = sw, true
		}
	}
	return w, ok
}

// Running lists the syncs that run, sorted.
func (m *Manager) Running() []Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]Key, 0, len(m.syncers))
	for k := range m.syncers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	return keys
}

func (m *Manager) rediscoverEvery() time.Duration {
	if m.RediscoverEvery > 0 {
		return m.RediscoverEvery
	}
	return 30 * time.Second
}

func sameKinds(a, b []Kind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
