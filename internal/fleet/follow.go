package fleet

import (
	"context"
	"slices"

	"github.com/storefleet/storefleet/internal/store"
)

// Refreshed re-reads the store folders dirs at the fleet's head after the head moved
// past commits this process may not have made (another replica's, an operator's): a
// folder still there replaces its index entry, one gone drops it. It returns the
// names of the stores in dirs. Unlike Resync it reads only the folders named, so a
// replica can follow the others' commits every second at any fleet size.
func (s *Service) Refreshed(ctx context.Context, dirs []string) []string {
	var names []string
	for _, d := range dirs {
		ref, ok := store.ParseDir(d)
		if !ok {
			continue
		}
		s.refresh(ctx, ref.Name, ref.Cluster, d)
		names = append(names, ref.Name)
	}
	return names
}

// Followed is Refreshed for the follower, which knows each changed folder's tree at
// the head (trees: folder → tree hash, "" where the folder is gone). A folder whose
// entry was committed or last read at that very tree is not read again: the head
// moved past this process's own commits, whose folders hold exactly what the index
// was given when they were committed. Every other folder is read as Refreshed reads
// it. It returns the names of the stores in trees, in the order of their folders.
func (s *Service) Followed(ctx context.Context, trees map[string]string) []string {
	dirs := make([]string, 0, len(trees))
	for d := range trees {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	var names []string
	for _, d := range dirs {
		ref, ok := store.ParseDir(d)
		if !ok {
			continue
		}
		names = append(names, ref.Name)
		if s.holds(ref.Name, d, trees[d]) {
			continue
		}
		s.refresh(ctx, ref.Name, ref.Cluster, d)
	}
	return names
}

// holds reports whether name's index entry was committed or read from folder dir
// at tree.
func (s *Service) holds(name, dir, tree string) bool {
	if tree == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.index[name]
	return ok && e.loaded && !e.unreadable && e.dir == dir && e.tree == tree
}

// Known reports whether the index holds the store name (without reading its folder).
func (s *Service) Known(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.index[name]
	return ok
}

// TenantCounts returns how many stores each tenant owns, for the stores-by-tenant
// gauge. A store whose folder is not read yet counts under "" (its tenant is not
// known until the background warm-up reads it).
func (s *Service) TenantCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, e := range s.index {
		t := e.store.Tenant
		switch {
		case !e.loaded && !e.unreadable:
			t = ""
		case t == "":
			t = s.tenant
		}
		out[t]++
	}
	return out
}
