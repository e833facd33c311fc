package render

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/storefleet/storefleet/internal/store"
)

// Every store of one engine and version references the same chart source, and renders
// it byte for byte the same, whatever else differs between the stores; another
// version or engine is another source.
func TestSharedChartSource(t *testing.T) {
	opts := LocalOptions()
	oci := opts
	oci.Chart = ChartSource{Kind: SourceOCIRepository, URL: "oci://ghcr.io/storefleet/charts", Namespace: "flux-system"}
	for _, tc := range []struct {
		name string
		opts Options
		kind string
	}{{"helmchart", opts, "HelmChart"}, {"ocirepository", oci, "OCIRepository"}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := shop(store.WooCommerce, store.Basic), shop(store.WooCommerce, store.Premium)
			b.Name, b.Tenant, b.Settings.Title = "other", "acme", "Other"
			a.Version, b.Version = "1.2.3", "1.2.3"
			fa, err := SharedChartSource(a, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			fb, err := SharedChartSource(b, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if fa.Path != fb.Path || !bytes.Equal(fa.Content, fb.Content) {
				t.Fatalf("two stores of woocommerce 1.2.3 render different sources:\n%s\n%s", fa.Content, fb.Content)
			}
			if want := "chart-sources/local/woocommerce-1.2.3.yaml"; fa.Path != want {
				t.Fatalf("path %s, want %s", fa.Path, want)
			}
			validateFiles(t, []File{fa})
			// Beside the store goldens, not among them: the shard identity is checked
			// against the kinds those hold (internal/charts), and this is not applied by it.
			golden(t, "chart-sources/"+tc.name, concat([]File{fa}))

			// The store's HelmRelease points at exactly that object.
			files, err := Store(a, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			hr := string(fileNamed(t, files, HelmReleaseFile).Content)
			ref := "chartRef:\n    kind: " + tc.kind + "\n    name: woocommerce-1.2.3\n    namespace: flux-system\n"
			if !strings.Contains(hr, ref) || strings.Contains(hr, "\n  chart:\n") {
				t.Fatalf("the HelmRelease does not reference the shared source by chartRef alone:\n%s", hr)
			}
			if !strings.Contains(string(fa.Content), "kind: "+tc.kind+"\n") || !strings.Contains(string(fa.Content), "name: woocommerce-1.2.3\n  namespace: flux-system\n") {
				t.Fatalf("the shared source is not the %s the HelmRelease names:\n%s", tc.kind, fa.Content)
			}

			b.Version = "1.2.4"
			fc, err := SharedChartSource(b, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			m := shop(store.Medusa, store.Basic)
			m.Version = "1.2.3"
			fm, err := SharedChartSource(m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if fc.Path == fa.Path || fm.Path == fa.Path {
				t.Fatalf("another version or engine shares the path %s", fa.Path)
			}
		})
	}
}

// The name is a valid object name for every semantic version, and two versions never
// share one (upper case and build metadata cannot go into a name as they are).
func TestChartSourceName(t *testing.T) {
	seen := map[string]string{}
	for _, v := range []string{"1.2.3", "1.2.3-rc.1", "1.2.3-RC.1", "1.2.3-rc-1", "1.2.3+build.7", "1.2.3-build.7", "1.2.3+Build.7", "10.20.30-alpha.beta.1+sha.5114f85", "1.0.0-" + strings.Repeat("a", 58), "1.0.0-" + strings.Repeat("a", 57) + "b"} {
		for _, e := range store.Engines {
			n := ChartSourceName(e, v)
			if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
				t.Errorf("%s %s: name %q: %v", e, v, n, errs)
			}
			if len(n) > 63 {
				// Flux labels the artifacts it builds with the source's name.
				t.Errorf("%s %s: name %q is longer than a label value may be", e, v, n)
			}
			if prev, ok := seen[n]; ok {
				t.Errorf("%s %s and %s share the name %q", e, v, prev, n)
			}
			seen[n] = string(e) + " " + v
		}
	}
	if got := ChartSourceName(store.WooCommerce, "0.1.0"); got != "woocommerce-0.1.0" {
		t.Fatalf("a plain version's name is %q", got)
	}
}

func fileNamed(t *testing.T, files []File, base string) File {
	t.Helper()
	for _, f := range files {
		if strings.HasSuffix(f.Path, "/"+base) {
			return f
		}
	}
	t.Fatalf("no %s among %d files", base, len(files))
	return File{}
}
