package fence

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The serving Lease is the data-plane fence. Parking workloads is an API
// write, so a side whose operator is dead, or a data center that was dark
// and comes back with its pods still running, keeps serving until an
// operator runs there again. The serving Lease expires without the
// operator: the active side's operator renews it, on its own cluster, only
// from a confirmation of its role (a renewal of the witness Lease or a
// probe round that reached the peer), and the fence sidecar in protected
// pods (`tandem-operator fence`) serves only while the newest confirmation
// is younger than the witness lease duration, on its own clock. That is
// the instant MustFence would fence the side, and before the standby can
// have taken the witness Lease, so the sidecar stops on time even when no
// operator runs to tell it.

// ServingLeaseName is the serving Lease of a pair, in the pair's namespace
// on each cluster.
func ServingLeaseName(pair string) string { return "tandem-serving-" + pair }

// SuspendedAnnotation on a serving Lease opens the fence without a time
// limit: the pair is suspended, Tandem does not manage it, and its pods
// must not stop serving because nobody renews the Lease.
const SuspendedAnnotation = "tandem.dev/suspended"

// Grant is what a serving Lease says.
type Grant struct {
	// Holder is the cluster (or the drill) allowed to serve; empty
	// closes the fence.
	Holder string
	// Since is when the role was last confirmed (the start of that
	// confirmation); For is how long that confirmation lasts.
	Since time.Time
	For   time.Duration
	// Suspended opens the fence without a time limit.
	Suspended bool
}

// HoldsAt says whether g lets its holder serve at now, on a clock the
// writer shares (one machine); the sidecar's Gate does not assume that.
func (g Grant) HoldsAt(now time.Time) bool {
	return g.Suspended || (g.Holder != "" && now.Before(g.Since.Add(g.For)))
}

// Closed is the grant of a side that may not serve.
var Closed = Grant{}

// GrantOf reads a serving Lease; a nil Lease is closed.
func GrantOf(l *coordinationv1.Lease) Grant {
	if l == nil {
		return Closed
	}
	var g Grant
	if l.Spec.HolderIdentity != nil {
		g.Holder = *l.Spec.HolderIdentity
	}
	if l.Spec.RenewTime != nil {
		g.Since = l.Spec.RenewTime.Time
	}
	if l.Spec.LeaseDurationSeconds != nil {
		g.For = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	g.Suspended = l.Annotations[SuspendedAnnotation] == "true"
	return g
}

// WriteServing makes the pair's serving Lease on the cluster c writes say g.
// The duration is rounded down to whole seconds (the Lease's unit), which
// only closes the fence earlier.
func WriteServing(ctx context.Context, c client.Client, namespace, pair string, g Grant) error {
	return writeServing(ctx, c, namespace, pair, g, nil)
}

// ReleaseServing is WriteServing for a round that did not confirm the active
// role: it closes the fence, except for a switchover's grant, which the
// switchover closes when it is done with the copy (or which runs out by
// itself).
func ReleaseServing(ctx context.Context, c client.Client, namespace, pair string) error {
	return writeServing(ctx, c, namespace, pair, Closed, func(cur Grant) bool { return IsSwitchoverHolder(cur.Holder) })
}

// EndSwitchoverServing closes the grant of the switchover named name, and
// only that one: the side may have been promoted since it was opened.
func EndSwitchoverServing(ctx context.Context, c client.Client, namespace, pair, name string) error {
	return writeServing(ctx, c, namespace, pair, Closed, func(cur Grant) bool { return cur.Holder != SwitchoverHolder(name) })
}

// SwitchoverHolder is the holder of the grant a switchover gives the
// target's copy before the target is active: an isolated drill's copy while
// its checks run, a planned switchover's from PromoteTarget (the old side
// is quiesced by then) until the roles are swapped.
func SwitchoverHolder(name string) string { return switchoverPrefix + name }

// IsSwitchoverHolder says whether a grant's holder is a switchover.
func IsSwitchoverHolder(holder string) bool { return strings.HasPrefix(holder, switchoverPrefix) }

const switchoverPrefix = "switchover/"

// writeServing writes g unless keep says the grant already there stays.
func writeServing(ctx context.Context, c client.Client, namespace, pair string, g Grant, keep func(Grant) bool) error {
	g.Since = g.Since.Truncate(time.Microsecond) // what a MicroTime keeps
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ServingLeaseName(pair)}}
	err := c.Get(ctx, client.ObjectKeyFromObject(l), l)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading serving Lease %s/%s: %w", namespace, l.Name, err)
	}
	exists := err == nil
	if exists && (GrantOf(l).equal(g) || (keep != nil && keep(GrantOf(l)))) {
		return nil
	}
	if !exists && g.Holder == "" {
		return nil // nothing to close
	}
	l.Spec = coordinationv1.LeaseSpec{}
	if g.Holder != "" {
		holder, since, secs := g.Holder, metav1.NewMicroTime(g.Since), int32(g.For/time.Second)
		l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.LeaseDurationSeconds = &holder, &since, &secs
	}
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	delete(l.Annotations, SuspendedAnnotation)
	if g.Suspended {
		l.Annotations[SuspendedAnnotation] = "true"
	}
	if exists {
		err = c.Update(ctx, l)
	} else {
		err = c.Create(ctx, l)
	}
	if err != nil {
		return fmt.Errorf("writing serving Lease %s/%s: %w", namespace, l.Name, err)
	}
	return nil
}

func (g Grant) equal(o Grant) bool {
	return g.Holder == o.Holder && g.Suspended == o.Suspended &&
		(g.Holder == "" || (g.Since.Equal(o.Since) && g.For/time.Second == o.For/time.Second))
}

// Gate is the fence sidecar's judgement: it watches the serving Lease and
// says whether to serve now. The grant's time is compared with the
// sidecar's clock only as a lower bound: the fence closes at the earlier of
// Since+For and the moment this process saw Since change plus For, so a
// clock behind the operator's cannot stretch the grant, and a process
// frozen with its node (a dark data center) finds its grant expired the
// moment it thaws.
type Gate struct {
	Clock clock.PassiveClock

	mu       sync.Mutex
	seen     bool
	grant    Grant
	observed time.Time
}

// Observe records the Lease as the watch delivered it; nil when it is gone.
func (g *Gate) Observe(l *coordinationv1.Lease) {
	next := GrantOf(l)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.seen || !next.Since.Equal(g.grant.Since) || next.Holder != g.grant.Holder {
		g.observed = g.now()
	}
	g.seen, g.grant = true, next
}

// Open says whether to serve, and why not.
func (g *Gate) Open() (bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !g.seen:
		return false, "the serving Lease has not been read yet"
	case g.grant.Suspended:
		return true, ""
	case g.grant.Holder == "":
		return false, "this side is not the active side (its operator closed the serving Lease)"
	}
	start := g.grant.Since
	if g.observed.Before(start) {
		start = g.observed
	}
	if age := g.now().Sub(start); age >= g.grant.For {
		return false, fmt.Sprintf("%s confirmed its role %s ago, longer than the %s it may serve without confirming it", g.grant.Holder, age.Round(100*time.Millisecond), g.grant.For)
	}
	return true, ""
}

func (g *Gate) now() time.Time {
	if g.Clock != nil {
		return g.Clock.Now()
	}
	return time.Now()
}
