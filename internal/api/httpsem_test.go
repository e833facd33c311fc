package api

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// HEAD on an event stream answers its headers and ends, instead of streaming into a
// response nobody reads.
func TestHeadOnEventStream(t *testing.T) {
	tr := status.New(status.Options{})
	defer tr.Close()
	tr.SetConnected(true)
	tr.Load("shop", status.Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0", Shard: "x"})
	srv := httptest.NewServer(Handler(nil, Options{Status: tr}))
	defer srv.Close()
	c := &http.Client{Timeout: 5 * time.Second}
	for _, p := range []string{"/api/v1/stores/shop/events", "/api/v1/events"} {
		res, err := c.Head(srv.URL + p)
		if err != nil {
			t.Fatalf("HEAD %s: %v", p, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("HEAD %s: %d %s", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	res, err := c.Head(srv.URL + "/api/v1/stores/nope/events")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD of an unknown store's events: %d", res.StatusCode)
	}
}

// Every problem type the code can answer is listed in the OpenAPI document, so a
// client reading the document knows every type it can meet.
func TestProblemTypesDocumented(t *testing.T) {
	doc := string(OpenAPI())
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "newProblem" {
				return true
			}
			lit, ok := call.Args[1].(*ast.BasicLit)
			if !ok {
				t.Errorf("%s: problem type is not a literal", fset.Position(call.Pos()))
				return true
			}
			code, _ := strconv.Unquote(lit.Value)
			found++
			if !strings.Contains(doc, `"`+problemType(code)+`"`) {
				t.Errorf("%s: problem type %s is not in openapi.json", fset.Position(call.Pos()), problemType(code))
			}
			return true
		})
	}
	if found < 10 {
		t.Fatalf("only %d newProblem calls found", found)
	}
}

// The phases the list accepts are the ones the document lists.
func TestPhasesDocumented(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Phase struct {
					Enum []string `json:"enum"`
				} `json:"Phase"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(doc.Components.Schemas.Phase.Enum, ", "), phaseList(); got != want {
		t.Fatalf("documented phases %s, store.Phases %s", got, want)
	}
}
