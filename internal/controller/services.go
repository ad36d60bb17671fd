package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/replicate"
	"github.com/tandem-dev/tandem/internal/switchover"
)

// The services below are shared by the HAPair and Switchover controllers,
// injected into both as Cluster API injects its cluster cache, so neither
// reconciler reaches into the other.

// allPairPolicies reads every SyncPolicy a pair refers to; one that does
// not exist is an error naming it (a switchover step must not act on part
// of the pair).
func allPairPolicies(ctx context.Context, c client.Reader, pair *tandemv1.HAPair) ([]tandemv1.SyncPolicy, error) {
	policies, missing, err := pairPolicies(ctx, c, pair)
	switch {
	case err != nil:
		return nil, err
	case len(missing) > 0:
		return nil, fmt.Errorf("reading SyncPolicy %s/%s: not found", pair.Namespace, missing[0])
	}
	return policies, nil
}

// pairPolicies reads the SyncPolicies a pair refers to, in its order,
// each narrowed to what its namespace is granted (withinGrant): every
// copy and every local action works from these. It names those that do
// not exist.
func pairPolicies(ctx context.Context, c client.Reader, pair *tandemv1.HAPair) ([]tandemv1.SyncPolicy, []string, error) {
	found, missing, err := pairPoliciesAsWritten(ctx, c, pair)
	if err != nil && !isUndecodable(err) {
		return nil, nil, err
	}
	found, _, gerr := withinGrant(ctx, c, found)
	if gerr != nil {
		return nil, nil, gerr
	}
	return found, missing, err
}

// pairPoliciesAsWritten reads the SyncPolicies a pair refers to as their
// authors wrote them (what mirroring carries to the peer, whose own grant
// applies there), and names those that do not exist. Those that do not
// decode are left out and named in an error isUndecodable recognizes: the
// mirror and the sync go on without them, parking and fencing act on the
// rest and then fail naming them, a switchover step stops there.
func pairPoliciesAsWritten(ctx context.Context, c client.Reader, pair *tandemv1.HAPair) (found []tandemv1.SyncPolicy, missing []string, err error) {
	var undecodable []error
	defer func() {
		if err == nil {
			err = errors.Join(undecodable...)
		}
	}()
	for _, ref := range pair.Spec.SyncPolicyRefs {
		var p tandemv1.SyncPolicy
		if err := c.Get(ctx, client.ObjectKey{Namespace: pair.Namespace, Name: ref.Name}, &p); err != nil {
			if apierrors.IsNotFound(err) {
				missing = append(missing, ref.Name)
				continue
			}
			return nil, nil, fmt.Errorf("reading SyncPolicy %s/%s: %w", pair.Namespace, ref.Name, err)
		}
		if p.Undecodable() != nil {
			undecodable = append(undecodable, undecodableRef("SyncPolicy", &p))
			continue
		}
		found = append(found, p)
	}
	return found, missing, nil
}

// Workloads parks and unparks a pair's protected workloads on either
// cluster: demotion and fencing (HAPair), quiesce, promotion, rollback and
// drills (Switchover).
type Workloads struct {
	// Policies reads the pair's SyncPolicies on this cluster; mirroring
	// keeps them the same on both sides.
	Policies client.Reader
}

// On lists the pair's protected workloads on the cluster c reaches. With
// a policy that does not decode, it lists those of the others and returns
// that error too.
func (w Workloads) On(ctx context.Context, c client.Client, pair *tandemv1.HAPair) ([]*unstructured.Unstructured, error) {
	policies, _, err := pairPolicies(ctx, w.Policies, pair)
	if err != nil && !isUndecodable(err) {
		return nil, err
	}
	specs := make([]tandemv1.SyncPolicySpec, len(policies))
	for i := range policies {
		specs[i] = policies[i].Spec
	}
	ws, werr := replicate.Workloads(ctx, c, specs, replicate.PairSecrets(pair))
	if werr != nil {
		return nil, werr
	}
	return ws, err
}

// Park scales the pair's workloads on the cluster c reaches to 0, their
// replica counts recorded, and returns how many it changed. The webhook
// configurations the pair copies are parked first: once their backends
// stop, they would refuse the writes they match.
//
// A policy that does not decode, or a webhook configuration that cannot be
// parked, fails the park, but only after every workload it can read is
// parked: a fence that parks what it can leaves fewer pods serving than
// one that parks nothing.
func (w Workloads) Park(ctx context.Context, c client.Client, pair *tandemv1.HAPair) (int, error) {
	ws, undecodable := w.On(ctx, c, pair)
	if undecodable != nil && !isUndecodable(undecodable) {
		return 0, undecodable
	}
	workloads, webhooks := splitWebhooks(ws)
	hooks, hooksErr := eachWorkload(ctx, c, webhooks, replicate.Park)
	run, err := eachWorkload(ctx, c, workloads, replicate.Park)
	return hooks.changed + run.changed, errors.Join(hooksErr, err, undecodable)
}

// Unpark restores the pair's workloads on the cluster c reaches, and the
// webhook configurations it copies once every workload is Available (a
// webhook back before its backend serves refuses what it matches). Until
// then they count as waiting: the steps that wait for run.waiting restore
// them on a later round.
func (w Workloads) Unpark(ctx context.Context, c client.Client, pair *tandemv1.HAPair) (workloadRun, error) {
	return w.unpark(ctx, c, pair, false)
}

