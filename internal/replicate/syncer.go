package replicate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
)

// FieldManager is the server-side apply field manager of every copy.
const FieldManager = "tandem"

// maxReportedFailures bounds the failures named in status.
const maxReportedFailures = 10

var namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Config is one SyncPolicy of one pair, copied from this (the active)
// cluster to the standby.
type Config struct {
	// Namespace of the HAPair and SyncPolicy.
	Namespace string
	Pair      string
	Policy    string
	Spec      tandemv1.SyncPolicySpec
	// Kinds copied, from DiscoverKinds.
	Kinds []Kind
	// Target is the standby cluster.
	Target dynamic.Interface
	// Informers watch the active cluster.
	Informers *SourceInformers
	// Scope bounds the standby's lists as the informers' scope bounds the
	// active cluster's.
	Scope Scope
	// Exclude are objects never copied whatever the policy selects: the
	// pair's own kubeconfig and TSIG Secrets, which belong to one side.
	Exclude map[plan.Ref]bool
	// Workers apply objects of a wave in parallel; 16 when zero.
	Workers int
	// Notify is called after every full pass and when failures change, so
	// the controllers can write status.
	Notify func()
	// OnApplied, when set, is called after each object applied to the
	// standby, in order. Tests use it to record the order of the waves.
	OnApplied func(plan.Ref)
	Log       logr.Logger
}

// Status is what a syncer has done, for the SyncPolicy and HAPair status.
type Status struct {
	Selected, InSync, OutOfSync int
	Failures                    map[plan.Ref]string
	Waves                       int
	Plan                        *plan.Plan
	LastFullSync                time.Time
	Lag                         time.Duration
	// Err is why the last full pass could not run (the standby
	// unreachable, say); counts are from the pass before.
	Err error
}

// FailureList returns the first failures, sorted, for status.
func (s Status) FailureList() []tandemv1.ObjectFailure {
	out := make([]tandemv1.ObjectFailure, 0, len(s.Failures))
	for r, msg := range s.Failures {
		out = append(out, tandemv1.ObjectFailure{Object: r.String(), Message: msg})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	if len(out) > maxReportedFailures {
		out = out[:maxReportedFailures]
	}
	return out
}

// copyState is what the syncer knows of a copy on the standby.
type copyState struct {
	hash    string
	created bool
}

// Syncer keeps the standby's copies of one policy current.
type Syncer struct {
	cfg    Config
	sel    *selector
	opts   Options
	labels []string // metric labels

	kinds     map[string]Kind // by lower-case kind + "." + group
	informers map[schema.GroupVersionResource]*Watch
	nsInf     *Watch
	crdInf    *Watch   // the active cluster's CRDs, for the plan
	removes   []func() // the event handlers' removal

	queue workqueue.TypedRateLimitingInterface[plan.Ref]

	// passMu lets incremental applies run together but never during a full
	// pass: a pass prunes from a snapshot, and must not delete a copy that
	// a concurrent event just created.
	passMu sync.RWMutex

	mu       sync.Mutex
	index    map[plan.Ref]copyState
	observed map[plan.Ref]time.Time
	status   Status
	trigger  chan struct{}
}

// NewSyncer prepares a syncer; Run starts it.
func NewSyncer(cfg Config) (*Syncer, error) {
	sel, err := newSelector(cfg.Spec)
	if err != nil {
		return nil, err
	}
	if cfg.Workers == 0 {
		cfg.Workers = 16
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	s := &Syncer{
		cfg:       cfg,
		sel:       sel,
		opts:      Options{Pair: cfg.Pair, PairNamespace: cfg.Namespace, Policy: cfg.Policy, Mode: cfg.Spec.StandbyMode, Transforms: cfg.Spec.Transforms},
		labels:    []string{cfg.Namespace, cfg.Pair, cfg.Policy},
		kinds:     map[string]Kind{},
		informers: map[schema.GroupVersionResource]*Watch{},
		index:     map[plan.Ref]copyState{},
		observed:  map[plan.Ref]time.Time{},
		status:    Status{Failures: map[plan.Ref]string{}},
		trigger:   make(chan struct{}, 1),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[plan.Ref](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[plan.Ref]{Name: "tandem-sync-" + cfg.Namespace + "-" + cfg.Pair + "-" + cfg.Policy}),
	}
	for _, k := range cfg.Kinds {
		s.kinds[kindKey(k.GVK.Kind, k.GVK.Group)] = k
	}
	return s, nil
}

func kindKey(kind, group string) string { return strings.ToLower(kind) + "." + group }

// Status returns a copy of the syncer's status.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Failures = make(map[plan.Ref]string, len(s.status.Failures))
	for k, v := range s.status.Failures {
		st.Failures[k] = v
	}
	return st
}

// WatchAllowance is how far a watermark stays behind the syncer's own
// observations: a change is acknowledged on the active cluster before its
// watch event reaches the informer (milliseconds on a healthy API server),
// and the watermark must not claim a change that is still on its way.
const WatchAllowance = time.Second

// Watermark is the time up to which every change made on the active cluster
// is applied on the standby: the first observation of the oldest change
// still pending (or failing), or now when none is, less WatchAllowance. It
// is zero until this syncer has made a full pass, because until then
// objects that existed when it started may be missing on the standby.
func (s *Syncer) Watermark() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.LastFullSync.IsZero() {
		return time.Time{}
	}
	w := time.Now()
	for _, t := range s.observed {
		if t.IsZero() {
			return time.Time{}
		}
		if t.Before(w) {
			w = t
		}
	}
	return w.Add(-WatchAllowance)
}

