package controller

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/remote"
)

// EarlyFence stops a side from serving before its operator is the leader.
// A data center that was active and went dark comes back with its
// Deployments at their replicas, and its controller manager starts the pods
// at once; the leader's reconcile demotes it only after the operator has
// waited out its leader-election lease (15 s). Demoting and fencing only
// ever move towards safety, so every operator process does them, leader or
// not: while it is not the leader, each round it looks at every pair this
// cluster's record names active and, when the peer's record or the witness
// Lease shows a newer epoch naming the other cluster, or it can confirm
// neither the Lease nor reach its peer, parks the pair's workloads,
// withdraws its routes and writes the role (Standby with the newer record,
// or Fenced) under the optimistic lock. It never promotes, unparks or
// renews: that stays with the leader, which reads the role written here as
// its own (a Fenced side serves again once the witness confirms its Lease).
// Several replicas doing this at once is safe: every write repeats safely
// and the record only moves forward.
type EarlyFence struct {
	// Client writes this cluster; Reader reads it uncached (the manager's
	// API reader, so the first round does not wait for the caches).
	Client      client.Client
	Reader      client.Reader
	ClusterName string
	Peers       *remote.Peers
	Witness     *fence.Witness
	Workloads   Workloads
	Kubeconfig  remote.Policy
	// Elected is closed when this process becomes the leader (the
	// manager's Elected); the rounds stop then.
	Elected <-chan struct{}
	// Period between rounds; one second when zero.
	Period time.Duration

	// unconfirmed is when each pair was first seen unable to confirm its
	// role (no Lease, no peer), by this process.
	unconfirmed map[client.ObjectKey]time.Time
}

// NeedLeaderElection is false: the whole point is to act before it.
func (f *EarlyFence) NeedLeaderElection() bool { return false }

// Start runs a round at once and then every period, until this process is
// the leader or stops.
func (f *EarlyFence) Start(ctx context.Context) error {
	period := f.Period
	if period <= 0 {
		period = time.Second
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		f.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-f.Elected:
			return nil
		case <-ticker.C:
		}
	}
}

func (f *EarlyFence) round(ctx context.Context) {
	logger := log.FromContext(ctx).WithName("early-fence")
	var pairs tandemv1.HAPairList
	if err := f.Reader.List(ctx, &pairs); err != nil {
		// This side's API server is not up yet; the next round looks again.
		logger.V(1).Info("Could not list the HAPairs", "error", err.Error())
		return
	}
	for i := range pairs.Items {
		pair := &pairs.Items[i]
		if pair.Undecodable() != nil || pair.Spec.Suspend || pair.Status.ActiveCluster != f.ClusterName || pair.Status.LocalRole == tandemv1.RoleStandby ||
			pair.Status.LocalRole == tandemv1.RoleFenced {
			continue
		}
		if err := f.settle(ctx, pair); err != nil {
			logger.Error(err, "Could not stop a side that must not serve", "pair", client.ObjectKeyFromObject(pair).String())
		}
	}
}

