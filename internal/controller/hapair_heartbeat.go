package controller

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
	"github.com/tandem-dev/tandem/internal/plan"
	"github.com/tandem-dev/tandem/internal/replicate"
)

// The active side's heartbeat is a Lease it renews on the standby's
// cluster, in the pair's namespace, every probe round. The standby reads it
// from its own API server, so it tells what the standby's probes cannot: it
// carries the sync watermark, the time up to which every change the active
// side made is applied on the standby. A failover measures its data-loss
// window from that watermark, not from the last successful probe: the
// probes can pass while the sync is broken.
const (
	// WatermarkAnnotation on the heartbeat Lease is the sync watermark, in
	// RFC 3339 with nanoseconds.
	WatermarkAnnotation = "tandem.dev/sync-watermark"
	// HeartbeatEpochAnnotation is the epoch of the side that renews it.
	HeartbeatEpochAnnotation = "tandem.dev/epoch"
)

// heartbeatName is the heartbeat Lease of a pair, on the standby.
func heartbeatName(pair *tandemv1.HAPair) string { return pair.Name + ".heartbeat.tandem.dev" }

// heartbeatRef is how the sync knows never to copy the heartbeat Lease: each
// side's is written by the other.
func heartbeatRef(pair *tandemv1.HAPair) plan.Ref {
	return plan.Ref{Group: coordinationv1.GroupName, Kind: "Lease", Namespace: pair.Namespace, Name: heartbeatName(pair)}
}

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch

// reconcileHeartbeat renews the heartbeat on the standby while this side is
// the confirmed active one (an unconfirmed or fenced side stops its phases
// before this one). A watermark it does not know now (the sync restarted
// and has not made its first full pass) leaves the one already there: that
// is still a true bound, only an older one.
func (r *HAPairReconciler) reconcileHeartbeat(ctx context.Context, s *hapairScope) (ctrl.Result, error) {
	pair := s.pair
	if pair.Status.LocalRole != tandemv1.RoleActive || s.peerClient == nil {
		return ctrl.Result{}, nil
	}
	now := r.now()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: pair.Namespace, Name: heartbeatName(pair)}}
	_, err := controllerutil.CreateOrUpdate(ctx, s.peerClient, lease, func() error {
		seconds := int32(max(heartbeatDuration(pair).Round(time.Second)/time.Second, 1))
		renew := metav1.NewMicroTime(now)
		lease.Spec.HolderIdentity = &r.ClusterName
		lease.Spec.LeaseDurationSeconds = &seconds
		lease.Spec.RenewTime = &renew
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[HeartbeatEpochAnnotation] = strconv.FormatInt(pair.Status.Epoch, 10)
		if w, ok := r.Syncs.Watermark(pair.Namespace, pair.Name); ok {
			lease.Annotations[WatermarkAnnotation] = w.UTC().Format(time.RFC3339Nano)
		}
		return nil
	})
	if err != nil {
		// The next round renews it; the standby sees an older heartbeat
		// meanwhile, which is the safe direction.
		log.FromContext(ctx).V(1).Info("Could not renew the heartbeat on the peer", "peer", s.peer.Name, "error", err.Error())
	}
	return ctrl.Result{}, nil
}

// heartbeatDuration is how long a heartbeat stays fresh: the failure
// detector's own span, failureThreshold probe periods.
func heartbeatDuration(pair *tandemv1.HAPair) time.Duration {
	return time.Duration(max(pair.Spec.Failover.FailureThreshold, 1)) * probePeriod(pair)
}

// Heartbeat is the active side's heartbeat as the standby reads it.
type Heartbeat struct {
	Holder string
	Epoch  int64
	// Renew is the renew time as the active side wrote it (its clock):
	// only compared with itself.
	Renew time.Time
	// Watermark is zero when the active side never wrote one.
	Watermark time.Time
}

// Heartbeats tells whether the active side's heartbeat is fresh, by this
// process's clock: a heartbeat is fresh while it last changed less than its
// duration ago, as this process saw it. The renew time another machine
// wrote is never compared with the local clock, as for the witness Lease. A
// heartbeat seen for the first time counts as just renewed, which can only
// delay a failover by one duration (after the standby's operator
// restarted), never hasten one.
type Heartbeats struct{ changes changeClock }

// changeClock remembers, per pair, a time another machine wrote and when
// this process first saw that value: how long ago it last changed, on the
// local clock. The written time itself is only compared with itself.
type changeClock struct {
	mu   sync.Mutex
	seen map[client.ObjectKey]changeSeen
}

type changeSeen struct {
	value time.Time
	at    time.Time
}

// age records value for key and says how long ago it last changed; a value
// seen for the first time changed now.
func (c *changeClock) age(key client.ObjectKey, value, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[client.ObjectKey]changeSeen{}
	}
	s, ok := c.seen[key]
	if !ok || !s.value.Equal(value) {
		s = changeSeen{value: value, at: now}
		c.seen[key] = s
	}
	return now.Sub(s.at)
}

// Fresh observes the pair's heartbeat on this cluster and reports how long
// ago it last changed and whether that makes the active side alive: it must
// be written by the cluster the record names active, at the record's epoch.
// A nil Heartbeats sees no heartbeat.
func (h *Heartbeats) Fresh(ctx context.Context, c client.Reader, pair *tandemv1.HAPair, now time.Time) (time.Duration, bool, error) {
	if h == nil {
		return 0, false, nil
	}
	hb, found, err := readHeartbeat(ctx, c, pair)
	if err != nil || !found || hb.Holder != pair.Status.ActiveCluster || hb.Epoch != pair.Status.Epoch || hb.Renew.IsZero() {
		return 0, false, err
	}
	age := h.changes.age(client.ObjectKeyFromObject(pair), hb.Renew, now)
	return age, age < heartbeatDuration(pair), nil
}

// readHeartbeat reads the pair's heartbeat on this cluster; found is false
// when there is none.
func readHeartbeat(ctx context.Context, c client.Reader, pair *tandemv1.HAPair) (hb Heartbeat, found bool, err error) {
	var lease coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: pair.Namespace, Name: heartbeatName(pair)}, &lease); err != nil {
		return Heartbeat{}, false, client.IgnoreNotFound(err)
	}
	if lease.Spec.HolderIdentity != nil {
		hb.Holder = *lease.Spec.HolderIdentity
	}
	if lease.Spec.RenewTime != nil {
		hb.Renew = lease.Spec.RenewTime.Time
	}
	hb.Epoch, _ = strconv.ParseInt(lease.Annotations[HeartbeatEpochAnnotation], 10, 64)
	if v := lease.Annotations[WatermarkAnnotation]; v != "" {
		w, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return hb, true, fmt.Errorf("heartbeat Lease %s/%s: annotation %s=%q: %w", lease.Namespace, lease.Name, WatermarkAnnotation, v, err)
		}
		hb.Watermark = w
	}
	return hb, true, nil
}

// excludedFromSync are the objects of a pair that belong to one side and are
// never copied: its kubeconfig and TSIG Secrets, the heartbeat Lease and the
// serving Lease.
func excludedFromSync(pair *tandemv1.HAPair) map[plan.Ref]bool {
	out := replicate.PairSecrets(pair)
	out[heartbeatRef(pair)] = true
	out[servingRef(pair)] = true
	return out
}
