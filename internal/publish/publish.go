package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Source is the fleet repository's read side (internal/gitrepo's Repo).
type Source interface {
	// Head is the newest fleet commit this process knows.
	Head() (string, error)
	// Refresh fetches the remote, learning pushes made elsewhere.
	Refresh(ctx context.Context) error
	// Subtrees maps each subfolder of dir at commit to its tree hash.
	Subtrees(ctx context.Context, commit, dir string) (map[string]string, error)
	// Archive writes a deterministic gzipped tar of dir at commit (the same tree
	// gives the same bytes), fetching the remote first when the clone lacks commit.
	Archive(ctx context.Context, commit, dir string, w io.Writer) error
	// ShardsAt is the fleet's shard count at commit: stores move between shards
	// only when it changes (move.go).
	ShardsAt(ctx context.Context, commit string) (int, error)
}

// Artifact is what a shard's ExternalArtifact points kustomize-controller at: the
// fields of Flux's status.artifact the publisher sets.
type Artifact struct {
	// URL is where kustomize-controller downloads the tarball.
	URL string
	// Path is the tarball's path in the publisher's storage.
	Path string
	// Revision is <branch>@sha1:<commit>.
	Revision string
	// Digest is sha256:<hex> of the tarball bytes.
	Digest string
	// Size is the tarball's length in bytes.
	Size int64
	// LastUpdateTime is when the artifact was built; the API stores it to the
	// second. Zero means now.
	LastUpdateTime time.Time
}

// Cluster is where artifacts are published: internal/kube's Watcher implements it.
type Cluster interface {
	// PublishArtifact creates ExternalArtifact stores-<shard> if needed and sets its
	// status to a.
	PublishArtifact(ctx context.Context, shard string, a Artifact) error
	// PublishedArtifacts reads back every shard's artifact, by shard.
	PublishedArtifacts(ctx context.Context) (map[string]Artifact, error)
}

// Config configures a Publisher.
type Config struct {
	Source  Source
	Cluster Cluster
	// FleetCluster is the cluster folder the shards are read from: stores/<FleetCluster>/.
	FleetCluster string
	// Branch is the fleet branch the shards are read from; it names each artifact's
	// revision (<branch>@sha1:<commit>), as source-controller names a GitRepository's
	// (default main).
	Branch string
	// Dir keeps the tarballs this process published (the current and the previous
	// one of each shard). It is a cache: Handler rebuilds any tarball from Git.
	Dir string
	// URL is the base URL kustomize-controller fetches tarballs from: the artifact
	// listener as the cluster sees it, which with several replicas is their Service,
	// so any replica may be asked. Handler serves
	// <URL>/artifacts/<cluster>/<shard>/<commit>/<sha256>.tar.gz.
	URL string
	// Interval is how often the remote is fetched and every shard compared with
	// what was published, for pushes made outside this process (default 30 s).
	Interval time.Duration
	// OnPublish is told of every revision a shard gets (internal/status' Tracker).
	OnPublish func(shard, revision string)
	// OnChange is told, after a background pass, of the shards it published: their
	// change came from a push made elsewhere (or a publish after a commit failed),
	// so the store index and status re-read them. It runs outside the publisher's
	// lock.
	OnChange func(ctx context.Context, shards []string)
	// OnPublished is told of every shard artifact built and published (or not,
	// err), and how long it took (internal/metrics). Adopting the cluster's
	// artifact unchanged counts too: it is a publish that needed no write.
	OnPublished func(d time.Duration, err error)
	// ChartSourcesDir is the fleet folder of this cluster's shared chart sources
	// (chart-sources/<FleetCluster>), which the fleet GitRepository brings to the
	// cluster. FetchSources asks Flux to fetch that repository now
	// (internal/kube's RequestSourceFetch): it is called after a publish or a pass
	// when the folder's tree changed since the last call that succeeded. Either
	// empty: the repository's interval alone brings a new chart source.
	ChartSourcesDir string
	FetchSources    func(ctx context.Context) error
	// Applied waits until Flux applied revision to shard (its Kustomization's
	// lastAppliedRevision): when stores move between shards (a new shard count),
	// the shards that take them in must apply before those that lose them are
	// published (move.go). Nil publishes a move without waiting, which can make Flux
	// uninstall a moved store.
	Applied func(ctx context.Context, shard, revision string) error
	Log     *slog.Logger
}

