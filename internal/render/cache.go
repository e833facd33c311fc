package render

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	yamlv2 "go.yaml.in/yaml/v2"

	"github.com/storefleet/storefleet/internal/store"
)

// A store's Namespace, RBAC and policy files differ between two stores of one
// cluster, engine, plan, tenant and state only by the store's name (in the namespace
// store-<name> and the instance labels), and its kustomization.yaml only by the
// state. Encoding them is most of what rendering a store costs, so each is encoded
// once per such key, for a placeholder name, through the same typed objects and the
// same encode; a store then gets those bytes with its name put where the
// placeholder's is. That yields encode's bytes exactly when the name is written
// as it stands wherever it occurs (a plain YAML scalar, which a name that YAML would
// read as a number or a boolean is not: it takes the encoded path), and when the
// placeholder occurs nowhere but there: a second placeholder checks that once per
// key. TestCachedFilesMatchEncode and FuzzRender hold it to encode's bytes.

const (
	placeholder      = "qzxplaceholderqzx"
	otherPlaceholder = "qzxotherholderqzx"
)

// cachedFiles are the files encodeCached serves from templates.
var cachedFiles = map[string]bool{NamespaceFile: true, RBACFile: true, PolicyFile: true}

type template struct {
	parts [][]byte // the file split at the placeholder; nil: the key cannot be cached
}

var (
	templates   sync.Map // key → *template
	kustomCache sync.Map // resources list → kustomization.yaml bytes
)

// encodeCached is encode(objs...) for file n of the store r renders.
func (r *renderer) encodeCached(n string, objs []any) ([]byte, error) {
	st := r.st
	if !cachedFiles[n] || !plainScalar(r.s.Name) {
		return encode(objs...)
	}
	if r.cacheKey == "" {
		r.cacheKey = strings.Join([]string{string(st), string(r.s.Engine), string(r.s.Plan), r.s.Tenant, r.s.Cluster, fmt.Sprintf("%+v", r.opts)}, "\x00")
	}
	key := n + "\x00" + r.cacheKey
	v, ok := templates.Load(key)
	if !ok {
		t, err := r.template(st, n)
		if err != nil {
			return nil, err
		}
		v, _ = templates.LoadOrStore(key, t)
	}
	t := v.(*template)
	if t.parts == nil {
		return encode(objs...)
	}
	size := len(r.s.Name) * (len(t.parts) - 1)
	for _, p := range t.parts {
		size += len(p)
	}
	out := make([]byte, 0, size)
	for i, p := range t.parts {
		if i > 0 {
			out = append(out, r.s.Name...)
		}
		out = append(out, p...)
	}
	return out, nil
}

// template encodes file n for the placeholder name, and for a second one to check
// that the placeholder stands only where the name does.
func (r *renderer) template(st store.State, n string) (*template, error) {
	enc := func(name string) ([]byte, error) {
		s := r.s
		s.Name, s.Domain = name, ""
		_, files, err := objects(s, r.opts, st)
		if err != nil {
			return nil, err
		}
		return encode(files[n]...)
	}
	a, err := enc(placeholder)
	if err != nil {
		return nil, err
	}
	b, err := enc(otherPlaceholder)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(bytes.ReplaceAll(a, []byte(placeholder), []byte(otherPlaceholder)), b) {
		return &template{}, nil
	}
	return &template{parts: bytes.Split(a, []byte(placeholder))}, nil
}

// plainScalar reports whether YAML writes s as it stands, unquoted, on one line.
func plainScalar(s string) bool {
	b, err := yamlv2.Marshal(s)
	return err == nil && len(b) == len(s)+1 && string(b[:len(s)]) == s
}

// kustomizationFile is the encoded kustomization.yaml listing resources.
func kustomizationFile(resources []string, build func() ([]byte, error)) ([]byte, error) {
	key := strings.Join(resources, "\x00")
	if v, ok := kustomCache.Load(key); ok {
		// A copy: the writer keeps the buffers it is handed.
		return bytes.Clone(v.([]byte)), nil
	}
	b, err := build()
	if err != nil {
		return nil, err
	}
	kustomCache.Store(key, bytes.Clone(b))
	return b, nil
}
