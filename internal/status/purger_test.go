package status_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// syncPublisher is publisher for tests where the Purger publishes from its own
// goroutine: safe for concurrent use, and it counts.
type syncPublisher struct {
	t    *status.Tracker
	mu   sync.Mutex
	n    int
	last string
}

func (p *syncPublisher) publish(_ context.Context, shard string) (string, error) {
	p.mu.Lock()
	p.n++
	rev := fmt.Sprintf("main@sha1:%040x", p.n)
	p.last = rev
	p.mu.Unlock()
	p.t.Published(shard, rev)
	return rev, nil
}

func (p *syncPublisher) latest() (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.last
}

// waitPublished waits until more than n publishes were made.
func (p *syncPublisher) waitPublished(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _ := p.latest(); got > n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no publish after the %d-th", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cluster stands in for Flux and the kube watcher: it applies what the publisher
// published last, as the shard Kustomization would.
type cluster struct {
	t   *status.Tracker
	pub *syncPublisher
	q   *status.Queue
}

func (c cluster) apply(shard string) {
	if c.q != nil {
		// What the publish queue has yet to publish is not in the cluster.
		if err := c.q.Idle(context.Background()); err != nil {
			panic(err)
		}
	}
	_, rev := c.pub.latest()
	c.t.SetShardSource(shard, rev, &status.Condition{Status: "True"})
	c.t.SetShardApply(shard, rev, &status.Condition{Status: "True"})
}

// retained creates name and deletes it, each change applied by the cluster, so the
// next request is the purge.
func retained(t *testing.T, ss status.Service, c cluster, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := ss.Create(ctx, store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "o@example.com"}}, store.Meta{Actor: "t", RequestID: "create-" + name}); err != nil {
		t.Fatal(err)
	}
	c.apply(store.Shard(name))
	c.t.SetNamespace(name, true)
	if _, err := ss.Delete(ctx, name, false, store.Meta{Actor: "t", RequestID: "delete-" + name}); err != nil {
		t.Fatal(err)
	}
	c.apply(store.Shard(name))
	phase(t, c.t, name, store.PhaseRetained)
}

