package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Fleet is the domain's store.Repository over a Repo: it speaks the domain's values
// and sentinel errors, so the lifecycle never links go-git.
type Fleet struct {
	R *Repo
	// HistoryLimit is how many commits a History page that names no limit holds
	// (default 100).
	HistoryLimit int
}

var _ store.Repository = Fleet{}

// Submit commits and pushes one change and waits for it.
//
// Both purge steps are recorded as purges. Step 1 (a namespace made prunable)
// changes files and keeps the folder (Keep); only step 2 removes it, and only that
// counts against the writer's MaxPurges guard.
func (g Fleet) Submit(ctx context.Context, c store.Change) (store.Commit, error) {
	gc, err := toChange(c)
	if err != nil {
		return store.Commit{}, err
	}
	res := g.R.Submit(ctx, gc)
	if res.Err != nil {
		var qe *QuotaError
		switch {
		case errors.As(res.Err, &qe):
			return store.Commit{}, store.QuotaError(qe.Tenant, qe.Stores, qe.Limit)
		case errors.Is(res.Err, ErrExists):
			return store.Commit{}, fmt.Errorf("%w: %v", store.ErrExists, res.Err)
		case errors.Is(res.Err, ErrConflict):
			return store.Commit{}, fmt.Errorf("%w: %v", store.ErrConflict, res.Err)
		case errors.Is(res.Err, ErrNotFound):
			return store.Commit{}, fmt.Errorf("%w: %v", store.ErrNotFound, res.Err)
		case errors.Is(res.Err, ErrOutcomeUnknown):
			return store.Commit{}, fmt.Errorf("%w: %v", store.ErrOutcomeUnknown, res.Err)
		case errors.Is(res.Err, ErrStorage), errors.Is(res.Err, ErrUnreachable), errors.Is(res.Err, ErrRefused),
			errors.Is(res.Err, ErrNotPushed), errors.Is(res.Err, ErrClosed):
			// Certain that nothing landed, and nothing will: the request may simply
			// be sent again later. The detail (redacted) stays in the chain for the log.
			return store.Commit{}, fmt.Errorf("%w: %v", unavailable(res.Err), res.Err)
		case errors.Is(res.Err, ErrTooManyDeletes):
			return store.Commit{}, fmt.Errorf("%w: %v", store.ErrTooManyPurges, res.Err)
		}
		return store.Commit{}, res.Err
	}
	// The writer reports the commit, not its time; it was made moments ago.
	return store.Commit{SHA: res.Commit, Time: time.Now().UTC().Truncate(time.Second), Tree: res.Tree}, nil
}

// unavailable is the domain's error for a change that certainly did not land, with
// its cause.
func unavailable(err error) *store.Error {
	e := &store.Error{Code: store.EUNAVAILABLE}
	switch {
	case errors.Is(err, ErrStorage) && storageFull(err):
		e.Cause, e.Message = store.CauseStorageFull, "the fleet repository's storage is full; nothing was changed, retry later"
	case errors.Is(err, ErrStorage) && storagePermission(err):
		e.Cause, e.Message = store.CauseStoragePermission, "the fleet repository's storage may not be written; nothing was changed, retry later"
	case errors.Is(err, ErrStorage):
		e.Message = "the fleet repository cannot be written now; nothing was changed, retry later"
	case errors.Is(err, ErrUnreachable):
		e.Cause, e.Message = store.CauseRemoteUnreachable, "the fleet remote cannot be reached; nothing was changed, retry later"
	case errors.Is(err, ErrRefused):
		e.Cause, e.Message = store.CauseRemoteRefused, "the fleet remote refused the change; nothing was changed, retry later"
	case errors.Is(err, ErrClosed):
		e.Message = "the service is shutting down; nothing was changed, retry later"
	default:
		e.Cause, e.Message = store.CauseDeadline, "the change could not be pushed before the write deadline; nothing was changed and it will not be, retry later"
	}
	return e
}

// historyLoading is the domain's answer while the history behind a shallow first
// start is still being fetched: nothing happened, ask again in a moment.
func historyLoading() *store.Error {
	return &store.Error{Code: store.EUNAVAILABLE, RetryAfter: 2 * time.Second,
		Message: "the fleet's history is still loading after this replica's first start; retry shortly"}
}

