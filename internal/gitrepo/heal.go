package gitrepo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// An on-disk clone is a cache of the remote: everything in it came from the remote or
// went to it. One whose tip names objects it does not hold (a machine crash loses objects
// written without a sync; a disk that filled up under an older version of this
// package; a file deleted by hand) would fail every write with "object not found", and
// every start after. So Open checks the clone before using it, and a clone that fails
// the check is moved aside and cloned again: the start takes as long as a first start,
// instead of not happening.
//
// The check is bounded by the fleet's width, not its history: the tip commit, its root
// tree, and the trees above the store folders (stores/, each cluster, each shard),
// which are what every write and every listing reads first. Older commits are read
// only by History and the Request-Id index, which both stop quietly where history is
// missing.

// damagedSuffix names where a damaged clone is moved: one copy is kept, for a look at
// what went wrong, and replaced by the next.
const damagedSuffix = ".damaged"

// openDisk opens the clone in Options.Dir, tidied and checked, or creates it.
func (r *Repo) openDisk() error {
	dir := r.opts.Dir
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		r.tidyClone()
		err := r.openExisting()
		if err == nil {
			err = r.checkClone()
		}
		if err == nil {
			return nil
		}
		if err := r.setAside(err); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return storageErr("create the clone "+dir, err)
	}
	var err error
	r.st = r.diskStorage(dir)
	r.repo, err = git.Init(r.st, nil)
	if err != nil {
		return fmt.Errorf("gitrepo: clone dir %s: %w", dir, err)
	}
	return nil
}

func (r *Repo) openExisting() error {
	var err error
	r.st = r.diskStorage(r.opts.Dir)
	r.repo, err = git.Open(r.st, nil)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	return nil
}

// checkClone reads the tip commit and the trees above the store folders.
func (r *Repo) checkClone() error {
	ref, err := r.st.Reference(r.trackRef)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil // nothing fetched yet
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", r.trackRef, err)
	}
	c, err := object.GetCommit(r.st, ref.Hash())
	if err != nil {
		return fmt.Errorf("tip commit %s: %w", ref.Hash(), err)
	}
	root, err := object.GetTree(r.st, c.TreeHash)
	if err != nil {
		return fmt.Errorf("root tree %s of %s: %w", c.TreeHash, c.Hash, err)
	}
	level := []*object.Tree{root}
	for _, name := range []string{"stores", "", ""} { // stores/, clusters, shards
		var next []*object.Tree
		for _, t := range level {
			for _, e := range t.Entries {
				if e.Mode != filemode.Dir || name != "" && e.Name != name {
					continue
				}
				sub, err := object.GetTree(r.st, e.Hash)
				if err != nil {
					return fmt.Errorf("tree %s (%s) of %s: %w", e.Hash, e.Name, c.Hash, err)
				}
				next = append(next, sub)
			}
		}
		level = next
	}
	return nil
}

// setAside moves the damaged clone to Dir+damagedSuffix, replacing an older one, so
// the clone is made anew. Where it cannot be moved (Dir is a mount point) its content
// is removed instead: it is a cache of the remote.
func (r *Repo) setAside(cause error) error {
	dir := r.opts.Dir
	aside := dir + damagedSuffix
	r.log.Warn("gitrepo: the clone on disk is damaged; moving it aside and cloning again",
		"dir", dir, "aside", aside, "err", r.red.err(cause))
	r.st, r.repo = nil, nil
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("gitrepo: remove the older damaged clone %s: %w", aside, err)
	}
	if err := os.Rename(dir, aside); err == nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("gitrepo: clear the damaged clone %s: %w", dir, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("gitrepo: clear the damaged clone %s: %w", dir, err)
		}
	}
	return nil
}

// sameDir reports whether a and b are the same existing directory.
func sameDir(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
