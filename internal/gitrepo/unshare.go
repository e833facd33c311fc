package gitrepo

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/storefleet/storefleet/internal/store"
)

// A shared file (a chart source, chart-sources/<cluster>/<name>.yaml) is removed in
// the commit of the change that leaves no store using it, and decided from that
// commit's tree, by the writer, after every change of the batch is applied: so a
// create that needs the file is either in the tree the decision reads (its folder
// names the file: kept), in the same batch (kept), or built after the removal landed
// (its Shared writes the file again). A push that loses its race is built again on
// the new tip, and the decision with it; a proposal branch never removes one (it is
// merged onto a tree nobody has decided on).
//
// Which store uses a shared file is read the one way this package can without
// knowing what a store's files mean: a store that needs an object of the Flux
// namespace names it, and the file is named after the object it holds. A folder
// whose files hold <name> as a whole word (not part of a longer name) keeps
// <name>.yaml. A setting that happens to spell the name keeps the file too: that
// errs towards the idle object, never towards a store without its source.
//
// Only the change that may leave a file unused pays for the read (Change.Unshared:
// a delete, an upgrade off a version): the store folders of the cluster, stopping
// at the first that names every candidate. What a folder or an unchanged shard
// names is kept by tree hash (namedCache), so a change reads only the folders
// changed since the last read; after a start, Open reads them all once in the
// background (warmnamed.go), so the first such change does not. A create reads
// nothing.

// unshare removes the batch's Unshared files that no store folder of their cluster
// names in the tree the batch leaves. A read that fails keeps the files (an idle
// object) rather than failing changes that are otherwise fine.
func (b *batchTree) unshare() {
	needed := map[string]bool{}
	for _, p := range b.applied {
		for _, f := range p.ch.Shared {
			needed[f.Path] = true
		}
	}
	type candidate struct {
		path string
		by   *pending
	}
	byCluster := map[string]map[string]candidate{} // cluster → object name → file
	for _, p := range b.applied {
		for _, f := range p.ch.Unshared {
			if needed[f] {
				continue
			}
			name := strings.TrimSuffix(path.Base(f), ".yaml")
			if byCluster[p.ch.Cluster] == nil {
				byCluster[p.ch.Cluster] = map[string]candidate{}
			}
			if _, ok := byCluster[p.ch.Cluster][name]; ok {
				continue
			}
			if ok, err := b.ov.hasFile(f); err != nil || !ok {
				continue
			}
			byCluster[p.ch.Cluster][name] = candidate{path: f, by: p}
		}
	}
	for cluster, cands := range byCluster {
		if len(cands) == 0 {
			continue
		}
		names := make([]string, 0, len(cands))
		for n := range cands {
			names = append(names, n)
		}
		used, err := b.named(cluster, names)
		if err != nil {
			b.r.log.Warn("gitrepo: reading which stores use the shared files failed; they stay", "cluster", cluster, "err", err)
			continue
		}
		for name, c := range cands {
			if used[name] {
				continue
			}
			if err := b.ov.removeFile(c.path); err != nil {
				b.r.log.Warn("gitrepo: removing an unused shared file failed; it stays", "file", c.path, "err", err)
				continue
			}
			c.by.res.Unshared = append(c.by.res.Unshared, c.path)
		}
		b.keepFolder(store.ChartSourcesDir(cluster))
	}
}

// keepFolder puts an empty .gitkeep in dir when the removals left it empty: Flux's
// Kustomization of the folder fails on a path that is gone, and then prunes
// nothing, so the last source removed would stay in the cluster.
func (b *batchTree) keepFolder(dir string) {
	n, err := b.ov.node(dir)
	if err != nil || len(n.entries) > 0 {
		return
	}
	if err := b.ov.setFile(dir+"/"+keepFile, b.objs.add(blobObject(nil))); err != nil {
		b.r.log.Warn("gitrepo: keeping the emptied shared folder failed", "dir", dir, "err", err)
	}
}

// keepFile keeps an otherwise empty folder in Git.
const keepFile = ".gitkeep"

