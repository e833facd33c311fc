package gitrepo

import (
	"errors"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/storefleet/storefleet/internal/store"
)

// After a start namedCache is empty, so the first change with Unshared would read
// every store folder of its cluster while the writer commits nothing else: 0.74 s at
// 1,000 stores, 3.6 s at 10,000 (docs/benchmarks.md). So Open has warmNamed read
// them in the background, at the tip the clone has then (or the first one fetched,
// for a clone that had none), for every cluster with shared files: the answers that
// first change would have kept. It follows the tenant count's warm-up
// (warmtenants.go, only where a quota is configured), in the same goroutine (warmUp).
//
// It must stall neither the writer nor the readers: it holds mu for reading only, a
// few folders at a time (warmChunk), so a commit waiting to move the tip takes the
// lock between two chunks (a waiting writer also holds off the next chunk's read
// lock). It ends when the Repo closes: it looks between chunks, and Close waits for
// it.
//
// Nothing it keeps can be wrong, whatever the tip does meanwhile: an answer is kept
// by the tree hash it was read from, and a tree is its content. Folders and shards
// that changed since are not found in the cache and are read by the change that needs
// them, as they would be without the warm-up. It never keeps its answers as complete,
// which would replace the cache: they are of a tree that may no longer be the tip,
// and a change may have kept answers for a newer one meanwhile. The writer's next
// complete scan drops what it kept for folders since gone.
//
// A change that arrives before the warm-up ends does not wait for it: it uses what
// the warm-up kept so far (each chunk is kept as it is read) and reads the rest
// itself, as before the warm-up existed. Waiting would tie the writer to a
// background task's pace, and could not be done in build, which holds mu for
// reading: a tip move waiting for the write lock holds off the warm-up's next read
// lock. It is the warm-up that waits, between chunks, while a change's scan runs
// (namedCache.scans): reading at once, the two went at about half speed each, and a
// removal sent right after Open took as long as the cold scan or longer
// (BenchmarkUnsharedDelete). Now it costs about what the cold scan did, less what
// the warm-up had read before it came.

// warmChunk is how many store folders the warm-up reads under one read lock: ~6 ms
// at the 0.36 ms a folder the cold scan took.
const warmChunk = 16

// warmYield is how often a warm-up waiting for a change's scan looks again.
const warmYield = 5 * time.Millisecond

var errWarmStopped = errors.New("gitrepo: the repository closed during the warm-up")

// testHookWarmChunk, when set by a test, runs before each chunk the warm-up reads.
var testHookWarmChunk func()

// warmUp runs the warm-ups after Open at one tip, one after the other: the tenant
// count (warmtenants.go), the shorter, and the one the commonest change (a create
// near its tenant's limit) waits for, then the shared-file names. Two readers of
// every folder at once would only slow each other on a small machine. Without a
// quota (Options.TenantQuota) the tenant count is skipped, so the names come at
// once. Close waits for it.
func (r *Repo) warmUp() {
	defer close(r.warmed)
	tip := r.currentTip()
	if tip.IsZero() {
		// An empty clone (OpenBackground while the remote is down): the first
		// fetch brings the tip.
		select {
		case <-r.synced:
		case <-r.closing:
			return
		}
		if tip = r.currentTip(); tip.IsZero() {
			return // an empty fleet: nothing to read
		}
	}
	r.warmTenants(tip)
	select {
	case <-r.closing:
		return
	default:
	}
	r.warmNamed(tip)
}

// warmNamed fills namedCache in the background, at tip.
func (r *Repo) warmNamed(tip plumbing.Hash) {
	start := time.Now()
	n, err := r.warmAt(tip)
	switch {
	case errors.Is(err, errWarmStopped):
	case err != nil:
		// The change that needs the folders reads them itself, and warns if that
		// fails too.
		r.log.Debug("gitrepo: warming the shared-file cache failed; the first removal reads the store folders itself",
			"tip", tip, "folders", n, "err", err)
	default:
		r.log.Debug("gitrepo: shared-file cache warm", "tip", tip, "folders", n, "took", time.Since(start))
	}
}

// warmCluster is what the warm-up reads of one cluster: its shards, each folder
// searched for the cluster's shared files (look, and as a set, checked).
type warmCluster struct {
	name    string
	shards  []plumbing.Hash
	look    []string
	checked map[string]bool
}

// warmAt reads, at tip, what each store folder and shard of the clusters with
// shared files names. It returns how many folders it read.
func (r *Repo) warmAt(tip plumbing.Hash) (int, error) {
	clusters, err := r.warmPlan(tip)
	if err != nil {
		return 0, err
	}
	read := 0
	for _, c := range clusters {
		for _, sh := range c.shards {
			n, err := r.warmShard(sh, c)
			read += n
			if err != nil {
				return read, err
			}
		}
	}
	return read, nil
}

