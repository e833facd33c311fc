package gitrepo

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing"
)

// Files this package writes to disk, and what a full or failing disk does to them.
//
// Nothing may name an object before the object is written: the clone's tip, the
// remote's branch. So a commit's new objects go into an on-disk clone before the push
// (objects nobody names are harmless), the push writes its pack and index before it
// takes the ref lock, and the clone's refs move only once the push landed. A write that
// fails on the way returns ErrStorage with nothing named that is missing, and every
// file it began is removed, so freeing space is all it takes to write again.

// storageErr marks err, a failed write of this package's own files, as ErrStorage.
func storageErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrStorage, what, err)
}

// writeFileAtomic makes path hold b, or leaves it as it was: a temporary file in the
// same directory, synced, then renamed into place; on any failure the temporary file
// is removed (a full disk must not fill up further with half-written copies). The
// temporary name never ends in .pack, .idx or a ref name git or go-git would read.
func writeFileAtomic(path string, b []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(b); err != nil {
		return err
	}
	// Packs are read-only, as git writes them.
	if err = f.Chmod(0o444); err != nil {
		return err
	}
	// Synced before the rename: the name must never appear with content a crash of
	// the machine could still lose.
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// syncDir makes the renames into dir durable before something names what they
// brought in (a ref moved after the pack arrived).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writePack puts a pack and its index under base (…/objects/pack/pack-<sum>), index
// last: git ignores a pack without one. If the index cannot be written the pack is
// removed again: go-git refuses to read any object while a pack lacks its index. It is
// left if an index appeared meanwhile, which only an identical pack written by someone
// else can have brought.
func writePack(base string, pack, idx []byte) error {
	if err := writeFileAtomic(base+".pack", pack); err != nil {
		return err
	}
	if err := writeFileAtomic(base+".idx", idx); err != nil {
		if _, serr := os.Stat(base + ".idx"); errors.Is(serr, os.ErrNotExist) {
			os.Remove(base + ".pack")
		}
		return err
	}
	return nil
}

// writeRef replaces a loose ref of the on-disk clone with an atomic rename, so a full
// disk leaves the old value instead of the empty file go-git's in-place rewrite would
// (it truncates, then writes). The temporary file is git's own <ref>.lock, a name no
// ref can have. Not synced: the clone's loose objects are not synced either (go-git
// does not), so a machine crash can lose objects a ref names whatever is done here,
// and the check at Open heals exactly that; a process crash loses neither.
func writeRef(dir string, name plumbing.ReferenceName, content string) error {
	path := filepath.Join(dir, filepath.FromSlash(name.String()))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".lock"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// keepObjects writes a commit's new objects into the on-disk clone ahead of its push
// and records in kept the ones it added, so they can be removed again if the commit
// does not land. A commit of a group of creates holds a few hundred objects, each its
// own file: the writes go out on a few goroutines, so one file's syscalls overlap
// another's (the writer's wall time per commit was ~40% these writes, one at a time).
func (r *Repo) keepObjects(objs *objectSet, kept map[plumbing.Hash]bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var todo []plumbing.Hash
	dirs := map[string]bool{filepath.Join(r.opts.Dir, "objects", "pack"): true}
	for _, h := range objs.order {
		// Not asked of the storage whether it holds h already: that lookup (a
		// stat through go-billy, then every pack index) cost as much as the
		// write. writeLoose learns it from the rename instead.
		if kept[h] {
			continue
		}
		todo = append(todo, h)
		dirs[filepath.Join(r.opts.Dir, "objects", h.String()[:2])] = true
	}
	for d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return storageErr("write objects to the clone", err)
		}
	}
	var (
		mu    sync.Mutex
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	for range min(looseWriters, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(todo) {
					return
				}
				h := todo[i]
				added, err := writeLoose(r.opts.Dir, objs.byHash[h])
				mu.Lock()
				if added {
					kept[h] = true
				} else if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return storageErr("write objects to the clone", first)
	}
	return nil
}

// looseWriters is how many loose objects keepObjects writes at once.
const looseWriters = 4

// writeLoose writes o as a loose object of the repository in dir, where go-git reads
// it; its fan-out folder and objects/pack must exist (keepObjects makes them). Not
// go-git's writer: when a write fails it returns without closing its temporary file,
// and a deleted file still open keeps its space, so a full disk would stay full after
// every failed write. Not synced, as go-git's are not (see writeRef).
//
// added is false when the clone held o as a loose object already: that one is left
// in place, and the commit must not remove it if it does not land. An object held
// only in a pack is written loose all the same, which removing again is harmless.
func writeLoose(dir string, o plumbing.EncodedObject) (added bool, err error) {
	hex := o.Hash().String()
	path := filepath.Join(dir, "objects", hex[:2], hex[2:])
	content, err := objectContent(o)
	if err != nil {
		return false, err
	}
	// Stored, not deflated, as in the packs this package writes (packwrite.go): a
	// deflate writer per object cost ~0.75 ms here, mostly its allocation, and a
	// loose object of a few hundred bytes fills a disk block either way.
	head := strconv.AppendInt(append([]byte(o.Type().String()), ' '), int64(len(content)), 10)
	var buf bytes.Buffer
	writeStoredZlibParts(&buf, append(head, 0), content)
	// Beside go-git's own temporary objects, where tidyClone looks for leftovers. The
	// name is the object's, so no random name is drawn; created read-only, as git
	// keeps objects, with no chmod after. One left by a killed writer is replaced.
	tmp := filepath.Join(dir, "objects", "pack", "tmp_obj_"+hex)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, os.ErrExist) {
		os.Remove(tmp)
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	}
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(buf.Bytes()); err != nil {
		return false, err
	}
	if err = f.Close(); err != nil {
		return false, err
	}
	if err = renameNoReplace(tmp, path); errors.Is(err, os.ErrExist) {
		return false, os.Remove(tmp)
	}
	return err == nil, err
}

