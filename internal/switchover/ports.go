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
	From, To string
	// Here is the cluster the switchover runs on: From for a planned
	// switchover or a drill, To for a failover.
	Here        string
	Local, Peer client.Client
}

// On is the client for the named cluster, nil when it does not answer.
func (m Move) On(cluster string) client.Client {
	if cluster == m.Here {
		return m.Local
	}
	return m.Peer
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
	// PublishDrill publishes the records' drill names pointing at m.To
	// (an isolated drill's standby) and returns once the servers answer
	// them; the production names are not touched.
	PublishDrill(ctx context.Context, m Move) (Result, error)
	// WithdrawDrill removes the drill names and returns once no server
	// answers them.
	WithdrawDrill(ctx context.Context, m Move) (Result, error)
}

// NoVolumes and NoTraffic stand in where volume protection or traffic
// flips are turned off (unit tests of the step machine): their steps are
// Skipped, saying so, so a report never claims a volume was restored or a
// record flipped.
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
	return Skipped("Traffic flips are turned off in this operator: the records and routes in spec.traffic were not changed"), nil
}

func (NoTraffic) PublishDrill(_ context.Context, _ Move) (Result, error) {
	return Skipped("Traffic flips are turned off in this operator: no drill name was published"), nil
}

func (NoTraffic) WithdrawDrill(_ context.Context, _ Move) (Result, error) {
	return Skipped("Traffic flips are turned off in this operator: no drill name to remove"), nil
}
