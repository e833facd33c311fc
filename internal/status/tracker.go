package status

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Status and Step are the domain's: the one shape the API shows a store's status in.
type (
	Status = store.Status
	Step   = store.Step
)

// Options configure a Tracker.
type Options struct {
	Log *slog.Logger
	// Buffer is how many recent events are kept for Last-Event-ID resumption.
	Buffer int
	// ShardRevisions is how many published revisions are remembered per shard (256
	// by default); an older revision counts as never published.
	ShardRevisions int
	// Now is the clock (tests).
	Now func() time.Time
	// OnReady is told, for every change that brings an active store to ready, how
	// long after its request it got there (internal/metrics' histogram). It runs
	// under the Tracker's lock and must not call back.
	OnReady func(d time.Duration)
	// OnConnected is told of every change of the cluster connection (the watcher's
	// SetConnected), for the connection gauge and the reconnect count. It runs under
	// the Tracker's lock and must not call back.
	OnConnected func(ok bool)
}

// Tracker holds every store's status and the cluster observations behind it. It is
// safe for concurrent use; observations come from internal/kube's informer handlers,
// desired states from the store lifecycle after each commit, publishes from the
// shard publisher.
type Tracker struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// conn is each cluster's connection (the key of ClusterView; "" for a
	// Tracker of one cluster).
	conn       map[string]bool
	stores     map[string]*entry
	shards     map[shardKey]*shard
	releases   map[string]*Release
	namespaces map[string]bool
	// pods holds, per store, only its worst container in trouble (SetPods).
	pods       map[string]Container
	hub        hub
	recomputes uint64 // stores recomputed so far (tests check the fan-out)

	closeOnce sync.Once
}

// shardKey names a shard in one cluster: two clusters' shards of the same name are
// two ExternalArtifacts, published and applied apart.
type shardKey struct{ cluster, name string }

// shard is what the Tracker knows of one shard's artifact and Kustomization.
//
// Whether an observed revision includes a store's commit is decided by order, not
// ancestry: the publisher builds a shard only from the newest fleet head and
// publishes it in order, so the n-th publish includes every commit an earlier
// publish included and every commit pushed before it was built. A store expects
// the publish that carried its change (or, when none did, the next one); the
// artifact or the Kustomization has it once it shows that publish or a later one.
type shard struct {
	name string
	seq  uint64            // publishes the Tracker was told of
	revs map[string]uint64 // published revision (commit) → its seq; bounded
	ring []string          // revs' keys in publish order, for the bound
	next int               // ring write position once full

	// Observed revisions and the seq they had when observed (or when published
	// later: the watch may deliver before the publisher reports).
	source, applied         string
	sourceSeq, appliedSeq   uint64
	sourceReady, applyReady *Condition

	stores map[string]*entry
}

func (s *shard) seqOf(revision string) uint64 {
	if revision == "" {
		return 0
	}
	return s.revs[revisionCommit(revision)]
}

type entry struct {
	name       string
	desired    Desired
	shard      *shard // the shard desired.Shard names, once desired is set
	expect     uint64 // the shard publish that includes desired.Commit
	requested  bool   // a change is being committed; no desired state yet
	commitTime time.Time
	// requestedAt is when the change being committed was requested; readyFrom is
	// that time once the change landed, until the store reports ready (OnReady).
	requestedAt, readyFrom time.Time
	result                 Result
	times                  map[string]time.Time
	status                 Status
	// review is the pull request the store waits on; merged is set from its merge
	// until the merge commit reaches the Tracker (Committed or Load).
	review *store.Review
	merged bool
}

// New returns a Tracker for a configured cluster; it reports every store unknown
// until SetConnected(true).
func New(opts Options) *Tracker {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnReady == nil {
		opts.OnReady = func(time.Duration) {}
	}
	if opts.OnConnected == nil {
		opts.OnConnected = func(bool) {}
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 10000
	}
	if opts.ShardRevisions <= 0 {
		opts.ShardRevisions = 256
	}
	t := &Tracker{
		opts: opts, log: opts.Log,
		conn: map[string]bool{}, stores: map[string]*entry{}, shards: map[shardKey]*shard{},
		releases: map[string]*Release{}, namespaces: map[string]bool{},
		pods: map[string]Container{},
	}
	t.hub.init(opts.Buffer, opts.Now())
	return t
}

