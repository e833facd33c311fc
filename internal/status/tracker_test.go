package status

import (
	"context"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// linear is a fleet history c0 <- c1 <- c2 … for the tracker's ancestry questions.
type linear []string

func (l linear) NewReachable(_ context.Context, tip string, known func(string) bool) ([]string, error) {
	var out []string
	for i := len(l) - 1; i >= 0; i-- {
		if l[i] == tip {
			for j := i; j >= 0 && !known(l[j]); j-- {
				out = append(out, l[j])
			}
		}
	}
	return out, nil
}

type requests struct{ source, apply chan struct{} }

func (r requests) RequestSourceReconcile(context.Context) error { r.source <- struct{}{}; return nil }
func (r requests) RequestApplyReconcile(context.Context) error  { r.apply <- struct{}{}; return nil }

func next(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case ev, ok := <-s.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func TestTrackerLifecycle(t *testing.T) {
	req := requests{make(chan struct{}, 10), make(chan struct{}, 10)}
	tr := New(Options{Ancestry: linear{"c0", "c1", "c2"}, Requester: req})
	defer tr.Close()
	tr.SetConnected(true)
	tr.SetSource("main@sha1:c0", &Condition{Status: "True"})
	tr.SetApply("main@sha1:c0", &Condition{Status: "True"})

	tr.Requested("shop")
	if st, _ := tr.Get("shop"); st.Phase != store.PhaseRequested {
		t.Fatalf("requested: %s", st.Phase)
	}
	sub, first, err := tr.Subscribe("shop", "", 16)
	if err != nil || len(first) != 1 || first[0].Status.Phase != store.PhaseRequested {
		t.Fatalf("first events %+v %v", first, err)
	}
	tr.Committed("shop", Desired{Lifecycle: Active, Commit: "c1", Version: "0.1.0"})
	<-req.source
	want := func(p store.Phase) Event {
		t.Helper()
		ev := next(t, sub)
		if ev.Kind != KindStatus || ev.Status.Phase != p {
			t.Fatalf("event %+v, want phase %s", ev.Status, p)
		}
		return ev
	}
	want(store.PhaseCommitted)
	tr.SetSource("main@sha1:c2", &Condition{Status: "True"}) // a later commit includes c1
	<-req.apply
	want(store.PhaseSourceFetched)
	tr.SetApply("main@sha1:c1", &Condition{Status: "True"})
	want(store.PhaseApplied)
	hr := &Release{Generation: 1, ChartVersion: "0.1.0", InstallRetries: 3}
	tr.SetRelease("shop", hr)
	want(store.PhaseInstalling)
	tr.KubeEvent("shop", KubeEvent{Reason: "InstallSucceeded"})
	if ev := next(t, sub); ev.Kind != KindEvent || ev.Kube.Reason != "InstallSucceeded" {
		t.Fatalf("kube event %+v", ev)
	}
	ready := *hr
	ready.ObservedGeneration, ready.Installed, ready.LatestChartVersion = 1, true, "0.1.0"
	ready.Ready = &Condition{Status: "True", Reason: "InstallSucceeded"}
	tr.SetRelease("shop", &ready)
	ev := want(store.PhaseReady)
	if ev.Status.Percent != 100 || ev.Status.CurrentStep != "" {
		t.Fatalf("ready status %+v", ev.Status)
	}
	var prev time.Time
	for _, s := range ev.Status.Steps {
		if s.State != "done" || s.Time == nil || s.Time.Before(prev) {
			t.Fatalf("step %+v after %v", s, prev)
		}
		prev = *s.Time
	}
	// The same observation again changes nothing and sends nothing.
	tr.SetRelease("shop", &ready)
	select {
	case ev := <-sub.C:
		t.Fatalf("unchanged status sent %+v", ev.Status)
	default:
	}

	// The cluster goes away: unknown; it comes back: ready again.
	tr.SetConnected(false)
	want(store.PhaseUnknown)
	tr.SetConnected(true)
	last := want(store.PhaseReady)

	// Resume after the unknown event: only the ready event is replayed.
	_, replay, err := tr.Subscribe("shop", first[0].ID, 16)
	if err != nil {
		t.Fatal(err)
	}
	var phases []store.Phase
	for _, e := range replay {
		if e.Kind == KindStatus {
			phases = append(phases, e.Status.Phase)
		}
	}
	if len(phases) < 5 || phases[len(phases)-1] != store.PhaseReady {
		t.Fatalf("replay after the first event: %v", phases)
	}
	_, replay, _ = tr.Subscribe("shop", last.ID, 16)
	if len(replay) != 0 {
		t.Fatalf("replay after the last event: %d events", len(replay))
	}
	// An ID from another process gets the current state.
	_, replay, _ = tr.Subscribe("shop", "zz-3", 16)
	if len(replay) != 1 || replay[0].Status.Phase != store.PhaseReady {
		t.Fatalf("foreign Last-Event-ID: %+v", replay)
	}
	if _, _, err := tr.Subscribe("nope", "", 1); err == nil {
		t.Fatal("subscribing to an unknown store worked")
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	sub, _, _ := tr.Subscribe("", "", 2)
	for i := 0; i < 5; i++ {
		tr.Committed("s", Desired{Lifecycle: Active, Commit: string(rune('a' + i))})
	}
	n := 0
	for range sub.C {
		n++
	}
	if !sub.Lagged || n != 2 {
		t.Fatalf("lagged=%v after %d events", sub.Lagged, n)
	}
}
