package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/storefleet/storefleet/internal/store"
)

// Config configures a Service.
type Config struct {
	Repo       Repo
	Renderer   Renderer
	BaseDomain string // default store domains are <name>.<BaseDomain>
	Cluster    string // default cluster for new stores
	Log        *slog.Logger
	// MaxTracked bounds the request table; older requests are still recorded in
	// their commit's Request-Id trailer.
	MaxTracked int
	// RequestLog, if set, is a file where every decided request is appended (one
	// JSON line) and read back on start, so GET /api/v1/requests/{id} answers after
	// a restart too. It is a lookup aid, not the durability mechanism: a change is
	// durable because it is pushed before the 202.
	RequestLog string
}

// Service is the store lifecycle. It is safe for concurrent use.
type Service struct {
	repo       Repo
	render     Renderer
	baseDomain string
	cluster    string
	log        *slog.Logger
	maxTracked int

	mu       sync.Mutex
	index    map[string]*indexed // by store name; names are unique across clusters
	pending  map[string]bool     // names with a create in flight
	locks    map[string]*nameLock
	requests map[string]*request
	order    []string // request ids, oldest first, for eviction

	logMu sync.Mutex
	logF  *os.File

	stopWarm func()
	warmDone chan struct{}
}

type indexed struct {
	store  store.Store
	state  State
	commit Commit // zero until known (filled from history on first Get)
	// loaded is false while only the folder's name is known (from the tree walk at
	// start); the spec is read on first use or by the background warm-up.
	loaded bool
	dir    string
}

type nameLock struct {
	mu   sync.Mutex
	refs int
}

type request struct {
	fingerprint string
	done        chan struct{}
	outcome     Outcome
	err         error
}

