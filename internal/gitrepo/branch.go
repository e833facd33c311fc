package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/storefleet/storefleet/internal/store"
)

// A change that needs review goes on a branch of its own instead of the fleet's
// branch: one commit on the fleet branch's tip, made exactly as the writer makes
// its commits (same checks against the folder, same message and trailers), so that
// whatever way the pull request is merged the trailers reach the fleet's history.
// The proposal branch belongs to its request alone, so pushing it again replaces
// it: that is how a proposal is brought onto a base that moved.

// Proposal is a change's commit on a proposal branch.
type Proposal struct {
	Branch string
	Commit string
	// Base is the fleet branch's commit the change was made on.
	Base string
	// NoOp: the fleet's branch already has the change; nothing was pushed.
	NoOp bool
}

// PushBranch makes c's commit on the fleet branch's tip and points branch at it on
// the remote. The fleet's branch is not touched.
func (r *Repo) PushBranch(ctx context.Context, branch string, c Change) (Proposal, error) {
	ref := plumbing.NewBranchReferenceName(branch)
	if err := ref.Validate(); err != nil || ref == r.branchRef || strings.Contains(branch, "..") {
		return Proposal{}, invalid("branch %q is not a proposal branch name", branch)
	}
	if err := c.validate(); err != nil {
		return Proposal{}, err
	}
	base, commit, objs, noop, err := r.buildProposal(c)
	if err != nil || noop {
		return Proposal{Branch: branch, Base: base.String(), Commit: base.String(), NoOp: noop}, err
	}
	if r.localPath != "" {
		err = r.pushBranchLocal(ref, commit, objs)
	} else {
		err = r.red.err(classifyRemote(r.pushBranchRemote(ctx, ref, commit, objs)))
	}
	if err != nil {
		return Proposal{}, err
	}
	return Proposal{Branch: branch, Commit: commit.String(), Base: base.String()}, nil
}

func (r *Repo) buildProposal(c Change) (base, commit plumbing.Hash, objs *objectSet, noop bool, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	base = r.tip
	baseRoot, err := r.commitRoot(base)
	if err != nil {
		return base, plumbing.ZeroHash, nil, false, err
	}
	objs = newObjectSet()
	p := &pending{ch: c}
	b, err := r.newBatchTree([]*pending{p}, baseRoot, objs)
	if err != nil {
		return base, plumbing.ZeroHash, nil, false, err
	}
	if err := c.checkLayout(b.shards); err != nil {
		return base, plumbing.ZeroHash, nil, false, err
	}
	// Not b.apply: a proposal is not a retry of a change on the fleet's branch, so
	// the Request-Id index must not answer it.
	cur, err := b.ov.get(c.Dir)
	if err != nil {
		return base, plumbing.ZeroHash, nil, false, err
	}
	if err := p.checkFolder(cur); err != nil {
		return base, plumbing.ZeroHash, nil, false, err
	}
	next, err := b.target(p)
	if err != nil {
		return base, plumbing.ZeroHash, nil, false, err
	}
	if next == cur {
		return base, plumbing.ZeroHash, nil, true, nil
	}
	if err := b.ov.set(c.Dir, next); err != nil {
		return base, plumbing.ZeroHash, nil, false, err
	}
	// The shared chart source goes with the store that names it, as on the fleet's
	// branch: merged without it, a create of a new version would reference a chart
	// source that exists nowhere. Unshared is not honoured here (a proposal never
	// removes a source; the merge's base may have gained users meanwhile).
	for _, f := range c.Shared {
		if err := b.ov.setFile(f.Path, b.objs.add(blobObject(f.Content))); err != nil {
			return base, plumbing.ZeroHash, nil, false, err
		}
	}
	if c.removes() {
		b.purged[c.Dir] = true
	}
	root, err := b.writeRoot()
	if err != nil {
		return base, plumbing.ZeroHash, nil, false, err
	}
	commit, err = r.batchCommit(base, root, []*pending{p}, objs)
	return base, commit, objs, false, err
}

