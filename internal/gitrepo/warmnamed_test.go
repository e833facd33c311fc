package gitrepo

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/githttp"
	"github.com/storefleet/storefleet/internal/store"
)

// warmFleet creates n stores on version 1.0 and one, "last", on 2.0, then closes
// the writer: the fleet a restart finds, with a clone on disk in dir.
func warmFleet(t *testing.T, rm remote, dir string, n int) {
	t.Helper()
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	ctx := context.Background()
	var creates []Change
	for i := range n {
		creates = append(creates, onVersion(change("local", fmt.Sprintf("shop-%d", i), ActionCreate, 1, fmt.Sprintf("c%d", i)), "1.0"))
	}
	creates = append(creates, onVersion(change("local", "last", ActionCreate, 1, "last-c"), "2.0"))
	for start := 0; start < len(creates); start += 100 {
		for _, res := range r.SubmitAll(ctx, creates[start:min(start+100, len(creates))]) {
			mustOK(t, res)
		}
	}
	r.Close()
}

func waitWarm(t *testing.T, r *Repo) {
	t.Helper()
	select {
	case <-r.warmed:
	case <-time.After(time.Minute):
		t.Fatal("the warm-up did not end within a minute")
	}
}

// After a start, the writer learns what every store folder names in the
// background, without a delete asking: the first removal after it, and the first
// kept delete, read no store folder, and decide as a cold scan would. A source
// that appeared after the warm-up is still looked for in every folder.
func TestUnsharedWarmAfterOpen(t *testing.T) {
	const n = 300
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	warmFleet(t, rm, dir, n)

	r := open(t, rm, func(o *Options) { o.Dir = dir })
	waitWarm(t, r)
	if got := r.named.warmReads.Load(); got != n+1 {
		t.Fatalf("the warm-up read %d store folders, want all %d", got, n+1)
	}
	ctx := context.Background()
	last := change("local", "last", ActionDelete, 1, "last-d")
	last.Unshared = []string{sourcePath("2.0")}
	if res := mustOK(t, r.Submit(ctx, last)); len(res.Unshared) != 1 || hasSource(t, rm, "main", "2.0") {
		t.Fatalf("deleting the last 2.0 store removed %v", res.Unshared)
	}
	kept := change("local", "shop-0", ActionDelete, 1, "d0")
	kept.Unshared = []string{sourcePath("1.0")}
	if res := mustOK(t, r.Submit(ctx, kept)); len(res.Unshared) != 0 || !hasSource(t, rm, "main", "1.0") {
		t.Fatalf("deleting shop-0 removed %v; %d stores still use 1.0", res.Unshared, n-1)
	}
	// A delete keeps its folder with new content, which only that delete can read.
	if got := r.named.reads.Load(); got > 2 {
		t.Fatalf("the first deletes after the warm-up read %d store folders, want at most their own 2", got)
	}

	// 3.0 was no shared file when the warm-up read the folders: its removal reads
	// every one of the n+2 (and shows that reads counts them).
	mustOK(t, r.Submit(ctx, onVersion(change("local", "new", ActionCreate, 1, "new-c"), "3.0")))
	fresh := change("local", "new", ActionDelete, 1, "new-d")
	fresh.Unshared = []string{sourcePath("3.0")}
	before := r.named.reads.Load()
	if res := mustOK(t, r.Submit(ctx, fresh)); len(res.Unshared) != 1 {
		t.Fatalf("deleting the only 3.0 store removed %v", res.Unshared)
	}
	if got := r.named.reads.Load() - before; got != n+2 {
		t.Fatalf("the removal of a source newer than the warm-up read %d store folders, want all %d", got, n+2)
	}
}

// slowWarmUp makes each chunk of the warm-up take pause, and reports on the
// returned channel when the first one starts.
func slowWarmUp(t *testing.T, pause time.Duration) <-chan struct{} {
	started := make(chan struct{})
	var once sync.Once
	testHookWarmChunk = func() {
		once.Do(func() { close(started) })
		time.Sleep(pause)
	}
	t.Cleanup(func() { testHookWarmChunk = nil })
	return started
}

// A Close during the warm-up returns at once (after the chunk being read) and
// leaves no goroutine behind.
func TestUnsharedWarmUpStopsOnClose(t *testing.T) {
	const n = 200
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	warmFleet(t, rm, dir, n)
	started := slowWarmUp(t, 20*time.Millisecond)

	r := open(t, rm, func(o *Options) { o.Dir = dir })
	select {
	case <-started:
	case <-time.After(time.Minute):
		t.Fatal("the warm-up did not start")
	}
	t0 := time.Now()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took > time.Second {
		t.Fatalf("Close took %v during the warm-up", took)
	}
	select {
	case <-r.warmed:
	default:
		t.Fatal("Close returned before the warm-up ended")
	}
	if got := r.named.warmReads.Load(); got >= n {
		t.Fatalf("the warm-up read %d of %d folders: it was not stopped", got, n+1)
	}
	// Close returns once the warm-up has closed warmed, from a deferred call: the
	// goroutine may still be on its way out for a moment, as goleak allows too.
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		g := warmGoroutine()
		if g == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a warm-up goroutine outlived Close:\n%s", g)
		}
	}
}

