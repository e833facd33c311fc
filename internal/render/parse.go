package render

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/storefleet/storefleet/internal/store"
)

// Renderer is the domain's store.Renderer: it renders with one cluster's options and
// reads a store back from the files it wrote.
type Renderer struct {
	Options Options
}

var _ store.Renderer = Renderer{}

// InFleet is the renderer for a fleet of shards shards (Options.Shards).
func (r Renderer) InFleet(shards int) store.Renderer {
	r.Options.Shards = shards
	return r
}

// Render renders s in state st.
func (r Renderer) Render(s store.Store, st store.State) ([]File, error) {
	switch st {
	case store.StateActive:
		return Store(s, r.Options)
	case store.StateRetained:
		return Retained(withPlaceholders(s), r.Options)
	case store.StatePurging:
		return PurgeStep1(withPlaceholders(s), r.Options)
	}
	return nil, fmt.Errorf("render: a store in state %q has no files", st)
}

// Shared renders the chart source an active store references (SharedChartSource).
func (r Renderer) Shared(s store.Store) ([]File, error) {
	f, err := SharedChartSource(s, r.Options)
	if err != nil {
		return nil, err
	}
	return []File{f}, nil
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
		Values *ChartValues `json:"values"`
		// OCIRepository
		Ref *struct {
			Tag string `json:"tag"`
		} `json:"ref"`
	} `json:"spec"`
}

// Tenant reads the tenant a store folder's files name, "" for files from before
// tenants: what Parse reads into Store.Tenant, from the Namespace alone, so the
// writer's quota check at commit time need not parse the HelmRelease of every
// create. A folder Parse refuses for its Namespace, Tenant refuses too.
func (r Renderer) Tenant(files []File) (string, error) {
	s, _, _, _, err := readObjects(files, false)
	return s.Tenant, err
}

// Parse recovers a store from its folder. A live store's spec comes whole from its
// HelmRelease values; a deleted store keeps only what its Namespace labels say
// (name, engine, plan, tenant), since its settings went with the HelmRelease. The
// tenant is read from the Namespace in every state, so it survives a delete.
func (r Renderer) Parse(files []File) (store.Store, store.State, error) {
	s, ns, hr, ociTag, err := readObjects(files, true)
	if err != nil {
		return s, "", err
	}
	if hr == nil {
		if ns.Metadata.Annotations[AnnotationPrune] == PruneEnabled {
			return s, store.StatePurging, nil
		}
		return s, store.StateRetained, nil
	}
	return parseRelease(s, hr, ociTag)
}

// readObjects parses a store folder's Namespace and, with release set, its
// HelmRelease (and OCIRepository's tag), and reads the labels the Namespace keeps
// in every state: name, engine, plan, tenant.
func readObjects(files []File, release bool) (s store.Store, ns, hr *object, ociTag string, err error) {
	for _, f := range files {
		if ref, rel, ok := store.ParseFile(f.Path); ok && s.Cluster == "" && !strings.Contains(rel, "/") {
			s.Cluster = ref.Cluster
		}
		// Only the Namespace and the HelmRelease (with its OCIRepository) carry the
		// spec; the policy and RBAC files, the largest, are not parsed at all.
		if b := path.Base(f.Path); b != NamespaceFile && (!release || b != HelmReleaseFile) {
			continue
		}
		for _, doc := range bytes.Split(f.Content, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				return s, nil, nil, "", fmt.Errorf("%s: %w", f.Path, err)
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
		return s, nil, nil, "", fmt.Errorf("no namespace.yaml")
	}
	s.Name = ns.Metadata.Labels["app.kubernetes.io/instance"]
	s.Engine = store.Engine(ns.Metadata.Labels["app.kubernetes.io/name"])
	s.Plan = store.PlanName(ns.Metadata.Labels[LabelPlan])
	// Absent in files written before tenants: "" here, and the lifecycle reads it
	// as its configured default tenant.
	s.Tenant = ns.Metadata.Labels[LabelStoreTenant]
	if s.Name == "" || s.Cluster == "" {
		return s, nil, nil, "", fmt.Errorf("namespace %s lacks the store labels", ns.Metadata.Name)
	}
	return s, ns, hr, ociTag, nil
}

// parseRelease completes s, read from its Namespace, with a live store's spec from
// its HelmRelease (ociTag: the tag of the OCIRepository of folders from before
// shared chart sources).
func parseRelease(s store.Store, hr *object, ociTag string) (store.Store, store.State, error) {
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
	// The annotation since stores reference a shared chart source; spec.chart or
	// the store's own OCIRepository in folders written before.
	switch {
	case hr.Metadata.Annotations[store.AnnotationVersion] != "":
		s.Version = hr.Metadata.Annotations[store.AnnotationVersion]
	case hr.Spec.Chart != nil:
		s.Version = hr.Spec.Chart.Spec.Version
	case ociTag != "":
		s.Version = ociTag
	}
	return s, store.StateActive, nil
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
