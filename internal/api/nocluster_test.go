package api_test

import (
	"net/http"
	"testing"
)

// Without a cluster configured, a store shows committed and the cluster as not
// connected; /readyz does not mention a cluster.
func TestStatusWithoutCluster(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("POST", "/api/v1/stores", shop("shop")), http.StatusAccepted)
	got := e.expect(e.do("GET", "/api/v1/stores/shop", nil), http.StatusOK)
	st := got["status"].(map[string]any)
	if st["phase"] != "committed" || st["clusterConnected"] != false {
		t.Fatalf("status without a cluster: %v", st)
	}
	ready := e.expect(e.do("GET", "/readyz", nil), http.StatusOK)
	if _, ok := ready["cluster"]; ok {
		t.Fatalf("/readyz mentions a cluster that is not configured: %v", ready)
	}
}
