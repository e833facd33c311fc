package charts

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/testenv"
)

// remoteKinds is all a remote install (remote.enabled) may hold: the identity gitops-api uses
// in a served cluster, what it may do there, and that identity's token. Nothing that runs,
// listens or configures the API.
var remoteKinds = map[string]bool{
	"ServiceAccount": true, "Secret": true,
	"ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
}

func remoteOptions(valuesFiles ...string) TemplateOptions {
	return TemplateOptions{Release: "storefleet", Namespace: "storefleet", ValuesFiles: valuesFiles,
		Set: []string{"remote.enabled=true"}}
}

// A remote install renders only the served cluster's share of the chart, and of it the very
// RBAC and admission policy of the main install with the same values: what gitops-api may do
// in a cluster it serves from elsewhere cannot drift from what it may do in its own.
func TestPlatformRemoteRender(t *testing.T) {
	for _, c := range []struct {
		name, values string
		set          []string
	}{
		{name: "defaults"},
		{name: "values-prod.yaml", values: "values-prod.yaml"},
		// TokenReview is asked of the cluster the pod runs in, never of a served one: the
		// one grant a remote install leaves out.
		{name: "tokenReview", set: []string{"auth.kubernetes.tokenReview=true"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var files []string
			if c.values != "" {
				files = []string{chartDir("storefleet") + "/" + c.values}
			}
			ro := remoteOptions(files...)
			ro.Set = append(c.set, ro.Set...)
			remote := template(t, "storefleet", ro)
			main := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet", ValuesFiles: files, Set: c.set})
			for _, o := range remote {
				if !remoteKinds[o.GetKind()] {
					t.Errorf("remote install renders %s %s: no pod runs in a served cluster", o.GetKind(), o.GetName())
				}
			}
			// The one intended difference (the tokenReview case): compared without it, and a
			// remote ClusterRole that grants it differs from the main one's.
			for _, o := range byKind(main, "ClusterRole") {
				rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
				var kept []any
				for _, r := range rules {
					if res, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources"); fmt.Sprint(res) != "[tokenreviews]" {
						kept = append(kept, r)
					}
				}
				o.Object["rules"] = kept
			}
			sa := "storefleet-gitops-api"
			if find(remote, "ServiceAccount", sa) == nil {
				t.Errorf("remote install renders no ServiceAccount %s", sa)
			}
			token := find(remote, "Secret", "storefleet-gitops-api-token")
			if token == nil {
				t.Fatal("remote install renders no token Secret storefleet-gitops-api-token")
			}
			if typ, _, _ := unstructured.NestedString(token.Object, "type"); typ != string(corev1.SecretTypeServiceAccountToken) ||
				token.GetAnnotations()[corev1.ServiceAccountNameKey] != sa {
				t.Errorf("token Secret: type %q, annotations %v; want a %s of ServiceAccount %s",
					typ, token.GetAnnotations(), corev1.SecretTypeServiceAccountToken, sa)
			}
			for _, kind := range []string{"ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding",
				"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
				if got, want := specs(byKind(remote, kind)), specs(byKind(main, kind)); !reflect.DeepEqual(got, want) {
					t.Errorf("%s of the remote install differ from the main install's:\nremote %v\nmain   %v", kind, got, want)
				}
			}
			checkAdmissionPolicy(t, remote, "system:serviceaccount:storefleet:"+sa)
		})
	}
	// The token is optional: an operator may bring a client certificate or a bound token.
	noToken := template(t, "storefleet", TemplateOptions{Release: "storefleet", Namespace: "storefleet",
		Set: []string{"remote.enabled=true", "remote.serviceAccountToken=false"}})
	if len(byKind(noToken, "Secret")) != 0 {
		t.Error("remote.serviceAccountToken=false still renders a Secret")
	}
}

// specs keys each object by namespace and name and keeps what grants or binds: rules,
// roleRef, subjects, spec.
func specs(objs []*unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, o := range objs {
		m := map[string]any{}
		for _, k := range []string{"rules", "aggregationRule", "roleRef", "subjects", "spec"} {
			if v, ok := o.Object[k]; ok {
				m[k] = v
			}
		}
		out[o.GetNamespace()+"/"+o.GetName()] = m
	}
	return out
}

