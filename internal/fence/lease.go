package fence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// EpochAnnotation carries the holder's epoch on the witness Lease.
const EpochAnnotation = "tandem.dev/epoch"

// LeaseName is the witness Lease of a pair. Pairs of every namespace share
// the witness namespace, so the name carries the pair's namespace.
func LeaseName(namespace, pair string) string { return namespace + "." + pair }

// LeaseView is what a witness Lease says.
type LeaseView struct {
	Holder    string
	Epoch     int64
	RenewTime time.Time
	// Expired is true when this process has watched the Lease go without
	// a renewal for its whole duration.
	Expired bool
}

// Record is the role the Lease stands for.
func (v LeaseView) Record() Record { return Record{Active: v.Holder, Epoch: v.Epoch} }

// HeldError is a Lease another cluster holds and still renews.
type HeldError struct {
	Holder    string
	Epoch     int64
	Remaining time.Duration
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("the witness Lease is held by %s at epoch %d and not expired (%s left unless it is renewed)", e.Holder, e.Epoch, e.Remaining.Round(100*time.Millisecond))
}

// SupersededError is a Lease taken with a higher epoch than the caller's.
type SupersededError struct {
	Holder string
	Epoch  int64
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("the witness Lease was taken by %s at epoch %d", e.Holder, e.Epoch)
}

// IsHeld and IsSuperseded classify Witness errors.
func IsHeld(err error) bool       { var e *HeldError; return errors.As(err, &e) }
func IsSuperseded(err error) bool { var e *SupersededError; return errors.As(err, &e) }

// Witness reads, renews and takes pairs' Leases on witness clusters. It
// judges expiry the way client-go's leader election does: by how long this
// process has seen the Lease unchanged on its own clock, never by comparing
// the renew time written by another machine's clock with this one.
type Witness struct {
	Clock clock.PassiveClock

	mu       sync.Mutex
	observed map[string]observation
	renewed  map[string]time.Time
}

type observation struct {
	resourceVersion string
	at              time.Time
}

// LeaseRef locates a pair's Lease.
type LeaseRef struct {
	Namespace, Name string
	Duration        time.Duration
	// Grace is how much longer than Duration a taker waits. The holder
	// checks its deadline only once per reconcile, and a reconcile can
	// spend a few probe timeouts on unreachable clusters, so the holder
	// may fence itself up to that much after its lease ran out; the taker
	// waits it out, so the holder has always stopped first.
	Grace time.Duration
}

func (r LeaseRef) key() string { return r.Namespace + "/" + r.Name }

// Read returns what the Lease says; a missing Lease is the zero view,
// expired.
func (w *Witness) Read(ctx context.Context, c client.Client, ref LeaseRef) (LeaseView, error) {
	lease, err := w.get(ctx, c, ref)
	if err != nil || lease == nil {
		return LeaseView{Expired: true}, err
	}
	return w.view(ref, lease), nil
}

// Renew extends the caller's hold on the Lease at its epoch, creating the
// Lease when there is none. It fails with SupersededError when the Lease
// carries a higher epoch (or the same epoch for another holder): the caller
// is no longer the active side. A successful renewal is remembered for
// LastRenew.
func (w *Witness) Renew(ctx context.Context, c client.Client, ref LeaseRef, holder string, epoch int64) error {
	start := w.now()
	lease, err := w.get(ctx, c, ref)
	if err != nil {
		return err
	}
	if lease != nil {
		v := w.view(ref, lease)
		if v.Epoch > epoch || (v.Epoch == epoch && v.Holder != holder) {
			return &SupersededError{Holder: v.Holder, Epoch: v.Epoch}
		}
	}
	if err := w.write(ctx, c, ref, lease, holder, epoch); err != nil {
		return err
	}
	w.mu.Lock()
	w.renewed[ref.key()] = start
	w.mu.Unlock()
	return nil
}

// Acquire takes the Lease for holder at epoch, which must be higher than
// the Lease's. It fails with HeldError while the current holder still
// renews it, and with SupersededError when someone took an epoch at least
// as high first. The write carries the Lease's resourceVersion, so of two
// clusters racing for it exactly one wins.
func (w *Witness) Acquire(ctx context.Context, c client.Client, ref LeaseRef, holder string, epoch int64) error {
	start := w.now()
	err := w.acquire(ctx, c, ref, holder, epoch)
	if err == nil {
		// An acquisition renews the Lease as much as a renewal does.
		w.mu.Lock()
		if w.renewed == nil {
			w.renewed = map[string]time.Time{}
		}
		w.renewed[ref.key()] = start
		w.mu.Unlock()
	}
	return err
}

