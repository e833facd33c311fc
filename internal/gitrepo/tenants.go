package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/storefleet/storefleet/internal/store"
)

// A tenant's quota (Change.StoresPerTenant) is checked where a create's "name not
// taken" is: in build, against the tree the commit is built on, which is the
// remote's newest tip after every lost race. Every replica's creates land on that
// one line of trees, each on top of the others', so counting there cannot miss a
// create in flight elsewhere: one that lands first is in the tree the next is
// checked on, and a push built on an older tree loses its compare-and-swap and is
// built, and checked, again.
//
// The count must not read the fleet per create. A store folder's tenant is a
// function of its tree (its files), so tenantCount keeps it by tree hash, and each
// shard's and cluster's by their tree hash: a count at a new tip lists the
// clusters whose tree changed, counts again only their shards whose tree changed
// (taking the old count off the total), and reads only the folders that are new.
// The writer's own creates leave their tenant behind (seed), so the folder it
// pushed is not read back, and a create's own tenant is read by its submitter
// (readTenant), not by the writer. The first count after Open would read every
// folder once, on the writer: where a quota is configured (Options.TenantQuota) a
// warm-up counts them in the background instead, with the same walk in chunks
// (warmtenants.go), and the writer's first count moves on from that tree. A folder
// a batch removes (a purge) is taken off its tenant's count for the creates
// applied after it in the same commit (uncount).

// ErrQuota: a create's tenant already holds Change.StoresPerTenant stores in the
// tree the commit would land on. Nothing was written. The error is a *QuotaError.
var ErrQuota = errors.New("gitrepo: tenant's store quota used up")

// QuotaError is the refusal of a create over its tenant's quota: Stores is the
// tenant's count in the tree the commit was built on, with the creates the same
// commit applied before it.
type QuotaError struct {
	Tenant        string
	Stores, Limit int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%v: tenant %q holds %d stores, limit %d", ErrQuota, e.Tenant, e.Stores, e.Limit)
}

func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// tenantCount keeps what the quota check counted, by tree hash: a tree is its
// content, so nothing kept goes stale, whatever the tip does.
type tenantCount struct {
	mu sync.Mutex
	// root is the stores tree last counted, and total its count per tenant.
	root  plumbing.Hash
	total map[string]int
	// clusters: by cluster name, what was counted in it at root.
	clusters map[string]*clusterTenants
	// seeded: the folders this writer built for creates, with their tenant.
	seeded map[plumbing.Hash]string
	// warm: the folders the warm-up after Open has read so far, with their tenant,
	// while it runs (warmtenants.go).
	warm map[plumbing.Hash]string
	// reads counts the store folders the writer read, warmReads those the warm-up
	// read, for the tests and the benchmark.
	reads, warmReads int
}

type clusterTenants struct {
	tree   plumbing.Hash
	shards map[string]*shardTenants // by shard name
}

type shardTenants struct {
	tree    plumbing.Hash
	counts  map[string]int
	folders map[plumbing.Hash]folderTenant
	gen     uint32 // the count that last saw a folder (from 1), to drop those gone
}

type folderTenant struct {
	tenant string // "" for a folder that does not parse
	gen    uint32
}

// maxSeeded bounds the seeds of creates whose commit never landed.
const maxSeeded = 10_000

// seed records the tenant of a folder tree a create wrote.
func (c *tenantCount) seed(tree plumbing.Hash, tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seeded == nil || len(c.seeded) >= maxSeeded {
		c.seeded = map[plumbing.Hash]string{}
	}
	c.seeded[tree] = tenant
}

// tenantOf reads the tenant of the store folder dir at tree as the fleet's count
// does (Options.TenantOf); "" when its files do not parse, which that count leaves
// out too. Callers hold mu (read).
func (r *Repo) tenantOf(ctx context.Context, dir string, tree plumbing.Hash) (string, error) {
	files, err := readFiles(ctx, r.st, tree)
	if err != nil {
		return "", err
	}
	t, err := r.opts.TenantOf(folderStoreFiles(dir, files))
	if err != nil {
		return "", nil
	}
	return t, nil
}

func folderStoreFiles(dir string, files []File) []store.File {
	out := make([]store.File, len(files))
	for i, f := range files {
		out[i] = store.File{Path: path.Join(dir, f.Path), Content: f.Content}
	}
	return out
}

