package publish_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/store"
)

// overlapCluster is memCluster that records, per shard, how many artifact writes are
// in flight at once, and holds the first write of shard hold until another shard's
// write has begun (or a while has passed: then that write fails).
type overlapCluster struct {
	memCluster
	hold     string
	held     chan struct{} // closed when hold's write is waiting
	other    chan struct{} // closed when another shard's write began
	once     sync.Once
	mu       sync.Mutex
	inFlight map[string]int
	overlaps []string // shards written twice at once
}

func (c *overlapCluster) PublishArtifact(ctx context.Context, shard string, a publish.Artifact) error {
	c.mu.Lock()
	c.inFlight[shard]++
	if c.inFlight[shard] > 1 {
		c.overlaps = append(c.overlaps, shard)
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight[shard]--
		c.mu.Unlock()
	}()
	if shard == c.hold {
		first := false
		c.once.Do(func() { first = true })
		if first {
			close(c.held)
			select {
			case <-c.other:
			case <-time.After(20 * time.Second):
				return errors.New("no other shard was published while this one was in flight")
			}
		}
	} else {
		select {
		case <-c.other:
		default:
			close(c.other)
		}
	}
	time.Sleep(time.Millisecond) // a write takes a while: let same-shard publishes meet
	return c.memCluster.PublishArtifact(ctx, shard, a)
}

// Publishes of different shards run at once (a burst's shards do not wait for each
// other's API server round trips), while those of one shard never overlap and each
// shard ends at the newest head: concurrency does not take a shard back. Seen failing
// with the publisher's one lock over every publish: shard B waited for A, which
// waited for B.
func TestPublishesOfDifferentShardsOverlap(t *testing.T) {
	ctx := context.Background()
	repo := openClone(t, fleetRemote(t))
	a, b := "overlap-a", otherShard("overlap-a")
	submit(t, repo, change(t, a, false), change(t, b, false))
	c := &overlapCluster{hold: store.Shard(a), held: make(chan struct{}), other: make(chan struct{}), inFlight: map[string]int{}}
	p, err := publish.New(publish.Config{Source: repo, Cluster: c, FleetCluster: store.DefaultCluster, Dir: t.TempDir(),
		URL: "http://unused", Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	errA := make(chan error, 1)
	go func() {
		_, err := p.Publish(ctx, store.Shard(a))
		errA <- err
	}()
	<-c.held
	if _, err := p.Publish(ctx, store.Shard(b)); err != nil {
		t.Fatal(err)
	}
	if err := <-errA; err != nil {
		t.Fatalf("shard A: %v", err)
	}

	// Many publishes of the same two shards while commits land on both.
	var wg sync.WaitGroup
	for i := range 4 {
		name := a
		if i%2 == 1 {
			name = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := p.Publish(ctx, store.Shard(name)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 5 {
		ca, cb := change(t, a, false), change(t, b, false)
		ca.Action, cb.Action = gitrepo.ActionUpdate, gitrepo.ActionUpdate
		for _, f := range []*[]byte{&ca.Files[0].Content, &cb.Files[0].Content} {
			*f = append(*f, []byte("\n# "+strings.Repeat("x", i+1)+"\n")...)
		}
		ca.RequestID, cb.RequestID = ca.RequestID+"-"+string(rune('a'+i)), cb.RequestID+"-"+string(rune('a'+i))
		submit(t, repo, ca, cb)
	}
	wg.Wait()
	head, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{a, b} {
		rev, err := p.Publish(ctx, store.Shard(name))
		if err != nil {
			t.Fatal(err)
		}
		if rev != "main@sha1:"+head {
			t.Errorf("shard of %s at %s after the last publish, want the head %s", name, rev, head)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.overlaps) > 0 {
		t.Fatalf("one shard's artifact written by two publishes at once: %v", c.overlaps)
	}
}
