package replicate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// Scope is where the operator may read and write namespaced objects: every
// namespace when empty, or only those listed (the chart's rbac.namespaces,
// where its rights are Roles in these namespaces and not a ClusterRole).
// Cluster-scoped kinds are read cluster-wide either way.
type Scope []string

// Cluster says whether the scope is the whole cluster.
func (s Scope) Cluster() bool { return len(s) == 0 }

// List calls each for every object of a kind within the scope, a page at
// a time: cluster-wide, or namespace by namespace for a namespaced kind.
func (s Scope) List(ctx context.Context, ri dynamic.NamespaceableResourceInterface, namespaced bool, each func(*unstructured.Unstructured)) error {
	ns := []string{metav1.NamespaceAll}
	if namespaced && !s.Cluster() {
		ns = s
	}
	for _, n := range ns {
		opts := metav1.ListOptions{Limit: 500}
		for {
			list, err := ri.Namespace(n).List(ctx, opts)
			if err != nil {
				if n != metav1.NamespaceAll {
					return fmt.Errorf("in namespace %s: %w", n, err)
				}
				return err
			}
			for i := range list.Items {
				each(&list.Items[i])
			}
			if list.GetContinue() == "" {
				break
			}
			opts.Continue = list.GetContinue()
		}
	}
	return nil
}

// SourceInformers are the watches on the active cluster: one informer per
// kind (per namespace of the scope, for namespaced kinds), shared by every
// policy that copies that kind.
type SourceInformers struct {
	scope     Scope
	factories map[string]dynamicinformer.DynamicSharedInformerFactory // by namespace; "" is the cluster
	stop      chan struct{}
	once      sync.Once
	mu        sync.Mutex
}

// NewSourceInformers watches the cluster behind client, within scope.
func NewSourceInformers(client dynamic.Interface, scope Scope) *SourceInformers {
	s := &SourceInformers{
		scope:     scope,
		factories: map[string]dynamicinformer.DynamicSharedInformerFactory{"": dynamicinformer.NewDynamicSharedInformerFactory(client, 0)},
		stop:      make(chan struct{}),
	}
	for _, ns := range scope {
		s.factories[ns] = dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, ns, nil)
	}
	return s
}

// Watch returns the running, synced watch of a kind.
func (s *SourceInformers) Watch(ctx context.Context, gvr schema.GroupVersionResource, namespaced bool) (*Watch, error) {
	w := &Watch{byNamespace: map[string]cache.SharedIndexInformer{}}
	s.mu.Lock()
	if !namespaced || s.scope.Cluster() {
		w.byNamespace[""] = s.factories[""].ForResource(gvr).Informer()
	} else {
		for _, ns := range s.scope {
			w.byNamespace[ns] = s.factories[ns].ForResource(gvr).Informer()
		}
	}
	for _, inf := range w.byNamespace {
		// Refused once the informer runs: a kind watched before has its
		// transform already.
		_ = inf.SetTransform(slim)
	}
	for _, f := range s.factories {
		f.Start(s.stop)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for ns, inf := range w.byNamespace {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			if ns != "" {
				return nil, fmt.Errorf("watching %s in namespace %s on the active cluster: cache did not sync", gvr, ns)
			}
			return nil, fmt.Errorf("watching %s on the active cluster: cache did not sync", gvr)
		}
	}
	return w, nil
}

// Stop ends every watch.
func (s *SourceInformers) Stop() {
	s.once.Do(func() { close(s.stop) })
}

// Watch is one kind's informers: one for the whole cluster (key ""), or
// one per namespace of the scope.
type Watch struct {
	byNamespace map[string]cache.SharedIndexInformer
}

// AddEventHandler adds h to every informer of the watch and returns what
// removes it again.
func (w *Watch) AddEventHandler(h cache.ResourceEventHandler) (remove func(), err error) {
	var removes []func()
	remove = func() {
		for _, r := range removes {
			r()
		}
	}
	for _, inf := range w.byNamespace {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			remove()
			return func() {}, err
		}
		removes = append(removes, func() { _ = inf.RemoveEventHandler(reg) })
	}
	return remove, nil
}

// GetByKey finds an object by its cache key, namespace/name or name.
func (w *Watch) GetByKey(key string) (any, bool, error) {
	inf, ok := w.byNamespace[""]
	if !ok {
		ns, _, _ := strings.Cut(key, "/")
		if inf, ok = w.byNamespace[ns]; !ok {
			return nil, false, nil
		}
	}
	return inf.GetIndexer().GetByKey(key)
}

// List is every object the watch holds.
func (w *Watch) List() []any {
	var out []any
	for _, inf := range w.byNamespace {
		out = append(out, inf.GetIndexer().List()...)
	}
	return out
}

// slim drops from a cached object what the sync never reads: the field
// sets of its managedFields, often the larger part of a small object. The
// newest write time stays, in one entry, for lastChanged.
func slim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	mfs := u.GetManagedFields()
	if len(mfs) == 0 {
		return u, nil
	}
	var newest *metav1.Time
	for _, mf := range mfs {
		if mf.Time != nil && (newest == nil || mf.Time.After(newest.Time)) {
			newest = mf.Time
		}
	}
	if newest == nil {
		unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		return u, nil
	}
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "newest-write", Time: newest}})
	return u, nil
}