// The remote install on a real API server, used as the operator's kubeconfig would: with the
// token the token controller writes into the chart's Secret. That identity does in the served
// cluster what gitops-api does there (watch HelmReleases and Kustomizations, read Pods and
// events, publish a shard, hold the Lease <release>-publisher in the namespace named like the
// release's) and no more than the main install's ServiceAccount (no Secrets).
func TestPlatformRemoteOnCluster(t *testing.T) {
	e := testenv.StartT(t, testenv.Options{Root: repoRoot})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// helm install --create-namespace: the release namespace is the Lease's.
	installRender(ctx, t, e, remoteOptions(chartDir("storefleet")+"/values-prod.yaml"))

	// The token controller fills the Secret in; the README's kubeconfig reads it from there.
	secret := &corev1.Secret{}
	for len(secret.Data[corev1.ServiceAccountTokenKey]) == 0 {
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: "storefleet", Name: "storefleet-gitops-api-token"}, secret); err != nil {
			t.Fatalf("token Secret storefleet-gitops-api-token (never filled in by the token controller?): %v", err)
		}
		if len(secret.Data[corev1.ServiceAccountTokenKey]) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	// What the README's kubeconfig holds: the server, the Secret's CA and its token.
	cfg := &rest.Config{Host: e.Config.Host, BearerToken: string(secret.Data[corev1.ServiceAccountTokenKey]),
		TLSClientConfig: rest.TLSClientConfig{CAData: secret.Data[corev1.ServiceAccountRootCAKey]}}
	api, err := client.New(cfg, client.Options{Scheme: e.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// Who the token is: the name the bindings and the admission policy's match condition use.
	if err := api.Create(ctx, object(externalArtifactGVK, "storefleet", "stores-3f0")); !rbacDenied(err, "create") ||
		!strings.Contains(err.Error(), `"system:serviceaccount:storefleet:storefleet-gitops-api"`) {
		t.Fatalf("want RBAC's refusal naming system:serviceaccount:storefleet:storefleet-gitops-api, got %v", err)
	}

	// The watcher: list and watch Flux objects in every namespace, Pods and events.
	helmReleases := schema.GroupVersionResource{Group: "helm.toolkit.fluxcd.io", Version: "v2", Resource: "helmreleases"}
	pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	events := schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}
	gitRepositories := schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	for _, r := range []schema.GroupVersionResource{helmReleases, kustomizationGVR, gitRepositories, pods, events} {
		for _, ns := range []string{"", "flux-system", "store-x"} {
			if _, err := dyn.Resource(r).Namespace(ns).List(ctx, metav1.ListOptions{}); err != nil {
				t.Errorf("list %s in %q: %v", r.Resource, ns, err)
			}
			w, err := dyn.Resource(r).Namespace(ns).Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Errorf("watch %s in %q: %v", r.Resource, ns, err)
				continue
			}
			w.Stop()
		}
	}
	if err := api.List(ctx, &corev1.NamespaceList{}); err != nil {
		t.Errorf("list namespaces: %v", err)
	}

	// The shard publisher of this cluster: an ExternalArtifact in the Flux namespace.
	shard := object(externalArtifactGVK, "flux-system", "stores-3f0")
	shard.SetLabels(map[string]string{"storefleet.io/shard": "3f0"})
	if err := api.Create(ctx, shard); err != nil {
		t.Errorf("creating ExternalArtifact stores-3f0 as the shard publisher does: %v", err)
	}

	// The election: create the Lease, read and renew it (client-go leaderelection's calls).
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "storefleet", Name: "storefleet-publisher"}}
	holder := "gitops-api-0"
	lease.Spec.HolderIdentity = &holder
	if err := api.Create(ctx, lease); err != nil {
		t.Fatalf("create Lease storefleet/storefleet-publisher: %v", err)
	}
	if err := api.Get(ctx, client.ObjectKeyFromObject(lease), lease); err != nil {
		t.Fatalf("get Lease storefleet/storefleet-publisher: %v", err)
	}
	renew := metav1.NewMicroTime(time.Now())
	lease.Spec.RenewTime = &renew
	if err := api.Update(ctx, lease); err != nil {
		t.Errorf("update Lease storefleet/storefleet-publisher: %v", err)
	}
	other := &coordinationv1.Lease{}
	if err := api.Get(ctx, client.ObjectKey{Namespace: "storefleet", Name: "another"}, other); !rbacDenied(err, "get") {
		t.Errorf("get another Lease: want RBAC's Forbidden, got %v", err)
	}

	// No more than that: no Secrets, not even its own token's.
	if err := api.List(ctx, &corev1.SecretList{}, client.InNamespace("storefleet")); !rbacDenied(err, "list") {
		t.Errorf("list Secrets: want RBAC's Forbidden, got %v", err)
	}
}