// Outcome is what happened to one request.
type Outcome struct {
	RequestID string  `json:"requestId"`
	Store     string  `json:"store"`
	Action    Action  `json:"action"`
	State     string  `json:"state"` // committed | failed
	Commit    *Commit `json:"commit,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	Phase     string  `json:"phase,omitempty"`
	DryRun    bool    `json:"dryRun,omitempty"`
	Changes   []Diff  `json:"changes,omitempty"`
	// ErrCode is the domain error code of a failed request (store.EINVALID, …), so a
	// retry after a restart gets the same answer.
	ErrCode string `json:"errorCode,omitempty"`
}

// Diff is one file a change adds, modifies or deletes.
type Diff struct {
	Path    string `json:"path"`
	Op      string `json:"op"` // add | modify | delete
	Content string `json:"content,omitempty"`
	Diff    string `json:"diff"`
}

// Meta describes who asks and under which request id.
type Meta struct {
	Actor     string
	RequestID string
	// ClientKey is true when RequestID came from the client's Idempotency-Key: only
	// then is Git searched for an earlier change with the same id.
	ClientKey bool
	// Fingerprint identifies the request's content; the same key with another
	// content is refused rather than answered with the first outcome.
	Fingerprint string
	DryRun      bool
}

// New returns a Service and loads the store index from the repository's HEAD.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Cluster == "" {
		cfg.Cluster = store.DefaultCluster
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 100_000
	}
	s := &Service{
		repo: cfg.Repo, render: cfg.Renderer, baseDomain: cfg.BaseDomain, cluster: cfg.Cluster,
		log: cfg.Log, maxTracked: cfg.MaxTracked,
		index: map[string]*indexed{}, pending: map[string]bool{}, locks: map[string]*nameLock{},
		requests: map[string]*request{},
	}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.stopWarm = cancel
	s.warmDone = make(chan struct{})
	go func() {
		defer close(s.warmDone)
		s.warm(wctx)
	}()
	if cfg.RequestLog != "" {
		if err := s.openRequestLog(cfg.RequestLog); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// WaitLoaded waits until every store's spec has been read (for tests and benchmarks).
func (s *Service) WaitLoaded() { <-s.warmDone }

// Close stops the warm-up and closes the request log.
func (s *Service) Close() error {
	s.stopWarm()
	<-s.warmDone
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.logF == nil {
		return nil
	}
	err := s.logF.Close()
	s.logF = nil
	return err
}

type logLine struct {
	Fingerprint string `json:"fp,omitempty"`
	Outcome
}

func (s *Service) openRequestLog(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		lines := bytes.Split(b, []byte("\n"))
		if len(lines) > s.maxTracked {
			lines = lines[len(lines)-s.maxTracked:]
		}
		for _, ln := range lines {
			var l logLine
			// A line cut short by a crash is skipped; the change it describes is in Git.
			if len(ln) == 0 || json.Unmarshal(ln, &l) != nil || l.RequestID == "" {
				continue
			}
			r := &request{fingerprint: l.Fingerprint, done: make(chan struct{}), outcome: l.Outcome}
			if l.State == "failed" {
				r.err = &store.Error{Code: l.ErrCode, Message: l.Reason}
			}
			close(r.done)
			if _, ok := s.requests[l.RequestID]; !ok {
				s.order = append(s.order, l.RequestID)
			}
			s.requests[l.RequestID] = r
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// A line cut short by a crash must not swallow the next one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			_, _ = f.Write([]byte{'\n'})
		}
	}
	s.logF = f
	return nil
}

func (s *Service) logRequest(fp string, out Outcome) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.logF == nil {
		return
	}
	b, err := json.Marshal(logLine{Fingerprint: fp, Outcome: out})
	if err != nil {
		return
	}
	if _, err := s.logF.Write(append(b, '\n')); err != nil {
		s.log.Warn("request log write failed", "err", err)
	}
}

// Reload rebuilds the store index from the repository's HEAD. Only the folder names
// are read here (a tree walk: fast at any fleet size, so the API is up at once);
// each store's spec is read on first use, and a background warm-up reads the rest
// so that filtered listing does not have to.
func (s *Service) Reload(ctx context.Context) error {
	dirs, err := s.repo.ListDirs(ctx)
	if err != nil {
		return fmt.Errorf("listing stores: %w", err)
	}
	idx := make(map[string]*indexed, len(dirs))
	for _, d := range dirs {
		// stores/<cluster>/<shard>/<name>
		parts := strings.Split(d, "/")
		if len(parts) != 4 {
			continue
		}
		idx[parts[3]] = &indexed{store: store.Store{Name: parts[3], Cluster: parts[1]}, dir: d}
	}
	s.mu.Lock()
	s.index = idx
	s.mu.Unlock()
	return nil
}

// Resync re-reads which stores are in the folder prefix (a shard,
// stores/<cluster>/<shard>) at the fleet's head, after a push made outside this
// process (an operator's commit, a merged pull request) added, changed or removed
// some: their entries are replaced and their specs read again on first use. It
// returns the names of the stores found there before or after, sorted.
func (s *Service) Resync(ctx context.Context, prefix string) ([]string, error) {
	dirs, err := s.repo.ListDirs(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing stores: %w", err)
	}
	prefix = strings.TrimSuffix(prefix, "/") + "/"
	now := map[string]*indexed{}
	for _, d := range dirs {
		parts := strings.Split(d, "/") // stores/<cluster>/<shard>/<name>
		if len(parts) == 4 && strings.HasPrefix(d, prefix) {
			now[parts[3]] = &indexed{store: store.Store{Name: parts[3], Cluster: parts[1]}, dir: d}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n, e := range s.index {
		if _, ok := now[n]; !ok && strings.HasPrefix(e.dir, prefix) {
			delete(s.index, n)
			names = append(names, n)
		}
	}
	for n, e := range now {
		s.index[n] = e
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// warm reads every store not read yet, a few at a time, until done or stopped.
func (s *Service) warm(ctx context.Context) {
	start := time.Now()
	s.mu.Lock()
	var names []string
	for n, e := range s.index {
		if !e.loaded {
			names = append(names, n)
		}
	}
	s.mu.Unlock()
	work := make(chan string)
	var wg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				_, _ = s.load(ctx, n)
			}
		}()
	}
	for _, n := range names {
		select {
		case work <- n:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() == nil {
		s.log.Info("store index loaded", "stores", len(names), "took", time.Since(start).Round(time.Millisecond))
	}
}

// errUnreadable marks a store folder whose files do not parse as render wrote them.
var errUnreadable = errors.New("store folder is unreadable")

// load returns the index entry of name, reading its folder first if needed.
func (s *Service) load(ctx context.Context, name string) (indexed, error) {
	s.mu.Lock()
	e, ok := s.index[name]
	if !ok {
		s.mu.Unlock()
		return indexed{}, store.Errorf(store.ENOTFOUND, "store %q not found", name)
	}
	if e.loaded {
		cur := *e
		s.mu.Unlock()
		return cur, nil
	}
	dir := e.dir
	s.mu.Unlock()
	_, files, err := s.repo.ReadDir(ctx, dir)
	if errors.Is(err, ErrNotFound) {
		s.mu.Lock()
		if s.index[name] == e {
			delete(s.index, name)
		}
		s.mu.Unlock()
		return indexed{}, store.Errorf(store.ENOTFOUND, "store %q not found", name)
	}
	if err != nil {
		return indexed{}, err
	}
	st, state, err := s.render.Parse(files)
	if err != nil {
		// A folder someone edited by hand must not stop the API; it is reported as
		// unreadable and logged so an operator can fix it.
		s.log.Warn("unreadable store folder", "dir", dir, "err", err)
		return indexed{}, fmt.Errorf("%w: %s: %v", errUnreadable, dir, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.index[name]; ok && cur != e {
		// A commit replaced the entry meanwhile; it is newer than what was read.
		return *cur, nil
	}
	e.store, e.state, e.loaded = st, state, true
	return *e, nil
}

// Ready reports whether the service can take writes.
func (s *Service) Ready(ctx context.Context) error { return s.repo.Ready(ctx) }

// lockName serialises changes to one store so that a read-modify-write (patch,
// delete) never loses a concurrent one.
func (s *Service) lockName(name string) func() {
	s.mu.Lock()
	l := s.locks[name]
	if l == nil {
		l = &nameLock{}
		s.locks[name] = l
	}
	l.refs++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.locks, name)
		}
		s.mu.Unlock()
	}
}

// once runs fn at most once per request id: a retry with the same id waits for and
// returns the first outcome, also after a restart (the id is then found in Git).
func (s *Service) once(ctx context.Context, m Meta, storeName string, action Action, fn func() (Outcome, error)) (Outcome, error) {
	if m.DryRun {
		return fn()
	}
	s.mu.Lock()
	if r, ok := s.requests[m.RequestID]; ok {
		s.mu.Unlock()
		if m.Fingerprint != "" && r.fingerprint != "" && r.fingerprint != m.Fingerprint {
			return Outcome{}, &store.Error{Code: store.EINVALID, Message: "Idempotency-Key was already used for a different request",
				Fields: []store.FieldError{{Field: "Idempotency-Key", Rule: "reused", Message: "this key belongs to a different request; use a new key"}}}
		}
		select {
		case <-r.done:
			return r.outcome, r.err
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		}
	}
	r := &request{fingerprint: m.Fingerprint, done: make(chan struct{})}
	s.requests[m.RequestID] = r
	s.order = append(s.order, m.RequestID)
	s.evictLocked()
	s.mu.Unlock()

	out, err := s.runOnce(ctx, m, storeName, action, fn)
	if err != nil {
		out.ErrCode = store.ErrorCode(err)
	}
	r.outcome, r.err = out, err
	close(r.done)
	if store.ErrorCode(err) != store.EINTERNAL {
		s.logRequest(m.Fingerprint, out)
	} else {
		// Not a decided outcome (the push failed, the client went away): forget it so
		// that a retry really retries.
		s.mu.Lock()
		if s.requests[m.RequestID] == r {
			delete(s.requests, m.RequestID)
		}
		s.mu.Unlock()
	}
	return out, err
}

func (s *Service) runOnce(ctx context.Context, m Meta, storeName string, action Action, fn func() (Outcome, error)) (Outcome, error) {
	out, err := fn()
	if err != nil {
		return Outcome{RequestID: m.RequestID, Store: storeName, Action: action, State: "failed", Reason: store.ErrorMessage(err)}, err
	}
	return out, nil
}

func (s *Service) evictLocked() {
	for len(s.order) > s.maxTracked {
		id := s.order[0]
		s.order = s.order[1:]
		if r, ok := s.requests[id]; ok {
			select {
			case <-r.done:
				delete(s.requests, id)
			default:
				// Still running: keep it, it will be evicted on a later round.
				s.order = append(s.order, id)
				return
			}
		}
	}
}

// Create validates, renders and commits a new store.
func (s *Service) Create(ctx context.Context, in store.Store, m Meta) (Outcome, error) {
	return s.once(ctx, m, in.Name, ActionCreate, func() (Outcome, error) {
		if in.Cluster == "" {
			in.Cluster = s.cluster
		}
		st := in.WithDefaults(s.baseDomain)
		if err := st.Validate(); err != nil {
			return Outcome{}, dropDerived(err, in)
		}
		s.mu.Lock()
		// With a client's Idempotency-Key the writer decides: it answers a retry of
		// an applied create (also from before a restart) with the first commit, and
		// any other create of an existing store with ErrExists.
		if _, ok := s.index[st.Name]; ok && !m.ClientKey {
			s.mu.Unlock()
			return Outcome{}, store.Errorf(store.ECONFLICT, "store %q already exists", st.Name)
		}
		if s.pending[st.Name] && !m.DryRun {
			s.mu.Unlock()
			return Outcome{}, store.Errorf(store.ECONFLICT, "a create for store %q is in progress", st.Name)
		}
		if !m.DryRun {
			s.pending[st.Name] = true
		}
		s.mu.Unlock()
		if !m.DryRun {
			defer func() {
				s.mu.Lock()
				delete(s.pending, st.Name)
				s.mu.Unlock()
			}()
		}
		files, err := s.render.Render(st, StateActive)
		if err != nil {
			return Outcome{}, err
		}
		return s.commit(ctx, m, st, StateActive, ActionCreate, "", nil, files)
	})
}

// Update applies change to the current store (a merge patch, in the HTTP layer) and
// commits the result. change gets a copy of the current store.
func (s *Service) Update(ctx context.Context, name string, change func(store.Store) (store.Store, error), m Meta) (Outcome, error) {
	return s.once(ctx, m, name, ActionUpdate, func() (Outcome, error) {
		unlock := s.lockName(name)
		defer unlock()
		cur, err := s.current(ctx, name)
		if err != nil {
			return Outcome{}, err
		}
		if cur.state != StateActive {
			return Outcome{}, store.Errorf(store.ECONFLICT, "store %q is %s; only an active store can be changed", name, cur.state)
		}
		next, err := change(cur.store)
		if err != nil {
			return Outcome{}, err
		}
		next = next.WithDefaults(s.baseDomain)
		if err := next.Validate(); err != nil {
			return Outcome{}, err
		}
		if err := store.ValidateUpdate(cur.store, next); err != nil {
			return Outcome{}, err
		}
		return s.renderAndCommit(ctx, m, cur, next, StateActive, ActionUpdate)
	})
}

// Delete removes the store's release and keeps its data (two-phase delete). With
// purge set, a retained store's namespace is made prunable; a purge of a store that
// is already purging removes its folder, and with it the namespace and the data.
// The two purge steps are separate calls because Flux must apply the first (the
// namespace losing its prune: disabled annotation) before the second can prune it.
func (s *Service) Delete(ctx context.Context, name string, purge bool, m Meta) (Outcome, error) {
	action := ActionDelete
	if purge {
		action = ActionPurge
	}
	return s.once(ctx, m, name, action, func() (Outcome, error) {
		unlock := s.lockName(name)
		defer unlock()
		cur, err := s.current(ctx, name)
		if err != nil {
			return Outcome{}, err
		}
		switch {
		case !purge && cur.state == StateActive:
			return s.renderAndCommit(ctx, m, cur, cur.store, StateRetained, ActionDelete)
		case !purge:
			return Outcome{}, store.Errorf(store.ECONFLICT, "store %q is already deleted (%s); purge it with ?purge=true", name, cur.state)
		case cur.state == StateActive:
			return Outcome{}, store.Errorf(store.ECONFLICT, "store %q is active; delete it first, purge removes only a deleted store's data", name)
		case cur.state == StateRetained:
			return s.renderAndCommit(ctx, m, cur, cur.store, StatePurging, ActionPurge)
		default: // purging: remove the folder
			tree, old, err := s.repo.ReadDir(ctx, s.render.Dir(cur.store))
			if err != nil {
				return Outcome{}, err
			}
			return s.commit(ctx, m, cur.store, "", ActionPurge, tree, old, nil)
		}
	})
}

func (s *Service) renderAndCommit(ctx context.Context, m Meta, cur indexed, next store.Store, state State, action Action) (Outcome, error) {
	files, err := s.render.Render(next, state)
	if err != nil {
		return Outcome{}, err
	}
	tree, old, err := s.repo.ReadDir(ctx, s.render.Dir(cur.store))
	if errors.Is(err, ErrNotFound) {
		return Outcome{}, store.Errorf(store.ENOTFOUND, "store %q is no longer in the fleet repository", cur.store.Name)
	}
	if err != nil {
		return Outcome{}, err
	}
	return s.commit(ctx, m, next, state, action, tree, old, files)
}

// commit sends one change to the writer (or, for a dry run, only diffs it). An
// empty state means the folder is removed.
func (s *Service) commit(ctx context.Context, m Meta, st store.Store, state State, action Action, base string, old, files []File) (Outcome, error) {
	dir := s.render.Dir(st)
	out := Outcome{RequestID: m.RequestID, Store: st.Name, Action: action, Phase: string(phaseOf(state))}
	if m.DryRun {
		out.DryRun = true
		out.State = "dryRun"
		out.Changes = diffFiles(old, files)
		return out, nil
	}
	c := Change{Store: st.Name, Cluster: st.Cluster, Action: action, Actor: m.Actor, RequestID: m.RequestID,
		Dir: dir, Files: files, Remove: state == "", Base: base}
	commit, err := s.repo.Submit(ctx, c)
	if errors.Is(err, ErrExists) || errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		// Someone else changed the fleet repository: learn the store's current state
		// so the next request sees it.
		s.refresh(ctx, st.Name, dir)
	}
	switch {
	case errors.Is(err, ErrExists):
		return Outcome{}, store.Errorf(store.ECONFLICT, "store %q already exists in the fleet repository", st.Name)
	case errors.Is(err, ErrConflict):
		return Outcome{}, store.Errorf(store.ECONFLICT, "store %q was changed by someone else meanwhile; read it again and retry", st.Name)
	case errors.Is(err, ErrNotFound):
		return Outcome{}, store.Errorf(store.ENOTFOUND, "store %q not found", st.Name)
	case err != nil:
		return Outcome{}, fmt.Errorf("committing %s of %s: %w", action, st.Name, err)
	}
	s.mu.Lock()
	if state == "" {
		delete(s.index, st.Name)
	} else {
		s.index[st.Name] = &indexed{store: st, state: state, commit: commit, loaded: true, dir: dir}
	}
	s.mu.Unlock()
	out.State = "committed"
	out.Commit = &commit
	return out, nil
}

func (s *Service) current(ctx context.Context, name string) (indexed, error) {
	return s.load(ctx, name)
}

// phaseOf is the phase known without a cluster: until the status watcher lands,
// an active store is "committed".
func phaseOf(st State) store.Phase {
	switch st {
	case StateActive:
		return store.PhaseCommitted
	case StateRetained:
		return store.PhaseRetained
	case StatePurging:
		return store.PhasePurging
	}
	return "purged"
}

// View is a store as the API shows it.
type View struct {
	Store  store.Store
	State  State
	Phase  store.Phase
	Commit *Commit
}

// Get returns one store with the commit that last changed it.
func (s *Service) Get(ctx context.Context, name string) (View, error) {
	cur, err := s.current(ctx, name)
	if err != nil {
		return View{}, err
	}
	v := View{Store: cur.store, State: cur.state, Phase: phaseOf(cur.state)}
	if cur.commit.SHA == "" {
		h, err := s.repo.History(ctx, s.render.Dir(cur.store))
		if err != nil {
			return View{}, err
		}
		if len(h) > 0 {
			cur.commit = h[0].Commit
			s.mu.Lock()
			if e, ok := s.index[name]; ok && e.commit.SHA == "" {
				e.commit = cur.commit
			}
			s.mu.Unlock()
		}
	}
	if cur.commit.SHA != "" {
		c := cur.commit
		v.Commit = &c
	}
	return v, nil
}

// Filter selects stores in List; empty fields match everything.
type Filter struct {
	Engine, Plan, Cluster, Phase string
}

// List returns up to limit stores after the continue token, sorted by name, and the
// token for the next page ("" on the last page). Commits are not filled in.
func (s *Service) List(ctx context.Context, f Filter, limit int, cont string) ([]View, string, error) {
	after := ""
	if cont != "" {
		b, err := base64.RawURLEncoding.DecodeString(cont)
		if err != nil || !strings.HasPrefix(string(b), "n:") {
			return nil, "", &store.Error{Code: store.EINVALID, Message: "invalid continue token",
				Fields: []store.FieldError{{Field: "continue", Rule: "token", Message: "not a token this API returned"}}}
		}
		after = string(b[2:])
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.index))
	for n, e := range s.index {
		if n > after && (f.Cluster == "" || e.store.Cluster == f.Cluster) {
			names = append(names, n)
		}
	}
	s.mu.Unlock()
	sort.Strings(names)
	var all []View
	next := ""
	for _, n := range names {
		// Walk in name order, reading specs only as far as the page needs.
		e, err := s.load(ctx, n)
		if store.ErrorCode(err) == store.ENOTFOUND || errors.Is(err, errUnreadable) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		ph := phaseOf(e.state)
		if f.Engine != "" && string(e.store.Engine) != f.Engine || f.Plan != "" && string(e.store.Plan) != f.Plan ||
			f.Phase != "" && string(ph) != f.Phase {
			continue
		}
		if len(all) == limit {
			next = base64.RawURLEncoding.EncodeToString([]byte("n:" + all[limit-1].Store.Name))
			break
		}
		v := View{Store: e.store, State: e.state, Phase: ph}
		if e.commit.SHA != "" {
			c := e.commit
			v.Commit = &c
		}
		all = append(all, v)
	}
	return all, next, nil
}

// History returns the store's audit log from Git, newest first. A purged store's
// history is still there (the folder's history outlives the folder) when the caller
// knows its cluster; for simplicity only stores in the index or in the default
// cluster are looked up.
func (s *Service) History(ctx context.Context, name string) ([]Entry, error) {
	st := store.Store{Name: name, Cluster: s.cluster}
	if cur, err := s.current(ctx, name); err == nil {
		st = cur.store
	}
	h, err := s.repo.History(ctx, s.render.Dir(st))
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, store.Errorf(store.ENOTFOUND, "store %q has no history", name)
	}
	return h, nil
}

// Request returns one request's outcome: from memory while this process knows it,
// else from its Request-Id trailer in Git.
func (s *Service) Request(ctx context.Context, id string) (Outcome, error) {
	s.mu.Lock()
	r, ok := s.requests[id]
	s.mu.Unlock()
	if ok {
		select {
		case <-r.done:
			return r.outcome, nil
		default:
			return Outcome{RequestID: id, State: "pending"}, nil
		}
	}
	return Outcome{}, store.Errorf(store.ENOTFOUND, "request %q not found (requests are kept for the last %d changes; the commit's Request-Id trailer records it for good)", id, s.maxTracked)
}

// Fingerprint hashes a request's method, path and body for idempotency checks.
func Fingerprint(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func diffFiles(old, new []File) []Diff {
	om := map[string][]byte{}
	for _, f := range old {
		om[f.Path] = f.Content
	}
	nm := map[string][]byte{}
	for _, f := range new {
		nm[f.Path] = f.Content
	}
	var paths []string
	for p := range om {
		paths = append(paths, p)
	}
	for p := range nm {
		if _, ok := om[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []Diff
	for _, p := range paths {
		o, inOld := om[p]
		n, inNew := nm[p]
		d := Diff{Path: p}
		switch {
		case !inOld:
			d.Op, d.Content = "add", string(n)
		case !inNew:
			d.Op = "delete"
		case bytes.Equal(o, n):
			continue
		default:
			d.Op, d.Content = "modify", string(n)
		}
		d.Diff = unified(p, o, n, inOld, inNew)
		out = append(out, d)
	}
	return out
}

func unified(path string, o, n []byte, inOld, inNew bool) string {
	from, to := "a/"+path, "b/"+path
	if !inOld {
		from = "/dev/null"
	}
	if !inNew {
		to = "/dev/null"
	}
	text, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(o)), B: difflib.SplitLines(string(n)),
		FromFile: from, ToFile: to, Context: 3,
	})
	return text
}

// dropDerived removes the error on a default derived from another invalid field (the
// domain <name>.<base domain> of an invalid name): the client did not send it, and
// the name's own error already says what to fix.
func dropDerived(err error, in store.Store) error {
	var e *store.Error
	if in.Domain != "" || !errors.As(err, &e) {
		return err
	}
	nameBad := false
	for _, f := range e.Fields {
		if f.Field == "name" {
			nameBad = true
		}
	}
	if !nameBad {
		return err
	}
	out := &store.Error{Code: e.Code, Message: e.Message}
	for _, f := range e.Fields {
		if f.Field != "domain" {
			out.Fields = append(out.Fields, f)
		}
	}
	return out
}

// refresh re-reads one store folder into the index after the writer reported that it
// differs from what the index holds (an outside push).
func (s *Service) refresh(ctx context.Context, name, dir string) {
	_, files, err := s.repo.ReadDir(ctx, dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, ErrNotFound) {
		delete(s.index, name)
		return
	}
	if err != nil {
		return
	}
	if st, state, err := s.render.Parse(files); err == nil && st.Name == name {
		s.index[name] = &indexed{store: st, state: state, loaded: true, dir: dir}
	}
}
