package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/go-git/go-billy/v5/osfs"
)

// Seed makes dir a bare repository whose branch (default main) holds the files of fsys,
// e.g. the fleet/ skeleton, and returns the branch's commit. A repository whose branch
// already has commits is left alone (its tip is returned), so Seed is safe to call on
// every start before Open.
func Seed(ctx context.Context, dir, branch string, fsys fs.FS, sig Signature) (string, error) {
	if branch == "" {
		branch = "main"
	}
	if sig.Name == "" {
		sig = Signature{Name: "Storefleet", Email: "storefleet@localhost"}
	}
	ref := plumbing.NewBranchReferenceName(branch)
	repo, err := openOrInitBare(dir, ref)
	if err != nil {
		return "", fmt.Errorf("gitrepo: seed %s: %w", dir, err)
	}
	if r, err := repo.Storer.Reference(ref); err == nil {
		return r.Hash().String(), nil
	} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", err
	}
	files, err := readSkeleton(ctx, fsys)
	if err != nil {
		return "", err
	}
	objs, commit, err := seedCommit(files, sig)
	if err != nil {
		return "", err
	}
	if err := storeSeed(dir, ref, objs, commit); err != nil {
		return "", err
	}
	return commit.String(), nil
}

// openOrInitBare opens the repository at dir, or creates it with ref as the default
// branch when dir holds none yet: the embedded repository is created on first start.
func openOrInitBare(dir string, ref plumbing.ReferenceName) (*git.Repository, error) {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return git.PlainOpen(dir)
	}
	return git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: ref},
	})
}

// readSkeleton reads every regular file of fsys and checks all their paths up front,
// so a bad skeleton fails before a single object is written.
func readSkeleton(ctx context.Context, fsys fs.FS) ([]File, error) {
	if fsys == nil {
		return nil, nil
	}
	var files []File
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, File{Path: p, Content: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gitrepo: seed: read skeleton: %w", err)
	}
	for _, f := range files {
		if !validFilePath(f.Path) {
			return nil, invalid("seed file path %q", f.Path)
		}
	}
	return files, nil
}

// seedCommit builds the first commit's objects in memory. An empty skeleton still gets
// a commit, of the empty tree: the branch existing is what tells the next start's Seed
// that the repository is seeded.
func seedCommit(files []File, sig Signature) (*objectSet, plumbing.Hash, error) {
	objs := newObjectSet()
	var root plumbing.Hash
	var err error
	if len(files) > 0 {
		root, err = buildFolder(files, objs)
	} else {
		var t plumbing.EncodedObject
		t, err = treeObject(nil)
		if err == nil {
			root = objs.add(t)
		}
	}
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	now := time.Now()
	co := &object.Commit{
		Author:    object.Signature{Name: sig.Name, Email: sig.Email, When: now},
		Committer: object.Signature{Name: sig.Name, Email: sig.Email, When: now},
		Message:   "Seed the fleet repository\n\nThe empty fleet layout every store folder is added to.\n",
		TreeHash:  root,
	}
	obj := &plumbing.MemoryObject{}
	if err := co.Encode(obj); err != nil {
		return nil, plumbing.ZeroHash, err
	}
	return objs, objs.add(obj), nil
}

// storeSeed writes the seed into dir; the order of the writes is what makes a crash
// harmless (see below).
func storeSeed(dir string, ref plumbing.ReferenceName, objs *objectSet, commit plumbing.Hash) error {
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	for _, h := range objs.order {
		if _, err := st.SetEncodedObject(objs.byHash[h]); err != nil {
			return err
		}
	}
	// Seed runs once at start, before any writer; the objects are in place before the
	// ref points at them, so a crash leaves an unseeded repository, never a broken one.
	if err := st.SetReference(plumbing.NewHashReference(ref, commit)); err != nil {
		return err
	}
	return st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref))
}