// FindRequest tells what became of a request (Repo.FindRequest) in the domain's terms.
func (g Fleet) FindRequest(ctx context.Context, id string) (store.Found, error) {
	info, err := g.R.FindRequest(ctx, id)
	if errors.Is(err, ErrHistoryLoading) {
		return store.Found{}, fmt.Errorf("%w: %v", historyLoading(), err)
	}
	if errors.Is(err, ErrNotFound) {
		return store.Found{}, fmt.Errorf("%w: request %s", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Found{}, err
	}
	f := store.Found{State: store.RequestState(info.State), Store: info.Store, Cluster: info.Cluster, Tenant: info.Tenant,
		Action: store.Action(info.Action), Reason: info.Reason}
	if info.Commit != "" {
		f.Commit = &store.Commit{SHA: info.Commit, Time: info.Time}
	}
	return f, nil
}

// ListDirs lists every store folder at the head.
func (g Fleet) ListDirs(ctx context.Context) ([]string, error) {
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
func (g Fleet) ReadDir(ctx context.Context, dir string) (string, []store.File, error) {
	tree, files, err := g.R.Store(ctx, dir)
	if errors.Is(err, ErrNotFound) {
		return "", nil, fmt.Errorf("%w: %s", store.ErrNotFound, dir)
	}
	if err != nil {
		return "", nil, err
	}
	out := make([]store.File, len(files))
	for i, f := range files {
		out[i] = store.File{Path: path.Join(dir, f.Path), Content: f.Content}
	}
	return tree, out, nil
}

// History lists one page of the changes to the store in dir, newest first, from the
// commits' trailers, and the cursor of the next page: the page's last commit when
// older ones follow (a page is counted in commits; a commit is one entry, or none when
// it names no change of this store). A cursor that is not one of the store's commits
// is the caller's mistake (EINVALID on "before"), a change looked up At one is not
// found (ENOTFOUND).
func (g Fleet) History(ctx context.Context, dir string, page store.HistoryPage) (store.HistoryResult, error) {
	limit := page.Limit
	if limit <= 0 {
		limit = g.HistoryLimit
	}
	commits, more, err := g.R.HistoryPage(ctx, dir, HistoryQuery{Limit: limit, Before: page.Before, At: page.At})
	if errors.Is(err, ErrHistoryLoading) {
		return store.HistoryResult{}, fmt.Errorf("%w: %v", historyLoading(), err)
	}
	if errors.Is(err, ErrNotFound) && page.Before != "" {
		return store.HistoryResult{}, &store.Error{Code: store.EINVALID, Message: "invalid history cursor",
			Fields: []store.FieldError{{Field: "before", Rule: "cursor", Message: "a commit of this store's history, as a page's next gives it"}}}
	}
	if errors.Is(err, ErrNotFound) {
		return store.HistoryResult{}, fmt.Errorf("%w: %v", store.ErrNotFound, err)
	}
	if err != nil {
		return store.HistoryResult{}, err
	}
	ref, ok := store.ParseDir(dir)
	if !ok {
		return store.HistoryResult{}, fmt.Errorf("%s is not a store folder", dir)
	}
	name, cluster := ref.Name, ref.Cluster
	var out store.HistoryResult
	for _, c := range commits {
		for _, ch := range c.Changes {
			if ch.Store != name || cluster != "" && ch.Cluster != cluster {
				continue
			}
			out.Entries = append(out.Entries, store.Entry{
				Commit: store.Commit{SHA: c.Hash, Time: c.Time.UTC()},
				Store:  ch.Store, Cluster: ch.Cluster, Action: store.Action(ch.Action),
				Actor: ch.Actor, OnBehalfOf: ch.OnBehalfOf, Tenant: ch.Tenant, RequestID: ch.RequestID, Subject: c.Subject,
			})
		}
	}
	if more && len(commits) > 0 {
		out.Next = commits[len(commits)-1].Hash
	}
	return out, nil
}

// RemovalsSince lists the deletes and purges committed since t (Repo.RemovalsSince)
// as the domain's entries, newest first.
func (g Fleet) RemovalsSince(ctx context.Context, since time.Time) ([]store.Entry, error) {
	rs, err := g.R.RemovalsSince(ctx, since)
	if errors.Is(err, ErrHistoryLoading) {
		return nil, fmt.Errorf("%w: %v", historyLoading(), err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]store.Entry, len(rs))
	for i, r := range rs {
		out[i] = store.Entry{
			Commit: store.Commit{SHA: r.Commit, Time: r.Time}, Store: r.Store, Cluster: r.Cluster,
			Action: store.Action(r.Action), Actor: r.Actor, OnBehalfOf: r.OnBehalfOf, Tenant: r.Tenant,
			RequestID: r.RequestID, Subject: r.Subject,
		}
	}
	return out, nil
}

// Ready reports whether a write could land now (Repo.Writable): the disks take writes,
// the branch is not wedged by a dead writer's lock, and the remote answers.
func (g Fleet) Ready(ctx context.Context) error {
	return g.R.Writable(ctx)
}
