package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/storefleet/storefleet/internal/store"
)

// StoreChange reads the store folder dir as commit left it and as the commit's
// first parent had it (nil where the folder was absent), so that one change of a
// store's history can be shown as a diff. Only the first parent counts: the
// branch's line is what Flux applied. ErrNotFound when the commit is unknown here.
func (r *Repo) StoreChange(ctx context.Context, dir, commit string) (before, after []File, err error) {
	if !plumbing.IsHash(commit) {
		return nil, nil, fmt.Errorf("%w: commit %q", ErrNotFound, commit)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, err := object.GetCommit(r.st, plumbing.NewHash(commit))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, nil, fmt.Errorf("%w: commit %s", ErrNotFound, commit)
	}
	if err != nil {
		return nil, nil, err
	}
	if after, err = r.folderFiles(ctx, c.TreeHash, dir); err != nil {
		return nil, nil, err
	}
	if len(c.ParentHashes) == 0 {
		return nil, after, nil
	}
	p, err := object.GetCommit(r.st, c.ParentHashes[0])
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// A shallow clone's boundary: the change shows as the folder it left.
		return nil, after, nil
	}
	if err != nil {
		return nil, nil, err
	}
	before, err = r.folderFiles(ctx, p.TreeHash, dir)
	return before, after, err
}

// folderFiles reads the files under dir in the root tree (nil when dir is absent).
func (r *Repo) folderFiles(ctx context.Context, root plumbing.Hash, dir string) ([]File, error) {
	h, err := lookupTree(r.st, root, dir)
	if err != nil || h.IsZero() {
		return nil, err
	}
	return readFiles(ctx, r.st, h)
}

// StoreChange is Repo.StoreChange in the domain's terms: paths from the
// repository's root, as ReadDir gives them.
func (g Fleet) StoreChange(ctx context.Context, dir, commit string) (before, after []store.File, err error) {
	b, a, err := g.R.StoreChange(ctx, dir, commit)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: %v", store.ErrNotFound, err)
	}
	if err != nil {
		return nil, nil, err
	}
	conv := func(fs []File) []store.File {
		out := make([]store.File, len(fs))
		for i, f := range fs {
			out[i] = store.File{Path: path.Join(dir, f.Path), Content: f.Content}
		}
		return out
	}
	return conv(b), conv(a), nil
}
