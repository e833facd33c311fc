package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"

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

// attachStatus connects the API to the cluster when one is configured: a Tracker
// fed by the kube Watcher, the shard publisher that turns the fleet into the
// ExternalArtifacts Flux applies, stores loaded from the fleet, and the status-aware
// service. Without a cluster the service and options are returned unchanged.
func attachStatus(ctx context.Context, k kubeFlags, rep replicas, svc *fleet.Service, repo *gitrepo.Repo, fleetCluster, branch, dataDir string, reviews *mergedHook, log *slog.Logger, m *metrics.Metrics) (api.Service, api.Options, func(), error) {
	opts := api.Options{Log: log}
	if !k.configured() {
		return svc, opts, func() {}, nil
	}
	kubeconfig := k.kubeconfig
	if k.inCluster {
		kubeconfig = ""
	}
	layout := k.shards
	layout.Namespace = k.fluxNamespace
	if err := layout.Validate(); err != nil {
		return nil, opts, nil, err
	}
	tr := status.New(status.Options{Log: log, OnReady: m.Ready, OnConnected: m.Connected})
	m.WatchPhases(tr.PhaseCounts)
	reviews.setClosed(tr.Reviewing)
	sb := newStandby(tr)
	w, err := kube.New(kube.Config{
		Kubeconfig: kubeconfig, FluxNamespace: k.fluxNamespace, Log: log, OnLag: m.WatchLag,
		ShardKustomization: func(shard string) (*kustomizev1.Kustomization, error) {
			return render.ShardKustomization(layout, shard)
		},
	}, sb)
	if err != nil {
		return nil, opts, nil, err
	}
	ss := status.Service{Stores: svc, T: tr, ShardOf: store.Shard}
	// A shard a background pass published changed outside gitops-api: the store
	// index and the Tracker read its stores again.
	resync := func(ctx context.Context, shards []string) {
		for _, shard := range shards {
			names, err := svc.Resync(ctx, path.Join("stores", fleetCluster, shard))
			if err != nil {
				log.Warn("store index not refreshed after an outside push", "shard", shard, "err", err)
				continue
			}
			ss.Resync(ctx, names)
		}
	}
	// Listening first: the artifacts' URLs name the address.
	aln, err := net.Listen("tcp", k.artifactsListen)
	if err != nil {
		return nil, opts, nil, fmt.Errorf("--artifacts-listen: %w", err)
	}
	artifactURL := k.artifactURL
	if artifactURL == "" {
		artifactURL = "http://" + aln.Addr().String()
	}
	// The first store of a version is applied with its shard at once, but its chart
	// source comes with the fleet GitRepository: the publisher asks for a fetch.
	var fetchSources func(ctx context.Context) error
	if k.fleetSource != "none" {
		fetchSources = func(ctx context.Context) error { return w.RequestSourceFetch(ctx, k.fleetSource) }
	}
	newPub := func() (*publish.Publisher, error) {
		return publish.New(publish.Config{
			Source: repo, Cluster: w, FleetCluster: fleetCluster, Branch: branch,
			Dir: filepath.Join(dataDir, "artifacts"), URL: artifactURL, Interval: k.publishInterval,
			OnPublish: tr.Published, OnChange: resync, OnPublished: m.ShardPublished, Log: log,
			ChartSourcesDir: store.ChartSourcesDir(fleetCluster), FetchSources: fetchSources, Applied: w.WaitApplied,
		})
	}
	// Every replica serves every artifact (rebuilt from Git on a miss); only the
	// leader's own publisher publishes.
	pub, err := newPub()
	if err != nil {
		aln.Close()
		return nil, opts, nil, err
	}
	stopArtifacts := serveArtifacts(aln, pub.Handler(), log)
	// Only the Lease holder publishes (leader.go); a cluster that does not answer
	// yet is not fatal: the API serves (stores show unknown) and the election retries.
	lg, err := startLeader(ctx, rep.leaseConfig(k, kubeconfig, log), rep, repo, sb, fleetCluster, newPub, w.EnsureShardKustomizations, log)
	if err != nil {
		stopArtifacts()
		return nil, opts, nil, err
	}
	rep.fl.onChange(func(ctx context.Context, names, _ []string) { ss.Resync(ctx, names) })
	log.Info("shard publisher: runs on the Lease leader", "artifacts", artifactURL+publish.ArtifactsPath,
		"artifacts-listen", aln.Addr().String())
	// A request answers once its commit is pushed; the queue publishes its shard
	// right after, on the leader (a standby's leader.Publish only waits for the
	// leader's artifact).
	queue := status.NewQueue(status.QueueConfig{T: tr, Publish: lg.Publish, Log: log})
	m.WatchPublishQueue(queue.Depth)
	ss.Queue = queue
	n, err := ss.Load(ctx)
	if err != nil {
		queue.Close(ctx)
		lg.stop()
		stopArtifacts()
		return nil, opts, nil, err
	}
	log.Info("status: watching the cluster", "stores", n, "flux-namespace", k.fluxNamespace)
	// With a cluster one DELETE ?purge=true is enough: the purger commits the second
	// step once Flux applied the first. It starts before the watcher, so the stores a
	// previous run left purging are finished as soon as the cluster shows them
	// applied.
	pctx, stopPurger := context.WithCancel(ctx)
	purger := &status.Purger{T: tr, Stores: ss, Log: log}
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		purger.Run(pctx)
	}()
	w.Start()
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
	opts.Status, opts.Cluster = tr, w.Check
	// Store logs are read through the same API server, with the same identity.
	rc, err := kube.RestConfig(kubeconfig)
	if err == nil {
		opts.Logs, err = kube.NewPodLogs(rc, log)
	}
	if err != nil {
		log.Warn("store logs: no client for the cluster; GET .../logs answers no-cluster", "err", err)
		opts.Logs = nil
	}
	// The purger stops first: a second step in flight needs the publisher.
	return ss, opts, func() {
		stopPurger()
		<-purged
		close(stopped)
		// Shards still waiting get a few seconds, while this replica may still
		// lead; what is left is in Git, for the next leader's first pass.
		qctx, cancel := context.WithTimeout(context.Background(), queueDrain)
		queue.Close(qctx)
		cancel()
		lg.stop()
		stopArtifacts()
		w.Stop()
		tr.Close()
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
