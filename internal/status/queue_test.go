package status_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// headPublisher publishes as internal/publish does: from the clone's newest head,
// at the time the publish runs, telling the Tracker first. It records every
// publish; hold, while set, keeps each publish waiting until it is closed, and
// fails makes that many next publishes fail.
type headPublisher struct {
	t    *status.Tracker
	repo *gitrepo.Repo

	mu        sync.Mutex
	hold      chan struct{}
	started   chan string // told of every publish begun, when set
	fails     int
	attempts  map[string]int
	published map[string][]string // shard → revisions, in order
}

func (p *headPublisher) publish(ctx context.Context, shard string) (string, error) {
	p.mu.Lock()
	hold, started := p.hold, p.started
	p.mu.Unlock()
	if started != nil {
		started <- shard
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempts[shard]++
	if p.fails > 0 {
		p.fails--
		return "", errors.New("the API server did not answer")
	}
	head, err := p.repo.Head()
	if err != nil {
		return "", err
	}
	rev := "main@sha1:" + head
	p.t.Published(shard, rev)
	p.published[shard] = append(p.published[shard], rev)
	return rev, nil
}

func (p *headPublisher) revisions(shard string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.published[shard]...)
}

// queueFleet is a fleet service over a real Git remote with its clone, a connected
// Tracker and a Service that publishes through a one-worker queue over a
// headPublisher.
func queueFleet(t *testing.T) (status.Service, *headPublisher, *gitrepo.Repo) {
	t.Helper()
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: newRemote(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	svc, err := fleet.New(ctx, fleet.Config{Repo: gitrepo.Fleet{R: repo}, Renderer: render.Renderer{Options: render.LocalOptions()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	tr := status.New(status.Options{})
	t.Cleanup(tr.Close)
	tr.SetConnected(true)
	pub := &headPublisher{t: tr, repo: repo, attempts: map[string]int{}, published: map[string][]string{}}
	q := status.NewQueue(status.QueueConfig{T: tr, Publish: pub.publish, Workers: 1, MinBackoff: 1e6, MaxBackoff: 8e6})
	t.Cleanup(func() { q.Close(context.Background()) })
	return status.Service{Stores: svc, T: tr, ShardOf: store.Shard, Queue: q}, pub, repo
}

// sameShard is n store names in one shard, none of them in the shard of avoid.
func sameShard(n int, avoid string) (string, []string) {
	byShard := map[string][]string{}
	for i := 0; ; i++ {
		name := fmt.Sprintf("co-%d", i)
		s := store.Shard(name)
		if s == store.Shard(avoid) {
			continue
		}
		byShard[s] = append(byShard[s], name)
		if len(byShard[s]) == n {
			return s, byShard[s]
		}
	}
}

func create(t *testing.T, ss status.Service, name string) string {
	t.Helper()
	out, err := ss.Create(context.Background(), store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "o@example.com"}}, store.Meta{Actor: "t", RequestID: "create-" + name})
	if err != nil {
		t.Fatal(err)
	}
	return out.Commit.SHA
}

// carried checks that the store's revision is a publish of its shard that holds its
// commit.
func carried(t *testing.T, ss status.Service, repo *gitrepo.Repo, name, commit string) string {
	t.Helper()
	d := ss.T.DesiredOf(name)
	rev, ok := strings.CutPrefix(d.Revision, "main@sha1:")
	if d.Commit != commit || !ok {
		t.Fatalf("%s: desired %+v, want commit %s carried by a revision", name, d, commit)
	}
	if in, err := repo.Includes(context.Background(), rev, commit); err != nil || !in {
		t.Fatalf("%s: revision %s does not hold commit %s (%v)", name, d.Revision, commit, err)
	}
	return d.Revision
}

// TestQueueCoalesces: commits to one shard that pile up while the queue is busy go
// out in one publish, from the newest head; every store learns that revision, so an
// older publish of the shard (a background pass built before their commits) does
// not count as theirs.
func TestQueueCoalesces(t *testing.T) {
	ss, pub, repo := queueFleet(t)
	const n = 8
	shard, names := sameShard(n, "first")
	hold := make(chan struct{})
	started := make(chan string, 64)
	pub.mu.Lock()
	pub.hold, pub.started = hold, started
	pub.mu.Unlock()

	// The one worker is busy with another shard...
	create(t, ss, "first")
	if got := <-started; got != store.Shard("first") {
		t.Fatalf("first publish of shard %s, want %s", got, store.Shard("first"))
	}
	before, _ := repo.Head()
	// ...while n creates land in one shard. Each answered without a publish.
	commits := map[string]string{}
	for _, name := range names {
		commits[name] = create(t, ss, name)
		phase(t, ss.T, name, store.PhaseCommitted)
	}
	if d := ss.Queue.Depth(); d != 2 {
		t.Fatalf("queue depth %d, want 2 (one shard in flight, one waiting)", d)
	}
	// A background pass publishes the shard from a head older than every commit.
	older := "main@sha1:" + before
	ss.T.Published(shard, older)

	pub.mu.Lock()
	pub.hold, pub.started = nil, nil
	pub.mu.Unlock()
	close(hold)
	idle(t, ss.Queue)

	revs := pub.revisions(shard)
	head, _ := repo.Head()
	if len(revs) != 1 || revs[0] != "main@sha1:"+head {
		t.Fatalf("shard %s published %v, want once, at the newest head %s", shard, revs, head)
	}
	for _, name := range names {
		if rev := carried(t, ss, repo, name, commits[name]); rev != revs[0] {
			t.Fatalf("%s waits for %s, want %s", name, rev, revs[0])
		}
	}
	if d := ss.Queue.Depth(); d != 0 {
		t.Fatalf("queue depth %d once idle", d)
	}
	// The older publish reaching the cluster is not the stores' change...
	ss.T.SetShardSource(shard, older, nil)
	for _, name := range names {
		phase(t, ss.T, name, store.PhaseCommitted)
	}
	// ...the coalesced one is.
	ss.T.SetShardSource(shard, revs[0], nil)
	for _, name := range names {
		phase(t, ss.T, name, store.PhaseSourceFetched)
	}
}

// TestQueueRetriesFailures: while publishing fails, commits keep landing (a store
// changed twice among them); once it works, every shard is published, each store
// waits for a revision holding its newest commit, and no shard's artifact went back
// to an older head.
func TestQueueRetriesFailures(t *testing.T) {
	ss, pub, repo := queueFleet(t)
	pub.mu.Lock()
	pub.fails = 12
	pub.mu.Unlock()
	ctx := context.Background()
	names := []string{"r-a", "r-b", "r-c", "r-d", "r-e"}
	commits := map[string]string{}
	for _, name := range names {
		commits[name] = create(t, ss, name)
	}
	out, err := ss.Update(ctx, "r-b", func(s store.Store) (store.Store, error) {
		s.Settings.Title = "changed while the cluster was down"
		return s, nil
	}, store.Meta{Actor: "t", RequestID: "update-r-b"})
	if err != nil {
		t.Fatal(err)
	}
	commits["r-b"] = out.Commit.SHA
	idle(t, ss.Queue)

	pub.mu.Lock()
	attempts := 0
	for _, a := range pub.attempts {
		attempts += a
	}
	left := pub.fails
	pub.mu.Unlock()
	if left != 0 || attempts < 12+1 {
		t.Fatalf("%d attempts, %d failures left: the failures were not retried", attempts, left)
	}
	for _, name := range names {
		carried(t, ss, repo, name, commits[name])
		phase(t, ss.T, name, store.PhaseCommitted)
	}
	for _, name := range names {
		revs := pub.revisions(store.Shard(name))
		for i := 1; i < len(revs); i++ {
			newer, _ := strings.CutPrefix(revs[i], "main@sha1:")
			older, _ := strings.CutPrefix(revs[i-1], "main@sha1:")
			if in, err := repo.Includes(ctx, newer, older); err != nil || !in {
				t.Fatalf("shard %s went from %s to %s", store.Shard(name), revs[i-1], revs[i])
			}
		}
	}
}

// TestQueueCloseHandsOver: a queue closed while its publishes fail stops within its
// deadline and reports what it left; the stores it left wait for the shard's next
// publish (the publisher's pass), which then counts.
func TestQueueCloseHandsOver(t *testing.T) {
	ss, pub, _ := queueFleet(t)
	pub.mu.Lock()
	pub.fails = 1 << 30
	pub.mu.Unlock()
	create(t, ss, "left")
	ctx, cancel := context.WithTimeout(context.Background(), 50e6)
	defer cancel()
	if left := ss.Queue.Close(ctx); left != 1 {
		t.Fatalf("%d shards left, want 1", left)
	}
	shard := store.Shard("left")
	phase(t, ss.T, "left", store.PhaseCommitted)
	// The background pass publishes the shard at the newest head.
	pub.mu.Lock()
	pub.fails = 0
	pub.mu.Unlock()
	rev, err := pub.publish(context.Background(), shard)
	if err != nil {
		t.Fatal(err)
	}
	ss.T.SetShardSource(shard, rev, nil)
	phase(t, ss.T, "left", store.PhaseSourceFetched)
}
