package volume

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// Labels and annotations on the VolumeSnapshots and PVCs Tandem makes. The
// pair is named by two labels, since a label value cannot hold a slash.
const (
	PairLabel          = "tandem.dev/volume-pair"
	PairNamespaceLabel = "tandem.dev/volume-pair-namespace"
	// ClaimLabel is the PVC's name, hashed when it is longer than a label
	// value may be; ClaimAnnotation always holds it whole.
	ClaimLabel      = "tandem.dev/claim"
	ClaimAnnotation = "tandem.dev/claim"
	RoleLabel       = "tandem.dev/snapshot-role"
	// FinalLabel names the planned Switchover whose final snapshot this is.
	FinalLabel = "tandem.dev/final"
	// TakenAnnotation on a replica is when the source snapshot captured the
	// data (RFC 3339): the replica's own creation is later.
	TakenAnnotation = "tandem.dev/taken"
	// ClaimSpecAnnotation on a replica is the PVC to restore, as JSON,
	// already transformed for the standby (storage classes mapped).
	ClaimSpecAnnotation = "tandem.dev/claim-spec"
	// SourceHandleAnnotation on a replica is the snapshot's handle on the
	// side that took it.
	SourceHandleAnnotation = "tandem.dev/source-handle"
	// RestoredFromAnnotation on a restored PVC names its VolumeSnapshot.
	RestoredFromAnnotation = "tandem.dev/restored-from"
	// RestoredEpochAnnotation on a restored PVC is the pair's epoch when it
	// was restored. A standby retires it only at a later epoch: a planned
	// switchover restores on the target while it is still the standby.
	RestoredEpochAnnotation = "tandem.dev/restored-epoch"
	// KeptReasonAnnotation on a kept snapshot says why it was taken.
	KeptReasonAnnotation = "tandem.dev/kept-reason"
)

// PairRef names the HAPair whose volumes these are.
type PairRef struct {
	Namespace, Name string
}

func pairLabels(p PairRef) map[string]string {
	return map[string]string{PairLabel: p.Name, PairNamespaceLabel: p.Namespace}
}

// claimLabelValue fits a PVC name into a label value.
func claimLabelValue(name string) string {
	if len(name) <= 63 {
		return name
	}
	return "h-" + shortHash(name, 20)
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// snapshotName is the name of a snapshot of a PVC taken at t. Replicas
// keep their source's name, so a source and its replica are found by name.
func snapshotName(claim, kind string, t time.Time) string {
	suffix := "-" + kind + "-" + t.UTC().Format("20060102-150405")
	return truncate(claim, 253-len(suffix)) + suffix
}

// contentName is the cluster-wide name of a replica's pre-provisioned
// VolumeSnapshotContent.
func contentName(namespace, name string) string {
	return "tandem-" + shortHash(namespace+"/"+name, 32)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimRight(s[:n], "-.")
}

// StandbyHandle maps a snapshot handle on the active side's storage to the
// handle of its replica on the standby's, as spec.volumes.handleMapping
// says: a fixed substitution into a template that holds {{.Handle}}
// exactly once, so distinct source handles map to distinct standby
// handles. (A template language let a template hide the handle in a branch
// never taken, and render one constant handle for every snapshot.) The
// CRD checks the same; this holds for objects stored before it did.
func StandbyHandle(m tandemv1.HandleMapping, handle string, s *snapv1.VolumeSnapshot) (string, error) {
	if m.Mode != "Template" {
		return handle, nil
	}
	rest := strings.NewReplacer(handlePlaceholder, "", "{{.Namespace}}", "", "{{.Name}}", "").Replace(m.Template)
	if strings.Count(m.Template, handlePlaceholder) != 1 || strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		return "", fmt.Errorf("spec.volumes.handleMapping.template %q must contain {{.Handle}} exactly once, and no placeholder but {{.Handle}}, {{.Namespace}} and {{.Name}}", m.Template)
	}
	// One pass: a handle that itself holds "{{.Name}}" is not substituted
	// again.
	return strings.NewReplacer(handlePlaceholder, handle, "{{.Namespace}}", s.Namespace, "{{.Name}}", s.Name).Replace(m.Template), nil
}

const handlePlaceholder = "{{.Handle}}"

// ToSnap reads what planning needs from a VolumeSnapshot Tandem made.
func ToSnap(s *snapv1.VolumeSnapshot, inUse map[string]bool) Snap {
	out := Snap{
		Namespace: s.Namespace,
		Name:      s.Name,
		Claim:     s.Annotations[ClaimAnnotation],
		Role:      Role(s.Labels[RoleLabel]),
		Final:     s.Labels[FinalLabel],
		Taken:     s.CreationTimestamp.Time,
		InUse:     inUse[s.Namespace+"/"+s.Name],
	}
	if st := s.Status; st != nil {
		out.Ready = st.ReadyToUse != nil && *st.ReadyToUse
		if st.CreationTime != nil && out.Role != RoleReplica {
			out.Taken = st.CreationTime.Time
		}
		if st.Error != nil && st.Error.Message != nil {
			out.Err = *st.Error.Message
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s.Annotations[TakenAnnotation]); err == nil {
		out.Taken = t
	}
	return out
}
