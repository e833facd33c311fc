package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// The cluster configuration in clusters/local names the environment's addresses
// with these placeholders; Start replaces them before applying (a real cluster's
// configuration has literal URLs instead).
const (
	FleetURLVar     = "${FLEET_URL}"
	ChartRepoURLVar = "${CHART_REPO_URL}"
)

// ClusterManifests returns the cluster configuration (the files listed in
// ClusterDir/kustomization.yaml) with the placeholders replaced.
func (e *Env) ClusterManifests() ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(e.opts.ClusterDir, "kustomization.yaml"))
	if err != nil {
		return nil, fmt.Errorf("cluster configuration: %w", err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", e.opts.ClusterDir, err)
	}
	if len(k.Resources) == 0 {
		return nil, fmt.Errorf("%s/kustomization.yaml lists no resources", e.opts.ClusterDir)
	}
	r := strings.NewReplacer(FleetURLVar, e.FleetURL, ChartRepoURLVar, e.ChartRepoURL)
	var out []string
	for _, res := range k.Resources {
		b, err := os.ReadFile(filepath.Join(e.opts.ClusterDir, res))
		if err != nil {
			return nil, fmt.Errorf("cluster configuration: %w", err)
		}
		out = append(out, r.Replace(string(b)))
	}
	return []byte(strings.Join(out, "\n---\n")), nil
}

// applyCluster applies the cluster configuration and waits until Flux has applied
// the fleet's first commit.
func (e *Env) applyCluster(ctx context.Context) error {
	manifests, err := e.ClusterManifests()
	if err != nil {
		return err
	}
	if err := e.Apply(ctx, manifests); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := e.WaitReady(rctx, helmRepositoryGVK, client.ObjectKey{Namespace: fluxNamespace, Name: "storefleet"}); err != nil {
		return err
	}
	head, err := Git(ctx, e.FleetRepoPath, "rev-parse", "main")
	if err != nil {
		return err
	}
	_, err = e.Reconcile(rctx, head)
	return err
}
