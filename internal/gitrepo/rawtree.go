package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Diffing two commits' store folders reads trees as git stores them — entries
// "<mode> <name>\0<20-byte hash>", sorted — and walks both sides in step: entries whose
// bytes are equal (all but one or two of a 4,096-entry cluster tree from one commit to
// the next) are skipped without being decoded, and nothing is put in a map. Decoding
// each cluster tree into go-git's Tree and then a map was most of the history index's
// build (docs/benchmarks.md).

// rawTreeEntry is one entry of an encoded tree.
type rawTreeEntry struct {
	name []byte
	dir  bool
	hash plumbing.Hash
	end  int // offset of the next entry
}

var errBadTree = errors.New("gitrepo: malformed tree object")

// nextRawEntry parses the entry of b starting at off.
func nextRawEntry(b []byte, off int) (rawTreeEntry, error) {
	sp := bytes.IndexByte(b[off:], ' ')
	if sp < 0 {
		return rawTreeEntry{}, errBadTree
	}
	mode := b[off : off+sp]
	nameAt := off + sp + 1
	nul := bytes.IndexByte(b[nameAt:], 0)
	if nul < 0 || nameAt+nul+1+20 > len(b) {
		return rawTreeEntry{}, errBadTree
	}
	e := rawTreeEntry{name: b[nameAt : nameAt+nul], dir: string(mode) == "40000", end: nameAt + nul + 1 + 20}
	copy(e.hash[:], b[nameAt+nul+1:e.end])
	return e, nil
}

// treeOrder compares two entries in git's tree order, where a folder sorts as if its
// name ended in '/'.
func treeOrder(a rawTreeEntry, b rawTreeEntry) int {
	n := min(len(a.name), len(b.name))
	if c := bytes.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	next := func(e rawTreeEntry) int {
		switch {
		case len(e.name) > n:
			return int(e.name[n])
		case e.dir:
			return '/'
		}
		return 0
	}
	return next(a) - next(b)
}

// readRawTree returns tree h's encoded entries; nothing for the zero hash.
func readRawTree(s storer.EncodedObjectStorer, h plumbing.Hash) ([]byte, error) {
	if h.IsZero() {
		return nil, nil
	}
	o, err := s.EncodedObject(plumbing.TreeObject, h)
	if err != nil {
		return nil, err
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b := make([]byte, o.Size())
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, fmt.Errorf("gitrepo: read tree %s: %w", h, err)
	}
	return b, nil
}

// rawSubtree is the folder name's tree in the encoded tree b, zero if it has none.
func rawSubtree(b []byte, name string) (plumbing.Hash, error) {
	for off := 0; off < len(b); {
		e, err := nextRawEntry(b, off)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if e.dir && string(e.name) == name {
			return e.hash, nil
		}
		off = e.end
	}
	return plumbing.ZeroHash, nil
}

// walkChangedFolders calls fn with every store folder (stores/<cluster>/<shard>/<name>)
// whose tree differs between the stores/ trees a and b (zero: none), and its tree at b
// (zero: removed there), in tree order. Only subtrees that differ are read, through
// raw (readRawTree or a cache of it).
func walkChangedFolders(ctx context.Context, raw func(plumbing.Hash) ([]byte, error), a, b plumbing.Hash, fn func(dir string, tree plumbing.Hash)) error {
	return walkStoreFolders(ctx, raw, a, b, nil, fn)
}

// walkStoreFolders is walkChangedFolders kept to the folders of one store (nil: every
// store's), whatever their shard: the log walk asks it of every commit it passes, and
// reads then only its cluster's trees and the shards that differ, not the other
// clusters' stores.
func walkStoreFolders(ctx context.Context, raw func(plumbing.Hash) ([]byte, error), a, b plumbing.Hash, only *storeKey, fn func(dir string, tree plumbing.Hash)) error {
	// Three levels below stores/: cluster, shard, name.
	var walk func(dir string, a, b plumbing.Hash, depth int) error
	walk = func(dir string, a, b plumbing.Hash, depth int) error {
		if a == b {
			return nil
		}
		if depth == 3 {
			fn(dir, b)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		ra, err := raw(a)
		if err != nil {
			return err
		}
		rb, err := raw(b)
		if err != nil {
			return err
		}
		i, j := 0, 0
		for i < len(ra) || j < len(rb) {
			var ea, eb rawTreeEntry
			if i < len(ra) {
				if ea, err = nextRawEntry(ra, i); err != nil {
					return err
				}
			}
			if j < len(rb) {
				if eb, err = nextRawEntry(rb, j); err != nil {
					return err
				}
			}
			var cmp int
			switch {
			case i >= len(ra):
				cmp = 1
			case j >= len(rb):
				cmp = -1
			case bytes.Equal(ra[i:ea.end], rb[j:eb.end]):
				i, j = ea.end, eb.end // the same entry on both sides
				continue
			default:
				cmp = treeOrder(ea, eb)
			}
			var ha, hb plumbing.Hash
			var name []byte
			if cmp <= 0 {
				name, i = ea.name, ea.end
				if ea.dir {
					ha = ea.hash
				}
			}
			if cmp >= 0 {
				name, j = eb.name, eb.end
				if eb.dir {
					hb = eb.hash
				}
			}
			if only != nil && (depth == 0 && string(name) != only.cluster || depth == 2 && string(name) != only.name) {
				continue
			}
			if ha != hb {
				if err := walk(dir+"/"+string(name), ha, hb, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk("stores", a, b, 0)
}
