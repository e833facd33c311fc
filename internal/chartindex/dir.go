package chartindex

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

// Dir offers the versions of the charts in a folder: every <Path>/*/Chart.yaml whose
// name is the engine's. It reads the few small files on each call, so a chart
// bumped on disk is offered at once, as the local environment republishes it.
type Dir struct {
	Path string
}

var _ store.Charts = Dir{}

// chartMeta is the part of a Chart.yaml read here.
type chartMeta struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Versions lists the engine's chart versions in the folder, sorted.
func (d Dir) Versions(ctx context.Context, e store.Engine) ([]string, error) {
	// A folder that is not there is a misconfiguration, not a source offering
	// nothing: that would refuse every store.
	if _, err := os.Stat(d.Path); err != nil {
		return nil, fmt.Errorf("chart folder: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(d.Path, "*", "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m chartMeta
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if m.Name == string(e) && m.Version != "" {
			out = append(out, m.Version)
		}
	}
	return sorted(out), nil
}