// Deletes that arrive while the warm-up reads decide as a cold scan would: they
// use what it has kept so far and read the rest themselves.
func TestUnsharedDuringWarmUp(t *testing.T) {
	const n = 150
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	warmFleet(t, rm, dir, n)
	started := slowWarmUp(t, 10*time.Millisecond)

	r := open(t, rm, func(o *Options) { o.Dir = dir })
	<-started
	ctx := context.Background()
	for i := 1; i < n; i += 10 {
		kept := change("local", fmt.Sprintf("shop-%d", i), ActionDelete, 1, fmt.Sprintf("d%d", i))
		kept.Unshared = []string{sourcePath("1.0")}
		if res := mustOK(t, r.Submit(ctx, kept)); len(res.Unshared) != 0 {
			t.Fatalf("deleting shop-%d removed %v; other stores still use 1.0", i, res.Unshared)
		}
	}
	last := change("local", "last", ActionDelete, 1, "last-d")
	last.Unshared = []string{sourcePath("2.0"), sourcePath("1.0")}
	if res := mustOK(t, r.Submit(ctx, last)); len(res.Unshared) != 1 || res.Unshared[0] != sourcePath("2.0") {
		t.Fatalf("deleting the last 2.0 store removed %v, want only %s", res.Unshared, sourcePath("2.0"))
	}
	select {
	case <-r.warmed:
		t.Log("the warm-up ended before the deletes did")
	default:
	}
	waitWarm(t, r)
	if !hasSource(t, rm, "main", "1.0") || hasSource(t, rm, "main", "2.0") {
		t.Fatal("the fleet's sources are not 1.0 alone")
	}
}

// inCluster moves c, made by onVersion, to cluster, its shared source with it.
func inCluster(c Change, cluster string) Change {
	c.Cluster, c.Dir = cluster, store.Dir(cluster, c.Store)
	for i, f := range c.Shared {
		c.Shared[i].Path = store.ChartSourcesDir(cluster) + "/" + path.Base(f.Path)
	}
	for i, p := range c.Unshared {
		c.Unshared[i] = store.ChartSourcesDir(cluster) + "/" + path.Base(p)
	}
	return c
}

// A removal in one cluster, which scans all of its folders and replaces what the
// cache holds for it, leaves what the warm-up read of the other clusters: the
// first removal there reads no folder either.
func TestUnsharedWarmKeepsOtherClusters(t *testing.T) {
	const n = 60
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	ctx := context.Background()
	var creates []Change
	for _, cluster := range []string{"local", "east"} {
		for i := range n {
			creates = append(creates, inCluster(onVersion(change("local", fmt.Sprintf("%s-%d", cluster, i), ActionCreate, 1, fmt.Sprintf("%s-c%d", cluster, i)), "1.0"), cluster))
		}
		creates = append(creates, inCluster(onVersion(change("local", cluster+"-last", ActionCreate, 1, cluster+"-last-c"), "2.0"), cluster))
	}
	for _, res := range r.SubmitAll(ctx, creates) {
		mustOK(t, res)
	}
	r.Close()

	r = open(t, rm, func(o *Options) { o.Dir = dir })
	waitWarm(t, r)
	if got := r.named.warmReads.Load(); got != 2*(n+1) {
		t.Fatalf("the warm-up read %d store folders, want all %d of both clusters", got, 2*(n+1))
	}
	for _, cluster := range []string{"local", "east"} {
		before := r.named.reads.Load()
		last := change("local", cluster+"-last", ActionDelete, 1, cluster+"-last-d")
		last.Unshared = []string{sourcePath("2.0")}
		if res := mustOK(t, r.Submit(ctx, inCluster(last, cluster))); len(res.Unshared) != 1 {
			t.Fatalf("deleting the last 2.0 store of %s removed %v", cluster, res.Unshared)
		}
		// Its own folder, with new content, is the one it reads.
		if got := r.named.reads.Load() - before; got != 1 {
			t.Fatalf("the first removal in %s read %d store folders, want only its own", cluster, got)
		}
	}
}

// A start with the remote down and no clone has no tip to warm: the warm-up waits
// for the first fetch, and warms the tip it brings.
func TestUnsharedWarmAfterBackgroundSync(t *testing.T) {
	const n = 40
	srv, url := serveFleet(t, "", "")
	warmFleet(t, remote{kind: "http", url: url}, filepath.Join(t.TempDir(), "clone.git"), n)
	addr := strings.TrimPrefix(srv.URL(), "http://")
	srv.Close()

	r, err := OpenBackground(context.Background(), Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	back, err := githttp.New(srv.Root)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.StartAt(addr); err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	waitWarm(t, r)
	if got := r.named.warmReads.Load(); got != n+1 {
		t.Fatalf("the warm-up read %d store folders once synced, want all %d", got, n+1)
	}
}

// warmGoroutine is the stack of a goroutine running the warm-ups, if any.
func warmGoroutine() string {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, ").warmUp(") {
			return g
		}
	}
	return ""
}
