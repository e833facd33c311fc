package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/storefleet/storefleet/internal/store"
)

// DeleteBranch removes a proposal branch from the remote once its pull request is
// closed, merged or not: the branch held one request's change and nothing reads it
// afterwards (a merge copied its commit, and a rejected change must not linger where
// someone could merge it by hand). A branch already gone (GitHub's "delete head
// branches" setting, a reviewer) is not an error. The fleet's branch is refused.
func (r *Repo) DeleteBranch(ctx context.Context, branch string) error {
	ref := plumbing.NewBranchReferenceName(branch)
	if err := ref.Validate(); err != nil || ref == r.branchRef || branch == "" {
		return invalid("branch %q is not a proposal branch name", branch)
	}
	if r.localPath != "" {
		return r.deleteBranchLocal(ref)
	}
	return r.red.err(classifyRemote(r.deleteBranchRemote(ctx, ref)))
}

func (r *Repo) deleteBranchRemote(ctx context.Context, ref plumbing.ReferenceName) error {
	sess, err := r.receivePackSession()
	if err != nil {
		return fmt.Errorf("gitrepo: push session: %w", err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gitrepo: push: %w", err)
	}
	old, ok := ar.References[ref.String()]
	if !ok {
		return nil
	}
	if !ar.Capabilities.Supports(capability.DeleteRefs) {
		return fmt.Errorf("%w: the remote does not take ref deletions", ErrRefused)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	// Old pins the deletion to the commit seen: a branch pushed again meanwhile (a
	// retry proposing anew) is not removed.
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: plumbing.ZeroHash}}
	rs, err := sess.ReceivePack(ctx, req)
	if err != nil {
		return fmt.Errorf("gitrepo: push: %w", err)
	}
	if rs != nil {
		for _, cs := range rs.CommandStatuses {
			if cs.Status != "ok" {
				return fmt.Errorf("%w: %s: %s", ErrRefused, ref, cs.Status)
			}
		}
	}
	return nil
}

// deleteBranchLocal removes the loose ref pushBranchLocal wrote, under the same
// lock git takes.
func (r *Repo) deleteBranchLocal(ref plumbing.ReferenceName) error {
	refPath := filepath.Join(r.localPath, filepath.FromSlash(ref.String()))
	if _, err := os.Stat(refPath); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lock, err := lockRef(refPath, r.log)
	if err != nil {
		return err
	}
	if lock == nil {
		return fmt.Errorf("%w: %s is being moved by someone else", ErrNotPushed, ref)
	}
	defer lock.release()
	if err := os.Remove(refPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return storageErr("delete "+ref.String(), err)
	}
	return nil
}

// DropBranch is DeleteBranch for the domain.
func (g Fleet) DropBranch(ctx context.Context, branch string) error {
	err := g.R.DeleteBranch(ctx, branch)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrStorage), errors.Is(err, ErrUnreachable), errors.Is(err, ErrRefused), errors.Is(err, ErrNotPushed):
		return fmt.Errorf("%w: %v", unavailable(err), err)
	}
	return err
}

var _ store.BranchDropper = Fleet{}
