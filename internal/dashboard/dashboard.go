package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// contentTypes are set by name rather than sniffed: a module script served with a
// type the browser does not accept is refused, and nosniff forbids guessing.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// policy keeps the page to its own origin: no inline script, no third-party
// asset, no framing (a framed dashboard could be click-jacked into a purge).
const policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Handler serves the page at / and its files under /assets/. Any other path is
// not the dashboard's: the caller routes it elsewhere or answers 404.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(r.URL.Path, "/assets/")
			if name == r.URL.Path || name == "index.html" {
				http.NotFound(w, r)
				return
			}
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", contentTypes[path.Ext(name)])
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", policy)
		h.Set("Referrer-Policy", "no-referrer")
		// The assets change with the binary; revalidating each load costs little on
		// a dashboard and never leaves an old script talking to a new API.
		h.Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b)
	})
}

// Owns reports whether path is the dashboard's: the page or one of its assets.
func Owns(p string) bool { return p == "/" || strings.HasPrefix(p, "/assets/") }

// Mount puts the dashboard and its sign-in (nil: no authentication configured)
// beside the API on one handler: the page, its assets and the sign-in routes are
// public; every other path goes to the API, with the session's token when the
// browser has one, so /api/v1 stays behind the API's own authentication.
func Mount(api http.Handler, signIn *SignIn) http.Handler {
	page := Handler()
	auth := signIn.Routes()
	relay := signIn.Relay(api)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case Owns(r.URL.Path):
			page.ServeHTTP(w, r)
		case signIn.OwnsAuth(r.URL.Path):
			auth.ServeHTTP(w, r)
		default:
			relay.ServeHTTP(w, r)
		}
	})
}
