package fleet

import (
	"context"
	"log/slog"
	"os"
	"sync"

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
}

// Service is the store lifecycle. It is safe for concurrent use.
type Service struct {
	repo       store.Repository
	render     store.Renderer
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
	state  store.State
	commit store.Commit // zero until known (filled from history on first Get)
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
