package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/httprate"

	"github.com/storefleet/storefleet/internal/store"
)

// Limits are the request budgets of one caller: an authenticated principal by its
// subject, anyone else by the client address. Reads and writes have separate
// budgets, so a dashboard polling the fleet cannot use up the writes of the same
// principal, nor a script's writes its reads. The counters live in this process: N
// replicas behind a load balancer allow N times the budget.
type Limits struct {
	// Reads and Writes are the requests allowed per Window; 0 = no limit.
	Reads, Writes int
	// Window is the length of the sliding window (a minute by default). Tests use a
	// short one to see a budget recover.
	Window time.Duration
}

// limiter spends the budgets of Limits with httprate's sliding window counters.
type limiter struct {
	reads, writes *httprate.RateLimiter
	window        time.Duration
}

func newLimiter(l Limits) *limiter {
	if l.Reads <= 0 && l.Writes <= 0 {
		return nil
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	out := &limiter{window: l.Window}
	if l.Reads > 0 {
		out.reads = httprate.NewRateLimiter(l.Reads, l.Window)
	}
	if l.Writes > 0 {
		out.writes = httprate.NewRateLimiter(l.Writes, l.Window)
	}
	return out
}

// refuse spends one request of the caller's read or write budget, and answers 429
// when it is used up. It returns the budget it refused on (reads or writes), "" when
// it let the request through.
func (l *limiter) refuse(w http.ResponseWriter, r *http.Request, p *store.Principal) string {
	rl, kind := l.writes, "writes"
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		rl, kind = l.reads, "reads"
	}
	if rl == nil {
		return ""
	}
	if !rl.OnLimit(w, r, limitKey(r, p)) {
		return ""
	}
	// httprate's Retry-After is the window in whole seconds, which is 0 for a window
	// under a second; a client must never be told to retry at once.
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(l.window.Seconds())))))
	WriteProblem(w, r, newProblem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		"the "+kind+" budget of this caller is used up; retry after the number of seconds in Retry-After",
		FieldError{Field: kind, Rule: "rateLimit", Detail: "at most " + w.Header().Get("X-RateLimit-Limit") + " per " + l.window.String()}))
	return kind
}

// limitKey is whose budget a request spends. The subject, not the token: every
// token of one principal shares its budget. The client address is the connection's
// own: a forwarded header would let any client pick its key, so behind a proxy every
// unauthenticated caller shares the proxy's budget.
func limitKey(r *http.Request, p *store.Principal) string {
	if p != nil {
		return "p:" + p.Subject
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + httprate.CanonicalizeIP(host)
}
