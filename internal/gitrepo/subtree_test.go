package gitrepo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage"
	"github.com/storefleet/storefleet/internal/store"
)

// namesInShard returns n store names that share one shard, and that shard.
func namesInShard(prefix string, n int) ([]string, string) {
	var names []string
	shard := ""
	for i := 0; len(names) < n; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if shard == "" {
			shard = store.Shard(name)
		}
		if store.Shard(name) == shard {
			names = append(names, name)
		}
	}
	return names, shard
}

// nameOutside returns a store name whose shard is none of the given ones.
func nameOutside(prefix string, shards ...string) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		ok := true
		for _, s := range shards {
			ok = ok && store.Shard(name) != s
		}
		if ok {
			return name
		}
	}
}

// countingStorer counts tree reads, to hold Subtrees to its cost.
type countingStorer struct {
	storage.Storer
	trees *atomic.Int64
}

func (c countingStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if t == plumbing.TreeObject {
		c.trees.Add(1)
	}
	return c.Storer.EncodedObject(t, h)
}

func TestSubtrees(t *testing.T) {
	rm := newRemote(t, "path")
	r := open(t, rm)
	ctx := context.Background()
	seed := remoteHead(t, rm)

	// Only stores/local/.keep so far: no shard folders.
	got, err := r.Subtrees(ctx, "", "stores/local")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Subtrees before any store: %v, %v; want an empty map", got, err)
	}

	same, shardA := namesInShard("same", 2)
	other := nameOutside("other", shardA)
	shardB := store.Shard(other)
	res := r.SubmitAll(ctx, []Change{
		change("local", same[0], ActionCreate, 1, "s1"),
		change("local", same[1], ActionCreate, 1, "s2"),
		change("local", other, ActionCreate, 1, "s3"),
	})
	for _, x := range res {
		mustOK(t, x)
	}
	c1 := remoteHead(t, rm)

	at1, err := r.Subtrees(ctx, c1, "stores/local")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, s := range []string{shardA, shardB} {
		want[s] = runGit(t, rm.bare, "rev-parse", c1+":stores/local/"+s)
	}
	if !reflect.DeepEqual(at1, want) {
		t.Fatalf("Subtrees(c1) = %v, want (git rev-parse) %v", at1, want)
	}
	if head, err := r.Subtrees(ctx, "", "stores/local"); err != nil || !reflect.DeepEqual(head, at1) {
		t.Fatalf("Subtrees at head = %v, %v; want %v", head, err, at1)
	}
	// One level down works the same: store folders of a shard.
	stores, err := r.Subtrees(ctx, c1, "stores/local/"+shardA)
	if err != nil || len(stores) != 2 || stores[same[0]] != runGit(t, rm.bare, "rev-parse", c1+":"+store.Dir("local", same[0])) {
		t.Fatalf("Subtrees of shard %s = %v, %v", shardA, stores, err)
	}

	// Changing the store in shard B changes B's hash and nothing else.
	mustOK(t, r.Submit(ctx, change("local", other, ActionUpdate, 2, "s4")))
	c2 := remoteHead(t, rm)
	at2, err := r.Subtrees(ctx, c2, "stores/local")
	if err != nil {
		t.Fatal(err)
	}
	if at2[shardA] != at1[shardA] || at2[shardB] == at1[shardB] || len(at2) != 2 {
		t.Fatalf("after updating %s (shard %s): c1 %v, c2 %v", other, shardB, at1, at2)
	}
	if got := runGit(t, rm.bare, "rev-parse", c2+":stores/local/"+shardB); at2[shardB] != got {
		t.Fatalf("shard %s at c2 = %s, git says %s", shardB, at2[shardB], got)
	}
	// An older commit still reads as it was.
	if again, err := r.Subtrees(ctx, c1, "stores/local"); err != nil || !reflect.DeepEqual(again, at1) {
		t.Fatalf("Subtrees(c1) after c2 = %v, %v", again, err)
	}

	// Missing folders: empty, not an error (a cluster with no stores yet; the seed
	// commit has stores/local but no shard).
	for _, q := range []struct{ commit, dir string }{
		{c2, "stores/elsewhere"}, {c2, "nothing/here/at/all"}, {seed, "stores/local"},
	} {
		got, err := r.Subtrees(ctx, q.commit, q.dir)
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("Subtrees(%s, %s) = %v, %v; want an empty map", q.commit, q.dir, got, err)
		}
	}
	// A file on the path is an error, not "missing".
	for _, dir := range []string{"README.md", "README.md/x", "stores/local/.keep", store.Dir("local", other) + "/namespace.yaml"} {
		if _, err := r.Subtrees(ctx, c2, dir); !errors.Is(err, ErrNotDir) {
			t.Fatalf("Subtrees(%s) = %v, want ErrNotDir", dir, err)
		}
	}
	for _, dir := range []string{"/stores", "stores/", "stores//local", "stores/../x", "./stores"} {
		if _, err := r.Subtrees(ctx, c2, dir); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Subtrees(%q) = %v, want ErrInvalid", dir, err)
		}
	}
	for _, c := range []string{"0123456789012345678901234567890123456789", "main", c2[:12]} {
		if _, err := r.Subtrees(ctx, c, "stores/local"); !errors.Is(err, ErrUnknownCommit) {
			t.Fatalf("Subtrees at %q = %v, want ErrUnknownCommit", c, err)
		}
	}

	// Cost: one tree per path element to find the folder, plus the folder itself.
	var trees atomic.Int64
	r.mu.Lock()
	orig := r.st
	r.st = countingStorer{Storer: orig, trees: &trees}
	r.mu.Unlock()
	_, err = r.Subtrees(ctx, c2, "stores/local")
	r.mu.Lock()
	r.st = orig
	r.mu.Unlock()
	if err != nil || trees.Load() != 3 {
		t.Fatalf("Subtrees(stores/local) read %d trees (%v), want 3", trees.Load(), err)
	}
}

