package gitrepo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// The writer's own objects in an on-disk clone.
//
// Each commit's new objects go into the clone as one pack (and its index) before the
// push, instead of a few hundred loose files: at 4,096 shards a group of 50 creates is
// ~350 objects, and creating, renaming and later opening a file for each was a third of
// the writer's time under 100 clients. go-git's storage reads its list of packs once,
// so the objects of packs written since are answered from memory (recentObjects)
// until enough have gathered to be merged into one pack, after which the storage is
// opened again and reads them from there. Nothing else changes: the objects are on
// disk before anything names them, the clone's refs move once the push landed, and a
// commit that does not land takes its pack away again.

// Merging the recent packs bounds both the memory they take and the number of packs
// in the clone, which go-git searches one by one for every object it reads. Variables
// so that tests can merge often.
var (
	mergeRecentPacks = 128
	mergeRecentBytes = 32 << 20
)

// recentObjects are the objects of the packs this writer put into the clone that the
// storage has not read yet: added and dropped by the writer goroutine, read by anyone
// reading the clone, and let go by a merge once the storage reads them from its pack.
type recentObjects struct {
	mu    sync.RWMutex
	objs  map[plumbing.Hash]*recentObject
	packs map[plumbing.Hash]*objectSet // the unmerged packs, by checksum
	bytes int

	merging atomic.Bool    // one merge or compaction (compact.go) at a time
	merges  sync.WaitGroup // Close waits for the merge under way

	// compactDue is set when a pack other than a recent one may have arrived (a
	// fetch, a merge; at start, whatever the clone holds) and cleared by the
	// compaction that looks at them.
	compactDue atomic.Bool
}

type recentObject struct {
	o    plumbing.EncodedObject
	refs int // packs holding it: a dropped attempt may share objects with a kept one
}

func newRecentObjects() *recentObjects {
	s := &recentObjects{objs: map[plumbing.Hash]*recentObject{}, packs: map[plumbing.Hash]*objectSet{}}
	s.compactDue.Store(true)
	return s
}

func (s *recentObjects) get(h plumbing.Hash) plumbing.EncodedObject {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ro := s.objs[h]; ro != nil {
		return ro.o
	}
	return nil
}

func (s *recentObjects) add(sum plumbing.Hash, objs *objectSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range objs.order {
		ro := s.objs[h]
		if ro == nil {
			ro = &recentObject{o: objs.byHash[h]}
			s.objs[h] = ro
			s.bytes += int(ro.o.Size())
		}
		ro.refs++
	}
	s.packs[sum] = objs
}

// remove lets go of pack sum's objects, those no other recent pack holds.
func (s *recentObjects) remove(sum plumbing.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	objs := s.packs[sum]
	if objs == nil {
		return
	}
	delete(s.packs, sum)
	for _, h := range objs.order {
		if ro := s.objs[h]; ro != nil {
			if ro.refs--; ro.refs == 0 {
				delete(s.objs, h)
				s.bytes -= int(ro.o.Size())
			}
		}
	}
}

// recentStorer is the clone's storage with the recent objects in front.
type recentStorer struct {
	storage.Storer
	recent *recentObjects
}

func (s recentStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o := s.recent.get(h); o != nil {
		if t != plumbing.AnyObject && o.Type() != t {
			return nil, plumbing.ErrObjectNotFound
		}
		return o, nil
	}
	return s.Storer.EncodedObject(t, h)
}

func (s recentStorer) HasEncodedObject(h plumbing.Hash) error {
	if s.recent.get(h) != nil {
		return nil
	}
	return s.Storer.HasEncodedObject(h)
}

func (s recentStorer) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if o := s.recent.get(h); o != nil {
		return o.Size(), nil
	}
	return s.Storer.EncodedObjectSize(h)
}

// Init makes the clone's folders: go-git asks a storage that can for it when it
// initialises a repository, and a clone without its objects folder takes no writes.
func (s recentStorer) Init() error {
	if i, ok := s.Storer.(storer.Initializer); ok {
		return i.Init()
	}
	return nil
}

// The optional interface go-git looks for on the paths this package takes (git.Init).
var _ storer.Initializer = recentStorer{}

// diskStorage opens the on-disk clone in dir, with the recent objects in front.
//
// go-git's storage loads its pack indexes the first time it looks an object up, with
// no lock of its own: two readers at once (readers share r.mu) let the second look
// objects up in an index the first is still filling, and miss them ("gitrepo: read
// tip: object not found", a batch of creates answered 500 right after a merge of
// recent packs opened a new storage). So the indexes are loaded here, by the one
// caller: every caller holds r.mu for writing, or runs before anyone reads.
func (r *Repo) diskStorage(dir string) storage.Storer {
	fs := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	if err := fs.HasEncodedObject(plumbing.ZeroHash); err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) && r.log != nil {
		// A pack without a readable index: reads fail as they would have, and
		// Open's check of the clone heals it.
		r.log.Warn("gitrepo: load the clone's pack indexes", "err", err)
	}
	return recentStorer{Storer: fs, recent: r.recent}
}

