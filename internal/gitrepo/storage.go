package gitrepo

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// writePack puts a pack and its index under base (…/objects/pack/pack-<sum>), the
// index first. go-git lists a clone's packs by their .pack files and, the first time
// a storage looks an object up, loads the index of each; one it cannot load ends
// that loading half done, and the storage then misses every object of the packs
// after it for as long as it lives ("object not found" for a tip it holds). A pack
// that is listed must therefore already have its index (git itself ignores an index
// without its pack). If the pack cannot be written the index is removed again,
// unless a pack appeared meanwhile, which only an identical pack written by someone
// else can have brought.
func writePack(base string, pack, idx []byte) error {
	if err := writeFileAtomic(base+".idx", idx); err != nil {
		return err
	}
	if betweenPackFiles != nil {
		betweenPackFiles()
	}
	if err := writeFileAtomic(base+".pack", pack); err != nil {
		if _, serr := os.Stat(base + ".pack"); errors.Is(serr, os.ErrNotExist) {
			os.Remove(base + ".idx")
		}
		return err
	}
	return nil
}

// betweenPackFiles, when set (tests), runs once a pack's first file is in place and
// before its second is.
var betweenPackFiles func()

// writeRef replaces a loose ref of the on-disk clone with an atomic rename, so a full
// disk leaves the old value instead of the empty file go-git's in-place rewrite would
// (it truncates, then writes). The temporary file is git's own <ref>.lock, a name no
// ref can have. Not synced: the packs the writer puts into the clone are not synced
// either (recent.go), nor are go-git's loose objects, so a machine crash can lose objects a ref names whatever is done here,
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
		// An index whose pack never arrived (writePack writes the index first).
		if base, ok := strings.CutSuffix(n, ".idx"); ok && strings.HasPrefix(n, "pack-") && !names[base+".pack"] {
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