// lastChanged is when the API server last wrote obj, as far as it says: its
// newest managedFields time (whole seconds, so never late) or its creation.
// An object the syncer found on its first list and could not apply has been
// missing on the standby since then, not since the pass. Zero when the
// object carries neither, and then no watermark holds.
func lastChanged(obj *unstructured.Unstructured) time.Time {
	t := obj.GetCreationTimestamp().Time
	for _, mf := range obj.GetManagedFields() {
		if mf.Time != nil && mf.Time.After(t) {
			t = mf.Time.Time
		}
	}
	return t
}

// pending records a change the standby does not have yet, unless an
// earlier observation of it is still pending.
func (s *Syncer) pending(ref plan.Ref, at time.Time) {
	s.mu.Lock()
	if _, seen := s.observed[ref]; !seen {
		s.observed[ref] = at
	}
	s.mu.Unlock()
}

// Resync asks for a full pass now.
func (s *Syncer) Resync() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run watches the selected kinds, makes an initial full pass, then applies
// every change and repeats the full pass every FullResyncInterval, until ctx
// ends.
func (s *Syncer) Run(ctx context.Context) error {
	defer s.queue.ShutDown()
	defer func() {
		for _, remove := range s.removes {
			remove()
		}
	}()
	var err error
	if s.nsInf, err = s.cfg.Informers.Watch(ctx, namespacesGVR, false); err != nil {
		return err
	}
	if s.crdInf, err = s.cfg.Informers.Watch(ctx, crdGVR, false); err != nil {
		return err
	}
	for _, k := range s.cfg.Kinds {
		inf, err := s.cfg.Informers.Watch(ctx, k.GVR, k.Namespaced)
		if err != nil {
			return err
		}
		s.informers[k.GVR] = inf
		remove, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
			AddFunc: func(obj any, initial bool) {
				// The informer replays what it holds to a new handler; the
				// initial full pass applies those, in plan order.
				if !initial {
					s.onEvent(obj)
				}
			},
			UpdateFunc: s.onUpdate,
			DeleteFunc: s.onEvent,
		})
		if err != nil {
			return fmt.Errorf("watching %s: %w", k.GVR, err)
		}
		s.removes = append(s.removes, remove)
	}

	// The API server defaults the field; a policy built in Go for a test
	// may leave it out.
	interval := 5 * time.Minute
	if d := s.cfg.Spec.FullResyncInterval; d != nil && d.Duration > 0 {
		interval = d.Duration
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	// A pass that could not run (the standby did not answer) is retried
	// with back-off rather than at the next tick, minutes later: until it
	// runs, objects that existed before the syncer started are on the
	// standby only if an earlier syncer put them there.
	retry := passBackoff{}
	var again <-chan time.Time
	pass := func() {
		if s.fullPass(ctx) {
			retry = passBackoff{}
			again = nil
			return
		}
		again = time.After(retry.next())
	}
	pass()
	for range s.cfg.Workers {
		go s.worker(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			pass()
		case <-s.trigger:
			pass()
		case <-again:
			pass()
		}
	}
}

