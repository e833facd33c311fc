package status

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

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
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f", "main@sha1:c0")
	tr.SetShardSource("3f", "main@sha1:c0", &Condition{Status: "True"})
	tr.SetShardApply("3f", "main@sha1:c0", &Condition{Status: "True"})

	tr.Requested("shop")
	if st, _ := tr.Get("shop"); st.Phase != store.PhaseRequested {
		t.Fatalf("requested: %s", st.Phase)
	}
	sub, first, err := tr.Subscribe("shop", "", 16)
	if err != nil || len(first) != 1 || first[0].Status.Phase != store.PhaseRequested {
		t.Fatalf("first events %+v %v", first, err)
	}
	tr.Published("3f", "main@sha1:c1")
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "3f", Revision: "main@sha1:c1"})
	want := func(p store.Phase) Event {
		t.Helper()
		ev := next(t, sub)
		if ev.Kind != KindStatus || ev.Status.Phase != p {
			t.Fatalf("event %+v, want phase %s", ev.Status, p)
		}
		return ev
	}
	want(store.PhaseCommitted)
	tr.Published("3f", "main@sha1:c2")
	tr.SetShardSource("3f", "main@sha1:c2", &Condition{Status: "True"}) // a later publish includes c1
	want(store.PhaseSourceFetched)
	tr.SetShardApply("3f", "main@sha1:c1", &Condition{Status: "True"})
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
		tr.Committed("s", Desired{State: store.StateActive, Commit: string(rune('a' + i))})
	}
	n := 0
	for range sub.C {
		n++
	}
	if !sub.Lagged || n != 2 {
		t.Fatalf("lagged=%v after %d events", sub.Lagged, n)
	}
}

func rev(c string) string { return "main@sha1:" + c }

// phaseOf fails the test unless name is in phase p, and returns its status.
func phaseOf(t *testing.T, tr *Tracker, name string, p store.Phase) Status {
	t.Helper()
	st, ok := tr.Get(name)
	if !ok {
		t.Fatalf("%s not tracked", name)
	}
	if st.Phase != p {
		t.Fatalf("%s: phase %s (%s: %s), want %s", name, st.Phase, st.Reason, st.Message, p)
	}
	return st
}

func TestShardOrder(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f", rev("c0"))
	tr.SetShardSource("3f", rev("c0"), cond("True", "Succeeded", ""))
	tr.SetShardApply("3f", rev("c0"), cond("True", "ReconciliationSucceeded", ""))

	tr.Published("3f", rev("c1"))
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c1", Shard: "3f", Revision: rev("c1")})
	st := phaseOf(t, tr, "shop", store.PhaseCommitted)
	if st.Message != "waiting for ExternalArtifact stores-3f to include the commit" {
		t.Fatalf("message %q", st.Message)
	}
	// The artifact still at the older publish does not include the commit.
	tr.SetShardSource("3f", rev("c0"), cond("True", "Succeeded", "other"))
	phaseOf(t, tr, "shop", store.PhaseCommitted)
	tr.SetShardSource("3f", rev("c1"), cond("True", "Succeeded", ""))
	st = phaseOf(t, tr, "shop", store.PhaseSourceFetched)
	if st.Message != "waiting for Kustomization stores-3f to apply it" {
		t.Fatalf("message %q", st.Message)
	}
	tr.SetShardApply("3f", rev("c0"), cond("Unknown", "Progressing", "Reconciliation in progress"))
	phaseOf(t, tr, "shop", store.PhaseSourceFetched)
	tr.SetShardApply("3f", rev("c1"), cond("True", "ReconciliationSucceeded", ""))
	phaseOf(t, tr, "shop", store.PhaseApplied)

	// A later publish (another store's change) keeps it applied.
	tr.Published("3f", rev("c2"))
	tr.Committed("cafe", Desired{State: store.StateActive, Commit: "c2", Shard: "3f", Revision: rev("c2")})
	phaseOf(t, tr, "cafe", store.PhaseCommitted)
	tr.SetShardSource("3f", rev("c2"), nil)
	tr.SetShardApply("3f", rev("c2"), nil)
	phaseOf(t, tr, "shop", store.PhaseApplied)
	phaseOf(t, tr, "cafe", store.PhaseApplied)

	// A known older revision observed again is reported as it is.
	tr.SetShardApply("3f", rev("c1"), nil)
	phaseOf(t, tr, "shop", store.PhaseApplied)
	phaseOf(t, tr, "cafe", store.PhaseSourceFetched)
}

