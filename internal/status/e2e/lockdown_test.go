package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A shard is applied as ServiceAccount storefleet-shard (render.ShardServiceAccount,
// clusters/local/shard-identity.yaml), not as kustomize-controller: whoever lands a
// commit in the fleet gets only what a store's folder holds. Stores pushed by hand
// carrying a ClusterRoleBinding, a Deployment in kube-system or a Deployment in another
// store's namespace are refused by the API server; the refusal is in the shard
// Kustomization's status and in the store's status the API shows; nothing of them
// reaches the cluster; and real stores in other shards, created before and after,
// reach ready.
func TestShardLeastPrivilege(t *testing.T) {
	a := startAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	const before, after = "honest-before", "honest-after"
	rogues := []struct {
		name, file, manifest string
		// what the refusal names: the forbidden resource and where.
		want []string
		gone client.Object
		key  client.ObjectKey
	}{
		{name: "rogue-crb", file: "escalate.yaml",
			manifest: `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: rogue-crb
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: storefleet-store
    namespace: store-rogue-crb
`,
			want: []string{"forbidden", "clusterrolebindings"},
			gone: &rbacv1.ClusterRoleBinding{}, key: client.ObjectKey{Name: "rogue-crb"}},
		{name: "rogue-system", file: "miner.yaml", manifest: deployment("miner", "kube-system"),
			want: []string{"forbidden", "deployments", "kube-system"},
			gone: &appsv1.Deployment{}, key: client.ObjectKey{Namespace: "kube-system", Name: "miner"}},
		{name: "rogue-neighbour", file: "squatter.yaml", manifest: deployment("squatter", "store-"+before),
			want: []string{"forbidden", "deployments", "store-" + before},
			gone: &appsv1.Deployment{}, key: client.ObjectKey{Namespace: "store-" + before, Name: "squatter"}},
	}
	shards := map[string]string{}
	for _, n := range []string{before, after, rogues[0].name, rogues[1].name, rogues[2].name} {
		if other, taken := shards[store.Shard(n)]; taken {
			t.Fatalf("stores %s and %s share shard %s: the test needs each in its own", n, other, store.Shard(n))
		}
		shards[store.Shard(n)] = n
	}

	// A real store, through the API.
	a.do(t, http.MethodPost, "/api/v1/stores", createBody(before, ""), http.StatusAccepted)
	waitReady(t, a, before)

	// The rogue stores: real store files plus one file the shard's identity may not
	// apply, pushed to the fleet by hand (as a compromised gitops-api or a merged pull
	// request could).
	repo, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: t.TempDir() + "/clone.git"})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	opts := render.LocalOptions()
	opts.Chart.Name = "storefleet"
	rnd := render.Renderer{Options: opts}
	var changes []gitrepo.Change
	for _, r := range rogues {
		st := store.Store{Name: r.name, Engine: store.WooCommerce, Plan: "basic",
			Settings: store.Settings{AdminEmail: "owner@example.com"}}.WithDefaults("")
		files, err := rnd.Render(st, store.StateActive)
		if err != nil {
			t.Fatal(err)
		}
		dir := store.Dir(st.Cluster, st.Name)
		c := gitrepo.Change{Store: st.Name, Cluster: st.Cluster, Dir: dir, Action: gitrepo.ActionCreate, Actor: "intruder", RequestID: "rogue-" + r.name}
		for _, f := range files {
			content := f.Content
			if strings.HasSuffix(f.Path, "/kustomization.yaml") {
				content = append(append([]byte{}, content...), []byte("- "+r.file+"\n")...)
			}
			c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(f.Path, dir+"/"), Content: content})
		}
		c.Files = append(c.Files, gitrepo.File{Path: r.file, Content: []byte(r.manifest)})
		c.Shared = sharedSource(t, rnd, st)
		changes = append(changes, c)
	}
	for _, r := range repo.SubmitAll(ctx, changes) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}

	// Each rogue shard: Ready=False, the API server's refusal in its message, and the
	// same message in the store's status.
	for _, r := range rogues {
		key := client.ObjectKey{Namespace: "flux-system", Name: store.ShardObjectName(store.Shard(r.name))}
		var msg string
		waitFor(t, 3*time.Minute, func() (bool, string) {
			var k kustomizev1.Kustomization
			if err := env.Client.Get(ctx, key, &k); err != nil {
				return false, err.Error()
			}
			c := apimeta.FindStatusCondition(k.Status.Conditions, "Ready")
			if c == nil {
				return false, "Kustomization " + key.Name + ": no Ready condition"
			}
			if c.Status != "False" || !strings.Contains(c.Message, "forbidden") {
				return false, "Kustomization " + key.Name + ": Ready=" + string(c.Status) + " " + c.Message
			}
			msg = c.Message
			return true, ""
		})
		for _, w := range r.want {
			if !strings.Contains(msg, w) {
				t.Errorf("shard of %s: Ready=False message does not name %q: %s", r.name, w, msg)
			}
		}
		if !strings.Contains(msg, "system:serviceaccount:flux-system:"+render.ShardServiceAccount) {
			t.Errorf("shard of %s: refused, but not as %s: %s", r.name, render.ShardServiceAccount, msg)
		}
		waitFor(t, time.Minute, func() (bool, string) {
			v := a.get(t, r.name)
			return strings.Contains(v.Status.Message, "forbidden") && v.Status.Phase != "ready",
				"store " + r.name + ": " + v.Status.Phase + " " + v.Status.Message
		})
		t.Logf("%s: %s", r.name, a.get(t, r.name).Status.Message)
		if err := env.Client.Get(ctx, r.key, r.gone); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s: want NotFound (refused), got %v", r.gone, r.key, err)
		}
	}

	// Real stores still apply: the one before is still ready, one created now gets there.
	a.do(t, http.MethodPost, "/api/v1/stores", createBody(after, ""), http.StatusAccepted)
	waitReady(t, a, after)
	if v := a.get(t, before); v.Status.Phase != "ready" {
		t.Errorf("store %s after the rogue pushes: %s %s", before, v.Status.Phase, v.Status.Message)
	}
}

func waitReady(t *testing.T, a *gitopsAPI, name string) {
	t.Helper()
	waitFor(t, 3*time.Minute, func() (bool, string) {
		v := a.get(t, name)
		return v.Status.Phase == "ready", name + ": " + v.Status.Phase + " " + v.Status.Message
	})
}

func deployment(name, namespace string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
  namespace: ` + namespace + `
spec:
  replicas: 1
  selector:
    matchLabels: {app: ` + name + `}
  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
      containers:
        - name: ` + name + `
          image: registry.example/` + name + `:1
`
}
