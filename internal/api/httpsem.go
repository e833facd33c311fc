package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/storefleet/storefleet/internal/store"
)

// The methods probed for Allow, in the order Allow lists them. HEAD and OPTIONS are
// answered for every route by routeMethods, so they need not be registered.
var allowOrder = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// routePath is the path chi routes on: the raw one when the client escaped
// something, so that "/stores/a%2Fb" is one segment, as the router sees it.
func routePath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

func serves(rt chi.Routes, method, path string) bool {
	return rt.Match(chi.NewRouteContext(), method, path)
}

// allowedMethods lists the methods the route of r's path serves, or nothing when no
// route has that path. It asks the router rather than keeping a table, so Allow
// cannot drift from the routes.
func allowedMethods(rt chi.Routes, r *http.Request) []string {
	path := routePath(r)
	get := serves(rt, http.MethodGet, path)
	var out []string
	for _, m := range allowOrder {
		if (m == http.MethodHead && get) || serves(rt, m, path) {
			out = append(out, m)
		}
	}
	if len(out) > 0 && !contains(out, http.MethodOptions) {
		out = append(out, http.MethodOptions)
	}
	return out
}

// routeMethods answers OPTIONS on any route with its methods, and routes HEAD to the
// GET handler where no HEAD handler is registered. net/http drops the body of a HEAD
// response, so the GET handler gives the same status and headers, and writeJSON's
// Content-Length is the length the GET body would have.
func routeMethods(rt chi.Routes) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			path := routePath(r)
			switch r.Method {
			case http.MethodOptions:
				if serves(rt, http.MethodOptions, path) {
					break
				}
				allow := allowedMethods(rt, r)
				if len(allow) == 0 {
					break // the router's 404
				}
				w.Header().Set("Allow", strings.Join(allow, ", "))
				if contains(allow, http.MethodPatch) {
					// RFC 5789: OPTIONS is where a client learns which patch formats
					// a resource takes.
					w.Header().Set("Accept-Patch", ContentMergePatch+", "+ContentJSON)
				}
				w.WriteHeader(http.StatusNoContent)
				return
			case http.MethodHead:
				if rctx := chi.RouteContext(r.Context()); rctx != nil && !serves(rt, http.MethodHead, path) && serves(rt, http.MethodGet, path) {
					rctx.RouteMethod = http.MethodGet
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	WriteProblem(w, r, newProblem(http.StatusNotFound, "not-found", "Not found", "no route for "+r.URL.Path))
}

// methodNotAllowed is the router's 405, with the Allow header RFC 9110 requires.
// chi also calls it for a method it does not know at all, whatever the path; a path
// no route has is a 404 then, not a 405 with nothing allowed.
func methodNotAllowed(rt chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		allow := allowedMethods(rt, r)
		if len(allow) == 0 {
			notFound(w, r)
			return
		}
		list := strings.Join(allow, ", ")
		w.Header().Set("Allow", list)
		WriteProblem(w, r, newProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
			r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+list))
	}
}

// checkRequestHeaders refuses, before any handler runs, the request headers the API
// cannot honour: an X-Actor it cannot record and a content coding it does not decode.
func checkRequestHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := actorProblem(r); p != nil {
			WriteProblem(w, r, p)
			return
		}
		if p := contentEncodingProblem(r); p != nil {
			// RFC 9110 15.5.16: say which codings would have been accepted.
			w.Header().Set("Accept-Encoding", "identity")
			WriteProblem(w, r, p)
			return
		}
		next.ServeHTTP(w, r)
	})
}

const actorRule = "1 to 128 characters of A-Z a-z 0-9 - _ . : @ +"

// actorProblem refuses an X-Actor that is present but not a recordable actor. The
// actor becomes a commit trailer; replacing a bad one by "anonymous" would record a
// change under a name the client did not give, and hide the client's mistake.
func actorProblem(r *http.Request) *Problem {
	vs, present := r.Header["X-Actor"]
	if !present {
		return nil
	}
	if len(vs) != 1 {
		return newProblem(http.StatusBadRequest, "invalid-header", "Invalid header", "X-Actor must be given once",
			FieldError{Field: "X-Actor", Rule: "single", Detail: "give the header once"})
	}
	if !validActor(vs[0]) {
		return newProblem(http.StatusBadRequest, "invalid-header", "Invalid header", "X-Actor must be "+actorRule,
			FieldError{Field: "X-Actor", Rule: "format", Detail: actorRule})
	}
	return nil
}

// contentEncodingProblem refuses a request whose content is in a coding other than
// identity. The server does not decode request bodies: reading compressed bytes as
// JSON would give a confusing syntax error at best, and decoding them would need a
// limit on the decoded size as well as on the wire size.
func contentEncodingProblem(r *http.Request) *Problem {
	for _, v := range r.Header.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			if c == "" || strings.EqualFold(c, "identity") {
				continue
			}
			return newProblem(http.StatusUnsupportedMediaType, "unsupported-content-encoding", "Unsupported content encoding",
				"the server does not decode "+c+"; send the body uncompressed",
				FieldError{Field: "Content-Encoding", Rule: "contentCoding", Detail: "only identity is accepted"})
		}
	}
	return nil
}

// validPhase reports whether v names a phase, so a filter by a misspelt phase is a
// 400 rather than an empty list that looks like an answer.
func validPhase(v string) bool {
	for _, p := range store.Phases {
		if string(p) == v {
			return true
		}
	}
	return false
}

func phaseList() string {
	names := make([]string, len(store.Phases))
	for i, p := range store.Phases {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}
