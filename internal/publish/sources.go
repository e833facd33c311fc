package publish

import (
	"context"
	"path"
)

// The shared chart sources (chart-sources/<cluster>/, one HelmChart or
// OCIRepository per engine × version) reach the cluster through the fleet
// GitRepository, not through the shard artifacts: a store of a version no store
// used before would wait for that repository's interval (minutes) while its shard
// is applied at once. So after each publish and each pass the publisher compares
// the folder's tree at the head with the one it last asked Flux to fetch, and asks
// again when it changed. Only the leader publishes, so only the leader asks; a
// request that fails is made again at the next publish or pass, and the
// repository's interval stays the safety net.
//
// A source no store uses any more leaves the folder in the commit that made it
// unused (internal/gitrepo unshare.go): the folder's tree changes as it does for
// a new source, so the same request brings the removal, and the chart-sources
// Kustomization (prune: true) deletes the object. The writer leaves a .gitkeep in
// a folder it empties: a Kustomization whose path is gone fails and prunes nothing.
// Were the folder removed all the same (by hand), its tree reads "" here, which
// differs from the last one asked for, so Flux is asked once more.

// fetchSources asks for a fetch of the fleet GitRepository when the chart-sources
// folder's tree at the head differs from the one last asked for. It reads the head
// itself, not the one a publish worked from: concurrent publishes may finish out of
// order, and Flux fetches the branch's newest commit anyway.
func (p *Publisher) fetchSources(ctx context.Context) {
	if p.cfg.FetchSources == nil || p.cfg.ChartSourcesDir == "" {
		return
	}
	p.srcMu.Lock()
	defer p.srcMu.Unlock()
	head, err := p.cfg.Source.Head()
	if err != nil {
		p.log.Warn("shard publisher: fleet head unknown; the chart sources are checked at the next pass", "err", err)
		return
	}
	dir := p.cfg.ChartSourcesDir
	trees, err := p.cfg.Source.Subtrees(ctx, head, path.Dir(dir))
	if err != nil {
		p.log.Warn("shard publisher: reading the chart sources failed; checked again at the next pass", "head", head, "err", err)
		return
	}
	tree := trees[path.Base(dir)]
	// A process starts with "": a folder that does not exist asks for nothing, one
	// that does asks once (a new leader cannot know whether the last one asked).
	if tree == p.srcTree {
		return
	}
	if err := p.cfg.FetchSources(ctx); err != nil {
		p.log.Warn("shard publisher: asking Flux to fetch the fleet for the changed chart sources failed; retrying at the next publish or pass",
			"dir", dir, "head", head, "err", err)
		return
	}
	p.log.Info("shard publisher: the chart sources changed; asked Flux to fetch the fleet", "dir", dir, "head", head)
	p.srcTree = tree
}
