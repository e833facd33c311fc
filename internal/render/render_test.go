package render

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/k8sschema"
	"github.com/storefleet/storefleet/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func shop(e store.Engine, p store.PlanName) store.Store {
	return store.Store{Name: "shop", Engine: e, Plan: p, Settings: store.Settings{
		Title: "Shop — \"Ünïcødé\" #1: yes", AdminEmail: "owner@example.com", Currency: "EUR", Country: "DE",
	}}
}

// concat joins files as the golden files show them: a "# path" line before each file's content.
func concat(files []File) []byte {
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "# %s\n%s", f.Path, f.Content)
	}
	return b.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/render -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./internal/render -update to accept):\n%s", file, got)
	}
}

// validateFiles checks every object file against the real schemas (kustomization.yaml is kustomize's own
// format; TestFluxBuild covers it).
func validateFiles(t *testing.T, files []File) {
	t.Helper()
	for _, f := range files {
		if path.Base(f.Path) == KustomizationFile {
			continue
		}
		if err := k8sschema.Validate(f.Content); err != nil {
			t.Errorf("%s: %v", f.Path, err)
		}
	}
}

func TestGolden(t *testing.T) {
	opts := LocalOptions()
	for _, e := range store.Engines {
		for _, p := range store.PlanNames {
			t.Run(string(e)+"-"+string(p), func(t *testing.T) {
				files, err := Store(shop(e, p), opts)
				if err != nil {
					t.Fatal(err)
				}
				validateFiles(t, files)
				golden(t, string(e)+"-"+string(p), concat(files))
			})
		}
		t.Run(string(e)+"-retained", func(t *testing.T) {
			files, err := Retained(shop(e, store.Basic), opts)
			if err != nil {
				t.Fatal(err)
			}
			validateFiles(t, files)
			golden(t, string(e)+"-retained", concat(files))
		})
		t.Run(string(e)+"-purge1", func(t *testing.T) {
			files, err := PurgeStep1(shop(e, store.Basic), opts)
			if err != nil {
				t.Fatal(err)
			}
			validateFiles(t, files)
			golden(t, string(e)+"-purge1", concat(files))
		})
	}
	t.Run("oci", func(t *testing.T) {
		o := opts
		o.Chart = ChartSource{Kind: SourceOCIRepository, URL: "oci://ghcr.io/storefleet/charts", Namespace: "flux-system"}
		o.DisableWait = false
		o.IngressClassName, o.ClusterIssuer, o.TLSSecretName = "nginx", "letsencrypt", "wildcard-tls"
		s := shop(store.WooCommerce, store.Standard)
		s.Cluster, s.Domain, s.Version = "prod-eu", "shop.example.com", "1.2.3"
		s.Settings.Language = "de_DE_formal"
		files, err := Store(s, o)
		if err != nil {
			t.Fatal(err)
		}
		validateFiles(t, files)
		golden(t, "woocommerce-oci", concat(files))
	})
}

func TestDeterministic(t *testing.T) {
	for i := 0; i < 20; i++ {
		a, err := Store(shop(store.Medusa, store.Premium), LocalOptions())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Store(shop(store.Medusa, store.Premium), LocalOptions())
		if !bytes.Equal(concat(a), concat(b)) {
			t.Fatal("two renders of the same store differ")
		}
	}
}

