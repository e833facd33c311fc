package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/storefleet/storefleet/internal/api"
	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/kube"
	"github.com/storefleet/storefleet/internal/metrics"
	"github.com/storefleet/storefleet/internal/publish"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// kubeFlags say which cluster status watches.
type kubeFlags struct {
	kubeconfig, fluxNamespace, artifactURL string
	// fleetSource is the GitRepository (in fluxNamespace) that brings the shared chart
	// sources: the publisher asks it to fetch when they changed.
	fleetSource string
	// artifactsListen is where the shard artifacts are served: a listener of their
	// own, so that a NetworkPolicy can admit only Flux to it (the API port does not
	// serve them).
	artifactsListen string
	inCluster       bool
	publishInterval time.Duration
	// shards is the cluster's choice for the shard Kustomizations the publisher
	// creates (render.ShardKustomization); its namespace is fluxNamespace.
	shards render.ShardLayout
	// extra is --cluster-kubeconfig as given, artifactURLs --cluster-artifact-url;
	// clusters is every cluster served, filled by check (served).
	extra, artifactURLs listFlag
	clusters            []servedCluster
	// envErrs are variables that did not parse: reported by validate, after the
	// flags, so a flag can still override a bad variable.
	envErrs map[string]error
}

// validate reports unparseable variables not overridden by a flag, and a shard
// layout Flux would refuse.
func (k kubeFlags) validate(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	for name, err := range k.envErrs {
		if !set[name] {
			errs = append(errs, err)
		}
	}
	if k.fleetSource == "" {
		errs = append(errs, errors.New(`--fleet-source is empty: name the fleet GitRepository, or "none"`))
	}
	l := k.shards
	l.Namespace = k.fluxNamespace
	errs = append(errs, l.Validate())
	if _, port, err := net.SplitHostPort(k.artifactsListen); err != nil {
		errs = append(errs, fmt.Errorf("--artifacts-listen %q must be host:port (an empty host listens on every address): %w", k.artifactsListen, err))
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		errs = append(errs, fmt.Errorf("--artifacts-listen %q: %w", k.artifactsListen, err))
	}
	return errors.Join(errs...)
}

func (k kubeFlags) configured() bool { return k.kubeconfig != "" || k.inCluster }

func kubeFlagSet(fs *flag.FlagSet, k *kubeFlags, env func(string) string) {
	str := func(p *string, name, envName, def, help string) {
		if v := env(envName); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, help+" ["+envName+"]")
	}
	str(&k.kubeconfig, "kubeconfig", "STOREFLEET_KUBECONFIG", "", "kubeconfig of the cluster whose Flux applies the fleet: stores then report their real phase (sourceFetched … ready) and /api/v1/stores/{name}/events streams it; empty (and no --in-cluster) = no cluster, stores show committed")
	inCluster, _ := strconv.ParseBool(env("STOREFLEET_IN_CLUSTER"))
	fs.BoolVar(&k.inCluster, "in-cluster", inCluster, "watch the cluster gitops-api runs in, with its ServiceAccount [STOREFLEET_IN_CLUSTER]")
	str(&k.fluxNamespace, "flux-namespace", "STOREFLEET_FLUX_NAMESPACE", "flux-system", "namespace of the shard Kustomizations and the ExternalArtifacts gitops-api publishes")
	str(&k.fleetSource, "fleet-source", "STOREFLEET_FLEET_SOURCE", "fleet", "the fleet GitRepository in the Flux namespace (it applies chart-sources/<cluster>/): the shard publisher asks it to fetch when a commit changed the shared chart sources; \"none\" = wait for its interval")
	str(&k.artifactsListen, "artifacts-listen", "STOREFLEET_ARTIFACTS_LISTEN", "127.0.0.1:9091", "address the shard artifacts are served on, for Flux alone (not the API's --listen); with a cluster only")
	str(&k.artifactURL, "artifact-url", "STOREFLEET_ARTIFACT_URL", "", "base URL kustomize-controller fetches the shard artifacts from: --artifacts-listen as the cluster reaches it, with several replicas their Service (any replica serves any artifact), e.g. http://storefleet-gitops-api.storefleet.svc:9091; empty = http://<artifacts-listen address>")
	interval := 30 * time.Second
	if v, err := time.ParseDuration(env("STOREFLEET_PUBLISH_INTERVAL")); err == nil {
		interval = v
	}
	fs.DurationVar(&k.publishInterval, "publish-interval", interval, "how often the fleet is fetched and every shard compared with its artifact, for pushes made outside gitops-api [STOREFLEET_PUBLISH_INTERVAL]")

	def := render.DefaultShardLayout()
	k.shards = def
	k.envErrs = map[string]error{}
	dur := func(p *time.Duration, name, envName string, v time.Duration, help string) {
		if e := env(envName); e != "" {
			d, err := time.ParseDuration(e)
			if err != nil {
				k.envErrs[name] = fmt.Errorf("%s: %w", envName, err)
			}
			v = d
		}
		fs.DurationVar(p, name, v, help+" ["+envName+"]")
	}
	dur(&k.shards.Interval.Duration, "shard-interval", "STOREFLEET_SHARD_INTERVAL", def.Interval.Duration, "how often Flux re-applies an unchanged shard to undo drift (a commit never waits for it); keep it well above a full pass over the fleet, see docs/design.md")
	dur(&k.shards.RetryInterval.Duration, "shard-retry-interval", "STOREFLEET_SHARD_RETRY_INTERVAL", def.RetryInterval.Duration, "how soon Flux retries a shard whose apply failed")
	dur(&k.shards.Timeout.Duration, "shard-timeout", "STOREFLEET_SHARD_TIMEOUT", def.Timeout.Duration, "how long one shard apply may take")
	dependsOn := strings.Join(def.DependsOn, ",")
	if v := env("STOREFLEET_SHARD_DEPENDS_ON"); v != "" {
		dependsOn = v
	}
	k.shards.DependsOn = splitList(dependsOn)
	fs.Func("shard-depends-on", "comma-separated Kustomizations (in the Flux namespace) every shard waits for until they have been applied once; none = no dependency (default \""+dependsOn+"\") [STOREFLEET_SHARD_DEPENDS_ON]", func(v string) error {
		k.shards.DependsOn = splitList(v)
		return nil
	})
	clusterFlagSet(fs, k, env)
	str(&k.shards.DecryptionSecret, "shard-decryption-secret", "STOREFLEET_SHARD_DECRYPTION_SECRET", "", "Secret (in the Flux namespace) with the age key Flux decrypts SOPS-encrypted store files with; empty = no decryption")
}

