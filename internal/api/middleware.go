package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/storefleet/storefleet/internal/store"
)

// ctxKey is unexported so no other package can collide with (or forge) the API's
// context values.
type ctxKey int

const (
	requestIDKey ctxKey = iota
	callerKey
)

// HeaderRequestID carries the request id both ways: a client may send one (to
// correlate its own logs), the server always answers with the one it used.
const HeaderRequestID = "X-Request-Id"

// RequestIDFrom returns the request id the middleware put in ctx.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// caller is who asks, filled in as the request goes down the middleware: the
// request log sits outside the authentication of /api/v1 yet must name the
// authenticated subject, so the outermost middleware puts a holder in the context
// that the inner one fills.
type caller struct {
	// claimed is a well-formed X-Actor, as the client sent it.
	claimed string
	// authOn: a principal is required, so a claimed actor is never the actor.
	authOn    bool
	principal *store.Principal
}

func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey).(*caller)
	return c
}

// ActorFrom returns who made the request, as the audit log records it: the
// authenticated subject; with authentication off (make run on loopback), what the
// client says in X-Actor, or "anonymous" when it says nothing. With authentication
// on, X-Actor never becomes the actor (see OnBehalfOfFrom).
func ActorFrom(ctx context.Context) string {
	if p := store.PrincipalFrom(ctx); p != nil {
		return p.Subject
	}
	c := callerFrom(ctx)
	switch {
	case c == nil:
		return "anonymous"
	case c.principal != nil:
		return c.principal.Subject
	case c.authOn || c.claimed == "":
		return "anonymous"
	}
	return c.claimed
}

// OnBehalfOfFrom returns the actor an authenticated principal names in X-Actor, ""
// when none or when authentication is off (then X-Actor is the actor itself). Only
// principals allowed to act for others may name one; the request is refused
// otherwise (meta), and the access policy checks it again.
func OnBehalfOfFrom(ctx context.Context) string {
	c := callerFrom(ctx)
	if c == nil || !c.authOn {
		return ""
	}
	return c.claimed
}

// NewRequestID returns a random 128-bit id in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s may be used as a request id. Ids end up in commit
// trailers and log lines, so only a conservative token alphabet is allowed: no
// spaces, no newlines that could forge a second trailer.
func ValidID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// validActor is ValidID plus '@' and '+' so that e-mail style actors, also with a
// +tag, pass. Anything else is refused (checkRequestHeaders), never dropped.
func validActor(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '@' || c == '+') {
			return false
		}
	}
	return true
}

// requestID accepts a well-formed X-Request-Id from the client or makes one, puts it
// in the context and echoes it in the response. It also puts the caller holder
// there, which authentication fills.
func requestID(authOn bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(HeaderRequestID)
			if !ValidID(id) {
				id = NewRequestID()
			}
			ctx := context.WithValue(r.Context(), requestIDKey, id)
			c := &caller{authOn: authOn}
			// An invalid X-Actor is refused by checkRequestHeaders, inside the request
			// log; only a valid one is kept.
			if a := r.Header.Get("X-Actor"); validActor(a) {
				c.claimed = a
			}
			ctx = context.WithValue(ctx, callerKey, c)
			w.Header().Set(HeaderRequestID, id)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// statusWriter records the status and size for the access log. It implements Unwrap
// so http.ResponseController reaches the real connection (write deadlines, flush).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests writes one structured line per request and turns a panic into a 500
// problem instead of a dropped connection.
func logRequests(log *slog.Logger, obs Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				if rec := recover(); rec != nil {
					if rec == http.ErrAbortHandler {
						panic(rec)
					}
					log.Error("panic", "request_id", RequestIDFrom(r.Context()), "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
					if sw.status == 0 {
						WriteProblem(sw, r, newProblem(http.StatusInternalServerError, "internal", "Internal error", ""))
					}
				}
				level := slog.LevelInfo
				if sw.status >= 500 {
					level = slog.LevelError
				}
				// chi fills the pattern in while routing, in the context this
				// middleware handed down (the router made it before any middleware ran).
				route := ""
				if rc := chi.RouteContext(r.Context()); rc != nil {
					route = rc.RoutePattern()
				}
				obs.HTTPRequest(r.Method, route, sw.status, time.Since(start))
				log.LogAttrs(r.Context(), level, "http",
					slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
					slog.Int("status", sw.status), slog.Int("bytes", sw.bytes),
					slog.Duration("duration", time.Since(start)),
					slog.String("request_id", RequestIDFrom(r.Context())),
					slog.String("actor", ActorFrom(r.Context())),
					slog.String("on_behalf_of", OnBehalfOfFrom(r.Context())))
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// writeDeadline sets a write deadline for one route group. The server itself has no
// WriteTimeout: that would cut long-lived streams (the status issue's SSE routes),
// which instead set no deadline or extend it as they write.
func writeDeadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d > 0 {
				_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
			}
			next.ServeHTTP(w, r)
		})
	}
}