func TestSubtreesAndArchiveOnEmptyBranch(t *testing.T) {
	bare := filepath.Join(t.TempDir(), "empty.git")
	runGit(t, filepath.Dir(bare), "init", "-q", "--bare", "--initial-branch=main", bare)
	r := open(t, remote{kind: "path", url: bare, bare: bare})
	ctx := context.Background()
	got, err := r.Subtrees(ctx, "", "stores/local")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Subtrees on an empty branch: %v, %v; want an empty map", got, err)
	}
	var buf bytes.Buffer
	if err := r.Archive(ctx, "", "stores/local/00", &buf); err != nil {
		t.Fatal(err)
	}
	if entries := readArchive(t, buf.Bytes()); len(entries) != 0 {
		t.Fatalf("archive on an empty branch holds %v", entries)
	}
}

// tarEntry is one archive entry as read back.
type tarEntry struct {
	Name    string
	Type    byte
	Mode    int64
	Content string
}

// readArchive reads a gzipped tar fully and checks the fields every entry must have.
func readArchive(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() || zr.Comment != "" || len(zr.Extra) != 0 {
		t.Fatalf("gzip header carries name %q, mtime %v, comment %q, extra %q", zr.Name, zr.ModTime, zr.Comment, zr.Extra)
	}
	return readTar(t, zr, true)
}

func readTar(t *testing.T, r io.Reader, strict bool) []tarEntry {
	t.Helper()
	tr := tar.NewReader(r)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // git archive's commit id comment
		}
		c, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strict && (!h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || len(h.PAXRecords) != 0) {
			t.Fatalf("entry %s: mtime %v uid %d gid %d uname %q gname %q pax %v", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname, h.PAXRecords)
		}
		out = append(out, tarEntry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Content: string(c)})
	}
	return out
}

func archive(t *testing.T, r *Repo, commit, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Archive(context.Background(), commit, dir, &buf); err != nil {
		t.Fatalf("Archive(%s, %s): %v", commit, dir, err)
	}
	return buf.Bytes()
}

// gitArchive is `git archive --format=tar <commit>:<dir>` read back.
func gitArchive(t *testing.T, bare, commit, dir string) []tarEntry {
	t.Helper()
	out, err := gitExec(bare, "archive", "--format=tar", commit+":"+dir).Output()
	if err != nil {
		t.Fatalf("git archive %s:%s: %v", commit, dir, err)
	}
	return readTar(t, bytes.NewReader(out), false)
}

