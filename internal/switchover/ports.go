package switchover

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Move says where a switchover moves the service.
type Move struct {
	Switchover *tandemv1.Switchover
	Pair       *tandemv1.HAPair
	// From and To are the cluster names; Local reaches the cluster the
	// switchover runs on, Peer the other one (nil when it does not answer).
	From, To    string
	Local, Peer client.Client
}

// Volumes is what the step machine needs from volume protection. Each
// method is a step: it returns a Result (Waiting while it works), and is
// called again until the step ends, so it must be safe to repeat.
type Volumes interface {
	// FinalSnapshot takes and ships the last snapshot of every protected
	// volume on the quiesced side (planned switchover: zero loss).
	FinalSnapshot(ctx context.Context, m Move) (Result, error)
	// Restore creates the protected PVCs on m.To from the newest snapshot
	// usable there, before its workloads start.
	Restore(ctx context.Context, m Move) (Result, error)
}

// Traffic is what the step machine needs from traffic management.
type Traffic interface {
	// Flip points the pair's DNS records and routes at m.To and returns
	// once the authoritative servers answer with it.
	Flip(ctx context.Context, m Move) (Result, error)
}

// NoVolumes and NoTraffic stand in until volume protection and traffic
// flips are built: their steps are Skipped, saying so, so a report never
// claims a volume was restored or a record flipped.
type NoVolumes struct{}

func (NoVolumes) FinalSnapshot(_ context.Context, m Move) (Result, error) {
	return Skipped("Volume protection is not built in this version: no snapshot was taken"), nil
}

func (NoVolumes) Restore(_ context.Context, m Move) (Result, error) {
	return Skipped("Volume protection is not built in this version: the PVCs are used as " + m.To + " has them"), nil
}

// NoTraffic is the Traffic stand-in.
type NoTraffic struct{}

func (NoTraffic) Flip(_ context.Context, m Move) (Result, error) {
	if t := m.Pair.Spec.Traffic; t == nil || (len(t.DNS) == 0 && len(t.Routes) == 0) {
		return Skipped("spec.traffic configures no DNS record or route"), nil
	}
	return Skipped("Traffic flips are not built in this version: the records and routes in spec.traffic were not changed"), nil
}
