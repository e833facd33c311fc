package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Scheme knows the built-in kinds and the Flux kinds the environment runs.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(sourcev1.AddToScheme(Scheme))
	utilruntime.Must(kustomizev1.AddToScheme(Scheme))
	utilruntime.Must(helmv2.AddToScheme(Scheme))
}

const fieldOwner = client.FieldOwner("storefleet-testenv")

// ReconcileAnnotation is what `flux reconcile` sets to make a Flux controller
// reconcile now instead of at its next interval.
const ReconcileAnnotation = "reconcile.fluxcd.io/requestedAt"

var (
	gitRepositoryGVK  = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}
	helmRepositoryGVK = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "HelmRepository"}
	kustomizationGVK  = schema.GroupVersionKind{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Kind: "Kustomization"}
	helmReleaseGVK    = schema.GroupVersionKind{Group: "helm.toolkit.fluxcd.io", Version: "v2", Kind: "HelmRelease"}
	crdGVK            = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
)

func newClient(cfg *rest.Config) (client.Client, error) {
	return client.New(cfg, client.Options{Scheme: Scheme})
}

// DecodeYAML splits multi-document YAML into objects, skipping empty documents.
func DecodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// Apply server-side applies every object in data (multi-document YAML).
func (e *Env) Apply(ctx context.Context, data []byte) error {
	objs, err := DecodeYAML(data)
	if err != nil {
		return err
	}
	return e.applyAs(ctx, objs, fieldOwner)
}

