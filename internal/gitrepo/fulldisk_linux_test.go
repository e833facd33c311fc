package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/testfs"
)

// mountTmpfs mounts a tmpfs of size (mount's syntax, "2m") on a new directory, so a
// test can fill a real filesystem. It needs root (or CAP_SYS_ADMIN): without, the test
// fails saying so, unless GITREPO_SKIP_TMPFS is set.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("GITREPO_SKIP_TMPFS") != "" {
			t.Skipf("mount tmpfs: %v (GITREPO_SKIP_TMPFS is set)", err)
		}
		t.Fatalf("mount a %s tmpfs on %s: %v: the full-disk tests need root or CAP_SYS_ADMIN; set GITREPO_SKIP_TMPFS=1 to skip them", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			procs, _ := filepath.Glob("/proc/[0-9]*")
			for _, p := range procs {
				if l, _ := os.Readlink(p + "/cwd"); strings.HasPrefix(l, dir) {
					c, _ := os.ReadFile(p + "/cmdline")
					t.Logf("cwd: %s %s %q", p, l, c)
				}
				fds, _ := os.ReadDir(p + "/fd")
				for _, fd := range fds {
					if l, _ := os.Readlink(p + "/fd/" + fd.Name()); strings.HasPrefix(l, dir) {
						c, _ := os.ReadFile(p + "/cmdline")
						t.Logf("open: %s %s %q", p, l, c)
					}
				}
			}
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// leftovers lists what a failed write must not leave in a repository's pack folder:
// temporary files, and a pack without its index.
func leftovers(t *testing.T, repo string) []string {
	t.Helper()
	dir := filepath.Join(repo, "objects", "pack")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	var bad []string
	for n := range names {
		base, isPack := strings.CutSuffix(n, ".pack")
		if strings.Contains(n, "tmp") || isPack && !names[base+".idx"] {
			bad = append(bad, n)
		}
	}
	return bad
}

// cloneHead is the clone's tracking ref on disk, as git reads it.
func cloneHead(t *testing.T, dir string) string {
	return runGit(t, dir, "rev-parse", "refs/remotes/origin/main")
}

// A full disk used to let the writer move the clone's tip to a commit whose objects it
// never wrote: every later write failed "object not found", and so did every start.
// Now the write fails with ErrStorage and nothing moves anywhere; once space is freed
// the next write lands, without a restart.
func TestFullDisk(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup returns the remote and the clone directory; full is the filesystem
		// to fill.
		setup func(t *testing.T, full string) (remote, string)
	}{
		{"embedded repository and clone", func(t *testing.T, full string) (remote, string) {
			bare := filepath.Join(full, "fleet.git")
			if _, err := Seed(context.Background(), bare, "main", skeleton, Signature{}); err != nil {
				t.Fatal(err)
			}
			return remote{url: bare, bare: bare}, filepath.Join(full, "clone.git")
		}},
		{"clone only, remote over HTTP", func(t *testing.T, full string) (remote, string) {
			return newRemote(t, "http"), filepath.Join(full, "clone.git")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := mountTmpfs(t, "2m")
			rm, dir := tc.setup(t, full)
			r := open(t, rm, func(o *Options) { o.Dir = dir })
			ctx := context.Background()
			mustOK(t, r.Submit(ctx, change("local", "before", ActionCreate, 1, "req-before")))
			head, tip := remoteHead(t, rm), cloneHead(t, dir)
			if err := r.Writable(ctx); err != nil {
				t.Fatalf("Writable before the disk is full: %v", err)
			}

			free := testfs.Fill(t, full)
			t0 := time.Now()
			res := r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-shop"))
			took := time.Since(t0)
			t.Logf("write on the full disk: %v after %v", res.Err, took)
			if !errors.Is(res.Err, ErrStorage) || !errors.Is(res.Err, syscall.ENOSPC) {
				t.Fatalf("write on a full disk: %+v, want ErrStorage (no space left)", res)
			}
			if took > 2*time.Second {
				t.Errorf("the failing write took %v: a full disk is not retried", took)
			}
			if got := remoteHead(t, rm); got != head {
				t.Errorf("remote moved to %s on a failed write", got)
			}
			if got, _ := r.Head(); got != tip || cloneHead(t, dir) != tip {
				t.Errorf("clone moved to %s (on disk %s), was %s", got, cloneHead(t, dir), tip)
			}
			if err := r.Writable(ctx); !errors.Is(err, ErrStorage) {
				t.Errorf("Writable on a full disk: %v", err)
			}
			for _, repo := range []string{dir, rm.bare} {
				if bad := leftovers(t, repo); len(bad) > 0 {
					t.Errorf("%s keeps %v after the failed write", repo, bad)
				}
			}

			free()
			if err := r.Writable(ctx); err != nil {
				t.Errorf("Writable once space is freed: %v", err)
			}
			t0 = time.Now()
			res = mustOK(t, r.Submit(ctx, change("local", "shop", ActionCreate, 1, "req-shop")))
			t.Logf("same write once space is freed: %v", time.Since(t0))
			if remoteHead(t, rm) != res.Commit || cloneHead(t, dir) != res.Commit {
				t.Errorf("commit %s, remote %s, clone %s", res.Commit, remoteHead(t, rm), cloneHead(t, dir))
			}
			mustOK(t, r.Submit(ctx, change("local", "before", ActionUpdate, 2, "req-update")))
			fsck(t, dir)
			fsck(t, rm.bare)

			// And a restart finds the clone whole.
			r.Close()
			r2 := open(t, rm, func(o *Options) { o.Dir = dir })
			if list, err := r2.ListStores(ctx); err != nil || len(list) != 2 {
				t.Fatalf("reopened clone lists %+v %v", list, err)
			}
			mustOK(t, r2.Submit(ctx, change("local", "after", ActionCreate, 1, "req-after")))
			if _, err := os.Stat(dir + damagedSuffix); err == nil {
				t.Error("the clone was found damaged on restart")
			}
			fsck(t, dir)
			fsck(t, rm.bare)
			r2.Close()
		})
	}
}