// passBackoff spaces the retries of a full pass that could not run: 200 ms,
// doubling, at most 30 s (the range of the per-object retries).
type passBackoff struct{ last time.Duration }

func (b *passBackoff) next() time.Duration {
	b.last = min(max(2*b.last, 200*time.Millisecond), 30*time.Second)
	return b.last
}

func (s *Syncer) onUpdate(old, obj any) {
	o, ok1 := old.(*unstructured.Unstructured)
	n, ok2 := obj.(*unstructured.Unstructured)
	if ok1 && ok2 && o.GetResourceVersion() == n.GetResourceVersion() {
		return
	}
	s.onEvent(obj)
}

func (s *Syncer) onEvent(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	ref := plan.RefOf(u)
	s.pending(ref, time.Now())
	s.queue.Add(ref)
}

func (s *Syncer) worker(ctx context.Context) {
	for {
		ref, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		err := s.syncRef(ctx, ref)
		if err != nil && ctx.Err() == nil {
			s.queue.AddRateLimited(ref)
		} else {
			s.queue.Forget(ref)
		}
		s.queue.Done(ref)
	}
}

// syncRef applies one changed object (dependencies first) or prunes its
// copy.
func (s *Syncer) syncRef(ctx context.Context, ref plan.Ref) error {
	s.passMu.RLock()
	defer s.passMu.RUnlock()
	obj := s.source(ref)
	var err error
	switch {
	case obj == nil || !s.selected(obj):
		err = s.pruneOne(ctx, ref)
	case s.heldBack(ref):
		// On a cycle (or behind one) in the last plan: only a full pass,
		// which sees the whole graph, may decide it is free. The change
		// stays pending for the watermark.
		s.Resync()
		return nil
	default:
		err = s.applyWithDeps(ctx, obj, map[plan.Ref]bool{})
		if errors.Is(err, errCycle) {
			s.Resync()
			err = nil
		}
	}
	s.mu.Lock()
	if err == nil {
		if t, ok := s.observed[ref]; ok {
			lag := time.Since(t)
			s.status.Lag = lag
			lagSeconds.WithLabelValues(s.labels...).Observe(lag.Seconds())
		}
		delete(s.observed, ref)
	}
	s.mu.Unlock()
	return err
}

// applyWithDeps applies obj after the dependencies it names that are
// selected but not yet on the standby: a Deployment and its new ConfigMap
// created together must land in that order here too.
func (s *Syncer) applyWithDeps(ctx context.Context, obj *unstructured.Unstructured, visiting map[plan.Ref]bool) error {
	ref := plan.RefOf(obj)
	visiting[ref] = true
	defer delete(visiting, ref)
	for _, dep := range plan.Dependencies(obj) {
		d := s.source(dep)
		if d == nil && dep.Namespace != "" {
			dep.Namespace = ""
			d = s.source(dep)
		}
		if d == nil || !s.selected(d) {
			continue
		}
		if visiting[plan.RefOf(d)] {
			return fmt.Errorf("%s: %w", ref, errCycle)
		}
		s.mu.Lock()
		_, onStandby := s.index[plan.RefOf(d)]
		s.mu.Unlock()
		if onStandby {
			continue
		}
		if err := s.applyWithDeps(ctx, d, visiting); err != nil {
			return fmt.Errorf("dependency of %s: %w", ref, err)
		}
	}
	_, err := s.applyOne(ctx, obj, nil, false)
	return err
}

