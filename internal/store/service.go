package store

import (
	"context"
	"errors"
	"time"
)

// Service is the store lifecycle: what the HTTP layer drives. internal/fleet
// implements it over a Repository; internal/status wraps it to attach live status.
type Service interface {
	Create(ctx context.Context, s Store, m Meta) (Outcome, error)
	// Update applies change to a copy of the current store and commits the result.
	Update(ctx context.Context, name string, change func(Store) (Store, error), m Meta) (Outcome, error)
	// Delete removes the release and keeps the data; with purge set it takes a
	// deleted store one step further towards removing its data.
	Delete(ctx context.Context, name string, purge bool, m Meta) (Outcome, error)
	Get(ctx context.Context, name string) (View, error)
	// List returns up to limit stores after the continue token, sorted by name, and
	// the token of the next page ("" on the last).
	List(ctx context.Context, f Filter, limit int, cont string) ([]View, string, error)
	// History is HistoryPage's first page at the default size (DefaultHistoryLimit):
	// the newest changes, for callers that need no more.
	History(ctx context.Context, name string) ([]Entry, error)
	// HistoryPage returns one page of the store's audit log, newest first, and the
	// cursor of the next page (HistoryResult.Next, "" on the last).
	HistoryPage(ctx context.Context, name string, page HistoryPage) (HistoryResult, error)
	Request(ctx context.Context, id string) (Outcome, error)
	// Ready reports whether writes can be taken now.
	Ready(ctx context.Context) error
}

// Meta describes who asks and under which request id.
type Meta struct {
	// Actor is the authenticated subject (Principal.Subject), or "anonymous" when
	// authentication is off; never a client's claim.
	Actor string
	// OnBehalfOf is the actor a principal allowed to act for others (Principal.ActAs)
	// named; it is recorded beside Actor.
	OnBehalfOf string
	// Force overrides the mass-deletion guard for a principal with RoleAdmin.
	Force     bool
	RequestID string
	// ClientKey is true when RequestID came from the client's Idempotency-Key: only
	// then is Git searched for an earlier change with the same id.
	ClientKey bool
	// Fingerprint identifies the request's content; the same key with another
	// content is refused rather than answered with the first outcome.
	Fingerprint string
	DryRun      bool
	// IfMatch, when not empty, is the caller's precondition for an update or delete:
	// the change is made only if the store's last commit (its View.Commit) is one of
	// these SHAs, else it fails with EPRECONDITION and nothing is committed. So a
	// client that read a store, decided, and wrote back cannot overwrite a change it
	// never saw (a lost update). Empty means no precondition.
	IfMatch []string
	// Continues is set when RequestID is an earlier request's and this change is a
	// later step of it (the second purge step, which gitops-api commits itself once
	// Flux applied the first): it is not a retry, so neither the lifecycle nor the
	// writer answers it with the earlier outcome, and the commit's trailers still
	// name the request and actor that asked for it.
	Continues bool
	// StoresPerTenant is the quota (limits.storesPerTenant) of a create's tenant,
	// set by the access layer; zero is none. The create carries it down to the
	// repository, which refuses the create (QuotaError) when the tenant's stores
	// in the tree the commit lands on already reach it: the one count every
	// replica's creates are decided on, so the quota holds across replicas.
	StoresPerTenant int
}

// Commit identifies the commit a change landed in.
type Commit struct {
	SHA  string    `json:"sha"`
	Time time.Time `json:"time"`
	// Tree is the store folder's tree hash after the change, when the repository
	// reports it (Repository.Submit; empty after a purge): the store index keeps it
	// to know, when the fleet's head moves, whether a folder still holds what it
	// committed. Never part of an answer.
	Tree string `json:"-"`
}

// Outcome is what happened to one request.
type Outcome struct {
	RequestID string       `json:"requestId"`
	Store     string       `json:"store"`
	Action    Action       `json:"action"`
	State     RequestState `json:"state"`
	Commit    *Commit      `json:"commit,omitempty"`
	Reason    string       `json:"reason,omitempty"`
	// Phase is the phase the change leads the store to, as known without a cluster.
	Phase   Phase  `json:"phase,omitempty"`
	DryRun  bool   `json:"dryRun,omitempty"`
	Changes []Diff `json:"changes,omitempty"`
	// ErrCode is the error code of a failed request (EINVALID, …), so a retry after a
	// restart gets the same answer.
	ErrCode string `json:"errorCode,omitempty"`
	// Review is the change's pull request when the review policy sends it to a
	// reviewer; on a dry run it says whether a pull request would open.
	Review *Review `json:"review,omitempty"`
}

// Diff is one file a change adds, modifies or deletes.
type Diff struct {
	Path    string `json:"path"`
	Op      string `json:"op"` // add | modify | delete
	Content string `json:"content,omitempty"`
	Diff    string `json:"diff"`
}

