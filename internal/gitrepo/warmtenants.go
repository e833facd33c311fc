package gitrepo

import (
	"context"
	"errors"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/internal/store"
)

// The first quota count after a start reads every store folder of the fleet
// (0.5-1.3 s at 10,000 stores) on the writer, which commits nothing else meanwhile:
// the first create near its tenant's limit waits that long, and so does every change
// queued behind it. So when a quota is configured (Options.TenantQuota, with
// Options.TenantOf), the warm-up after Open (warmUp) counts them first, in the
// background, at the tip it warms. It counts with the writer's own walk (countShard),
// so that what it hands over is what the writer's count would have made; only the
// walk's pace differs (shardWalk): it yields as the names' warm-up does, a few
// folders per short read lock (warmChunk), and is stopped by Close.
//
// Without a quota it does not run: no check would ever ask for the count, so
// reading every store folder at each start would be work for nothing, and would
// hold back the names' warm-up that follows it, which removals do wait for.
//
// It never answers a quota check: what it counts is of the tree it started on, and a
// commit is checked on the tree it lands on. Once the whole count is done it is kept
// as the count of that tree (tenantCount.root), and only if the writer has counted
// nothing meanwhile, so the writer's first count is a move from that tree to its own
// (recount): the clusters and shards that changed since, and only their new folders.
// A tree is its content, so a count of an older tree is never wrong, only old.
//
// A count that comes while the warm-up runs does not wait for it: waiting would tie
// the writer to a background task's pace. Each chunk's answers are kept by folder
// tree hash as they are read (tenantCount.warm), and the count takes what is there
// and reads the rest itself, as before the warm-up existed. Once the writer has
// counted, the warm-up has nothing left to give, and ends at its next pause; it
// waits meanwhile, as the count holds tenants.mu.
//
// Only Open warms. After a fetch that moved the tip a long way the writer's next
// count reads every new folder on its path; the writer fetches only when its push
// lost a race and builds again at once, so a background count there could not get
// ahead of it.

// errWarmCounted ends the warm-up: the writer counted before it was done.
var errWarmCounted = errors.New("gitrepo: the writer counted the tenants before the warm-up ended")

// warmTenants counts the store folders per tenant at tip in the background and keeps
// the count as that tree's, unless the writer counted first.
func (r *Repo) warmTenants(tip plumbing.Hash) {
	if r.opts.TenantOf == nil || !r.opts.TenantQuota {
		return // no quota is configured: nothing would use the count
	}
	start := time.Now()
	n, err := r.warmTenantsAt(tip)
	c := &r.tenants
	c.mu.Lock()
	c.warm = nil // kept in the count now, or of no more use
	c.mu.Unlock()
	switch {
	case errors.Is(err, errWarmStopped), errors.Is(err, errWarmCounted):
	case err != nil:
		// The writer's first count reads the folders itself, and fails the create if
		// that fails too.
		r.log.Debug("gitrepo: warming the tenant count failed; the first quota check counts the store folders itself",
			"tip", tip, "folders", n, "err", err)
	default:
		r.log.Debug("gitrepo: tenant count warm", "tip", tip, "folders", n, "took", time.Since(start))
	}
}

// tenantsPlanCluster is one cluster the warm-up counts: its tree and shards at tip.
type tenantsPlanCluster struct {
	name   string
	tree   plumbing.Hash
	shards []rawTreeEntry
}

// warmTenantsAt counts the tenants at tip and keeps the count. It returns how many
// folders it read.
func (r *Repo) warmTenantsAt(tip plumbing.Hash) (int, error) {
	storesTree, plan, err := r.tenantsPlan(tip)
	if err != nil || storesTree.IsZero() {
		return 0, err
	}
	total := map[string]int{}
	clusters := make(map[string]*clusterTenants, len(plan))
	// The writer's walk, in chunks: each shard kept here is what the writer's count
	// would have kept, so the writer's first count can move on from it (recount).
	walk := shardWalk{chunk: warmChunk, pause: r.warmTenantsPause}
	read := 0
	for _, pc := range plan {
		cl := &clusterTenants{tree: pc.tree, shards: make(map[string]*shardTenants, len(pc.shards))}
		for _, se := range pc.shards {
			dir := store.StoresRoot + "/" + pc.name + "/" + string(se.name)
			st, n, err := r.countShard(context.Background(), dir, se.hash, nil, walk)
			read += n
			if err != nil {
				return read, err
			}
			for t, k := range st.counts {
				total[t] += k
			}
			cl.shards[string(se.name)] = st
		}
		clusters[pc.name] = cl
	}
	c := &r.tenants
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total != nil {
		// The writer's own count is of a tree at least as new; its folders are kept
		// per shard already.
		return read, errWarmCounted
	}
	c.root, c.total, c.clusters = storesTree, total, clusters
	return read, nil
}

// tenantsPlan lists the clusters and shards of the stores tree at tip: a few small
// trees, under one read lock.
func (r *Repo) tenantsPlan(tip plumbing.Hash) (plumbing.Hash, []tenantsPlanCluster, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	root, err := r.commitRoot(tip)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	storesTree, err := lookupTree(r.st, root, store.StoresRoot)
	if err != nil || storesTree.IsZero() {
		return plumbing.ZeroHash, nil, err
	}
	entries, err := rawEntries(r.st, storesTree)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	var plan []tenantsPlanCluster
	for _, ce := range entries {
		if !ce.dir {
			continue
		}
		shards, err := rawEntries(r.st, ce.hash)
		if err != nil {
			return plumbing.ZeroHash, nil, err
		}
		pc := tenantsPlanCluster{name: string(ce.name), tree: ce.hash}
		for _, se := range shards {
			if se.dir {
				pc.shards = append(pc.shards, se)
			}
		}
		plan = append(plan, pc)
	}
	return storesTree, plan, nil
}

// warmTenantsPause comes between two chunks: where the warm-up stops once the Repo
// closes or the writer has counted. A count under way holds tenants.mu, so the
// warm-up waits here until it is done, and then stops.
func (r *Repo) warmTenantsPause() error {
	if err := r.warmWait(nil); err != nil {
		return err
	}
	c := &r.tenants
	c.mu.Lock()
	counted := c.total != nil
	c.mu.Unlock()
	if counted {
		return errWarmCounted
	}
	return nil
}
