package status

import (
	"fmt"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// OnReady hears request → ready once per change, measured from the request on the
// Tracker's clock; a second ready (the cluster coming back) is not a new change, and
// PhaseCounts sees the store where its status is.
func TestOnReadyOncePerChange(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []time.Duration
	tr := New(Options{Now: func() time.Time { return clock }, OnReady: func(d time.Duration) { got = append(got, d) }})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f", "main@sha1:c0")
	tr.SetShardSource("3f", "main@sha1:c0", &Condition{Status: "True"})
	tr.SetShardApply("3f", "main@sha1:c0", &Condition{Status: "True"})

	tr.Requested("shop")
	clock = clock.Add(2 * time.Second)
	tr.Published("3f", "main@sha1:c1")
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "3f", Revision: "main@sha1:c1"})
	if c := tr.PhaseCounts(); c["committed"] != 1 || len(c) != 1 {
		t.Fatalf("phase counts after the commit: %v", c)
	}
	clock = clock.Add(3 * time.Second)
	tr.SetShardSource("3f", "main@sha1:c1", &Condition{Status: "True"})
	tr.SetShardApply("3f", "main@sha1:c1", &Condition{Status: "True"})
	clock = clock.Add(5 * time.Second)
	tr.SetRelease("shop", &Release{Generation: 1, ChartVersion: "0.1.0", ObservedGeneration: 1, Installed: true,
		LatestChartVersion: "0.1.0", Ready: &Condition{Status: "True", Reason: "InstallSucceeded"}})
	if st, _ := tr.Get("shop"); st.Phase != store.PhaseReady {
		t.Fatalf("phase %s, want ready", st.Phase)
	}
	if len(got) != 1 || got[0] != 10*time.Second {
		t.Fatalf("OnReady heard %v, want [10s] (request at 0, ready at 10 s)", got)
	}
	tr.SetConnected(false)
	tr.SetConnected(true)
	if len(got) != 1 {
		t.Fatalf("ready again after a reconnect counted as a change: %v", got)
	}
	if c := tr.PhaseCounts(); c["ready"] != 1 || len(c) != 1 {
		t.Fatalf("phase counts: %v", c)
	}
}

// OnConnected hears each change of the connection, not each report.
func TestOnConnectedChangesOnly(t *testing.T) {
	var got []bool
	tr := New(Options{OnConnected: func(ok bool) { got = append(got, ok) }})
	defer tr.Close()
	for _, ok := range []bool{true, true, false, false, true} {
		tr.SetConnected(ok)
	}
	if fmt.Sprint(got) != "[true false true]" {
		t.Fatalf("OnConnected heard %v", got)
	}
}
