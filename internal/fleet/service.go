package fleet

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// Config configures a Service.
type Config struct {
	Repo       store.Repository
	Renderer   store.Renderer
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
	// Clusters are the clusters a new store may name; empty means just Cluster. A
	// store in a cluster nobody applies the fleet for would sit in Git and never run.
	Clusters []string
	// Charts tells which chart versions the chart source offers; nil means versions
	// are not checked (any semantic version is accepted).
	Charts store.Charts
	// DefaultTenant owns every store whose files name no tenant (created before
	// tenants, or pushed by hand) and every store created without one (auth off);
	// default store.DefaultTenant. Such a store is read as the default tenant's,
	// and its next change writes that tenant into its files: the default becomes
	// explicit then, so changing DefaultTenant later moves only the stores that
	// never changed since.
	DefaultTenant string
	// WriteTimeout is the write deadline of a change: kept by the server whatever
	// the client's connection does. By then the change has landed, is certain not to
	// have (EUNAVAILABLE), or is answered pending and decided later
	// (GET /api/v1/requests/{id}). Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Review is the review policy, only told on a dry run (whether a pull request
	// would open); the Repository applies it to real changes. Nil: nothing is
	// reviewed.
	Review store.ReviewPolicy
}

// DefaultWriteTimeout is the write deadline when Config.WriteTimeout is zero.
const DefaultWriteTimeout = 30 * time.Second

// Service is the store lifecycle. It is safe for concurrent use.
type Service struct {
	repo       store.Repository
	render     store.Renderer
	baseDomain string
	cluster    string
	log        *slog.Logger
	maxTracked int
	clusters   []string
	charts     store.Charts
	writeTO    time.Duration
	tenant     string // the default tenant
	review     store.ReviewPolicy

	mu       sync.Mutex
	index    map[string]*indexed // by store name; names are unique across clusters
	pending  map[string]bool     // names with a create in flight
	locks    map[string]*nameLock
	requests map[string]*request
	order    []string // request ids, oldest first, for eviction
	// domains and unread follow index (domains.go): who holds each domain, and
	// which entries are not read yet, whose domains are therefore unknown. Change
	// index only through resetLocked, putLocked, dropLocked, readLocked and
	// unreadableLocked, which keep them in step.
	domains map[string][]string // domain → names of the active stores with it
	unread  map[string]bool     // names whose folder is not read yet
	tenants map[string]int      // tenant → read, readable entries: the quota's count without a walk of index
	claims  map[string]string   // domain → name of a create or update taking it, in flight

	logMu sync.Mutex
	logF  *os.File

	stopWarm func()
	warmDone chan struct{}
}

type indexed struct {
	store  store.Store
	state  store.State
	commit store.Commit // zero until known (filled from history on first Get)
	// tree is the hash of the folder's tree the entry was committed or re-read
	// from ("": not known); a folder the head still holds at this tree need not be
	// read again when the follower passes it (Followed).
	tree string
	// loaded is false while only the folder's name is known (from the tree walk at
	// start); the spec is read on first use or by the background warm-up.
	loaded bool
	// unreadable: reading the folder failed to parse; it counts as read for the
	// domain check (nothing more can be learnt from it until someone fixes it).
	unreadable bool
	dir        string
}

type nameLock struct {
	mu   sync.Mutex
	refs int
}

type request struct {
	fingerprint string
	done        chan struct{}
	outcome     store.Outcome
	err         error
}

var _ store.Service = (*Service)(nil)

// New returns a Service and loads the store index from the repository's HEAD.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Cluster == "" {
		cfg.Cluster = store.DefaultCluster
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.DefaultTenant == "" {
		cfg.DefaultTenant = store.DefaultTenant
	}
	if rule, msg := store.ValidateTenant(cfg.DefaultTenant); rule != "" {
		return nil, &store.Error{Code: store.EINVALID, Message: "invalid default tenant",
			Fields: []store.FieldError{{Field: "defaultTenant", Rule: rule, Message: msg}}}
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 100_000
	}
	if !slices.Contains(cfg.Clusters, cfg.Cluster) {
		// New stores default to Cluster, so it is always one they may name.
		cfg.Clusters = append(slices.Clone(cfg.Clusters), cfg.Cluster)
	}
	s := &Service{
		repo: cfg.Repo, render: cfg.Renderer, baseDomain: cfg.BaseDomain, cluster: cfg.Cluster,
		log: cfg.Log, maxTracked: cfg.MaxTracked, clusters: cfg.Clusters, charts: cfg.Charts, writeTO: cfg.WriteTimeout,
		index: map[string]*indexed{}, pending: map[string]bool{}, locks: map[string]*nameLock{},
		requests: map[string]*request{}, domains: map[string][]string{}, unread: map[string]bool{}, tenants: map[string]int{},
		claims: map[string]string{}, tenant: cfg.DefaultTenant, review: cfg.Review,
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
