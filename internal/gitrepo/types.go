package gitrepo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/storefleet/storefleet/internal/store"
)

// Sentinel errors. Results and functions wrap them; test with errors.Is.
var (
	// ErrConflict: the store folder is not what the change expected (someone else
	// changed it since the caller, or the writer, last saw it). Nothing was written.
	ErrConflict = errors.New("gitrepo: store changed meanwhile")
	// ErrExists: a create found the store folder already present.
	ErrExists = errors.New("gitrepo: store already exists")
	// ErrNotFound: an update, delete or purge found no store folder.
	ErrNotFound = errors.New("gitrepo: store not found")
	// ErrTooManyDeletes: the batch purged more stores than Options.MaxPurges and the
	// purge was not forced.
	ErrTooManyDeletes = errors.New("gitrepo: batch purges too many stores")
	// ErrInvalid: the change itself is malformed (bad path, action, trailer value).
	ErrInvalid = errors.New("gitrepo: invalid change")
	// ErrClosed: the Repo was closed before the change was applied.
	ErrClosed = errors.New("gitrepo: repository closed")
	// ErrEmpty: the branch has no commit yet (read side).
	ErrEmpty = errors.New("gitrepo: branch has no commits")
	// ErrGuard: a built commit would have removed a store folder nobody purged. This is
	// a bug guard; it should never be seen.
	ErrGuard = errors.New("gitrepo: commit would remove an unpurged store folder")
	// ErrStorage: a file of the on-disk clone or of a local remote could not be
	// written (a full, read-only or failing disk). Nothing was pushed and the clone
	// kept its tip, so the change can be submitted again once the disk takes writes,
	// without a restart: the domain's "unavailable". Writable reports it too.
	ErrStorage = errors.New("gitrepo: storage unavailable")
)

// Action is what a change does to a store folder.
type Action string

const (
	// ActionCreate writes a new folder; it must not exist.
	ActionCreate Action = "create"
	// ActionUpdate replaces an existing folder's content.
	ActionUpdate Action = "update"
	// ActionDelete is phase one of deletion: the folder stays (with the content the
	// caller renders for a retained store, e.g. without helmrelease.yaml).
	ActionDelete Action = "delete"
	// ActionPurge removes the folder (phase two), the only action that does. With
	// Change.Keep it is instead the purge's first step: the folder stays with Files
	// (the namespace made prunable), and the Action trailer still says purge.
	ActionPurge Action = "purge"
)

// File is one file of a store folder. Path is relative to the folder, slash-separated.
type File struct {
	Path    string
	Content []byte
}

// Expectation is what a change expects to find in the store folder before it applies.
// The zero value means: absent for a create, anything for the other actions.
type Expectation struct {
	kind expectKind
	tree string
}

type expectKind uint8

const (
	expectDefault expectKind = iota
	expectAbsent
	expectTree
	expectAny
)

// ExpectAbsent requires that the folder does not exist.
func ExpectAbsent() Expectation { return Expectation{kind: expectAbsent} }

// ExpectTree requires the folder's tree hash to be tree (as returned by Store or
// ListStores when the caller validated the request).
func ExpectTree(tree string) Expectation { return Expectation{kind: expectTree, tree: tree} }

// ExpectAny accepts whatever the writer finds when it first applies the change. If the
// push then loses a race and the folder changed on the remote meanwhile, the change is
// still reported as ErrConflict: the writer never overwrites a change it has not seen.
func ExpectAny() Expectation { return Expectation{kind: expectAny} }

func (e Expectation) String() string {
	switch e.kind {
	case expectAbsent:
		return "absent"
	case expectTree:
		return "tree " + e.tree
	case expectAny:
		return "any"
	}
	return "default"
}