// Close ends every subscription.
func (t *Tracker) Close() {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.hub.closeAll()
		t.mu.Unlock()
	})
}

// Connected reports whether the cluster answers.
func (t *Tracker) Connected() bool { return t.View("").Connected() }

// SetConnected records whether the cluster answers; every store is recomputed (all
// unknown while it does not).
func (t *Tracker) SetConnected(ok bool) { t.View("").SetConnected(ok) }

// Published records that the shard publisher wrote revision ("main@sha1:<commit>")
// to the shard's ExternalArtifact. The publisher calls it in publish order, before
// Committed for the stores the publish carries; a revision already known changes
// nothing.
func (t *Tracker) Published(shardName, revision string) { t.View("").Published(shardName, revision) }

func (t *Tracker) published(cluster, shardName, revision string) {
	key := revisionCommit(revision)
	if key == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sh := t.shard(cluster, shardName)
	if _, ok := sh.revs[key]; ok {
		return
	}
	sh.seq++
	if len(sh.ring) < t.opts.ShardRevisions {
		sh.ring = append(sh.ring, key)
	} else {
		delete(sh.revs, sh.ring[sh.next])
		sh.ring[sh.next] = key
		sh.next = (sh.next + 1) % len(sh.ring)
	}
	sh.revs[key] = sh.seq
	// The watch may have shown the revision before the publisher reported it.
	changed := false
	if sh.source != "" && revisionCommit(sh.source) == key {
		sh.sourceSeq, changed = sh.seq, true
	}
	if sh.applied != "" && revisionCommit(sh.applied) == key {
		sh.appliedSeq, changed = sh.seq, true
	}
	if changed {
		t.recomputeShard(sh)
	}
}

// CaughtUp tells the Tracker that a shard publisher which has just taken over made
// every shard's artifact current with a fleet head holding every commit made before
// since (it fetched first, then published or adopted each shard). A store committed
// before then that still waits for its shard's next publish now waits for the
// shard's latest one instead: the next may never come. That happens when the old
// leader published the commit just before it died, and this replica saw the
// artifact while standing by before it knew the commit (its own write answered
// later, or the fetch brought it later); the new leader then finds the artifact
// current and publishes nothing. It returns how many stores it moved on.
func (t *Tracker) CaughtUp(since time.Time) int { return t.View("").CaughtUp(since) }

func (t *Tracker) caughtUp(cluster string, since time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, e := range t.stores {
		if e.shard == nil || e.desired.Cluster != cluster || e.expect <= e.shard.seq || e.commitTime.IsZero() || !e.commitTime.Before(since) {
			continue
		}
		e.expect = max(1, e.shard.seq)
		t.recompute(e)
		n++
	}
	return n
}

// Load sets a store's desired state at start-up, after the publisher's initial sync
// reported (Published) the shards it adopted or built: those include every commit
// in the fleet, so the store waits for its shard's latest publish (or the first,
// if none was reported).
//
// A store the Tracker already follows on another shard of the same cluster was
// moved by a reshard (Service.Resync after the fleet's count changed): the new
// shard's latest publish may predate the move (a shard both counts have), so the
// store waits for the publish of d.Revision (the head that has the move) when it
// was reported, else for the new shard's next one (moved).
func (t *Tracker) Load(name string, d Desired) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(name)
	moved := e.shard != nil && e.desired.State != "" && e.desired.Cluster == d.Cluster && e.desired.Shard != d.Shard
	e.desired, e.requested = d, false
	e.commitTime = time.Time{}
	e.merged = false
	sh := t.index(e)
	if moved {
		e.waitMoved(sh, d.Revision)
	} else {
		e.expect = max(1, sh.seq)
	}
	// d.Revision is only where a move may have been published, not a publish that
	// carried this state (Carried's).
	e.desired.Revision = ""
	t.recompute(e)
}