// tenantsAt counts the store folders of the root tree per tenant. The map returned
// is the caller's. Callers hold mu (read).
func (r *Repo) tenantsAt(ctx context.Context, root plumbing.Hash) (map[string]int, error) {
	c := &r.tenants
	c.mu.Lock()
	defer c.mu.Unlock()
	storesTree, err := lookupTree(r.st, root, store.StoresRoot)
	if err != nil {
		return nil, err
	}
	if storesTree.IsZero() {
		return map[string]int{}, nil
	}
	if storesTree == c.root && c.total != nil {
		return cloneCounts(c.total), nil
	}
	if err := r.recount(ctx, storesTree); err != nil {
		// What was updated before the error no longer matches root: start over.
		c.root, c.total, c.clusters = plumbing.ZeroHash, nil, nil
		return nil, err
	}
	return cloneCounts(c.total), nil
}

// recount moves the count from root to storesTree: only a cluster whose tree
// changed is listed, and only its shards whose tree changed are counted again,
// their old counts taken off the total and their new ones added. At the fleet's
// 4,096 shards a count of every shard per commit cost more than the rest of it.
// Callers hold mu (read) and tenants.mu.
func (r *Repo) recount(ctx context.Context, storesTree plumbing.Hash) error {
	c := &r.tenants
	if c.total == nil || c.clusters == nil {
		c.total, c.clusters = map[string]int{}, map[string]*clusterTenants{}
	}
	add := func(counts map[string]int, sign int) {
		for t, n := range counts {
			if c.total[t] += sign * n; c.total[t] == 0 {
				delete(c.total, t)
			}
		}
	}
	clusters, err := rawEntries(r.st, storesTree)
	if err != nil {
		return err
	}
	listed := make(map[string]bool, len(clusters))
	for _, ce := range clusters {
		if !ce.dir {
			continue
		}
		name := string(ce.name)
		listed[name] = true
		cl := c.clusters[name]
		if cl == nil {
			cl = &clusterTenants{shards: map[string]*shardTenants{}}
			c.clusters[name] = cl
		}
		if cl.tree == ce.hash {
			continue
		}
		shards, err := rawEntries(r.st, ce.hash)
		if err != nil {
			return err
		}
		kept := 0
		for _, se := range shards {
			if !se.dir {
				continue
			}
			kept++
			prev := cl.shards[string(se.name)]
			if prev != nil && prev.tree == se.hash {
				continue
			}
			dir := store.StoresRoot + "/" + name + "/" + string(se.name)
			st, _, err := r.countShard(ctx, dir, se.hash, prev, shardWalk{})
			if err != nil {
				return err
			}
			if prev != nil {
				add(prev.counts, -1)
			}
			add(st.counts, +1)
			cl.shards[string(se.name)] = st
		}
		if len(cl.shards) > kept {
			// A shard is gone (a reshard moved its stores): its stores leave with it.
			here := make(map[string]bool, kept)
			for _, se := range shards {
				if se.dir {
					here[string(se.name)] = true
				}
			}
			for n, st := range cl.shards {
				if !here[n] {
					add(st.counts, -1)
					delete(cl.shards, n)
				}
			}
		}
		cl.tree = ce.hash
	}
	for name, cl := range c.clusters {
		if !listed[name] {
			for _, st := range cl.shards {
				add(st.counts, -1)
			}
			delete(c.clusters, name)
		}
	}
	c.root = storesTree
	return nil
}

// shardWalk is how countShard walks a shard's folders. The zero value is the
// writer's: in one go, its caller holding mu (read) and tenants.mu throughout, as a
// commit's count must be of the one tree it builds on. The warm-up's (chunk > 0)
// holds neither: it reads chunk folders at a time, each chunk under its own read
// lock, so that a commit moving the tip waits one chunk at most, and keeps each
// chunk's answers in tenants.warm, so that a count the writer makes before the
// warm-up ends does not read them again; pause comes before each chunk, where the
// warm-up stops.
// One walk for both, so that what the warm-up hands the writer (a shard's folders
// and counts, kept as that tree's) is made exactly as the writer would make it.
type shardWalk struct {
	chunk int
	pause func() error
}

