package gitrepo

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// objectSet collects the objects a commit creates, in creation order, so the pack sent
// to the remote holds exactly them.
type objectSet struct {
	byHash map[plumbing.Hash]plumbing.EncodedObject
	order  []plumbing.Hash
	// pack is the set encoded as a pack, once asked for: the clone's copy and the
	// push are the same bytes. The set is not added to after that.
	pack *parsedPack
}

func newObjectSet() *objectSet {
	return &objectSet{byHash: map[plumbing.Hash]plumbing.EncodedObject{}}
}

func (s *objectSet) add(o plumbing.EncodedObject) plumbing.Hash {
	h := o.Hash()
	if _, ok := s.byHash[h]; !ok {
		s.byHash[h] = o
		s.order = append(s.order, h)
	}
	return h
}

// blobObject wraps content without copying it; callers hand over their buffers.
func blobObject(content []byte) *memObject {
	return &memObject{typ: plumbing.BlobObject, hash: objectHash(plumbing.BlobObject, content), content: content}
}

// gitCompare orders tree entries the way git does: a tree's name compares as if it
// ended in "/". It does so without building that name: a commit sorts its 4,096-entry
// cluster tree, and the concatenations were most of the sort's cost.
func gitCompare(a, b object.TreeEntry) int {
	an, bn := a.Name, b.Name
	n := min(len(an), len(bn))
	if c := strings.Compare(an[:n], bn[:n]); c != 0 {
		return c
	}
	// One name is a prefix of the other (or they are equal): what follows it
	// decides, a tree's name going on with '/'.
	ac, bc := nextByte(an, n, a.Mode), nextByte(bn, n, b.Mode)
	switch {
	case ac < bc:
		return -1
	case ac > bc:
		return 1
	}
	return 0
}

// nextByte is the byte at i of name as git compares it: '/' just past a tree's name,
// -1 past the end of anything else.
func nextByte(name string, i int, mode filemode.FileMode) int {
	switch {
	case i < len(name):
		return int(name[i])
	case i == len(name) && mode == filemode.Dir:
		return '/'
	}
	return -1
}

// treeObject encodes a tree in git's canonical form (entries sorted git's way, modes
// without leading zeros).
func treeObject(entries []object.TreeEntry) (*memObject, error) {
	slices.SortFunc(entries, gitCompare)
	n := 0
	for _, e := range entries {
		n += len(e.Name) + 28
	}
	b := make([]byte, 0, n)
	for _, e := range entries {
		switch e.Mode {
		case filemode.Dir:
			b = append(b, "40000 "...)
		case filemode.Regular:
			b = append(b, "100644 "...)
		default:
			b = strconv.AppendUint(b, uint64(e.Mode), 8)
			b = append(b, ' ')
		}
		b = append(b, e.Name...)
		b = append(b, 0)
		b = append(b, e.Hash[:]...)
	}
	return &memObject{typ: plumbing.TreeObject, hash: objectHash(plumbing.TreeObject, b), content: b}, nil
}

