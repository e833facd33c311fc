package status

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Ancestry tells which commits a revision includes (internal/gitrepo's Repo).
type Ancestry interface {
	NewReachable(ctx context.Context, tip string, known func(sha string) bool) ([]string, error)
}

// Requester asks Flux to reconcile now rather than at its interval (internal/kube).
type Requester interface {
	// RequestSourceReconcile makes the fleet source fetch (annotation or Receiver).
	RequestSourceReconcile(ctx context.Context) error
	// RequestApplyReconcile makes the stores' Kustomization apply the fetched artifact.
	RequestApplyReconcile(ctx context.Context) error
}

// Status is where one store is, as the API shows it.
type Status struct {
	Store            string      `json:"store"`
	Phase            store.Phase `json:"phase"`
	Reason           string      `json:"reason,omitempty"`
	Message          string      `json:"message,omitempty"`
	Percent          int         `json:"percent"`
	CurrentStep      string      `json:"currentStep,omitempty"`
	Steps            []Step      `json:"steps"`
	Drifted          bool        `json:"drifted,omitempty"`
	DriftMessage     string      `json:"driftMessage,omitempty"`
	Generation       int64       `json:"generation,omitempty"`
	Commit           string      `json:"commit,omitempty"`
	ClusterConnected bool        `json:"clusterConnected"`
	UpdatedAt        time.Time   `json:"updatedAt"`
}

// Step is one step of a store's way and when it completed.
type Step struct {
	Name  string     `json:"name"`
	State string     `json:"state"` // done | current | failed | pending
	Time  *time.Time `json:"time,omitempty"`
}

// Options configure a Tracker.
type Options struct {
	Ancestry  Ancestry
	Requester Requester
	Log       *slog.Logger
	// Buffer is how many recent events are kept for Last-Event-ID resumption.
	Buffer int
	// Now is the clock (tests).
	Now func() time.Time
}

// Tracker holds every store's status and the cluster observations behind it. It is
// safe for concurrent use; observations come from internal/kube's informer handlers,
// desired states from the store lifecycle after each commit.
type Tracker struct {
	opts Options
	log  *slog.Logger

	mu         sync.Mutex
	connected  bool
	stores     map[string]*entry
	fetched    reach
	applied    reach
	source     *Condition
	apply      *Condition
	releases   map[string]*Release
	namespaces map[string]bool
	pendingFor string // a commit whose apply must be requested once fetched
	hub        hub

	kickSource, kickApply chan struct{}
	stop                  chan struct{}
	stopOnce              sync.Once
}

type entry struct {
	name       string
	desired    Desired
	requested  bool // a change is being committed; no desired state yet
	commitTime time.Time
	result     Result
	times      map[string]time.Time
	status     Status
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
	if opts.Buffer <= 0 {
		opts.Buffer = 10000
	}
	t := &Tracker{
		opts: opts, log: opts.Log,
		stores: map[string]*entry{}, releases: map[string]*Release{}, namespaces: map[string]bool{},
		fetched: newReach(), applied: newReach(),
		kickSource: make(chan struct{}, 1), kickApply: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	t.hub.init(opts.Buffer, opts.Now())
	if opts.Requester != nil {
		t.UseRequester(opts.Requester)
	}
	return t
}

// UseRequester sets who performs reconcile requests (the kube Watcher, which itself
// needs the Tracker first). Call it once, before any Committed.
func (t *Tracker) UseRequester(r Requester) {
	t.mu.Lock()
	t.opts.Requester = r
	t.mu.Unlock()
	go t.requestLoop(t.kickSource, r.RequestSourceReconcile, "source")
	go t.requestLoop(t.kickApply, r.RequestApplyReconcile, "kustomization")
}

// Close stops the reconcile-request goroutines and ends every subscription.
func (t *Tracker) Close() {
	t.stopOnce.Do(func() {
		close(t.stop)
		t.mu.Lock()
		t.hub.closeAll()
		t.mu.Unlock()
	})
}

// requestLoop performs reconcile requests one at a time; requests made meanwhile
// coalesce into the next one (one annotation covers every commit pushed before it).
func (t *Tracker) requestLoop(kick chan struct{}, do func(context.Context) error, what string) {
	for {
		select {
		case <-t.stop:
			return
		case <-kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := do(ctx); err != nil {
			t.log.Warn("reconcile request failed; Flux will still reconcile at its interval", "object", what, "err", err)
		}
		cancel()
	}
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Connected reports whether the cluster answers.
func (t *Tracker) Connected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.connected
}

// SetConnected records whether the cluster answers; every store is recomputed (all
// unknown while it does not).
func (t *Tracker) SetConnected(ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.connected == ok {
		return
	}
	t.connected = ok
	t.recomputeAll()
}

// Load sets a store's desired state without requesting a reconcile (start-up).
func (t *Tracker) Load(name string, d Desired) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entry(name)
	e.desired, e.requested = d, false
	e.commitTime = time.Time{}
	t.recompute(e)
}

// Requested marks a change to a store as received; the phase is requested until
// Committed or Forget.
func (t *Tracker) Requested(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.stores[name]
	if ok && e.desired.Lifecycle != "" {
		return // an existing store keeps its phase until the change is committed
	}
	e = t.entry(name)
	e.requested = true
	e.result = Result{Phase: store.PhaseRequested, Message: "the change is being committed"}
	t.publish(e)
}

// Forget drops a store that was only requested (its create failed).
func (t *Tracker) Forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.stores[name]; ok && e.requested && e.desired.Lifecycle == "" {
		delete(t.stores, name)
	}
}

// Committed records that a change to the store landed in the fleet repository and
// asks Flux to reconcile now.
func (t *Tracker) Committed(name string, d Desired) {
	t.mu.Lock()
	e := t.entry(name)
	if e.desired.Commit != d.Commit {
		e.times = map[string]time.Time{}
	}
	e.desired, e.requested = d, false
	e.commitTime = t.opts.Now()
	t.recompute(e)
	hasRequester := t.opts.Requester != nil
	fetched := t.fetched.has(d.Commit)
	if !fetched {
		t.pendingFor = d.Commit
	}
	t.mu.Unlock()
	if !hasRequester {
		return
	}
	if fetched {
		// The source got the commit on its own (its interval, or a later push).
		kick(t.kickApply)
		return
	}
	kick(t.kickSource)
}

func (t *Tracker) entry(name string) *entry {
	e, ok := t.stores[name]
	if !ok {
		e = &entry{name: name, times: map[string]time.Time{}}
		t.stores[name] = e
	}
	return e
}

// SetSource records the fleet source's artifact revision ("main@sha1:<sha>") and
// Ready condition.
func (t *Tracker) SetSource(revision string, ready *Condition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.source = ready
	if t.fetched.advance(t.opts.Ancestry, revisionCommit(revision), t.log) || ready != nil {
		if t.pendingFor != "" && t.fetched.has(t.pendingFor) && t.opts.Requester != nil {
			t.pendingFor = ""
			kick(t.kickApply)
		}
		t.recomputeAll()
	}
}

// SetApply records the stores Kustomization's lastAppliedRevision and Ready condition.
func (t *Tracker) SetApply(lastApplied string, ready *Condition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.apply = ready
	t.applied.advance(t.opts.Ancestry, revisionCommit(lastApplied), t.log)
	t.recomputeAll()
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

// Phase returns a store's phase ("" if unknown to the tracker), for list filters.
func (t *Tracker) Phase(name string) store.Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.stores[name]; ok {
		return e.status.Phase
	}
	return ""
}

func (t *Tracker) recomputeAll() {
	for _, e := range t.stores {
		t.recompute(e)
	}
}

func (t *Tracker) recompute(e *entry) {
	if e.desired.Lifecycle == "" {
		if !e.requested {
			return
		}
		t.publishIfChanged(e, e.result)
		return
	}
	c := Cluster{
		Connected:       t.connected,
		SourceFetched:   t.fetched.has(e.desired.Commit),
		Applied:         t.applied.has(e.desired.Commit),
		Source:          t.source,
		Apply:           t.apply,
		Release:         t.releases[e.name],
		NamespaceExists: t.namespaces[e.name],
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
		e.status.ClusterConnected == t.connected && e.status.Commit == e.desired.Commit {
		return
	}
	e.result = r
	t.publish(e)
}

func (t *Tracker) publish(e *entry) {
	r := e.result
	s := Status{
		Store: e.name, Phase: r.Phase, Reason: r.Reason, Message: r.Message, Percent: r.Percent(),
		CurrentStep: r.Current(), Drifted: r.Drifted, DriftMessage: r.DriftMessage, Generation: r.Generation,
		Commit: e.desired.Commit, ClusterConnected: t.connected, UpdatedAt: t.opts.Now().UTC(),
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
		s.Steps = append(s.Steps, st)
	}
	e.status = s
	t.hub.publish(Event{Store: e.name, Kind: KindStatus, Status: &s})
}

// revisionCommit is the commit of a Flux revision such as "main@sha1:<sha>".
func revisionCommit(rev string) string {
	if i := strings.LastIndexByte(rev, ':'); i >= 0 {
		return rev[i+1:]
	}
	return rev
}

// reach is the set of commits a Flux revision includes, grown as the revision
// moves on.
type reach struct {
	tip string
	set map[string]struct{}
}

func newReach() reach { return reach{set: map[string]struct{}{}} }

func (r *reach) has(commit string) bool {
	if commit == "" {
		return false
	}
	_, ok := r.set[commit]
	return ok
}

// advance moves the revision to tip; it reports whether it changed.
func (r *reach) advance(a Ancestry, tip string, log *slog.Logger) bool {
	if tip == "" || tip == r.tip {
		return false
	}
	r.tip = tip
	if a == nil {
		r.set[tip] = struct{}{}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	commits, err := a.NewReachable(ctx, tip, r.has)
	if err != nil {
		log.Warn("cannot tell which commits a Flux revision includes", "revision", tip, "err", err)
		r.set[tip] = struct{}{}
		return true
	}
	for _, c := range commits {
		r.set[c] = struct{}{}
	}
	return true
}