// Publisher publishes shard artifacts. It is safe for concurrent use. Publishes of
// different shards run side by side (each is mostly waiting for the API server);
// those of one shard are serialized, each from the newest fleet commit read once its
// turn has come, so a shard's artifact never goes back to an older tree. A background
// pass, which reads the head once for every shard, runs alone.
type Publisher struct {
	cfg Config
	log *slog.Logger

	// pass is held for writing by a background pass and prune, for reading by each
	// Publish.
	pass       sync.RWMutex
	mu         sync.Mutex // guards shards, cluster and shardLocks
	shards     map[string]*shardState
	shardLocks map[string]*sync.Mutex
	// cluster is every shard's artifact as the last pass read it from the cluster:
	// for a shard this process has not published, what a move is measured from.
	cluster map[string]Artifact

	stop chan struct{}
	done chan struct{}

	srcMu   sync.Mutex
	srcTree string // the chart-sources tree Flux was last asked to fetch (sources.go)

	served served
}

type shardState struct {
	tree     string // tree hash published ("" = the shard is empty)
	at       string // the fleet commit tree was read at (the revision's, or a later one with the same tree)
	revision string
	digest   string
	file     string // current tarball, relative to Dir
	previous string // the one before: a fetch may still be reading it
}

// passTimeout bounds one background pass.
const passTimeout = 10 * time.Minute

// ArtifactsPath is the URL path prefix Handler serves.
const ArtifactsPath = "/artifacts/"

// New returns a Publisher; Start publishes.
func New(cfg Config) (*Publisher, error) {
	if cfg.Source == nil || cfg.Cluster == nil || cfg.FleetCluster == "" || cfg.Dir == "" || cfg.URL == "" {
		return nil, errors.New("publish: Source, Cluster, FleetCluster, Dir and URL are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Branch == "" {
		cfg.Branch = "main"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.OnPublish == nil {
		cfg.OnPublish = func(string, string) {}
	}
	if cfg.OnPublished == nil {
		cfg.OnPublished = func(time.Duration, error) {}
	}
	cfg.URL = strings.TrimSuffix(cfg.URL, "/")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg, log: cfg.Log, shards: map[string]*shardState{}, shardLocks: map[string]*sync.Mutex{},
		stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start fetches the fleet and brings every shard's artifact up to date with its
// head (adopting those already published with the same content), then keeps
// checking in the background every Interval. It returns once the first pass is done; a shard that
// failed is retried by the background pass.
func (p *Publisher) Start(ctx context.Context) error {
	// A new leader's clone may be behind what the last one published: publishing
	// from it would move shards back to older trees.
	if err := p.cfg.Source.Refresh(ctx); err != nil {
		p.log.Warn("shard publisher: fetching the fleet before the first pass failed; publishing from the clone as it is", "err", err)
	}
	_, err := p.sync(ctx, true)
	if err == nil {
		p.prune()
	}
	p.fetchSources(ctx)
	go p.loop()
	return err
}

// prune removes the tarballs in Dir that no shard points at: an earlier run's, which
// a restart does not take over (it adopts what the cluster has), would otherwise
// pile up. Any of them is rebuilt from Git should Flux still ask for it.
func (p *Publisher) prune() {
	p.pass.Lock()
	defer p.pass.Unlock()
	keep := map[string]bool{}
	for _, st := range p.shards {
		keep[st.file], keep[st.previous] = true, true
	}
	_ = filepath.WalkDir(p.cfg.Dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if rel, err := filepath.Rel(p.cfg.Dir, name); err == nil && !keep[filepath.ToSlash(rel)] {
			p.removeFile(filepath.ToSlash(rel))
		}
		return nil
	})
}

// removeFile removes a tarball and its commit folder once empty.
func (p *Publisher) removeFile(rel string) {
	name := filepath.Join(p.cfg.Dir, filepath.FromSlash(rel))
	if err := os.Remove(name); err == nil {
		_ = os.Remove(filepath.Dir(name)) // fails while not empty
	}
}

// Stop ends the background pass.
func (p *Publisher) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *Publisher) loop() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		// A pass may publish every shard (a bulk import): it is bounded by what that
		// costs, not by the interval; ticks that come meanwhile are dropped.
		ctx, cancel := context.WithTimeout(context.Background(), passTimeout)
		if err := p.cfg.Source.Refresh(ctx); err != nil {
			p.log.Warn("shard publisher: fetching the fleet failed", "err", err)
		}
		changed, err := p.sync(ctx, false)
		if err != nil {
			p.log.Warn("shard publisher: a pass failed; retrying at the next", "err", err)
		}
		p.fetchSources(ctx)
		if len(changed) > 0 && p.cfg.OnChange != nil {
			p.cfg.OnChange(ctx, changed)
		}
		cancel()
	}
}

