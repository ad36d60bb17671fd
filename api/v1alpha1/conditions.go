package v1alpha1

// Condition types. Ready, Reconciling and Stalled follow kstatus, so
// `kubectl wait --for=condition=Ready` and GitOps tools read Tandem objects
// the way they read any other.
const (
	// ReadyCondition is the summary: the object does what its spec asks.
	ReadyCondition = "Ready"

	// ReconcilingCondition is True while the controller works towards the
	// spec (a sync pass, a running switchover).
	ReconcilingCondition = "Reconciling"

	// StalledCondition is True when the controller cannot go on without a
	// change to the spec or the environment; the reason says which.
	StalledCondition = "Stalled"

	// PeerReachableCondition (HAPair) says whether the other cluster answers.
	PeerReachableCondition = "PeerReachable"

	// SyncedCondition (HAPair, SyncPolicy) says whether every selected object
	// has an up-to-date copy on the standby.
	SyncedCondition = "Synced"

	// PlanValidCondition (SyncPolicy) says whether the dependency plan has no
	// cycle and no missing dependency.
	PlanValidCondition = "PlanValid"

	// VolumesProtectedCondition (HAPair) says whether every protected PVC has
	// a snapshot usable on the standby within the RPO objective.
	VolumesProtectedCondition = "VolumesProtected"

	// TrafficReadyCondition (HAPair) says whether every DNS record and route
	// points at the active cluster.
	TrafficReadyCondition = "TrafficReady"

	// DegradedCondition (HAPair) is True when the pair works but could not
	// survive the loss of a side right now.
	DegradedCondition = "Degraded"

	// FailoverSafeCondition (HAPair, with a witness) says whether the
	// witness Lease outlasts this operator's own takeover: when it does
	// not, a crash of the operator's leader lets the standby take the Lease
	// while this side still serves.
	FailoverSafeCondition = "FailoverSafe"
)

// Reasons shared by every kind.
const (
	// ProgressingReason: the controller is working towards the spec.
	ProgressingReason = "Progressing"

	// SucceededReason: the spec is realised.
	SucceededReason = "Succeeded"

	// SuspendedReason: spec.suspend is set; nothing acts on the object.
	SuspendedReason = "Suspended"

	// InvalidSpecReason: the spec passed admission but cannot be acted on
	// (for example a reference to an object that does not exist); the
	// message names the field.
	InvalidSpecReason = "InvalidSpec"

	// NotGrantedReason: the spec reaches a namespace or a cluster-scoped
	// kind its namespace is not granted (annotations tandem.dev/sync-*
	// on the Namespace); that part is neither copied nor acted on, and the
	// message names the field.
	NotGrantedReason = "NotGranted"

	// UndecodableReason: the stored object does not decode (a value
	// written below admission, or by an older schema); nothing acts on it
	// until the field the message names is fixed.
	UndecodableReason = "Undecodable"
)

// Reasons about the peer and witness clusters.
const (
	// LeaseOutlastsTakeoverReason: spec.witness.leaseDuration is longer
	// than the operator's takeover budget.
	LeaseOutlastsTakeoverReason = "LeaseOutlastsTakeover"

	// LeaseShorterThanTakeoverReason: spec.witness.leaseDuration is not
	// longer than the operator's takeover budget; the message names both.
	LeaseShorterThanTakeoverReason = "LeaseShorterThanTakeover"

	// PeerUnreachableReason: probes of the peer's API server or endpoints
	// failed; the message says which and how often.
	PeerUnreachableReason = "PeerUnreachable"

	// PeerNotConnectedReason: no client for the peer could be built yet,
	// for example while its kubeconfig Secret is missing or invalid.
	PeerNotConnectedReason = "PeerNotConnected"

	// PeerKubeconfigInvalidReason: the kubeconfig Secret is malformed or
	// uses something refused by policy (exec plugins, insecure TLS).
	PeerKubeconfigInvalidReason = "PeerKubeconfigInvalid"

	// PeerForbiddenReason: the peer answers, but the identity of the
	// kubeconfig Secret may not do what the sync needs there; binding it
	// to the ClusterRole tandem-peer (docs/security.md) mends it.
	PeerForbiddenReason = "PeerForbidden"

	// PeerConnectedReason: the peer answers its probes.
	PeerConnectedReason = "PeerConnected"

	// WitnessUnreachableReason: the witness cluster does not answer.
	WitnessUnreachableReason = "WitnessUnreachable"

	// ActiveLostReason: the standby declared the active side lost after
	// failureThreshold failed probe rounds.
	ActiveLostReason = "ActiveLost"

	// BothActiveReason: both sides claim Active; the controller refuses to
	// act until the epochs settle it.
	BothActiveReason = "BothActive"

	// RolesAgreedReason: this side's role record agrees with what the peer
	// and the witness show.
	RolesAgreedReason = "RolesAgreed"

	// RoleUnconfirmedReason: the pair is new on this side and neither the
	// peer nor the witness could confirm which cluster is active, so this
	// side does not claim Active yet.
	RoleUnconfirmedReason = "RoleUnconfirmed"

	// LeaseHeldReason: the witness Lease is held by the other side and has
	// not expired, so this side may not promote.
	LeaseHeldReason = "LeaseHeld"

	// ActiveHeartbeatFreshReason: this side's probes of the active side
	// fail, but the active side still renews its heartbeat here (the
	// network is cut one way), so it is alive and this side may not
	// promote.
	ActiveHeartbeatFreshReason = "ActiveHeartbeatFresh"

	// FailoverStartedReason: the standby created a Failover Switchover.
	FailoverStartedReason = "FailoverStarted"

	// PromotedReason: this side became the active one.
	PromotedReason = "Promoted"

	// UnfencedReason: a fenced side regained its peer or the witness and
	// found nobody had taken over, so it serves again.
	UnfencedReason = "Unfenced"

	// SyncPausedReason: a running switchover or drill paused the sync.
	SyncPausedReason = "SyncPaused"

	// TandemNotInstalledReason: the peer answers but does not serve the
	// tandem.dev API.
	TandemNotInstalledReason = "TandemNotInstalled"

	// MirroredReason: the pair or a SyncPolicy was copied to the peer.
	MirroredReason = "Mirrored"

	// MirrorConflictReason: both sides changed the pair since it was last
	// mirrored; the active side's spec was kept.
	MirrorConflictReason = "MirrorConflict"

	// FencedReason: this side stopped serving because it could prove
	// neither its lease nor its peer.
	FencedReason = "Fenced"

	// DemotedReason: this side saw a higher epoch and became the standby.
	DemotedReason = "Demoted"

	// DrillStartedReason: the drill schedule created a drill Switchover.
	DrillStartedReason = "DrillStarted"

	// DrillSkippedReason: a drill slot came while a Switchover of the pair
	// was still running, and was skipped.
	DrillSkippedReason = "DrillSkipped"
)

