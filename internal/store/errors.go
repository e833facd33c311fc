package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error codes. They describe what went wrong in domain terms; the HTTP layer maps them to statuses
// (EINVALID → 422/400, ENOTFOUND → 404, ECONFLICT → 409, EPRECONDITION → 412, EUNAVAILABLE → 503, …) so that
// nothing below it knows about HTTP.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	// EUNAVAILABLE: nothing was changed and the request can be retried later (a
	// remote that does not answer, a full disk); the HTTP layer adds Retry-After.
	EUNAVAILABLE = "unavailable"
	// EPRECONDITION: the change was made against a store that has moved on since
	// (Meta.IfMatch names a commit that is no longer the store's last); nothing was
	// changed. Unlike ECONFLICT it is about the caller's view, not the store's state:
	// read the store again and decide anew.
	EPRECONDITION = "precondition_failed"
)

// Error is the error type of the domain. Fields is set for EINVALID (and for ECONFLICT when an update is
// refused because of particular fields) and lists every problem at once, so a client can fix its request in
// one round trip.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
	// Cause says why an EUNAVAILABLE change could not be made (one of the Cause
	// constants), so a client and an operator can tell a dead remote from a full
	// disk; empty when there is nothing more to say.
	Cause Cause
	// RetryAfter, for EUNAVAILABLE, is how long the dependency that refused asked to
	// be left alone (GitHub's rate limits); zero leaves it to the HTTP layer's own.
	RetryAfter time.Duration
}

// Cause is what made a change unavailable. Every cause means the same for the
// change itself: nothing landed and it never will, so retrying is safe.
type Cause string

const (
	// CauseRemoteUnreachable: no connection to the fleet remote could be made (refused,
	// no route, name not found).
	CauseRemoteUnreachable Cause = "remote_unreachable"
	// CauseRemoteRefused: the remote answered, and said no (authentication, a server
	// error, a hook that declined the update).
	CauseRemoteRefused Cause = "remote_refused"
	// CauseStorageFull: the local storage has no room for the change.
	CauseStorageFull Cause = "storage_full"
	// CauseStoragePermission: the local storage may not be written (permissions, a
	// read-only file system).
	CauseStoragePermission Cause = "storage_permission"
	// CauseDeadline: the write deadline passed before the change could be pushed
	// (the writer was busy, or the branch kept moving under contention).
	CauseDeadline Cause = "deadline"
)

// ErrorRetryAfter returns the RetryAfter of the first *Error in err's chain, zero if none.
func ErrorRetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrorCause returns the Cause of the first *Error in err's chain, "" if none.
func ErrorCause(err error) Cause {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	return ""
}

// FieldError names one field (a JSON path such as "settings.currency") and the machine-readable rule it
// broke (such as "iso4217"), with a message for humans.
type FieldError struct {
	Field   string `json:"field"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

func (e FieldError) String() string { return e.Field + ": " + e.Message + " (" + e.Rule + ")" }

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return fmt.Sprintf("storefleet error: code=%s message=%s", e.Code, e.Message)
	}
	var b strings.Builder
	b.WriteString(e.Message)
	for _, f := range e.Fields {
		b.WriteString("\n  ")
		b.WriteString(f.String())
	}
	return b.String()
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// QuotaError is the problem of a create in a tenant that already holds limit
// stores (limits.storesPerTenant; held is what the check counted): the same
// answer whether the access layer's early check or the repository's check at
// commit time refused it.
func QuotaError(tenant string, held, limit int) *Error {
	return &Error{Code: EINVALID, Message: "the tenant's store quota is used up",
		Fields: []FieldError{{Field: "tenant", Rule: "quota",
			Message: fmt.Sprintf("tenant %q holds %d stores and its limit (limits.storesPerTenant) is %d; deleted stores count until purged", tenant, held, limit)}}}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of the first *Error in err's chain; other errors are internal and
// their text is not shown to users.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// FieldErrors returns the field errors carried by err, if any.
func FieldErrors(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

// fieldErrors collects problems while validating; err returns nil when there are none.
type fieldErrors []FieldError

func (fe *fieldErrors) add(field, rule, format string, args ...any) {
	*fe = append(*fe, FieldError{Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (fe fieldErrors) err(msg string) error {
	if len(fe) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: msg, Fields: fe}
}