// Publish brings one shard's artifact up to date with the fleet's head and returns
// its revision: call it after a push that touched the shard. It returns the current
// revision without publishing when the shard's tree did not change. Then it asks
// Flux to fetch the fleet if the push changed the shared chart sources.
func (p *Publisher) Publish(ctx context.Context, shard string) (string, error) {
	rev, moved, err := p.publish(ctx, shard)
	p.fetchSources(ctx)
	if len(moved) > 0 && p.cfg.OnChange != nil {
		p.cfg.OnChange(ctx, moved)
	}
	return rev, err
}

// publish publishes shard, or, when it lost stores to other shards since it was
// published, the whole move in its order (move.go), returning the shards that moved.
// A move publishes many shards in waves and reads what each was published at, so it
// runs alone, as a background pass does.
func (p *Publisher) publish(ctx context.Context, shard string) (string, []string, error) {
	rev, lost, err := p.publishOne(ctx, shard)
	if err != nil || !lost {
		return rev, nil, err
	}
	p.pass.Lock() // no Publish runs meanwhile: p.shards is the move's alone
	defer p.pass.Unlock()
	head, trees, err := p.head(ctx)
	if err != nil {
		return "", nil, err
	}
	shards := p.allShards(trees, nil)
	deps, undecided, err := p.movePlan(ctx, head, trees, shards)
	if err != nil {
		return "", nil, err
	}
	if err := undecided[shard]; err != nil {
		return "", nil, err
	}
	if len(deps) > 0 {
		moved, err := p.moved(ctx, head, trees, without(shards, undecided), deps)
		rev := ""
		if st := p.shards[shard]; st != nil {
			rev = st.revision
		}
		return rev, moved, errors.Join(err, undecidedErr(undecided))
	}
	// A store removed and found nowhere else: a purge, published as any change.
	rev, err = p.publishLocked(ctx, head, shard, trees[shard], nil)
	return rev, nil, err
}

// publishOne publishes shard alone, beside other shards' publishes, unless it lost a
// store since it was published (lost): then it publishes nothing and the caller
// looks for a move.
func (p *Publisher) publishOne(ctx context.Context, shard string) (rev string, lost bool, err error) {
	p.pass.RLock()
	defer p.pass.RUnlock()
	l := p.shardLock(shard)
	l.Lock()
	defer l.Unlock()
	head, trees, err := p.head(ctx)
	if err != nil {
		return "", false, err
	}
	if lost, err := p.loses(ctx, head, shard, trees[shard]); err != nil || lost {
		return "", lost, err
	}
	rev, err = p.publishLocked(ctx, head, shard, trees[shard], nil)
	return rev, false, err
}

