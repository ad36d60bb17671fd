package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tandem-dev/tandem/internal/fence"
)

// The fence passes requests to the app only while the gate is open, and
// tells a refused client why, with a 503 a load balancer understands.
func TestTheFencePassesRequestsOnlyWhileItsGrantHolds(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app: "+r.URL.Path) }))
	defer app.Close()
	target, _ := url.Parse(app.URL)
	gate := &fence.Gate{}
	srv := httptest.NewServer(fenceHandler(gate, upstreamProxy(target)))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	if code, body := get("/records/a"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not been read") {
		t.Fatalf("before the Lease was read: %d %q", code, body)
	}
	holder, renew, secs := "dc-east", metav1.NewMicroTime(time.Now()), int32(4)
	gate.Observe(&coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &renew, LeaseDurationSeconds: &secs}})
	if code, body := get("/records/a"); code != http.StatusOK || body != "app: /records/a" {
		t.Fatalf("with a fresh grant: %d %q", code, body)
	}
	if code, body := get(fenceStatusPath); code != http.StatusOK || !strings.Contains(body, `"open":true`) {
		t.Fatalf("status with a fresh grant: %d %q", code, body)
	}
	old := metav1.NewMicroTime(time.Now().Add(-5 * time.Second))
	gate.Observe(&coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &old, LeaseDurationSeconds: &secs}})
	if code, body := get("/records/a"); code != http.StatusServiceUnavailable || !strings.Contains(body, "dc-east confirmed its role 5") {
		t.Fatalf("with a grant 5s old: %d %q", code, body)
	}
	if code, body := get(fenceStatusPath); code != http.StatusOK || !strings.Contains(body, `"open":false`) {
		t.Fatalf("status with an expired grant: %d %q", code, body)
	}
}

func TestFenceFlagsNameWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		o    fenceOptions
		want string
	}{
		{fenceOptions{pair: "shop", upstream: "http://127.0.0.1:8081"}, "--pair \"shop\" must be NAMESPACE/NAME"},
		{fenceOptions{pair: "shop/shop", upstream: "127.0.0.1:8081"}, "--upstream \"127.0.0.1:8081\" must be"},
		{fenceOptions{pair: "shop/shop", upstream: "unix://"}, "--upstream \"unix://\" must be"},
	} {
		if _, _, _, err := tc.o.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	if ns, name, u, err := (&fenceOptions{pair: "shop/web", upstream: "unix:///run/app/app.sock"}).validate(); err != nil || ns != "shop" || name != "web" || u.Path != "/run/app/app.sock" {
		t.Fatalf("valid flags: %s %s %v %v", ns, name, u, err)
	}
}
