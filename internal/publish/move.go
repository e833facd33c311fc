package publish

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Stores move between shards when the fleet's shard count changes (`gitops-api
// reshard`, one commit). Flux must then adopt each moved object without deleting
// it: kustomize-controller prunes an object that left a Kustomization's inventory
// only while the object still carries that Kustomization's owner labels
// (kustomize.toolkit.fluxcd.io/name and /namespace); an apply by another
// Kustomization rewrites them. So a shard that loses stores is published only once
// every shard that takes them in has applied the commit: then the loser's prune
// finds the moved objects labelled for their new shard and skips them. Published
// the other way round, the loser's prune deletes the HelmRelease (Helm uninstalls
// the release) before the new shard creates it again with a new UID and revision 1.
//
// With shard names that are the hash's top bits, a store moves only towards
// smaller names (fewer shards) or only towards larger ones (more), so the waits
// form waves without a cycle: 4,096 → 256 is four waves (000; 001–00f; 010–0ff;
// 100–fff). A shard the move emptied gets an empty tarball like any emptied shard;
// removing its Kustomization and ExternalArtifact is `gitops-api reshard`'s, with
// the operator's credentials (gitops-api may not delete Flux objects), once Flux
// applied that tarball: its inventory is empty by then, so its finalizer deletes
// nothing.

// movePlan returns, for every shard among shards whose stores at head differ from
// what was published, the shards that took in a store it lost (its dependencies).
// It is empty when no store moved: a removed store that is nowhere else at head is a purge, not a move. old
// movePlan reads the stores of the changed shards only: two tree reads each.
func (p *Publisher) movePlan(ctx context.Context, head string, trees map[string]string, shards []string) (map[string][]string, error) {
	type loss struct{ shard, name string }
	var lost []loss
	where := map[string]string{} // store name → its shard at head, over the changed shards
	for _, s := range shards {
		commit, tree := p.publishedAt(s)
		if tree == trees[s] {
			continue
		}
		now, err := p.storesOf(ctx, head, s, trees[s])
		if err != nil {
			return nil, err
		}
		for name := range now {
			where[name] = s
		}
		if commit == "" || tree == "" {
			continue // never published with stores: it can lose none
		}
		before, err := p.storesOf(ctx, commit, s, tree)
		if err != nil {
			return nil, err
		}
		for name := range before {
			if !now[name] {
				lost = append(lost, loss{s, name})
			}
		}
	}
	deps := map[string][]string{}
	seen := map[[2]string]bool{}
	for _, l := range lost {
		to, ok := where[l.name]
		if !ok || to == l.shard {
			continue
		}
		if k := [2]string{l.shard, to}; !seen[k] {
			seen[k] = true
			deps[l.shard] = append(deps[l.shard], to)
		}
	}
	return deps, nil
}

// storesOf lists the store folders of shard at commit; tree "" is an empty shard.
func (p *Publisher) storesOf(ctx context.Context, commit, shard, tree string) (map[string]bool, error) {
	out := map[string]bool{}
	if tree == "" {
		return out, nil
	}
	sub, err := p.cfg.Source.Subtrees(ctx, commit, path.Join(p.storesDir(), shard))
	if err != nil {
		return nil, fmt.Errorf("publish: stores of shard %s at %s: %w", shard, commit, err)
	}
	for name := range sub {
		out[name] = true
	}
	return out, nil
}

// publishedAt is the commit and tree this process last published shard at. A
// shard it has not published (after a start) has none, so a move is seen only by
// a publisher that published the shards before it: reading every shard's stores at
// the commit of its artifact in the cluster would make each start cost thousands
// of tree reads (see clusters/README.md for a restart in the middle of a move).
func (p *Publisher) publishedAt(shard string) (string, string) {
	p.mu.Lock()
	st := p.shards[shard]
	p.mu.Unlock()
	if st != nil {
		return p.commitOf(st.revision), st.tree
	}
	return "", ""
}

func (p *Publisher) commitOf(revision string) string {
	c, _ := strings.CutPrefix(revision, p.cfg.Branch+"@sha1:")
	return c
}