func (w *Witness) acquire(ctx context.Context, c client.Client, ref LeaseRef, holder string, epoch int64) error {
	lease, err := w.get(ctx, c, ref)
	if err != nil {
		return err
	}
	if lease != nil {
		v := w.view(ref, lease)
		switch {
		case v.Holder == holder && v.Epoch == epoch:
			return w.write(ctx, c, ref, lease, holder, epoch)
		case v.Epoch >= epoch:
			return &SupersededError{Holder: v.Holder, Epoch: v.Epoch}
		case !v.Expired:
			w.mu.Lock()
			seen := w.observed[ref.key()].at
			w.mu.Unlock()
			return &HeldError{Holder: v.Holder, Epoch: v.Epoch, Remaining: ref.Duration + ref.Grace - w.now().Sub(seen)}
		}
	}
	return w.write(ctx, c, ref, lease, holder, epoch)
}

// Handover passes the Lease from its holder to another cluster at the next
// epoch, without waiting for it to expire: the planned switchover does it,
// from the side that holds it, after that side stopped serving. It repeats
// safely; a Lease that moved on otherwise fails with SupersededError.
func (w *Witness) Handover(ctx context.Context, c client.Client, ref LeaseRef, from, to string, epoch int64) error {
	lease, err := w.get(ctx, c, ref)
	if err != nil {
		return err
	}
	if lease != nil {
		v := w.view(ref, lease)
		switch {
		case v.Holder == to && v.Epoch == epoch:
			return nil
		case v.Epoch >= epoch || (v.Holder != from && v.Holder != ""):
			return &SupersededError{Holder: v.Holder, Epoch: v.Epoch}
		}
	}
	return w.write(ctx, c, ref, lease, to, epoch)
}

// LastRenew is when the last successful renewal of the Lease by this
// process started; zero when there was none.
func (w *Witness) LastRenew(ref LeaseRef) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.renewed[ref.key()]
}

// Forget drops what is remembered of a Lease.
func (w *Witness) Forget(ref LeaseRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.observed, ref.key())
	delete(w.renewed, ref.key())
}

func (w *Witness) get(ctx context.Context, c client.Client, ref LeaseRef) (*coordinationv1.Lease, error) {
	var lease coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &lease); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the witness Lease %s: %w", ref.key(), err)
	}
	return &lease, nil
}

// view reads a Lease and updates when this process first saw its current
// version.
func (w *Witness) view(ref LeaseRef, lease *coordinationv1.Lease) LeaseView {
	now := w.now()
	w.mu.Lock()
	if w.observed == nil {
		w.observed = map[string]observation{}
		w.renewed = map[string]time.Time{}
	}
	o, ok := w.observed[ref.key()]
	if !ok || o.resourceVersion != lease.ResourceVersion {
		o = observation{resourceVersion: lease.ResourceVersion, at: now}
		w.observed[ref.key()] = o
	}
	w.mu.Unlock()

	v := LeaseView{Expired: now.Sub(o.at) > ref.Duration+ref.Grace}
	if lease.Spec.HolderIdentity != nil {
		v.Holder = *lease.Spec.HolderIdentity
	}
	v.Epoch, _ = strconv.ParseInt(lease.Annotations[EpochAnnotation], 10, 64)
	if lease.Spec.RenewTime != nil {
		v.RenewTime = lease.Spec.RenewTime.Time
	}
	return v
}

// write creates the Lease, or updates it with its resourceVersion as a
// precondition: a concurrent writer makes this one fail with a conflict.
func (w *Witness) write(ctx context.Context, c client.Client, ref LeaseRef, lease *coordinationv1.Lease, holder string, epoch int64) error {
	now := metav1.NewMicroTime(w.now())
	seconds := int32(max(1, ref.Duration.Round(time.Second)/time.Second))
	if lease == nil {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}}
	}
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	prev := ""
	if lease.Spec.HolderIdentity != nil {
		prev = *lease.Spec.HolderIdentity
	}
	lease.Annotations[EpochAnnotation] = strconv.FormatInt(epoch, 10)
	lease.Spec.HolderIdentity = &holder
	lease.Spec.LeaseDurationSeconds = &seconds
	lease.Spec.RenewTime = &now
	if prev != holder {
		lease.Spec.AcquireTime = &now
		transitions := int32(0)
		if lease.Spec.LeaseTransitions != nil {
			transitions = *lease.Spec.LeaseTransitions + 1
		}
		lease.Spec.LeaseTransitions = &transitions
	}
	var err error
	if lease.ResourceVersion == "" {
		err = c.Create(ctx, lease)
	} else {
		err = c.Update(ctx, lease)
	}
	if err != nil {
		return fmt.Errorf("writing the witness Lease %s: %w", ref.key(), err)
	}
	w.mu.Lock()
	if w.observed == nil {
		w.observed = map[string]observation{}
		w.renewed = map[string]time.Time{}
	}
	w.observed[ref.key()] = observation{resourceVersion: lease.ResourceVersion, at: w.now()}
	w.mu.Unlock()
	return nil
}

func (w *Witness) now() time.Time {
	if w.Clock != nil {
		return w.Clock.Now()
	}
	return time.Now()
}