// applyOne transforms obj and applies it unless the standby's copy already
// matches. live is the copy from a listing of the standby, when the caller
// has one (a full pass); listed says whether that listing happened, so a
// nil live means the copy does not exist.
func (s *Syncer) applyOne(ctx context.Context, obj, live *unstructured.Unstructured, listed bool) (applied bool, err error) {
	ref := plan.RefOf(obj)
	defer func() { s.recordResult(ref, err) }()
	desired, hash, err := Transform(obj, s.opts)
	if err != nil {
		return false, err
	}
	kind, ok := s.kinds[kindKey(ref.Kind, ref.Group)]
	if !ok {
		return false, fmt.Errorf("kind %s is not selected", ref.GroupKind())
	}
	rc := s.resource(kind, ref.Namespace)

	s.mu.Lock()
	known, inIndex := s.index[ref]
	s.mu.Unlock()
	var created bool
	switch {
	case listed:
		created = live == nil || (isOurs(live, s.opts) && live.GetAnnotations()[CreatedAnnotation] == "true")
		if live != nil && live.GetAnnotations()[HashAnnotation] == hash && !Drifted(desired, live) {
			s.remember(ref, copyState{hash, created})
			return false, nil
		}
	case inIndex:
		created = known.created
		if known.hash == hash {
			return false, nil
		}
	default:
		// Not seen on the standby yet: an object that exists there already
		// and is not ours is adopted, never created, so it is never pruned.
		existing, err := rc.Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			created = true
		case err != nil:
			return false, fmt.Errorf("reading the standby's copy: %w", err)
		default:
			created = isOurs(existing, s.opts) && existing.GetAnnotations()[CreatedAnnotation] == "true"
		}
	}
	if created {
		ann := desired.GetAnnotations()
		ann[CreatedAnnotation] = "true"
		desired.SetAnnotations(ann)
	}
	if _, err := rc.Apply(ctx, ref.Name, desired, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		applyErrorsTotal.WithLabelValues(s.labels...).Inc()
		return false, err
	}
	appliedTotal.WithLabelValues(s.labels...).Inc()
	s.remember(ref, copyState{hash, created})
	if s.cfg.OnApplied != nil {
		s.cfg.OnApplied(ref)
	}
	return true, nil
}

func (s *Syncer) remember(ref plan.Ref, st copyState) {
	s.mu.Lock()
	s.index[ref] = st
	s.mu.Unlock()
}

// recordResult keeps the failure set current and tells the controllers when
// it changed.
func (s *Syncer) recordResult(ref plan.Ref, err error) {
	s.mu.Lock()
	_, had := s.status.Failures[ref]
	if err != nil {
		s.status.Failures[ref] = err.Error()
	} else {
		delete(s.status.Failures, ref)
	}
	changed := had != (err != nil)
	// The counts come from the last full pass; a retry that heals (or an
	// apply that fails) between passes moves them, or Synced would stay
	// False until the next pass, minutes later.
	switch {
	case had && err == nil && s.status.OutOfSync > 0:
		s.status.OutOfSync--
		s.status.InSync++
	case !had && err != nil && s.status.InSync > 0:
		s.status.OutOfSync++
		s.status.InSync--
	}
	s.mu.Unlock()
	if changed {
		s.cfg.Notify()
	}
}

func (s *Syncer) pruneOne(ctx context.Context, ref plan.Ref) error {
	s.mu.Lock()
	st, ok := s.index[ref]
	s.mu.Unlock()
	if !ok || !st.created {
		// Never copied, or adopted: Tandem deletes only what it created.
		s.forget(ref)
		return nil
	}
	kind, ok := s.kinds[kindKey(ref.Kind, ref.Group)]
	if !ok {
		return nil
	}
	if err := s.resource(kind, ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pruning %s from the standby: %w", ref, err)
	}
	prunedTotal.WithLabelValues(s.labels...).Inc()
	s.forget(ref)
	return nil
}

func (s *Syncer) forget(ref plan.Ref) {
	s.mu.Lock()
	delete(s.index, ref)
	_, had := s.status.Failures[ref]
	delete(s.status.Failures, ref)
	s.mu.Unlock()
	if had {
		s.cfg.Notify()
	}
}

func (s *Syncer) resource(k Kind, namespace string) dynamic.ResourceInterface {
	if k.Namespaced {
		return s.cfg.Target.Resource(k.GVR).Namespace(namespace)
	}
	return s.cfg.Target.Resource(k.GVR)
}

