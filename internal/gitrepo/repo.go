package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/memory"
)

const remoteName = "origin"

// Repo is a long-lived bare clone of one branch of the fleet repository, with its writer.
// It is safe for concurrent use.
type Repo struct {
	opts      Options
	ep        *transport.Endpoint
	auth      transport.AuthMethod
	st        storage.Storer
	repo      *git.Repository
	branchRef plumbing.ReferenceName // refs/heads/<branch> on the remote
	trackRef  plumbing.ReferenceName // refs/remotes/origin/<branch> here
	localPath string                 // bare repository written directly (file remotes)
	red       redactor               // the URL as errors and logs may show it
	log       *slog.Logger

	localCommits atomic.Int64
	gcRunning    atomic.Bool
	gcs          sync.WaitGroup // Close waits for a git gc it started on the local remote

	// syncMu serializes fetches and tip moves; mu guards the object storage (go-git's
	// memory storage is plain maps) and tip.
	syncMu sync.Mutex
	mu     sync.RWMutex
	tip    plumbing.Hash
	// recent: the objects of the writer's packs the storage has not read yet
	// (recent.go). Readers of the storage hold mu for as long as they read, which
	// is what lets a merge remove the packs it replaced.
	recent *recentObjects

	idx      *requestIndex
	hist     *historyIndex // which commits changed each store folder (historyindex.go)
	trees    treeCache     // the upper trees folder reads at the tip share
	shards   shardsCache   // the shard count of the last root read (shards.go)
	limbo    *limbo        // changes whose push the write deadline cut off (resolve.go)
	removals removalCache  // the mass-deletion guard's window (removals.go)
	named    namedCache    // which shared files each store folder names (unshare.go)
	big      bigTrees      // the cluster trees the writer wrote last (tree.go)
	tenants  tenantCount   // the stores per tenant the quota check counted (tenants.go)

	obs Observer

	qmu     sync.RWMutex
	closed  bool
	queue   chan []*pending
	closing chan struct{}
	done    chan struct{}

	// synced is closed once a fetch has succeeded since Open; syncFail is the last
	// failed attempt's *NotWritableError until then (available.go).
	synced   chan struct{}
	syncOnce sync.Once
	syncFail atomic.Pointer[error]

	// incomplete is set while the clone holds the tip's history only down to a
	// shallow boundary (a first start fetches the tip alone; shallow.go).
	incomplete  atomic.Bool
	historyDone chan struct{} // closed once the history is complete

	warmed chan struct{} // closed once the warm-ups after Open have ended (warmnamed.go, warmtenants.go)
}

// Open clones (or, with Options.Dir holding an earlier clone, fetches) the branch and
// starts its writer. An empty remote is fine: the first commit creates the branch.
// A remote that does not answer is an error; OpenBackground serves without it.
func Open(ctx context.Context, opts Options) (*Repo, error) {
	return openRepo(ctx, opts, false)
}