func TestPublishedIsIdempotent(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f", rev("c1"))
	tr.Published("3f", rev("c1"))
	// Without the repeat counting, c1 is publish 1 and a store expecting it is
	// fetched once c1 shows.
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c1", Shard: "3f", Revision: rev("c1")})
	tr.SetShardSource("3f", rev("c1"), nil)
	phaseOf(t, tr, "shop", store.PhaseSourceFetched)
	if sh := tr.shards[shardKey{name: "3f"}]; sh.seq != 1 || len(sh.revs) != 1 {
		t.Fatalf("seq %d, %d revisions after publishing c1 twice", sh.seq, len(sh.revs))
	}
}

func TestPublishFailureWaitsForTheNextPublish(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f", rev("c1"))
	tr.SetShardSource("3f", rev("c1"), nil)
	tr.SetShardApply("3f", rev("c1"), nil)
	// c2 was committed but its shard could not be published.
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c2", Shard: "3f"})
	phaseOf(t, tr, "shop", store.PhaseCommitted)
	tr.SetShardSource("3f", rev("c1"), cond("True", "Succeeded", "again"))
	tr.SetShardApply("3f", rev("c1"), cond("True", "ReconciliationSucceeded", "again"))
	phaseOf(t, tr, "shop", store.PhaseCommitted)

	// The next publish (the periodic sync) is built from a newer head.
	tr.Published("3f", rev("c3"))
	phaseOf(t, tr, "shop", store.PhaseCommitted) // published, not yet seen in the cluster
	tr.SetShardSource("3f", rev("c3"), nil)
	phaseOf(t, tr, "shop", store.PhaseSourceFetched)
	tr.SetShardApply("3f", rev("c3"), nil)
	phaseOf(t, tr, "shop", store.PhaseApplied)
}

// A new leader's first pass found the shard's artifact current (the old leader
// published the commit just before it died, and this replica saw that artifact
// before it knew the commit): no publish will come, so CaughtUp moves the store on
// to the latest one. A store committed after the pass began keeps waiting.
func TestCaughtUpAfterTakeover(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(Options{Now: func() time.Time { return now }})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f", rev("c2")) // seen while standing by
	tr.SetShardSource("3f", rev("c2"), nil)
	tr.SetShardApply("3f", rev("c2"), nil)
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c2", Shard: "3f"})
	phaseOf(t, tr, "shop", store.PhaseCommitted)
	took := now.Add(time.Second)
	now = took.Add(time.Second)
	tr.Committed("late", Desired{State: store.StateActive, Commit: "c3", Shard: "3f"})

	if n := tr.CaughtUp(took); n != 1 {
		t.Fatalf("CaughtUp moved %d stores, want 1", n)
	}
	phaseOf(t, tr, "shop", store.PhaseApplied)
	phaseOf(t, tr, "late", store.PhaseCommitted)
}