// warmPlan lists the clusters at tip with shared files, and their shards: a few
// small trees and the clusters', under one read lock.
func (r *Repo) warmPlan(tip plumbing.Hash) ([]warmCluster, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	root, err := r.commitRoot(tip)
	if err != nil {
		return nil, err
	}
	storesTree, err := lookupTree(r.st, root, store.StoresRoot)
	if err != nil || storesTree.IsZero() {
		return nil, err
	}
	clusters, err := rawEntries(r.st, storesTree)
	if err != nil {
		return nil, err
	}
	var out []warmCluster
	for _, ce := range clusters {
		if !ce.dir {
			continue
		}
		c, err := r.warmCluster(root, string(ce.name), ce.hash)
		if err != nil {
			return nil, err
		}
		if len(c.look) > 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

// warmCluster lists one cluster's shared files and shards. A cluster without shared
// files has nothing a removal could ask about: no folder of it is read. Callers hold
// mu (read).
func (r *Repo) warmCluster(root plumbing.Hash, cluster string, tree plumbing.Hash) (warmCluster, error) {
	c := warmCluster{name: cluster, checked: map[string]bool{}}
	sources, err := lookupTree(r.st, root, store.ChartSourcesDir(cluster))
	if err != nil || sources.IsZero() {
		return c, err
	}
	files, err := rawEntries(r.st, sources)
	if err != nil {
		return c, err
	}
	for _, f := range files {
		if name, ok := strings.CutSuffix(string(f.name), ".yaml"); ok && !f.dir {
			c.look = append(c.look, name)
			c.checked[name] = true
		}
	}
	if len(c.look) == 0 {
		return c, nil
	}
	shards, err := rawEntries(r.st, tree)
	if err != nil {
		return c, err
	}
	for _, sh := range shards {
		if sh.dir {
			c.shards = append(c.shards, sh.hash)
		}
	}
	return c, nil
}

// warmShard reads the store folders of one shard that the cache cannot answer,
// warmChunk at a time, keeping each chunk's answers, then the shard's. It returns
// how many folders it read.
func (r *Repo) warmShard(shard plumbing.Hash, c warmCluster) (int, error) {
	if _, ok := r.named.lookup(c.name, shard, c.look); ok {
		return 0, nil
	}
	r.mu.RLock()
	entries, err := rawEntries(r.st, shard)
	r.mu.RUnlock()
	if err != nil {
		return 0, err
	}
	var folders []plumbing.Hash
	for _, e := range entries {
		if e.dir {
			folders = append(folders, e.hash)
		}
	}
	answer := folderNames{checked: c.checked}
	read := 0
	for start := 0; start < len(folders); start += warmChunk {
		if err := r.warmPause(); err != nil {
			return read, err
		}
		visited, n, err := r.warmFolders(folders[start:min(start+warmChunk, len(folders))], c)
		read += n
		if err != nil {
			return read, err
		}
		r.named.keep(c.name, visited, false)
		for _, fn := range visited {
			answer = answer.with(fn)
		}
	}
	r.named.keep(c.name, map[plumbing.Hash]folderNames{shard: answer}, false)
	return read, nil
}

// warmFolders answers for each of folders, from the cache or by reading it, under
// one read lock. It returns the answers and how many folders it read.
func (r *Repo) warmFolders(folders []plumbing.Hash, c warmCluster) (map[plumbing.Hash]folderNames, int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	visited := make(map[plumbing.Hash]folderNames, len(folders))
	read := 0
	for _, h := range folders {
		fn, ok := r.named.lookup(c.name, h, c.look)
		if !ok {
			var err error
			if fn, err = readFolder(r.stored, h, c.look, c.checked); err != nil {
				return nil, read, err
			}
			read++
			r.named.warmReads.Add(1)
		}
		visited[h] = fn
	}
	return visited, read, nil
}

// warmPause comes between two chunks: where the warm-up stops once the Repo closes,
// and waits while a change scans.
func (r *Repo) warmPause() error {
	return r.warmWait(func() bool { return r.named.scans.Load() != 0 })
}

// warmWait is where a warm-up stops once the Repo closes, and waits while busy
// (nil: never).
func (r *Repo) warmWait(busy func() bool) error {
	if testHookWarmChunk != nil {
		testHookWarmChunk()
	}
	for {
		select {
		case <-r.closing:
			return errWarmStopped
		default:
		}
		if busy == nil || !busy() {
			return nil
		}
		t := time.NewTimer(warmYield)
		select {
		case <-r.closing:
			t.Stop()
			return errWarmStopped
		case <-t.C:
		}
	}
}

// rawEntries lists the encoded tree h. Callers hold mu (read).
func rawEntries(st storer.EncodedObjectStorer, h plumbing.Hash) ([]rawTreeEntry, error) {
	raw, err := readRawTree(st, h)
	if err != nil {
		return nil, err
	}
	return splitRawTree(raw)
}

// splitRawTree lists the entries of an encoded tree.
func splitRawTree(raw []byte) ([]rawTreeEntry, error) {
	var out []rawTreeEntry
	for off := 0; off < len(raw); {
		e, err := nextRawEntry(raw, off)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		off = e.end
	}
	return out, nil
}
