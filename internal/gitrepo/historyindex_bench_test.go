package gitrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/internal/store"
)

// BenchmarkHistoryIndexBuild: the history index built from nothing over a disk clone of
// 10,000 stores in 4,096 shards followed by one-store updates (HISTORY_BENCH_UPDATES,
// default 5,000), against git's own pass over every commit's changed paths (`git
// commit-graph write --reachable --changed-paths` on a copy of the same repository) in
// the same run. internal/fleet's benchmark of the same name does it at 100,000 commits
// on the reads fixture; this one builds its fixture in seconds.
func BenchmarkHistoryIndexBuild(b *testing.B) {
	r, src, updates := indexedFixtureClone(b, 10000)
	ctx := context.Background()
	tip := r.currentTip()
	var build, graph time.Duration
	n := 0
	for b.Loop() {
		x := openHistoryIndex("", r.log)
		x.mu.Lock()
		t0 := time.Now()
		err := x.catchUp(ctx, r, tip)
		build += time.Since(t0)
		x.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
		if len(x.seen) < updates {
			b.Fatalf("indexed %d commits, want at least %d", len(x.seen), updates)
		}
		cp := filepath.Join(b.TempDir(), "graph.git")
		if out, err := exec.Command("cp", "-a", src, cp).CombinedOutput(); err != nil {
			b.Fatalf("copy: %v %s", err, out)
		}
		os.RemoveAll(filepath.Join(cp, "objects", "info", "commit-graph"))
		os.RemoveAll(filepath.Join(cp, "objects", "info", "commit-graphs"))
		t0 = time.Now()
		runGit(b, cp, "commit-graph", "write", "--reachable", "--changed-paths")
		graph += time.Since(t0)
		n++
	}
	b.ReportMetric(build.Seconds()/float64(n), "s/index-build")
	b.ReportMetric(graph.Seconds()/float64(n), "s/git-commit-graph")
	b.ReportMetric(build.Seconds()/graph.Seconds(), "x/index-vs-commit-graph")
}

// BenchmarkWalkHistory: one store's whole history by walking the log (what History
// answers while the index is built), over a disk clone of 10,000 stores in 4,096 shards
// created 100 a commit, then one-store updates (HISTORY_BENCH_UPDATES, default 5,000):
// the store changes seldom, so the walk passes every commit, and ns/commit is what the
// fallback costs per commit of the log.
func BenchmarkWalkHistory(b *testing.B) {
	const stores = 10000
	r, _, updates := indexedFixtureClone(b, stores)
	ctx := context.Background()
	name := store.Dir("local", "fixture-00000")
	want := 1 + (updates+stores-1)/stores
	for b.Loop() {
		h, err := r.walkHistory(ctx, name, plumbing.ZeroHash, false, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(h) != want {
			b.Fatalf("%d changes, want %d", len(h), want)
		}
	}
	commits := stores/100 + 1 + updates
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(commits), "ns/commit")
}

// indexedFixtureClone opens a disk clone of historyFixture's fleet (stores stores,
// HISTORY_BENCH_UPDATES updates, default 5,000) once Open's own index build is done,
// so that it is out of the way of what is measured; Close is the benchmark's cleanup.
func indexedFixtureClone(b *testing.B, stores int) (r *Repo, src string, updates int) {
	b.Helper()
	updates = 5000
	if v, err := strconv.Atoi(os.Getenv("HISTORY_BENCH_UPDATES")); err == nil && v > 0 {
		updates = v
	}
	src = historyFixture(b, stores, updates)
	dir := filepath.Join(b.TempDir(), "clone.git")
	if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		b.Fatalf("copy: %v %s", err, out)
	}
	runGit(b, dir, "update-ref", "refs/remotes/origin/main", "refs/heads/main")
	r, err := Open(context.Background(), Options{URL: src, Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	for !r.HistoryIndexed() {
		time.Sleep(50 * time.Millisecond)
	}
	return r, src, updates
}