func TestLoadAfterPublished(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	// The initial sync adopted the artifacts it found: a1 was 3f's before a2.
	tr.Published("3f", rev("a1"))
	tr.Published("3f", rev("a2"))
	tr.Load("shop", Desired{State: store.StateActive, Commit: "x", Shard: "3f"})
	// A shard nobody published yet waits for its first publish.
	tr.Load("cafe", Desired{State: store.StateRetained, Shard: "07"})
	phaseOf(t, tr, "shop", store.PhaseCommitted)
	phaseOf(t, tr, "cafe", store.PhaseDeleting)

	tr.SetShardSource("3f", rev("a1"), nil)
	phaseOf(t, tr, "shop", store.PhaseCommitted)
	tr.SetShardSource("3f", rev("a2"), nil)
	tr.SetShardApply("3f", rev("a2"), nil)
	phaseOf(t, tr, "shop", store.PhaseApplied)

	// 07's artifact is seen before the publisher reports it (the watch was
	// faster): it tells nothing until Published, which then counts it.
	tr.SetShardSource("07", rev("b1"), nil)
	tr.SetShardApply("07", rev("b1"), nil)
	phaseOf(t, tr, "cafe", store.PhaseDeleting)
	tr.Published("07", rev("b1"))
	phaseOf(t, tr, "cafe", store.PhaseRetained)
}

// An applied store does not go back when its shard's artifact moves to a revision
// the publisher has not reported yet.
func TestUnreportedRevisionDoesNotRegress(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f", rev("c1"))
	tr.Committed("shop", Desired{State: store.StateRetained, Commit: "c1", Shard: "3f", Revision: rev("c1")})
	tr.SetShardSource("3f", rev("c1"), nil)
	tr.SetShardApply("3f", rev("c1"), nil)
	phaseOf(t, tr, "shop", store.PhaseRetained)
	sub, _, _ := tr.Subscribe("shop", "", 16)
	tr.SetShardSource("3f", rev("c2"), nil) // written by the publisher, reported next
	tr.SetShardSource("3f", "", nil)        // or the artifact is gone for a moment
	tr.Published("3f", rev("c2"))
	phaseOf(t, tr, "shop", store.PhaseRetained)
	select {
	case ev := <-sub.C:
		t.Fatalf("event %+v", ev.Status)
	default:
	}
}

func TestOtherShardsAreNotRecomputed(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	for _, sh := range []string{"3f", "a0"} {
		tr.Published(sh, rev(sh+"-1"))
		for i := 0; i < 3; i++ {
			tr.Committed(fmt.Sprintf("s%s-%d", sh, i), Desired{State: store.StateActive, Commit: sh + "-1", Shard: sh, Revision: rev(sh + "-1")})
		}
	}
	sub, _, _ := tr.Subscribe("", "", 64)
	before := tr.recomputes
	tr.SetShardSource("a0", rev("a0-1"), nil)
	tr.SetShardApply("a0", rev("a0-1"), cond("False", "BuildFailed", "boom"))
	tr.Published("a0", rev("a0-2"))
	tr.SetShardApply("a0", rev("a0-2"), nil)
	if n := tr.recomputes - before; n != 3*3 {
		t.Fatalf("%d stores recomputed for three changes of shard a0 (3 stores)", n)
	}
	// Nothing observed for a0 changed without a reported revision of it.
	tr.SetShardApply("a0", rev("a0-2"), nil)
	if n := tr.recomputes - before; n != 3*3 {
		t.Fatalf("an unchanged observation recomputed %d stores", n-9)
	}
	for i := 0; i < 3; i++ {
		phaseOf(t, tr, fmt.Sprintf("s3f-%d", i), store.PhaseCommitted)
		phaseOf(t, tr, fmt.Sprintf("sa0-%d", i), store.PhaseApplied)
	}
	for {
		select {
		case ev := <-sub.C:
			if !strings.HasPrefix(ev.Store, "sa0-") {
				t.Fatalf("event for %s on a change of shard a0", ev.Store)
			}
			continue
		default:
		}
		break
	}
}

