package status

import "time"

// ClusterView is the Tracker as one cluster's watcher and shard publisher feed it,
// when one API serves stores in several clusters: its connection and its shards are
// that cluster's alone, so a cluster that stops answering makes only its own
// stores unknown, and a shard's revision in one cluster says nothing of the shard
// of the same name in another. Stores are told apart by Desired.Cluster. Store
// names are unique across the fleet, so what is keyed by store (releases,
// namespaces, Pods, events) needs no cluster.
type ClusterView struct {
	*Tracker
	cluster string
}

// View is the Tracker for the stores of cluster (Desired.Cluster). The Tracker's
// own methods are View("")'s: a Tracker of one cluster needs no name.
func (t *Tracker) View(cluster string) *ClusterView {
	return &ClusterView{Tracker: t, cluster: cluster}
}

// Cluster is the view's cluster.
func (v *ClusterView) Cluster() string { return v.cluster }

// Connected reports whether the view's cluster answers.
func (v *ClusterView) Connected() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.conn[v.cluster]
}

// SetConnected records whether the view's cluster answers; its stores are
// recomputed (unknown while it does not). Options.OnConnected is told whether every
// cluster the Tracker has heard of answers, so its gauge is 0 while any does not.
func (v *ClusterView) SetConnected(ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	before := v.allConnected()
	had := v.conn[v.cluster]
	v.conn[v.cluster] = ok
	if after := v.allConnected(); after != before {
		v.opts.OnConnected(after)
	}
	if had == ok {
		return
	}
	for _, e := range v.stores {
		if e.desired.Cluster == v.cluster {
			v.recompute(e)
		}
	}
}

// PhaseCounts is Tracker.PhaseCounts for the view's stores: each served cluster's
// stores-by-phase series.
func (v *ClusterView) PhaseCounts() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[string]int{}
	for _, e := range v.stores {
		if e.desired.Cluster == v.cluster && e.status.Phase != "" {
			out[string(e.status.Phase)]++
		}
	}
	return out
}

// allConnected: every cluster heard of answers (false before any was).
func (t *Tracker) allConnected() bool {
	if len(t.conn) == 0 {
		return false
	}
	for _, ok := range t.conn {
		if !ok {
			return false
		}
	}
	return true
}

// Published is Tracker.Published for the view's shards.
func (v *ClusterView) Published(shard, revision string) { v.published(v.cluster, shard, revision) }

// CaughtUp is Tracker.CaughtUp for the view's stores.
func (v *ClusterView) CaughtUp(since time.Time) int { return v.caughtUp(v.cluster, since) }

// SetShardSource is Tracker.SetShardSource for the view's shards.
func (v *ClusterView) SetShardSource(shard, revision string, ready *Condition) {
	v.setShardSource(v.cluster, shard, revision, ready)
}

// SetShardApply is Tracker.SetShardApply for the view's shards.
func (v *ClusterView) SetShardApply(shard, lastApplied string, ready *Condition) {
	v.setShardApply(v.cluster, shard, lastApplied, ready)
}

// clusterOf is the cluster of a tracked store ("" when not tracked).
func (t *Tracker) clusterOf(name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.stores[name]; ok {
		return e.desired.Cluster
	}
	return ""
}
