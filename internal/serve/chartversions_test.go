package serve

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/storefleet/storefleet/internal/chartindex"
)

// Where the chart versions come from: a folder of charts or an index (file or
// URL) for a HelmRepository; nothing for an OCI registry or "none". The default
// folder may be missing (gitops-api run from elsewhere): then nothing is checked;
// a folder named explicitly must exist.
func TestChartVersionsSource(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	index := filepath.Join(t.TempDir(), "index.yaml")
	if err := os.WriteFile(index, []byte("apiVersion: v1\nentries: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		source, where, want string
		fails               bool
	}{
		{"helmrepository", "../../charts", "dir", false},
		{"helmrepository", "https://charts.example.com/index.yaml", "index", false},
		{"helmrepository", index, "index", false},
		{"helmrepository", "none", "", false},
		{"oci", "../../charts", "", false},
		{"helmrepository", filepath.Join(t.TempDir(), "missing"), "", true},
	} {
		got, err := chartVersions(c.source, c.where, log)
		kind := ""
		switch got.(type) {
		case chartindex.Dir:
			kind = "dir"
		case *chartindex.Index:
			kind = "index"
		}
		if kind != c.want || (err != nil) != c.fails {
			t.Errorf("%s %s: %T %v, want %q (fails %v)", c.source, c.where, got, err, c.want, c.fails)
		}
	}
	// The default, relative to where gitops-api runs: here (internal/serve) there is
	// no charts folder, and that is not an error.
	if got, err := chartVersions("helmrepository", defaultChartVersions, log); got != nil || err != nil {
		t.Errorf("missing default folder: %v %v", got, err)
	}
}