// sync compares every shard with what was published. At start (adopt) it also
// reads what the cluster already has, so a restart republishes nothing unchanged.
func (p *Publisher) sync(ctx context.Context, adopt bool) ([]string, error) {
	p.pass.Lock() // no Publish runs meanwhile: p.shards is this pass's alone
	defer p.pass.Unlock()
	head, trees, err := p.head(ctx)
	if err != nil {
		return nil, err
	}
	// Every pass reads what the cluster has (one list): at start to adopt what is
	// already there, later to put back an artifact that is missing or differs (deleted
	// by hand, or a write that did not land), as a controller would.
	existing, err := p.cfg.Cluster.PublishedArtifacts(ctx)
	if err != nil {
		return nil, fmt.Errorf("publish: reading the published artifacts: %w", err)
	}
	p.mu.Lock()
	p.cluster = existing
	p.mu.Unlock()
	// existing adds a shard emptied while this process was not running.
	sorted := p.allShards(trees, existing)
	if adopt {
		// What the cluster already has at the head's content is adopted first: a
		// move then reads the old commits of the other shards only.
		for _, shard := range sorted {
			if a, ok := existing[shard]; ok && p.shards[shard] == nil {
				if _, err := p.publishAt(ctx, head, shard, trees[shard], &a, true); err != nil {
					p.log.Warn("shard publisher: adopting a shard's artifact failed", "shard", shard, "err", err)
				}
			}
		}
	}
	// A move (a new shard count) is carried on from what the cluster and Git hold,
	// whoever published its first shards: a restart in the middle of one, or a start
	// after the push, keeps its order.
	deps, undecided, err := p.movePlan(ctx, head, trees, sorted)
	if err != nil {
		return nil, err
	}
	sorted = without(sorted, undecided)
	if len(deps) > 0 {
		changed, err := p.moved(ctx, head, trees, sorted, deps)
		return changed, errors.Join(err, undecidedErr(undecided))
	}
	var failed, changed []string
	var firstErr error
	for _, shard := range sorted {
		before := p.shards[shard]
		var found *Artifact
		if a, ok := existing[shard]; ok {
			found = &a
		}
		if st := p.shards[shard]; st != nil && st.tree == "" && found == nil {
			// An emptied shard whose objects were removed (`gitops-api reshard` removes
			// the shards a move emptied): nothing to put back.
			delete(p.shards, shard)
		} else if st != nil && (found == nil || found.Digest != st.digest || found.Revision != st.revision) {
			p.log.Warn("shard publisher: the cluster lost a shard's artifact; publishing it again", "shard", shard)
			delete(p.shards, shard)
		}
		if !adopt {
			found = nil // only adopted at start: this process' own state is the reference after
		}
		if _, err := p.publishLocked(ctx, head, shard, trees[shard], found); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			failed = append(failed, shard)
		} else if after := p.shards[shard]; after != nil && (before == nil || after.revision != before.revision) {
			changed = append(changed, shard)
		}
	}
	if len(changed) > 0 {
		p.log.Info("shard publisher: shards up to date", "head", head, "shards", len(sorted), "changed", len(changed))
	}
	if len(failed) > 0 {
		return changed, errors.Join(fmt.Errorf("%d of %d shards not published (%s): %w", len(failed), len(sorted), strings.Join(failed, " "), firstErr),
			undecidedErr(undecided))
	}
	return changed, undecidedErr(undecided)
}

func (p *Publisher) head(ctx context.Context) (string, map[string]string, error) {
	head, err := p.cfg.Source.Head()
	if err != nil {
		return "", nil, fmt.Errorf("publish: fleet head: %w", err)
	}
	trees, err := p.cfg.Source.Subtrees(ctx, head, p.storesDir())
	if err != nil {
		return "", nil, fmt.Errorf("publish: shards at %s: %w", head, err)
	}
	return head, trees, nil
}

// shardLock is the lock serializing shard's publishes.
func (p *Publisher) shardLock(shard string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.shardLocks[shard]
	if l == nil {
		l = &sync.Mutex{}
		p.shardLocks[shard] = l
	}
	return l
}

