package replicate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// SourceInformers are the watches on the active cluster: one informer per
// kind, shared by every policy that copies that kind.
type SourceInformers struct {
	factory dynamicinformer.DynamicSharedInformerFactory
	stop    chan struct{}
	once    sync.Once
	mu      sync.Mutex
}

// NewSourceInformers watches the cluster behind client.
func NewSourceInformers(client dynamic.Interface) *SourceInformers {
	return &SourceInformers{
		factory: dynamicinformer.NewDynamicSharedInformerFactory(client, 0),
		stop:    make(chan struct{}),
	}
}

// Informer returns the running, synced informer of a kind.
func (s *SourceInformers) Informer(ctx context.Context, gvr schema.GroupVersionResource) (cache.SharedIndexInformer, error) {
	s.mu.Lock()
	inf := s.factory.ForResource(gvr).Informer()
	s.factory.Start(s.stop)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("watching %s on the active cluster: cache did not sync", gvr)
	}
	return inf, nil
}

// Stop ends every watch.
func (s *SourceInformers) Stop() {
	s.once.Do(func() { close(s.stop) })
}