func TestArchive(t *testing.T) {
	for _, clone := range []string{"memory", "disk"} {
		t.Run(clone, func(t *testing.T) {
			rm := newRemote(t, "http")
			r := open(t, rm, func(o *Options) {
				if clone == "disk" {
					o.Dir = filepath.Join(t.TempDir(), "clone")
				}
			})
			ctx := context.Background()

			same, shardA := namesInShard("arch", 3)
			other := nameOutside("elsewhere", shardA)
			shardB := store.Shard(other)
			nested := change("local", same[2], ActionCreate, 1, "a3")
			nested.Files = append(nested.Files, File{Path: "extra/notes.txt", Content: []byte("nested\n")},
				File{Path: "extra/deeper/z.txt", Content: []byte("z\n")}, File{Path: "a.txt", Content: []byte("")})
			for _, x := range r.SubmitAll(ctx, []Change{
				change("local", same[0], ActionCreate, 1, "a1"),
				change("local", same[1], ActionCreate, 1, "a2"),
				nested,
				change("local", other, ActionCreate, 1, "a4"),
			}) {
				mustOK(t, x)
			}
			c1 := remoteHead(t, rm)
			dirA := "stores/local/" + shardA
			a1 := archive(t, r, c1, dirA)

			// The archive holds exactly what git archive finds in the tree, in the same
			// order, with our fixed modes.
			got := readArchive(t, a1)
			ref := gitArchive(t, rm.bare, c1, dirA)
			if len(got) != len(ref) {
				t.Fatalf("archive has %d entries, git archive %d:\n%v\n%v", len(got), len(ref), got, ref)
			}
			dirs, files := 0, 0
			for i := range got {
				g, w := got[i], ref[i]
				if g.Name != w.Name || g.Type != w.Type || g.Content != w.Content {
					t.Fatalf("entry %d: got %s (type %c, %d bytes), git archive %s (type %c, %d bytes)",
						i, g.Name, g.Type, len(g.Content), w.Name, w.Type, len(w.Content))
				}
				switch g.Type {
				case tar.TypeDir:
					dirs++
					if g.Mode != 0o755 {
						t.Fatalf("%s: mode %o, want 755", g.Name, g.Mode)
					}
				case tar.TypeReg:
					files++
					if g.Mode != 0o644 {
						t.Fatalf("%s: mode %o, want 644", g.Name, g.Mode)
					}
				default:
					t.Fatalf("%s: type %c", g.Name, g.Type)
				}
			}
			// 3 stores + extra/ + extra/deeper/; 5 files each + 3 extra.
			if dirs != 5 || files != 18 {
				t.Fatalf("%d folders and %d files, want 5 and 18: %v", dirs, files, got)
			}
			if got[0].Name != same[0]+"/" && got[0].Name != same[1]+"/" && got[0].Name != same[2]+"/" {
				t.Fatalf("first entry %s is not a store folder", got[0].Name)
			}
			// Each store's files, read through Store, are in the archive byte for byte.
			byName := map[string]string{}
			for _, e := range got {
				byName[e.Name] = e.Content
			}
			for _, name := range same {
				_, fs, err := r.Store(ctx, store.Dir("local", name))
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range fs {
					if c, ok := byName[name+"/"+f.Path]; !ok || c != string(f.Content) {
						t.Fatalf("%s/%s: in archive %v, content equal %v", name, f.Path, ok, c == string(f.Content))
					}
				}
			}

			// Deterministic: again, and at the head, the same bytes.
			if again := archive(t, r, c1, dirA); !bytes.Equal(again, a1) {
				t.Fatal("two archives of the same tree differ")
			}
			if head := archive(t, r, "", dirA); !bytes.Equal(head, a1) {
				t.Fatal("archive at the head (= c1) differs from archive at c1")
			}

			// A commit touching only shard B leaves shard A's bytes as they were.
			b1 := archive(t, r, c1, "stores/local/"+shardB)
			mustOK(t, r.Submit(ctx, change("local", other, ActionUpdate, 2, "a5")))
			c2 := remoteHead(t, rm)
			if a2 := archive(t, r, c2, dirA); !bytes.Equal(a2, a1) {
				t.Fatal("shard A's archive changed after a commit that only touched shard B")
			}
			b2 := archive(t, r, c2, "stores/local/"+shardB)
			if bytes.Equal(b1, b2) {
				t.Fatal("shard B's archive did not change after its store changed")
			}
			if g, w := readArchive(t, b2), gitArchive(t, rm.bare, c2, "stores/local/"+shardB); !reflect.DeepEqual(names(g), names(w)) {
				t.Fatalf("shard B at c2: %v, git archive %v", names(g), names(w))
			}

			// Missing folder: a valid, empty archive.
			for _, dir := range []string{"stores/local/zz-none", "stores/nowhere"} {
				if e := readArchive(t, archive(t, r, c2, dir)); len(e) != 0 {
					t.Fatalf("archive of missing %s holds %v", dir, e)
				}
			}
			var buf bytes.Buffer
			if err := r.Archive(ctx, c2, "README.md", &buf); !errors.Is(err, ErrNotDir) || buf.Len() != 0 {
				t.Fatalf("archive of a file: %v, %d bytes written", err, buf.Len())
			}
			if err := r.Archive(ctx, "0123456789012345678901234567890123456789", dirA, &buf); !errors.Is(err, ErrUnknownCommit) {
				t.Fatalf("archive of an unknown commit: %v", err)
			}

			// Pushed from outside: an executable keeps its x bit; a symlink or a
			// submodule is refused before anything is written.
			work := filepath.Join(t.TempDir(), "w")
			runGit(t, filepath.Dir(work), "clone", "-q", rm.url, work)
			script := filepath.Join(work, store.Dir("local", same[0]), "run.sh")
			if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			runGit(t, work, "add", "-A")
			runGit(t, work, "update-index", "--chmod=+x", store.Dir("local", same[0])+"/run.sh")
			runGit(t, work, "commit", "-qm", "outside: a script")
			linkStore := nameOutside("linked", shardA, shardB)
			linkDir := filepath.Join(work, store.Dir("local", linkStore))
			if err := os.MkdirAll(linkDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../../../../README.md", filepath.Join(linkDir, "link.yaml")); err != nil {
				t.Fatal(err)
			}
			runGit(t, work, "add", "-A")
			runGit(t, work, "commit", "-qm", "outside: a symlink")
			subStore := nameOutside("sub", shardA, shardB, store.Shard(linkStore))
			runGit(t, work, "update-index", "--add", "--cacheinfo",
				"160000,"+c1+","+store.Dir("local", subStore)+"/module")
			runGit(t, work, "commit", "-qm", "outside: a submodule")
			runGit(t, work, "push", "-q", "origin", "main")
			c3 := runGit(t, work, "rev-parse", "HEAD")

			a3 := readArchive(t, archive(t, r, c3, dirA)) // fetched on demand
			found := false
			for _, e := range a3 {
				if e.Name == same[0]+"/run.sh" {
					found = true
					if e.Mode != 0o755 || e.Type != tar.TypeReg {
						t.Fatalf("run.sh: mode %o type %c, want 755 regular", e.Mode, e.Type)
					}
				}
			}
			if !found {
				t.Fatalf("run.sh missing from %v", names(a3))
			}
			for _, s := range []string{store.Shard(linkStore), store.Shard(subStore)} {
				buf.Reset()
				err := r.Archive(ctx, c3, "stores/local/"+s, &buf)
				if !errors.Is(err, ErrUnsupportedEntry) || buf.Len() != 0 {
					t.Fatalf("archive of shard %s with a symlink/submodule: %v, %d bytes written", s, err, buf.Len())
				}
			}
			// The other shards' listing is unaffected by what the bad shards hold.
			if sub, err := r.Subtrees(ctx, c3, "stores/local"); err != nil || len(sub) != 4 {
				t.Fatalf("Subtrees at c3: %v, %v", sub, err)
			}
		})
	}
}

