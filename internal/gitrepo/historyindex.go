package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/storefleet/storefleet/internal/store"
)

// The history index answers a store's history without walking the log: for every store
// folder, the commits that changed it (its tree differs from every parent's), oldest
// first. It is kept up to date from the clone's tip whenever a history is asked for (a
// handful of new commits then, whether this writer made them or a fetch brought them),
// and on disk beside the clone, one line per commit, so a restart reads it back instead
// of walking 100,000 commits. A tip that does not descend from the indexed one (a
// force-push rewrote the branch) makes it start over, in the background.
//
// A store's history follows the store, not one path: a reshard (`gitops-api reshard`,
// one commit) moves every store folder to another shard, and a history read from the
// new folder alone would start at that commit. So the index also knows every folder
// each store (storeKey: cluster and name) had, and a history merges theirs in commit
// order; the reshard commit itself is listed once, with the folder's tree after it
// (leftIn). The log walk (walkHistory) answers by the same rules, from the same diff
// (changedFolders), so that a history does not change when the index takes over.

var (
	// errIndexBuilding: the index is being built and cannot answer yet; the caller
	// walks the log instead.
	errIndexBuilding = errors.New("gitrepo: history index is being built")
	// errHistoryRewritten: the tip does not descend from the commit indexed last,
	// so what is indexed may name commits the branch no longer holds.
	errHistoryRewritten = errors.New("gitrepo: the branch's history was rewritten")
)

// folderChange is one commit that changed a store folder, and the folder's tree there
// (zero: removed).
type folderChange struct {
	commit, tree plumbing.Hash
	seq          int // the commit's place in the index: parents before children
}

type historyIndex struct {
	path string // "" for a clone in memory: nothing is kept across restarts
	log  *slog.Logger

	// ready is set once every commit up to some tip has been indexed; until then
	// (the first build, a rebuild after a rewrite) History walks the log.
	ready    atomic.Bool
	building atomic.Bool

	mu    sync.Mutex
	tip   plumbing.Hash
	seen  map[plumbing.Hash]struct{}
	byDir map[string][]folderChange
	// byStore lists, for each store, the folders it has had, one per shard count it
	// lived at.
	byStore map[storeKey][]string
	n       int          // commits indexed: the next one's seq
	f       *os.File     // append-only, nil when the index lives in memory only
	trees   rawTreeCache // the index's own, so reads at the tip do not evict its trees

	// closed: the Repo is closed; the file is not opened again by a build that
	// was still on its way.
	closed bool
}

// historyIndexPath is where the index of the clone in dir is kept: beside it, like the
// pending requests' log, so that healing the clone (which moves it aside) keeps it; the
// index checks itself against the tip anyway.
func historyIndexPath(dir string) string {
	if dir == "" {
		return ""
	}
	return dir + ".history.idx"
}

// openHistoryIndex reads back what an earlier process indexed. A missing, torn or
// unreadable file is an empty index (rebuilt); it never stops the start.
func openHistoryIndex(path string, log *slog.Logger) *historyIndex {
	x := &historyIndex{path: path, log: log}
	x.reset()
	if path == "" {
		return x
	}
	if err := x.load(); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("gitrepo: the history index is rebuilt", "path", path, "err", err)
		}
		x.reset()
		_ = os.Remove(path)
	}
	return x
}

func (x *historyIndex) reset() {
	x.tip = plumbing.ZeroHash
	x.seen = map[plumbing.Hash]struct{}{}
	x.byDir = map[string][]folderChange{}
	x.byStore = map[storeKey][]string{}
	x.n = 0
}

// add records that the commit at seq changed folder dir to tree.
func (x *historyIndex) add(dir string, c, tree plumbing.Hash, seq int) {
	if _, ok := x.byDir[dir]; !ok {
		if k, ok := storeKeyOf(dir); ok {
			x.byStore[k] = append(x.byStore[k], dir)
		}
	}
	x.byDir[dir] = append(x.byDir[dir], folderChange{commit: c, tree: tree, seq: seq})
}

// storeKey is a store's identity across shard counts: every folder
// stores/<cluster>/<shard>/<name> with its cluster and name is the store's, whichever
// shard a reshard (or a hand) put it in.
type storeKey struct{ cluster, name string }

func storeKeyOf(dir string) (storeKey, bool) {
	ref, ok := store.ParseDir(dir)
	return storeKey{cluster: ref.Cluster, name: ref.Name}, ok
}

// leftIn reports whether folder a's change (to tree ta; zero: removed) is the store's
// change at a commit that changed both a and b, two folders of one store, rather than
// b's: a reshard empties one and fills the other, and the history shows the folder it
// left the store in. Two filled at once (only by hand) go to the first by path, not to
// whichever was met first, so that the index and the log walk pick the same.
func leftIn(a string, ta plumbing.Hash, b string, tb plumbing.Hash) bool {
	if ta.IsZero() != tb.IsZero() {
		return !ta.IsZero()
	}
	return a < b
}

