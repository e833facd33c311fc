package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
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
// be documented, the Content-Type must be the documented one and the body must match
// its schema.
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
	op, ok := s.doc["paths"].(map[string]any)[tmpl].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		t.Fatalf("OpenAPI: %s %s (%s) is not documented", method, path, tmpl)
	}
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(status)].(map[string]any)
	if !ok {
		t.Fatalf("OpenAPI: %s %s answered %d, which is not documented; body: %s", method, tmpl, status, body)
	}
	loc := "#/paths/" + ptrEscape(tmpl) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status)
	if ref, ok := resp["$ref"].(string); ok {
		loc = ref
		resp = s.resolve(ref)
	}
	s.checkHeaders(t, method, tmpl, status, loc, resp, header)
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if _, ok := content[mt]; !ok {
		t.Fatalf("OpenAPI: %s %s %d has Content-Type %q, documented: %v", method, tmpl, status, mt, keys(content))
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
	h := api.Handler(nil, api.Options{})
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