func TestShardFailureSurfaces(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f", rev("c1"))
	tr.Committed("old", Desired{State: store.StateActive, Commit: "c1", Shard: "3f", Revision: rev("c1")})
	tr.SetShardSource("3f", rev("c1"), nil)
	tr.SetShardApply("3f", rev("c1"), nil)
	tr.Published("3f", rev("c2"))
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c2", Shard: "3f", Revision: rev("c2")})
	tr.Committed("elsewhere", Desired{State: store.StateRetained, Commit: "c2", Shard: "07"})

	// The artifact cannot be served: the stores that wait for it say why.
	tr.SetShardSource("3f", rev("c1"), cond("False", "StorageOperationFailed", "artifact not found"))
	st := phaseOf(t, tr, "shop", store.PhaseCommitted)
	if st.Reason != "StorageOperationFailed" || st.Message != "waiting for ExternalArtifact stores-3f to include the commit: artifact not found" {
		t.Fatalf("source failure: %q %q", st.Reason, st.Message)
	}

	tr.SetShardSource("3f", rev("c2"), cond("True", "Succeeded", ""))
	tr.SetShardApply("3f", rev("c1"), cond("False", "BuildFailed", "kustomize build failed: shop/helmrelease.yaml: invalid"))
	st = phaseOf(t, tr, "shop", store.PhaseSourceFetched)
	if st.Reason != "BuildFailed" || st.Message != "waiting for Kustomization stores-3f to apply it: kustomize build failed: shop/helmrelease.yaml: invalid" {
		t.Fatalf("apply failure: %q %q", st.Reason, st.Message)
	}
	if st.CurrentStep != StepApplied || st.Steps[2].State != "current" {
		t.Fatalf("a failing apply is waited on, as before: %+v", st.Steps)
	}
	// A store the Kustomization already applied, and a store of another shard, are
	// not touched by it.
	if st := phaseOf(t, tr, "old", store.PhaseApplied); st.Reason != "" {
		t.Fatalf("applied store got reason %q", st.Reason)
	}
	if st := phaseOf(t, tr, "elsewhere", store.PhaseDeleting); st.Reason != "" || strings.Contains(st.Message, "stores-3f") {
		t.Fatalf("store of shard 07: %q %q", st.Reason, st.Message)
	}
	// Fixed by a later publish: the failure goes away with the apply.
	tr.Published("3f", rev("c3"))
	tr.SetShardSource("3f", rev("c3"), nil)
	tr.SetShardApply("3f", rev("c3"), cond("True", "ReconciliationSucceeded", "Applied revision: main@sha1:c3"))
	if st := phaseOf(t, tr, "shop", store.PhaseApplied); st.Reason != "" {
		t.Fatalf("reason %q after the fix", st.Reason)
	}
}

func TestShardRevisionBound(t *testing.T) {
	tr := New(Options{ShardRevisions: 4})
	defer tr.Close()
	tr.SetConnected(true)
	for i := 1; i <= 6; i++ {
		tr.Published("3f", rev(fmt.Sprint("c", i)))
	}
	sh := tr.shards[shardKey{name: "3f"}]
	if sh.seq != 6 || len(sh.revs) != 4 || sh.seqOf(rev("c2")) != 0 || sh.seqOf(rev("c3")) != 3 || sh.seqOf(rev("c6")) != 6 {
		t.Fatalf("seq %d, revisions %v", sh.seq, sh.revs)
	}
	// A forgotten revision counts as never published: the store waits for the
	// next publish, and seeing c1 again does not count as having it.
	tr.Committed("shop", Desired{State: store.StateActive, Commit: "c1", Shard: "3f", Revision: rev("c1")})
	tr.SetShardSource("3f", rev("c1"), nil)
	tr.SetShardSource("3f", rev("c6"), nil)
	phaseOf(t, tr, "shop", store.PhaseCommitted)
	tr.Published("3f", rev("c7"))
	tr.SetShardSource("3f", rev("c7"), nil)
	phaseOf(t, tr, "shop", store.PhaseSourceFetched)
	// The observed revision's place outlives the map: forgetting it later does not
	// move the store back.
	tr.SetShardApply("3f", rev("c7"), nil)
	for i := 8; i <= 12; i++ {
		tr.Published("3f", rev(fmt.Sprint("c", i)))
	}
	tr.SetConnected(false)
	tr.SetConnected(true)
	phaseOf(t, tr, "shop", store.PhaseApplied)

	def := New(Options{})
	defer def.Close()
	for i := 0; i < 300; i++ {
		def.Published("00", rev(fmt.Sprint("r", i)))
	}
	if n := len(def.shards[shardKey{name: "00"}].revs); n != 256 {
		t.Fatalf("default bound: %d revisions kept", n)
	}
}