// Change is one request against one store folder.
type Change struct {
	Store   string // store name: the folder's last path element
	Cluster string // cluster name: the folder's second path element
	// Dir is the folder, stores/<cluster>/<shard>/<name>, decided by the caller.
	Dir    string
	Action Action
	// Files is the folder's full new content; files not listed are removed. Nil for purge.
	Files  []File
	Expect Expectation
	// Shared are files outside the store folders (paths from the repository root,
	// under the cluster's store.ChartSourcesDir) that the change needs present with
	// this content: the chart source its store shares with every store of its engine
	// and version. They land in the commit that applies the change, written only if
	// absent or different.
	Shared []File
	// Unshared are shared files (paths as in Shared) the change may leave no store
	// using: the source of the version an upgrade leaves, or of a store a delete
	// takes the release from. The commit that applies the change removes each one
	// that no store folder of the cluster, as that commit leaves the tree, still
	// names (unshare.go); a change of the same commit that needs it keeps it.
	Unshared []string
	// Force lets a purge through the deletion guard.
	Force bool
	// Keep, only with ActionPurge, keeps the folder with Files instead of removing
	// it: the purge's first step. The commit records it as a purge (the audit log
	// tells the truth), but it removes nothing, so the MaxPurges guard, which is
	// about removed folders, does not count it.
	Keep bool
	// Tenant owns the store; Actor is who asked (an authenticated subject such as
	// "https://idp.example.com/realms/x#248289761001", "token:ci" or
	// "system:serviceaccount:ns:name"), OnBehalfOf whom it acted for. Each becomes
	// a trailer when not empty.
	Tenant, Actor, OnBehalfOf string
	RequestID                 string
	// Continues marks a later step of the request RequestID (the second purge step
	// commits under the first one's id): it is applied even though the id was seen
	// for the store, rather than answered as a retry.
	Continues bool
	// StoresPerTenant, for a create, is its tenant's quota; zero is none. The
	// create fails with a *QuotaError (ErrQuota) when the tenant (Options.TenantOf
	// of Files) holds that many store folders in the tree the commit is built on,
	// with the creates applied before it in the same commit (tenants.go).
	StoresPerTenant int
}

// removes reports whether the change removes its folder: a purge's last step.
func (c *Change) removes() bool { return c.Action == ActionPurge && !c.Keep }

// Result is the outcome of one change.
type Result struct {
	// Commit is the commit that holds the change; for a no-op or a duplicate, the
	// commit the folder already had the content at (the branch tip, or the commit that
	// applied the same Request-Id).
	Commit string
	// NoOp: the folder already had this content; no commit was made for it.
	NoOp bool
	// Duplicate: this Request-Id was applied to this store before; nothing was done.
	Duplicate bool
	// Tree is the folder's tree hash after the change (empty after purge).
	Tree string
	// Unshared are the files of Change.Unshared its commit removed (no store used
	// them any more).
	Unshared []string
	Err      error
}

// Signature names the author or committer of the writer's commits.
type Signature struct {
	Name, Email string
}

// Auth holds credentials for a remote. Only the fields for the remote's scheme are used.
type Auth struct {
	// HTTPS: basic auth. For a token, put it in Password (GitHub: Username
	// "x-access-token"; GitLab: "oauth2").
	Username, Password string
	// HTTPS: a bearer token sent as "Authorization: Bearer".
	BearerToken string
	// SSH: user (default "git"), private key in PEM/OpenSSH form, optional passphrase,
	// and known_hosts files to check the server key against (required: the writer never
	// accepts an unknown host key).
	SSHUser          string
	SSHKey           []byte
	SSHKeyPassphrase string
	KnownHosts       []string
}