// splitList reads a comma-separated list; "none" is the empty list (an empty
// variable means the default, as for every other setting).
func splitList(v string) []string {
	if strings.TrimSpace(v) == "none" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// attachStatus connects the API to the clusters when any is configured: one
// Tracker, and per cluster (cluster.go) a kube Watcher feeding it, the shard
// publisher that turns that cluster's stores/<name>/ into the ExternalArtifacts its
// Flux applies, elected by a Lease in that cluster, and its publish queue; then
// the stores loaded from the fleet and the status-aware service. Without a cluster
// the service and options are returned unchanged. It also returns the clusters'
// checks for /readyz?verbose (nil without a cluster).
func attachStatus(ctx context.Context, k kubeFlags, rep replicas, svc *fleet.Service, repo *gitrepo.Repo, fleetCluster, branch, dataDir string, reviews *mergedHook, log *slog.Logger, m *metrics.Metrics) (api.Service, api.Options, func() []clusterCheck, func(), error) {
	opts := api.Options{Log: log}
	if len(k.clusters) == 0 {
		return svc, opts, nil, func() {}, nil
	}
	layout := k.shards
	layout.Namespace = k.fluxNamespace
	if err := layout.Validate(); err != nil {
		return nil, opts, nil, nil, err
	}
	tr := status.New(status.Options{Log: log, OnReady: m.Ready})
	reviews.setClosed(tr.Reviewing)
	ss := &status.Service{Stores: svc, T: tr, ShardOf: fleetShardOf(repo, log), Head: fleetHead(repo)}
	multi := len(k.clusters) > 1
	if multi {
		ss.Queues = map[string]*status.Queue{}
	}
	// Listening first: the artifacts' URLs name the address.
	aln, err := net.Listen("tcp", k.artifactsListen)
	if err != nil {
		return nil, opts, nil, nil, fmt.Errorf("--artifacts-listen: %w", err)
	}
	defaultURL := k.artifactURL
	if defaultURL == "" {
		defaultURL = "http://" + aln.Addr().String()
	}
	// An artifact's path names its cluster (/artifacts/<cluster>/<shard>/…): one
	// listener serves every cluster's, each from its own publisher.
	// The listener serves once every cluster's handler is in; a download asked for
	// meanwhile waits in the listener's queue.
	handlers := artifactHandlers{}
	stopArtifacts := func() { aln.Close() }
	var started []*attached
	stopAll := func() {
		for _, c := range started {
			c.stop()
		}
		stopArtifacts()
		tr.Close()
	}
	for _, c := range k.clusters {
		key := ""
		if multi {
			key = c.name
		}
		// A cluster whose Flux reaches the artifacts by another address (another
		// network) has its own URL; the others share the default.
		artifactURL := defaultURL
		if c.artifactURL != "" {
			artifactURL = c.artifactURL
		}
		cm := m.Cluster(c.name)
		view := tr.View(key)
		// With one cluster the view is the whole Tracker ("" names no cluster):
		// every store it tracks is that cluster's.
		phases := tr.PhaseCounts
		if multi {
			phases = view.PhaseCounts
		}
		cm.WatchPhases(phases)
		a, err := attachCluster(ctx, clusterSetup{
			cluster: c, view: view, k: k, layout: layout, rep: rep, svc: svc, ss: ss, repo: repo,
			branch: branch, dataDir: dataDir, artifactURL: artifactURL, multi: multi, log: log, m: cm,
		})
		if err != nil {
			stopAll()
			return nil, opts, nil, nil, err
		}
		started = append(started, a)
		cm.WatchPublishQueue(a.queue.Depth)
		handlers[c.name] = a.artifacts
		if multi {
			ss.Queues[c.name] = a.queue
		} else {
			ss.Queue = a.queue
		}
	}
	stopArtifacts = serveArtifacts(aln, handlers, log)
	followStatus(rep.fl, ss, repo, log)
	log.Info("shard publishers: each runs on its cluster's Lease leader", "clusters", names(k.clusters),
		"artifacts", defaultURL+publish.ArtifactsPath, "artifacts-listen", aln.Addr().String())
	n, err := ss.Load(ctx)
	if err != nil {
		stopAll()
		return nil, opts, nil, nil, err
	}
	log.Info("status: watching the clusters", "stores", n, "clusters", names(k.clusters), "flux-namespace", k.fluxNamespace)
	// With a cluster one DELETE ?purge=true is enough: the purger commits the second
	// step once Flux applied the first. It starts before the watchers, so the stores a
	// previous run left purging are finished as soon as their cluster shows them
	// applied.
	pctx, stopPurger := context.WithCancel(ctx)
	purger := &status.Purger{T: tr, Stores: ss, Log: log}
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		purger.Run(pctx)
	}()
	for _, c := range started {
		c.w.Start()
	}
	// Event streams end when the server shuts down, so graceful shutdown does not
	// wait on them.
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			tr.Close()
		case <-stopped:
		}
	}()
	opts.Status, opts.Cluster = tr, checkClusters(started)
	// Store logs are read through the API server of the store's cluster, with the
	// same identity as its watcher.
	logs := clusterLogs{}
	for _, c := range k.clusters {
		rc, err := kube.RestConfig(c.kubeconfig)
		var l *kube.PodLogs
		if err == nil {
			l, err = kube.NewPodLogs(rc, log)
		}
		if err != nil {
			log.Warn("store logs: no client for the cluster; GET .../logs of its stores answers no-cluster", "cluster", c.name, "err", err)
			continue
		}
		logs[c.name] = l
	}
	switch {
	case len(logs) == 0:
		opts.Logs = nil
	case !multi:
		opts.Logs = logs[k.clusters[0].name]
	default:
		opts.Logs = logs
	}
	// The purger stops first: a second step in flight needs the publisher.
	return ss, opts, clusterChecks(started), func() {
		stopPurger()
		<-purged
		close(stopped)
		stopAll()
	}, nil
}

