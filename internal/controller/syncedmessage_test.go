package controller

import (
	"fmt"
	"strings"
	"testing"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// The Synced message counts every failure, not the ten status names: 23
// failures read "and 20 more" after the first three.
func TestSyncedCountsEveryFailure(t *testing.T) {
	var named []tandemv1.ObjectFailure
	for i := range 10 {
		named = append(named, tandemv1.ObjectFailure{Object: fmt.Sprintf("Prometheus monitoring/p%02d", i), Message: "the server could not find the requested resource"})
	}
	for _, tc := range []struct {
		failures []tandemv1.ObjectFailure
		total    int
		want     string
	}{
		{named, 23, "; and 20 more"},
		{named[:3], 3, "could not find the requested resource"},
		{named[:2], 2, "p01: the server could not find the requested resource"},
	} {
		pair := &tandemv1.HAPair{}
		setSyncedVerdict(pair, "dc-west", syncCounts{passed: true, selected: 40, outOfSync: tc.total, failures: tc.failures, failed: tc.total})
		msg := findCondition(pair, tandemv1.SyncedCondition).Message
		if !strings.HasSuffix(msg, tc.want) || (tc.total <= 3 && strings.Contains(msg, "more")) {
			t.Errorf("%d failures: message %q, want it to end %q", tc.total, msg, tc.want)
		}
		if !strings.HasPrefix(msg, fmt.Sprintf("%d of 40 objects are out of sync on dc-west", tc.total)) {
			t.Errorf("message %q does not count %d", msg, tc.total)
		}
	}
}
