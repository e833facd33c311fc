package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/store"
)

func reshardHelp() helpText {
	return helpText{
		usage: "gitops-api reshard --repo URL --shards N [flags]",
		about: `Changes the fleet's shard count (the file "` + store.ShardsFile + `" at the fleet repository's root,
` + fmt.Sprint(store.DefaultShards) + ` when absent): moves every store folder to its shard under the new
count in one commit, with the count, and pushes it: every cluster's stores (stores/<cluster>/), since the
count is the fleet's. gitops-api's shard publisher then publishes the
shards that take stores in, waits until Flux applied them, and only then the shards that lose them,
so Flux adopts every moved object without uninstalling a store (clusters/README.md, "Changing the
shard count").

With --kubeconfig it then waits until the publisher and Flux carried the move out, and removes the
Kustomizations and ExternalArtifacts of the shards the move emptied (with your credentials:
gitops-api's own may not delete them). Without it, do that by hand once those shards applied their
empty artifact. Needs the git CLI.`,
	}
}

// reshard's commit names the action and its actor as the API's commits do
// (fleetMessage), plus the new count.
const (
	reshardAction = "reshard"
	trailerShards = "Shards"
)

func runReshard(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var repo, cluster, branch, actor, kubeconfig, fluxNS string
	var shards int
	var timeout time.Duration
	fs := newFlagSet("gitops-api reshard")
	fs.StringVar(&repo, "repo", "", "fleet repository URL or path; required")
	fs.IntVar(&shards, "shards", 0, fmt.Sprintf("new shard count: a power of two from %d to %d; required", store.MinShards, store.MaxShards))
	fs.StringVar(&cluster, "cluster", store.DefaultCluster, "the cluster --kubeconfig reaches: its emptied shards are removed there (every cluster's stores move, the count being the fleet's)")
	fs.StringVar(&branch, "branch", "main", "fleet branch")
	fs.StringVar(&actor, "actor", os.Getenv("USER"), "who moves the fleet, for the commit's Actor trailer")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "cluster to watch the move on and remove the emptied shards from (optional)")
	fs.StringVar(&fluxNS, "flux-namespace", "flux-system", "namespace of the shard Kustomizations")
	fs.DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for the move to be applied (with --kubeconfig)")
	if helped, err := parseFlags(fs, reshardHelp(), args, stdout); helped || err != nil {
		return err
	}
	switch {
	case repo == "":
		return usageError{msg: "--repo is required", cmd: fs.Name()}
	case store.ValidShards(shards) != nil:
		return usageError{msg: "--shards: " + store.ValidShards(shards).Error(), cmd: fs.Name()}
	case !validActor(actor):
		return usageError{msg: "--actor must be one non-empty line", cmd: fs.Name()}
	}
	var sh *kube.Shards
	if kubeconfig != "" {
		cfg, err := kube.RestConfig(kubeconfig)
		if err != nil {
			return err
		}
		if sh, err = kube.NewShards(cfg, fluxNS); err != nil {
			return err
		}
	}
	m, err := moveFleet(ctx, reshardPlan{repo: repo, branch: branch, cluster: cluster, shards: shards, actor: actor}, sh)
	if err != nil {
		return err
	}
	if m.commit == "" {
		fmt.Fprintf(stdout, "the fleet already has %d shards: nothing to move\n", shards)
		return nil
	}
	fmt.Fprintf(stdout, "moved %d stores from %d to %d shards in commit %s\n", m.moved, m.from, shards, m.commit)
	names := make([]string, 0, len(m.clusters))
	for c := range m.clusters {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		if sh != nil && c == cluster || len(m.clusters[c].emptied) == 0 {
			continue
		}
		fmt.Fprintf(stdout, "cluster %s: remove these emptied shards' Kustomizations and ExternalArtifacts once they applied an empty artifact: %s\n",
			c, strings.Join(m.clusters[c].emptied, " "))
	}
	if sh == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := sh.WaitMoved(wctx, m.before, func(left int) {
		fmt.Fprintf(stderr, "waiting for the publisher and Flux: %d shards left\n", left)
	}); err != nil {
		return err
	}
	for _, s := range m.emptied {
		if err := sh.Remove(wctx, s); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "applied; removed %d emptied shards\n", len(m.emptied))
	return nil
}

type reshardPlan struct {
	repo, branch, cluster, actor string
	shards                       int
}

// move is what moveFleet did.
type move struct {
	commit      string
	from, moved int
	// clusters is what moved in each cluster folder.
	clusters map[string]clusterMove
	// emptied are --cluster's shards that held stores before and none after.
	emptied []string
	// before is, for every shard the move changed, its artifact's revision before
	// the push (with a cluster).
	before map[string]string
}