// storeChange is the change a commit made to a store, from the changes it made to the
// store's folders (changedFolders): one folder's, by leftIn; false when it changed none.
func storeChange(folders map[string]plumbing.Hash) (plumbing.Hash, bool) {
	var dir string
	var tree plumbing.Hash
	found := false
	for d, t := range folders {
		if !found || leftIn(d, t, dir, tree) {
			dir, tree, found = d, t, true
		}
	}
	return tree, found
}

// changesOf is every change of the store whose folder is dir (at any shard count), in
// index order: a commit that changed several of its folders (a reshard moving it) is
// one change, by leftIn. A dir that is not a store folder is that folder's changes
// alone.
func (x *historyIndex) changesOf(dir string) []folderChange {
	k, ok := storeKeyOf(dir)
	if !ok {
		return x.byDir[dir]
	}
	dirs := x.byStore[k]
	if len(dirs) == 1 {
		// Also when dir is the store's folder at another count than the one it had
		// (removed before a reshard): the history is the store's, as the walk finds it.
		return x.byDir[dirs[0]]
	}
	type change struct {
		folderChange
		dir string
	}
	var all []change
	for _, d := range dirs {
		for _, fc := range x.byDir[d] {
			all = append(all, change{fc, d})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	out := make([]folderChange, 0, len(all))
	var from string // the folder out's last change is of
	for _, c := range all {
		if n := len(out); n > 0 && out[n-1].seq == c.seq {
			if leftIn(c.dir, c.tree, from, out[n-1].tree) {
				out[n-1], from = c.folderChange, c.dir
			}
			continue
		}
		out = append(out, c.folderChange)
		from = c.dir
	}
	return out
}

// load replays the file: each line is a commit and the folders it changed, as
// "<commit> <dir>=<tree> ...", parents before children, so the last line is the tip
// indexed. A line cut short by a crash is dropped (and cut off the file).
func (x *historyIndex) load() error {
	b, err := os.ReadFile(x.path)
	if err != nil {
		return err
	}
	end := bytes.LastIndexByte(b, '\n') + 1
	sc := bufio.NewScanner(bytes.NewReader(b[:end]))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !plumbing.IsHash(fields[0]) {
			return fmt.Errorf("malformed line %q", truncate(sc.Text(), 80))
		}
		c := plumbing.NewHash(fields[0])
		for _, f := range fields[1:] {
			dir, tree, ok := strings.Cut(f, "=")
			if !ok || tree != "" && !plumbing.IsHash(tree) {
				return fmt.Errorf("malformed entry %q", truncate(f, 80))
			}
			x.add(dir, c, plumbing.NewHash(tree), x.n)
		}
		x.seen[c] = struct{}{}
		x.tip = c
		x.n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	f, err := os.OpenFile(x.path, os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(end)); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Seek(int64(end), io.SeekStart); err != nil {
		f.Close()
		return err
	}
	x.f = f
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// close closes the file.
func (x *historyIndex) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closed = true
	if x.f != nil {
		x.f.Close()
		x.f = nil
	}
}

// indexedCommit is one commit as the index records it.
type indexedCommit struct {
	commit  plumbing.Hash
	changes map[string]plumbing.Hash // folder → its tree there
}

// catchUp indexes the commits between the indexed tip and tip. Callers hold x.mu.
// errHistoryRewritten if tip does not descend from the indexed tip: nothing is changed
// then.
func (x *historyIndex) catchUp(ctx context.Context, r *Repo, tip plumbing.Hash) error {
	if tip.IsZero() || tip == x.tip {
		return nil
	}
	if _, ok := x.seen[tip]; ok {
		return errHistoryRewritten // moved back: later commits indexed are gone
	}
	order, reached, err := x.newCommits(ctx, r, tip)
	if err != nil {
		return err
	}
	if !x.tip.IsZero() && !reached {
		return errHistoryRewritten
	}
	var line bytes.Buffer
	var lines bytes.Buffer
	for _, c := range order {
		ic, err := r.folderChanges(ctx, c, &x.trees)
		if err != nil {
			return err
		}
		line.Reset()
		line.WriteString(c.Hash.String())
		for dir, tree := range ic.changes {
			x.add(dir, c.Hash, tree, x.n)
			line.WriteByte(' ')
			line.WriteString(dir)
			line.WriteByte('=')
			if !tree.IsZero() {
				line.WriteString(tree.String())
			}
		}
		line.WriteByte('\n')
		lines.Write(line.Bytes())
		x.seen[c.Hash] = struct{}{}
		x.tip = c.Hash
		x.n++
		if lines.Len() > 1<<20 {
			x.persist(&lines)
		}
	}
	x.persist(&lines)
	return nil
}

// persist appends the buffered lines to the file. A failed write (a full disk) drops
// the file: the index goes on in memory, and the next start builds it again.
func (x *historyIndex) persist(lines *bytes.Buffer) {
	defer lines.Reset()
	if x.path == "" || lines.Len() == 0 || x.closed {
		return
	}
	if x.f == nil {
		f, err := os.OpenFile(x.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			x.log.Warn("gitrepo: the history index is kept in memory only", "path", x.path, "err", err)
			x.path = ""
			return
		}
		x.f = f
	}
	if _, err := x.f.Write(lines.Bytes()); err != nil {
		x.log.Warn("gitrepo: the history index is kept in memory only", "path", x.path, "err", err)
		x.f.Close()
		x.f = nil
		_ = os.Remove(x.path)
		x.path = ""
	}
}

// newCommits lists the commits reachable from tip that are not indexed, parents before
// children, and whether the walk met the indexed tip (tip descends from it).
func (x *historyIndex) newCommits(ctx context.Context, r *Repo, tip plumbing.Hash) ([]*object.Commit, bool, error) {
	type frame struct {
		c    *object.Commit
		next int // parents pushed so far
	}
	var order []*object.Commit
	reached := false
	visited := map[plumbing.Hash]bool{tip: true}
	c, err := r.commit(tip)
	if err != nil {
		return nil, false, err
	}
	stack := []frame{{c: c}}
	// Iterative post-order: a commit is listed after all its parents.
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		top := &stack[len(stack)-1]
		if top.next < len(top.c.ParentHashes) {
			ph := top.c.ParentHashes[top.next]
			top.next++
			if ph == x.tip {
				reached = true
			}
			if visited[ph] {
				continue
			}
			visited[ph] = true
			if _, ok := x.seen[ph]; ok {
				continue
			}
			p, err := r.commit(ph)
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				continue // shallow boundary: history ends here
			}
			if err != nil {
				return nil, false, err
			}
			stack = append(stack, frame{c: p})
			continue
		}
		order = append(order, top.c)
		stack = stack[:len(stack)-1]
	}
	return order, reached, nil
}

