package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	dir, err := testCharts()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: test charts:", err)
		os.Exit(1)
	}
	code := testenv.Main(m, testenv.Options{ChartsDir: dir}, &env)
	_ = os.RemoveAll(dir)
	if apiDataDir != "" {
		_ = os.RemoveAll(apiDataDir)
	}
	os.Exit(code)
}

// testCharts is the chart repository of these tests: the project's woocommerce chart
// (0.1.0), the same chart as 0.1.1 (the version bump a patch asks for), as 0.1.2
// with a template the API server refuses (a chart that fails to install) and as 0.1.3,
// which only TestNewVersionFetchedAtOnce uses (a version no store used before). The
// versions live only in this temporary folder.
func testCharts() (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "storefleet-status-charts-")
	if err != nil {
		return "", err
	}
	src := os.DirFS(filepath.Join(root, "charts", "woocommerce"))
	for _, v := range []string{"0.1.0", "0.1.1", "0.1.2", "0.1.3"} {
		d := filepath.Join(dir, "woocommerce-"+v)
		if err := os.CopyFS(d, src); err != nil {
			return "", err
		}
		chart := filepath.Join(d, "Chart.yaml")
		data, err := os.ReadFile(chart)
		if err != nil {
			return "", err
		}
		if !strings.Contains(string(data), "\nversion: 0.1.0\n") {
			return "", fmt.Errorf("%s: expected version 0.1.0 (the test derives 0.1.1 and 0.1.2 from it)", chart)
		}
		data = []byte(strings.Replace(string(data), "\nversion: 0.1.0\n", "\nversion: "+v+"\n", 1))
		if err := os.WriteFile(chart, data, 0o644); err != nil {
			return "", err
		}
	}
	// Upper case is not a valid object name: the API server refuses the ConfigMap and
	// helm install fails on every attempt.
	broken := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-Not_A_Valid_Name\ndata: {}\n"
	if err := os.WriteFile(filepath.Join(dir, "woocommerce-0.1.2", "templates", "broken.yaml"), []byte(broken), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}