// source returns the active cluster's object for ref from the watch cache.
func (s *Syncer) source(ref plan.Ref) *unstructured.Unstructured {
	k, ok := s.kinds[kindKey(ref.Kind, ref.Group)]
	if !ok {
		return nil
	}
	inf := s.informers[k.GVR]
	if inf == nil {
		return nil
	}
	key := ref.Name
	if ref.Namespace != "" {
		key = ref.Namespace + "/" + ref.Name
	}
	item, exists, err := inf.GetByKey(key)
	if err != nil || !exists {
		return nil
	}
	u, _ := item.(*unstructured.Unstructured)
	return u
}

// errCycle stops an incremental apply that found its object on a
// dependency cycle; the full pass reports the cycle.
var errCycle = errors.New("on a dependency cycle")

// heldBack says whether the last plan kept ref out of its waves.
func (s *Syncer) heldBack(ref plan.Ref) bool {
	s.mu.Lock()
	p := s.status.Plan
	s.mu.Unlock()
	if p == nil {
		return false
	}
	for _, b := range p.Blocked {
		if b == ref {
			return true
		}
	}
	for _, c := range p.Cycles {
		for _, r := range c {
			if r == ref {
				return true
			}
		}
	}
	return false
}

// selected says whether the policy copies obj.
func (s *Syncer) selected(obj *unstructured.Unstructured) bool {
	return s.sel.selects(obj, s.cfg.Exclude, func(ns string) (map[string]string, bool) {
		item, exists, _ := s.nsInf.GetByKey(ns)
		if !exists {
			return nil, false
		}
		nsObj, ok := item.(*unstructured.Unstructured)
		if !ok {
			return nil, false
		}
		return nsObj.GetLabels(), true
	})
}