func openRepo(ctx context.Context, opts Options, background bool) (*Repo, error) {
	if opts.URL == "" {
		return nil, errors.New("gitrepo: Options.URL is empty")
	}
	if opts.Branch == "" {
		opts.Branch = "main"
	}
	if opts.Author.Name == "" {
		opts.Author = Signature{Name: "Storefleet", Email: "storefleet@localhost"}
	}
	if opts.Committer.Name == "" {
		opts.Committer = opts.Author
	}
	if opts.MaxPurges == 0 {
		opts.MaxPurges = DefaultMaxPurges
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.IdempotencyDepth <= 0 {
		opts.IdempotencyDepth = 2000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	red := newRedactor(opts.URL)
	url := opts.URL
	if !strings.Contains(url, "://") && !strings.Contains(url, "@") {
		// A local path: make it absolute so the file transport finds it from anywhere.
		if abs, err := filepath.Abs(url); err == nil {
			url = abs
		}
	}
	if url != opts.URL {
		red = newRedactor(url)
	}
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		// The parser's error quotes the URL, credentials and all.
		return nil, red.err(fmt.Errorf("gitrepo: remote URL: %w", err))
	}
	auth, err := opts.Auth.method(ep)
	if err != nil {
		return nil, err
	}
	r := &Repo{
		recent:      newRecentObjects(),
		opts:        opts,
		red:         red,
		log:         opts.Logger,
		ep:          ep,
		auth:        auth,
		branchRef:   plumbing.NewBranchReferenceName(opts.Branch),
		trackRef:    plumbing.NewRemoteReferenceName(remoteName, opts.Branch),
		idx:         newRequestIndex(100000),
		obs:         opts.Observer,
		queue:       make(chan []*pending, 1024),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
		synced:      make(chan struct{}),
		historyDone: make(chan struct{}),
		warmed:      make(chan struct{}),
	}
	if r.obs == nil {
		r.obs = noObserver{}
	}
	if ep.Protocol == "file" {
		r.localPath = localRepoPath(ep.Path)
	}
	if r.localPath != "" && opts.Dir != "" && sameDir(r.localPath, opts.Dir) {
		// Healing a damaged clone moves it aside: never the fleet itself.
		return nil, fmt.Errorf("gitrepo: Options.Dir %s is the remote repository itself", opts.Dir)
	}
	if err := r.initStorage(); err != nil {
		return nil, r.red.err(err)
	}
	err = r.firstFetch(ctx, background)
	switch {
	case err == nil:
		r.markSynced()
	case !background:
		return nil, r.red.err(err)
	default:
		r.failSync(err)
		r.log.Warn("gitrepo: the fleet remote cannot be fetched; serving what the clone holds, not ready, retrying in the background",
			"dir", r.opts.Dir, "tip", r.tip, "err", r.red.err(err))
	}
	r.limbo = r.openLimbo()
	r.hist = openHistoryIndex(historyIndexPath(r.opts.Dir), r.log)
	switch {
	case r.hist.tip == r.tip:
		r.hist.ready.Store(true) // the common restart: nothing new since
	case r.incomplete.Load():
		// Indexed once the history behind the boundary is in (deepenLoop).
	default:
		r.hist.build(r)
	}
	if r.incomplete.Load() {
		go r.deepenLoop()
		r.awaitHistory(ctx)
	}
	go r.run()
	go r.warmUp()
	if err != nil {
		go r.syncLoop()
	}
	return r, nil
}

func (r *Repo) initStorage() error {
	var err error
	if r.opts.Dir == "" {
		r.st = memory.NewStorage()
		r.repo, err = git.Init(r.st, nil)
		if err != nil {
			return fmt.Errorf("gitrepo: init in-memory clone: %w", err)
		}
	} else if err := r.openDisk(); err != nil {
		return err
	}
	// A clone kept on disk starts from where it was, so the first fetch is incremental.
	if ref, err := r.st.Reference(r.trackRef); err == nil {
		r.tip = ref.Hash()
		r.idx.walk(r.st, r.tip, r.opts.IdempotencyDepth)
	}
	// A first start that stopped before the history behind its tip arrived.
	if len(r.shallowBoundary()) > 0 {
		r.incomplete.Store(true)
	}
	// The remote is recorded for git tools pointed at the clone, without credentials:
	// nothing here reads it back, and the clone's config is no place for a token.
	url := r.red.shown
	if rem, err := r.repo.Remote(remoteName); err == nil {
		if len(rem.Config().URLs) == 1 && rem.Config().URLs[0] == url {
			return nil
		}
		if err := r.repo.DeleteRemote(remoteName); err != nil {
			return err
		}
	}
	_, err = r.repo.CreateRemote(&config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{url},
		Fetch: []config.RefSpec{config.RefSpec("+" + r.branchRef.String() + ":" + r.trackRef.String())},
	})
	return err
}

func (a Auth) method(ep *transport.Endpoint) (transport.AuthMethod, error) {
	switch ep.Protocol {
	case "http", "https":
		if a.BearerToken != "" {
			return &http.TokenAuth{Token: a.BearerToken}, nil
		}
		if a.Username != "" || a.Password != "" {
			return &http.BasicAuth{Username: a.Username, Password: a.Password}, nil
		}
		return nil, nil // credentials in the URL, or none
	case "ssh":
		if len(a.SSHKey) == 0 {
			return nil, errors.New("gitrepo: ssh remote needs Auth.SSHKey")
		}
		if len(a.KnownHosts) == 0 {
			return nil, errors.New("gitrepo: ssh remote needs Auth.KnownHosts")
		}
		user := a.SSHUser
		if user == "" {
			user = ep.User
		}
		if user == "" {
			user = "git"
		}
		pk, err := ssh.NewPublicKeys(user, a.SSHKey, a.SSHKeyPassphrase)
		if err != nil {
			return nil, fmt.Errorf("gitrepo: ssh key: %w", err)
		}
		cb, err := ssh.NewKnownHostsCallback(a.KnownHosts...)
		if err != nil {
			return nil, fmt.Errorf("gitrepo: known_hosts: %w", err)
		}
		pk.HostKeyCallback = cb
		return pk, nil
	}
	return nil, nil
}