func (p *Publisher) storesDir() string { return path.Join("stores", p.cfg.FleetCluster) }

// publishLocked publishes shard at head unless its tree is what was published; callers
// hold the shard's lock or the pass's. existing is what the cluster has (at start),
// adopted when it is the same tarball at the same URL. A shard that never held a store
// is not published (its Kustomization reports the artifact as not found); one that
// held stores and is now empty gets an empty tarball, so Flux prunes what it applied.
func (p *Publisher) publishLocked(ctx context.Context, head, shard, tree string, existing *Artifact) (rev string, err error) {
	return p.publishAt(ctx, head, shard, tree, existing, false)
}

// publishAt is publishLocked; with sameOnly it only adopts existing when it is the
// head's tarball, and publishes nothing otherwise (rev "").
func (p *Publisher) publishAt(ctx context.Context, head, shard, tree string, existing *Artifact, sameOnly bool) (rev string, err error) {
	p.mu.Lock()
	st := p.shards[shard]
	p.mu.Unlock()
	if st != nil && st.tree == tree {
		return st.revision, nil
	}
	if st == nil && tree == "" && existing == nil {
		return "", nil
	}
	start := time.Now()
	skipped := false // sameOnly and not the same: no publish to count
	defer func() {
		if !skipped {
			p.cfg.OnPublished(time.Since(start), err)
		}
	}()
	// A shard that is gone archives as an empty tarball.
	var buf bytes.Buffer
	if err := p.cfg.Source.Archive(ctx, head, path.Join(p.storesDir(), shard), &buf); err != nil {
		return "", fmt.Errorf("publish: shard %s: %w", shard, err)
	}
	digest := digestOf(buf.Bytes())
	rel := artifactPath(p.cfg.FleetCluster, shard, head, digest)
	a := Artifact{
		URL: p.cfg.URL + ArtifactsPath + rel, Path: rel, Revision: p.cfg.Branch + "@sha1:" + head,
		Digest: "sha256:" + digest, Size: int64(buf.Len()), LastUpdateTime: time.Now().UTC().Truncate(time.Second),
	}
	adopt := existing != nil && p.adoptable(shard, digest, *existing)
	commit, same := p.sameBytesAt(existing, a.Digest)
	if sameOnly && !adopt && !same {
		skipped = true
		return "", nil
	}
	if adopt {
		// The cluster has this very tarball, built from an older commit with the same
		// shard tree: keep its URL and revision, so Flux has nothing to reconcile.
		a, rel = *existing, existing.Path
	} else if same {
		// The same tarball under a URL this publisher does not serve (an older URL
		// layout, another --artifact-url): move the URL, keep the revision, so that
		// Flux does not apply every shard again for it.
		rel = artifactPath(p.cfg.FleetCluster, shard, commit, digest)
		a.URL, a.Path, a.Revision = p.cfg.URL+ArtifactsPath+rel, rel, existing.Revision
	}
	if err := writeFileAtomic(filepath.Join(p.cfg.Dir, filepath.FromSlash(rel)), buf.Bytes()); err != nil {
		return "", fmt.Errorf("publish: shard %s: %w", shard, err)
	}
	if !adopt {
		if err := p.cfg.Cluster.PublishArtifact(ctx, shard, a); err != nil {
			return "", fmt.Errorf("publish: shard %s: %w", shard, err)
		}
	}
	next := &shardState{tree: tree, at: head, revision: a.Revision, digest: a.Digest, file: rel}
	if st != nil && st.file != rel {
		next.previous = st.file
		if st.previous != "" && st.previous != rel {
			p.removeFile(st.previous)
		}
	}
	p.mu.Lock()
	p.shards[shard] = next
	p.mu.Unlock()
	p.cfg.OnPublish(shard, a.Revision)
	return a.Revision, nil
}

func writeFileAtomic(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(name); err == nil {
		return nil // content-addressed: same name, same bytes
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), name)
}