// Options configures Open.
type Options struct {
	// URL of the fleet repository: https://…, http://…, ssh://…, user@host:path,
	// file://… or a local path to a bare repository.
	URL  string
	Auth Auth
	// Branch written and read; default "main".
	Branch string
	// Dir, if set, keeps the clone on disk there (reused and fetched incrementally on
	// the next Open); empty keeps it in memory.
	Dir string
	// Author and Committer of the writer's commits; Committer defaults to Author,
	// Author to "Storefleet <storefleet@localhost>".
	Author, Committer Signature
	// MaxPurges is the most store folders one commit may purge without Force;
	// 0 means DefaultMaxPurges, negative means none without Force.
	MaxPurges int
	// MaxBatch caps how many queued changes go into one commit; default 1000.
	MaxBatch int
	// Retries, if positive, caps how often a rejected push is retried on a fresh
	// tip; 0 retries until the write deadline.
	Retries int
	// WriteTimeout is a change's write deadline when its context has none sooner:
	// no push of it starts later, and each push is cut off at it. Default
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// IdempotencyDepth is how many recent commits Open scans for Request-Id trailers;
	// default 2000.
	IdempotencyDepth int
	// Now is the clock for commit times; default time.Now.
	Now func() time.Time
	// Logger takes the warnings about what the writer repaired by itself (a stale ref
	// lock, a damaged clone); default slog.Default().
	Logger *slog.Logger
	// Observer is told of every commit that lands and every push that does not
	// (internal/metrics); nil counts nothing.
	Observer Observer
	// TenantOf tells the tenant that owns a store from its folder's files (paths
	// from the repository root), an error for a folder that does not parse. It must
	// be the fleet's own rule (store.FolderTenant with the fleet's renderer and
	// default tenant), so that the quota check counts what store.Counter counts.
	// Nil: no quota is checked here, only by the callers (the access layer's
	// count, which N replicas can overshoot); serve always sets it.
	TenantOf func(files []store.File) (string, error)
	// TenantQuota says a quota is configured, so creates near it will carry
	// Change.StoresPerTenant (serve: an access configuration is loaded, which
	// always holds limits.storesPerTenant). Only then does Open count the stores per
	// tenant in the background (warmtenants.go), which spares the first create near
	// a limit a count of every store folder on the writer. An install without a
	// quota would spend that count (every folder read once) for nothing, and its
	// shared-file warm-up would wait behind it; so without TenantQuota nothing is
	// counted at start. A create that carries a limit all the same is still checked:
	// its first count reads the folders itself. Needs TenantOf.
	TenantQuota bool

	// fullFirstFetch makes a first start fetch the whole history before Open
	// returns, as before shallow starts: the baseline of BenchmarkFreshReplica.
	fullFirstFetch bool
	// shallowDepth overrides firstFetchDepth (tests: a short history still starts
	// shallow).
	shallowDepth int
	// holdHistory, when set, keeps the history behind a shallow start from being
	// fetched until it is closed: tests look at the replica in between.
	holdHistory <-chan struct{}
}

// Observer takes what the writer counts, in plain values so that the metrics
// package implements it without gitrepo depending on Prometheus.
type Observer interface {
	// Commit: a commit carrying stores changes landed, d after the writer took
	// them (retries included).
	Commit(stores int, d time.Duration)
	// PushFailed: one push attempt did not land. cause is conflict (the branch
	// moved or the ref update was refused; retried on the new tip), unreachable
	// (certain nothing was sent) or unknown (cut off in flight).
	PushFailed(cause string)
}

type noObserver struct{}

func (noObserver) Commit(int, time.Duration) {}
func (noObserver) PushFailed(string)         {}

// DefaultMaxPurges is the deletion guard's default.
const DefaultMaxPurges = 10

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// validName accepts what may be a single path element in the fleet layout and a
// trailer value: lower-case DNS-ish labels. The name rules proper belong to the
// domain; this only keeps paths and trailers well formed.
func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// MaxActorLength bounds the Actor and On-Behalf-Of trailers, in bytes.
const MaxActorLength = 256

