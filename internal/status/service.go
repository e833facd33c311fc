package status

import (
	"context"

	"github.com/storefleet/storefleet/internal/store"
)

// Stores is the store lifecycle the API drives (internal/fleet's Service).
type Stores = store.Service

// Service is the lifecycle with status attached: every committed change becomes the
// store's desired state in the Tracker.
type Service struct {
	Stores
	T *Tracker
	// ShardOf is the shard of a store name (store.Shard in production). Nil puts
	// every store in shard "", which tests of one shard use.
	ShardOf func(name string) string
	// Head is the fleet's head commit (gitrepo.Repo.Head in production), the
	// revision a store a reshard moved waits for on its new shard (Tracker.Load).
	// Nil: such a store waits for its new shard's next publish.
	Head func() string
	// Queue publishes the store's shard after each commit, off the request path
	// (Queue). Nil when nothing publishes (no cluster).
	Queue *Queue
	// Queues serve stores spread over several clusters: each cluster's publish
	// queue, by cluster name. A store's Desired.Cluster is then the cluster the
	// fleet gives it (the Tracker's ClusterView of that name), and its commits go to
	// that cluster's queue; a store of a cluster with no queue here is tracked, never
	// published (nobody applies it). Nil: one cluster, Queue, Desired.Cluster "".
	Queues map[string]*Queue
}

// clusterOf is the Desired.Cluster of a store the fleet has as st.
func (s Service) clusterOf(st store.Store) string {
	if s.Queues == nil {
		return ""
	}
	return st.Cluster
}

func (s Service) shardOf(name string) string {
	if s.ShardOf == nil {
		return ""
	}
	return s.ShardOf(name)
}

// Create commits a new store; meanwhile its phase is requested.
func (s Service) Create(ctx context.Context, in store.Store, m store.Meta) (store.Outcome, error) {
	if !m.DryRun && in.Name != "" {
		s.T.Requested(in.Name)
	}
	out, err := s.Stores.Create(ctx, in, m)
	if err != nil && !m.DryRun {
		s.T.Forget(in.Name)
	}
	s.committed(ctx, out, err)
	return out, err
}

// Update commits a change to a store.
func (s Service) Update(ctx context.Context, name string, change func(store.Store) (store.Store, error), m store.Meta) (store.Outcome, error) {
	out, err := s.Stores.Update(ctx, name, change, m)
	s.committed(ctx, out, err)
	return out, err
}

// Delete commits a delete or purge step.
func (s Service) Delete(ctx context.Context, name string, purge bool, m store.Meta) (store.Outcome, error) {
	if purge && !m.DryRun && !m.Continues {
		if err := s.T.earlyPurge(name); err != nil {
			return store.Outcome{}, err
		}
	}
	out, err := s.Stores.Delete(ctx, name, purge, m)
	s.committed(ctx, out, err)
	return out, err
}

func (s Service) committed(ctx context.Context, out store.Outcome, err error) {
	if err == nil && !out.DryRun && out.State == store.RequestAwaitingApproval && out.Review != nil && out.Store != "" {
		// Proposed: nothing is committed; the store waits on its pull request.
		s.T.Reviewing(out.Store, *out.Review, store.RequestAwaitingApproval)
		return
	}
	if err != nil || out.DryRun || out.Commit == nil || out.Commit.SHA == "" || out.Store == "" {
		return
	}
	st, ok := store.StateOf(out.Phase)
	if !ok {
		return
	}
	d := Desired{Commit: out.Commit.SHA, State: st, Shard: s.shardOf(out.Store)}
	q := s.Queue
	if d.State == store.StateActive || s.Queues != nil {
		v, err := s.Stores.Get(ctx, out.Store)
		if err == nil {
			d.Version, d.Cluster = v.Store.Version, s.clusterOf(v.Store)
		} else if s.Queues != nil {
			// Purged (no folder left) or unreadable: the store stays where it was.
			d.Cluster = s.T.clusterOf(out.Store)
		}
		if d.State != store.StateActive {
			d.Version = ""
		}
	}
	if s.Queues != nil {
		q = s.Queues[d.Cluster]
	}
	// The commit is in Git: the store is committed, waiting for the shard's next
	// publish, and the request answers now. The queue then tells the Tracker which
	// revision carried the commit (Tracker.Carried).
	s.T.Committed(out.Store, d)
	if q != nil {
		q.Add(d.Shard, out.Store, d.Commit)
	}
}

// Resync gives the Tracker the fleet's current state of the named stores after a
// push made outside gitops-api changed their shard (the shard publisher has already
// published it, so each store waits for that shard revision at the latest), or the
// follower read others' commits. A store no longer in the fleet was purged; one a
// reshard moved waits for its new shard's publish of the head (Tracker.Load).
func (s Service) Resync(ctx context.Context, names []string) {
	head := ""
	if s.Head != nil {
		head = s.Head()
	}
	for _, name := range names {
		d := Desired{Shard: s.shardOf(name), Revision: head}
		v, err := s.Stores.Get(ctx, name)
		switch {
		case err == nil:
			d.State, d.Version, d.Cluster = v.State, v.Store.Version, s.clusterOf(v.Store)
			if v.Commit != nil {
				d.Commit = v.Commit.SHA
			}
		case store.ErrorCode(err) == store.ENOTFOUND:
			d.State, d.Cluster = store.StatePurged, s.T.clusterOf(name)
		default:
			s.T.log.Warn("store not re-read after an outside push", "store", name, "err", err)
			continue
		}
		if d.State != "" {
			s.T.Load(name, d)
		}
	}
}

// Load gives the Tracker every store in the fleet at start-up. Call it after the
// shard publisher's initial sync has reported (Tracker.Published) what it adopted
// or built: each store then waits for its shard's latest publish.
func (s Service) Load(ctx context.Context) (int, error) {
	n, cont := 0, ""
	for {
		views, next, err := s.Stores.List(ctx, store.Filter{}, 1000, cont)
		if err != nil {
			return n, err
		}
		for _, v := range views {
			d := Desired{State: v.State, Version: v.Store.Version, Shard: s.shardOf(v.Store.Name), Cluster: s.clusterOf(v.Store)}
			if v.Commit != nil {
				d.Commit = v.Commit.SHA
			}
			if d.State != "" {
				s.T.Load(v.Store.Name, d)
				n++
			}
		}
		if next == "" {
			return n, nil
		}
		cont = next
	}
}
