package fleet

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/storefleet/storefleet/internal/store"
)

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
		if ref, ok := store.ParseDir(d); ok {
			idx[ref.Name] = &indexed{store: store.Store{Name: ref.Name, Cluster: ref.Cluster}, dir: d}
		}
	}
	s.mu.Lock()
	s.resetLocked(idx)
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
		if ref, ok := store.ParseDir(d); ok && strings.HasPrefix(d, prefix) {
			now[ref.Name] = &indexed{store: store.Store{Name: ref.Name, Cluster: ref.Cluster}, dir: d}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n, e := range s.index {
		if _, ok := now[n]; !ok && strings.HasPrefix(e.dir, prefix) {
			s.dropLocked(n)
			names = append(names, n)
		}
	}
	for n, e := range now {
		s.putLocked(n, e)
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
	if errors.Is(err, store.ErrNotFound) {
		// The folder listed when the index was built may have moved to another
		// shard since (a reshard): the store is where the head's count puts it.
		if at, aerr := s.dirOf(ctx, e.store); aerr == nil && at != dir {
			dir = at
			_, files, err = s.repo.ReadDir(ctx, dir)
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		s.mu.Lock()
		if s.index[name] == e {
			s.dropLocked(name)
		}
		s.mu.Unlock()
		return indexed{}, store.Errorf(store.ENOTFOUND, "store %q not found", name)
	}
	if err != nil {
		return indexed{}, err
	}
	st, state, err := s.render.Parse(files)
	st = s.owned(st)
	if err != nil {
		// A folder someone edited by hand must not stop the API; it is reported as
		// unreadable and logged so an operator can fix it.
		s.log.Warn("unreadable store folder", "dir", dir, "err", err)
		s.mu.Lock()
		s.unreadableLocked(name, e)
		s.mu.Unlock()
		return indexed{}, fmt.Errorf("%w: %s: %v", errUnreadable, dir, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.index[name]; ok && cur != e {
		// A commit replaced the entry meanwhile; it is newer than what was read.
		return *cur, nil
	}
	s.readLocked(name, e, st, state)
	return *e, nil
}

// refresh re-reads one store folder into the index after the writer reported that it
// differs from what the index holds (an outside push). The store is read where the
// head's shard count puts it, so a folder that a reshard moved is found at its new
// shard whichever of the move's two folders the caller saw; seen (the folder the
// caller saw, or "") is read only if that is not there: a folder pushed by hand to
// another shard.
func (s *Service) refresh(ctx context.Context, name, cluster, seen string) {
	dir, err := s.dirOf(ctx, store.Store{Cluster: cluster, Name: name})
	if err != nil {
		return
	}
	tree, files, err := s.repo.ReadDir(ctx, dir)
	if errors.Is(err, store.ErrNotFound) && seen != "" && seen != dir {
		dir = seen
		tree, files, err = s.repo.ReadDir(ctx, dir)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, store.ErrNotFound) {
		s.dropLocked(name)
		return
	}
	if err != nil {
		return
	}
	if st, state, err := s.render.Parse(files); err == nil && st.Name == name {
		s.putLocked(name, &indexed{store: s.owned(st), state: state, loaded: true, dir: dir, tree: tree})
	}
}

// owned gives a store read from its files its tenant: the one its files name, or
// the default tenant for files from before tenants (or pushed by hand without one).
func (s *Service) owned(st store.Store) store.Store {
	st.Tenant = store.Owner(st.Tenant, s.tenant)
	return st
}
