package gitrepo

import "context"

// ShardsAt returns the fleet's shard count at commit ("" = the clone's head), as
// Shards does at the head. The shard publisher asks it of the commit an artifact was
// built at: a store changes shard only when the count does, so an artifact built at
// the head's count cannot hold a store that now belongs to another shard. A commit
// the clone does not hold (older than a shallow start's history) is fetched once,
// then ErrUnknownCommit.
func (r *Repo) ShardsAt(ctx context.Context, commit string) (int, error) {
	root, err := r.rootTree(ctx, commit)
	if err != nil {
		return 0, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.shardsAt(root)
}
