package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/storefleet/storefleet/internal/api"
)

// spec is the served OpenAPI document, parsed once, with a JSON Schema compiler
// over it (OpenAPI 3.1 schemas are JSON Schema 2020-12).
type spec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	cache    map[string]*jsonschema.Schema
	paths    []pathRE
}

type pathRE struct {
	template string
	re       *regexp.Regexp
}

const specURL = "mem://openapi.json"

var (
	specOnce sync.Once
	theSpec  *spec
	specErr  error
)

func loadSpec(t *testing.T) *spec {
	t.Helper()
	specOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI()))
		if err != nil {
			specErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		if err := c.AddResource(specURL, doc); err != nil {
			specErr = err
			return
		}
		s := &spec{doc: doc.(map[string]any), compiler: c, cache: map[string]*jsonschema.Schema{}}
		for p := range s.doc["paths"].(map[string]any) {
			re := "^" + regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$"
			re = strings.ReplaceAll(re, `\{`, "{")
			s.paths = append(s.paths, pathRE{p, regexp.MustCompile(re)})
		}
		theSpec = s
	})
	if specErr != nil {
		t.Fatalf("OpenAPI document: %v", specErr)
	}
	return theSpec
}

func ptrEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// check validates one real response against the document: the route and status must
// be documented, the Content-Type must be the documented one, the body must match
// its schema and every required documented header must be there.
//
// Three answers come from the HTTP layer for every path rather than from an
// operation, and are checked against the document's shared description of them: HEAD
// is the GET operation's response without a body; OPTIONS is 204 and any other
// method 405, both with Allow listing exactly the documented operations (plus HEAD
// where there is GET, and OPTIONS).
func (s *spec) check(t *testing.T, method, path string, status int, header http.Header, body []byte) {
	t.Helper()
	tmpl := ""
	for _, p := range s.paths {
		// Placeholders were quoted by QuoteMeta; match the literal path by template.
		if matchTemplate(p.template, path) {
			tmpl = p.template
			break
		}
	}
	if tmpl == "" {
		t.Fatalf("OpenAPI: %s %s is not documented", method, path)
	}
	item := s.doc["paths"].(map[string]any)[tmpl].(map[string]any)
	opMethod := strings.ToLower(method)
	if _, ok := item[opMethod]; !ok && method == http.MethodHead {
		if _, ok := item["get"]; ok {
			if len(body) != 0 {
				t.Fatalf("OpenAPI: HEAD %s has a body: %q", path, body)
			}
			opMethod = "get"
		}
	}
	var resp map[string]any
	var loc string
	if op, ok := item[opMethod].(map[string]any); ok {
		resp, ok = op["responses"].(map[string]any)[strconv.Itoa(status)].(map[string]any)
		if !ok {
			t.Fatalf("OpenAPI: %s %s answered %d, which is not documented; body: %s", method, tmpl, status, body)
		}
		loc = "#/paths/" + ptrEscape(tmpl) + "/" + opMethod + "/responses/" + strconv.Itoa(status)
	} else {
		switch {
		case method == http.MethodOptions && status == http.StatusNoContent:
			loc = "#/components/responses/Options"
		case status == http.StatusMethodNotAllowed:
			loc = "#/components/responses/MethodNotAllowed"
		default:
			t.Fatalf("OpenAPI: %s %s (%s) is not documented (answered %d)", method, path, tmpl, status)
		}
		resp = map[string]any{"$ref": loc}
		if got, want := allowOf(header), s.allow(item); got != want {
			t.Fatalf("OpenAPI: %s %s: Allow %q, documented %q", method, path, got, want)
		}
	}
	if ref, ok := resp["$ref"].(string); ok {
		loc = ref
		resp = s.resolve(ref)
	}
	s.checkHeaders(t, method, tmpl, status, loc, resp, header)
	if method == http.MethodHead {
		return
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if _, ok := content[mt]; !ok {
		t.Fatalf("OpenAPI: %s %s %d has Content-Type %q, documented: %v", method, tmpl, status, mt, keys(content))
	}
	if strings.HasPrefix(mt, "text/") {
		return // a text body (logs) is a string by definition; only JSON has a shape to check
	}
	sch := s.schema(t, loc+"/content/"+ptrEscape(mt)+"/schema")
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("OpenAPI: %s %s %d: body is not JSON: %v\n%s", method, tmpl, status, err, body)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("OpenAPI: %s %s %d: body does not match the schema: %v\n%s", method, tmpl, status, err, body)
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// allow is the Allow header the document implies for a path item, sorted.
func (s *spec) allow(item map[string]any) string {
	var ms []string
	for m := range item {
		switch m {
		case "parameters", "summary", "description", "servers":
			continue
		case "get":
			ms = append(ms, "HEAD")
		}
		ms = append(ms, strings.ToUpper(m))
	}
	ms = append(ms, "OPTIONS")
	sort.Strings(ms)
	return strings.Join(ms, ",")
}

func allowOf(h http.Header) string {
	var ms []string
	for _, v := range h.Values("Allow") {
		for _, m := range strings.Split(v, ",") {
			if m = strings.TrimSpace(m); m != "" {
				ms = append(ms, m)
			}
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, ",")
}

// checkHeaders holds a response to the headers its documentation names: a required
// one must be there, and any that is there must match its schema (an ETag's form).
func (s *spec) checkHeaders(t *testing.T, method, tmpl string, status int, loc string, resp map[string]any, header http.Header) {
	t.Helper()
	hs, _ := resp["headers"].(map[string]any)
	for name, h := range hs {
		hloc := loc + "/headers/" + ptrEscape(name)
		hm := h.(map[string]any)
		if ref, ok := hm["$ref"].(string); ok {
			hloc, hm = ref, s.resolve(ref)
		}
		v, present := header[http.CanonicalHeaderKey(name)]
		if !present {
			if req, _ := hm["required"].(bool); req {
				t.Fatalf("OpenAPI: %s %s %d lacks the required header %s", method, tmpl, status, name)
			}
			continue
		}
		if _, ok := hm["schema"]; !ok {
			continue
		}
		if err := s.schema(t, hloc+"/schema").Validate(any(v[0])); err != nil {
			t.Fatalf("OpenAPI: %s %s %d: header %s %q does not match its schema: %v", method, tmpl, status, name, v[0], err)
		}
	}
}

func matchTemplate(tmpl, path string) bool {
	a, b := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.HasPrefix(a[i], "{") {
			if b[i] == "" {
				return false
			}
			continue
		}
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (s *spec) resolve(ref string) map[string]any {
	var cur any = s.doc
	for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		cur = cur.(map[string]any)[p]
	}
	return cur.(map[string]any)
}

func (s *spec) schema(t *testing.T, loc string) *jsonschema.Schema {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.cache[loc]; ok {
		return sch
	}
	sch, err := s.compiler.Compile(specURL + loc)
	if err != nil {
		t.Fatalf("OpenAPI: compiling %s: %v", loc, err)
	}
	s.cache[loc] = sch
	return sch
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Every route the router serves is in the document, and every documented operation
// is served: the document cannot drift from the code.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	s := loadSpec(t)
	// Every optional route on: the webhook is served only with review configured.
	h := api.Handler(nil, api.Options{GitHub: &receiver{}})
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatal("handler is not a chi router")
	}
	served := map[string]bool{}
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		if route == "" {
			route = "/"
		}
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range s.doc["paths"].(map[string]any) {
		for m := range ops.(map[string]any) {
			if m == "parameters" {
				continue
			}
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("served but not documented: %s", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("documented but not served: %s", r)
		}
	}
	if len(served) < 10 {
		t.Fatalf("only %d routes served: %v", len(served), served)
	}
	_ = fmt.Sprint()
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
}