// Rekey files every store under its shard at the fleet's new shard count (shardOf)
// once the count changed (a reshard reached this replica's head, revision), so its
// status follows its new shard's artifact and Kustomization rather than the old
// shard's. Service.Resync moves the stores whose folders the reshard moved as it
// reads them again; Rekey moves the rest (one not read again: its read failed).
// A moved store waits for its new shard's publish of revision, or the next one. It
// returns how many stores it moved. shardOf is called without the Tracker's lock
// (it may read the fleet).
func (t *Tracker) Rekey(revision string, shardOf func(name string) string) int {
	t.mu.Lock()
	names := make([]string, 0, len(t.stores))
	for name, e := range t.stores {
		if e.shard != nil && e.desired.State != "" {
			names = append(names, name)
		}
	}
	t.mu.Unlock()
	want := make(map[string]string, len(names))
	for _, name := range names {
		want[name] = shardOf(name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for name, shard := range want {
		e, ok := t.stores[name]
		if !ok || e.shard == nil || e.desired.State == "" || e.desired.Shard == shard {
			continue
		}
		e.desired.Shard = shard
		e.desired.Revision = ""
		e.waitMoved(t.index(e), revision)
		t.recompute(e)
		n++
	}
	return n
}

// waitMoved makes a store moved to shard sh wait for sh's publish of revision, when
// the publisher reported it, else for sh's next publish: the publisher builds that
// from the newest head, which has the move.
func (e *entry) waitMoved(sh *shard, revision string) {
	if s := sh.seqOf(revision); s > 0 {
		e.expect = s
	} else {
		e.expect = sh.seq + 1
	}
}

// Requested marks a change to a store as received; the phase is requested until
// Committed or Forget.
func (t *Tracker) Requested(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.stores[name]
	if ok && e.desired.State != "" {
		e.requestedAt = t.opts.Now()
		return // an existing store keeps its phase until the change is committed
	}
	e = t.entry(name)
	e.requestedAt = t.opts.Now()
	e.requested = true
	e.result = Result{Phase: store.PhaseRequested, Message: "the change is being committed"}
	t.publish(e)
}

// Reviewing records where the pull request r of a change to the store is: open
// (awaiting-approval: the store shows it whatever its own phase), merged (the
// merge commit follows through Committed or Load) or closed without merge
// (rejected: the streams see it once, then a proposed create is forgotten and an
// existing store is back in its own phase).
func (t *Tracker) Reviewing(name string, r store.Review, state store.RequestState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, known := t.stores[name]
	switch state {
	case store.RequestAwaitingApproval:
		if !known {
			e = t.entry(name)
		}
		e.review, e.requested = &r, e.desired.State == ""
		t.publish(e)
	case store.RequestCommitted:
		if !known {
			return
		}
		e.review, e.merged = nil, true
		t.publish(e)
	case store.RequestRejected:
		if !known {
			return
		}
		e.review = nil
		rejected := e.status
		rejected.Phase, rejected.Reason = store.PhaseRejected, "Rejected"
		rejected.Message = "the pull request was closed without merge; nothing of the change reached the fleet's branch"
		rejected.Review = &r
		t.hub.publish(Event{Store: name, Kind: KindStatus, Status: &rejected})
		if e.desired.State == "" {
			delete(t.stores, name)
			return
		}
		t.publish(e)
	}
}

// Forget drops a store that was only requested (its create failed).
func (t *Tracker) Forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.stores[name]; ok && e.requested && e.desired.State == "" {
		delete(t.stores, name)
	}
}

// Committed records that a change to the store landed in the fleet repository.
// The store waits for the publish of d.Revision; when none was reported (the
// publish failed, d.Revision is empty) it waits for the shard's next publish,
// which is built from a newer fleet head and so includes the commit.
func (t *Tracker) Committed(name string, d Desired) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(name)
	if e.desired.Commit != d.Commit {
		e.times = map[string]time.Time{}
		// A change that did not come through this process (a restart, an outside
		// push) has no request time: its commit stands in.
		from := e.requestedAt
		if from.IsZero() {
			from = t.opts.Now()
		}
		e.readyFrom = time.Time{}
		if d.State == store.StateActive {
			e.readyFrom = from
		}
	}
	e.requestedAt = time.Time{}
	e.desired, e.requested = d, false
	e.merged = false
	e.commitTime = t.opts.Now()
	sh := t.index(e)
	if s := sh.seqOf(d.Revision); s > 0 {
		e.expect = s
	} else {
		e.expect = sh.seq + 1
	}
	t.recompute(e)
}

// Carried records that revision, published for the store's shard, carries its
// commit: the store waits for that publish rather than the shard's next, which may
// already be under way from an older head. A store committed again since is left
// alone (its newer commit's publish carries it), as is a revision the Tracker was
// not told of (the next publish then stands in).
func (t *Tracker) Carried(name, commit, revision string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.stores[name]
	if !ok || e.shard == nil || e.desired.Commit != commit {
		return
	}
	s := e.shard.seqOf(revision)
	if s == 0 {
		return
	}
	e.desired.Revision, e.expect = revision, s
	t.recompute(e)
}

