package gitrepo

import (
	"errors"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrUnknownCommit: a commit asked about is not in the fleet repository, even after a
// fetch.
var ErrUnknownCommit = errors.New("gitrepo: commit not in the fleet repository")

func (r *Repo) hasCommit(h plumbing.Hash) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, err := object.GetCommit(r.st, h)
	return err == nil
}
