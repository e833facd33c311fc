package fleet

import (
	"context"
	"errors"

	"github.com/storefleet/storefleet/internal/store"
)

// Differ gives the file diffs of a store's history entries. It reads the fleet
// repository's own clone, not the Service's writer: a reviewing writer in front of
// the clone proposes changes and has no history to read.
type Differ struct{ R store.ChangeReader }

// ChangeDiff is the diff of one entry of a store's history: the store's folder at
// the entry's commit against the commit before, in the same form as a dry run's.
// The caller found e in History, where the tenant rules were applied.
func (d Differ) ChangeDiff(ctx context.Context, e store.Entry) ([]store.Diff, error) {
	// History read the folder at the head's count, so its entries are that
	// folder's changes.
	n, err := d.R.Shards(ctx)
	if err != nil {
		return nil, err
	}
	before, after, err := d.R.StoreChange(ctx, store.DirIn(e.Cluster, e.Store, n), e.Commit.SHA)
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.Errorf(store.ENOTFOUND, "commit %s is not in this replica's clone yet", e.Commit.SHA)
	}
	if err != nil {
		return nil, err
	}
	return diffFiles(before, after), nil
}
