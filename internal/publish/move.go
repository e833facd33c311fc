package publish

import (
	"context"
	"fmt"
	"path"
	"slices"
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

// A move is read from durable state only, so that a leader that starts after the
// push, or takes over in the middle of a move, carries it on in the same order: what
// each shard's artifact in the cluster was built from (the commit its revision names,
// or, once this process published the shard, the head it published it from), and the
// fleet at that commit and at the head. A store's shard is a function of its name and
// the fleet's shard count, so only a shard whose artifact was built at another count
// than the head's can have lost a store to another shard; the others cost one read of
// the count at their commit, and a restart adopts the shards whose tarball is the
// head's before it asks even that.

// movePlan returns, for every shard among shards that lost a store to another shard
// since its artifact was built, the shards that took its stores in at head (its
// dependencies). It is empty when no store moved: a removed store that is nowhere
// else at head is a purge, not a move. undecided are the shards whose artifact's
// commit could not be read (a clone whose history is still being fetched): whether
// they lose stores is not known, so they must not be published yet.
func (p *Publisher) movePlan(ctx context.Context, head string, trees map[string]string, shards []string) (deps map[string][]string, undecided map[string]error, err error) {
	n, err := p.cfg.Source.ShardsAt(ctx, head)
	if err != nil {
		return nil, nil, fmt.Errorf("publish: the shard count at %s: %w", head, err)
	}
	type loss struct{ shard, name string }
	var lost []loss
	undecided = map[string]error{}
	for _, s := range shards {
		names, err := p.lostStores(ctx, head, n, s, trees[s])
		if err != nil {
			undecided[s] = err
			continue
		}
		for _, name := range names {
			lost = append(lost, loss{s, name})
		}
	}
	deps = map[string][]string{}
	if len(lost) == 0 {
		return deps, undecided, nil
	}
	// Where each store is at head, over every shard: a shard that takes stores in may
	// be up to date already (published before a restart or a failed wait), and it is
	// still the one to wait for.
	where := map[string]string{}
	for s, tree := range trees {
		if tree == "" {
			continue
		}
		now, err := p.storesOf(ctx, head, s)
		if err != nil {
			return nil, nil, err
		}
		for name := range now {
			where[name] = s
		}
	}
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
	for s := range deps {
		sort.Strings(deps[s])
	}
	return deps, undecided, nil
}

// lostStores lists the stores shard's artifact holds that are no longer in shard at
// head (tree is shard's tree there), when its artifact was built at another shard
// count than n, the head's: only then can one have moved to another shard.
func (p *Publisher) lostStores(ctx context.Context, head string, n int, shard, tree string) ([]string, error) {
	commit, was, known := p.publishedAt(shard)
	if commit == "" || known && (was == tree || was == "") {
		return nil, nil
	}
	at, err := p.cfg.Source.ShardsAt(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("publish: shard %s: the shard count of the commit its artifact was built at (%s): %w", shard, commit, err)
	}
	if at == n {
		return nil, nil
	}
	before, err := p.storesOf(ctx, commit, shard)
	if err != nil {
		return nil, err
	}
	now := map[string]bool{}
	if tree != "" {
		if now, err = p.storesOf(ctx, head, shard); err != nil {
			return nil, err
		}
	}
	var out []string
	for name := range before {
		if !now[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// storesOf lists the store folders of shard at commit (none when it is absent).
func (p *Publisher) storesOf(ctx context.Context, commit, shard string) (map[string]bool, error) {
	sub, err := p.cfg.Source.Subtrees(ctx, commit, path.Join(p.storesDir(), shard))
	if err != nil {
		return nil, fmt.Errorf("publish: stores of shard %s at %s: %w", shard, commit, err)
	}
	out := make(map[string]bool, len(sub))
	for name := range sub {
		out[name] = true
	}
	return out, nil
}

// publishedAt is the commit shard's artifact was built from and, when this process
// published or adopted it (known), the shard's tree there. Otherwise it is the commit
// the artifact in the cluster names, as the last pass read it ("" when the shard has
// none).
func (p *Publisher) publishedAt(shard string) (commit, tree string, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.shards[shard]; st != nil {
		return st.at, st.tree, true
	}
	if a, ok := p.cluster[shard]; ok {
		if c, ok := p.revisionCommit(a.Revision); ok {
			return c, "", false
		}
	}
	return "", "", false
}

// revisionCommit is the commit an artifact revision (<branch>@sha1:<commit>) names.
func (p *Publisher) revisionCommit(revision string) (string, bool) {
	commit, ok := strings.CutPrefix(revision, p.cfg.Branch+"@sha1:")
	return commit, ok && isHex(commit) && (len(commit) == 40 || len(commit) == 64)
}

// undecidedErr says which shards were left unpublished because whether they lose
// stores is not known yet (movePlan).
func undecidedErr(undecided map[string]error) error {
	if len(undecided) == 0 {
		return nil
	}
	names := make([]string, 0, len(undecided))
	for s := range undecided {
		names = append(names, s)
	}
	sort.Strings(names)
	return fmt.Errorf("shards %s not published until it is known whether they lose stores to others: %w",
		strings.Join(names, " "), undecided[names[0]])
}

// without returns shards less those in drop.
func without(shards []string, drop map[string]error) []string {
	if len(drop) == 0 {
		return shards
	}
	out := make([]string, 0, len(shards))
	for _, s := range shards {
		if _, ok := drop[s]; !ok {
			out = append(out, s)
		}
	}
	return out
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
			if missing := waitsOutside(later, deps, shards); len(missing) > 0 {
				return published, fmt.Errorf("publish: shards %s wait for shards %s, which this pass cannot publish; not published",
					strings.Join(later, " "), strings.Join(missing, " "))
			}
			return published, fmt.Errorf("publish: shards %s lose stores to each other in a cycle; not published", strings.Join(later, " "))
		}
		for _, s := range now {
			// A shard this process has not published yet is measured from its artifact
			// in the cluster: one the move emptied still gets its empty tarball.
			var existing *Artifact
			p.mu.Lock()
			if a, ok := p.cluster[s]; ok && p.shards[s] == nil {
				existing = &a
			}
			p.mu.Unlock()
			rev, err := p.publishLocked(ctx, head, s, trees[s], existing)
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

// loses reports whether shard lost a store to another shard since its artifact was
// built (lostStores): then its publish waits for a move's order.
func (p *Publisher) loses(ctx context.Context, head, shard, tree string) (bool, error) {
	if commit, was, known := p.publishedAt(shard); commit == "" || known && was == tree {
		return false, nil // the common case: no read at all
	}
	n, err := p.cfg.Source.ShardsAt(ctx, head)
	if err != nil {
		return false, fmt.Errorf("publish: the shard count at %s: %w", head, err)
	}
	lost, err := p.lostStores(ctx, head, n, shard, tree)
	return len(lost) > 0, err
}

// waitsOutside lists the shards that some of later wait for but that are not among
// shards (left out of the pass: movePlan could not tell whether they lose stores).
func waitsOutside(later []string, deps map[string][]string, shards []string) []string {
	in := map[string]bool{}
	for _, s := range shards {
		in[s] = true
	}
	var out []string
	for _, s := range later {
		for _, d := range deps[s] {
			if !in[d] && !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	sort.Strings(out)
	return out
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
