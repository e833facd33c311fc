package gitrepo

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/storefleet/storefleet/internal/store"
)

// BranchChange is the change a proposal branch holds, read back from the remote.
type BranchChange struct {
	Change Change
	// Base is the folder's tree hash before the change (empty for a create), and
	// Parent the fleet commit the branch was built on.
	Base, Parent string
	Commit       string
}

// ReadBranch reads back the change on proposal branch: the proposals of an earlier
// run (a restart) are known only by their pull requests, and must be built again on
// a moved base like any other. The branch's commit is the writer's own (PushBranch):
// one change, its trailers naming it, on a parent of the fleet's branch. ErrNotFound
// when the branch is not on the remote.
func (r *Repo) ReadBranch(ctx context.Context, branch string) (BranchChange, error) {
	ref := plumbing.NewBranchReferenceName(branch)
	if err := ref.Validate(); err != nil || ref == r.branchRef || branch == "" {
		return BranchChange{}, invalid("branch %q is not a proposal branch name", branch)
	}
	head, err := r.fetchBranch(ctx, ref)
	if err != nil {
		return BranchChange{}, r.red.err(classifyRemote(err))
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, err := object.GetCommit(r.st, head)
	if err != nil {
		return BranchChange{}, err
	}
	recs := changeRecords(parseTrailers(c.Message))
	if len(recs) != 1 || c.NumParents() != 1 {
		return BranchChange{}, fmt.Errorf("%w: %s is not a proposal's commit (%d changes, %d parents)", ErrInvalid, branch, len(recs), c.NumParents())
	}
	rec := recs[0]
	ch := Change{Store: rec.Store, Cluster: rec.Cluster, Action: Action(rec.Action), Tenant: rec.Tenant,
		Actor: rec.Actor, OnBehalfOf: rec.OnBehalfOf, RequestID: rec.RequestID}
	if ch.Store == "" || ch.Cluster == "" {
		return BranchChange{}, fmt.Errorf("%w: %s names no store and cluster", ErrInvalid, branch)
	}
	parent, err := c.Parent(0)
	if err != nil {
		return BranchChange{}, err
	}
	// The proposal was built on its parent, so its folder is the store's at the
	// parent's count; rebuilt on a base with another count, the writer refuses it
	// as a conflict (checkLayout).
	n, err := r.shardsAt(parent.TreeHash)
	if err != nil {
		return BranchChange{}, err
	}
	ch.Dir = store.DirIn(ch.Cluster, ch.Store, n)
	before, err := lookupTree(r.st, parent.TreeHash, ch.Dir)
	if err != nil {
		return BranchChange{}, err
	}
	after, err := lookupTree(r.st, c.TreeHash, ch.Dir)
	if err != nil {
		return BranchChange{}, err
	}
	out := BranchChange{Parent: parent.Hash.String(), Commit: head.String()}
	if !before.IsZero() {
		out.Base = before.String()
	}
	switch {
	case after.IsZero():
		if ch.Action != ActionPurge {
			return BranchChange{}, fmt.Errorf("%w: %s removes %s with action %s", ErrInvalid, branch, ch.Dir, ch.Action)
		}
	default:
		if ch.Files, err = readFiles(ctx, r.st, after); err != nil {
			return BranchChange{}, err
		}
		ch.Keep = ch.Action == ActionPurge
	}
	out.Change = ch
	return out, nil
}

// fetchBranch brings ref's commit from the remote into the object storage and
// returns it; the fleet's branch and the tip are not touched.
func (r *Repo) fetchBranch(ctx context.Context, ref plumbing.ReferenceName) (plumbing.Hash, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	sess, err := r.uploadPackSession()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitrepo: fetch %s: %w", r.red.shown, err)
	}
	want, ok := ar.References[ref.String()]
	if !ok {
		return plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	r.mu.RLock()
	tip := r.tip
	have := r.st.HasEncodedObject(want) == nil
	r.mu.RUnlock()
	if !have {
		// A shallow clone names its boundary here too (fetch.go).
		if err := r.fetchObjects(ctx, sess, ar.Capabilities, want, tip, r.shallowBoundary(), 0); err != nil {
			return plumbing.ZeroHash, err
		}
	}
	return want, nil
}

// ReadProposal is ReadBranch for the domain: the change as Submit was given it
// (files under the store's folder, Base the folder before it), and the fleet
// commit it was built on.
func (g Fleet) ReadProposal(ctx context.Context, branch string) (store.Change, store.BranchCommit, error) {
	bc, err := g.R.ReadBranch(ctx, branch)
	if err != nil {
		switch {
		case errors.Is(err, ErrNotFound):
			return store.Change{}, store.BranchCommit{}, fmt.Errorf("%w: %v", store.ErrNotFound, err)
		case errors.Is(err, ErrStorage), errors.Is(err, ErrUnreachable), errors.Is(err, ErrRefused):
			return store.Change{}, store.BranchCommit{}, fmt.Errorf("%w: %v", unavailable(err), err)
		}
		return store.Change{}, store.BranchCommit{}, err
	}
	c := bc.Change
	out := store.Change{Store: c.Store, Cluster: c.Cluster, Action: store.Action(c.Action), Actor: c.Actor,
		OnBehalfOf: c.OnBehalfOf, Tenant: c.Tenant, RequestID: c.RequestID, Dir: c.Dir, Base: bc.Base,
		Remove: c.Action == ActionPurge && !c.Keep}
	for _, f := range c.Files {
		out.Files = append(out.Files, store.File{Path: c.Dir + "/" + f.Path, Content: f.Content})
	}
	return out, store.BranchCommit{Branch: branch, Commit: bc.Commit, Base: bc.Parent}, nil
}