// dropObjects removes the loose objects keepObjects added that the landed commit (nil
// if none landed) does not hold: a lost race or a failed push leaves no garbage in a
// clone nothing ever repacks.
func (r *Repo) dropObjects(kept map[plumbing.Hash]bool, landed *objectSet) {
	if len(kept) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for h := range kept {
		if landed != nil && landed.byHash[h] != nil {
			continue
		}
		hex := h.String()
		os.Remove(filepath.Join(r.opts.Dir, "objects", hex[:2], hex[2:]))
	}
}

// tidyClone removes what a process killed while writing the clone leaves behind, before
// the clone is read: go-git's and this package's temporary files, and a pack without
// its index (go-git fails every object lookup while one is there; its objects come
// back with the next fetch). The clone belongs to this process alone, so nothing here
// can be another writer's file in progress.
func (r *Repo) tidyClone() {
	packDir := filepath.Join(r.opts.Dir, "objects", "pack")
	entries, err := os.ReadDir(packDir)
	if err != nil {
		return
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	for n := range names {
		drop := strings.HasPrefix(n, "tmp_") || strings.Contains(n, ".tmp-")
		if base, ok := strings.CutSuffix(n, ".pack"); ok && strings.HasPrefix(n, "pack-") && !names[base+".idx"] {
			drop = true
		}
		if drop {
			if err := os.Remove(filepath.Join(packDir, n)); err == nil {
				r.log.Warn("gitrepo: removed a file a killed writer left in the clone", "file", filepath.Join(packDir, n))
			}
		}
	}
	for _, ref := range []plumbing.ReferenceName{r.trackRef, r.branchRef, plumbing.HEAD} {
		os.Remove(filepath.Join(r.opts.Dir, filepath.FromSlash(ref.String())) + ".lock")
	}
}

// probeSize is how much a readiness probe writes: about what a commit of a few stores
// adds, so a disk that takes the probe takes the next commit.
const probeSize = 64 << 10

// probeWrite writes, syncs and removes a file of probeSize random bytes in dir: random
// so a compressing filesystem cannot store it in nothing, synced so a filesystem that
// allocates late reports a full disk now.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".storefleet-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	b := make([]byte, probeSize)
	rand.Read(b)
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