// applied reports whether the shard's Kustomization has applied the publish that
// carries the store's desired commit (Cluster.Applied): the purger acts on the same
// rule the phase shows.
func (e *entry) applied() bool { return e.shard != nil && e.shard.appliedSeq >= e.expect }

func (t *Tracker) entry(name string) *entry {
	e, ok := t.stores[name]
	if !ok {
		e = &entry{name: name, times: map[string]time.Time{}}
		t.stores[name] = e
	}
	return e
}

func (t *Tracker) shard(cluster, name string) *shard {
	k := shardKey{cluster, name}
	sh, ok := t.shards[k]
	if !ok {
		sh = &shard{name: name, revs: map[string]uint64{}, stores: map[string]*entry{}}
		t.shards[k] = sh
	}
	return sh
}

// index files e under its desired shard, so a shard's observation recomputes only
// that shard's stores.
func (t *Tracker) index(e *entry) *shard {
	sh := t.shard(e.desired.Cluster, e.desired.Shard)
	if e.shard != nil && e.shard != sh {
		delete(e.shard.stores, e.name)
	}
	e.shard = sh
	sh.stores[e.name] = e
	return sh
}

// SetShardSource records ExternalArtifact stores-<shard>: its artifact revision
// ("main@sha1:<commit>") and Ready condition. A revision the publisher has not
// reported (yet) tells nothing about order and leaves the shard's progress as it
// was; Published picks it up.
func (t *Tracker) SetShardSource(shardName, revision string, ready *Condition) {
	t.View("").SetShardSource(shardName, revision, ready)
}

func (t *Tracker) setShardSource(cluster, shardName, revision string, ready *Condition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sh := t.shard(cluster, shardName)
	if sh.source == revision && sameCondition(sh.sourceReady, ready) {
		return
	}
	sh.source, sh.sourceReady = revision, ready
	if s := sh.seqOf(revision); s > 0 {
		sh.sourceSeq = s
	}
	t.recomputeShard(sh)
}

// SetShardApply records Kustomization stores-<shard>: its lastAppliedRevision and
// Ready condition (Unknown while the controller has not observed the generation).
func (t *Tracker) SetShardApply(shardName, lastApplied string, ready *Condition) {
	t.View("").SetShardApply(shardName, lastApplied, ready)
}

func (t *Tracker) setShardApply(cluster, shardName, lastApplied string, ready *Condition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sh := t.shard(cluster, shardName)
	if sh.applied == lastApplied && sameCondition(sh.applyReady, ready) {
		return
	}
	sh.applied, sh.applyReady = lastApplied, ready
	if s := sh.seqOf(lastApplied); s > 0 {
		sh.appliedSeq = s
	}
	t.recomputeShard(sh)
}

func sameCondition(a, b *Condition) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// SetRelease records a store's HelmRelease; nil means it is gone.
func (t *Tracker) SetRelease(name string, r *Release) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r == nil {
		delete(t.releases, name)
	} else {
		t.releases[name] = r
	}
	if e, ok := t.stores[name]; ok {
		t.recompute(e)
	}
}

// SetNamespace records whether a store's namespace exists.
func (t *Tracker) SetNamespace(name string, exists bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if exists {
		t.namespaces[name] = true
	} else {
		delete(t.namespaces, name)
	}
	if e, ok := t.stores[name]; ok {
		t.recompute(e)
	}
}

// KubeEvent passes a Kubernetes Event from a store's namespace to its subscribers.
func (t *Tracker) KubeEvent(name string, ev KubeEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.stores[name]; !ok {
		return
	}
	t.hub.publish(Event{Store: name, Kind: KindEvent, Kube: &ev})
}

// Get returns a store's status; ok is false for a store the tracker does not know.
func (t *Tracker) Get(name string) (Status, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.stores[name]
	if !ok {
		return Status{}, false
	}
	return e.status, true
}

// ShardOf is the shard whose artifact and Kustomization the store's status follows
// ("" for a store the Tracker does not know or has no desired state for): what a
// reshard must move (Rekey).
func (t *Tracker) ShardOf(name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.stores[name]; ok && e.shard != nil {
		return e.shard.name
	}
	return ""
}

