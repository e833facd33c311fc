package gitrepo

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// A remote that is a local bare repository is written directly: the new objects as
// loose objects, then the branch moved with git's own lock-file protocol
// (refs/heads/<b>.lock created exclusively, old value checked, renamed into place), so
// a concurrent git push or another writer is serialized exactly as git serializes
// itself. This skips a git-receive-pack process per commit.

// localRepoPath returns the bare repository directory of a file remote, or "" when the
// path is not a bare repository this process can write (then the transport is used).
func localRepoPath(ep string) string {
	p := strings.TrimPrefix(ep, "file://")
	if _, err := os.Stat(filepath.Join(p, "objects")); err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(p, "refs")); err != nil {
		return ""
	}
	return p
}

func pushLocal(repo string, ref plumbing.ReferenceName, base, commit plumbing.Hash, objs *objectSet) (bool, error) {
	for _, h := range objs.order {
		if err := writeLoose(repo, objs.byHash[h]); err != nil {
			return false, fmt.Errorf("gitrepo: write object %s: %w", h, err)
		}
	}
	refPath := filepath.Join(repo, filepath.FromSlash(ref.String()))
	if err := os.MkdirAll(filepath.Dir(refPath), 0o755); err != nil {
		return false, err
	}
	lock, err := os.OpenFile(refPath+".lock", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return false, nil // someone is updating the branch right now: a lost race
	}
	if err != nil {
		return false, err
	}
	committed := false
	defer func() {
		if !committed {
			lock.Close()
			os.Remove(refPath + ".lock")
		}
	}()
	cur, err := readLocalRef(repo, ref)
	if err != nil {
		return false, err
	}
	if cur != base {
		return false, nil
	}
	if _, err := lock.WriteString(commit.String() + "\n"); err != nil {
		return false, err
	}
	if err := lock.Sync(); err != nil {
		return false, err
	}
	if err := lock.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(refPath+".lock", refPath); err != nil {
		return false, err
	}
	committed = true
	return true, nil
}

// readLocalRef reads a branch from its loose ref file or, failing that, packed-refs.
func readLocalRef(repo string, ref plumbing.ReferenceName) (plumbing.Hash, error) {
	b, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(ref.String())))
	if err == nil {
		s := strings.TrimSpace(string(b))
		if !isHex40(s) {
			return plumbing.ZeroHash, fmt.Errorf("gitrepo: %s is not a plain ref: %q", ref, s)
		}
		return plumbing.NewHash(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, err
	}
	f, err := os.Open(filepath.Join(repo, "packed-refs"))
	if errors.Is(err, os.ErrNotExist) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "^") {
			continue
		}
		h, name, ok := strings.Cut(line, " ")
		if ok && name == ref.String() && isHex40(h) {
			return plumbing.NewHash(h), nil
		}
	}
	return plumbing.ZeroHash, sc.Err()
}

func writeLoose(repo string, o plumbing.EncodedObject) error {
	h := o.Hash().String()
	dir := filepath.Join(repo, "objects", h[:2])
	path := filepath.Join(dir, h[2:])
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	rd, err := o.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write([]byte(o.Type().String() + " " + strconv.FormatInt(o.Size(), 10) + "\x00"))
	if _, err := io.Copy(zw, rd); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "tmp_obj_")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