// fillBut fills dir's filesystem and then frees pages pages of it (a tmpfs counts its
// size in pages), so the next write runs out of space after that many pages.
func fillBut(t *testing.T, dir string, pages int) func() {
	t.Helper()
	free := testfs.Fill(t, dir)
	path := filepath.Join(dir, "filler")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	used := (fi.Size() + page - 1) / page
	if err := os.Truncate(path, max(0, used-int64(pages))*page); err != nil {
		t.Fatal(err)
	}
	return free
}

// The disk fills up at every point of a write in turn: each write either lands whole
// or fails with ErrStorage having moved nothing and left nothing behind, and the
// repositories stay whole throughout.
func TestFullDiskAtEveryWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inDisk bool // the clone on the full disk too (else in memory)
	}{
		{"embedded repository and clone", true},
		{"embedded repository, clone in memory", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := mountTmpfs(t, "2m")
			bare := filepath.Join(full, "fleet.git")
			if _, err := Seed(context.Background(), bare, "main", skeleton, Signature{}); err != nil {
				t.Fatal(err)
			}
			rm := remote{url: bare, bare: bare}
			dir := ""
			if tc.inDisk {
				dir = filepath.Join(full, "clone.git")
			}
			var logs lockedBuf
			r := open(t, rm, withLog(&logs), func(o *Options) { o.Dir = dir })
			ctx := context.Background()
			failed, landed := 0, 0
			for pages := 0; pages <= 24; pages++ {
				head, _ := r.Head()
				free := fillBut(t, full, pages)
				name := fmt.Sprintf("shop-%d", pages)
				res := r.Submit(ctx, change("local", name, ActionCreate, 1, "req-"+name))
				if res.Err != nil {
					failed++
					t.Logf("%d pages free: %v", pages, res.Err)
					if !errors.Is(res.Err, ErrStorage) {
						t.Fatalf("%d pages free: %v, want ErrStorage", pages, res.Err)
					}
					if got, _ := r.Head(); got != head || remoteHead(t, rm) != head {
						t.Fatalf("%d pages free: failed write moved the clone to %s, the remote to %s, from %s", pages, got, remoteHead(t, rm), head)
					}
				} else {
					landed++
					if got, _ := r.Head(); got != res.Commit || remoteHead(t, rm) != res.Commit {
						t.Fatalf("%d pages free: commit %s, clone %s, remote %s", pages, res.Commit, got, remoteHead(t, rm))
					}
				}
				for _, repo := range []string{dir, bare} {
					if repo == "" {
						continue
					}
					if bad := leftovers(t, repo); len(bad) > 0 {
						t.Fatalf("%d pages free: %s keeps %v", pages, repo, bad)
					}
				}
				if _, err := os.Stat(filepath.Join(bare, "refs", "heads", "main.lock")); err == nil {
					t.Fatalf("%d pages free: the ref lock stays", pages)
				}
				free()
			}
			t.Logf("%d writes failed on the full disk, %d landed", failed, landed)
			if failed == 0 || landed == 0 {
				t.Errorf("the sweep missed the edge: %d failed, %d landed", failed, landed)
			}
			mustOK(t, r.Submit(ctx, change("local", "after", ActionCreate, 1, "req-after")))
			r.Close()
			fsck(t, bare)
			if dir != "" {
				fsck(t, dir)
				r2 := open(t, rm, func(o *Options) { o.Dir = dir })
				mustOK(t, r2.Submit(ctx, change("local", "restarted", ActionCreate, 1, "req-restarted")))
				if _, err := os.Stat(dir + damagedSuffix); err == nil {
					t.Errorf("the clone was found damaged on restart:\n%s", logs.String())
				}
				r2.Close()
				fsck(t, dir)
			}
		})
	}
}