// commit reads one commit under the storage lock.
func (r *Repo) commit(h plumbing.Hash) (*object.Commit, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return object.GetCommit(r.st, h)
}

// folderChanges tells which store folders commit c changed (changedFolders).
func (r *Repo) folderChanges(ctx context.Context, c *object.Commit, cache *rawTreeCache) (indexedCommit, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	changes, _, err := r.changedFolders(ctx, c, cache, nil)
	if err != nil {
		return indexedCommit{}, err
	}
	return indexedCommit{commit: c.Hash, changes: changes}, nil
}

// changedFolders tells which store folders commit c changed, only's alone when set
// (walkStoreFolders): those whose tree differs from every parent's (a merge lists only
// what it brought in against each side), all of them for a commit without parents in
// the clone. It also returns the parents the clone holds, fewer than c names at a
// shallow boundary. The index and the log walk both take a commit's changes from here.
// Callers hold r.mu (at least for reading).
func (r *Repo) changedFolders(ctx context.Context, c *object.Commit, cache *rawTreeCache, only *storeKey) (map[string]plumbing.Hash, []*object.Commit, error) {
	raw := func(h plumbing.Hash) ([]byte, error) { return cache.raw(r.st, h) }
	storesOf := func(root plumbing.Hash) (plumbing.Hash, error) {
		b, err := raw(root)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		return rawSubtree(b, "stores")
	}
	mine, err := storesOf(c.TreeHash)
	if err != nil {
		return nil, nil, err
	}
	var out map[string]plumbing.Hash
	var parents []*object.Commit
	for _, ph := range c.ParentHashes {
		p, err := object.GetCommit(r.st, ph)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		theirs, err := storesOf(p.TreeHash)
		if err != nil {
			return nil, nil, err
		}
		changed := map[string]plumbing.Hash{}
		if err := walkStoreFolders(ctx, raw, theirs, mine, only, func(dir string, tree plumbing.Hash) { changed[dir] = tree }); err != nil {
			return nil, nil, err
		}
		if len(parents) == 0 {
			out = changed
		} else {
			for dir := range out {
				if _, ok := changed[dir]; !ok {
					delete(out, dir)
				}
			}
		}
		parents = append(parents, p)
	}
	if len(parents) == 0 {
		out = map[string]plumbing.Hash{}
		if err := walkStoreFolders(ctx, raw, plumbing.ZeroHash, mine, only, func(dir string, tree plumbing.Hash) { out[dir] = tree }); err != nil {
			return nil, nil, err
		}
	}
	return out, parents, nil
}