// BenchmarkShardApply is a shard's Kustomization applying a new publish with
// 10,000 stores tracked (2 or 3 of them in that shard); the baseline is the same
// shard alone (its stores and nothing else), so the ratio is what the rest of the
// fleet costs.
func BenchmarkShardApply(b *testing.B) {
	for _, fleet := range []string{"shard-only", "10000"} {
		b.Run("fleet="+fleet, func(b *testing.B) {
			tr := New(Options{Buffer: 1024})
			defer tr.Close()
			tr.SetConnected(true)
			in := 0
			for i := 0; i < 10000; i++ {
				sh := fmt.Sprintf("%03x", i%4096)
				if sh != "3f0" && fleet == "shard-only" {
					continue
				}
				if sh == "3f0" {
					in++
				}
				tr.Load(fmt.Sprint("s", i), Desired{State: store.StateRetained, Shard: sh})
			}
			for i := 0; b.Loop(); i++ {
				r := rev(fmt.Sprint(i))
				tr.Published("3f0", r)
				tr.SetShardApply("3f0", r, nil)
			}
			b.ReportMetric(float64(len(tr.stores)), "stores")
			b.ReportMetric(float64(in), "shard-stores")
		})
	}
}

// A store under review shows its pull request on the streams: a proposed create is
// awaiting-approval, then rejected once and forgotten; a change to a running store
// is awaiting-approval over the store's own phase, then merged until the merge
// commit arrives, then its usual phases.
func TestTrackerReviewPhases(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	all, _, err := tr.Subscribe("", "", 32)
	if err != nil {
		t.Fatal(err)
	}
	want := func(name string, p store.Phase) Status {
		t.Helper()
		ev := next(t, all)
		if ev.Kind != KindStatus || ev.Store != name || ev.Status.Phase != p {
			t.Fatalf("event %s %+v, want %s %s", ev.Store, ev.Status, name, p)
		}
		return *ev.Status
	}
	pr := store.Review{Required: true, URL: "https://github.example/o/fleet/pull/7", Number: 7, Reviewers: []string{"bob"}}

	tr.Requested("big")
	want("big", store.PhaseRequested)
	tr.Reviewing("big", pr, store.RequestAwaitingApproval)
	if st := want("big", store.PhaseAwaitingApproval); st.Review == nil || st.Review.URL != pr.URL || st.Review.Reviewers[0] != "bob" {
		t.Fatalf("awaiting-approval without its pull request: %+v", st)
	}
	if st, ok := tr.Get("big"); !ok || st.Phase != store.PhaseAwaitingApproval || st.Review == nil {
		t.Fatalf("Get: %+v %v", st, ok)
	}
	tr.Reviewing("big", pr, store.RequestRejected)
	if st := want("big", store.PhaseRejected); st.Review == nil || st.Review.Number != 7 {
		t.Fatalf("rejected without its pull request: %+v", st)
	}
	if _, ok := tr.Get("big"); ok {
		t.Fatal("a rejected create is still known")
	}

	tr.Published("3f", "main@sha1:c1")
	tr.SetShardSource("3f", "main@sha1:c1", &Condition{Status: "True"})
	tr.SetShardApply("3f", "main@sha1:c1", &Condition{Status: "True"})
	tr.Load("shop", Desired{State: store.StateRetained, Commit: "c1", Shard: "3f"})
	want("shop", store.PhaseRetained)
	pr.Number, pr.URL = 8, "https://github.example/o/fleet/pull/8"
	tr.Reviewing("shop", pr, store.RequestAwaitingApproval)
	if st := want("shop", store.PhaseAwaitingApproval); st.Commit != "c1" || st.Review.Number != 8 {
		t.Fatalf("a change under review: %+v", st)
	}
	tr.Reviewing("shop", pr, store.RequestCommitted)
	if st := want("shop", store.PhaseMerged); st.Review != nil {
		t.Fatalf("merged: %+v", st)
	}
	tr.Published("3f", "main@sha1:c2")
	tr.Committed("shop", Desired{State: store.StatePurging, Commit: "c2", Shard: "3f", Revision: "main@sha1:c2"})
	if st := want("shop", store.PhasePurging); st.Commit != "c2" || st.Review != nil {
		t.Fatalf("after the merge commit: %+v", st)
	}
}