// setTip moves the tip to h, whose objects the clone holds, and the tracking ref, the
// clone's own branch and HEAD with it so plain git tools pointed at an on-disk clone
// see the fleet (and the next start begins there). Callers hold mu.
//
// Refs that cannot be written (a full disk) leave the clone's refs on disk behind its
// tip, which is harmless: they still name objects the clone holds, and the next start
// fetches from there. So the tip moves anyway, with a warning.
func (r *Repo) setTip(h plumbing.Hash) {
	first := r.tip.IsZero()
	r.tip = h
	if r.opts.Dir == "" {
		_ = r.st.SetReference(plumbing.NewHashReference(r.trackRef, h))
		_ = r.st.SetReference(plumbing.NewHashReference(r.branchRef, h))
		if first {
			_ = r.st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, r.branchRef))
		}
		return
	}
	err := writeRef(r.opts.Dir, r.trackRef, h.String()+"\n")
	if err == nil {
		err = writeRef(r.opts.Dir, r.branchRef, h.String()+"\n")
	}
	if err == nil && first {
		err = writeRef(r.opts.Dir, plumbing.HEAD, "ref: "+r.branchRef.String()+"\n")
	}
	if err != nil {
		r.log.Warn("gitrepo: the clone's refs on disk stay behind its tip until they can be written", "dir", r.opts.Dir, "tip", h, "err", err)
	}
}

// Refresh fetches the branch now, so the read side sees commits others pushed. One
// that succeeds also ends a background sync's wait (OpenBackground).
func (r *Repo) Refresh(ctx context.Context) error {
	if err := r.fetch(ctx); err != nil {
		return err
	}
	r.markSynced()
	return nil
}

// Head returns the commit the clone is at, or ErrEmpty.
func (r *Repo) Head() (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.tip.IsZero() {
		return "", ErrEmpty
	}
	return r.tip.String(), nil
}

// StoreRef names one store folder at the clone's head.
type StoreRef struct {
	Cluster, Name, Dir string
	// Tree is the folder's tree hash: pass it back as ExpectTree to update safely.
	Tree string
}

// ListStores lists every store folder at the head, ordered by cluster, shard and name.
func (r *Repo) ListStores(ctx context.Context) ([]StoreRef, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.tip.IsZero() {
		return nil, nil
	}
	c, err := object.GetCommit(r.st, r.tip)
	if err != nil {
		return nil, err
	}
	storesTree, err := lookupTree(r.st, c.TreeHash, "stores")
	if err != nil || storesTree.IsZero() {
		return nil, err
	}
	var out []StoreRef
	clusters, err := object.GetTree(r.st, storesTree)
	if err != nil {
		return nil, err
	}
	for _, ce := range clusters.Entries {
		if ce.Mode == filemode.Dir {
			shards, err := object.GetTree(r.st, ce.Hash)
			if err != nil {
				return nil, err
			}
			for _, se := range shards.Entries {
				if se.Mode != filemode.Dir {
					continue
				}
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				names, err := object.GetTree(r.st, se.Hash)
				if err != nil {
					return nil, err
				}
				for _, ne := range names.Entries {
					if ne.Mode != filemode.Dir {
						continue
					}
					out = append(out, StoreRef{
						Cluster: ce.Name, Name: ne.Name,
						Dir:  "stores/" + ce.Name + "/" + se.Name + "/" + ne.Name,
						Tree: ne.Hash.String(),
					})
				}
			}
		}
	}
	return out, nil
}

// Store reads one store folder at the head: its tree hash and files (sorted by path).
// A missing folder is ErrNotFound.
func (r *Repo) Store(ctx context.Context, dir string) (string, []File, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.tip.IsZero() {
		return "", nil, fmt.Errorf("%w: %s", ErrNotFound, dir)
	}
	c, err := object.GetCommit(r.st, r.tip)
	if err != nil {
		return "", nil, err
	}
	h, err := r.trees.lookup(r.st, c.TreeHash, dir)
	if err != nil {
		return "", nil, err
	}
	if h.IsZero() {
		return "", nil, fmt.Errorf("%w: %s", ErrNotFound, dir)
	}
	files, err := readFiles(ctx, r.st, h)
	if err != nil {
		return "", nil, err
	}
	return h.String(), files, nil
}

// readFiles reads every file under tree h, paths relative to it. A read error is
// returned, never taken for the end of the tree.
func readFiles(ctx context.Context, st storer.EncodedObjectStorer, h plumbing.Hash) ([]File, error) {
	t, err := object.GetTree(st, h)
	if err != nil {
		return nil, err
	}
	var files []File
	walker := object.NewTreeWalker(t, true, nil)
	defer walker.Close()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name, e, err := walker.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if !e.Mode.IsFile() {
			continue
		}
		b, err := object.GetBlob(st, e.Hash)
		if err != nil {
			return nil, err
		}
		rd, err := b.Reader()
		if err != nil {
			return nil, err
		}
		content := make([]byte, b.Size)
		_, err = io.ReadFull(rd, content)
		rd.Close()
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: name, Content: content})
	}
}