// runPurger runs p until the test ends.
func runPurger(t *testing.T, p *status.Purger) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitGone waits until the fleet no longer has name (its folder was removed).
func waitGone(t *testing.T, svc store.Service, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := svc.Get(context.Background(), name)
		if store.ErrorCode(err) == store.ENOTFOUND {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still in the fleet: %v", name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantPurgeHistory checks the two newest changes to name: the folder's removal and
// the step that made it purging (commit first), both under the first request's id
// and actor.
func wantPurgeHistory(t *testing.T, svc store.Service, name, first, requestID, actor string) []store.Entry {
	t.Helper()
	h, err := svc.History(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) < 3 {
		t.Fatalf("history %+v", h)
	}
	for i, e := range h[:2] {
		if e.RequestID != requestID || e.Actor != actor {
			t.Fatalf("history[%d] %+v: want Request-Id %s and actor %s", i, e, requestID, actor)
		}
	}
	if h[0].Action != store.ActionPurge || h[1].Commit.SHA != first || h[0].Commit.SHA == first {
		t.Fatalf("history %+v: want the folder's removal (purge) after the first step %s", h[:2], first)
	}
	if h[2].RequestID == requestID {
		t.Fatalf("history %+v: a third commit under %s", h[:3], requestID)
	}
	return h
}

// TestReadyToPurge is the Tracker's rule: the second step is due once the shard
// Kustomization applied the publish carrying the commit that made the store
// purging, while the cluster answers; not before, not for a store in another
// state, and not again once the folder's removal is committed.
func TestReadyToPurge(t *testing.T) {
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Published("abc", "main@sha1:c1")
	tr.SetShardApply("abc", "main@sha1:c1", nil)
	tr.Committed("ret", status.Desired{State: store.StateRetained, Commit: "c1", Shard: "abc", Revision: "main@sha1:c1"})
	if tr.ReadyToPurge("ret") || tr.ReadyToPurge("unknown") {
		t.Fatal("a retained or unknown store is not due for the second step")
	}

	tr.Published("abc", "main@sha1:c2")
	tr.Committed("shop", status.Desired{State: store.StatePurging, Commit: "c2", Shard: "abc", Revision: "main@sha1:c2"})
	if tr.ReadyToPurge("shop") {
		t.Fatal("due before the shard applied the first step")
	}
	tr.SetShardSource("abc", "main@sha1:c2", nil)
	if tr.ReadyToPurge("shop") {
		t.Fatal("due once only fetched")
	}
	tr.SetShardApply("abc", "main@sha1:c2", nil)
	if !tr.ReadyToPurge("shop") {
		t.Fatal("not due once applied")
	}
	tr.SetConnected(false)
	if tr.ReadyToPurge("shop") {
		t.Fatal("due with the cluster unreachable")
	}
	tr.SetConnected(true)
	tr.Committed("shop", status.Desired{State: store.StatePurged, Commit: "c3", Shard: "abc"})
	if tr.ReadyToPurge("shop") {
		t.Fatal("due again after the folder's removal was committed")
	}

	// At start-up (Load, no commit known): due once the shard's latest publish, which
	// holds every commit, is applied.
	tr2 := status.New(status.Options{})
	defer tr2.Close()
	tr2.SetConnected(true)
	tr2.Published("abc", "main@sha1:c9")
	tr2.Load("left", status.Desired{State: store.StatePurging, Shard: "abc"})
	tr2.SetShardApply("abc", "main@sha1:c8", nil) // not a publish this process knows
	if tr2.ReadyToPurge("left") {
		t.Fatal("due on an applied revision of unknown order")
	}
	tr2.SetShardApply("abc", "main@sha1:c9", nil)
	if !tr2.ReadyToPurge("left") {
		t.Fatal("a loaded purging store is not due once its shard applied")
	}
}

// TestPurgerOneRequest: one purge request; once the cluster applied it the Purger
// commits the folder's removal through the lifecycle under the request's id and
// actor, the store's status goes on to deleted, and the request reports where it
// ended. A user's late second purge finds nothing and commits nothing.
func TestPurgerOneRequest(t *testing.T) {
	ctx := context.Background()
	svc := newFleet(t)
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	pub := &syncPublisher{t: tr}
	ss := status.Service{Stores: svc, T: tr, ShardOf: store.Shard, Queue: queued(t, tr, pub.publish)}
	c := cluster{t: tr, pub: pub, q: ss.Queue}
	shard := store.Shard("shop")
	retained(t, ss, c, "shop")
	runPurger(t, &status.Purger{T: tr, Stores: ss})

	sub, _, err := tr.Subscribe("shop", "", 64)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Unsubscribe(sub)
	out, err := ss.Delete(ctx, "shop", true, store.Meta{Actor: "alice", RequestID: "purge-1"})
	if err != nil || out.Phase != store.PhasePurging {
		t.Fatalf("purge: %+v %v", out, err)
	}
	first := out.Commit.SHA
	if v, err := svc.Get(ctx, "shop"); err != nil || v.State != store.StatePurging || tr.ReadyToPurge("shop") {
		t.Fatalf("before the cluster applied the first step: %+v %v", v, err)
	}
	// A user's second purge now would remove the folder before Flux made the
	// namespace prunable: refused, nothing committed.
	if _, err := ss.Delete(ctx, "shop", true, store.Meta{Actor: "bob", RequestID: "early"}); store.ErrorCode(err) != store.ECONFLICT {
		t.Fatalf("early second purge: %v, want a conflict", err)
	}
	if v, err := svc.Get(ctx, "shop"); err != nil || v.State != store.StatePurging || v.Commit.SHA != first {
		t.Fatalf("after the early second purge: %+v %v", v, err)
	}
	published, _ := pub.latest()
	c.apply(shard)

	// The folder's removal is committed: the status is about a new commit.
	var second string
	for second == "" {
		select {
		case ev := <-sub.C:
			if ev.Status != nil && ev.Status.Commit != "" && ev.Status.Commit != first {
				second = ev.Status.Commit
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the purger did not commit the second step")
		}
	}
	waitGone(t, svc, "shop")
	pub.waitPublished(t, published) // the shard, after the removal
	c.apply(shard)
	tr.SetNamespace("shop", false)
	phase(t, tr, "shop", store.PhaseDeleted)
	h := wantPurgeHistory(t, svc, "shop", first, "purge-1", "alice")
	if h[0].Commit.SHA != second {
		t.Fatalf("newest commit %s, status said %s", h[0].Commit.SHA, second)
	}
	if r, err := svc.Request(ctx, "purge-1"); err != nil || r.Phase != store.PhaseDeleted || r.Commit == nil || r.Commit.SHA != second {
		t.Fatalf("request purge-1 after both steps: %+v %v", r, err)
	}

	_, err = ss.Delete(ctx, "shop", true, store.Meta{Actor: "bob", RequestID: "late"})
	if store.ErrorCode(err) != store.ENOTFOUND {
		t.Fatalf("a purge of the purged store: %v, want not found", err)
	}
	if h2, _ := svc.History(ctx, "shop"); len(h2) != len(h) {
		t.Fatalf("history grew from %d to %d entries", len(h), len(h2))
	}
}

// TestPurgerUserFirst: a user who sends the second purge before the Purger gets to
// it (the two-request contract still holds) removes the folder under their own
// request; the Purger then finds nothing to do, also when its Tracker still says
// the store is due, and commits nothing.
func TestPurgerUserFirst(t *testing.T) {
	ctx := context.Background()
	svc := newFleet(t)
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	pub := &syncPublisher{t: tr}
	ss := status.Service{Stores: svc, T: tr, ShardOf: store.Shard, Queue: queued(t, tr, pub.publish)}
	c := cluster{t: tr, pub: pub, q: ss.Queue}
	retained(t, ss, c, "two")
	if _, err := ss.Delete(ctx, "two", true, store.Meta{Actor: "bob", RequestID: "purge-2"}); err != nil {
		t.Fatal(err)
	}
	c.apply(store.Shard("two"))
	if !tr.ReadyToPurge("two") {
		t.Fatal("not due once applied")
	}
	// The user's request goes to the lifecycle under the Tracker's feet (as if it
	// raced the Purger's look at the Tracker).
	out, err := svc.Delete(ctx, "two", true, store.Meta{Actor: "carol", RequestID: "manual-2"})
	if err != nil || out.Phase != store.PhaseDeleted {
		t.Fatalf("manual second purge: %+v %v", out, err)
	}
	p := &status.Purger{T: tr, Stores: ss}
	if retry, err := p.Finish(ctx, "two"); retry || err != nil {
		t.Fatalf("purger after the user: retry %v, %v", retry, err)
	}
	h, err := svc.History(ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	if h[0].RequestID != "manual-2" || h[0].Actor != "carol" || h[1].RequestID != "purge-2" {
		t.Fatalf("history %+v", h[:2])
	}
}

// TestPurgerRestart: a store left purging, its first step applied, by a process
// that stopped is finished by a new one (new clone, index, Tracker and Purger),
// under the first request's id and actor read from Git.
func TestPurgerRestart(t *testing.T) {
	ctx := context.Background()
	remote := newRemote(t)
	svc := openFleet(t, remote, gitrepo.Options{})
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	pub := &syncPublisher{t: tr}
	ss := status.Service{Stores: svc, T: tr, ShardOf: store.Shard, Queue: queued(t, tr, pub.publish)}
	c := cluster{t: tr, pub: pub, q: ss.Queue}
	shard := store.Shard("three")
	retained(t, ss, c, "three")
	out, err := ss.Delete(ctx, "three", true, store.Meta{Actor: "dave", RequestID: "purge-3"})
	if err != nil {
		t.Fatal(err)
	}
	c.apply(shard) // applied; nothing ran to finish it

	svc2 := openFleet(t, remote, gitrepo.Options{})
	tr2 := status.New(status.Options{})
	defer tr2.Close()
	tr2.SetConnected(true)
	n, rev := pub.latest()
	tr2.Published(shard, rev) // the publisher adopts what the cluster has
	pub2 := &syncPublisher{t: tr2, n: n}
	ss2 := status.Service{Stores: svc2, T: tr2, ShardOf: store.Shard, Queue: queued(t, tr2, pub2.publish)}
	if _, err := ss2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runPurger(t, &status.Purger{T: tr2, Stores: ss2})
	tr2.SetShardApply(shard, rev, nil) // the watcher's first list
	waitGone(t, svc2, "three")
	wantPurgeHistory(t, svc2, "three", out.Commit.SHA, "purge-3", "dave")
}

// guarded refuses the second purge step fails times the way the writer's purge
// guard does, then lets it through.
type guarded struct {
	store.Service
	mu       sync.Mutex
	fails    int
	attempts int
}

func (g *guarded) Delete(ctx context.Context, name string, purge bool, m store.Meta) (store.Outcome, error) {
	if m.Continues {
		g.mu.Lock()
		g.attempts++
		refuse := g.attempts <= g.fails
		g.mu.Unlock()
		if refuse {
			return store.Outcome{}, store.Errorf(store.ECONFLICT, "too many purges at once; retry shortly")
		}
	}
	return g.Service.Delete(ctx, name, purge, m)
}

// TestPurgerGuard: the writer's purge guard refuses the folder's removal (ECONFLICT,
// nothing committed); the Purger tries again later, and gets through once the
// guard lets it.
func TestPurgerGuard(t *testing.T) {
	ctx := context.Background()
	remote := newRemote(t)
	// A guard that refuses every purge: the real writer's answer.
	strict := openFleet(t, remote, gitrepo.Options{MaxPurges: -1})
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	pub := &syncPublisher{t: tr}
	ss := status.Service{Stores: strict, T: tr, ShardOf: store.Shard, Queue: queued(t, tr, pub.publish)}
	c := cluster{t: tr, pub: pub, q: ss.Queue}
	retained(t, ss, c, "four")
	out, err := ss.Delete(ctx, "four", true, store.Meta{Actor: "erin", RequestID: "purge-4"})
	if err != nil {
		t.Fatal(err)
	}
	first := out.Commit.SHA
	c.apply(store.Shard("four"))
	retry, err := (&status.Purger{T: tr, Stores: ss}).Finish(ctx, "four")
	if !retry || store.ErrorCode(err) != store.ECONFLICT || !strings.Contains(store.ErrorMessage(err), "too many purges") {
		t.Fatalf("guarded removal: retry %v, %v", retry, err)
	}
	if v, err := strict.Get(ctx, "four"); err != nil || v.State != store.StatePurging {
		t.Fatalf("after the refusal: %+v %v", v, err)
	}

	// Refused twice more, then through: the Purger keeps trying.
	relaxed := openFleet(t, remote, gitrepo.Options{})
	g := &guarded{Service: status.Service{Stores: relaxed, T: tr, ShardOf: store.Shard, Queue: ss.Queue}, fails: 2}
	runPurger(t, &status.Purger{T: tr, Stores: g, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	waitGone(t, relaxed, "four")
	wantPurgeHistory(t, relaxed, "four", first, "purge-4", "erin")
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.attempts != 3 {
		t.Fatalf("%d attempts, want 2 refused and 1 through", g.attempts)
	}
}
