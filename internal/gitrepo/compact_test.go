package gitrepo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/internal/store"
)

// lowerCompaction makes the clone merge its recent packs every few commits and compact
// beyond bound packs, for the test.
func lowerCompaction(t testing.TB, recent, bound int) {
	mp, cp := mergeRecentPacks, compactPacks
	t.Cleanup(func() { mergeRecentPacks, compactPacks = mp, cp })
	mergeRecentPacks, compactPacks = recent, bound
}

// packCounts counts the clone's packs: all of them, and those not recent.
func packCounts(t testing.TB, r *Repo) (all, settled int) {
	t.Helper()
	packs, _ := filepath.Glob(filepath.Join(r.opts.Dir, "objects", "pack", "pack-*.pack"))
	r.recent.mu.RLock()
	recent := len(r.recent.packs)
	r.recent.mu.RUnlock()
	return len(packs), len(packs) - recent
}

// settles waits until the clone holds at most bound packs besides the recent ones,
// with no merge or compaction under way, and says whether it did. Polled, not
// merges.Wait: the writer starts a merge after it answered the batch, and a Wait
// beside that Add is a misuse of the WaitGroup.
func settles(t testing.TB, r *Repo, bound int) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, settled := packCounts(t, r); settled <= bound && !r.recent.merging.Load() {
			return true
		}
	}
	return false
}

func fsckFull(t testing.TB, dir string) {
	t.Helper()
	if out, err := gitCmd(dir, "fsck", "--full", "--strict", "--no-progress", "--no-dangling"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("git fsck --full %s: %v\n%s", dir, err, out)
	}
}

// readsBack opens the clone in dir again and reads every store of names from it.
// cloneWithStores is a disk clone of a new remote over HTTP into which n stores were
// created one commit each.
func cloneWithStores(t *testing.T, n int) (remote, string, *Repo, []string) {
	t.Helper()
	rm := newRemote(t, "http")
	dir := filepath.Join(t.TempDir(), "clone.git")
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	var names []string
	for i := range n {
		name := fmt.Sprintf("shop-%d", i)
		mustOK(t, r.Submit(context.Background(), change("local", name, ActionCreate, 1, "")))
		names = append(names, name)
	}
	return rm, dir, r, names
}

func readsBack(t *testing.T, rm remote, dir string, names []string) {
	t.Helper()
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	defer r.Close()
	ctx := context.Background()
	list, err := r.ListStores(ctx)
	if err != nil || len(list) != len(names) {
		t.Errorf("the clone after a restart lists %d stores (%v), want %d", len(list), err, len(names))
	}
	for _, n := range names {
		if _, files, err := r.Store(ctx, store.Dir("local", n)); err != nil || len(files) == 0 {
			t.Fatalf("the clone after a restart: store %s: %d files, %v", n, len(files), err)
		}
	}
}

// A writer committing one store at a time, merging its recent packs every two commits:
// without compaction the clone gathers a pack per two commits (21 here, and one per
// 128 commits for ever in production). With it the packs other than the recent ones
// stay within the bound, the clone is whole for git, and it reads back every store
// after a restart.
func TestCompactionBoundsPacks(t *testing.T) {
	lowerCompaction(t, 2, 4)
	rm := newRemote(t, "http")
	dir := filepath.Join(t.TempDir(), "clone.git")
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var names []string
	most := 0
	for i := range 40 {
		name := fmt.Sprintf("shop-%02d", i)
		mustOK(t, r.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name)))
		names = append(names, name)
		_, settled := packCounts(t, r)
		most = max(most, settled)
	}
	ok := settles(t, r, compactPacks)
	all, settled := packCounts(t, r)
	t.Logf("packs at the end: %d (%d not recent); at most %d not recent on the way", all, settled, most)
	if !ok {
		t.Errorf("the clone holds %d packs besides the recent ones, want at most %d", settled, compactPacks)
	}
	r.Close()
	fsckFull(t, dir)
	readsBack(t, rm, dir, names)
}

// A clone that never writes still gathers a pack per fetch (other replicas' commits):
// those are compacted too.
func TestCompactionOfFetchedPacks(t *testing.T) {
	lowerCompaction(t, 2, 4)
	rm := newRemote(t, "http")
	w := open(t, rm) // another replica
	dir := filepath.Join(t.TempDir(), "reader.git")
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var names []string
	for i := range 24 {
		name := fmt.Sprintf("elsewhere-%02d", i)
		mustOK(t, w.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name)))
		names = append(names, name)
		if err := r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ok := settles(t, r, compactPacks)
	all, settled := packCounts(t, r)
	t.Logf("packs at the end: %d (%d not recent)", all, settled)
	if !ok || all != settled {
		t.Errorf("the reader holds %d packs (%d not recent), want at most %d and none recent", all, settled, compactPacks)
	}
	r.Close()
	fsckFull(t, dir)
	readsBack(t, rm, dir, names)
}

