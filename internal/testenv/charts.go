package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// startChartRepo serves <Dir>/chart-repo over HTTP and publishes the charts.
func (e *Env) startChartRepo(ctx context.Context) error {
	e.chartDir = filepath.Join(e.Dir, "chart-repo")
	if err := os.MkdirAll(e.chartDir, 0o755); err != nil {
		return err
	}
	helmHome := filepath.Join(e.Dir, "helm")
	e.helmEnv = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.charts = &http.Server{Handler: http.FileServer(http.Dir(e.chartDir)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.charts.Serve(ln) }()
	e.ChartRepoURL = "http://" + ln.Addr().String()
	return e.packageCharts(ctx)
}

// ChartDirs lists the chart folders (those with a Chart.yaml) under ChartsDir.
func (e *Env) ChartDirs() ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(e.opts.ChartsDir, "*", "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	sort.Strings(dirs)
	return dirs, nil
}

// packageCharts packages every chart with helm and rewrites index.yaml. Packages
// from earlier calls stay, so older chart versions remain installable.
func (e *Env) packageCharts(ctx context.Context) error {
	dirs, err := e.ChartDirs()
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := e.helm(ctx, "package", d, "--destination", e.chartDir); err != nil {
			return err
		}
	}
	return e.helm(ctx, "repo", "index", e.chartDir, "--url", e.ChartRepoURL)
}

func (e *Env) helm(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, e.Tools.Helm, args...)
	cmd.Env = e.helmEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm %v: %v: %s", args, err, out)
	}
	return nil
}

// PublishCharts packages the charts again (after a chart changed, e.g. a version
// bump), rewrites the index, and makes source-controller fetch the new index at
// once so a HelmRelease asking for the new version finds it.
func (e *Env) PublishCharts(ctx context.Context) error {
	if err := e.packageCharts(ctx); err != nil {
		return err
	}
	key := client.ObjectKey{Namespace: fluxNamespace, Name: "storefleet"}
	before, err := e.get(ctx, helmRepositoryGVK, key)
	if err != nil {
		return fmt.Errorf("HelmRepository %s: %w", key, err)
	}
	oldRev, _, _ := unstructured.NestedString(before.Object, "status", "artifact", "revision")
	requested, err := e.RequestReconcile(ctx, helmRepositoryGVK, key)
	if err != nil {
		return err
	}
	return Poll(ctx, 50*time.Millisecond, func() (bool, string, error) {
		u, err := e.get(ctx, helmRepositoryGVK, key)
		if err != nil {
			return false, err.Error(), nil
		}
		handled, _, _ := unstructured.NestedString(u.Object, "status", "lastHandledReconcileAt")
		rev, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "revision")
		ok, msg := IsReady(u)
		return ok && handled == requested, fmt.Sprintf("revision %s (before %s); %s", rev, oldRev, msg), nil
	})
}