// PhaseCounts returns how many stores are in each phase, for the stores-by-phase
// gauge: counted at each scrape from what the Tracker holds anyway.
func (t *Tracker) PhaseCounts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for _, e := range t.stores {
		if e.status.Phase != "" {
			out[string(e.status.Phase)]++
		}
	}
	return out
}

// Phase returns a store's phase ("" if unknown to the tracker), for list filters.
func (t *Tracker) Phase(name string) store.Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.stores[name]; ok {
		return e.status.Phase
	}
	return ""
}

func (t *Tracker) recomputeShard(sh *shard) {
	for _, e := range sh.stores {
		t.recompute(e)
	}
}

func (t *Tracker) recomputeAll() {
	for _, e := range t.stores {
		t.recompute(e)
	}
}

func (t *Tracker) recompute(e *entry) {
	t.recomputes++
	if e.desired.State == "" {
		if !e.requested {
			return
		}
		t.publishIfChanged(e, e.result)
		return
	}
	sh := e.shard
	c := Cluster{
		Connected: t.conn[e.desired.Cluster],
		// An applied revision was fetched, whatever the artifact shows meanwhile.
		SourceFetched:   max(sh.sourceSeq, sh.appliedSeq) >= e.expect,
		Applied:         e.applied(),
		Source:          sh.sourceReady,
		Apply:           sh.applyReady,
		Release:         t.releases[e.name],
		NamespaceExists: t.namespaces[e.name],
	}
	if p, ok := t.pods[e.name]; ok {
		c.Pods = &p
	}
	t.publishIfChanged(e, Compute(e.desired, c))
}

func (t *Tracker) publishIfChanged(e *entry, r Result) {
	now := t.opts.Now()
	if len(e.times) == 0 && !e.commitTime.IsZero() {
		e.times[StepCommitted] = e.commitTime
	}
	for i := 0; i < r.Done && i < len(r.Steps); i++ {
		if _, ok := e.times[r.Steps[i]]; !ok {
			e.times[r.Steps[i]] = now
		}
	}
	old := e.result
	if e.status.Store != "" && old.Phase == r.Phase && old.Done == r.Done && old.Reason == r.Reason &&
		old.Message == r.Message && old.Generation == r.Generation && old.Drifted == r.Drifted &&
		e.status.ClusterConnected == t.conn[e.desired.Cluster] && e.status.Commit == e.desired.Commit {
		return
	}
	e.result = r
	t.publish(e)
}

func (t *Tracker) publish(e *entry) {
	r := e.result
	now := t.opts.Now().UTC()
	s := Status{
		Store: e.name, Phase: r.Phase, Reason: r.Reason, Message: r.Message, Percent: r.Percent(),
		CurrentStep: r.Current(), Drifted: r.Drifted, DriftMessage: r.DriftMessage, Generation: r.Generation,
		Commit: e.desired.Commit, ClusterConnected: t.conn[e.desired.Cluster], UpdatedAt: &now,
		Steps: make([]Step, 0, len(r.Steps)),
	}
	for i, name := range r.Steps {
		st := Step{Name: name, State: "pending"}
		switch {
		case i < r.Done:
			st.State = "done"
		case i == r.Done && r.Phase == store.PhaseFailed:
			st.State = "failed"
		case i == r.Done && r.Phase != store.PhaseUnknown:
			st.State = "current"
		}
		if ts, ok := e.times[name]; ok && i < r.Done {
			ts := ts.UTC()
			st.Time = &ts
		}
		if name == StepCommitted {
			st.Commit = e.desired.Commit
		}
		s.Steps = append(s.Steps, st)
	}
	switch {
	case e.review != nil:
		s.AwaitReview(*e.review)
	case e.merged:
		s.Phase, s.Reason = store.PhaseMerged, "Merged"
		s.Message = "the pull request was merged; waiting for the fleet's branch to be read"
	}
	e.status = s
	if s.Phase == store.PhaseReady && !e.readyFrom.IsZero() {
		t.opts.OnReady(now.Sub(e.readyFrom))
		e.readyFrom = time.Time{}
	}
	t.hub.publish(Event{Store: e.name, Kind: KindStatus, Status: &s})
}

// revisionCommit is the commit of a Flux revision such as "main@sha1:<sha>".
func revisionCommit(rev string) string {
	if i := strings.LastIndexByte(rev, ':'); i >= 0 {
		return rev[i+1:]
	}
	return rev
}