// build brings the index to the clone's tip in the background, starting over when the
// branch was rewritten, and marks it ready. One build runs at a time.
func (x *historyIndex) build(r *Repo) {
	if !x.building.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer x.building.Store(false)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-r.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.closed {
			return
		}
		err := x.catchUp(ctx, r, r.currentTip())
		if errors.Is(err, errHistoryRewritten) {
			r.log.Info("gitrepo: the branch's history was rewritten; the history index is built again", "was", x.tip)
			x.restart()
			err = x.catchUp(ctx, r, r.currentTip())
		}
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("gitrepo: the history index could not be built; histories walk the log", "err", err)
			}
			return
		}
		x.ready.Store(true)
	}()
}

// restart empties the index and its file. Callers hold x.mu.
func (x *historyIndex) restart() {
	x.reset()
	if x.f != nil {
		x.f.Close()
		x.f = nil
	}
	if x.path != "" {
		_ = os.Remove(x.path)
	}
}

func (r *Repo) currentTip() plumbing.Hash {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tip
}

// HistoryQuery selects one page of a folder's history (HistoryPage).
type HistoryQuery struct {
	// Limit is how many commits the page holds at most (0 = 100).
	Limit int
	// Before starts the page at the change after this commit (the last commit of the
	// page before); At starts it at this commit itself. Either must be one of the
	// folder's changes, else ErrNotFound. Both empty: the page starts at the newest.
	Before, At string
}

// HistoryPage lists one page of the commits that changed folder dir, newest first, as
// History does, and whether older changes follow the page: it reads one commit more
// than the limit to know. From the index, else (while it is built) by walking the log.
func (r *Repo) HistoryPage(ctx context.Context, dir string, q HistoryQuery) ([]Commit, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	from, inclusive := q.Before, false
	if q.At != "" {
		if q.Before != "" {
			return nil, false, errors.New("gitrepo: a history page starts either before or at a commit, not both")
		}
		from, inclusive = q.At, true
	}
	var start plumbing.Hash
	if from != "" {
		start = plumbing.NewHash(from)
		if !plumbing.IsHash(from) || start.IsZero() { // the zero id is no commit (and zero start means none)
			return nil, false, fmt.Errorf("%w: commit %q", ErrNotFound, from)
		}
	}
	out, err := r.indexedHistory(ctx, dir, start, inclusive, limit+1)
	if errors.Is(err, errIndexBuilding) {
		out, err = r.walkHistory(ctx, dir, start, inclusive, limit+1)
	}
	if err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// indexedHistory answers History from the index: at most limit changes of dir, from
// the newest, or from the change from (inclusive, else the one after it; ErrNotFound
// when from is not one of dir's changes). errIndexBuilding while the index cannot
// answer (it is being built or rebuilt).
func (r *Repo) indexedHistory(ctx context.Context, dir string, from plumbing.Hash, inclusive bool, limit int) ([]Commit, error) {
	x := r.hist
	if !x.ready.Load() {
		return nil, errIndexBuilding
	}
	x.mu.Lock()
	err := x.catchUp(ctx, r, r.currentTip())
	if errors.Is(err, errHistoryRewritten) {
		x.ready.Store(false)
		x.mu.Unlock()
		x.build(r)
		return nil, errIndexBuilding
	}
	if err != nil {
		x.mu.Unlock()
		return nil, err
	}
	all := x.changesOf(dir)
	i := len(all) - 1
	if !from.IsZero() {
		// The cursor is looked for from the newest: pages are mostly read from the
		// first on, so it is near the end of the slice.
		for i >= 0 && all[i].commit != from {
			i--
		}
		if i < 0 {
			x.mu.Unlock()
			return nil, fmt.Errorf("%w: commit %s is not a change of %s", ErrNotFound, from, dir)
		}
		if !inclusive {
			i--
		}
	}
	page := make([]folderChange, 0, max(0, min(limit, i+1)))
	for ; i >= 0 && len(page) < limit; i-- {
		page = append(page, all[i])
	}
	x.mu.Unlock()
	out := make([]Commit, 0, len(page))
	for _, fc := range page {
		c, err := r.commit(fc.commit)
		if err != nil {
			return nil, err
		}
		out = append(out, toCommit(c, fc.tree))
	}
	return out, nil
}

// HistoryIndexed reports whether histories are answered from the index; false while it
// is built (the first start on a long history, or after a rewrite), when History walks
// the log instead.
func (r *Repo) HistoryIndexed() bool { return r.hist.ready.Load() }
