package k8sschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"
)

// Modules the schemas come from. KubernetesModule must match the k8s.io/api version in go.mod (v0.36.x ↔
// v1.36.x). HelmController is v1.6.4 because the module proxy does not serve v1.6.5 of the controller (its
// api module v1.6.5, which render uses, has the same HelmRelease v2 schema).
var (
	KubernetesModule = Module{Path: "k8s.io/kubernetes", Version: "v1.36.3"}
	FluxModules      = []Module{
		{Path: "github.com/fluxcd/helm-controller", Version: "v1.6.4"},
		{Path: "github.com/fluxcd/source-controller", Version: "v1.9.6"},
		{Path: "github.com/fluxcd/kustomize-controller", Version: "v1.9.6"},
	}
)

// Module is a Go module version holding schema files.
type Module struct {
	Path, Version string
}

// Dir returns the module's directory in the module cache, downloading it if needed.
func (m Module) Dir() (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", m.Path+"@"+m.Version)
	// Run outside any module so that go.mod is neither consulted nor changed.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on", "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("k8sschema: go mod download %s@%s (needed for the schemas): %v %s %s",
			m.Path, m.Version, runErr, info.Error, strings.TrimSpace(stderr.String()))
	}
	return info.Dir, nil
}

// gvk is apiVersion + kind.
type gvk struct{ apiVersion, kind string }

type loader struct {
	defs     map[string]*spec.Schema // raw, with $refs (by definition name)
	expanded map[string]*spec.Schema
	inFlight map[string]bool
	kinds    map[gvk]string // → definition name
}

const refPrefix = "#/components/schemas/"

