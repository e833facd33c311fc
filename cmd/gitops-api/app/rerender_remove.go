package app

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/render"
)

// A store folder holds exactly what render makes of the store: the API's writer
// replaces the whole folder on every change (gitrepo.Change.Files, "files not listed
// are removed"), so rerender does too, or a manifest an older render wrote would stay
// in Git, and Flux would go on applying it while the store's kustomization.yaml lists it.

// errRemovesApplied: the flag form would remove a file Flux applies.
var errRemovesApplied = errors.New("the flag form removes no file Flux applies, so no object is pruned: check the file and remove it through a reviewed commit, or re-render with --serve-env; nothing committed")

// errPrunesData: a change would make Flux prune objects that can hold a store's data,
// or objects rerender cannot tell.
var errPrunesData = errors.New("Flux would prune objects that can hold a store's data: save the data, or mark the objects " +
	render.AnnotationPrune + ": " + render.PruneDisabled + ", first; nothing committed")

// storeFolderFiles lists every file below the store folder (paths from the fleet's
// root, subfolders included, since the API's writer replaces those too) and its
// subfolders, deepest first, so that emptied ones can be removed in that order.
// Symbolic links are listed as files and never followed: a link is removed, not what
// it points at.
func storeFolderFiles(dir, folder string) (files, subdirs []string, err error) {
	root := filepath.Join(dir, filepath.FromSlash(folder))
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		fp := path.Join(folder, filepath.ToSlash(rel))
		if d.IsDir() {
			subdirs = append(subdirs, fp)
		} else {
			files = append(files, fp)
		}
		return nil
	})
	sort.Slice(subdirs, func(i, j int) bool { return strings.Count(subdirs[i], "/") > strings.Count(subdirs[j], "/") })
	return files, subdirs, err
}

// notRendered returns the files of the folder (present) that render did not make (out).
func notRendered(present []string, out []render.File) []string {
	made := make(map[string]bool, len(out))
	for _, f := range out {
		made[f.Path] = true
	}
	var gone []string
	for _, p := range present {
		if !made[p] {
			gone = append(gone, p)
		}
	}
	return gone
}

// fluxApplies returns whether Flux applies a file of the store folder (path relative
// to it), as the folder is committed (top: its top-level files). The shard
// Kustomization's generated kustomization stops at a folder holding a kustomization
// file and takes that folder as one resource (fluxcd/pkg/kustomize, scanManifests), so
// the store's kustomization.yaml decides what is applied from it: a file it does not
// name was never applied, and removing it prunes nothing. Anything else (no
// kustomization.yaml, another kustomization file name besides or instead of it) is
// read as every file applied.
func fluxApplies(top []render.File) (func(rel string) bool, error) {
	var kust []byte
	others := false
	for _, f := range top {
		switch b := path.Base(f.Path); {
		case b == render.KustomizationFile:
			kust = f.Content
		case isKustomizationFileName(b):
			others = true
		}
	}
	if kust == nil || others {
		return func(string) bool { return true }, nil
	}
	refs, err := kustomizationRefs(kust)
	if err != nil {
		return nil, err
	}
	return func(rel string) bool {
		for _, r := range refs {
			if r == "." || r == rel || strings.HasPrefix(rel, r+"/") {
				return true
			}
		}
		return false
	}, nil
}

// kustomizationRefs returns every string of a kustomization file, cleaned as a path:
// each may name a file or folder it applies (resources, components, patches,
// generators, ...), and a string that names none only makes the callers refuse more.
func kustomizationRefs(b []byte) ([]string, error) {
	var k any
	if err := yaml.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", render.KustomizationFile, err)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			refs = append(refs, path.Clean(v))
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(k)
	return refs, nil
}

