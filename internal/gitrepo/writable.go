package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/storefleet/storefleet/internal/store"
)

// Cause is why the fleet cannot be written now, in words an unauthenticated caller
// may read: /readyz shows it, while the full (redacted) error goes to the log.
type Cause string

const (
	CauseRefLock           Cause = "ref lock held"
	CauseStorageFull       Cause = "storage full"
	CauseStorageNotAllowed Cause = "storage not permitted"
	CauseStorage           Cause = "storage unavailable"
	CauseRemoteUnreachable Cause = "remote unreachable"
	CauseRemoteRefusing    Cause = "remote refusing"
	CauseClosed            Cause = "writer stopped"
)

// causeText is what each cause tells a reader of /readyz: no path, URL or raw error,
// since the probe answers anyone who can reach the port.
var causeText = map[Cause]string{
	CauseRefLock:           "ref lock held: the fleet branch is locked by another writer (a lock left by a dead writer is taken over once stale)",
	CauseStorageFull:       "storage full: the disk of the fleet repository or its clone has no room for a write",
	CauseStorageNotAllowed: "storage not permitted: the files of the fleet repository or its clone may not be written (permissions, read-only disk)",
	CauseStorage:           "storage unavailable: the fleet repository or its clone cannot be written",
	CauseRemoteUnreachable: "remote unreachable: the fleet repository's remote does not answer",
	CauseRemoteRefusing:    "remote refusing: the fleet repository's remote answers with an error (credentials, permissions, server fault)",
	CauseClosed:            "writer stopped: the process is shutting down",
}

// NotWritableError is Writable's answer when a write could not land now. Its text is
// the full detail, with credentials masked; errors.As finds a *store.Error
// (EUNAVAILABLE) whose message names only the cause, for whoever shows it to callers.
type NotWritableError struct {
	Cause Cause
	err   error // redacted
	shown *store.Error
}

func (e *NotWritableError) Error() string   { return string(e.Cause) + ": " + e.err.Error() }
func (e *NotWritableError) Unwrap() []error { return []error{e.shown, e.err} }

// notWritable classifies err (raw, as the probes return it) and masks it.
func (r *Repo) notWritable(c Cause, err error) error {
	return &NotWritableError{Cause: c, err: r.red.err(err), shown: &store.Error{Code: store.EUNAVAILABLE, Message: causeText[c]}}
}

// storageCause tells a full disk from one that refuses writes.
func storageCause(err error) Cause {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return CauseStorageFull
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return CauseStorageNotAllowed
	}
	return CauseStorage
}

// remoteCause tells a remote that answers with a refusal (HTTP 401/403/404/5xx, a
// missing repository) from one that does not answer at all. Anything else that is not
// the disk counts as unreachable: the next attempt may get through.
func remoteCause(err error) Cause {
	var unexpected *plumbing.UnexpectedError
	switch {
	case errors.Is(err, ErrStorage):
		return storageCause(err)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrRepositoryNotFound), errors.Is(err, transport.ErrInvalidAuthMethod),
		errors.As(err, &unexpected):
		return CauseRemoteRefusing
	}
	return CauseRemoteUnreachable
}

// remoteProbeTimeout bounds one readiness round trip to the remote: a black-holed
// remote must not hold /readyz (whose own deadline is a few seconds) or the caller.
const remoteProbeTimeout = 2 * time.Second

// Writable reports whether a change submitted now could land, without writing to the
// fleet: the writer is running and has reached the remote since it started; an
// on-disk clone holds its tip and takes a write; a local remote's objects folder
// takes a write and its branch is not locked by a writer that died (such a lock is
// cleared here, as the next push would); and the remote answers a request for its
// refs within remoteProbeTimeout. An answer other than nil is a *NotWritableError
// (ErrStorage for the disks, ErrClosed after Close); no error carries the remote's
// credentials.
//
// It writes and removes a small file in each objects folder (see probeWrite) and asks
// the remote for its refs, so it is a readiness check to run every few seconds (and
// to cache), not per request.
func (r *Repo) Writable(ctx context.Context) error {
	r.qmu.RLock()
	closed := r.closed
	r.qmu.RUnlock()
	if closed {
		return r.notWritable(CauseClosed, ErrClosed)
	}
	if err := r.syncErr(); err != nil {
		return err
	}
	if r.opts.Dir != "" {
		r.mu.RLock()
		tip := r.tip
		// Read, not only looked up: the storage's pack index is loaded when the
		// storage is opened (diskStorage), so it still names a pack removed since.
		missing := false
		if !tip.IsZero() {
			_, err := r.st.EncodedObject(plumbing.AnyObject, tip)
			missing = err != nil
		}
		r.mu.RUnlock()
		if missing {
			return r.notWritable(CauseStorage, fmt.Errorf("%w: the clone %s lacks its tip %s (a restart clones it again)", ErrStorage, r.opts.Dir, tip))
		}
		if err := probeWrite(filepath.Join(r.opts.Dir, "objects")); err != nil {
			return r.notWritable(storageCause(err), storageErr("the clone "+r.opts.Dir+" takes no writes", err))
		}
	}
	if r.localPath != "" {
		if err := probeWrite(filepath.Join(r.localPath, "objects", "pack")); err != nil {
			return r.notWritable(storageCause(err), storageErr("the repository "+r.localPath+" takes no writes", err))
		}
		lock := filepath.Join(r.localPath, filepath.FromSlash(r.branchRef.String())) + ".lock"
		st, err := clearStaleLock(lock, time.Now(), r.log)
		if err != nil {
			return r.notWritable(CauseRefLock, fmt.Errorf("gitrepo: ref lock: %w", err))
		}
		if st == lockYoung {
			// Git's own update holds it for milliseconds; one still there now is
			// either that, or stale and taken over once staleLockAge old. (A live
			// writer of ours holding it is a push in progress: no reason to fail.)
			return r.notWritable(CauseRefLock, fmt.Errorf("gitrepo: %s is held by another process (taken over if still there after %s)", lock, staleLockAge))
		}
	}
	if err := r.probeRemote(ctx); err != nil {
		return r.notWritable(remoteCause(err), err)
	}
	return nil
}

// probeRemote asks the remote for its refs, the cheapest exchange that proves it
// answers and accepts our credentials, within remoteProbeTimeout. It runs apart so
// that a transport that ignores the context (an SSH dial) cannot hold the caller; it
// then finishes alone.
func (r *Repo) probeRemote(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, remoteProbeTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		sess, err := r.uploadPackSession()
		if err != nil {
			done <- fmt.Errorf("gitrepo: reach %s: %w", r.red.shown, err)
			return
		}
		defer sess.Close()
		_, err = sess.AdvertisedReferencesContext(ctx)
		if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
			done <- fmt.Errorf("gitrepo: reach %s: %w", r.red.shown, err)
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("gitrepo: reach %s: no answer within %s: %w", r.red.shown, remoteProbeTimeout, ctx.Err())
	}
}