// View is a store as the fleet repository has it.
type View struct {
	Store  Store
	State  State
	Commit *Commit
	// Review is the open pull request the store waits on: its create, or a change
	// to it, is under review. Store is then the spec on the fleet's branch, or the
	// proposed one for a create.
	Review *Review
}

// Filter selects stores in List; empty fields match everything.
type Filter struct {
	Engine, Plan, Cluster, Phase string
	// Tenant selects one tenant's stores; empty matches every tenant.
	Tenant string
	// Tenants, when not nil, restricts the result to these tenants (the ones the
	// principal sees; AllTenants in it means no restriction).
	Tenants []string
	// Text selects the stores whose name, domain or title contains it, ignoring
	// case; empty matches every store. It is what a person types to find a store,
	// so it is matched where the list is paged, not on one page of it.
	Text string
}

// Entry is one change as recorded in Git: a commit and the change's trailers.
type Entry struct {
	Commit  Commit `json:"commit"`
	Store   string `json:"store"`
	Cluster string `json:"cluster"`
	Action  Action `json:"action"`
	Actor   string `json:"actor"`
	// OnBehalfOf is the actor the authenticated Actor acted for, if any.
	OnBehalfOf string `json:"onBehalfOf,omitempty"`
	Tenant     string `json:"tenant,omitempty"`
	RequestID  string `json:"requestId"`
	Subject    string `json:"subject"`
}

// DefaultHistoryLimit is the size of a history page that names none.
const DefaultHistoryLimit = 100

// HistoryPage selects one page of a store's history, which is read newest first.
type HistoryPage struct {
	// Limit is how many commits of the store the page covers at most (usually one
	// entry each); zero or less is DefaultHistoryLimit.
	Limit int
	// Before is a cursor: the page starts after this commit, the Next of the page
	// before. It must be one of the store's commits (EINVALID on field "before").
	Before string
	// At starts the page at this commit, inclusive: how one change, however old, is
	// found (ENOTFOUND when it is not one of the store's). Not together with Before.
	At string
}

// HistoryResult is one page of a store's history.
type HistoryResult struct {
	Entries []Entry
	// Next is the Before of the following page; empty on the last page.
	Next string
}

// File is one file of a store folder, Path relative to the fleet repository root.
type File struct {
	Path    string
	Content []byte
}

// Renderer turns a complete, valid store into its files in a given state, and reads
// a store back from them, so the fleet repository is the only place a store's spec
// lives (internal/render).
type Renderer interface {
	Render(s Store, st State) ([]File, error)
	// Shared renders the files outside the store's folder that an active store
	// needs (its chart source, shared by every store of its engine and version).
	// Their content depends on nothing but what names them, so writing them again
	// changes nothing.
	Shared(s Store) ([]File, error)
	// Parse recovers the store and its state from the files Render wrote.
	Parse(files []File) (Store, State, error)
	// Tenant reads what Parse reads into Store.Tenant, from as little of the
	// files as that takes ("" when they name none); an error for files whose
	// tenant Parse could not read either.
	Tenant(files []File) (string, error)
	// InFleet is the renderer for a fleet of shards shards (ValidShards): a store's
	// folder, and the Flux controller shard its shard maps to, depend on the count,
	// which is the fleet repository's (ShardsFile) and can change while the
	// service runs, so the caller passes the count it read from the head it writes
	// onto.
	InFleet(shards int) Renderer
}

// Change is one store's change as a Repository commits it.
type Change struct {
	Store   string
	Cluster string
	Action  Action
	Actor   string
	// OnBehalfOf and Tenant become trailers beside Actor (empty: no trailer).
	OnBehalfOf string
	Tenant     string
	RequestID  string
	// Plan and Engine are the store's as the change leaves it: a review policy
	// decides on them and a pull request shows them; the Git writer ignores them.
	Plan   string
	Engine string
	// Continues: a later step of the request RequestID (Meta.Continues), which the
	// writer must not take for a retry of an earlier step.
	Continues bool
	// Dir is the store's folder. Files replace its whole content; with Remove set
	// the folder is removed instead.
	Dir    string
	Files  []File
	Remove bool
	// Shared are files outside the folder (paths from the repository root) that
	// the change needs present with this content (Renderer.Shared); they land in
	// the same commit.
	Shared []File
	// Unshared are paths of shared files the change may leave no store using (the
	// store's source before a delete or an upgrade to another version). The
	// repository removes each in the change's commit unless a store, as that
	// commit leaves the fleet, still uses it; a create never names one.
	Unshared []string
	// Base is the folder's tree hash the change was computed from (from ReadDir);
	// if the folder is no longer at Base the change fails with ErrConflict, so an
	// outside push is never overwritten. Empty for a create, which instead fails
	// with ErrExists if the folder appeared meanwhile.
	Base string
	// StoresPerTenant, for a create, is its tenant's quota (Meta.StoresPerTenant);
	// zero is none. A repository that counts the tenant's stores where it commits
	// fails the create with QuotaError when they reach it; one that proposes the
	// change for review ignores it.
	StoresPerTenant int
}