// checkDroppedRefs refuses, for --serve-env, a new kustomization.yaml that stops
// naming something the committed one names, other than a file of the folder that
// goes (checkRemovals weighs those): a remote resource or a folder outside, say.
// Flux would prune what it applied from there, and rerender cannot tell what that is.
func checkDroppedRefs(folder string, top, out []render.File, gone []string) error {
	var was, now []byte
	for _, f := range top {
		if path.Base(f.Path) == render.KustomizationFile {
			was = f.Content
		}
	}
	for _, f := range out {
		if path.Base(f.Path) == render.KustomizationFile {
			now = f.Content
		}
	}
	if was == nil || bytes.Equal(was, now) {
		return nil
	}
	wasRefs, err := kustomizationRefs(was)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", folder, err, errPrunesData)
	}
	nowRefs, err := kustomizationRefs(now)
	if err != nil {
		return fmt.Errorf("%s: %w", folder, err)
	}
	kept := map[string]bool{}
	for _, r := range nowRefs {
		kept[r] = true
	}
	for _, r := range wasRefs {
		if kept[r] {
			continue
		}
		covered := false
		for _, p := range gone {
			rel := strings.TrimPrefix(p, folder+"/")
			covered = covered || rel == r || strings.HasPrefix(rel, r+"/")
		}
		if !covered {
			return fmt.Errorf("%s: its %s names %q, which render's does not and which is no file of the folder, so what Flux applies from there would go: %w",
				folder, render.KustomizationFile, r, errPrunesData)
		}
	}
	return nil
}

func isKustomizationFileName(name string) bool {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if name == n {
			return true
		}
	}
	return false
}

// dataFreeKinds are the kinds whose pruning loses no store data: what render writes
// into a store folder besides the Namespace and the HelmRelease, and the chart
// sources older folders held. A Namespace takes its PVCs with it, a HelmRelease's
// uninstall can (the store charts keep theirs, a foreign chart may not), a PVC is the
// data; anything else unknown is refused too.
var dataFreeKinds = map[string]bool{
	"ServiceAccount": true, "Role": true, "RoleBinding": true,
	"ResourceQuota": true, "LimitRange": true, "NetworkPolicy": true,
	"ConfigMap": true, "Service": true, "Ingress": true,
	"HelmChart": true, "HelmRepository": true, "OCIRepository": true,
}

// checkRemovals decides whether the files of folder that render no longer makes
// (gone) may go. A file Flux does not apply goes in either form: its removal changes
// nothing in the cluster. One Flux applies is refused by the flag form, which changes
// no object but the HelmReleases' shard label and chart reference; with --serve-env
// it goes, as the API's next write of the store would remove it, unless an object of
// it that Flux would prune can hold data (or cannot be read).
func checkRemovals(dir, folder string, top []render.File, gone []string, exact bool) error {
	applies, err := fluxApplies(top)
	if err != nil {
		refused := errRemovesApplied
		if exact {
			refused = errPrunesData
		}
		return fmt.Errorf("%s: %w: %w", folder, err, refused)
	}
	for _, p := range gone {
		rel := strings.TrimPrefix(p, folder+"/")
		if !applies(rel) {
			continue
		}
		if !exact {
			return fmt.Errorf("%s: %s is not rendered any more but Flux applies it (the store's %s names it): %w",
				folder, rel, render.KustomizationFile, errRemovesApplied)
		}
		if err := prunesNoData(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return fmt.Errorf("%s: %s is not rendered any more, and Flux applies it: %v: %w", folder, rel, err, errPrunesData)
		}
	}
	return nil
}

// prunesNoData returns why pruning the objects of the file at p could lose data, nil
// when it cannot: every object is of a data-free kind or is kept by Flux (prune
// disabled).
func prunesNoData(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	for _, doc := range bytes.Split(b, []byte("\n---")) {
		var o struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name        string            `json:"name"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return fmt.Errorf("not readable as Kubernetes objects: %w", err)
		}
		if o.Kind == "" || dataFreeKinds[o.Kind] || o.Metadata.Annotations[render.AnnotationPrune] == render.PruneDisabled {
			continue
		}
		return fmt.Errorf("it holds %s %s", o.Kind, o.Metadata.Name)
	}
	return nil
}

// removeFiles removes the files gone and then every subfolder left empty. Each path
// must be inside folder: rerender never removes anything else.
func removeFiles(dir, folder string, gone, subdirs []string) error {
	for _, p := range gone {
		if !strings.HasPrefix(p, folder+"/") || path.Clean(p) != p {
			return fmt.Errorf("%s: %s is not a file of the store folder", folder, p)
		}
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			return err
		}
	}
	for _, d := range subdirs {
		err := os.Remove(filepath.Join(dir, filepath.FromSlash(d)))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