// applyAs server-side applies objs with field manager owner, taking over fields
// other managers own (force).
func (e *Env) applyAs(ctx context.Context, objs []*unstructured.Unstructured, owner client.FieldOwner) error {
	for _, o := range objs {
		if err := e.Client.Patch(ctx, o, client.Apply, owner, client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

func (e *Env) installCRDs(ctx context.Context, dirs []string) error {
	var names []string
	for _, d := range dirs {
		files, err := filepath.Glob(filepath.Join(d, "*.yaml"))
		if err != nil {
			return err
		}
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			objs, err := DecodeYAML(data)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			for _, o := range objs {
				if o.GetKind() != "CustomResourceDefinition" {
					continue
				}
				if err := e.Client.Patch(ctx, o, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
					return fmt.Errorf("install CRD from %s: %w", f, err)
				}
				names = append(names, o.GetName())
			}
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("no Flux CRDs found in %v", dirs)
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, n := range names {
		err := Poll(rctx, 50*time.Millisecond, func() (bool, string, error) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(crdGVK)
			if err := e.Client.Get(rctx, client.ObjectKey{Name: n}, u); err != nil {
				return false, err.Error(), nil
			}
			ok, msg := condition(u, "Established")
			return ok, msg, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", n, err)
		}
	}
	return nil
}

// Poll calls check every interval until it reports done, returns an error, or ctx
// ends; the error then carries check's last message.
func Poll(ctx context.Context, interval time.Duration, check func() (done bool, msg string, err error)) error {
	var last string
	for {
		done, msg, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		last = msg
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last seen: %s)", ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}

// condition reports whether the object's condition typ is True, with its message.
func condition(u *unstructured.Unstructured, typ string) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != typ {
			continue
		}
		return m["status"] == "True", fmt.Sprintf("%s=%v %v: %v", typ, m["status"], m["reason"], m["message"])
	}
	return false, typ + " condition not reported yet"
}

// IsReady is Flux's readiness rule: Ready=True and status.observedGeneration ==
// metadata.generation (a Ready condition left over from the previous generation
// does not count).
func IsReady(u *unstructured.Unstructured) (bool, string) {
	ok, msg := condition(u, "Ready")
	og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if og != u.GetGeneration() {
		return false, fmt.Sprintf("observedGeneration %d != generation %d; %s", og, u.GetGeneration(), msg)
	}
	return ok, msg
}

// get fetches one object by kind and key into an unstructured value.
func (e *Env) get(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, e.Client.Get(ctx, key, u)
}

// WaitReady waits until the object (kind given by gvk) is Ready at its current
// generation and returns it.
func (e *Env) WaitReady(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (*unstructured.Unstructured, error) {
	var u *unstructured.Unstructured
	err := Poll(ctx, 100*time.Millisecond, func() (bool, string, error) {
		var err error
		u, err = e.get(ctx, gvk, key)
		if err != nil {
			return false, err.Error(), nil
		}
		ok, msg := IsReady(u)
		return ok, msg, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s not ready: %w", gvk.Kind, key, err)
	}
	return u, nil
}

// RequestReconcile sets the reconcile annotation, as `flux reconcile` does.
func (e *Env) RequestReconcile(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (string, error) {
	now := time.Now().Format(time.RFC3339Nano)
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(key.Namespace)
	u.SetName(key.Name)
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, ReconcileAnnotation, now)
	if err := e.Client.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return "", fmt.Errorf("request reconcile of %s %s: %w", gvk.Kind, key, err)
	}
	return now, nil
}

// Reconcile makes Flux apply the fleet repository at commit now, instead of at the
// next interval: it asks source-controller to fetch the GitRepository "fleet",
// waits until its artifact is that commit, then asks kustomize-controller to
// reconcile every Kustomization built from it (infrastructure) and waits until each
// has applied that revision and is Ready; then it publishes the store shards that
// changed (publishShards) and waits until their Kustomizations applied them. It
// returns the revision (main@sha1:<commit>).
func (e *Env) Reconcile(ctx context.Context, commit string) (string, error) {
	revision, published, err := e.reconcileAndPublish(ctx, commit)
	if err != nil {
		return "", err
	}
	if err := e.waitShardsApplied(ctx, published); err != nil {
		return "", err
	}
	return revision, nil
}

// reconcileAndPublish is Reconcile up to the shards' publication: it returns the
// revision and the published shards without waiting for Flux to apply them.
func (e *Env) reconcileAndPublish(ctx context.Context, commit string) (string, map[string]string, error) {
	repo := client.ObjectKey{Namespace: fluxNamespace, Name: "fleet"}
	if _, err := e.RequestReconcile(ctx, gitRepositoryGVK, repo); err != nil {
		return "", nil, err
	}
	var revision string
	err := Poll(ctx, 50*time.Millisecond, func() (bool, string, error) {
		u, err := e.get(ctx, gitRepositoryGVK, repo)
		if err != nil {
			return false, err.Error(), nil
		}
		revision, _, _ = unstructured.NestedString(u.Object, "status", "artifact", "revision")
		if strings.HasSuffix(revision, ":"+commit) {
			return true, "", nil
		}
		_, msg := condition(u, "Ready")
		return false, "artifact revision " + revision + "; " + msg, nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("GitRepository fleet did not fetch %s: %w", commit, err)
	}
	if err := e.reconcileKustomizations(ctx, revision); err != nil {
		return "", nil, err
	}
	published, err := e.publishShards(ctx, commit)
	if err != nil {
		return "", nil, err
	}
	return revision, published, nil
}

func (e *Env) reconcileKustomizations(ctx context.Context, revision string) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(kustomizationGVK.GroupVersion().WithKind("KustomizationList"))
	if err := e.Client.List(ctx, list, client.InNamespace(fluxNamespace)); err != nil {
		return err
	}
	var keys []client.ObjectKey
	for _, k := range list.Items {
		kind, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "kind")
		name, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "name")
		if kind != "GitRepository" || name != "fleet" {
			continue
		}
		key := client.ObjectKeyFromObject(&k)
		if _, err := e.RequestReconcile(ctx, kustomizationGVK, key); err != nil {
			return err
		}
		keys = append(keys, key)
	}
	for _, key := range keys {
		err := Poll(ctx, 50*time.Millisecond, func() (bool, string, error) {
			u, err := e.get(ctx, kustomizationGVK, key)
			if err != nil {
				return false, err.Error(), nil
			}
			applied, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
			ok, msg := IsReady(u)
			return ok && applied == revision, "lastAppliedRevision " + applied + "; " + msg, nil
		})
		if err != nil {
			return fmt.Errorf("Kustomization %s did not apply %s: %w", key, revision, err)
		}
	}
	return nil
}