// Repository is the fleet repository: the writer and its read side. Submit returns
// once the change is durable (committed and pushed, or, for a writer that asks for
// review, proposed), which is what makes a 202 true. internal/gitrepo implements
// it.
type Repository interface {
	// Submit commits one change. A change whose Request-Id was already applied to
	// the same store returns the earlier commit and no error: that is what makes an
	// Idempotency-Key hold across restarts.
	Submit(ctx context.Context, c Change) (Commit, error)
	// ListDirs returns every store folder at the head.
	ListDirs(ctx context.Context) ([]string, error)
	// Shards returns the fleet's shard count at the head (ShardsFile, DefaultShards
	// when absent): the count a store's folder (DirIn) is computed with. Submit
	// refuses with ErrConflict a change whose Dir is not its store's folder at the
	// count of the commit it lands on, so a change computed before the count changed
	// is computed again rather than written to the old layout.
	Shards(ctx context.Context) (int, error)
	// ReadDir returns the tree hash and files of one store folder at the head
	// (ErrNotFound if none). Paths are relative to the repository root.
	ReadDir(ctx context.Context, dir string) (string, []File, error)
	// History returns one page of the changes to the store in dir, newest first, and
	// the cursor of the next page. A page.Before that is not one of the store's
	// commits is EINVALID on field "before"; a page.At that is not is ENOTFOUND.
	History(ctx context.Context, dir string, page HistoryPage) (HistoryResult, error)
	// Ready reports whether the remote is reachable and the writer running.
	Ready(ctx context.Context) error
	// RemovalsSince returns the delete and purge changes committed to the fleet at
	// or after since, newest first, read from the repository's history (the
	// branch's first-parent line) so that every replica counts the same. Both steps
	// of a purge are there, under one Request-Id. The mass-deletion guard counts
	// them (Counter.Removals); a call after every request must stay cheap, so an
	// implementation reads only the commits new since its previous call.
	RemovalsSince(ctx context.Context, since time.Time) ([]Entry, error)
	// FindRequest tells what became of request id as the repository knows it: a
	// change whose outcome is still being decided (RequestPending), decided by the
	// writer of this process (RequestCommitted, RequestFailed), or found by its
	// Request-Id trailer in the branch's history (RequestCommitted). ErrNotFound when
	// neither knows it; an EUNAVAILABLE error when the remote cannot be asked.
	FindRequest(ctx context.Context, id string) (Found, error)
}

// ChangeReader reads one change of a store's history: the store's folder as the
// commit left it and as the commit before it had it (nil where absent). Beside
// Repository rather than in it: only the history's diffs need it, and a
// repository that keeps no history has none to give. internal/gitrepo implements it.
type ChangeReader interface {
	StoreChange(ctx context.Context, dir, commit string) (before, after []File, err error)
	// Shards is Repository.Shards: History reads a store's folder at the head's
	// count, and a diff of its entries reads the same folder.
	Shards(ctx context.Context) (int, error)
}

// Found is a request as the repository knows it.
type Found struct {
	State   RequestState
	Store   string
	Cluster string
	// Tenant is the tenant the commit's trailer names; empty when the commit has
	// none (from before tenants) or the change is not committed.
	Tenant string
	Action Action
	Commit *Commit // when committed
	Reason string  // when failed
	// Review is the request's pull request, for a request proposed for review.
	Review *Review
}

// Sentinel errors a Repository returns (wrapped is fine): expected states of the
// fleet repository, which the lifecycle turns into error codes.
var (
	// ErrNotFound: the store folder is not at the head.
	ErrNotFound = errors.New("not found")
	// ErrExists: a create found the folder already there.
	ErrExists = errors.New("already exists")
	// ErrConflict: the folder moved away from the change's Base.
	ErrConflict = errors.New("changed concurrently by someone else")
	// ErrTooManyPurges: the writer's deletion guard refused a purge.
	ErrTooManyPurges = errors.New("too many purges at once")
	// ErrOutcomeUnknown: the write deadline passed while the change was being pushed,
	// so whether it landed is not known yet. The repository goes on deciding it and
	// FindRequest tells the outcome: committed, or failed once it is certain the
	// change can no longer land.
	ErrOutcomeUnknown = errors.New("outcome not known yet")
)