// named reports which of names some store folder of cluster (as the batch leaves
// it) names. It stops as soon as every name is found. A folder's answer is
// kept by its tree hash (namedCache), so a folder is read once for as long as it
// does not change.
func (b *batchTree) named(cluster string, names []string) (map[string]bool, error) {
	b.r.named.scans.Add(1)
	defer b.r.named.scans.Add(-1)
	clusterDir := store.StoresRoot + "/" + cluster
	used := make(map[string]bool, len(names))
	// A folder read now is searched for every shared file of the cluster, so that
	// its answer serves the removals of the other versions too.
	lookFor := map[string]bool{}
	for _, n := range names {
		lookFor[n] = true
	}
	if n, ok := b.ov.nodes[store.ChartSourcesDir(cluster)]; ok {
		for name, e := range n.entries {
			if e.Mode != filemode.Dir && strings.HasSuffix(name, ".yaml") {
				lookFor[strings.TrimSuffix(name, ".yaml")] = true
			}
		}
	}
	look := make([]string, 0, len(lookFor))
	for n := range lookFor {
		look = append(look, n)
	}
	shards, err := b.entries(clusterDir)
	if err != nil {
		return nil, err
	}
	visited := make(map[plumbing.Hash]folderNames, b.r.named.size(cluster))
	complete := true
	defer func() {
		b.r.named.keep(cluster, visited, complete)
	}()
	mark := func(fn folderNames) bool {
		for _, n := range fn.holds {
			if slices.Contains(names, n) {
				used[n] = true
			}
		}
		return len(used) == len(names)
	}
	for _, sh := range shards {
		if !sh.dir {
			continue
		}
		shardDir := clusterDir + "/" + string(sh.name)
		// A shard the batch changed has no hash yet (the overlay writes it last);
		// any other shard is answered whole when its tree was seen before.
		node, loaded := b.ov.nodes[shardDir]
		cacheable := !loaded || !node.dirty
		if cacheable {
			if fn, ok := b.r.named.lookup(cluster, sh.hash, names); ok {
				visited[sh.hash] = fn
				if mark(fn) {
					complete = false
					return used, nil
				}
				continue
			}
		}
		folders, err := b.entries(shardDir)
		if err != nil {
			return nil, err
		}
		shard := folderNames{checked: lookFor}
		for _, f := range folders {
			if !f.dir {
				continue
			}
			fn, ok := b.r.named.lookup(cluster, f.hash, names)
			if !ok {
				b.r.named.reads.Add(1)
				if fn, err = readFolder(b.raw, f.hash, look, lookFor); err != nil {
					complete = false
					return nil, err
				}
			}
			visited[f.hash] = fn
			shard = shard.with(fn)
			if mark(fn) {
				complete = false
				return used, nil
			}
		}
		if cacheable {
			visited[sh.hash] = shard
		}
	}
	return used, nil
}

// with adds a folder's answer to its shard's: the shard holds what any folder
// holds, and has checked only what every folder checked.
func (s folderNames) with(f folderNames) folderNames {
	if !sameSet(s.checked, f.checked) {
		both := map[string]bool{}
		for n := range s.checked {
			if f.checked[n] {
				both[n] = true
			}
		}
		s.checked = both
	}
	for _, n := range f.holds {
		if !slices.Contains(s.holds, n) {
			s.holds = append(s.holds, n)
		}
	}
	return s
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for n := range a {
		if !b[n] {
			return false
		}
	}
	return true
}

// folderNames is what one store folder's files name: of the shared files checked
// (their object names), those in holds.
type folderNames struct {
	checked map[string]bool
	holds   []string
}

// namedCache keeps, by store folder (and shard) tree hash, the shared files each
// was found to name. A tree is its content, so an answer never goes stale; a name not
// checked when the folder was read is looked for by reading it again. A scan that
// visits every folder of a cluster replaces what the cache holds for the cluster
// with what it visited, so folders gone from the fleet do not stay; the warm-up
// after Open only adds (warmnamed.go). It is kept by cluster so that such a scan
// leaves the other clusters' answers, which the warm-up read too.
type namedCache struct {
	mu        sync.Mutex
	byCluster map[string]map[plumbing.Hash]folderNames

	// scans counts the changes' scans under way: the warm-up waits while one
	// runs, rather than compete with it for the CPUs (warmnamed.go).
	scans atomic.Int32
	// reads and warmReads count the store folders read by changes and by the
	// warm-up, for the tests.
	reads, warmReads atomic.Int64
}

