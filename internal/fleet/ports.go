package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

// State is which of a store's lives its rendered files describe.
type State string

const (
	// StateActive: namespace, policy and the HelmRelease; the store runs.
	StateActive State = "active"
	// StateRetained: the HelmRelease is gone (Helm uninstalls the app), the namespace
	// and its volumes stay, pruning disabled.
	StateRetained State = "retained"
	// StatePurging: as retained, but the namespace may be pruned; the next step
	// removes the folder and with it the namespace and the data.
	StatePurging State = "purging"
)

// Action is what a change does to a store; it becomes the commit's Action trailer.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
	ActionPurge  Action = "purge"
)

// File is one rendered file, relative to the fleet repository root.
type File struct {
	Path    string
	Content []byte
}

// Renderer turns a complete, valid store into its files in a given state.
type Renderer interface {
	Render(s store.Store, st State) ([]File, error)
	// Dir is the store's folder in the fleet repository.
	Dir(s store.Store) string
	// Parse recovers the store and its state from the files render wrote, so the
	// fleet repository is the only place a store's spec lives.
	Parse(files []File) (store.Store, State, error)
}

// Change is one store's change as the repository writer commits it.
type Change struct {
	Store     string
	Cluster   string
	Action    Action
	Actor     string
	RequestID string
	// Dir is the store's folder. Files replace its whole content; with Remove set
	// the folder is removed instead.
	Dir    string
	Files  []File
	Remove bool
	// Base is the folder's tree hash the change was computed from (from ReadDir);
	// if the folder is no longer at Base the change fails with ErrConflict, so an
	// outside push is never overwritten. Empty for a create, which instead fails
	// with ErrExists if the folder appeared meanwhile.
	Base string
}

// Commit identifies the commit a change landed in.
type Commit struct {
	SHA  string    `json:"sha"`
	Time time.Time `json:"time"`
}

// Entry is one change as recorded in Git: a commit and the change's trailers.
type Entry struct {
	Commit    Commit `json:"commit"`
	Store     string `json:"store"`
	Cluster   string `json:"cluster"`
	Action    Action `json:"action"`
	Actor     string `json:"actor"`
	RequestID string `json:"requestId"`
	Subject   string `json:"subject"`
}

// Lifecycle is what this package's Service offers its callers: the HTTP handlers
// (internal/api) and the status layer that wraps it (internal/status). Declared once
// here so the two cannot drift apart.
type Lifecycle interface {
	Create(ctx context.Context, s store.Store, m Meta) (Outcome, error)
	Update(ctx context.Context, name string, change func(store.Store) (store.Store, error), m Meta) (Outcome, error)
	Delete(ctx context.Context, name string, purge bool, m Meta) (Outcome, error)
	Get(ctx context.Context, name string) (View, error)
	List(ctx context.Context, f Filter, limit int, cont string) ([]View, string, error)
	History(ctx context.Context, name string) ([]Entry, error)
	Request(ctx context.Context, id string) (Outcome, error)
	Ready(ctx context.Context) error
}

var _ Lifecycle = (*Service)(nil)

// Repo is the fleet repository: the writer (Submit returns once the change is
// committed and pushed, which is what makes a 202 durable) and the read side.
type Repo interface {
	// Submit commits and pushes one change. A change whose Request-Id was already
	// applied to the same store returns the earlier commit and no error: that is
	// what makes an Idempotency-Key hold across restarts.
	Submit(ctx context.Context, c Change) (Commit, error)
	// ListDirs returns every store folder at HEAD.
	ListDirs(ctx context.Context) ([]string, error)
	// ReadDir returns the tree hash and files of one store folder at HEAD
	// (ErrNotFound if none). Paths are relative to the repository root.
	ReadDir(ctx context.Context, dir string) (string, []File, error)
	// History returns the changes to the store in dir, newest first.
	History(ctx context.Context, dir string) ([]Entry, error)
	// Ready reports whether the remote is reachable and the writer running.
	Ready(ctx context.Context) error
}

// Sentinel errors a Repo returns (wrapped is fine).
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed concurrently by someone else")
)
