package publish_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// orderLog records, in order, each shard published and each wait for a shard to be
// applied.
type orderLog struct {
	memCluster
	mu     sync.Mutex
	events []string
}

func (o *orderLog) add(e string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

func (o *orderLog) PublishArtifact(ctx context.Context, shard string, a publish.Artifact) error {
	o.add("publish " + shard)
	return o.memCluster.PublishArtifact(ctx, shard, a)
}

func (o *orderLog) applied(_ context.Context, shard, _ string) error {
	o.add("applied " + shard)
	return nil
}

func (o *orderLog) index(e string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, x := range o.events {
		if x == e {
			return i
		}
	}
	return -1
}

// TestMoveWaitsForTheShardsThatTakeStoresIn moves stores from 4,096 shards to 256
// and back, through the real fleet clone: each shard that loses a store is published
// only after the shard that takes it in was published and waited for, in both
// directions (towards smaller shard names, then larger).
func TestMoveWaitsForTheShardsThatTakeStoresIn(t *testing.T) {
	ctx := context.Background()
	url := fleetRemote(t)
	repo := openClone(t, url)
	work := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		if _, err := testenv.Git(ctx, work, args...); err != nil {
			t.Fatal(err)
		}
	}
	git("clone", "--quiet", url, ".")
	pick := func(prefix string, want func(string) bool) string {
		for i := 0; ; i++ {
			if n := fmt.Sprintf("%s-%d", prefix, i); want(store.Shard(n)) {
				return n
			}
		}
	}
	names := []string{
		pick("near", func(s string) bool { return s > "000" && s < "010" }),
		pick("mid", func(s string) bool { return s >= "010" && s < "100" }),
		pick("far", func(s string) bool { return s >= "100" }),
	}
	layout := func(n int, msg string) {
		t.Helper()
		pushLayout(t, work, names, n, msg, git)
		if err := repo.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	layout(4096, "at 4,096")
	log := &orderLog{}
	pub, err := publish.New(publish.Config{Source: repo, Cluster: log, FleetCluster: "local", Dir: t.TempDir(),
		URL: "http://unused", Interval: 1 << 40, Applied: log.applied})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()

	for _, n := range []int{256, 4096} {
		from := map[string]string{}
		for _, name := range names {
			from[name] = store.ShardIn(name, 4096+256-n)
		}
		log.mu.Lock()
		log.events = nil
		log.mu.Unlock()
		layout(n, fmt.Sprintf("to %d", n))
		// The queue publishes the shard of the first store, which lost it: the whole
		// move goes out in order.
		if _, err := pub.Publish(ctx, from[names[0]]); err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			lost, took := from[name], store.ShardIn(name, n)
			a, p := log.index("applied "+took), log.index("publish "+lost)
			if a < 0 || p < 0 || a > p {
				t.Errorf("to %d shards: %s moved %s → %s, but its new shard was not applied before the old one was published: %v",
					n, name, lost, took, log.events)
			}
		}
	}
}

// pushLayout commits, in the clone at work, a folder for each of names at a fleet of
// n shards (and n in the shards file, as `gitops-api reshard` commits them), in place
// of every store folder there was, and pushes it.
func pushLayout(t *testing.T, work string, names []string, n int, msg string, git func(...string)) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(work, "stores")); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		p := filepath.Join(work, filepath.FromSlash(store.DirIn("local", name, n)), "kustomization.yaml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("resources: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, store.ShardsFile), store.FormatShards(n), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "--all")
	git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "--quiet", "-m", msg)
	git("push", "--quiet", "origin", "HEAD:main")
}
