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
	var repo *git.Repository
	var err error
	if _, statErr := os.Stat(filepath.Join(dir, "HEAD")); statErr == nil {
		repo, err = git.PlainOpen(dir)
	} else {
		repo, err = git.PlainInitWithOptions(dir, &git.PlainInitOptions{
			Bare:        true,
			InitOptions: git.InitOptions{DefaultBranch: ref},
		})
	}
	if err != nil {
		return "", fmt.Errorf("gitrepo: seed %s: %w", dir, err)
	}
	if r, err := repo.Storer.Reference(ref); err == nil {
		return r.Hash().String(), nil
	} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", err
	}
	var files []File
	if fsys != nil {
		err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
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
			return "", fmt.Errorf("gitrepo: seed: read skeleton: %w", err)
		}
	}
	for _, f := range files {
		if !validFilePath(f.Path) {
			return "", invalid("seed file path %q", f.Path)
		}
	}
	objs := newObjectSet()
	var root plumbing.Hash
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
		return "", err
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
		return "", err
	}
	commit := objs.add(obj)
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	for _, h := range objs.order {
		if _, err := st.SetEncodedObject(objs.byHash[h]); err != nil {
			return "", err
		}
	}
	// Seed runs once at start, before any writer; the objects are in place before the
	// ref points at them, so a crash leaves an unseeded repository, never a broken one.
	if err := st.SetReference(plumbing.NewHashReference(ref, commit)); err != nil {
		return "", err
	}
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref)); err != nil {
		return "", err
	}
	return commit.String(), nil
}
