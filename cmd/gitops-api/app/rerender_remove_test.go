package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// A PersistentVolumeClaim manifest: what must never be pruned by a removal.
const legacyPVC = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: legacy-data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
`

const legacyConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: legacy
data:
  a: b
`

// put writes content at the fleet path p of the work tree.
func (f testFleet) put(p, content string) {
	f.t.Helper()
	fp := filepath.Join(f.work, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(fp, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f testFleet) exists(p string) bool {
	_, err := os.Lstat(filepath.Join(f.work, filepath.FromSlash(p)))
	return err == nil
}

// listInKustomization adds name to the resources of the store folder's
// kustomization.yaml, as an older render listing one more manifest would have.
func (f testFleet) listInKustomization(folder, name string) {
	f.t.Helper()
	p := path.Join(folder, render.KustomizationFile)
	b, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(p)))
	if err != nil {
		f.t.Fatal(err)
	}
	var k map[string]any
	if err := yaml.Unmarshal(b, &k); err != nil {
		f.t.Fatal(err)
	}
	k["resources"] = append(k["resources"].([]any), name)
	out, err := yaml.Marshal(k)
	if err != nil {
		f.t.Fatal(err)
	}
	f.put(p, string(out))
}

// TestRerenderRemovesFilesRenderNoLongerMakes: a store folder holding files render
// does not make (one beside its manifests, one in a subfolder) holds exactly render's
// files after a rerender in the flag form, in a commit with the usual trailers that
// counts the store as changed; files outside the store folders (in a shard folder, a
// cluster folder, the stores root, the chart sources, the repository root) stay. The
// store's kustomization.yaml does not name them, so Flux never applied them and their
// removal prunes nothing, even of the PVC one holds. A second run commits nothing.
func TestRerenderRemovesFilesRenderNoLongerMakes(t *testing.T) {
	f, stores := newRerenderFleet(t, render.LocalOptions())
	s := stores[0].s
	folder := store.DirIn(s.Cluster, s.Name, rerenderShards)
	extra := []string{path.Join(folder, "pvc.yaml"), path.Join(folder, "old", "notes.yaml")}
	f.put(extra[0], legacyPVC)
	f.put(extra[1], legacyConfigMap)
	outside := map[string]string{
		path.Join(path.Dir(folder), "stray.yaml"):                   legacyPVC,
		path.Join(store.ClusterDir(s.Cluster), "README.md"):         "east\n",
		path.Join(store.StoresRoot, "README.md"):                    "stores\n",
		path.Join(store.ChartSourcesDir(s.Cluster), "by-hand.yaml"): legacyConfigMap,
		"NOTES.md": "notes\n",
	}
	for p, c := range outside {
		f.put(p, c)
	}
	f.push("files render does not make")

	args := []string{"--repo", f.remote, "--flux-shards", "0", "--chart-source", "helmrepository", "--actor", "ops@example.com"}
	out, stderr, err := rerenderRun(args...)
	if err != nil {
		t.Fatalf("rerender: %v\n%s", err, stderr)
	}
	t.Log(out)
	if got := strings.Join(f.changedFiles(), " "); got != strings.Join([]string{extra[1], extra[0]}, " ") {
		t.Fatalf("the rerender commit changed %q, want exactly the two files render does not make", got)
	}
	for _, p := range append(extra, path.Join(folder, "old")) {
		if f.exists(p) {
			t.Errorf("%s is still there", p)
		}
	}
	rendered, err := render.Renderer{Options: withShards(render.LocalOptions())}.Render(s, store.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(f.work, filepath.FromSlash(folder)))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(rendered) {
		t.Errorf("the store folder holds %d entries, render makes %d files", len(entries), len(rendered))
	}
	for _, file := range rendered {
		if b, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(file.Path))); err != nil || !bytes.Equal(b, file.Content) {
			t.Errorf("%s is not render's (%v)", file.Path, err)
		}
	}
	for p, c := range outside {
		if b, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(p))); err != nil || string(b) != c {
			t.Errorf("%s, outside every store folder, changed (%v)", p, err)
		}
	}
	msg := "\n" + f.git("log", "-1", "--format=%B") + "\n"
	for _, line := range []string{"\nAction: rerender\n", "\nActor: ops@example.com\n", "\nFlux-Shards: 0\n", "\nChart-Source: HelmRepository ", "\nStores-Changed: 1\n"} {
		if !strings.Contains(msg, line) {
			t.Errorf("the commit message lacks %q:\n%s", strings.TrimSpace(line), msg)
		}
	}
	for _, line := range []string{"re-rendered 1 of 6 stores", "cluster east: 1 of 3 stores changed, 0 shared chart sources written, 2 files removed that render no longer makes",
		"  " + s.Name + "\n", "removed: " + extra[1] + " " + extra[0] + "\n", "cluster west: 0 of 3 stores changed"} {
		if !strings.Contains(out, line) {
			t.Errorf("the output lacks %q:\n%s", line, out)
		}
	}

	head := f.git("rev-parse", "HEAD")
	out, stderr, err = rerenderRun(args...)
	if err != nil || !strings.Contains(out, "nothing to commit") {
		t.Fatalf("second run: %v\n%s%s", err, out, stderr)
	}
	f.git("pull", "--quiet", "--ff-only", "origin", "main")
	if now := f.git("rev-parse", "HEAD"); now != head {
		t.Errorf("the second run committed %s", f.git("log", "-1", "--stat"))
	}
}

