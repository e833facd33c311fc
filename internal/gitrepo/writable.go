package gitrepo

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// Writable reports whether a change submitted now could land, without writing to the
// fleet: the writer is running; an on-disk clone holds its tip and takes a write; a
// local remote's objects folder takes a write and its branch is not locked by a writer
// that died (such a lock is cleared here, as the next push would); and the remote
// answers a fetch. A full or unwritable disk is ErrStorage. No error carries the
// remote's credentials.
//
// It writes and removes a small file in each objects folder (see probeWrite), so it
// is a readiness check to run every few seconds, not per request.
func (r *Repo) Writable(ctx context.Context) error {
	r.qmu.RLock()
	closed := r.closed
	r.qmu.RUnlock()
	if closed {
		return ErrClosed
	}
	if r.opts.Dir != "" {
		r.mu.RLock()
		tip := r.tip
		missing := !tip.IsZero() && r.st.HasEncodedObject(tip) != nil
		r.mu.RUnlock()
		if missing {
			return fmt.Errorf("%w: the clone %s lacks its tip %s (a restart clones it again)", ErrStorage, r.opts.Dir, tip)
		}
		if err := probeWrite(filepath.Join(r.opts.Dir, "objects")); err != nil {
			return storageErr("the clone "+r.opts.Dir+" takes no writes", err)
		}
	}
	if r.localPath != "" {
		if err := probeWrite(filepath.Join(r.localPath, "objects", "pack")); err != nil {
			return storageErr("the repository "+r.localPath+" takes no writes", err)
		}
		lock := filepath.Join(r.localPath, filepath.FromSlash(r.branchRef.String())) + ".lock"
		st, err := clearStaleLock(lock, time.Now(), r.log)
		if err != nil {
			return fmt.Errorf("gitrepo: ref lock: %w", err)
		}
		if st == lockYoung {
			// Git's own update holds it for milliseconds; one still there now is
			// either that, or stale and taken over once staleLockAge old.
			return fmt.Errorf("gitrepo: %s is held by another process (taken over if still there after %s)", lock, staleLockAge)
		}
	}
	return r.fetch(ctx)
}
