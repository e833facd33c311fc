package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/metrics"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// clusterSetup is what attachCluster needs to serve one cluster.
type clusterSetup struct {
	cluster     servedCluster
	view        *status.ClusterView
	k           kubeFlags
	layout      render.ShardLayout
	rep         replicas
	svc         *fleet.Service
	ss          *status.Service
	repo        *gitrepo.Repo
	branch      string
	dataDir     string
	artifactURL string
	// multi: more than one cluster is served; each then keeps its tarballs in a
	// folder of its own (a publisher prunes every file of its folder it does not
	// point at) and logs name the cluster.
	multi bool
	log   *slog.Logger
	m     *metrics.Cluster
}

// attached is one served cluster while it runs: its watcher, its elected
// publisher, its publish queue and the handler of its artifacts.
type attached struct {
	name      string
	w         *kube.Watcher
	lg        *leader
	queue     *status.Queue
	artifacts http.Handler
}

// attachCluster starts what one cluster needs, except its watcher (Start, once the
// stores are loaded): a cluster that does not answer yet is not fatal, the API
// serves (its stores show unknown) and its election retries.
func attachCluster(ctx context.Context, c clusterSetup) (*attached, error) {
	log := c.log
	if c.multi {
		log = log.With("cluster", c.cluster.name)
	}
	sb := newStandby(c.view, c.m)
	w, err := kube.New(kube.Config{
		Kubeconfig: c.cluster.kubeconfig, FluxNamespace: c.k.fluxNamespace, Log: log, OnLag: c.m.WatchLag,
		ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) {
			return render.ShardKustomization(c.layout, shard)
		},
	}, sb)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.cluster.name, err)
	}
	name := c.cluster.name
	// A shard a background pass published changed outside gitops-api: the store
	// index and the Tracker read its stores again.
	resync := func(ctx context.Context, shards []string) {
		for _, shard := range shards {
			names, err := c.svc.Resync(ctx, path.Join("stores", name, shard))
			if err != nil {
				log.Warn("store index not refreshed after an outside push", "shard", shard, "err", err)
				continue
			}
			c.ss.Resync(ctx, names)
		}
	}
	// The first store of a version is applied with its shard at once, but its chart
	// source comes with the cluster's fleet GitRepository: the publisher asks for a
	// fetch.
	var fetchSources func(ctx context.Context) error
	if c.k.fleetSource != "none" {
		fetchSources = func(ctx context.Context) error { return w.RequestSourceFetch(ctx, c.k.fleetSource) }
	}
	dir := filepath.Join(c.dataDir, "artifacts")
	if c.multi {
		dir = filepath.Join(c.dataDir, "cluster-artifacts", name)
	}
	newPub := func() (*publish.Publisher, error) {
		return publish.New(publish.Config{
			Source: c.repo, Cluster: w, FleetCluster: name, Branch: c.branch,
			Dir: dir, URL: c.artifactURL, Interval: c.k.publishInterval,
			OnPublish: c.view.Published, OnChange: resync, OnPublished: c.m.ShardPublished, Log: log,
			ChartSourcesDir: store.ChartSourcesDir(name), FetchSources: fetchSources, Applied: w.WaitApplied,
		})
	}
	// Every replica serves every artifact (rebuilt from Git on a miss); only the
	// leader's own publisher publishes.
	pub, err := newPub()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	lc := c.rep.leaseConfig(c.k, c.cluster, log)
	lg, err := startLeader(ctx, lc, c.rep, c.repo, sb, name, newPub, w.EnsureShardKustomizations, log)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	// A request answers once its commit is pushed; the queue publishes its shard
	// right after, on the leader (a standby's leader.Publish only waits for the
	// leader's artifact).
	queue := status.NewQueue(status.QueueConfig{T: c.view.Tracker, Publish: lg.Publish, Log: log})
	return &attached{name: name, w: w, lg: lg, queue: queue, artifacts: pub.Handler()}, nil
}

// stop drains the publish queue for a few seconds, while this replica may still
// lead (what is left is in Git, for the next leader's first pass), then stops the
// publisher and the watcher.
func (a *attached) stop() {
	qctx, cancel := context.WithTimeout(context.Background(), queueDrain)
	a.queue.Close(qctx)
	cancel()
	a.lg.stop()
	a.w.Stop()
}

// checkClusters is /readyz's cluster check: every served cluster's connection,
// each failure naming its cluster.
func checkClusters(cs []*attached) func() error {
	if len(cs) == 1 {
		return cs[0].w.Check
	}
	return func() error {
		var errs []error
		for _, c := range cs {
			if err := c.w.Check(); err != nil {
				errs = append(errs, fmt.Errorf("cluster %s: %w", c.name, err))
			}
		}
		return errors.Join(errs...)
	}
}

// artifactHandlers serves each cluster's artifacts from its own publisher, by the
// cluster the path names (/artifacts/<cluster>/…). It is filled before the first
// request can name a cluster (their URLs are published only after).
type artifactHandlers map[string]http.Handler

func (h artifactHandlers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel, _ := strings.CutPrefix(r.URL.Path, publish.ArtifactsPath)
	cluster, _, _ := strings.Cut(rel, "/")
	if next, ok := h[cluster]; ok {
		next.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// clusterLogs reads a store's Pod logs from its own cluster.
type clusterLogs map[string]store.Logs

func (l clusterLogs) StoreLogs(ctx context.Context, s store.Store, o store.LogOptions) (io.ReadCloser, error) {
	if logs, ok := l[s.Cluster]; ok {
		return logs.StoreLogs(ctx, s, o)
	}
	return nil, store.Errorf(store.ECONFLICT, "store %q is in cluster %s, which this API does not serve: its logs cannot be read", s.Name, s.Cluster)
}
