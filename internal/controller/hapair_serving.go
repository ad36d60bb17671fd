package controller

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/fence"
	"github.com/tandem-dev/tandem/internal/plan"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update

// servingRef is the pair's serving Lease on this cluster (fence.Gate); each
// side writes its own, so the sync never copies it.
func servingRef(pair *tandemv1.HAPair) plan.Ref {
	return plan.Ref{Group: coordinationv1.GroupName, Kind: "Lease", Namespace: pair.Namespace, Name: fence.ServingLeaseName(pair.Name)}
}

// confirmServing records, during the role phases, that this round confirmed
// the active role at since (the start of the witness renewal or peer probe
// that confirmed it) for d.
func (s *hapairScope) confirmServing(since time.Time, d time.Duration) {
	s.servingSince, s.servingFor = since, d
}

// grant is what this round lets the side's pods do: serve for the
// confirmation's duration when the role written is Active and this round
// confirmed it; nothing otherwise.
func (r *HAPairReconciler) grant(s *hapairScope) fence.Grant {
	pair := s.pair
	if pair.Spec.Suspend {
		return fence.Grant{Holder: r.ClusterName, Since: r.now(), Suspended: true}
	}
	if pair.Status.LocalRole != tandemv1.RoleActive || s.servingSince.IsZero() {
		return fence.Closed
	}
	return fence.Grant{Holder: r.ClusterName, Since: s.servingSince, For: s.servingFor}
}

// writeServing writes the round's grant once the status carrying the role
// is written. Opening it after a failed status write would be safe too (the
// confirmation stands on its own), but a failed round has nothing to add.
// A write that fails leaves the previous grant, which expires by itself:
// the safe direction.
func (r *HAPairReconciler) writeServing(ctx context.Context, s *hapairScope) {
	if s.pair.Status.LocalRole == tandemv1.RoleActive && s.servingSince.IsZero() && !s.pair.Spec.Suspend {
		// The round ended before it confirmed the role (an error, or a
		// phase that stopped it): the grant stays as it was and runs
		// out by itself unless a later round renews it.
		return
	}
	ctx, cancel := context.WithTimeout(ctx, servingWriteTimeout)
	defer cancel()
	c, ns, name := r.servingClient(), s.pair.Namespace, s.pair.Name
	var err error
	if g := r.grant(s); g == fence.Closed {
		err = fence.ReleaseServing(ctx, c, ns, name)
	} else {
		err = fence.WriteServing(ctx, c, ns, name, g)
	}
	if err != nil {
		log.FromContext(ctx).Info("Could not write the serving Lease; the fence sidecars close when the last grant expires", "error", err.Error())
	}
}

// servingWriteTimeout bounds the serving Lease's write, which runs after the
// status: a slow API server must not hold the pair's next round.
const servingWriteTimeout = 5 * time.Second

// uncachedReads reads one object straight from the API server and writes
// through the manager's client. A cached Get of a Lease would start an
// informer over every Lease of the cluster (each node's among them) for
// one object per pair.
type uncachedReads struct {
	client.Client
	reader client.Reader
}

func (u uncachedReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return u.reader.Get(ctx, key, obj, opts...)
}

// servingClient writes this cluster's serving Lease.
func (r *HAPairReconciler) servingClient() client.Client {
	return uncachedReads{Client: r.Client, reader: r.reader()}
}

func (r *SwitchoverReconciler) servingClient() client.Client {
	return uncachedReads{Client: r.Client, reader: r.reader()}
}

// closeServing closes the pair's serving Lease on the cluster c writes: a
// side that stops being active tells its pods at once rather than letting
// the grant run out.
func closeServing(ctx context.Context, c client.Client, pair *tandemv1.HAPair) error {
	return fence.WriteServing(ctx, c, pair.Namespace, pair.Name, fence.Closed)
}

// switchoverServingFor is how long a switchover's grant to the target's
// copy lasts without being renewed: the switchover renews it at each step
// that needs the copy, so an operator that dies mid-drill leaves the copy
// serving at most this long.
const switchoverServingFor = 2 * time.Minute

// openSwitchoverServing lets the target's copy serve before the target is
// active (fence.SwitchoverHolder).
func (r *SwitchoverReconciler) openSwitchoverServing(ctx context.Context, s *switchoverScope) error {
	g := fence.Grant{Holder: fence.SwitchoverHolder(s.obj.Name), Since: r.now(), For: switchoverServingFor}
	return fence.WriteServing(ctx, s.peer, s.pair.Namespace, s.pair.Name, g)
}

// endSwitchoverServing closes that grant again.
func (r *SwitchoverReconciler) endSwitchoverServing(ctx context.Context, s *switchoverScope) error {
	return fence.EndSwitchoverServing(ctx, s.peer, s.pair.Namespace, s.pair.Name, s.obj.Name)
}

// openPromotedServing lets a newly promoted side's pods serve at once,
// from the confirmation the promotion stands on (confirmed, the start of
// the witness Lease's handover or acquisition), instead of waiting for its
// operator's next round.
func openPromotedServing(ctx context.Context, c client.Client, pair *tandemv1.HAPair, holder string, confirmed time.Time) error {
	return fence.WriteServing(ctx, c, pair.Namespace, pair.Name, fence.Grant{Holder: holder, Since: confirmed, For: leaseRef(pair).Duration})
}

// PeerGrants tells the standby whether the active side's pods may still
// serve, from the serving Lease on the active side's cluster: a side whose
// operator is dead answers probes, but its grant stops moving and its pods
// stop serving once it runs out. Like the witness Lease, the grant is
// judged by this process's clock: expired once it has not changed for its
// duration plus the witness grace, as this process saw it; a grant seen for
// the first time counts as just renewed.
type PeerGrants struct{ changes changeClock }

// Lapsed reads the pair's serving Lease on the active side (c) and says
// whether it has lapsed: closed, or unrenewed for longer than it lasts. A
// side without a serving Lease (an older operator) has not lapsed. A nil
// PeerGrants sees nothing lapse.
func (g *PeerGrants) Lapsed(ctx context.Context, c client.Reader, pair *tandemv1.HAPair, now time.Time) (bool, string, error) {
	if g == nil || c == nil {
		return false, "", nil
	}
	var l coordinationv1.Lease
	err := c.Get(ctx, client.ObjectKey{Namespace: pair.Namespace, Name: fence.ServingLeaseName(pair.Name)}, &l)
	if apierrors.IsNotFound(err) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	grant := fence.GrantOf(&l)
	switch {
	case grant.Suspended:
		return false, "", nil
	case grant.Holder == "":
		return true, fmt.Sprintf("%s closed its serving Lease: its pods serve nothing", pair.Status.ActiveCluster), nil
	case grant.Holder != pair.Status.ActiveCluster:
		return false, "", nil
	}
	age, limit := g.changes.age(client.ObjectKeyFromObject(pair), grant.Since, now), grant.For+leaseRef(pair).Grace
	if age < limit {
		return false, "", nil
	}
	return true, fmt.Sprintf("%s has not renewed its serving Lease for %s (it lasts %s): its operator is not running and its pods serve nothing",
		grant.Holder, age.Round(100*time.Millisecond), grant.For), nil
}

// sidecarFenced: the pair's pods serve through the fence sidecar and it has
// a witness, so a lapsed grant means the active side serves nothing and
// the witness Lease still orders the takeover.
func sidecarFenced(pair *tandemv1.HAPair) bool {
	return pair.Spec.Witness != nil && pair.Spec.Failover.DataPlaneFence == tandemv1.DataPlaneFenceSidecar
}