// buildFolder writes the blobs and trees of a store folder's files into objs and
// returns the folder's tree hash. Files must be validated (clean, unique paths).
func buildFolder(files []File, objs *objectSet) (plumbing.Hash, error) {
	type dir struct {
		entries []object.TreeEntry
		subdirs map[string]*dir
	}
	newDir := func() *dir { return &dir{subdirs: map[string]*dir{}} }
	root := newDir()
	for _, f := range files {
		d := root
		parts := strings.Split(f.Path, "/")
		for _, p := range parts[:len(parts)-1] {
			sd, ok := d.subdirs[p]
			if !ok {
				sd = newDir()
				d.subdirs[p] = sd
			}
			d = sd
		}
		h := objs.add(blobObject(f.Content))
		d.entries = append(d.entries, object.TreeEntry{Name: parts[len(parts)-1], Mode: filemode.Regular, Hash: h})
	}
	var write func(d *dir) (plumbing.Hash, error)
	write = func(d *dir) (plumbing.Hash, error) {
		for name, sd := range d.subdirs {
			h, err := write(sd)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			d.entries = append(d.entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
		o, err := treeObject(d.entries)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		return objs.add(o), nil
	}
	return write(root)
}

// overlay is a copy-on-write view of a root tree: only the trees on the paths of
// changed folders are loaded and rewritten; every other subtree keeps its hash.
type overlay struct {
	s     storer.EncodedObjectStorer
	root  plumbing.Hash // zero for an empty branch
	nodes map[string]*node
	objs  *objectSet
	big   *bigTrees // nil: every tree is decoded from the storage
}

type node struct {
	entries map[string]object.TreeEntry
	dirty   bool
	orig    map[string]bool // folder names present in the base (for the deletion guard)
}

func newOverlay(s storer.EncodedObjectStorer, root plumbing.Hash, objs *objectSet) *overlay {
	return &overlay{s: s, root: root, nodes: map[string]*node{}, objs: objs}
}

func (o *overlay) load(h plumbing.Hash) (*node, error) {
	n := &node{entries: map[string]object.TreeEntry{}, orig: map[string]bool{}}
	if h.IsZero() {
		return n, nil
	}
	if b := o.big.get(h); b != nil {
		return b, nil
	}
	t, err := object.GetTree(o.s, h)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: read tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		n.entries[e.Name] = e
		if e.Mode == filemode.Dir {
			n.orig[e.Name] = true
		}
	}
	return n, nil
}

// node returns the (possibly new, empty) tree at dir ("" is the root).
func (o *overlay) node(dir string) (*node, error) {
	if n, ok := o.nodes[dir]; ok {
		return n, nil
	}
	var h plumbing.Hash
	if dir == "" {
		h = o.root
	} else {
		parent, err := o.node(parentDir(dir))
		if err != nil {
			return nil, err
		}
		e, ok := parent.entries[path.Base(dir)]
		if ok {
			if e.Mode != filemode.Dir {
				return nil, fmt.Errorf("%w: %s is a file in the fleet repository", ErrInvalid, dir)
			}
			h = e.Hash
		}
	}
	n, err := o.load(h)
	if err != nil {
		return nil, err
	}
	o.nodes[dir] = n
	return n, nil
}

func parentDir(dir string) string {
	p := path.Dir(dir)
	if p == "." {
		return ""
	}
	return p
}

// get returns the tree hash of folder dir, zero if absent.
func (o *overlay) get(dir string) (plumbing.Hash, error) {
	parent, err := o.node(parentDir(dir))
	if err != nil {
		return plumbing.ZeroHash, err
	}
	e, ok := parent.entries[path.Base(dir)]
	if !ok {
		return plumbing.ZeroHash, nil
	}
	if e.Mode != filemode.Dir {
		return plumbing.ZeroHash, fmt.Errorf("%w: %s is a file in the fleet repository", ErrInvalid, dir)
	}
	return e.Hash, nil
}

// set points folder dir at tree h, or removes it when h is zero.
func (o *overlay) set(dir string, h plumbing.Hash) error {
	parent, err := o.node(parentDir(dir))
	if err != nil {
		return err
	}
	name := path.Base(dir)
	if h.IsZero() {
		delete(parent.entries, name)
	} else {
		parent.entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	return o.dirtyUp(parentDir(dir))
}

// setFile puts a regular file with blob h at p, creating the folders on its way. A
// file already there with that blob leaves the tree as it was.
func (o *overlay) setFile(p string, h plumbing.Hash) error {
	parent, err := o.node(parentDir(p))
	if err != nil {
		return err
	}
	name := path.Base(p)
	if e, ok := parent.entries[name]; ok {
		if e.Mode == filemode.Dir {
			return fmt.Errorf("%w: %s is a folder in the fleet repository", ErrInvalid, p)
		}
		if e.Hash == h {
			return nil
		}
	}
	parent.entries[name] = object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h}
	return o.dirtyUp(parentDir(p))
}

// hasFile reports whether a regular file is at p.
func (o *overlay) hasFile(p string) (bool, error) {
	parent, err := o.node(parentDir(p))
	if err != nil {
		return false, err
	}
	e, ok := parent.entries[path.Base(p)]
	return ok && e.Mode != filemode.Dir, nil
}

// removeFile removes the regular file at p, if there. A folder it leaves empty
// goes with it when the tree is written (git keeps no empty folder).
func (o *overlay) removeFile(p string) error {
	parent, err := o.node(parentDir(p))
	if err != nil {
		return err
	}
	name := path.Base(p)
	if e, ok := parent.entries[name]; !ok || e.Mode == filemode.Dir {
		return nil
	}
	delete(parent.entries, name)
	return o.dirtyUp(parentDir(p))
}

// dirtyUp marks dir and every folder above it to be written again.
func (o *overlay) dirtyUp(dir string) error {
	for d := dir; ; d = parentDir(d) {
		n, err := o.node(d)
		if err != nil {
			return err
		}
		n.dirty = true
		if d == "" {
			return nil
		}
	}
}

// write encodes every dirty tree bottom-up and returns the new root hash. A tree left
// empty is dropped from its parent (git does not keep empty folders).
func (o *overlay) write() (plumbing.Hash, error) {
	dirs := make([]string, 0, len(o.nodes))
	for d, n := range o.nodes {
		if n.dirty {
			dirs = append(dirs, d)
		}
	}
	depth := func(d string) int {
		if d == "" {
			return 0
		}
		return strings.Count(d, "/") + 1
	}
	sort.Slice(dirs, func(i, j int) bool { return depth(dirs[i]) > depth(dirs[j]) })
	var root plumbing.Hash
	for _, d := range dirs {
		n := o.nodes[d]
		var h plumbing.Hash
		if len(n.entries) > 0 {
			entries := make([]object.TreeEntry, 0, len(n.entries))
			for _, e := range n.entries {
				entries = append(entries, e)
			}
			t, err := treeObject(entries)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			h = o.objs.add(t)
			o.big.put(h, n.entries)
		}
		if d == "" {
			root = h
			continue
		}
		parent := o.nodes[parentDir(d)]
		name := path.Base(d)
		if h.IsZero() {
			delete(parent.entries, name)
		} else {
			parent.entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		}
		parent.dirty = true
	}
	if root.IsZero() {
		// An empty root tree is still a valid commit tree.
		t, err := treeObject(nil)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		root = o.objs.add(t)
	}
	return root, nil
}

// removedFolders lists store folders (depth-4 paths under stores/) that existed in the
// base and are gone now, for the deletion guard. Only loaded shard nodes can differ from
// the base, so this looks at nothing else.
func (o *overlay) removedFolders() []string {
	var out []string
	for d, n := range o.nodes {
		if !n.dirty || strings.Count(d, "/") != 2 || !strings.HasPrefix(d, "stores/") {
			continue
		}
		for name := range n.orig {
			if e, ok := n.entries[name]; !ok || e.Mode != filemode.Dir {
				out = append(out, d+"/"+name)
			}
		}
	}
	// Whole shards or clusters dropped: only possible when emptied, which the shard
	// check above already covers; but check loaded ancestors too in case a caller path
	// removed a subtree above the store level.
	for d, n := range o.nodes {
		if !n.dirty || strings.Count(d, "/") >= 2 || (d != "stores" && !strings.HasPrefix(d, "stores/")) {
			continue
		}
		for name := range n.orig {
			if _, ok := n.entries[name]; !ok {
				child := d + "/" + name
				if cn, ok := o.nodes[child]; !ok || len(cn.entries) != 0 {
					out = append(out, child+"/")
				}
			}
		}
	}
	return out
}

// lookupTree resolves dir ("" = root) under root, returning zero if absent.
func lookupTree(s storer.EncodedObjectStorer, root plumbing.Hash, dir string) (plumbing.Hash, error) {
	h := root
	if dir == "" || h.IsZero() {
		return h, nil
	}
	for _, el := range strings.Split(dir, "/") {
		t, err := object.GetTree(s, h)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		found := false
		for _, e := range t.Entries {
			if e.Name == el && e.Mode == filemode.Dir {
				h, found = e.Hash, true
				break
			}
		}
		if !found {
			return plumbing.ZeroHash, nil
		}
	}
	return h, nil
}

// bigTrees keeps the entries of the few largest trees the writer wrote last, by hash:
// the next commit starts from them (its base is usually the last commit) instead of
// decoding them again. At 4,096 shards every commit rewrites the cluster tree of up to
// 4,096 entries, and decoding it into entries was ~4 ms of each commit.
type bigTrees struct {
	mu    sync.Mutex
	trees map[plumbing.Hash]map[string]object.TreeEntry
	order []plumbing.Hash // oldest first
}

const (
	bigTreeEntries = 256 // smaller trees decode faster than they copy
	bigTreesKept   = 8
)

// get returns a node of tree h to change, or nil if h is not kept. A nil cache keeps
// nothing.
func (c *bigTrees) get(h plumbing.Hash) *node {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	entries := c.trees[h]
	c.mu.Unlock()
	if entries == nil {
		return nil
	}
	n := &node{entries: maps.Clone(entries), orig: make(map[string]bool, len(entries))}
	for name, e := range entries {
		if e.Mode == filemode.Dir {
			n.orig[name] = true
		}
	}
	return n
}

// put keeps a copy of tree h's entries if the tree is big.
func (c *bigTrees) put(h plumbing.Hash, entries map[string]object.TreeEntry) {
	if c == nil || len(entries) < bigTreeEntries {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trees == nil {
		c.trees = map[plumbing.Hash]map[string]object.TreeEntry{}
	}
	if _, ok := c.trees[h]; ok {
		return
	}
	c.trees[h] = maps.Clone(entries)
	c.order = append(c.order, h)
	if len(c.order) > bigTreesKept {
		delete(c.trees, c.order[0])
		c.order = c.order[1:]
	}
}