// validActor accepts one line of printable characters: an authenticated subject
// holds ':', '/', '#', '@' and the like, but a line break would end the trailer and
// start a forged one ("alice\nActor: root"), and other control or invisible format
// characters would make the audit log say something else than it shows. Surrounding
// spaces are refused because parsing trims them, so the value would not read back
// as written.
func validActor(s string) bool {
	if len(s) > MaxActorLength || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

func validTrailerValue(s string) bool {
	if len(s) > 200 {
		return false
	}
	return !strings.ContainsAny(s, "\r\n\x00")
}

func validFilePath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.Contains(p, "\\") {
		return false
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." || strings.EqualFold(el, ".git") || strings.ContainsAny(el, "\x00\n") {
			return false
		}
	}
	return true
}

func (c *Change) validate() error {
	if !validName(c.Store) {
		return invalid("store %q is not a valid name", c.Store)
	}
	if !validName(c.Cluster) {
		return invalid("cluster %q is not a valid name", c.Cluster)
	}
	// Which shard is the store's depends on the fleet's count at the commit the
	// change lands on, which only the writer knows (checkLayout); here the folder
	// need only be a folder of this store.
	if ref, ok := store.ParseDir(c.Dir); !ok || ref.Cluster != c.Cluster || ref.Name != c.Store || !store.ValidShard(ref.Shard) {
		return invalid("dir %q: want %s", c.Dir, store.ShardDir(c.Cluster, "<shard>")+"/"+c.Store)
	}
	if !validActor(c.Actor) || !validActor(c.OnBehalfOf) {
		return invalid("actor and on-behalf-of must be one line of printable characters, at most %d bytes", MaxActorLength)
	}
	if !validTrailerValue(c.RequestID) {
		return invalid("request id must be single-line and at most 200 bytes")
	}
	if c.Tenant != "" && !validName(c.Tenant) {
		return invalid("tenant %q is not a valid name", c.Tenant)
	}
	if c.StoresPerTenant < 0 {
		return invalid("stores per tenant %d is negative", c.StoresPerTenant)
	}
	if c.Keep && c.Action != ActionPurge {
		return invalid("keep applies to a purge only, not to %s", c.Action)
	}
	switch {
	case c.removes():
		if len(c.Files) != 0 {
			return invalid("purge takes no files")
		}
	case c.Action == ActionCreate, c.Action == ActionUpdate, c.Action == ActionDelete, c.Action == ActionPurge:
		if len(c.Files) == 0 {
			return invalid("%s needs the folder's files", c.Action)
		}
		seen := make(map[string]bool, len(c.Files))
		for _, f := range c.Files {
			if !validFilePath(f.Path) {
				return invalid("file path %q", f.Path)
			}
			if seen[f.Path] {
				return invalid("file %q listed twice", f.Path)
			}
			seen[f.Path] = true
		}
		// A file and a folder of the same name cannot both exist.
		for p := range seen {
			for d := path.Dir(p); d != "."; d = path.Dir(d) {
				if seen[d] {
					return invalid("%q is both a file and a folder", d)
				}
			}
		}
	default:
		return invalid("action %q", c.Action)
	}
	for _, f := range c.Shared {
		if !validFilePath(f.Path) || path.Dir(f.Path) != store.ChartSourcesDir(c.Cluster) {
			return invalid("shared file %q is not in %s", f.Path, store.ChartSourcesDir(c.Cluster))
		}
		if c.removes() {
			return invalid("purge takes no shared files")
		}
	}
	for _, p := range c.Unshared {
		if !validFilePath(p) || path.Dir(p) != store.ChartSourcesDir(c.Cluster) {
			return invalid("unshared file %q is not in %s", p, store.ChartSourcesDir(c.Cluster))
		}
		for _, f := range c.Shared {
			if f.Path == p {
				return invalid("file %q is both shared and unshared", p)
			}
		}
	}
	if c.Action == ActionCreate && c.Expect.kind == expectTree {
		return invalid("create cannot expect an existing tree")
	}
	if c.Expect.kind == expectTree && !isHex40(c.Expect.tree) {
		return invalid("expected tree %q is not a hash", c.Expect.tree)
	}
	return nil
}

func isHex40(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
