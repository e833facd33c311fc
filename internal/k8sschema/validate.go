package k8sschema

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/yaml"
)

// Validator validates objects against a fixed set of schemas. It is safe for concurrent use.
type Validator struct {
	kinds map[gvk]*spec.Schema
}

// Problem is one thing wrong with one document.
type Problem struct {
	Doc        int    // 1-based index of the YAML document
	APIVersion string // as written in the document
	Kind       string
	Name       string
	Message    string // what is wrong and where (the field path)
}

func (p Problem) String() string {
	return fmt.Sprintf("document %d (%s %s %q): %s", p.Doc, p.APIVersion, p.Kind, p.Name, p.Message)
}

// Error lists every problem found in a set of documents.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d schema problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

var (
	defaultOnce sync.Once
	defaultV    *Validator
	defaultErr  error
)

// Default returns the validator for Kubernetes v1.36 and the Flux CRDs, loading the schemas on first use.
func Default() (*Validator, error) {
	defaultOnce.Do(func() { defaultV, defaultErr = Load(KubernetesModule, FluxModules...) })
	return defaultV, defaultErr
}

// Validate validates multi-document YAML with the Default validator. It returns nil, an *Error listing every
// problem, or an error saying why the schemas could not be loaded.
func Validate(docs []byte) error {
	v, err := Default()
	if err != nil {
		return err
	}
	return v.Validate(docs)
}

// Load builds a validator from the Kubernetes module's OpenAPI v3 spec and the CRDs of the given modules.
func Load(kubernetes Module, crdModules ...Module) (*Validator, error) {
	l := &loader{defs: map[string]*spec.Schema{}, expanded: map[string]*spec.Schema{},
		inFlight: map[string]bool{}, kinds: map[gvk]string{}}
	dir, err := kubernetes.Dir()
	if err != nil {
		return nil, err
	}
	if err := l.loadKubernetes(dir); err != nil {
		return nil, err
	}
	for _, m := range crdModules {
		dir, err := m.Dir()
		if err != nil {
			return nil, err
		}
		if err := l.loadCRDs(dir); err != nil {
			return nil, err
		}
	}
	v := &Validator{kinds: make(map[gvk]*spec.Schema, len(l.kinds))}
	for k, name := range l.kinds {
		v.kinds[k] = l.expand(name)
	}
	return v, nil
}

// Knows reports whether the validator has a schema for apiVersion and kind.
func (v *Validator) Knows(apiVersion, kind string) bool {
	_, ok := v.kinds[gvk{apiVersion, kind}]
	return ok
}

// Validate checks every document of multi-document YAML; empty documents are skipped. Documents that do not
// parse, lack apiVersion/kind, have a kind without a schema, or break their schema are all reported.
func (v *Validator) Validate(docs []byte) error {
	var problems []Problem
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(docs)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			problems = append(problems, Problem{Doc: i, Message: "YAML: " + err.Error()})
			break
		}
		problems = append(problems, v.validateDoc(i, doc)...)
	}
	if len(problems) == 0 {
		return nil
	}
	return &Error{Problems: problems}
}

func (v *Validator) validateDoc(i int, doc []byte) []Problem {
	// Through sigs.k8s.io/yaml, as the API machinery reads YAML: strict about duplicate keys, and numbers
	// become JSON numbers.
	jb, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return []Problem{{Doc: i, Message: "YAML: " + err.Error()}}
	}
	if bytes.Equal(bytes.TrimSpace(jb), []byte("null")) {
		return nil // empty document
	}
	var obj any
	d := json.NewDecoder(bytes.NewReader(jb))
	d.UseNumber()
	if err := d.Decode(&obj); err != nil {
		return []Problem{{Doc: i, Message: "JSON: " + err.Error()}}
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return []Problem{{Doc: i, Message: "document is not an object"}}
	}
	p := Problem{Doc: i}
	p.APIVersion, _ = m["apiVersion"].(string)
	p.Kind, _ = m["kind"].(string)
	if md, ok := m["metadata"].(map[string]any); ok {
		p.Name, _ = md["name"].(string)
	}
	if p.APIVersion == "" || p.Kind == "" {
		p.Message = "apiVersion and kind are required"
		return []Problem{p}
	}
	s, ok := v.kinds[gvk{p.APIVersion, p.Kind}]
	if !ok {
		p.Message = "no schema for this apiVersion and kind"
		return []Problem{p}
	}
	res := validate.NewSchemaValidator(s, nil, "", formats).Validate(normalize(obj))
	var out []Problem
	for _, e := range res.Errors {
		q := p
		q.Message = strings.TrimPrefix(e.Error(), ".")
		out = append(out, q)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Message < out[b].Message })
	return out
}

// normalize turns json.Numbers into int64 or float64, which the validator's type checks understand, and
// drops null fields: the API server decodes a null field as an absent one (`creationTimestamp: null`,
// `nodeSelector: null` from an empty template value), so they are not errors; a required field that is
// null is then reported as missing.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			t[k] = normalize(e)
		}
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n
		}
		f, _ := t.Float64()
		return f
	}
	return v
}
