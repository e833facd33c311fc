package render

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

func tenantShop(e store.Engine, p store.PlanName) store.Store {
	s := shop(e, p)
	s.Tenant = "acme"
	return s
}

func TestGoldenTenant(t *testing.T) {
	opts := LocalOptions()
	for name, fn := range map[string]func(store.Store, Options) ([]File, error){
		"woocommerce-tenant": Store, "medusa-tenant-retained": Retained, "woocommerce-tenant-purge1": PurgeStep1,
	} {
		t.Run(name, func(t *testing.T) {
			e := store.Engine(name[:strings.Index(name, "-")])
			files, err := fn(tenantShop(e, store.Standard), opts)
			if err != nil {
				t.Fatal(err)
			}
			validateFiles(t, files)
			golden(t, name, concat(files))
		})
	}
}

// objectLabels returns each object's kind and labels, file by file.
func objectLabels(t *testing.T, files []File) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, f := range files {
		if path.Base(f.Path) == KustomizationFile {
			continue
		}
		for _, doc := range splitDocs(t, f.Content) {
			var o struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name   string            `json:"name"`
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &o); err != nil {
				t.Fatal(err)
			}
			out[o.Kind+"/"+o.Metadata.Name] = o.Metadata.Labels
		}
	}
	return out
}

// The tenant label sits on the Namespace (what kubectl get ns -l selects, in every
// state) and on the HelmRelease, and nowhere else; a store without a tenant has it
// nowhere.
func TestTenantLabel(t *testing.T) {
	oci := LocalOptions()
	oci.Chart = ChartSource{Kind: SourceOCIRepository, URL: "oci://registry.example.com/charts", Namespace: "flux-system"}
	for _, opts := range []Options{LocalOptions(), oci} {
		for _, e := range store.Engines {
			for name, fn := range map[string]func(store.Store, Options) ([]File, error){
				"active": Store, "retained": Retained, "purge1": PurgeStep1,
			} {
				files, err := fn(tenantShop(e, store.Basic), opts)
				if err != nil {
					t.Fatal(err)
				}
				labelled := 0
				for obj, l := range objectLabels(t, files) {
					v, ok := l[LabelStoreTenant]
					want := strings.HasPrefix(obj, "Namespace/") || strings.HasPrefix(obj, "HelmRelease/")
					if ok != want || ok && v != "acme" {
						t.Errorf("%s %s %s: %s = %q (present %v)", e, name, obj, LabelStoreTenant, v, ok)
					}
					if ok {
						labelled++
					}
				}
				if wantN := map[string]int{"active": 2, "retained": 1, "purge1": 1}[name]; labelled != wantN {
					t.Errorf("%s %s: %d objects carry the tenant, want %d", e, name, labelled, wantN)
				}
				untenanted, err := fn(shop(e, store.Basic), opts)
				if err != nil {
					t.Fatal(err)
				}
				if c := concat(untenanted); bytes.Contains(c, []byte(LabelStoreTenant)) {
					t.Errorf("%s %s: a store without tenant renders the tenant label:\n%s", e, name, c)
				}
			}
		}
	}
}

var goldenFileHeader = regexp.MustCompile(`(?m)^# (stores/\S+)\n`)

// splitGolden turns a golden file back into the files it concatenates.
func splitGolden(t *testing.T, b []byte) []File {
	t.Helper()
	idx := goldenFileHeader.FindAllSubmatchIndex(b, -1)
	if len(idx) == 0 {
		t.Fatal("no files in golden file")
	}
	var out []File
	for i, m := range idx {
		end := len(b)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, File{Path: string(b[m[2]:m[3]]), Content: b[m[1]:end]})
	}
	return out
}

// Folders written before tenants existed (testdata/pre-tenant holds render's output
// from then, frozen: never rewritten by -update) parse with an empty tenant, which
// the lifecycle reads as its default tenant; and a store without tenant renders
// byte for byte what it did then, so nothing changes in Git until the store does —
// except a live store's HelmRelease, which since the shared chart sources references
// its engine × version's source (spec.chartRef) instead of carrying the chart: the
// old folder still reads back as the same store, version included.
func TestParseBeforeTenants(t *testing.T) {
	oci := LocalOptions()
	oci.Chart = ChartSource{Kind: SourceOCIRepository, URL: "oci://ghcr.io/storefleet/charts", Namespace: "flux-system"}
	oci.DisableWait = false
	// The fixture's cluster had one Helm timeout for every engine and plan.
	oci.WaitTimeouts = nil
	oci.IngressClassName, oci.ClusterIssuer, oci.TLSSecretName = "nginx", "letsencrypt", "wildcard-tls"
	cases := map[string]struct {
		opts  Options
		state store.State
	}{
		"woocommerce-standard": {LocalOptions(), store.StateActive},
		"medusa-basic":         {LocalOptions(), store.StateActive},
		"woocommerce-retained": {LocalOptions(), store.StateRetained},
		"medusa-purge1":        {LocalOptions(), store.StatePurging},
		"woocommerce-oci":      {oci, store.StateActive},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			old, err := os.ReadFile(filepath.Join("testdata", "pre-tenant", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(old, []byte(LabelStoreTenant)) {
				t.Fatal("the pre-tenant fixture carries a tenant")
			}
			files := splitGolden(t, old)
			r := Renderer{Options: tc.opts}
			s, st, err := r.Parse(files)
			if err != nil {
				t.Fatal(err)
			}
			if s.Tenant != "" || st != tc.state || s.Name != "shop" {
				t.Fatalf("parsed tenant %q, state %s, name %q", s.Tenant, st, s.Name)
			}
			again, err := r.Render(s, st)
			if err != nil {
				t.Fatal(err)
			}
			want := old
			if st == store.StateActive {
				back, _, err := r.Parse(again)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(back, s) || s.Version == "" {
					t.Fatalf("the old folder reads as %+v, its new rendering as %+v", s, back)
				}
				want = concat(again)
			} else if !bytes.Equal(concat(again), old) {
				t.Fatalf("a store without tenant no longer renders as before:\n%s", concat(again))
			}
			// The same store with a tenant differs from the old files only by the
			// tenant label lines.
			s.Tenant = "acme"
			withTenant, err := r.Render(s, st)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(string(concat(withTenant)), "    "+LabelStoreTenant+": acme\n", "")
			if got != string(want) {
				t.Fatalf("the tenant changed more than its label:\n%s", concat(withTenant))
			}
		})
	}
}

// TestTenantIsParses: Tenant, which the writer's quota check reads, answers what
// Parse reads into Store.Tenant in every state, and refuses what Parse refuses for
// its Namespace.
func TestTenantIsParses(t *testing.T) {
	r := Renderer{Options: LocalOptions()}
	for _, tenant := range []string{"acme", ""} {
		for _, st := range []store.State{store.StateActive, store.StateRetained, store.StatePurging} {
			s := shop(store.WooCommerce, store.Basic)
			s.Tenant = tenant
			files, err := r.Render(s, st)
			if err != nil {
				t.Fatal(err)
			}
			parsed, _, err := r.Parse(files)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := r.Tenant(files); err != nil || got != parsed.Tenant || got != tenant {
				t.Errorf("tenant %q, %s: Tenant %q (%v), Parse %q", tenant, st, got, err, parsed.Tenant)
			}
		}
	}
	if _, err := r.Tenant([]File{{Path: "stores/local/0/x/kustomization.yaml", Content: []byte("kind: Kustomization\n")}}); err == nil {
		t.Error("Tenant of a folder without a Namespace: no error")
	}
}
