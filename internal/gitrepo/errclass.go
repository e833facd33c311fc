package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Why a push did not land, as far as it can be proven. The writer answers a change
// "unavailable" only when it is certain that nothing landed; these sentinels carry
// that certainty, and the cause, up to the domain.
var (
	// ErrUnreachable: no connection to the remote could be made. Nothing was sent.
	ErrUnreachable = errors.New("gitrepo: remote unreachable")
	// ErrRefused: the remote answered and refused the push (authentication, a server
	// error, a pack it could not take, a hook that declined the update). Nothing landed.
	ErrRefused = errors.New("gitrepo: remote refused the push")
	// ErrNotPushed: the change's write deadline passed (or the attempts ran out)
	// before any push of it could land, and no push of it is in flight or undecided.
	// Nothing landed, and nothing will.
	ErrNotPushed = errors.New("gitrepo: not pushed before the write deadline")
	// ErrOutcomeUnknown: the write deadline cut a push of the change off in flight.
	// The writer goes on deciding it in the background; Repo.FindRequest tells.
	ErrOutcomeUnknown = errors.New("gitrepo: push cut off by the write deadline, outcome not known yet")
)

// certain reports whether err, from a push attempt, proves the attempt did not land.
func certain(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrRefused) || errors.Is(err, ErrStorage)
}

// classifyRemote marks a transport error that proves nothing landed with ErrUnreachable
// or ErrRefused; any other error is returned as it is (the push may have landed). It
// must see the error before redaction, which keeps only errors.Is.
func classifyRemote(err error) error {
	if err == nil || errors.Is(err, ErrStorage) {
		return err
	}
	if dialFailed(err) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, transport.ErrInvalidAuthMethod) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if he := httpErr(err); he != nil && he.Response != nil {
		// A gateway that timed out may have passed the push on: its upstream could
		// still apply it, so that answer proves nothing.
		if he.Response.StatusCode != 504 {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	return err
}

// httpErr finds go-git's HTTP status error, also inside its UnexpectedError, which
// has no Unwrap.
func httpErr(err error) *githttp.Err {
	for e := err; e != nil; {
		var he *githttp.Err
		if errors.As(e, &he) {
			return he
		}
		var ue *plumbing.UnexpectedError
		if !errors.As(e, &ue) {
			return nil
		}
		e = ue.Err
	}
	return nil
}

// dialFailed reports an error from making the connection, before any byte of the
// push was sent: refused, no route, a name that does not resolve.
func dialFailed(err error) bool {
	for e := err; e != nil; {
		var ue *plumbing.UnexpectedError
		if errors.As(e, &ue) {
			// go-git's wrapper has no Unwrap.
			e = ue.Err
			continue
		}
		var op *net.OpError
		if errors.As(e, &op) && op.Op == "dial" {
			return true
		}
		var dns *net.DNSError
		if errors.As(e, &dns) {
			return true
		}
		return errors.Is(e, syscall.ECONNREFUSED) || errors.Is(e, syscall.EHOSTUNREACH) || errors.Is(e, syscall.ENETUNREACH)
	}
	return false
}

// storageFull and storagePermission tell the causes of ErrStorage apart for the domain.
func storageFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func storagePermission(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS)
}
