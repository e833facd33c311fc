package gitrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

// objectPack is the pack (its path without .pack or .idx) of the clone in dir that
// holds object h: the writer puts each commit's objects into the clone as a pack.
func objectPack(t *testing.T, dir, h string) string {
	t.Helper()
	idxs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.idx"))
	for _, p := range idxs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		idx := idxfile.NewMemoryIndex()
		err = idxfile.NewDecoder(f).Decode(idx)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if ok, _ := idx.Contains(plumbing.NewHash(h)); ok {
			return strings.TrimSuffix(p, ".idx")
		}
	}
	t.Fatalf("no pack of %s holds %s", dir, h)
	return ""
}

// removePack removes the pack of the clone in dir that holds object h.
func removePack(t *testing.T, dir, h string) {
	t.Helper()
	p := objectPack(t, dir, h)
	for _, ext := range []string{".idx", ".pack"} {
		if err := os.Remove(p + ext); err != nil {
			t.Fatal(err)
		}
	}
}

// A clone whose tip names objects it lacks used to fail every write ("read tip: object
// not found") and every start after. Open now checks the tip and the trees above the
// store folders, and clones again when they are not all there.
func TestOpenHealsADamagedClone(t *testing.T) {
	for _, tc := range []struct {
		name string
		// damage breaks the clone in dir, whose last write made commit.
		damage func(t *testing.T, dir, commit string)
	}{
		{"tip commit deleted", func(t *testing.T, dir, commit string) {
			removePack(t, dir, commit)
		}},
		{"root tree deleted", func(t *testing.T, dir, commit string) {
			removePack(t, dir, runGit(t, dir, "rev-parse", commit+"^{tree}"))
		}},
		{"shard tree garbled", func(t *testing.T, dir, commit string) {
			// Cut short: the pack's objects lie past its end.
			p := objectPack(t, dir, runGit(t, dir, "rev-parse", commit+":stores/local")) + ".pack"
			os.Chmod(p, 0o644)
			if err := os.Truncate(p, 12); err != nil {
				t.Fatal(err)
			}
		}},
		{"pack index deleted", func(t *testing.T, dir, commit string) {
			// The objects fetched at the first start are in the clone's packs (the
			// tip's, then the history's); without their indexes go-git reads none.
			idx, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.idx"))
			if len(idx) == 0 {
				t.Fatalf("clone packs: %v", idx)
			}
			for _, p := range idx {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm := newRemote(t, "http")
			ctx := context.Background()
			mustOK(t, open(t, rm).Submit(ctx, change("local", "first", ActionCreate, 1, "req-first")))
			dir := filepath.Join(t.TempDir(), "clone.git")
			r := open(t, rm, func(o *Options) { o.Dir = dir })
			res := mustOK(t, r.Submit(ctx, change("local", "second", ActionCreate, 1, "req-second")))
			r.Close()
			tc.damage(t, dir, res.Commit)
			if _, err := gitCmd(dir, "fsck", "--connectivity-only", "--no-dangling"); err == nil {
				t.Fatal("the damage left the clone whole (the test proves nothing)")
			}

			var logs lockedBuf
			t0 := time.Now()
			r2 := open(t, rm, withLog(&logs), func(o *Options) { o.Dir = dir })
			t.Logf("Open on the damaged clone: %v", time.Since(t0))
			if h, _ := r2.Head(); h != res.Commit {
				t.Errorf("healed clone at %s, want %s", h, res.Commit)
			}
			if list, err := r2.ListStores(ctx); err != nil || len(list) != 2 {
				t.Errorf("healed clone lists %+v %v", list, err)
			}
			// The Request-Id index came back with the history.
			if dup := mustOK(t, r2.Submit(ctx, change("local", "second", ActionCreate, 1, "req-second"))); !dup.Duplicate {
				t.Errorf("retried request after the heal: %+v", dup)
			}
			mustOK(t, r2.Submit(ctx, change("local", "third", ActionCreate, 1, "req-third")))
			if err := r2.Writable(ctx); err != nil {
				t.Errorf("Writable after the heal: %v", err)
			}
			if !strings.Contains(logs.String(), "damaged") || !strings.Contains(logs.String(), dir) {
				t.Errorf("no warning naming the clone:\n%s", logs.String())
			}
			if _, err := os.Stat(filepath.Join(dir+damagedSuffix, "HEAD")); err != nil {
				t.Errorf("the damaged clone was not kept aside: %v", err)
			}
			r2.Close()
			fsck(t, dir)
		})
	}
}

// A clone that is whole is opened as it is: the check reads, never repairs.
func TestOpenKeepsAWholeClone(t *testing.T) {
	rm := newRemote(t, "path")
	dir := filepath.Join(t.TempDir(), "clone.git")
	ctx := context.Background()
	r := open(t, rm, func(o *Options) { o.Dir = dir })
	mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-shop")))
	r.Close()
	var logs lockedBuf
	open(t, rm, withLog(&logs), func(o *Options) { o.Dir = dir })
	if logs.String() != "" {
		t.Errorf("reopening a whole clone logged:\n%s", logs.String())
	}
	if _, err := os.Stat(dir + damagedSuffix); err == nil {
		t.Error("a whole clone was moved aside")
	}
}
