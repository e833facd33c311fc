package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	gitconfig "github.com/go-git/go-git/v5/plumbing/format/config"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/go-git/go-billy/v5/osfs"
)

// Seed makes dir a bare repository whose branch (default main) holds the files of fsys,
// e.g. the fleet/ skeleton, and returns the branch's commit. A repository whose branch
// already has commits is left alone (its tip is returned), so Seed is safe to call on
// every start before Open.
func Seed(ctx context.Context, dir, branch string, fsys fs.FS, sig Signature) (string, error) {
	if branch == "" {
		branch = "main"
	}
	if sig.Name == "" {
		sig = Signature{Name: "Storefleet", Email: "storefleet@localhost"}
	}
	ref := plumbing.NewBranchReferenceName(branch)
	repo, err := openOrInitBare(dir, ref)
	if err != nil {
		return "", fmt.Errorf("gitrepo: seed %s: %w", dir, err)
	}
	if r, err := repo.Storer.Reference(ref); err == nil {
		return r.Hash().String(), nil
	} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", err
	}
	files, err := readSkeleton(ctx, fsys)
	if err != nil {
		return "", err
	}
	objs, commit, err := seedCommit(files, sig)
	if err != nil {
		return "", err
	}
	if err := storeSeed(dir, ref, objs, commit); err != nil {
		return "", err
	}
	return commit.String(), nil
}

// openOrInitBare opens the repository at dir, or creates it with ref as the default
// branch when dir holds none yet: the embedded repository is created on first start.
// Either way its config is completed to what `git init --bare` writes, which also
// repairs a repository created before Seed did so.
func openOrInitBare(dir string, ref plumbing.ReferenceName) (*git.Repository, error) {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		if err := completeBareConfig(dir); err != nil {
			return nil, err
		}
		return git.PlainOpen(dir)
	}
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		Bare:        true,
		InitOptions: git.InitOptions{DefaultBranch: ref},
	})
	if err != nil {
		return nil, err
	}
	if err := completeBareConfig(dir); err != nil {
		return nil, err
	}
	return repo, nil
}

// gitInitCore is the [core] of `git init --bare`, in git's order. go-git's init writes
// only bare = true, and git ignores a repository's core settings while it sets up
// unless repositoryformatversion is there: `git --git-dir=<dir>` then takes the current
// directory for a work tree (rev-parse --is-bare-repository prints false, and a
// checkout or status would work on whatever directory the operator stands in).
var gitInitCore = [][2]string{
	{"repositoryformatversion", "0"},
	{"filemode", "true"},
	{"bare", "true"},
}

// completeBareConfig adds what is missing of gitInitCore to dir's config, keeping any
// value already set and every other setting. A complete config is not rewritten, so
// this is cheap on every start; the rewrite takes git's config.lock, as git config does,
// so it cannot interleave with a git process changing the config.
func completeBareConfig(dir string) error {
	path := filepath.Join(dir, "config")
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cfg := gitconfig.New()
	if err := gitconfig.NewDecoder(bytes.NewReader(b)).Decode(cfg); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	core := cfg.Section("core")
	var first gitconfig.Options
	missing := false
	for _, kv := range gitInitCore {
		if !core.HasOption(kv[0]) {
			missing = true
			first = append(first, &gitconfig.Option{Key: kv[0], Value: kv[1]})
			continue
		}
		for _, o := range core.Options {
			if o.IsKey(kv[0]) {
				first = append(first, o)
			}
		}
	}
	if !missing {
		return nil
	}
	for _, o := range core.Options {
		if !first.Has(o.Key) {
			first = append(first, o)
		}
	}
	core.Options = first
	var out bytes.Buffer
	if err := gitconfig.NewEncoder(&out).Encode(cfg); err != nil {
		return err
	}
	return replaceLocked(path, out.Bytes())
}

// replaceLocked replaces path by b through path.lock, git's lock-file protocol: an
// existing lock means a git process is writing the file (or died doing so), and git
// would refuse too.
func replaceLocked(path string, b []byte) error {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	_, err = lock.Write(b)
	if cerr := lock.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".lock", path)
	}
	if err != nil {
		os.Remove(path + ".lock")
	}
	return err
}

// readSkeleton reads every regular file of fsys and checks all their paths up front,
// so a bad skeleton fails before a single object is written.
func readSkeleton(ctx context.Context, fsys fs.FS) ([]File, error) {
	if fsys == nil {
		return nil, nil
	}
	var files []File
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, File{Path: p, Content: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gitrepo: seed: read skeleton: %w", err)
	}
	for _, f := range files {
		if !validFilePath(f.Path) {
			return nil, invalid("seed file path %q", f.Path)
		}
	}
	return files, nil
}

// seedCommit builds the first commit's objects in memory. An empty skeleton still gets
// a commit, of the empty tree: the branch existing is what tells the next start's Seed
// that the repository is seeded.
func seedCommit(files []File, sig Signature) (*objectSet, plumbing.Hash, error) {
	objs := newObjectSet()
	var root plumbing.Hash
	var err error
	if len(files) > 0 {
		root, err = buildFolder(files, objs)
	} else {
		var t plumbing.EncodedObject
		t, err = treeObject(nil)
		if err == nil {
			root = objs.add(t)
		}
	}
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	now := time.Now()
	co := &object.Commit{
		Author:    object.Signature{Name: sig.Name, Email: sig.Email, When: now},
		Committer: object.Signature{Name: sig.Name, Email: sig.Email, When: now},
		Message:   "Seed the fleet repository\n\nThe empty fleet layout every store folder is added to.\n",
		TreeHash:  root,
	}
	obj := &plumbing.MemoryObject{}
	if err := co.Encode(obj); err != nil {
		return nil, plumbing.ZeroHash, err
	}
	return objs, objs.add(obj), nil
}

// storeSeed writes the seed into dir; the order of the writes is what makes a crash
// harmless (see below).
func storeSeed(dir string, ref plumbing.ReferenceName, objs *objectSet, commit plumbing.Hash) error {
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	for _, h := range objs.order {
		if _, err := st.SetEncodedObject(objs.byHash[h]); err != nil {
			return err
		}
	}
	// Seed runs once at start, before any writer; the objects are in place before the
	// ref points at them, so a crash leaves an unseeded repository, never a broken one.
	if err := st.SetReference(plumbing.NewHashReference(ref, commit)); err != nil {
		return err
	}
	return st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref))
}