// publishMoved publishes shards in the order movePlan's dependencies ask, in waves:
// each wave's shards are published, then those that later shards lost stores to are
// waited for until Flux applied them (Config.Applied) before the next wave is
// published. It returns the shards published and the first error; a shard not published is left
// for the next pass, and so is every shard that waits for it.
func (p *Publisher) publishMoved(ctx context.Context, head string, trees map[string]string, shards []string,
	deps map[string][]string) (published map[string]string, err error) {
	published = map[string]string{}
	done := map[string]bool{}
	// Only a shard that others wait for is waited for: one whose apply keeps failing
	// must not hold up a move it takes no part in. A target already up to date (a
	// pass that failed half-way published it) is published as a no-op and waited for
	// all the same.
	target := map[string]bool{}
	for _, ds := range deps {
		for _, d := range ds {
			target[d] = true
		}
	}
	remaining := append([]string(nil), shards...)
	for wave := 1; len(remaining) > 0; wave++ {
		var now, later []string
		for _, s := range remaining {
			ready := true
			for _, d := range deps[s] {
				if !done[d] {
					ready = false
				}
			}
			if ready {
				now = append(now, s)
			} else {
				later = append(later, s)
			}
		}
		if len(now) == 0 {
			return published, fmt.Errorf("publish: shards %s lose stores to each other in a cycle; not published", strings.Join(later, " "))
		}
		for _, s := range now {
			rev, err := p.publishLocked(ctx, head, s, trees[s], nil)
			if err != nil {
				return published, err
			}
			published[s] = rev
		}
		if p.cfg.Applied == nil {
			p.log.Warn("shard publisher: stores moved between shards but nothing waits for Flux to apply them; publishing without waiting", "wave", wave)
		} else {
			for _, s := range now {
				if rev := published[s]; rev != "" && target[s] {
					if err := p.cfg.Applied(ctx, s, rev); err != nil {
						return published, fmt.Errorf("publish: waiting for shard %s to apply %s: %w", s, rev, err)
					}
				}
			}
		}
		p.log.Info("shard publisher: moved stores, wave applied", "wave", wave, "shards", len(now), "left", len(later))
		for _, s := range now {
			done[s] = true
		}
		remaining = later
	}
	return published, nil
}

// loses reports whether shard lost a store since this process published it: only
// then can a store have moved out of it (a purge loses one too; movePlan tells).
func (p *Publisher) loses(ctx context.Context, head, shard, tree string) (bool, error) {
	commit, was := p.publishedAt(shard)
	if was == "" || was == tree {
		return false, nil
	}
	before, err := p.storesOf(ctx, commit, shard, was)
	if err != nil {
		return false, err
	}
	now, err := p.storesOf(ctx, head, shard, tree)
	if err != nil {
		return false, err
	}
	for name := range before {
		if !now[name] {
			return true, nil
		}
	}
	return false, nil
}

// moved publishes a move (movePlan found one), alone (the pass lock held for
// writing), and returns the shards
// whose revision changed.
func (p *Publisher) moved(ctx context.Context, head string, trees map[string]string, shards []string,
	deps map[string][]string) ([]string, error) {
	before := map[string]string{}
	for s, st := range p.shards {
		before[s] = st.revision
	}
	published, err := p.publishMoved(ctx, head, trees, shards, deps)
	var changed []string
	for s, rev := range published {
		if rev != "" && rev != before[s] {
			changed = append(changed, s)
		}
	}
	sort.Strings(changed)
	return changed, err
}

// allShards is every shard at head, published, or in extra, sorted.
func (p *Publisher) allShards(trees map[string]string, extra map[string]Artifact) []string {
	names := map[string]bool{}
	for s := range trees {
		names[s] = true
	}
	for s := range extra {
		names[s] = true
	}
	for s := range p.shards {
		names[s] = true
	}
	sorted := make([]string, 0, len(names))
	for s := range names {
		sorted = append(sorted, s)
	}
	sort.Strings(sorted)
	return sorted
}