// moveFleet clones the fleet, moves the store folders and pushes one commit
// (commitFleet, which redoes it all from a fresh clone after a lost race).
func moveFleet(ctx context.Context, p reshardPlan, sh *kube.Shards) (move, error) {
	var m move
	commit, err := commitFleet(ctx, fleetTarget{repo: p.repo, branch: p.branch, actor: p.actor},
		func(ctx context.Context, dir string) (string, []string, error) {
			var err error
			m, err = moveClone(ctx, dir, p, sh)
			if err != nil || m.from == p.shards {
				return "", nil, err
			}
			msg := fleetMessage(fmt.Sprintf("reshard the fleet from %d to %d shards (%d stores moved in %d clusters)", m.from, p.shards, m.moved, len(m.clusters)),
				reshardAction, p.actor, gitrepo.Trailer{Key: trailerShards, Value: fmt.Sprint(p.shards)})
			return msg, []string{store.ShardsFile, store.StoresRoot}, nil
		})
	if err != nil || commit == "" {
		return move{}, err
	}
	m.commit = commit
	return m, nil
}

// moveClone moves the store folders of the clone in dir to the count p.shards and
// writes the count.
func moveClone(ctx context.Context, dir string, p reshardPlan, sh *kube.Shards) (move, error) {
	from, err := fleetShards(dir)
	if err != nil {
		return move{}, err
	}
	m := move{from: from, clusters: map[string]clusterMove{}}
	if from == p.shards {
		return m, nil
	}
	// The count is the fleet's, so every cluster's stores move in the same commit: a
	// cluster left at the old layout would have every later change of its stores
	// refused by the writer (its folders no longer match the count).
	clusters, err := fleetClusters(dir)
	if err != nil {
		return move{}, err
	}
	var list []string
	for _, c := range clusters {
		cm, err := moveCluster(filepath.Join(dir, filepath.FromSlash(store.ClusterDir(c))), c, p.shards)
		if err != nil {
			return move{}, err
		}
		m.clusters[c] = cm
		m.moved += cm.moved
		if c == p.cluster {
			m.emptied, list = cm.emptied, cm.changed
		}
	}
	if err := os.WriteFile(filepath.Join(dir, store.ShardsFile), store.FormatShards(p.shards), 0o644); err != nil {
		return move{}, err
	}
	if sh != nil {
		if m.before, err = sh.Revisions(ctx, list); err != nil {
			return move{}, fmt.Errorf("reading the shards' artifacts before the move: %w", err)
		}
	}
	return m, nil
}

// clusterMove is what moved in one cluster's folder.
type clusterMove struct {
	moved int
	// emptied held stores before and none after; changed gained or lost a store.
	emptied, changed []string
}

// moveCluster moves the store folders below root (stores/<cluster>) to their shards
// under the count shards.
func moveCluster(root, cluster string, shards int) (clusterMove, error) {
	shardDirs, err := os.ReadDir(root)
	if err != nil {
		return clusterMove{}, err
	}
	type folder struct{ shard, name string }
	var folders []folder
	held := map[string]bool{}
	for _, sd := range shardDirs {
		if !sd.IsDir() {
			continue
		}
		if !store.ValidShard(sd.Name()) {
			return clusterMove{}, fmt.Errorf("%s/%s is not a shard folder", store.ClusterDir(cluster), sd.Name())
		}
		names, err := os.ReadDir(filepath.Join(root, sd.Name()))
		if err != nil {
			return clusterMove{}, err
		}
		for _, n := range names {
			if n.IsDir() {
				folders = append(folders, folder{sd.Name(), n.Name()})
				held[sd.Name()] = true
			}
		}
	}
	// All folders are listed before any moves: a shard name can be both a source
	// and a destination (000–0ff exist at every count).
	changed, holds := map[string]bool{}, map[string]bool{}
	var cm clusterMove
	for _, f := range folders {
		to := store.ShardIn(f.name, shards)
		holds[to] = true
		if to == f.shard {
			continue
		}
		dst := filepath.Join(root, to, f.name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return clusterMove{}, err
		}
		if err := os.Rename(filepath.Join(root, f.shard, f.name), dst); err != nil {
			return clusterMove{}, err
		}
		changed[f.shard], changed[to] = true, true
		cm.moved++
	}
	for s := range held {
		if !holds[s] {
			cm.emptied = append(cm.emptied, s)
		}
	}
	for s := range changed {
		cm.changed = append(cm.changed, s)
	}
	sort.Strings(cm.emptied)
	sort.Strings(cm.changed)
	return cm, nil
}