func withShards(o render.Options) render.Options {
	o.Shards = rerenderShards
	return o
}

// TestRerenderRemovesAppliedFiles: a file render no longer makes that the store's
// kustomization.yaml still names is applied by Flux, so removing it prunes its
// objects. The flag form, which changes no object but the HelmReleases' shard label
// and chart reference, refuses it with nothing pushed. The exact form (--serve-env)
// removes it and rewrites the kustomization.yaml, as the API's next write of the
// store would, unless an object of it can hold data (a PVC) and would be pruned, or
// the kustomization.yaml it rewrites stops naming what is no file of the folder.
func TestRerenderRemovesAppliedFiles(t *testing.T) {
	setup := func(t *testing.T, content string) (testFleet, string) {
		f, stores := newRerenderFleet(t, render.LocalOptions())
		folder := store.DirIn(stores[1].s.Cluster, stores[1].s.Name, rerenderShards)
		f.put(path.Join(folder, "legacy.yaml"), content)
		f.listInKustomization(folder, "legacy.yaml")
		f.push("a manifest render no longer makes, still applied")
		return f, folder
	}
	refused := func(t *testing.T, f testFleet, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("rerender: %v, want %v", err, want)
		}
		t.Log(err)
		head := f.git("rev-parse", "HEAD")
		if now := f.git("ls-remote", "origin", "refs/heads/main"); !strings.HasPrefix(now, head) {
			t.Errorf("the refused rerender pushed: %s", now)
		}
	}
	exact := func(f testFleet) error {
		_, err := rerenderFleet(context.Background(), fleetTarget{repo: f.remote, branch: "main", actor: "ops"}, render.LocalOptions(), true)
		return err
	}

	t.Run("flag form refuses", func(t *testing.T) {
		f, _ := setup(t, legacyConfigMap)
		_, _, err := rerenderRun("--repo", f.remote, "--flux-shards", "0", "--chart-source", "helmrepository", "--actor", "ops")
		refused(t, f, err, errRemovesApplied)
	})
	t.Run("exact form removes", func(t *testing.T) {
		f, folder := setup(t, legacyConfigMap)
		if err := exact(f); err != nil {
			t.Fatal(err)
		}
		want := []string{path.Join(folder, render.KustomizationFile), path.Join(folder, "legacy.yaml")}
		if got := f.changedFiles(); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("the rerender commit changed %q, want %q", got, want)
		}
		if b, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(want[0]))); err != nil || strings.Contains(string(b), "legacy") {
			t.Errorf("the kustomization.yaml still names the removed file (%v):\n%s", err, b)
		}
		head := f.git("rev-parse", "HEAD")
		if err := exact(f); err != nil {
			t.Fatal(err)
		}
		if now := f.git("ls-remote", "origin", "refs/heads/main"); !strings.HasPrefix(now, head) {
			t.Errorf("the second run pushed: %s", now)
		}
	})
	t.Run("exact form refuses a PVC", func(t *testing.T) {
		f, _ := setup(t, legacyConfigMap+"---\n"+legacyPVC)
		refused(t, f, exact(f), errPrunesData)
	})
	t.Run("exact form refuses to drop a reference outside the folder", func(t *testing.T) {
		f, stores := newRerenderFleet(t, render.LocalOptions())
		f.listInKustomization(store.DirIn(stores[1].s.Cluster, stores[1].s.Name, rerenderShards), "../../volumes")
		f.push("a kustomization.yaml naming a folder outside the store's")
		refused(t, f, exact(f), errPrunesData)
	})
	t.Run("exact form removes a PVC Flux keeps", func(t *testing.T) {
		kept := strings.Replace(legacyPVC, "  name: legacy-data\n", "  name: legacy-data\n  annotations:\n    "+render.AnnotationPrune+": "+render.PruneDisabled+"\n", 1)
		f, folder := setup(t, kept)
		if err := exact(f); err != nil {
			t.Fatal(err)
		}
		if f.git("pull", "--quiet", "--ff-only", "origin", "main"); f.exists(path.Join(folder, "legacy.yaml")) {
			t.Error("legacy.yaml, whose PVC Flux does not prune, is still there")
		}
	})
}
