package testenv

import (
	"os"
	"testing"
)

// env is the package's shared environment, started once by TestMain with the
// fixture chart as its chart repository.
var env *Env

func TestMain(m *testing.M) {
	charts := fixtureCharts()
	code := Main(m, Options{ChartsDir: charts, WithFluxCLI: true}, &env)
	os.RemoveAll(charts)
	os.Exit(code)
}

// fixtureCharts copies testdata/charts to a temporary folder, so tests can bump the
// fixture chart's version without touching the checkout.
func fixtureCharts() string {
	dir, err := os.MkdirTemp("", "storefleet-testenv-charts-")
	if err != nil {
		panic(err)
	}
	if err := os.CopyFS(dir, os.DirFS("testdata/charts")); err != nil {
		panic(err)
	}
	return dir
}
