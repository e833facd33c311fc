package fleet

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/store"
)

// GitRepo is the Repo backed by internal/gitrepo.
type GitRepo struct {
	R *gitrepo.Repo
	// HistoryLimit is how many commits History returns at most (default 100).
	HistoryLimit int
}

// Submit commits and pushes one change and waits for it.
//
// Purge step 1 (a namespace made prunable) changes files, so it goes to the writer
// as a "delete" (phase one of deletion, folder kept); only the folder's removal is
// the writer's "purge".
func (g GitRepo) Submit(ctx context.Context, c Change) (Commit, error) {
	gc := gitrepo.Change{
		Store: c.Store, Cluster: c.Cluster, Dir: c.Dir, Action: gitrepo.Action(c.Action),
		Actor: c.Actor, RequestID: c.RequestID,
	}
	switch {
	case c.Remove:
		gc.Action = gitrepo.ActionPurge
	case c.Action == ActionPurge:
		gc.Action = gitrepo.ActionDelete
	}
	if !c.Remove {
		gc.Files = make([]gitrepo.File, 0, len(c.Files))
		for _, f := range c.Files {
			rel, ok := strings.CutPrefix(f.Path, c.Dir+"/")
			if !ok {
				return Commit{}, fmt.Errorf("file %s is outside the store folder %s", f.Path, c.Dir)
			}
			gc.Files = append(gc.Files, gitrepo.File{Path: rel, Content: f.Content})
		}
	}
	if c.Base != "" {
		gc.Expect = gitrepo.ExpectTree(c.Base)
	}
	res := g.R.Submit(ctx, gc)
	if res.Err != nil {
		switch {
		case errors.Is(res.Err, gitrepo.ErrExists):
			return Commit{}, fmt.Errorf("%w: %v", ErrExists, res.Err)
		case errors.Is(res.Err, gitrepo.ErrConflict):
			return Commit{}, fmt.Errorf("%w: %v", ErrConflict, res.Err)
		case errors.Is(res.Err, gitrepo.ErrNotFound):
			return Commit{}, fmt.Errorf("%w: %v", ErrNotFound, res.Err)
		case errors.Is(res.Err, gitrepo.ErrTooManyDeletes):
			return Commit{}, store.Errorf(store.ECONFLICT, "too many purges at once; retry shortly")
		}
		return Commit{}, res.Err
	}
	// The writer reports the commit, not its time; it was made moments ago.
	return Commit{SHA: res.Commit, Time: time.Now().UTC().Truncate(time.Second)}, nil
}

// ListDirs lists every store folder at the head.
func (g GitRepo) ListDirs(ctx context.Context) ([]string, error) {
	refs, err := g.R.ListStores(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Dir
	}
	return out, nil
}

// ReadDir reads one store folder at the head.
func (g GitRepo) ReadDir(ctx context.Context, dir string) (string, []File, error) {
	tree, files, err := g.R.Store(ctx, dir)
	if errors.Is(err, gitrepo.ErrNotFound) {
		return "", nil, fmt.Errorf("%w: %s", ErrNotFound, dir)
	}
	if err != nil {
		return "", nil, err
	}
	out := make([]File, len(files))
	for i, f := range files {
		out[i] = File{Path: path.Join(dir, f.Path), Content: f.Content}
	}
	return tree, out, nil
}

// History lists the changes to the store in dir, newest first, from the commits'
// trailers.
func (g GitRepo) History(ctx context.Context, dir string) ([]Entry, error) {
	commits, err := g.R.History(ctx, dir, g.HistoryLimit)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(dir, "/")
	name, cluster := parts[len(parts)-1], ""
	if len(parts) == 4 {
		cluster = parts[1]
	}
	var out []Entry
	for _, c := range commits {
		for _, ch := range c.Changes {
			if ch.Store != name || cluster != "" && ch.Cluster != cluster {
				continue
			}
			out = append(out, Entry{
				Commit: Commit{SHA: c.Hash, Time: c.Time.UTC()},
				Store:  ch.Store, Cluster: ch.Cluster, Action: Action(ch.Action),
				Actor: ch.Actor, RequestID: ch.RequestID, Subject: c.Subject,
			})
		}
	}
	return out, nil
}

// Ready fetches from the remote: it answers only if the remote is reachable.
func (g GitRepo) Ready(ctx context.Context) error {
	return g.R.Refresh(ctx)
}
