package volume

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A PVC with a copy on the standby exports its RPO and protected 1; one
// without exports protected 0 and no RPO at all, so no sentinel value
// bends the RPO's graphs; a forgotten pair exports neither.
func TestRPOMetricsHaveNoSentinel(t *testing.T) {
	pair := PairRef{Namespace: "shop", Name: "shop"}
	recordRPO(pair, []ClaimState{
		{Key: ClaimKey{Namespace: "shop", Name: "orders"}, RPO: 30 * time.Second},
		{Key: ClaimKey{Namespace: "shop", Name: "fresh"}, RPO: -1},
	}, time.Minute)
	if got := testutil.ToFloat64(rpoSeconds.WithLabelValues("shop", "shop", "shop", "orders")); got != 30 {
		t.Fatalf("RPO of orders = %v, want 30", got)
	}
	// Deleting reports whether the series was there.
	if rpoSeconds.DeleteLabelValues("shop", "shop", "shop", "fresh") {
		t.Fatal("the PVC without a copy on the standby has an RPO series")
	}
	for claim, want := range map[string]float64{"orders": 1, "fresh": 0} {
		if got := testutil.ToFloat64(protected.WithLabelValues("shop", "shop", "shop", claim)); got != want {
			t.Fatalf("protected of %s = %v, want %v", claim, got, want)
		}
	}
	Forget(pair)
	if rpoSeconds.DeleteLabelValues("shop", "shop", "shop", "orders") || protected.DeleteLabelValues("shop", "shop", "shop", "orders") {
		t.Fatal("series left after Forget")
	}
}
