package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// fetch brings the clone to the remote branch's tip: one upload-pack exchange wanting
// the tip and having ours, so only new objects travel. It also indexes the new commits'
// Request-Ids. Fetches and tip moves are serialized by syncMu; the object storage is
// locked only while the parsed objects are stored.
func (r *Repo) fetch(ctx context.Context) error {
	return r.red.err(r.fetchTip(ctx))
}

func (r *Repo) fetchTip(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	sess, err := r.uploadPackSession()
	if err != nil {
		return fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
	}
	want, ok := ar.References[r.branchRef.String()]
	if !ok {
		return nil // the first commit creates the branch
	}
	r.mu.RLock()
	tip := r.tip
	haveWant := r.st.HasEncodedObject(want) == nil
	r.mu.RUnlock()
	if want == tip {
		return nil
	}
	if !haveWant {
		depth := 0
		if r.shallowStart(ar.Capabilities) {
			depth = r.firstFetchDepth() // the rest follows in the background (shallow.go)
		}
		// While the history is still loading, the server must know where the clone
		// ends: our have stands for its history down to the boundary only.
		if err := r.fetchObjects(ctx, sess, ar.Capabilities, want, tip, r.shallowBoundary(), depth); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idx.walk(r.st, want, r.opts.IdempotencyDepth)
	r.setTip(want)
	return nil
}

// fetchObjects brings want and what it needs into the object storage, in one
// upload-pack exchange that has have (zero: nothing in common yet). A depth above zero
// fetches that many commits of history only and records the boundary the server
// names (shallow.go).
//
// shallows is the clone's shallow boundary, sent as git's own client sends it from a
// shallow clone ("shallow <sha>" lines): without them upload-pack takes the have for
// its whole history and may leave out any object reachable from it (it does when it
// packs from reachability bitmaps), even one the clone never received because it lies
// behind the boundary (a blob a new commit restores).
// Without a depth the server answers no shallow-info section (upload-pack sends one
// only for deepen requests), which is what go-git's decoder expects: it reads one only
// when Depth is set.
func (r *Repo) fetchObjects(ctx context.Context, sess transport.UploadPackSession, caps *capability.List, want, have plumbing.Hash, shallows []plumbing.Hash, depth int) error {
	req := packp.NewUploadPackRequestFromCapabilities(caps)
	if r.opts.Dir != "" {
		// The pack is kept as received; it must hold its own delta bases.
		req.Capabilities.Delete(capability.ThinPack)
	}
	if caps.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	req.Wants = []plumbing.Hash{want}
	if !have.IsZero() {
		req.Haves = []plumbing.Hash{have}
	}
	if len(shallows) > 0 {
		if !caps.Supports(capability.Shallow) {
			// Only a smart server that offers shallow fetches made the boundary.
			return fmt.Errorf("gitrepo: fetch %s: the clone is shallow and the server offers no shallow fetches", r.red.shown)
		}
		_ = req.Capabilities.Set(capability.Shallow)
		req.Shallows = append([]plumbing.Hash(nil), shallows...)
	}
	if depth > 0 {
		_ = req.Capabilities.Set(capability.Shallow)
		req.Depth = packp.DepthCommits(depth)
	}
	resp, err := sess.UploadPack(ctx, req)
	if err != nil {
		return fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
	}
	defer resp.Close()
	var rd io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		rd = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		rd = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	pp, err := readPack(rd, r.readObject)
	if err != nil {
		return fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
	}
	if err := r.storePack(pp); err != nil {
		return err
	}
	// The boundary is recorded once the objects are stored: a clone marked shallow
	// always holds its boundary commits.
	return r.recordShallow(resp.Shallows, resp.Unshallows)
}

// readObject returns a stored object's content (delta bases of thin packs).
func (r *Repo) readObject(h plumbing.Hash) (plumbing.ObjectType, []byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o, err := r.st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return 0, nil, err
	}
	rd, err := o.Reader()
	if err != nil {
		return 0, nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	return o.Type(), b, err
}

// storePack keeps a fetched pack: as objects in memory, or on disk as the pack itself
// plus its index (go-git's storage then reads it like any pack).
func (r *Repo) storePack(pp *parsedPack) error {
	if r.opts.Dir == "" {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, o := range pp.objects {
			if _, err := r.st.SetEncodedObject(&memObject{typ: o.typ, hash: o.hash, content: o.content}); err != nil {
				return err
			}
		}
		return nil
	}
	dir := filepath.Join(r.opts.Dir, "objects", "pack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return storageErr("write fetched pack to the clone", err)
	}
	// Until the pack and its index are both in place the clone's tip does not move;
	// a failed write removes what it began, and the next fetch asks for all of it again.
	if err := writePack(filepath.Join(dir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
		return storageErr("write fetched pack to the clone", err)
	}
	// Every fetch adds a pack: compacted beside the fetch (compact.go).
	r.recent.compactDue.Store(true)
	defer r.maybeCompact()
	r.mu.Lock()
	defer r.mu.Unlock()
	// go-git loads the pack list once; a new storage sees the new pack.
	r.st = r.diskStorage(r.opts.Dir)
	return nil
}

// Fetches lets readers ask for the remote as it is now: a store another replica
// acknowledged a moment ago must be found here too. Callers that ask while a fetch is
// under way wait for the next one (the one under way may have read the remote's refs
// before their store landed), and all of them share it; fetches start at most once per
// gap, so a burst of misses (a client polling for a name nobody created) costs the
// remote one upload-pack exchange per gap, not one per request.
type Fetches struct {
	r   *Repo
	gap time.Duration

	mu      sync.Mutex
	leading bool          // a caller is waiting out the gap or fetching
	started uint64        // fetches begun
	done    uint64        // the newest fetch finished
	err     error         // its result
	last    time.Time     // when it began
	changed chan struct{} // closed when a fetch finishes
}

// NewFetches returns the coalescing fetcher of r, starting fetches at most once per
// gap.
func (r *Repo) NewFetches(gap time.Duration) *Fetches {
	return &Fetches{r: r, gap: gap, changed: make(chan struct{})}
}

// Fresh returns once a fetch that began after the call has finished, with its error.
func (f *Fetches) Fresh(ctx context.Context) error {
	f.mu.Lock()
	want := f.started + 1
	for {
		if f.done >= want {
			err := f.err
			f.mu.Unlock()
			return err
		}
		if !f.leading {
			f.leading = true
			wait := f.gap - time.Since(f.last)
			f.mu.Unlock()
			f.lead(ctx, wait)
			if err := ctx.Err(); err != nil {
				return err
			}
			f.mu.Lock()
			continue
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		f.mu.Lock()
	}
}

// lead waits out the gap and runs one fetch for every caller waiting. The fetch itself
// is not cut short by the leader's context: the others wait on it.
func (f *Fetches) lead(ctx context.Context, wait time.Duration) {
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			f.mu.Lock()
			f.leading = false
			close(f.changed) // another waiter takes the lead
			f.changed = make(chan struct{})
			f.mu.Unlock()
			return
		}
	}
	f.mu.Lock()
	f.started++
	n := f.started
	f.last = time.Now()
	f.mu.Unlock()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	err := f.r.fetch(fctx)
	cancel()
	f.mu.Lock()
	f.done, f.err, f.leading = n, err, false
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// fetchTimeout bounds one shared fetch, so a remote that never answers does not hold
// its waiters (and every later one) for ever.
const fetchTimeout = 30 * time.Second

// ChangedStores lists the store folders (stores/<cluster>/<shard>/<name>) whose tree
// differs between commits from and to, including those added or removed, sorted. It
// walks only the subtrees that differ, so a commit touching one store reads a handful of
// trees at any fleet size. An empty from (or one the clone does not hold) compares to
// nothing: every folder at to is listed.
func (r *Repo) ChangedStores(ctx context.Context, from, to string) ([]string, error) {
	trees, err := r.ChangedStoreTrees(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(trees))
	for d := range trees {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

// ChangedStoreTrees is ChangedStores with each folder's tree hash at to ("" where
// the folder is gone there): the same tree as Result.Tree of the change that wrote
// it, so a follower can tell a folder still as its own commit left it.
func (r *Repo) ChangedStoreTrees(ctx context.Context, from, to string) (map[string]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	root := func(c string) (plumbing.Hash, error) {
		if c == "" {
			return plumbing.ZeroHash, nil
		}
		cm, err := object.GetCommit(r.st, plumbing.NewHash(c))
		if err != nil {
			return plumbing.ZeroHash, err
		}
		return lookupTree(r.st, cm.TreeHash, "stores")
	}
	a, err := root(from)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		a, err = plumbing.ZeroHash, nil
	}
	if err != nil {
		return nil, err
	}
	b, err := root(to)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	raw := func(h plumbing.Hash) ([]byte, error) { return readRawTree(r.st, h) }
	err = walkChangedFolders(ctx, raw, a, b, func(dir string, tree plumbing.Hash) { out[dir] = hashString(tree) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dirEntries maps the sub-folders of tree h (zero: none) to their trees.
func dirEntries(s storer.EncodedObjectStorer, h plumbing.Hash) (map[string]plumbing.Hash, error) {
	out := map[string]plumbing.Hash{}
	if h.IsZero() {
		return out, nil
	}
	t, err := object.GetTree(s, h)
	if err != nil {
		return nil, err
	}
	for _, e := range t.Entries {
		if e.Mode == filemode.Dir {
			out[e.Name] = e.Hash
		}
	}
	return out, nil
}

// includesSkew is how far apart two writers' clocks may be for Includes.
const includesSkew = 10 * time.Minute

// Includes reports whether commit is rev or one of its ancestors: whether a shard
// artifact built at rev carries commit. A rev the clone does not hold yet is
// ErrNotFound (fetch, then ask again).
func (r *Repo) Includes(ctx context.Context, rev, commit string) (bool, error) {
	if rev == commit {
		return true, nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	top, err := object.GetCommit(r.st, plumbing.NewHash(rev))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return false, fmt.Errorf("%w: commit %s", ErrNotFound, rev)
	}
	if err != nil {
		return false, err
	}
	want, err := object.GetCommit(r.st, plumbing.NewHash(commit))
	if err != nil {
		return false, err
	}
	// Commit times order commits only as well as the replicas' clocks agree, so the
	// walk stops at commits older than the one looked for by more than a skew no
	// cluster keeps: that bounds the common "not yet" answer without missing a
	// commit made on a clock running behind.
	floor := want.Committer.When.Add(-includesSkew)
	seen := map[plumbing.Hash]bool{}
	queue := []*object.Commit{top}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		c := queue[0]
		queue = queue[1:]
		if c.Hash == want.Hash {
			return true, nil
		}
		for _, ph := range c.ParentHashes {
			if seen[ph] {
				continue
			}
			seen[ph] = true
			p, err := object.GetCommit(r.st, ph)
			if err != nil {
				continue // shallow boundary
			}
			if !p.Committer.When.Before(floor) {
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}
