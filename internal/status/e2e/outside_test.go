package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// TestOutsidePush: a store committed to the fleet repository by someone else (an
// operator's push, a merged pull request) is published by gitops-api's background
// pass, appears in the API, and reaches ready; a change to it made the same way is
// what the API then shows.
func TestOutsidePush(t *testing.T) {
	a := startAPI(t)
	ctx := context.Background()
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: t.TempDir() + "/clone.git"})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	opts := render.LocalOptions()
	opts.Chart.Name = "storefleet"
	rnd := render.Renderer{Options: opts}
	push := func(st store.Store, action gitrepo.Action, id string) {
		t.Helper()
		files, err := rnd.Render(st, store.StateActive)
		if err != nil {
			t.Fatal(err)
		}
		dir := store.Dir(st.Cluster, st.Name)
		c := gitrepo.Change{Store: st.Name, Cluster: st.Cluster, Dir: dir, Action: action, Actor: "operator", RequestID: id}
		for _, f := range files {
			c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(f.Path, dir+"/"), Content: f.Content})
		}
		// A push by hand brings the store's chart source along, as gitops-api's commits do.
		c.Shared = sharedSource(t, rnd, st)
		for _, r := range repo.SubmitAll(ctx, []gitrepo.Change{c}) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	st := store.Store{Name: "handmade", Engine: store.WooCommerce, Plan: "basic",
		Settings: store.Settings{AdminEmail: "owner@example.com", Title: "Made by hand"}}.WithDefaults("")
	push(st, gitrepo.ActionCreate, "outside-1")

	waitFor(t, 3*time.Minute, func() (bool, string) {
		resp, err := http.Get(a.URL + "/api/v1/stores/handmade")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, "GET: " + resp.Status
		}
		v := a.get(t, "handmade")
		return v.Status.Phase == "ready", string(v.Status.Phase) + " " + v.Status.Message
	})
	if v := a.get(t, "handmade"); v.Settings.Title != "Made by hand" {
		t.Fatalf("store read back as %+v", v)
	}

	st.Settings.Title = "Renamed by hand"
	push(st, gitrepo.ActionUpdate, "outside-2")
	waitFor(t, 2*time.Minute, func() (bool, string) {
		v := a.get(t, "handmade")
		return v.Settings.Title == "Renamed by hand", "title " + v.Settings.Title
	})
}
