// Package fleetfixture fills a fleet repository with rendered stores, for the
// benchmarks that need a large fleet behind the API (internal/api, internal/dashboard).
// It owns nothing of the product: it drives gitrepo's writer the way the API does.
package fleetfixture

import (
	"context"
	"fmt"
	"strings"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// Name is the name of fixture store i.
func Name(i int) string { return fmt.Sprintf("fixture-%05d", i) }

// Fill commits size basic WooCommerce stores, Name(0) to Name(size-1), to the
// repository at url through gitrepo's writer, 1,000 stores a commit.
func Fill(ctx context.Context, url string, size int) error {
	r := render.Renderer{Options: render.LocalOptions()}
	w, err := gitrepo.Open(ctx, gitrepo.Options{URL: url})
	if err != nil {
		return err
	}
	defer w.Close()
	for start := 0; start < size; start += 1000 {
		var changes []gitrepo.Change
		for i := start; i < min(start+1000, size); i++ {
			s := store.Store{Name: Name(i), Engine: store.WooCommerce, Plan: "basic",
				Settings: store.Settings{AdminEmail: "a@example.com"}}.WithDefaults("")
			files, err := r.Render(s, store.StateActive)
			if err != nil {
				return err
			}
			dir := store.Dir(s.Cluster, s.Name)
			c := gitrepo.Change{Store: s.Name, Cluster: s.Cluster, Dir: dir, Action: gitrepo.ActionCreate, Actor: "fixture"}
			for _, f := range files {
				c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(f.Path, dir+"/"), Content: f.Content})
			}
			changes = append(changes, c)
		}
		for _, res := range w.SubmitAll(ctx, changes) {
			if res.Err != nil {
				return fmt.Errorf("fleetfixture: %w", res.Err)
			}
		}
	}
	return nil
}