// size is how many trees the cache holds for cluster: the warm-up adds to the map
// while a change scans, so its length is read under the lock.
func (c *namedCache) size(cluster string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byCluster[cluster])
}

// lookup answers for tree, a folder or shard of cluster, if every one of names was
// checked when it was read.
func (c *namedCache) lookup(cluster string, tree plumbing.Hash, names []string) (folderNames, bool) {
	c.mu.Lock()
	fn, ok := c.byCluster[cluster][tree]
	c.mu.Unlock()
	if !ok {
		return folderNames{}, false
	}
	for _, n := range names {
		if !fn.checked[n] {
			return folderNames{}, false
		}
	}
	return fn, true
}

// keep adds the answers of a scan of cluster; a complete scan's answers replace the
// cluster's others.
func (c *namedCache) keep(cluster string, visited map[plumbing.Hash]folderNames, complete bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byCluster == nil {
		c.byCluster = map[string]map[plumbing.Hash]folderNames{}
	}
	if complete || c.byCluster[cluster] == nil {
		c.byCluster[cluster] = visited
		return
	}
	for h, fn := range visited {
		c.byCluster[cluster][h] = fn
	}
}

// readFolder reads what the store folder tree names of look, which are the names
// in checked.
func readFolder(read objectReader, tree plumbing.Hash, look []string, checked map[string]bool) (folderNames, error) {
	found := map[string]bool{}
	if err := readNames(read, tree, look, found); err != nil {
		return folderNames{}, err
	}
	fn := folderNames{checked: checked}
	for n := range found {
		fn.holds = append(fn.holds, n)
	}
	return fn, nil
}

// objectReader returns an object's content: a batch's (batchTree.raw) sees its new
// objects, the warm-up's (Repo.stored) only the clone's.
type objectReader func(plumbing.Hash) ([]byte, error)

// readNames marks in found the names a store folder's files (at any depth) hold.
func readNames(read objectReader, tree plumbing.Hash, names []string, found map[string]bool) error {
	raw, err := read(tree)
	if err != nil {
		return err
	}
	for off := 0; off < len(raw); {
		e, err := nextRawEntry(raw, off)
		if err != nil {
			return err
		}
		off = e.end
		if e.dir {
			if err := readNames(read, e.hash, names, found); err != nil {
				return err
			}
			continue
		}
		content, err := read(e.hash)
		if err != nil {
			return err
		}
		for _, n := range names {
			if !found[n] && holdsName(content, n) {
				found[n] = true
			}
		}
	}
	return nil
}

// holdsName reports whether b holds name not as a part of a longer object name
// (medusa-1.0 in medusa-1.0.1).
func holdsName(b []byte, name string) bool {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(name))
		if j < 0 {
			return false
		}
		at := i + j
		end := at + len(name)
		if (at == 0 || !nameByte(b[at-1])) && (end == len(b) || !nameByte(b[end])) {
			return true
		}
		i = at + 1
	}
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

// entries lists the folder dir as the batch leaves it: from the overlay when the
// batch loaded it, else as stored.
func (b *batchTree) entries(dir string) ([]rawTreeEntry, error) {
	if n, ok := b.ov.nodes[dir]; ok {
		out := make([]rawTreeEntry, 0, len(n.entries))
		for _, e := range n.entries {
			out = append(out, rawTreeEntry{name: []byte(e.Name), dir: e.Mode == filemode.Dir, hash: e.Hash})
		}
		return out, nil
	}
	h, err := b.ov.get(dir)
	if err != nil || h.IsZero() {
		return nil, err
	}
	raw, err := b.raw(h)
	if err != nil {
		return nil, err
	}
	return splitRawTree(raw)
}

// raw returns an object's content, from the batch's new objects or the clone.
func (b *batchTree) raw(h plumbing.Hash) ([]byte, error) {
	if o, ok := b.objs.byHash[h]; ok {
		if m, ok := o.(*memObject); ok {
			return m.content, nil
		}
		return readAll(o)
	}
	return b.r.stored(h)
}

// stored returns an object's content from the clone. Callers hold mu (read).
func (r *Repo) stored(h plumbing.Hash) ([]byte, error) {
	o, err := r.st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: read %s: %w", h, err)
	}
	return readAll(o)
}

func readAll(o plumbing.EncodedObject) ([]byte, error) {
	rd, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}
