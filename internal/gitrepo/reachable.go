package gitrepo

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrUnknownCommit: a commit asked about is not in the fleet repository, even after a
// fetch.
var ErrUnknownCommit = errors.New("gitrepo: commit not in the fleet repository")

// NewReachable returns the commits reachable from tip (tip included) that known does
// not report, without walking below a known commit. Status uses it to learn which
// commits an artifact revision (the commit Flux fetched or applied) includes: it keeps
// the commits already known to be included, so each new revision costs only the
// commits since the previous one. A tip this clone does not have yet is fetched first.
func (r *Repo) NewReachable(ctx context.Context, tip string, known func(sha string) bool) ([]string, error) {
	if !isHex40(tip) {
		return nil, fmt.Errorf("%w: %q is not a commit hash", ErrUnknownCommit, tip)
	}
	h := plumbing.NewHash(tip)
	if !r.hasCommit(h) {
		if err := r.fetch(ctx); err != nil {
			return nil, err
		}
		if !r.hasCommit(h) {
			return nil, fmt.Errorf("%w: %s", ErrUnknownCommit, tip)
		}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	seen := map[plumbing.Hash]bool{h: true}
	stack := []plumbing.Hash{h}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if known(c.String()) {
			continue
		}
		out = append(out, c.String())
		commit, err := object.GetCommit(r.st, c)
		if err != nil {
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				continue // shallow boundary
			}
			return nil, err
		}
		for _, p := range commit.ParentHashes {
			if !seen[p] {
				seen[p] = true
				stack = append(stack, p)
			}
		}
	}
	return out, nil
}

func (r *Repo) hasCommit(h plumbing.Hash) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, err := object.GetCommit(r.st, h)
	return err == nil
}
