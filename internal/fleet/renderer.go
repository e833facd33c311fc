package fleet

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
)

// FleetRenderer is the Renderer backed by internal/render with one cluster's options.
type FleetRenderer struct {
	Options render.Options
}

// Render renders s in state st.
func (r FleetRenderer) Render(s store.Store, st State) ([]File, error) {
	var (
		files []render.File
		err   error
	)
	switch st {
	case StateActive:
		files, err = render.Store(s, r.Options)
	case StateRetained:
		files, err = render.Retained(withPlaceholders(s), r.Options)
	case StatePurging:
		files, err = render.PurgeStep1(withPlaceholders(s), r.Options)
	default:
		return nil, fmt.Errorf("render: unknown state %q", st)
	}
	if err != nil {
		return nil, err
	}
	out := make([]File, len(files))
	for i, f := range files {
		out[i] = File{Path: f.Path, Content: f.Content}
	}
	return out, nil
}

// Dir is the store's folder.
func (r FleetRenderer) Dir(s store.Store) string {
	c := s.Cluster
	if c == "" {
		c = store.DefaultCluster
	}
	return render.StoreDir(c, s.Name)
}

// object is the part of a rendered Kubernetes object Parse reads.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		// HelmRelease
		Chart *struct {
			Spec struct {
				Chart   string `json:"chart"`
				Version string `json:"version"`
			} `json:"spec"`
		} `json:"chart"`
		Values *render.ChartValues `json:"values"`
		// OCIRepository
		Ref *struct {
			Tag string `json:"tag"`
		} `json:"ref"`
	} `json:"spec"`
}

// Parse recovers a store from its folder. A live store's spec comes whole from its
// HelmRelease values; a deleted store keeps only what its Namespace labels say
// (name, engine, plan), since its settings went with the HelmRelease.
func (r FleetRenderer) Parse(files []File) (store.Store, State, error) {
	var (
		s        store.Store
		ns       *object
		hr       *object
		ociTag   string
		haveFile = map[string]bool{}
	)
	for _, f := range files {
		haveFile[path.Base(f.Path)] = true
		if s.Cluster == "" {
			// stores/<cluster>/<shard>/<name>/<file>
			parts := strings.Split(f.Path, "/")
			if len(parts) == 5 && parts[0] == "stores" {
				s.Cluster = parts[1]
			}
		}
		// Only the Namespace and the HelmRelease (with its OCIRepository) carry the
		// spec; the policy and RBAC files, the largest, are not parsed at all.
		if b := path.Base(f.Path); b != render.NamespaceFile && b != render.HelmReleaseFile {
			continue
		}
		for _, doc := range bytes.Split(f.Content, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				return s, "", fmt.Errorf("%s: %w", f.Path, err)
			}
			switch o.Kind {
			case "Namespace":
				o := o
				ns = &o
			case "HelmRelease":
				o := o
				hr = &o
			case "OCIRepository":
				if o.Spec.Ref != nil {
					ociTag = o.Spec.Ref.Tag
				}
			}
		}
	}
	if ns == nil {
		return s, "", fmt.Errorf("no namespace.yaml")
	}
	s.Name = ns.Metadata.Labels["app.kubernetes.io/instance"]
	s.Engine = store.Engine(ns.Metadata.Labels["app.kubernetes.io/name"])
	s.Plan = store.PlanName(ns.Metadata.Labels[render.LabelPlan])
	if s.Name == "" || s.Cluster == "" {
		return s, "", fmt.Errorf("namespace %s lacks the store labels", ns.Metadata.Name)
	}
	if hr == nil {
		if ns.Metadata.Annotations[render.AnnotationPrune] == render.PruneEnabled {
			return s, StatePurging, nil
		}
		return s, StateRetained, nil
	}
	if hr.Spec.Values == nil {
		return s, "", fmt.Errorf("helmrelease %s has no values", hr.Metadata.Name)
	}
	v := hr.Spec.Values
	s.Domain = v.Store.Domain
	s.Settings = store.Settings{
		Title: v.Store.Title, AdminEmail: v.Store.AdminEmail, Currency: v.Store.Currency,
		Country: v.Store.Country, Language: v.Store.Language, RegionName: v.Store.RegionName,
	}
	if v.Plan != "" {
		s.Plan = store.PlanName(v.Plan)
	}
	switch {
	case hr.Spec.Chart != nil:
		s.Version = hr.Spec.Chart.Spec.Version
	case ociTag != "":
		s.Version = ociTag
	}
	return s, StateActive, nil
}

// withPlaceholders completes a deleted store read back from Git, which has only its
// name, engine, plan and cluster (its settings went with its HelmRelease), so that it
// passes validation. The retained and purge files hold no settings, so the
// placeholder never reaches Git (TestRetainedRendersFromParsedStore).
func withPlaceholders(s store.Store) store.Store {
	if s.Settings.AdminEmail == "" {
		s.Settings.AdminEmail = "retained@example.com"
	}
	return s
}