// countShard counts one shard's folders, answering those it held before (prev) or,
// for the writer, that it built or the warm-up read, from memory. It updates prev's
// folders in place rather than copy them: at 10,000 stores in a shard, a new map per
// commit cost more than the count. It returns how many folders it read. Callers of
// the writer's walk hold mu (read) and tenants.mu, those of the warm-up's neither.
func (r *Repo) countShard(ctx context.Context, dir string, tree plumbing.Hash, prev *shardTenants, w shardWalk) (*shardTenants, int, error) {
	c := &r.tenants
	chunked := w.chunk > 0
	if chunked {
		r.mu.RLock()
	}
	entries, err := rawEntries(r.st, tree)
	if chunked {
		r.mu.RUnlock()
	}
	if err != nil {
		return nil, 0, err
	}
	folders := entries // the writer's walk skips the rest itself: no copy per commit
	if chunked {
		folders = nil // a chunk is so many folders
		for _, e := range entries {
			if e.dir {
				folders = append(folders, e)
			}
		}
	}
	st := &shardTenants{tree: tree, counts: map[string]int{}}
	if prev != nil {
		st.folders, st.gen = prev.folders, prev.gen+1
	} else {
		st.folders, st.gen = make(map[plumbing.Hash]folderTenant, len(folders)), 1
	}
	chunk := w.chunk
	if !chunked {
		chunk = max(len(folders), 1)
	}
	seen, read := 0, 0
	for start := 0; start < len(folders); start += chunk {
		part := folders[start:min(start+chunk, len(folders))]
		if chunked {
			if err := w.pause(); err != nil {
				return nil, read, err
			}
			r.mu.RLock()
		}
		n, got, err := r.countFolders(ctx, dir, part, st, !chunked)
		if chunked {
			r.mu.RUnlock()
		}
		seen += n
		read += len(got)
		if !chunked {
			c.reads += len(got)
		} else if len(got) > 0 {
			c.mu.Lock()
			if c.warm == nil {
				c.warm = make(map[plumbing.Hash]string, len(got))
			}
			for h, t := range got {
				c.warm[h] = t
			}
			c.warmReads += len(got)
			c.mu.Unlock()
		}
		if err != nil {
			return nil, read, err
		}
	}
	if len(st.folders) > seen {
		for h, ft := range st.folders {
			if ft.gen != st.gen {
				delete(st.folders, h)
			}
		}
	}
	return st, read, nil
}

// countFolders adds the folders of part (other entries are skipped) to st, reading
// the tenant of those it cannot answer from memory: from st, and for the writer's
// walk (held: the caller holds tenants.mu) from the folders the writer built and
// those the warm-up read.
// It returns how many folders it saw for the first time in this count, and the
// tenants it read, by folder tree (nil for none). Callers hold mu (read).
func (r *Repo) countFolders(ctx context.Context, dir string, part []rawTreeEntry, st *shardTenants, held bool) (int, map[plumbing.Hash]string, error) {
	c := &r.tenants
	seen := 0
	var got map[plumbing.Hash]string
	for _, e := range part {
		if !e.dir {
			continue
		}
		ft, ok := st.folders[e.hash]
		if !ok && held {
			if ft.tenant, ok = c.seeded[e.hash]; ok {
				delete(c.seeded, e.hash)
			} else {
				ft.tenant, ok = c.warm[e.hash]
			}
		}
		if !ok {
			var err error
			if ft.tenant, err = r.tenantOf(ctx, dir+"/"+string(e.name), e.hash); err != nil {
				return seen, got, err
			}
			if got == nil {
				got = map[plumbing.Hash]string{}
			}
			got[e.hash] = ft.tenant
		}
		if !ok || ft.gen != st.gen {
			seen++ // once per folder, however many entries share its tree
		}
		ft.gen = st.gen
		st.folders[e.hash] = ft
		if ft.tenant != "" {
			st.counts[ft.tenant]++
		}
	}
	return seen, got, nil
}

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// readTenant reads the tenant of a create that carries a quota, in its
// submitter's goroutine: ~70 µs of parsing a create that would otherwise add to
// the one writer's time per commit.
func (r *Repo) readTenant(p *pending) {
	c := &p.ch
	if c.Action != ActionCreate || c.StoresPerTenant <= 0 || r.opts.TenantOf == nil {
		return
	}
	p.tenant, p.tenantErr = r.opts.TenantOf(folderStoreFiles(c.Dir, c.Files))
	p.tenantRead = true
}