// Close waits for a compaction under way, which completes, and leaves no goroutine of
// it behind.
func TestCloseWaitsForCompaction(t *testing.T) {
	lowerCompaction(t, 1, 1<<20)
	rm, dir, r, names := cloneWithStores(t, 8)
	r.Close()
	// Opened again with the hook set, so that no merge the writer started after its
	// last answer runs while the test changes what compactions read.
	entered, release := make(chan struct{}), make(chan struct{})
	compactHook = func() { close(entered); <-release }
	defer func() { compactHook = nil }()
	compactPacks = 2
	r = open(t, rm, func(o *Options) { o.Dir = dir })
	before, _ := packCounts(t, r)
	r.recent.compactDue.Store(true)
	r.maybeCompact()
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("no compaction started")
	}
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while the compaction was under way")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close did not return once the compaction ended")
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*Repo).background") {
		t.Errorf("a compaction goroutine outlived Close:\n%s", stacks)
	}
	after, _ := packCounts(t, r)
	t.Logf("packs: %d before, %d after", before, after)
	if after > compactPacks {
		t.Errorf("%d packs after the compaction Close waited for, want at most %d", after, compactPacks)
	}
	fsckFull(t, dir)
	readsBack(t, rm, dir, names)
}

// A crash after the compacted pack is written and before the packs it replaces are
// removed leaves every object twice; one between its index and its pack leaves an
// index alone. Both clones are whole for git and read back, and the next compaction
// writes each object once.
func TestCompactionCrashLeavesReadableClone(t *testing.T) {
	lowerCompaction(t, 1, 1<<20)
	rm, dir, r, names := cloneWithStores(t, 6)
	r.Close()
	packDir := filepath.Join(dir, "objects", "pack")
	packs, err := r.settledPacks(packDir)
	if err != nil || len(packs) < 3 {
		t.Fatalf("%d packs (%v), want several", len(packs), err)
	}
	objects := distinctObjects(t, dir)

	// The crash before the removals.
	sum, err := writeCompacted(packDir, packs)
	if err != nil {
		t.Fatal(err)
	}
	fsckFull(t, dir)
	readsBack(t, rm, dir, names)

	// The crash between the index and the pack, over the first crash's leftovers.
	sum2, err := writeCompacted(packDir, packs[1:])
	if err != nil {
		t.Fatal(err)
	}
	if sum2 == sum {
		t.Fatal("two compactions of different packs wrote the same pack")
	}
	if err := os.Remove(filepath.Join(packDir, "pack-"+sum2.String()+".pack")); err != nil {
		t.Fatal(err)
	}
	fsckFull(t, dir)

	compactPacks = 1
	r2 := open(t, rm, func(o *Options) { o.Dir = dir })
	r2.maybeCompact()
	r2.recent.merges.Wait()
	r2.Close()
	left, _ := r2.settledPacks(packDir)
	if len(left) != 1 {
		t.Errorf("%d packs after compacting again, want 1", len(left))
	}
	fsckFull(t, dir)
	readsBack(t, rm, dir, names)
	if got, want := distinctObjects(t, dir), objects; got != want {
		t.Errorf("after compacting the duplicates: %d objects, want %d", got, want)
	}
	if got := inPack(t, dir); got != objects {
		t.Errorf("after compacting the duplicates the packs hold %d objects, want each of the %d once", got, objects)
	}
}

