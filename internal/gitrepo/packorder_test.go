package gitrepo

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// A storage that loads its pack indexes while a pack is being written must still find
// every object. go-git lists packs by their .pack files and gives up loading indexes
// at the first it cannot read, after which that storage misses the objects of every
// later pack: with the pack written before its index, a read at that moment left the
// writer unable to read its own tip ("gitrepo: read tip: object not found", seen as
// creates answering 500 under 100 clients when a merge of recent packs ran beside a
// read).
func TestPackListedOnlyWithItsIndex(t *testing.T) {
	for _, w := range []struct {
		name  string
		write func(base string, pack, idx []byte) error
	}{{"writePack", writePack}, {"writePackNoSync", writePackNoSync}} {
		t.Run(w.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "clone.git")
			var known []plumbing.Hash
			for i := range 3 {
				// Several packs, so that whatever the listing order one is loaded
				// after the pack being written.
				objs := newObjectSet()
				known = append(known, objs.add(blobObject([]byte(fmt.Sprintf("store %d\n", i)))))
				pp, err := objs.packed()
				if err != nil {
					t.Fatal(err)
				}
				packDir := filepath.Join(dir, "objects", "pack")
				if err := os.MkdirAll(packDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := w.write(filepath.Join(packDir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := exec.Command("git", "init", "-q", "--bare", dir).CombinedOutput(); err != nil {
				t.Fatalf("git init: %v %s", err, out)
			}
			objs := newObjectSet()
			added := objs.add(blobObject([]byte("the new pack\n")))
			pp, err := objs.packed()
			if err != nil {
				t.Fatal(err)
			}
			// A storage opened before the write, whose indexes are not loaded yet,
			// loads them in the middle of it.
			st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
			var mid error
			betweenPackFiles = func() { mid = st.HasEncodedObject(known[0]) }
			t.Cleanup(func() { betweenPackFiles = nil })
			if err := w.write(filepath.Join(dir, "objects", "pack", "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
				t.Fatal(err)
			}
			betweenPackFiles = nil
			if mid != nil {
				t.Errorf("a read while the pack was written: %v", mid)
			}
			for _, h := range known {
				if err := st.HasEncodedObject(h); err != nil {
					t.Errorf("after the write, that storage misses %s: %v", h, err)
				}
			}
			fresh := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
			if err := fresh.HasEncodedObject(added); err != nil {
				t.Errorf("a storage opened after the write misses the new object: %v", err)
			}
			if out, err := exec.Command("git", "-C", dir, "cat-file", "-e", added.String()).CombinedOutput(); err != nil {
				t.Errorf("git cannot read the new object: %v %s", err, strings.TrimSpace(string(out)))
			}
		})
	}
}

// tidyClone removes an index whose pack never arrived (a writer killed between the
// two files) as it removes a pack without its index.
func TestTidyCloneRemovesIndexWithoutPack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clone.git")
	packDir := filepath.Join(dir, "objects", "pack")
	if err := os.MkdirAll(packDir, 0o755); err != nil {
		t.Fatal(err)
	}
	objs := newObjectSet()
	objs.add(blobObject([]byte("orphan\n")))
	pp, err := objs.packed()
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(packDir, "pack-"+pp.sum.String()+".idx")
	if err := os.WriteFile(orphan, pp.idxV2(), 0o444); err != nil {
		t.Fatal(err)
	}
	r := &Repo{opts: Options{Dir: dir}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r.tidyClone()
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("the index without its pack is still there: %v", err)
	}
}

// Readers share r.mu, so a storage just opened by a merge, a drop or a fetch is read
// by several goroutines at once; none may miss an object because another is still
// loading the pack indexes (go-git fills its index map with no lock of its own).
func TestFreshStorageConcurrentReaders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clone.git")
	packDir := filepath.Join(dir, "objects", "pack")
	if err := os.MkdirAll(packDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var hashes []plumbing.Hash
	for i := range 200 {
		objs := newObjectSet()
		hashes = append(hashes, objs.add(blobObject([]byte(fmt.Sprintf("store %d\n", i)))))
		pp, err := objs.packed()
		if err != nil {
			t.Fatal(err)
		}
		if err := writePackNoSync(filepath.Join(packDir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
			t.Fatal(err)
		}
	}
	r := &Repo{opts: Options{Dir: dir}, recent: newRecentObjects(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var missed atomic.Int64
	for range 20 {
		st := r.diskStorage(dir)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each reader starts at another pack, the last ones included.
				for i := range hashes {
					if err := st.HasEncodedObject(hashes[(i+g*25)%len(hashes)]); err != nil {
						missed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
	}
	if n := missed.Load(); n > 0 {
		t.Errorf("%d lookups of objects the clone holds failed while the storage was new", n)
	}
}