// keepObjects writes a commit's new objects into the on-disk clone ahead of its push,
// as one pack, and records it in kept (by the pack's checksum) so that it can be taken
// away again if the commit does not land.
func (r *Repo) keepObjects(objs *objectSet, kept map[plumbing.Hash]*objectSet) error {
	pp, err := objs.packed()
	if err != nil {
		return err
	}
	if kept[pp.sum] != nil {
		return nil // an attempt of this batch wrote exactly these objects already
	}
	dir := filepath.Join(r.opts.Dir, "objects", "pack")
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return storageErr("write objects to the clone", err)
	}
	// Not synced, as go-git's own loose objects are not (see writeRef); a merge
	// syncs the pack that replaces these.
	if err := writePackNoSync(filepath.Join(dir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
		return storageErr("write objects to the clone", err)
	}
	r.recent.add(pp.sum, objs)
	kept[pp.sum] = objs
	return nil
}

// dropObjects takes away the packs keepObjects wrote for attempts other than the
// landed one (nil if none landed): a lost race or a failed push leaves no garbage in
// the clone.
func (r *Repo) dropObjects(kept map[plumbing.Hash]*objectSet, landed *objectSet) {
	if len(kept) == 0 {
		return
	}
	var keep plumbing.Hash
	if landed != nil {
		if pp, err := landed.packed(); err == nil {
			keep = pp.sum
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	removed := false
	for sum := range kept {
		if sum == keep {
			continue
		}
		dropPackFiles(filepath.Join(r.opts.Dir, "objects", "pack", "pack-"+sum.String()))
		r.recent.remove(sum)
		removed = true
	}
	if removed {
		// A fetch between the attempt and now opened a storage that lists the
		// removed packs: it would look an object up in one of them (one another
		// replica's commit holds too, say) and fail "packfile not found".
		r.st = r.diskStorage(r.opts.Dir)
	}
}

// maybeMergeRecent starts merging the recent packs into one once there are enough of
// them. It runs on the writer goroutine between two batches, so every recent pack then
// belongs to a commit that landed (a batch drops its other attempts' packs before it
// ends); the merge itself runs beside the writer, which goes on committing: a merge of
// 32 MB took ~0.7 s, which a create's answer must not wait for.
func (r *Repo) maybeMergeRecent() {
	if r.opts.Dir == "" || r.recent.merging.Load() {
		return
	}
	r.recent.mu.RLock()
	n, size := len(r.recent.packs), r.recent.bytes
	if n < mergeRecentPacks && size < mergeRecentBytes {
		r.recent.mu.RUnlock()
		r.maybeCompact()
		return
	}
	all := newObjectSet()
	packs := make([]plumbing.Hash, 0, n)
	for sum, objs := range r.recent.packs {
		packs = append(packs, sum)
		for _, h := range objs.order {
			all.add(objs.byHash[h])
		}
	}
	r.recent.mu.RUnlock()
	// A compaction that a fetch started meanwhile wins; the next batch merges.
	r.startBackground(all, packs)
}

// mergeRecent writes the objects of the given recent packs into one pack, synced, then
// removes those packs and opens the storage again, which finds the objects in the new
// pack. Readers of the storage hold mu for as long as they read, so none is left
// reading a removed pack.
func (r *Repo) mergeRecent(all *objectSet, packs []plumbing.Hash) error {
	pp, err := all.packed()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.opts.Dir, "objects", "pack")
	if err := writePack(filepath.Join(dir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
		return storageErr("merge the clone's recent packs", err)
	}
	if err := syncDir(dir); err != nil {
		return storageErr("merge the clone's recent packs", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sum := range packs {
		if sum != pp.sum {
			dropPackFiles(filepath.Join(dir, "pack-"+sum.String()))
		}
		r.recent.remove(sum)
	}
	r.st = r.diskStorage(r.opts.Dir)
	return nil
}

// writePackNoSync is writePack without the syncs: for the clone's own copy of what
// the push also sends, which the remote keeps. The index first, as writePack.
func writePackNoSync(base string, pack, idx []byte) error {
	for i, f := range []struct {
		path string
		b    []byte
	}{{base + ".idx", idx}, {base + ".pack", pack}} {
		if i == 1 && betweenPackFiles != nil {
			betweenPackFiles()
		}
		tmp := f.path + fmt.Sprintf(".tmp-%d", os.Getpid())
		err := os.WriteFile(tmp, f.b, 0o444)
		if err == nil {
			err = os.Rename(tmp, f.path)
		}
		if err != nil {
			os.Remove(tmp)
			if i == 1 {
				os.Remove(base + ".idx")
			}
			return err
		}
	}
	return nil
}