func TestStates(t *testing.T) {
	s := shop(store.WooCommerce, store.Basic)
	dir := store.Dir("local", "shop")
	names := func(files []File) string {
		var n []string
		for _, f := range files {
			if path.Dir(f.Path) != dir {
				t.Errorf("file %s outside %s", f.Path, dir)
			}
			n = append(n, path.Base(f.Path))
		}
		return strings.Join(n, " ")
	}
	live, _ := Store(s, LocalOptions())
	ret, _ := Retained(s, LocalOptions())
	p1, _ := PurgeStep1(s, LocalOptions())
	if got := names(live); got != "helmrelease.yaml kustomization.yaml namespace.yaml policy.yaml rbac.yaml" {
		t.Errorf("live: %s", got)
	}
	if got := names(ret); got != "kustomization.yaml namespace.yaml policy.yaml rbac.yaml" {
		t.Errorf("retained: %s", got)
	}
	if got := names(p1); got != "kustomization.yaml namespace.yaml" {
		t.Errorf("purge step 1: %s", got)
	}
	// The data holder is never prunable until the purge says so.
	for _, files := range [][]File{live, ret} {
		if !bytes.Contains(concat(files), []byte("kustomize.toolkit.fluxcd.io/prune: disabled")) {
			t.Error("namespace not prune-disabled")
		}
	}
	if c := concat(p1); !bytes.Contains(c, []byte("kustomize.toolkit.fluxcd.io/prune: enabled")) || bytes.Contains(c, []byte("disabled")) {
		t.Errorf("purge step 1 does not re-enable pruning:\n%s", c)
	}
}

func TestStoreDir(t *testing.T) {
	// sha256("shop") begins 8d9…; the shard is those three hex characters.
	if got := store.Dir("local", "shop"); got != "stores/local/8d9/shop" {
		t.Fatalf("StoreDir = %s", got)
	}
	seen := map[string]bool{}
	for i := 0; i < 50000; i++ {
		seen[store.Shard(fmt.Sprintf("store-%d", i))] = true
	}
	if len(seen) != 4096 {
		t.Fatalf("50000 names fill %d of 4096 shards", len(seen))
	}
}

func TestInvalidStoreRefused(t *testing.T) {
	s := shop(store.Medusa, "gold")
	s.Name = "../x"
	s.Settings.Language = "en_US"
	_, err := Store(s, LocalOptions())
	if store.ErrorCode(err) != store.EINVALID || len(store.FieldErrors(err)) != 4 {
		t.Fatalf("want 4 field errors (name, plan, domain derived from the name, language), got %v", err)
	}
	o := LocalOptions()
	o.MedusaImage = Image{}
	if _, err := Store(shop(store.Medusa, store.Basic), o); store.ErrorCode(err) != store.EINVALID {
		t.Fatalf("medusa without image: %v", err)
	}
	if _, err := Store(shop(store.WooCommerce, store.Basic), o); err != nil {
		t.Fatalf("woocommerce needs no medusa image: %v", err)
	}
}

func TestPSALevels(t *testing.T) {
	if PSALevel(store.WooCommerce) != "baseline" || PSALevel(store.Medusa) != "restricted" {
		t.Fatal("PSA levels changed: tell the charts engineer")
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := LocalOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	o := LocalOptions()
	o.Chart = ChartSource{Kind: "GitRepository"}
	o.Timeout = 0
	o.PrivateCIDRs = []string{"10.0.0.1/8"}
	o.DNSNamespace = ""
	err := o.Validate()
	if err == nil {
		t.Fatal("broken options accepted")
	}
	for _, want := range []string{"GitRepository", "timeout", "10.0.0.1/8", "DNS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q not reported: %v", want, err)
		}
	}
	if _, err := Store(shop(store.WooCommerce, store.Basic), o); err == nil {
		t.Fatal("render ran with broken options")
	}
	o = LocalOptions()
	o.Chart = ChartSource{Kind: SourceOCIRepository, URL: "https://example.com"}
	if o.Validate() == nil {
		t.Fatal("non-OCI URL accepted")
	}
}

// TestFleetSeed keeps fleet/ in step with render: the README's example folder is StoreDir's, and the
// local cluster's stores folder exists in the seed.
func TestFleetSeed(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "fleet", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("`"+store.Dir("local", "shop")+"`")) {
		t.Errorf("fleet/README.md does not show %s", store.Dir("local", "shop"))
	}
	for _, f := range []string{KustomizationFile, NamespaceFile, RBACFile, PolicyFile, HelmReleaseFile} {
		if !bytes.Contains(readme, []byte(f)) {
			t.Errorf("fleet/README.md does not describe %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join("..", "..", "fleet", "stores", store.DefaultCluster)); err != nil {
		t.Errorf("the seed lacks stores/%s: %v", store.DefaultCluster, err)
	}
}