// distinctObjects counts the clone's objects, each once.
func distinctObjects(t testing.TB, dir string) int {
	return len(strings.Fields(runGit(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")))
}

// inPack counts the objects of the clone's packs, each as often as it is packed.
func inPack(t testing.TB, dir string) int {
	for l := range strings.SplitSeq(runGit(t, dir, "count-objects", "-v"), "\n") {
		if n, ok := strings.CutPrefix(l, "in-pack: "); ok {
			v, _ := strconv.Atoi(n)
			return v
		}
	}
	return -1
}

// git's own packs hold deltas (OFS_DELTA, a chain of them here); a compaction copies
// them, and where it leaves out a duplicate that a delta is based on, the delta points
// at the copy kept instead. The subset pack is written whole and uncompressed so that
// it is the larger one and goes first: the deltified pack's bases are then mostly
// duplicates.
func TestCompactionKeepsDeltas(t *testing.T) {
	bare := fleetFixture(t, 300)
	dir := filepath.Join(t.TempDir(), "copy.git")
	runGit(t, t.TempDir(), "clone", "-q", "--bare", "--no-local", bare, dir)
	packDir := filepath.Join(dir, "objects", "pack")
	objs := runGitStdin(t, dir, runGit(t, dir, "rev-list", "--objects", "main~1")+"\n",
		"pack-objects", "-q", "--no-reuse-delta", "--depth=0", "--compression=0", filepath.Join(packDir, "pack"))
	if strings.TrimSpace(objs) == "" {
		t.Fatal("pack-objects wrote no pack")
	}
	r := &Repo{opts: Options{Dir: dir}, recent: newRecentObjects()}
	packs, err := r.settledPacks(packDir)
	if err != nil || len(packs) != 2 {
		t.Fatalf("%d packs (%v), want 2", len(packs), err)
	}
	var in int64
	for _, p := range packs {
		in += p.size
	}
	before := inPack(t, dir)
	sum, err := writeCompacted(packDir, packs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packs {
		dropPackFiles(filepath.Join(packDir, "pack-"+p.sum.String()))
	}
	out := filepath.Join(packDir, "pack-"+sum.String())
	st, err := os.Stat(out + ".pack")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("packs of %d bytes in all compacted into %d bytes", in, st.Size())
	verify := runGit(t, dir, "verify-pack", "-v", out+".idx")
	if !strings.Contains(verify, "chain length = 1") {
		t.Errorf("the compacted pack holds no deltas:\n%.600s", verify)
	}
	fsckFull(t, dir)
	if got, want := inPack(t, dir), distinctObjects(t, bare); got != want {
		t.Errorf("the compacted pack holds %d objects, the fleet %d (the packs before: %d)", got, want, before)
	}
}

func TestCompactionSet(t *testing.T) {
	sizes := func(ps []packFile) []int64 {
		var out []int64
		for _, p := range ps {
			out = append(out, p.size)
		}
		return out
	}
	mk := func(s ...int64) []packFile {
		var out []packFile
		for i, v := range s {
			out = append(out, packFile{sum: [20]byte{byte(i)}, size: v})
		}
		return out
	}
	for _, tc := range []struct {
		packs []int64
		bound int
		want  []int64
	}{
		{[]int64{1, 1, 1}, 4, nil},                                // within the bound
		{[]int64{100, 1, 1, 1, 1}, 4, []int64{1, 1, 1, 1}},        // the small ones roll up
		{[]int64{64, 1, 2, 4, 8, 16}, 4, []int64{1, 2, 4, 8, 16}}, // a progression: half the bound is left
		{[]int64{10, 9, 8, 1, 1}, 4, []int64{1, 1, 8, 9, 10}},     // the new pack breaks the rest's progression
		{[]int64{1000, 100, 3, 2, 1, 1, 1}, 6, []int64{1, 1, 1, 2, 3}},
	} {
		got := sizes(compactionSet(mk(tc.packs...), tc.bound, 2))
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("compactionSet(%v, %d) = %v, want %v", tc.packs, tc.bound, got, tc.want)
		}
	}
}

// BenchmarkPackLookup reads objects from a clone of 1,000 packs of 20 objects, as a
// clone gathers them without compaction (merged commits, fetches), and then from the
// same clone compacted, in one run. go-git looks an object up in one pack index after
// another; a miss (an object the clone lacks, as the writer asks of every new one)
// looks in all of them.
func BenchmarkPackLookup(b *testing.B) {
	lowerCompaction(b, 1<<20, 1<<20)
	rm := newRemote(b, "http")
	dir := filepath.Join(b.TempDir(), "clone.git")
	open(b, rm, func(o *Options) { o.Dir = dir }).Close()
	packDir := filepath.Join(dir, "objects", "pack")
	var hashes []plumbing.Hash
	for p := range 1000 {
		objs := newObjectSet()
		for i := range 20 {
			content := fmt.Appendf(nil, "kind: Store\nmetadata:\n  name: shop-%04d-%02d\n", p, i)
			objs.add(&memObject{typ: plumbing.BlobObject, hash: objectHash(plumbing.BlobObject, content), content: content})
		}
		hashes = append(hashes, objs.order...)
		pp, err := objs.packed()
		if err != nil {
			b.Fatal(err)
		}
		if err := writePackNoSync(filepath.Join(packDir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(hashes), func(i, j int) { hashes[i], hashes[j] = hashes[j], hashes[i] })
	sample := hashes[:1000]
	absent := make([]plumbing.Hash, 1000)
	for i := range absent {
		absent[i] = objectHash(plumbing.BlobObject, fmt.Appendf(nil, "absent %d", i))
	}
	r := open(b, rm, func(o *Options) { o.Dir = dir })
	read := func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			r.mu.RLock()
			_, err := r.st.EncodedObject(plumbing.AnyObject, sample[i%len(sample)])
			r.mu.RUnlock()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	miss := func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			r.mu.RLock()
			err := r.st.HasEncodedObject(absent[i%len(absent)])
			r.mu.RUnlock()
			if err == nil {
				b.Fatal("an absent object is there")
			}
		}
	}
	size := func() (n int, bytes int64) {
		packs, _ := r.settledPacks(packDir)
		for _, p := range packs {
			bytes += p.size
		}
		return len(packs), bytes
	}
	n, before := size()
	b.Run(fmt.Sprintf("read/packs=%d", n), read)
	b.Run(fmt.Sprintf("miss/packs=%d", n), miss)
	compactPacks = 32
	r.recent.compactDue.Store(true)
	start := time.Now()
	r.maybeCompact()
	r.recent.merges.Wait()
	took := time.Since(start)
	n2, after := size()
	b.Logf("compacted %d packs (%d bytes) into %d (%d bytes) in %v", n, before, n2, after, took)
	b.Run(fmt.Sprintf("read/compacted/packs=%d", n2), read)
	b.Run(fmt.Sprintf("miss/compacted/packs=%d", n2), miss)
}