// pushBranchRemote moves ref to commit whatever it pointed at: the branch is the
// proposal's own, and a push that replaces it is the rebase onto a moved base.
func (r *Repo) pushBranchRemote(ctx context.Context, ref plumbing.ReferenceName, commit plumbing.Hash, objs *objectSet) error {
	pack, err := encodePack(objs)
	if err != nil {
		return err
	}
	sess, err := r.receivePackSession()
	if err != nil {
		return fmt.Errorf("gitrepo: push session: %w", err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return fmt.Errorf("gitrepo: push: %w", err)
	}
	old := plumbing.ZeroHash
	req := packp.NewReferenceUpdateRequest()
	if ar != nil {
		if h, ok := ar.References[ref.String()]; ok {
			old = h
		}
		req = packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	}
	if old == commit {
		return nil
	}
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: commit}}
	req.Packfile = io.NopCloser(bytes.NewReader(pack))
	rs, err := sess.ReceivePack(ctx, req)
	if err != nil {
		return fmt.Errorf("gitrepo: push: %w", err)
	}
	if rs != nil {
		if rs.UnpackStatus != "ok" {
			return fmt.Errorf("%w: remote could not unpack: %s", ErrRefused, rs.UnpackStatus)
		}
		for _, cs := range rs.CommandStatuses {
			if cs.Status != "ok" {
				return fmt.Errorf("%w: %s: %s", ErrRefused, ref, cs.Status)
			}
		}
	}
	return nil
}

func (r *Repo) pushBranchLocal(ref plumbing.ReferenceName, commit plumbing.Hash, objs *objectSet) error {
	pp, err := encodePackIndexed(objs)
	if err != nil {
		return err
	}
	packDir := filepath.Join(r.localPath, "objects", "pack")
	if err := writePack(filepath.Join(packDir, "pack-"+pp.sum.String()), pp.raw, pp.idxV2()); err != nil {
		return storageErr("write pack to "+r.localPath, err)
	}
	if err := syncDir(packDir); err != nil {
		return storageErr("write pack to "+r.localPath, err)
	}
	refPath := filepath.Join(r.localPath, filepath.FromSlash(ref.String()))
	if err := os.MkdirAll(filepath.Dir(refPath), 0o755); err != nil {
		return storageErr("lock "+ref.String(), err)
	}
	lock, err := lockRef(refPath, r.log)
	if err != nil {
		return err
	}
	if lock == nil {
		return fmt.Errorf("%w: %s is being moved by someone else", ErrNotPushed, ref)
	}
	defer lock.release()
	if err := lock.commit(commit); err != nil {
		return storageErr("move "+ref.String(), err)
	}
	return nil
}

// Propose is PushBranch for the domain: c's commit on branch, the fleet's branch
// untouched. A change the fleet's branch already has is a no-op (Proposal.NoOp).
func (g Fleet) Propose(ctx context.Context, branch string, c store.Change) (store.BranchCommit, error) {
	gc, err := toChange(c)
	if err != nil {
		return store.BranchCommit{}, err
	}
	p, err := g.R.PushBranch(ctx, branch, gc)
	if err != nil {
		switch {
		case errors.Is(err, ErrExists):
			return store.BranchCommit{}, fmt.Errorf("%w: %v", store.ErrExists, err)
		case errors.Is(err, ErrConflict):
			return store.BranchCommit{}, fmt.Errorf("%w: %v", store.ErrConflict, err)
		case errors.Is(err, ErrNotFound):
			return store.BranchCommit{}, fmt.Errorf("%w: %v", store.ErrNotFound, err)
		case errors.Is(err, ErrStorage), errors.Is(err, ErrUnreachable), errors.Is(err, ErrRefused),
			errors.Is(err, ErrNotPushed):
			return store.BranchCommit{}, fmt.Errorf("%w: %v", unavailable(err), err)
		}
		return store.BranchCommit{}, err
	}
	return store.BranchCommit{Branch: p.Branch, Commit: p.Commit, Base: p.Base, NoOp: p.NoOp}, nil
}

var _ store.Proposer = Fleet{}

// toChange is the writer's change for a domain change, as Fleet.Submit makes it.
func toChange(c store.Change) (Change, error) {
	gc := Change{
		Store: c.Store, Cluster: c.Cluster, Dir: c.Dir, Action: Action(c.Action),
		Tenant: c.Tenant, Actor: c.Actor, OnBehalfOf: c.OnBehalfOf, RequestID: c.RequestID, Continues: c.Continues,
		StoresPerTenant: c.StoresPerTenant,
	}
	switch {
	case c.Remove:
		gc.Action = ActionPurge
	case c.Action == store.ActionPurge:
		gc.Keep = true
	}
	if !c.Remove {
		gc.Files = make([]File, 0, len(c.Files))
		for _, f := range c.Files {
			rel, ok := strings.CutPrefix(f.Path, c.Dir+"/")
			if !ok {
				return Change{}, fmt.Errorf("file %s is outside the store folder %s", f.Path, c.Dir)
			}
			gc.Files = append(gc.Files, File{Path: rel, Content: f.Content})
		}
		for _, f := range c.Shared {
			gc.Shared = append(gc.Shared, File{Path: f.Path, Content: f.Content})
		}
		gc.Unshared = c.Unshared
	}
	if c.Base != "" {
		gc.Expect = ExpectTree(c.Base)
	}
	return gc, nil
}