// selectedObjects lists every object the policy copies, from the watch
// caches.
func (s *Syncer) selectedObjects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, k := range s.cfg.Kinds {
		for _, item := range s.informers[k.GVR].List() {
			if u, ok := item.(*unstructured.Unstructured); ok && s.selected(u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// fullPass selects, plans, applies what is missing, changed or drifted wave
// by wave, and prunes copies whose source is gone.
func (s *Syncer) fullPass(ctx context.Context) bool {
	s.passMu.Lock()
	defer s.passMu.Unlock()
	start := time.Now()
	log := s.cfg.Log

	objs := s.selectedObjects()
	p := plan.Build(plan.Input{Objects: objs, Extra: s.cfg.Spec.ExtraDependencies, CRDs: crdNames(s.crdInf.List())})
	planSeconds.WithLabelValues(s.labels...).Observe(time.Since(start).Seconds())

	live, err := s.listStandby(ctx)
	if err != nil {
		s.mu.Lock()
		s.status.Err = err
		s.status.Plan = p
		s.mu.Unlock()
		log.Error(err, "Skipped a full pass: could not list the standby's copies")
		s.cfg.Notify()
		return false
	}

	var applied, failed int
	for i, wave := range p.Waves {
		a, f, crds := s.applyWave(ctx, wave, live)
		applied += a
		failed += f
		if len(crds) > 0 && i < len(p.Waves)-1 {
			// Custom resources in later waves need their CRD served.
			if err := s.waitEstablished(ctx, crds); err != nil {
				log.Error(err, "Waited for CRDs on the standby in vain; their resources will fail and be retried")
			}
		}
	}

	selectedRefs := make(map[plan.Ref]bool, len(objs))
	for _, o := range objs {
		selectedRefs[plan.RefOf(o)] = true
	}
	for ref, copy := range live {
		if selectedRefs[ref] || !isOurs(copy, s.opts) || copy.GetAnnotations()[CreatedAnnotation] != "true" {
			continue
		}
		s.remember(ref, copyState{created: true})
		if err := s.pruneOne(ctx, ref); err != nil {
			log.Error(err, "Failed to prune a copy", "object", ref.String())
		}
	}

	s.mu.Lock()
	unplanned := len(objs) - p.Len()
	// Copies of objects on a cycle, blocked, or whose apply failed are out
	// of sync.
	outOfSync := unplanned + len(s.status.Failures)
	s.status.Selected = len(objs)
	s.status.OutOfSync = outOfSync
	s.status.InSync = len(objs) - outOfSync
	s.status.Waves = len(p.Waves)
	s.status.Plan = p
	s.status.LastFullSync = time.Now()
	s.status.Err = nil
	st := s.status
	s.mu.Unlock()

	objectsGauge.WithLabelValues(append(s.labels, "selected")...).Set(float64(st.Selected))
	objectsGauge.WithLabelValues(append(s.labels, "in_sync")...).Set(float64(st.InSync))
	objectsGauge.WithLabelValues(append(s.labels, "out_of_sync")...).Set(float64(st.OutOfSync))
	objectsGauge.WithLabelValues(append(s.labels, "failed")...).Set(float64(len(st.Failures)))
	fullPassSeconds.WithLabelValues(s.labels...).Observe(time.Since(start).Seconds())
	log.V(1).Info("Finished a full pass", "selected", st.Selected, "applied", applied, "failed", failed,
		"waves", st.Waves, "cycles", len(p.Cycles), "duration", time.Since(start).String())
	s.cfg.Notify()
	return true
}

// applyWave applies the objects of one wave in parallel and returns how
// many were applied and failed, and the CRDs among them.
// An object whose apply failed is pending since it last changed, so the
// watermark stops there until it lands.
func (s *Syncer) applyWave(ctx context.Context, wave []*unstructured.Unstructured, live map[plan.Ref]*unstructured.Unstructured) (applied, failed int, crds []string) {
	var mu sync.Mutex
	work := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	for range min(s.cfg.Workers, len(wave)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range work {
				ok, err := s.applyOne(ctx, obj, live[plan.RefOf(obj)], true)
				if err != nil && ctx.Err() == nil {
					// Retried with back-off like a watched change, so a
					// cause fixed on either side heals in seconds, not at
					// the next full pass.
					s.pending(plan.RefOf(obj), lastChanged(obj))
					s.queue.AddRateLimited(plan.RefOf(obj))
				}
				mu.Lock()
				if err != nil {
					failed++
				} else if ok {
					applied++
				}
				mu.Unlock()
			}
		}()
	}
	for _, obj := range wave {
		if gvk := obj.GroupVersionKind(); gvk.Group == crdGVR.Group && gvk.Kind == "CustomResourceDefinition" {
			crds = append(crds, obj.GetName())
		}
		work <- obj
	}
	close(work)
	wg.Wait()
	return applied, failed, crds
}

func (s *Syncer) waitEstablished(ctx context.Context, names []string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			crd, err := s.cfg.Target.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err == nil && conditionTrue(crd, "Established") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not Established on the standby after 30s", name)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// listStandby lists the standby's objects of every selected kind, by Ref.
func (s *Syncer) listStandby(ctx context.Context) (map[plan.Ref]*unstructured.Unstructured, error) {
	out := map[plan.Ref]*unstructured.Unstructured{}
	for _, k := range s.cfg.Kinds {
		err := s.cfg.Scope.List(ctx, s.cfg.Target.Resource(k.GVR), k.Namespaced, func(o *unstructured.Unstructured) {
			out[plan.RefOf(o)] = o
		})
		if apierrors.IsNotFound(err) {
			continue // a custom kind whose CRD is not on the standby yet
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s on the standby: %w", k.GVR.GroupResource(), err)
		}
	}
	return out, nil
}

// isOurs says whether a copy on the standby was made for this pair and
// policy. Copies made before PairNamespaceLabel existed lack it: they are
// taken for ours only in the pair's own namespace, the one place the same
// names cannot belong to another team's pair.
func isOurs(obj *unstructured.Unstructured, opts Options) bool {
	l := obj.GetLabels()
	if l[PairLabel] != opts.Pair || l[PolicyLabel] != opts.Policy {
		return false
	}
	if ns, ok := l[PairNamespaceLabel]; ok {
		return ns == opts.PairNamespace
	}
	return obj.GetNamespace() == opts.PairNamespace
}

func conditionTrue(obj *unstructured.Unstructured, condType string) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == condType {
			return m["status"] == string(corev1.ConditionTrue)
		}
	}
	return false
}

// ErrNotRunning is returned for a policy no syncer runs for.
var ErrNotRunning = errors.New("no sync is running for this policy")