// A reshard moves stores between shards. Rekey files each under its shard at the
// new count, and the store then waits for that shard's publish of the move: the
// new shard's earlier publishes (a shard both counts have) do not carry it, and the
// old shard's observations no longer concern it. A store whose shard stays is left
// as it was.
func TestRekeyAfterReshard(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	for _, sh := range []string{"3f0", "003"} {
		tr.Published(sh, rev("c1"))
		tr.SetShardSource(sh, rev("c1"), nil)
		tr.SetShardApply(sh, rev("c1"), nil)
	}
	tr.Load("moved", Desired{State: store.StateActive, Commit: "c1", Shard: "3f0"})
	tr.Load("stays", Desired{State: store.StateActive, Commit: "c1", Shard: "003"})
	phaseOf(t, tr, "moved", store.PhaseApplied)
	phaseOf(t, tr, "stays", store.PhaseApplied)

	newShard := map[string]string{"moved": "003", "stays": "003"}
	if n := tr.Rekey("c2", func(name string) string { return newShard[name] }); n != 1 {
		t.Fatalf("Rekey moved %d stores, want 1", n)
	}
	if sh := tr.ShardOf("moved"); sh != "003" {
		t.Fatalf("moved follows shard %q, want 003", sh)
	}
	// 003's publish c1 predates the move.
	phaseOf(t, tr, "moved", store.PhaseCommitted)
	phaseOf(t, tr, "stays", store.PhaseApplied)
	// The old shard applying its emptied artifact tells nothing about the store.
	tr.Published("3f0", rev("c2"))
	tr.SetShardApply("3f0", rev("c2"), nil)
	phaseOf(t, tr, "moved", store.PhaseCommitted)
	// The new shard's publish of the move brings it back.
	tr.Published("003", rev("c2"))
	tr.SetShardSource("003", rev("c2"), nil)
	tr.SetShardApply("003", rev("c2"), nil)
	phaseOf(t, tr, "moved", store.PhaseApplied)
	if n := tr.Rekey("c3", func(name string) string { return newShard[name] }); n != 0 {
		t.Fatalf("a second Rekey at the same count moved %d stores", n)
	}
}

// Service.Resync reads a store a reshard moved again and Loads it on its new shard:
// it waits for the publish of the head that has the move (d.Revision) when it was
// reported, else for the new shard's next publish; the shard's latest publish, as
// at start-up, may predate the move.
func TestLoadMovedStore(t *testing.T) {
	tr := New(Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("3f0", rev("c1"))
	tr.Published("003", rev("c1"))
	tr.SetShardApply("003", rev("c1"), nil)
	tr.Committed("early", Desired{State: store.StateActive, Commit: "c1", Shard: "3f0", Revision: rev("c1")})
	tr.Committed("late", Desired{State: store.StateActive, Commit: "c1", Shard: "3f0", Revision: rev("c1")})

	// Read again before the new shard published the move (the follower).
	tr.Load("early", Desired{State: store.StateActive, Commit: "c2", Shard: "003", Revision: "c2"})
	phaseOf(t, tr, "early", store.PhaseCommitted)
	tr.Published("003", rev("c2"))
	tr.SetShardApply("003", rev("c2"), nil)
	phaseOf(t, tr, "early", store.PhaseApplied)
	// Read again after it (the publisher's resync): that publish carried it.
	tr.Load("late", Desired{State: store.StateActive, Commit: "c2", Shard: "003", Revision: "c2"})
	phaseOf(t, tr, "late", store.PhaseApplied)
}
