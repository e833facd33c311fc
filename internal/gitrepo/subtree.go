package gitrepo

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// The shard publisher (docs/design.md, "How Flux applies the stores") reads the fleet
// through these two methods: Subtrees tells it which shard trees changed, Archive turns
// one shard tree into the tarball Flux applies. Neither writes to the repository; a
// commit the clone does not have yet is fetched once, as the writer does for a tip it has not seen.

var (
	// ErrNotDir: a path component of the folder asked about is a file.
	ErrNotDir = errors.New("gitrepo: path element is a file, not a folder")
	// ErrUnsupportedEntry: the folder holds a symlink or a submodule, which an archive
	// cannot carry faithfully (Flux's untar refuses symlinks).
	ErrUnsupportedEntry = errors.New("gitrepo: folder holds a symlink or submodule")
)

// ArchiveCompression is the gzip level of Archive's output. It is fixed because the
// archive's bytes (and so the artifact's digest) must depend on the tree alone. Speed
// over size: the publisher archives every shard a push touched, on the API's cores,
// while an artifact is fetched once per change over the cluster network. For a shard
// of 40 stores (271 KB of YAML) BestSpeed gives 19 KB in about two thirds of the time
// the default level takes for 11 KB (BenchmarkArchiveShard, docs/benchmarks.md).
const ArchiveCompression = gzip.BestSpeed

// gzipPool keeps gzip writers between archives: a new one allocates ~1 MB of
// compressor state, and the publisher archives a shard after every push that touched
// it. Reset restores a writer to exactly its new state, so output does not depend on
// the writer's history.
var gzipPool = sync.Pool{New: func() any {
	zw, err := gzip.NewWriterLevel(io.Discard, ArchiveCompression)
	if err != nil {
		panic(err) // only for an invalid level, a constant
	}
	return zw
}}

// archiveModTime is every archive entry's modification time: a Git tree has none, and
// a real clock would change the bytes of an unchanged tree. fluxcd/pkg/tar's Untar sets
// it on extracted files as is (it is not the zero time.Time, which Untar would skip).
var archiveModTime = time.Unix(0, 0)

// Subtrees returns, for the folder dir (e.g. "stores/local") in commit ("" = the clone's
// head), each child folder's name and tree hash; files at that level are left out. A dir
// missing in the commit, or an empty branch, gives an empty map: a cluster with no stores
// yet. A path element that is a file is ErrNotDir. It reads one tree per path element
// plus dir's own, so it stays cheap at any fleet size.
func (r *Repo) Subtrees(ctx context.Context, commit, dir string) (map[string]string, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	root, err := r.rootTree(ctx, commit)
	if err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, err := resolveDir(r.st, root, dir)
	if err != nil || h.IsZero() {
		return map[string]string{}, err
	}
	t, err := object.GetTree(r.st, h)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: read tree %s: %w", h, err)
	}
	out := make(map[string]string, len(t.Entries))
	for _, e := range t.Entries {
		if e.Mode == filemode.Dir {
			out[e.Name] = e.Hash.String()
		}
	}
	return out, nil
}

// archiveEntry is one tar entry, listed before anything is written.
type archiveEntry struct {
	name string // relative to the archived folder; folders end in "/"
	mode int64
	blob plumbing.Hash // zero for a folder
}

// Archive writes the folder dir of commit ("" = the clone's head) to w as a gzipped tar,
// paths relative to dir ("shop/kustomization.yaml"), in Git tree order with each folder's
// entry before its contents. It is a pure function of dir's tree: fixed modes (0755
// folders and executables, 0644 other files), modification time and owner, PAX format,
// gzip at ArchiveCompression with an empty header, so an unchanged tree gives the same
// bytes and the artifact keeps its digest. A dir missing in the commit gives a valid
// empty archive. A symlink or submodule is ErrUnsupportedEntry, a file on the path to dir
// ErrNotDir; both are found before the first byte is written. An error while writing
// (w failing, ctx cancelled, an object unreadable) leaves w with a truncated archive,
// which the caller must discard.
//
// Output is streamed: one blob is held at a time, and the storage lock is held only
// while objects are looked up, never while w is written, so a slow w does not hold up
// commits.
func (r *Repo) Archive(ctx context.Context, commit, dir string, w io.Writer) error {
	if err := checkDir(dir); err != nil {
		return err
	}
	root, err := r.rootTree(ctx, commit)
	if err != nil {
		return err
	}
	entries, err := r.archiveEntries(ctx, root, dir)
	if err != nil {
		return err
	}
	zw := gzipPool.Get().(*gzip.Writer)
	defer func() {
		zw.Reset(io.Discard) // the pool must not keep the caller's writer alive
		gzipPool.Put(zw)
	}()
	zw.Reset(w)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr := &tar.Header{Name: e.name, Mode: e.mode, ModTime: archiveModTime, Format: tar.FormatPAX}
		if e.blob.IsZero() {
			hdr.Typeflag = tar.TypeDir
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("gitrepo: archive %s: %w", dir, err)
			}
			continue
		}
		r.mu.RLock()
		b, err := object.GetBlob(r.st, e.blob)
		r.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("gitrepo: read blob %s (%s): %w", e.blob, e.name, err)
		}
		hdr.Typeflag = tar.TypeReg
		hdr.Size = b.Size
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("gitrepo: archive %s: %w", dir, err)
		}
		rd, err := b.Reader()
		if err != nil {
			return fmt.Errorf("gitrepo: read blob %s (%s): %w", e.blob, e.name, err)
		}
		_, err = io.Copy(tw, rd)
		rd.Close()
		if err != nil {
			return fmt.Errorf("gitrepo: archive %s: %s: %w", dir, e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("gitrepo: archive %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gitrepo: archive %s: %w", dir, err)
	}
	return nil
}

