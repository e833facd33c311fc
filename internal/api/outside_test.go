package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// A store created by someone else (another replica, a person with git) is never
// overwritten: the create is refused with 409, and the API learns the store.
func TestOutsidePushIsNotOverwritten(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("GET", "/api/v1/stores", nil), http.StatusOK)
	other, err := gitrepo.Open(context.Background(), gitrepo.Options{URL: e.remote})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r := render.Renderer{Options: render.LocalOptions()}
	s := store.Store{Name: "outside", Engine: store.Medusa, Plan: "premium", Settings: store.Settings{AdminEmail: "o@example.com"}}.WithDefaults("")
	files, err := r.Render(s, store.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	dir := store.Dir(s.Cluster, s.Name)
	c := gitrepo.Change{Store: s.Name, Cluster: s.Cluster, Dir: dir, Action: gitrepo.ActionCreate, Actor: "someone-else", RequestID: "outside-1"}
	for _, f := range files {
		c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(f.Path, dir+"/"), Content: f.Content})
	}
	if res := other.Submit(context.Background(), c); res.Err != nil {
		t.Fatal(res.Err)
	}
	n := e.commits()
	e.expect(e.do("POST", "/api/v1/stores", shop("outside")), http.StatusConflict)
	if e.commits() != n {
		t.Fatal("the refused create made a commit")
	}
	hr, _ := e.file(dir + "/helmrelease.yaml")
	if !strings.Contains(hr, "o@example.com") {
		t.Fatal("the outside store was overwritten")
	}
	got := e.expect(e.do("GET", "/api/v1/stores/outside", nil), http.StatusOK)
	if got["engine"] != "medusa" || got["plan"] != "premium" {
		t.Fatalf("the API did not learn the outside store: %v", got)
	}
}
