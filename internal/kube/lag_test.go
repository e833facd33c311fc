package kube

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The watcher's lag is taken from the Ready condition's lastTransitionTime, which
// the informers' trim keeps: once per change of it, not per update.
func TestLagPerReadyChange(t *testing.T) {
	var got []time.Duration
	w := &Watcher{cfg: Config{OnLag: func(d time.Duration) { got = append(got, d) }}}
	release := func(ready string, at time.Time) any {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
			"metadata": map[string]any{"name": "shop", "namespace": "store-shop"},
			"status": map[string]any{"conditions": []any{
				map[string]any{"type": "Released", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
				map[string]any{"type": "Ready", "status": ready, "reason": "x", "lastTransitionTime": at.UTC().Format(time.RFC3339)},
			}},
		}}
		trimmed, err := trimRelease(u)
		if err != nil {
			t.Fatal(err)
		}
		return trimmed
	}
	t0 := time.Now().Add(-5 * time.Second)
	a := release("Unknown", t0)
	b := release("True", t0.Add(3*time.Second))
	w.lag(a, a) // an update that did not change Ready (a resync)
	w.lag(a, b) // Ready changed 2 s ago
	if len(got) != 1 {
		t.Fatalf("lags %v, want one", got)
	}
	// Whole seconds on the API server's clock: 2 s, up to a second more.
	if got[0] < time.Second || got[0] > 4*time.Second {
		t.Fatalf("lag %v, want about 2 s", got[0])
	}
	w.lag(b, release("True", time.Now().Add(time.Hour)))
	if len(got) != 2 || got[1] != 0 {
		t.Fatalf("a transition ahead of this clock gave %v, want 0", got)
	}
}
