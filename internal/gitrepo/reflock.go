package gitrepo

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// A local remote's branch moves by git's lock-file protocol: whoever creates
// refs/heads/<b>.lock exclusively may move the branch, by renaming the lock into place.
// A writer killed between the two leaves the lock behind, and git never times a lock
// out: every later update is refused until someone deletes the file by hand.
//
// So the writer marks its locks and keeps them flocked while it lives:
//
//   - it creates the lock exclusively, takes an flock on it, and writes lockMarker into
//     it; the branch's new value replaces the mark just before the rename, and the
//     flock lasts until the lock is renamed or removed;
//   - the kernel drops the flock when the process dies, however it dies.
//
// A lock found in place is then
//
//   - flocked: a live writer of this package (this process or another) is moving the
//     branch: a lost race, tried again on a fresh tip;
//   - not flocked and marked: its writer died: stale, taken over at once;
//   - neither: git's own (or ours, from a writer killed in the microseconds before it
//     marked it): stale only once older than staleLockAge.
//
// Taking over removes the lock while holding its flock, and only if its path still
// names the file inspected, so two writers finding the same stale lock cannot remove
// the fresh lock one of them took meanwhile.

// lockMarker begins the content of a lock this package holds. Git never reads another
// process's lock file (and ignores *.lock names when it reads refs), so the mark is
// seen only here.
const lockMarker = "storefleet gitrepo writer"

// staleLockAge is when a lock that is not this package's becomes stale. Git holds a ref
// lock for the milliseconds of one update; taking over a lock whose git process is
// still alive would let that process rename our lock into place, so the bound is far
// beyond any live update, yet short enough that a branch wedged by a killed git frees
// itself without anyone deleting files by hand.
const staleLockAge = 30 * time.Second

// testHookRefLocked, when set by a test, runs once the writer holds and has marked a
// ref lock (to kill the process exactly there).
var testHookRefLocked func(lockPath string)

// refLock is a ref lock this process holds.
type refLock struct {
	path, refPath string
	f             *os.File
}

// lockRef takes the lock of the loose ref at refPath, first taking over a stale one.
// It returns nil without error when a live writer holds the lock.
func lockRef(refPath string, log *slog.Logger) (*refLock, error) {
	path := refPath + ".lock"
	for try := 0; ; try++ {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if errors.Is(err, os.ErrExist) {
			if try > 0 {
				return nil, nil // someone else took it right after the stale one went
			}
			st, err := clearStaleLock(path, time.Now(), log)
			if err != nil {
				return nil, err
			}
			if st == lockLive || st == lockYoung {
				return nil, nil
			}
			continue
		}
		if err != nil {
			return nil, storageErr("lock "+path, err)
		}
		l := &refLock{path: path, refPath: refPath, f: f}
		// Between the create and the flock the lock is unmarked and new: an inspector
		// takes it for a live update, never for a stale one.
		if err := waitFlock(f); err != nil {
			l.release()
			return nil, storageErr("lock "+path, err)
		}
		if _, err := fmt.Fprintf(f, "%s pid=%d\n", lockMarker, os.Getpid()); err != nil {
			l.release()
			return nil, storageErr("lock "+path, err)
		}
		if testHookRefLocked != nil {
			testHookRefLocked(path)
		}
		return l, nil
	}
}

// commit gives the ref its new value: the mark is replaced by it (the flock still tells
// the lock is live), synced, and the lock renamed into place.
func (l *refLock) commit(h plumbing.Hash) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if _, err := l.f.WriteAt([]byte(h.String()+"\n"), 0); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(l.path, l.refPath); err != nil {
		return err
	}
	l.f.Close()
	l.f = nil
	return nil
}

// release gives the lock up without moving the ref: removed while still flocked, so
// nobody sees it unheld with our mark in it.
func (l *refLock) release() {
	if l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

// lockState is what clearStaleLock found.
type lockState int

const (
	lockFree    lockState = iota // no lock
	lockCleared                  // a stale lock, now removed
	lockLive                     // held by a live writer of this package
	lockYoung                    // someone else's, not stale yet
)

// clearStaleLock inspects the ref lock at path and removes it if it is stale, with a
// warning naming the file.
func clearStaleLock(path string, now time.Time, log *slog.Logger) (lockState, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return lockFree, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	held, err := tryFlock(f)
	if err != nil {
		return 0, err
	}
	if !held {
		return lockLive, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	head := make([]byte, 128)
	n, _ := f.ReadAt(head, 0)
	content := strings.TrimSpace(string(head[:n]))
	marked := flockWorks && strings.HasPrefix(content, lockMarker)
	age := now.Sub(fi.ModTime())
	if !marked && age < staleLockAge {
		return lockYoung, nil
	}
	cur, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return lockFree, nil
	}
	if err != nil {
		return 0, err
	}
	if !os.SameFile(fi, cur) {
		return lockLive, nil // taken over and locked anew by someone else meanwhile
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("remove stale lock %s: %w", path, err)
	}
	reason := fmt.Sprintf("not held, and older than %s", staleLockAge)
	if marked {
		reason = "left by a writer that died (" + content + ")"
	}
	log.Warn("gitrepo: removed a stale ref lock", "file", path, "age", age.Round(time.Millisecond), "reason", reason)
	return lockCleared, nil
}