// settle decides, with the leader's own role functions, whether the pair
// must stop serving here, and stops it.
func (f *EarlyFence) settle(ctx context.Context, pair *tandemv1.HAPair) error {
	_, peer := members(pair, f.ClusterName)
	if peer == nil {
		return nil
	}
	v := fence.View{Local: f.ClusterName, Primary: pair.Spec.Primary, Record: recordOf(pair), Role: fence.Role(pair.Status.LocalRole)}
	if peer.KubeconfigSecretRef != nil {
		if c, err := f.client(ctx, pair, *peer.KubeconfigSecretRef); err == nil {
			var theirs tandemv1.HAPair
			switch err := readPair(ctx, c, client.ObjectKeyFromObject(pair), &theirs); {
			case err == nil:
				rec := recordOf(&theirs)
				v.Peer, v.PeerAnswered = &rec, true
			case apierrors.IsNotFound(err):
				v.PeerAnswered = true
			}
		}
	}
	if pair.Spec.Witness != nil {
		if c, err := f.client(ctx, pair, pair.Spec.Witness.KubeconfigSecretRef); err == nil {
			if lease, err := f.Witness.Read(ctx, c, leaseRef(pair)); err == nil {
				rec := lease.Record()
				v.Lease = &rec
			}
		}
	}
	d := fence.Decide(v, peer.Name)
	lease := leaseRef(pair).Duration
	unconfirmed := f.unconfirmedFor(pair, pair.Spec.Witness != nil && v.Lease == nil && !v.PeerAnswered)
	before := pair.DeepCopy()
	var why string
	switch {
	case d.Action == fence.Follow && d.Demote:
		why = fmt.Sprintf("%s shows %s", d.Source, d.Record)
		setRecord(pair, d.Record, peer.Name, f.ClusterName)
		pair.Status.LocalRole = tandemv1.RoleStandby
		setDegraded(pair, tandemv1.DemotedReason, fmt.Sprintf("%s demoted itself before its operator was the leader: %s", f.ClusterName, why))
	case d.Action == fence.Hold && unconfirmed >= lease:
		// As long as the leader would wait: a blip of both links must not
		// stop a side the leader keeps serving.
		why = fmt.Sprintf("it has neither read the witness Lease nor reached %s for %s", peer.Name, lease)
		pair.Status.LocalRole = tandemv1.RoleFenced
		setDegraded(pair, tandemv1.FencedReason, fmt.Sprintf("%s fenced itself before its operator was the leader: %s; it serves again once the witness confirms its Lease", f.ClusterName, why))
	default:
		return nil
	}
	setHAPairSummary(pair, nil)
	if err := closeServing(ctx, f.Client, pair); err != nil {
		return fmt.Errorf("closing the serving Lease of HAPair %s/%s: %w", pair.Namespace, pair.Name, err)
	}
	parked, err := f.Workloads.Park(ctx, f.Client, pair)
	if err != nil {
		return fmt.Errorf("parking the workloads of HAPair %s/%s: %w", pair.Namespace, pair.Name, err)
	}
	if err := stopServingTraffic(ctx, f.Client, f.Reader, pair); err != nil {
		return fmt.Errorf("withdrawing the traffic of HAPair %s/%s: %w", pair.Namespace, pair.Name, err)
	}
	if err := f.Client.Status().Patch(ctx, pair, mergeFrom(before, true)); err != nil {
		return fmt.Errorf("writing the role of HAPair %s/%s: %w", pair.Namespace, pair.Name, err)
	}
	log.FromContext(ctx).Info("Stopped serving before leadership", "pair", client.ObjectKeyFromObject(pair).String(),
		"role", pair.Status.LocalRole, "why", why, "parked", parked)
	return nil
}

// unconfirmedFor records whether the pair's role is unconfirmed this round
// (a witness, and neither it nor the peer read) and says for how long it
// has been; zero when it is confirmed.
func (f *EarlyFence) unconfirmedFor(pair *tandemv1.HAPair, now bool) time.Duration {
	key := client.ObjectKeyFromObject(pair)
	if !now {
		delete(f.unconfirmed, key)
		return 0
	}
	if f.unconfirmed == nil {
		f.unconfirmed = map[client.ObjectKey]time.Time{}
	}
	first, ok := f.unconfirmed[key]
	if !ok {
		first = time.Now()
		f.unconfirmed[key] = first
	}
	return time.Since(first)
}

// client reaches a cluster of the pair through a kubeconfig Secret, each
// request bounded by the pair's probe timeout. The leader's probe rounds
// are not running yet, so the Secret is resolved here.
func (f *EarlyFence) client(ctx context.Context, pair *tandemv1.HAPair, ref tandemv1.SecretKeyRef) (client.Client, error) {
	cfg, err := remote.ConfigFromSecret(ctx, f.Reader, pair.Namespace, ref, f.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return f.Peers.ClientFor(remote.Bounded(cfg, probeTimeout(pair)))
}
