package clustertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

func sample(name string, e store.Engine, p store.PlanName) store.Store {
	return store.Store{Name: name, Engine: e, Plan: p, Settings: store.Settings{
		Title: "Shop — \"Ünïcødé\" #1: yes", AdminEmail: "owner@example.com", Currency: "EUR", Country: "DE",
	}}.WithDefaults(store.DefaultBaseDomain)
}

// dryRun creates the store's Namespace for real (namespaced objects cannot be
// admitted, even in a dry run, into a namespace that does not exist) and then sends
// every other object as a strict server-side dry-run create.
func dryRun(ctx context.Context, t *testing.T, files []render.File) (checked int, errs []string) {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if strings.HasSuffix(f.Path, "kustomization.yaml") {
			continue // kustomize's own file, not an API object
		}
		docs, err := testenv.DecodeYAML(f.Content)
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		objs = append(objs, docs...)
	}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			if err := env.Client.Create(ctx, o.DeepCopy(), client.FieldValidation("Strict")); err != nil {
				errs = append(errs, fmt.Sprintf("Namespace %s: %v", o.GetName(), err))
			}
			checked++
		}
	}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			continue
		}
		err := env.Client.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict"))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err))
		}
		checked++
	}
	return checked, errs
}

func TestRenderedObjectsPassStrictServerDryRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := render.LocalOptions()
	states := []struct {
		name string
		fn   func(store.Store, render.Options) ([]render.File, error)
		min  int // objects at least: purge step 1 leaves only the prunable Namespace
	}{{"live", render.Store, 6}, {"retained", render.Retained, 4}, {"purge1", render.PurgeStep1, 1}}
	for _, e := range []store.Engine{store.WooCommerce, store.Medusa} {
		for _, p := range store.PlanNames {
			for _, st := range states {
				name := fmt.Sprintf("%s-%s-%s", st.name, e, p)
				t.Run(name, func(t *testing.T) {
					s := sample(fmt.Sprintf("%.1s%.1s%s", e, p, st.name), e, p)
					files, err := st.fn(s, opts)
					if err != nil {
						t.Fatal(err)
					}
					n, errs := dryRun(ctx, t, files)
					for _, e := range errs {
						t.Error(e)
					}
					if n < st.min {
						t.Fatalf("only %d objects checked, want at least %d", n, st.min)
					}
				})
			}
		}
	}
}

// The dry-run must be able to fail: a field the schema does not know, added to a
// rendered HelmRelease, is refused under Strict (without it, the server would drop the
// field and answer 201).
func TestStrictDryRunRefusesUnknownField(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	files, err := render.Store(sample("strictcheck", store.WooCommerce, store.Basic), render.LocalOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if strings.HasSuffix(f.Path, "helmrelease.yaml") {
			files[i].Content = []byte(strings.Replace(string(f.Content), "\nspec:\n", "\nspec:\n  installWithoutAsking: true\n", 1))
		}
	}
	_, errs := dryRun(ctx, t, files)
	if len(errs) != 1 || !strings.Contains(errs[0], "installWithoutAsking") {
		t.Fatalf("want exactly the HelmRelease refused for its unknown field, got %d errors: %v", len(errs), errs)
	}
}