func names(es []tarEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

// TestArchiveWhileWriting reads while the writer commits and fetches: every archive
// taken at a commit mid-stream equals the one taken at that commit afterwards. Run
// with -race to check the storage locking.
func TestArchiveWhileWriting(t *testing.T) {
	for _, clone := range []string{"memory", "disk"} {
		t.Run(clone, func(t *testing.T) {
			rm := newRemote(t, "path")
			r := open(t, rm, func(o *Options) {
				if clone == "disk" {
					o.Dir = filepath.Join(t.TempDir(), "clone")
				}
			})
			ctx := context.Background()
			busy, shard := namesInShard("busy", 1)
			dir := "stores/local/" + shard
			mustOK(t, r.Submit(ctx, change("local", busy[0], ActionCreate, 1, "w0")))

			done := make(chan error, 1)
			go func() {
				defer close(done)
				for i := 1; i <= 15; i++ {
					c := change("local", busy[0], ActionUpdate, i+1, fmt.Sprintf("w%d", i))
					if i%3 == 0 {
						c = change("local", fmt.Sprintf("busy-new-%d", i), ActionCreate, 1, fmt.Sprintf("w%d", i))
					}
					if res := r.Submit(ctx, c); res.Err != nil {
						done <- res.Err
						return
					}
					if err := r.Refresh(ctx); err != nil {
						done <- err
						return
					}
				}
			}()
			taken := map[string][]byte{}
			for running := true; running; {
				select {
				case err, ok := <-done:
					if ok && err != nil {
						t.Fatal(err)
					}
					running = false
				default:
				}
				head, err := r.Head()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Subtrees(ctx, "", "stores/local"); err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := r.Archive(ctx, head, dir, &buf); err != nil {
					t.Fatal(err)
				}
				taken[head] = buf.Bytes()
			}
			t.Logf("%d distinct heads archived while writing", len(taken))
			for commit, b := range taken {
				if !bytes.Equal(b, archive(t, r, commit, dir)) {
					t.Fatalf("archive at %s taken while writing differs from one taken after", commit)
				}
				if g, w := readArchive(t, b), gitArchive(t, rm.bare, commit, dir); !reflect.DeepEqual(names(g), names(w)) {
					t.Fatalf("archive at %s: %v, git archive %v", commit, names(g), names(w))
				}
			}
		})
	}
}