// Commit is one commit of a store's history.
type Commit struct {
	Hash              string
	Author, Committer Signature
	AuthorTime, Time  time.Time
	Subject, Message  string
	Trailers          []Trailer
	Changes           []ChangeRecord // the trailers grouped per change
	Tree              string         // the folder's tree at this commit; empty if removed
}

// History lists the commits that changed folder dir, newest first, at most limit
// (0 = 100). Merges are followed on every parent; a commit is listed when the folder
// differs from all of its parents. A store folder's are its store's, whatever shard it
// was in then (a reshard moves it; changesOf). HistoryPage reads the pages behind these.
func (r *Repo) History(ctx context.Context, dir string, limit int) ([]Commit, error) {
	out, _, err := r.HistoryPage(ctx, dir, HistoryQuery{Limit: limit})
	return out, err
}

// walkHistory is History by walking the log, while the index is being built: at most
// limit changes of dir from the newest, or from the change from (inclusive, else the
// one after it). ErrNotFound when from is not one of dir's changes. It lists what the
// index would: each commit's changes to the store's folders at any shard (so a store
// is followed across a reshard), from the index's own diff kept to that store
// (changedFolders), folded into one by the same rule (storeChange). A dir that is not a
// store folder has no changes, as in the index.
func (r *Repo) walkHistory(ctx context.Context, dir string, from plumbing.Hash, inclusive bool, limit int) ([]Commit, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.tip.IsZero() {
		if !from.IsZero() {
			return nil, fmt.Errorf("%w: commit %s is not a change of %s", ErrNotFound, from, dir)
		}
		return nil, nil
	}
	key, _ := storeKeyOf(dir)
	var trees rawTreeCache // each commit's trees are read as its child's parent, and again when it is walked
	seen := map[plumbing.Hash]bool{r.tip: true}
	start, err := object.GetCommit(r.st, r.tip)
	if err != nil {
		return nil, err
	}
	queue := []*object.Commit{start} // kept ordered by committer time, newest first
	skipping := !from.IsZero()       // the changes up to from are not listed
	var out []Commit
	for len(queue) > 0 && len(out) < limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := queue[0]
		queue = queue[1:]
		folders, parents, err := r.changedFolders(ctx, c, &trees, &key)
		if err != nil {
			return nil, err
		}
		if len(parents) < len(c.ParentHashes) && r.incomplete.Load() {
			// Whether c changed the folder, and all that came before, is behind
			// the boundary: no answer yet rather than one cut short.
			return nil, ErrHistoryLoading
		}
		for _, p := range parents {
			if !seen[p.Hash] {
				seen[p.Hash] = true
				queue = insertByTime(queue, p)
			}
		}
		tree, changed := storeChange(folders)
		if !changed {
			continue
		}
		switch {
		case !skipping:
			out = append(out, toCommit(c, tree))
		case c.Hash == from:
			skipping = false
			if inclusive {
				out = append(out, toCommit(c, tree))
			}
		}
	}
	if skipping {
		return nil, fmt.Errorf("%w: commit %s is not a change of %s", ErrNotFound, from, dir)
	}
	return out, nil
}

func insertByTime(q []*object.Commit, c *object.Commit) []*object.Commit {
	i := len(q)
	for i > 0 && q[i-1].Committer.When.Before(c.Committer.When) {
		i--
	}
	q = append(q, nil)
	copy(q[i+1:], q[i:])
	q[i] = c
	return q
}

func toCommit(c *object.Commit, folder plumbing.Hash) Commit {
	tr := parseTrailers(c.Message)
	subject, _, _ := strings.Cut(c.Message, "\n")
	out := Commit{
		Hash:       c.Hash.String(),
		Author:     Signature{Name: c.Author.Name, Email: c.Author.Email},
		Committer:  Signature{Name: c.Committer.Name, Email: c.Committer.Email},
		AuthorTime: c.Author.When,
		Time:       c.Committer.When,
		Subject:    subject,
		Message:    c.Message,
		Trailers:   tr,
		Changes:    changeRecords(tr),
	}
	if !folder.IsZero() {
		out.Tree = folder.String()
	}
	return out
}

// uploadPackSession and receivePackSession open a session with the remote, each on
// its own copy of the endpoint: go-git's HTTP transport rewrites its session's
// endpoint after every reference discovery (to follow a redirect), and a fetch and a
// push run at once (the follower, the writer).
func (r *Repo) uploadPackSession() (transport.UploadPackSession, error) {
	ep := *r.ep
	cli, err := client.NewClient(&ep)
	if err != nil {
		return nil, err
	}
	return cli.NewUploadPackSession(&ep, r.auth)
}

func (r *Repo) receivePackSession() (transport.ReceivePackSession, error) {
	ep := *r.ep
	cli, err := client.NewClient(&ep)
	if err != nil {
		return nil, err
	}
	return cli.NewReceivePackSession(&ep, r.auth)
}
