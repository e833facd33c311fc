package gitrepo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// A remote that is a local bare repository is written directly: the new objects as one
// pack with its index (two files per commit; creating a file per object cost ~0.4 ms
// each on this machine's filesystem), then the branch moved with git's own lock-file protocol
// (refs/heads/<b>.lock created exclusively, old value checked, renamed into place), so
// a concurrent git push or another writer is serialized exactly as git serializes
// itself; a lock left by a writer that died is taken over (reflock.go). This skips a
// git-receive-pack process per commit.

// localRepoPath returns the bare repository directory of a file remote, or "" when the
// path is not a bare repository this process can write (then the transport is used).
func localRepoPath(ep string) string {
	p := strings.TrimPrefix(ep, "file://")
	if _, err := os.Stat(filepath.Join(p, "objects")); err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(p, "refs")); err != nil {
		return ""
	}
	return p
}

// pushLocal writes the commit's objects into the local remote and moves its branch
// from base to commit. It reports false without error when the branch had moved, or
// is being moved by a live writer. Failed writes of its files are ErrStorage, with the
// branch where it was.
func (r *Repo) pushLocal(base, commit plumbing.Hash, objs *objectSet) (bool, error) {
	repo, ref := r.localPath, r.branchRef
	pp, err := objs.packed()
	if err != nil {
		return false, err
	}
	packDir := filepath.Join(repo, "objects", "pack")
	if err := writePack(filepath.Join(packDir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
		return false, storageErr("write pack to "+repo, err)
	}
	// The pack's name must be as durable as the ref that will name its objects.
	if err := syncDir(packDir); err != nil {
		return false, storageErr("write pack to "+repo, err)
	}
	refPath := filepath.Join(repo, filepath.FromSlash(ref.String()))
	if err := os.MkdirAll(filepath.Dir(refPath), 0o755); err != nil {
		return false, storageErr("lock "+ref.String(), err)
	}
	lock, err := lockRef(refPath, r.log)
	if err != nil || lock == nil {
		return false, err
	}
	defer lock.release()
	cur, err := readLocalRef(repo, ref)
	if err != nil {
		return false, err
	}
	if cur != base {
		return false, nil
	}
	if err := lock.commit(commit); err != nil {
		return false, storageErr("move "+ref.String(), err)
	}
	return true, nil
}

// readLocalRef reads a branch from its loose ref file or, failing that, packed-refs.
func readLocalRef(repo string, ref plumbing.ReferenceName) (plumbing.Hash, error) {
	b, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(ref.String())))
	if err == nil {
		s := strings.TrimSpace(string(b))
		if !isHex40(s) {
			return plumbing.ZeroHash, fmt.Errorf("gitrepo: %s is not a plain ref: %q", ref, s)
		}
		return plumbing.NewHash(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, err
	}
	f, err := os.Open(filepath.Join(repo, "packed-refs"))
	if errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "^") {
			continue
		}
		h, name, ok := strings.Cut(line, " ")
		if ok && name == ref.String() && isHex40(h) {
			return plumbing.NewHash(h), nil
		}
	}
	return plumbing.ZeroHash, sc.Err()
}

// gcEvery is how many commits the writer puts into a local remote between `git gc
// --auto` runs: each commit adds a pack, and git's receive-pack would do the same
// housekeeping after a push. gc --auto only repacks past gc.autoPackLimit (50) packs.
const gcEvery = 50

// maybeGC starts `git gc --auto` on the local remote in the background, one at a time;
// Close waits for it, so nothing writes the remote once Close returned.
// Without the git binary the packs simply accumulate.
func (r *Repo) maybeGC() {
	if r.localCommits.Add(1)%gcEvery != 0 || !r.gcRunning.CompareAndSwap(false, true) {
		return
	}
	r.gcs.Add(1)
	go func() {
		defer r.gcs.Done()
		defer r.gcRunning.Store(false)
		// Not detached (git's default for --auto): Close waits for the gc itself,
		// not for a git that handed it to a process of its own.
		cmd := exec.Command("git", "-c", "gc.autoDetach=false", "gc", "--auto", "--quiet")
		cmd.Dir = r.localPath
		_ = cmd.Run()
	}()
}