// archiveEntries lists the tar entries of dir under root in Git tree order, reading
// only trees, and refuses entries an archive cannot hold.
func (r *Repo) archiveEntries(ctx context.Context, root plumbing.Hash, dir string) ([]archiveEntry, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, err := resolveDir(r.st, root, dir)
	if err != nil || h.IsZero() {
		return nil, err
	}
	var out []archiveEntry
	var walk func(h plumbing.Hash, prefix string) error
	walk = func(h plumbing.Hash, prefix string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := object.GetTree(r.st, h)
		if err != nil {
			return fmt.Errorf("gitrepo: read tree %s: %w", h, err)
		}
		for _, e := range t.Entries {
			name := prefix + e.Name
			switch e.Mode {
			case filemode.Dir:
				out = append(out, archiveEntry{name: name + "/", mode: 0o755})
				if err := walk(e.Hash, name+"/"); err != nil {
					return err
				}
			case filemode.Regular, filemode.Deprecated:
				out = append(out, archiveEntry{name: name, mode: 0o644, blob: e.Hash})
			case filemode.Executable:
				out = append(out, archiveEntry{name: name, mode: 0o755, blob: e.Hash})
			default:
				return fmt.Errorf("%w: %s (mode %s)", ErrUnsupportedEntry, path.Join(dir, name), e.Mode)
			}
		}
		return nil
	}
	if err := walk(h, ""); err != nil {
		return nil, err
	}
	return out, nil
}

// rootTree returns the root tree of commit ("" = the head; zero for an empty branch).
// A commit this clone does not have is fetched once before it is ErrUnknownCommit.
func (r *Repo) rootTree(ctx context.Context, commit string) (plumbing.Hash, error) {
	var h plumbing.Hash
	if commit == "" {
		r.mu.RLock()
		h = r.tip
		r.mu.RUnlock()
		if h.IsZero() {
			return plumbing.ZeroHash, nil
		}
	} else {
		if !isHex40(commit) {
			return plumbing.ZeroHash, fmt.Errorf("%w: %q is not a commit hash", ErrUnknownCommit, commit)
		}
		h = plumbing.NewHash(commit)
		if !r.hasCommit(h) {
			if err := r.fetch(ctx); err != nil {
				return plumbing.ZeroHash, err
			}
		}
	}
	r.mu.RLock()
	c, err := object.GetCommit(r.st, h)
	r.mu.RUnlock()
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrUnknownCommit, commit)
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitrepo: read commit %s: %w", h, err)
	}
	return c.TreeHash, nil
}

// checkDir accepts "" (the root) or a clean relative slash path.
func checkDir(dir string) error {
	if dir != "" && !validFilePath(dir) {
		return fmt.Errorf("%w: folder %q is not a clean relative path", ErrInvalid, dir)
	}
	return nil
}

// resolveDir is lookupTree for readers that must tell "absent" (zero, nil) from "a file
// is in the way" (ErrNotDir). Callers hold mu.
func resolveDir(s storer.EncodedObjectStorer, root plumbing.Hash, dir string) (plumbing.Hash, error) {
	h := root
	if dir == "" || h.IsZero() {
		return h, nil
	}
	els := strings.Split(dir, "/")
	for i, el := range els {
		t, err := object.GetTree(s, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("gitrepo: read tree %s: %w", h, err)
		}
		var e *object.TreeEntry
		for j := range t.Entries {
			if t.Entries[j].Name == el {
				e = &t.Entries[j]
				break
			}
		}
		if e == nil {
			return plumbing.ZeroHash, nil
		}
		if e.Mode != filemode.Dir {
			return plumbing.ZeroHash, fmt.Errorf("%w: %s", ErrNotDir, strings.Join(els[:i+1], "/"))
		}
		h = e.Hash
	}
	return h, nil
}