// loadKubernetes reads every group-version file of the Kubernetes OpenAPI v3 spec.
func (l *loader) loadKubernetes(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "api", "openapi-spec", "v3", "*_openapi.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("k8sschema: no OpenAPI v3 files under %s (%v)", dir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var doc struct {
			Components struct {
				Schemas map[string]*spec.Schema `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("k8sschema: %s: %w", f, err)
		}
		for name, s := range doc.Components.Schemas {
			if _, seen := l.defs[name]; seen {
				continue
			}
			l.defs[name] = s
			l.indexKinds(name, s)
		}
	}
	return nil
}

func (l *loader) indexKinds(name string, s *spec.Schema) {
	raw, ok := s.Extensions["x-kubernetes-group-version-kind"]
	if !ok {
		return
	}
	b, _ := json.Marshal(raw)
	var gvks []struct{ Group, Version, Kind string }
	if json.Unmarshal(b, &gvks) != nil {
		return
	}
	for _, g := range gvks {
		av := g.Version
		if g.Group != "" {
			av = g.Group + "/" + g.Version
		}
		// Kinds like DeleteOptions are listed under every group; the object schemas are what counts.
		if _, dup := l.kinds[gvk{av, g.Kind}]; !dup {
			l.kinds[gvk{av, g.Kind}] = name
		}
	}
}

// loadCRDs reads every CRD in a controller module's config/crd/bases; metadata gets the ObjectMeta schema
// (CRD schemas leave it open).
func (l *loader) loadCRDs(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("k8sschema: no CRDs under %s (%v)", dir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &crd); err != nil {
			return fmt.Errorf("k8sschema: %s: %w", f, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			jb, err := json.Marshal(v.Schema.OpenAPIV3Schema)
			if err != nil {
				return err
			}
			s := new(spec.Schema)
			if err := json.Unmarshal(jb, s); err != nil {
				return fmt.Errorf("k8sschema: %s %s: %w", f, v.Name, err)
			}
			if s.Properties != nil {
				s.Properties["metadata"] = *spec.RefSchema(refPrefix + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
			}
			name := "crd:" + crd.Spec.Group + "/" + v.Name + "." + crd.Spec.Names.Kind
			l.defs[name] = s
			l.kinds[gvk{crd.Spec.Group + "/" + v.Name, crd.Spec.Names.Kind}] = name
		}
	}
	return nil
}

// expand returns definition name with every $ref resolved (the validator does not follow refs) and every
// object with declared properties closed to other fields. Definitions are expanded once and shared; a
// definition that refers to itself (only JSONSchemaProps does) gets an open schema at the recursion.
func (l *loader) expand(name string) *spec.Schema {
	if s, ok := l.expanded[name]; ok {
		return s
	}
	if l.inFlight[name] {
		return &spec.Schema{}
	}
	raw, ok := l.defs[name]
	if !ok {
		return &spec.Schema{}
	}
	l.inFlight[name] = true
	s := l.walk(raw)
	delete(l.inFlight, name)
	if name == quantityDef {
		for i := range s.OneOf {
			if s.OneOf[i].Type.Contains("string") {
				s.OneOf[i].Format = "quantity"
			}
		}
	}
	l.expanded[name] = s
	return s
}

func (l *loader) walk(in *spec.Schema) *spec.Schema {
	if ref := in.Ref.String(); ref != "" {
		return l.expand(strings.TrimPrefix(ref, refPrefix))
	}
	// The spec wraps refs as allOf: [{$ref}] to attach a description or default; validate as the target.
	if len(in.AllOf) == 1 && len(in.Type) == 0 && len(in.Properties) == 0 && in.AllOf[0].Ref.String() != "" {
		return l.walk(&in.AllOf[0])
	}
	out := *in
	out.Description = ""
	if out.Format == "int-or-string" {
		// The validator reads this format as a type of its own; the schema's oneOf [integer, string] is
		// the actual rule.
		out.Format = ""
	}
	if len(in.Properties) > 0 {
		out.Properties = make(map[string]spec.Schema, len(in.Properties))
		for k, p := range in.Properties {
			out.Properties[k] = *l.walk(&p)
		}
		_, preserve := in.Extensions["x-kubernetes-preserve-unknown-fields"]
		if in.AdditionalProperties == nil && !preserve {
			out.AdditionalProperties = &spec.SchemaOrBool{Allows: false}
		}
	}
	if in.AdditionalProperties != nil && in.AdditionalProperties.Schema != nil {
		out.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: l.walk(in.AdditionalProperties.Schema)}
	}
	if in.Items != nil {
		items := *in.Items
		if items.Schema != nil {
			items.Schema = l.walk(items.Schema)
		}
		if len(items.Schemas) > 0 {
			items.Schemas = l.walkAll(items.Schemas)
		}
		out.Items = &items
	}
	out.AllOf = l.walkAll(in.AllOf)
	out.AnyOf = l.walkAll(in.AnyOf)
	out.OneOf = l.walkAll(in.OneOf)
	if len(out.Type) == 0 {
		// Quantity and IntOrString are oneOf/anyOf of plain types with no type of their own; the validator
		// then lets a list through unchecked. The union of the branches' types is the type.
		out.Type = unionType(out.OneOf, out.AnyOf)
	}
	if in.Not != nil {
		out.Not = l.walk(in.Not)
	}
	return &out
}

func (l *loader) walkAll(in []spec.Schema) []spec.Schema {
	if len(in) == 0 {
		return in
	}
	out := make([]spec.Schema, len(in))
	for i := range in {
		out[i] = *l.walk(&in[i])
	}
	return out
}

// unionType returns the types of schema branches that each are nothing but a type, or nil.
func unionType(lists ...[]spec.Schema) spec.StringOrArray {
	var types spec.StringOrArray
	for _, list := range lists {
		for _, b := range list {
			if len(b.Type) != 1 || len(b.Properties) > 0 || b.Items != nil || len(b.OneOf)+len(b.AnyOf)+len(b.AllOf) > 0 {
				return nil
			}
			if !types.Contains(b.Type[0]) {
				types = append(types, b.Type[0])
			}
		}
	}
	return types
}