// checkQuota refuses a create whose tenant holds its limit in the tree the batch
// builds on, counting the changes the batch applied before it: its creates, and its
// purges (uncount). It counts only when the batch holds a create with a limit; then
// every create of the batch is attributed, so creates in one commit count each
// other. It returns the tenant to count once the create is applied ("" for none).
func (b *batchTree) checkQuota(p *pending) (string, error) {
	c := &p.ch
	if c.Action != ActionCreate || !b.quota || b.r.opts.TenantOf == nil {
		return "", nil
	}
	if err := b.loadCounts(); err != nil {
		return "", err
	}
	if !p.tenantRead {
		p.tenant, p.tenantErr = b.r.opts.TenantOf(folderStoreFiles(c.Dir, c.Files))
		p.tenantRead = true
	}
	tenant, err := p.tenant, p.tenantErr
	if err != nil {
		if c.StoresPerTenant > 0 {
			return "", invalid("the tenant of store %s cannot be read from its files: %v", c.Store, err)
		}
		return "", nil
	}
	if c.StoresPerTenant > 0 && b.counts[tenant] >= c.StoresPerTenant {
		return "", &QuotaError{Tenant: tenant, Stores: b.counts[tenant], Limit: c.StoresPerTenant}
	}
	return tenant, nil
}

// loadCounts reads the base's count per tenant, once per batch.
func (b *batchTree) loadCounts() error {
	if b.counts != nil {
		return nil
	}
	counts, err := b.r.tenantsAt(context.Background(), b.baseRoot)
	if err != nil {
		return err
	}
	b.counts = counts
	return nil
}

// counted records what a batch that counts put at a folder: the tenant a create was
// counted for, or else the files of the change, for uncount to tell the tenant of a
// folder that is not in the storage yet.
func (b *batchTree) counted(p *pending, tree plumbing.Hash, tenant string) {
	if !b.quota || b.r.opts.TenantOf == nil || tree.IsZero() {
		return
	}
	if b.made == nil {
		b.made = map[plumbing.Hash]madeFolder{}
	}
	b.made[tree] = madeFolder{tenant: tenant, counted: tenant != "", files: p.ch.Files}
}

// madeFolder is a folder tree a change of the batch wrote.
type madeFolder struct {
	tenant  string
	counted bool // tenant is what the create was counted for
	files   []File
}

// uncount takes a folder the batch removed (tree, at dir) off its tenant's count, so
// that a create applied after it in the same commit has the place back. Creates
// applied before it were checked with the folder still there: the order of the
// batch is the order the changes apply in. A folder whose tenant cannot be told
// stays counted: the count errs towards refusing, as it did before, and a create
// refused so is accepted on a later commit.
func (b *batchTree) uncount(dir string, tree plumbing.Hash) {
	if !b.quota || b.r.opts.TenantOf == nil || tree.IsZero() {
		return
	}
	if err := b.loadCounts(); err != nil {
		return // the next create of the batch meets the error itself
	}
	tenant, err := b.folderTenant(dir, tree)
	if err != nil {
		b.r.log.Debug("gitrepo: the tenant of a purged store folder cannot be read; it stays counted in this commit",
			"dir", dir, "tree", tree, "err", err)
		return
	}
	if tenant != "" && b.counts[tenant] > 0 {
		if b.counts[tenant]--; b.counts[tenant] == 0 {
			delete(b.counts, tenant)
		}
	}
}

// folderTenant tells the tenant of the folder tree at dir: from what the batch wrote,
// from the count of the base (which holds every folder of it), or by reading it.
// Callers hold mu (read).
func (b *batchTree) folderTenant(dir string, tree plumbing.Hash) (string, error) {
	if m, ok := b.made[tree]; ok {
		if m.counted {
			return m.tenant, nil
		}
		t, err := b.r.opts.TenantOf(folderStoreFiles(dir, m.files))
		if err != nil {
			return "", nil // counted for no one, as tenantOf has it
		}
		return t, nil
	}
	c := &b.r.tenants
	c.mu.Lock()
	t, ok := c.known(dir, tree)
	if !ok {
		c.reads++
	}
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	return b.r.tenantOf(context.Background(), dir, tree)
}

// known answers the tenant of the folder tree at dir from what was counted, without
// reading it. Callers hold c.mu.
func (c *tenantCount) known(dir string, tree plumbing.Hash) (string, bool) {
	// dir is stores/<cluster>/<shard>/<name>.
	if parts := strings.Split(dir, "/"); len(parts) == 4 {
		if cl := c.clusters[parts[1]]; cl != nil {
			if st := cl.shards[parts[2]]; st != nil {
				if ft, ok := st.folders[tree]; ok {
					return ft.tenant, true
				}
			}
		}
	}
	if t, ok := c.seeded[tree]; ok {
		return t, true
	}
	t, ok := c.warm[tree]
	return t, ok
}