// UnparkAtOnce is Unpark for a step that runs once and does not wait (a
// rollback, an unfence): the webhook configurations are restored right
// after the workloads, or nothing would restore them.
func (w Workloads) UnparkAtOnce(ctx context.Context, c client.Client, pair *tandemv1.HAPair) (workloadRun, error) {
	return w.unpark(ctx, c, pair, true)
}

func (w Workloads) unpark(ctx context.Context, c client.Client, pair *tandemv1.HAPair, atOnce bool) (workloadRun, error) {
	ws, undecodable := w.On(ctx, c, pair)
	if undecodable != nil && !isUndecodable(undecodable) {
		return workloadRun{}, undecodable
	}
	workloads, webhooks := splitWebhooks(ws)
	run, err := eachWorkload(ctx, c, workloads, replicate.Unpark)
	if err != nil {
		return run, err
	}
	run.total += len(webhooks)
	if len(run.waiting) > 0 && !atOnce {
		for _, h := range webhooks {
			run.waiting = append(run.waiting, h.GetKind()+" "+h.GetName())
		}
		return run, undecodable
	}
	hooks, err := eachWorkload(ctx, c, webhooks, replicate.Unpark)
	run.changed += hooks.changed
	run.waiting = append(run.waiting, hooks.waiting...)
	return run, errors.Join(err, undecodable)
}

// splitWebhooks separates the webhook configurations from the workloads.
func splitWebhooks(ws []*unstructured.Unstructured) (workloads, webhooks []*unstructured.Unstructured) {
	for _, wl := range ws {
		if replicate.IsWebhookConfiguration(wl) {
			webhooks = append(webhooks, wl)
		} else {
			workloads = append(workloads, wl)
		}
	}
	return workloads, webhooks
}

// workloadRun is what a park or unpark did: of total workloads, how many it
// changed and which (changed or not) are not Available yet.
type workloadRun struct {
	total, changed int
	waiting        []string
}

// workloadWorkers bound the parallel patches of a park or unpark: while a
// switchover runs the service is down, and 50 sequential round trips are
// seconds on a busy API server.
const workloadWorkers = 16

// eachWorkload runs do on every one of ws in parallel.
func eachWorkload(ctx context.Context, c client.Client, ws []*unstructured.Unstructured,
	do func(context.Context, client.Writer, *unstructured.Unstructured) (bool, error)) (workloadRun, error) {
	var mu sync.Mutex
	run := workloadRun{total: len(ws)}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workloadWorkers)
	for _, wl := range ws {
		g.Go(func() error {
			changed, err := do(gctx, c, wl)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if changed {
				run.changed++
			}
			if changed || !replicate.Available(wl) {
				run.waiting = append(run.waiting, strings.TrimPrefix(wl.GetNamespace()+"/"+wl.GetName(), "/"))
			}
			return nil
		})
	}
	err := g.Wait()
	sort.Strings(run.waiting)
	return run, err
}

// pairRefField indexes Switchovers by spec.pairRef.
const pairRefField = "spec.pairRef"

// SetupIndexes registers the field indexes the controllers read by; call it
// once per manager, before the controllers start. An index needs the
// Switchover CRD served, and an operator starts with its data center's API
// server, which may not serve the CRDs yet (a data center coming back from
// dark): it waits for them as long as the controllers' watches would
// (controller-runtime's cache sync timeout, 2 minutes), not exit at once.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		// Discovery errors come in several wrappings (no match, group
		// discovery failed); anything else fails the same way every time
		// and is reported when the wait ends.
		last = mgr.GetFieldIndexer().IndexField(ctx, &tandemv1.Switchover{}, pairRefField, func(o client.Object) []string {
			return []string{o.(*tandemv1.Switchover).Spec.PairRef}
		})
		return last == nil, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("indexing Switchovers by %s: %w", pairRefField, last)
	}
	return err
}

// Switchovers finds a pair's Switchovers on this cluster.
type Switchovers struct {
	// Reader is the manager's cached client, which serves the index
	// SetupIndexes registered.
	Reader client.Reader
}

// Unfinished lists a pair's Switchovers that have not ended, those being
// deleted included (a deleted Switchover may still be rolling back).
func (s Switchovers) Unfinished(ctx context.Context, namespace, pair string) ([]tandemv1.Switchover, error) {
	var list tandemv1.SwitchoverList
	if err := s.Reader.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{pairRefField: pair}); err != nil {
		return nil, fmt.Errorf("listing the Switchovers of HAPair %s/%s: %w", namespace, pair, err)
	}
	return unfinishedOf(list.Items, pair), nil
}

// unfinishedOf keeps the Switchovers of pair that have not ended. The peer
// is read without the index, so its lists are filtered here too.
func unfinishedOf(items []tandemv1.Switchover, pair string) []tandemv1.Switchover {
	var out []tandemv1.Switchover
	for _, o := range items {
		if o.Spec.PairRef == pair && !switchover.Finished(o.Status.Phase) {
			out = append(out, o)
		}
	}
	return out
}
