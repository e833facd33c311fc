package publish_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// TestMoveCarriedOnByANewPublisher moves stores from 4,096 shards to 256 through
// the real fleet clone while no publisher that saw the push is left: a new one,
// knowing only what the cluster holds (the artifacts) and Git, must still publish
// each shard that loses a store only after the shard taking it in was waited for.
// Once with nothing of the move published yet, once after the first leader published
// the shard that takes stores in and stopped while waiting for Flux to apply it. The
// stores form a chain (000 ← 00a ← 0a3 ← a3x), so each shard waits for the one before.
func TestMoveCarriedOnByANewPublisher(t *testing.T) {
	for _, tc := range []struct {
		name string
		// crashed: the first leader saw the push and stopped in its first wait.
		crashed bool
	}{{"no publisher at the push", false}, {"leader stopped in the middle", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			url := fleetRemote(t)
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
				pick("stay", func(s string) bool { return s == "000" }),
				pick("near", func(s string) bool { return s == "00a" }),
				pick("mid", func(s string) bool { return s == "0a3" }),
				pick("far", func(s string) bool { return s[:2] == "a3" }),
			}
			layout := func(n int) {
				t.Helper()
				pushLayout(t, work, names, n, fmt.Sprint("at ", n), git)
			}
			layout(4096)
			log := &orderLog{}
			var firstRepo *gitrepo.Repo
			start := func(applied func(context.Context, string, string) error) *publish.Publisher {
				t.Helper()
				repo := openClone(t, url)
				if firstRepo == nil {
					firstRepo = repo
				}
				pub, err := publish.New(publish.Config{Source: repo, Cluster: log, FleetCluster: "local", Dir: t.TempDir(),
					URL: "http://unused", Interval: 1 << 40, Applied: applied})
				if err != nil {
					t.Fatal(err)
				}
				if err := pub.Start(ctx); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(pub.Stop)
				return pub
			}
			first := start(func(context.Context, string, string) error { return errors.New("the leader stopped") })
			if !tc.crashed {
				first.Stop()
			}
			layout(256)
			if tc.crashed {
				// The queue publishes the shard that lost near: the move starts, 000 is
				// published, and the wait for it fails as the leader goes.
				if err := firstRepo.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := first.Publish(ctx, store.Shard(names[1])); err == nil {
					t.Fatal("the first leader's move did not stop at its first wait")
				}
				first.Stop()
				if got := log.index("publish 000"); got < 0 {
					t.Fatalf("the first leader did not publish 000: %v", log.events)
				}
			}
			log.mu.Lock()
			log.events = nil
			log.mu.Unlock()
			start(log.applied)
			for _, name := range names[1:] {
				lost, took := store.Shard(name), store.ShardIn(name, 256)
				a, p := log.index("applied "+took), log.index("publish "+lost)
				if p < 0 || a < 0 || a > p {
					t.Errorf("%s moved %s → %s, but the new publisher did not wait for %s before it published %s: %v",
						name, lost, took, took, lost, log.events)
				}
			}
		})
	}
}