// queueDrain is how long shutdown lets the publish queue finish.
const queueDrain = 5 * time.Second

// serveArtifacts serves the shard artifacts on their own listener until the
// returned func is called. Downloads in flight get a few seconds to finish; Flux
// retries one cut short.
func serveArtifacts(ln net.Listener, h http.Handler, log *slog.Logger) func() {
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("shard artifacts: listener failed", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}
}

// fleetShardOf maps a store to its shard at the fleet's shard count at the head
// (gitrepo.Repo.Shards), so the status side publishes the shard the writer wrote
// the store to, and follows a reshard once the head has it. A count that cannot be
// read (a shards file that does not parse) leaves the last one read: the writer
// refuses every change meanwhile, so nothing new needs a shard.
func fleetShardOf(repo *gitrepo.Repo, log *slog.Logger) func(name string) string {
	var last atomic.Int64
	last.Store(store.DefaultShards)
	return func(name string) string {
		n, err := repo.Shards(context.Background())
		if err != nil {
			log.Warn("the fleet's shard count cannot be read; the last one read stays", "err", err)
			return store.ShardIn(name, int(last.Load()))
		}
		last.Store(int64(n))
		return store.ShardIn(name, n)
	}
}

// followStatus tells the status side of what the follower read: the stores whose
// folders changed are read again, and when the head's shard count changed (a
// reshard reached this replica) every store the Tracker follows is filed under its
// shard at the new count (Tracker.Rekey), so its status follows its new shard's
// artifact and Kustomization. Comparing the count costs one cached read per
// catch-up; the re-key runs only when it changed.
func followStatus(fl *follower, ss *status.Service, repo *gitrepo.Repo, log *slog.Logger) {
	last, _ := repo.Shards(context.Background())
	fl.onChange(func(ctx context.Context, names, _ []string) {
		ss.Resync(ctx, names)
		n, err := repo.Shards(ctx)
		if err != nil || n == last {
			return
		}
		head, _ := repo.Head()
		moved := ss.T.Rekey(head, ss.ShardOf)
		log.Info("status: the fleet's shard count changed; stores follow their new shards", "from", last, "to", n, "moved_unread", moved)
		last = n
	})
}

// fleetHead is the fleet's head commit ("" before the first).
func fleetHead(repo *gitrepo.Repo) func() string {
	return func() string {
		h, _ := repo.Head()
		return h
	}
}