// Reasons about the sync plan and replication.
const (
	// PlanCycleReason: objects depend on each other in a cycle; the message
	// names them and none of them is applied.
	PlanCycleReason = "PlanCycle"

	// PlanMissingDependencyReason: an object depends on one that is not
	// selected and not on the standby; the message names both.
	PlanMissingDependencyReason = "PlanMissingDependency"

	// SyncFailedReason: some objects could not be applied to the standby;
	// status.failures names the first few.
	SyncFailedReason = "SyncFailed"

	// StandbySideReason: this cluster is the standby; the active side
	// pushes the copies and reports on them.
	StandbySideReason = "StandbySide"

	// NotReferencedReason: no HAPair refers to this SyncPolicy, so nothing
	// is copied.
	NotReferencedReason = "NotReferenced"

	// LocalClusterUnknownReason: the operator's --cluster-name is not one of
	// the pair's clusters.
	LocalClusterUnknownReason = "LocalClusterUnknown"
)

// Reasons about volumes and traffic.
const (
	// RPOBreachedReason: the newest snapshot usable on the standby is older
	// than spec.objectives.rpo.
	RPOBreachedReason = "RPOBreached"

	// SnapshotFailedReason: a snapshot of a PVC failed; the message names
	// the PVC.
	SnapshotFailedReason = "SnapshotFailed"

	// ProtectedReason: every protected PVC has a snapshot usable on
	// the standby within spec.objectives.rpo.
	ProtectedReason = "Protected"

	// ReplicaPendingReason: a PVC has no snapshot usable on the standby
	// yet (the first one is in flight, or the standby does not answer).
	ReplicaPendingReason = "ReplicaPending"

	// NoVolumesReason: no SyncPolicy of the pair configures spec.volumes,
	// or none of them selects a PVC.
	NoVolumesReason = "NoVolumes"

	// SnapshotAPIMissingReason: a cluster does not serve the CSI
	// VolumeSnapshot API.
	SnapshotAPIMissingReason = "SnapshotAPIMissing"

	// ProtectedByActiveReason: this cluster is the standby; the active side
	// takes the snapshots and reports their RPO.
	ProtectedByActiveReason = "ProtectedByActive"

	// RetiringVolumesReason: this standby is retiring PVCs left from when
	// it was active, keeping their data in snapshots first.
	RetiringVolumesReason = "RetiringVolumes"

	// DNSUpdateFailedReason: a DNS update was refused or not answered, the
	// TSIG Secret cannot be read, or a DNSEndpoint cannot be written.
	DNSUpdateFailedReason = "DNSUpdateFailed"

	// DNSNotVerifiedReason: an authoritative server does not answer the
	// expected target yet.
	DNSNotVerifiedReason = "DNSNotVerified"

	// PointsAtActiveReason: every record answers with the active
	// cluster's targets and every route is enabled only there.
	PointsAtActiveReason = "PointsAtActive"

	// PointsElsewhereReason: a record answers with the standby's targets
	// or with values neither cluster has.
	PointsElsewhereReason = "PointsElsewhere"

	// NoTrafficReason: spec.traffic configures no record or route.
	NoTrafficReason = "NoTraffic"

	// RoutesFailedReason: a route named in spec.traffic.routes could not
	// be enabled or disabled; the message names it.
	RoutesFailedReason = "RoutesFailed"
)

// Reasons about switchovers.
const (
	// PreconditionFailedReason: a switchover precondition does not hold; the
	// message says which.
	PreconditionFailedReason = "PreconditionFailed"

	// StepFailedReason: a step failed; the message names it.
	StepFailedReason = "StepFailed"

	// StepTimedOutReason: a step ran longer than spec.stepTimeout.
	StepTimedOutReason = "StepTimedOut"

	// RolledBackReason: promotion failed before traffic moved and the old
	// active side was restored.
	RolledBackReason = "RolledBack"

	// CancelledReason: the switchover was cancelled at a safe point.
	CancelledReason = "Cancelled"
)
