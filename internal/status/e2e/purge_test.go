package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/status"
	"github.com/storefleet/storefleet/internal/store"
)

// TestOneRequestPurge: with a cluster, one DELETE ?purge=true on a retained store
// takes it to deleted. gitops-api commits the folder's removal itself once Flux
// applied the first step, under the request's Request-Id and actor; the namespace is
// gone, and the request reports the second commit. A second purge afterwards finds
// nothing and commits nothing.
func TestOneRequestPurge(t *testing.T) {
	a := startAPI(t)
	const name, requestID, actor = "onepurge", "one-purge-request", "alice@example.com"
	retainedStore(t, a, name)

	all := a.events(t, "/api/v1/events", "")
	start := time.Now()
	acc := a.purge(t, name, requestID, actor, http.StatusAccepted)
	if acc.RequestID != requestID || acc.Phase != store.PhasePurging || acc.Commit == nil {
		t.Fatalf("202 of the purge: %+v", acc)
	}
	got, last, seen := storePhases(t, all, name, store.PhaseDeleted, 3*time.Minute)
	took := time.Since(start)
	// The stream starts with the store's current status: retained.
	wantOrdered(t, got, []store.Phase{store.PhaseRetained, store.PhasePurging, store.PhaseDeleted}, store.PhasePurging)
	wantSteps(t, last, status.StepCommitted, status.StepSourceFetched, status.StepApplied, status.StepNamespaceGone, status.StepDeleted)
	t.Logf("one-request purge: %s from DELETE ?purge=true to deleted", took.Round(time.Millisecond))

	wantNamespaceGone(t, name)
	a.do(t, http.MethodGet, "/api/v1/stores/"+name, nil, http.StatusNotFound)
	h := wantPurgeCommits(t, a, name, acc.Commit.SHA, requestID, actor)
	wantRequestEnded(t, a, requestID, h[0].Commit.SHA)
	if at, ok := seen[h[0].Commit.SHA]; ok {
		t.Logf("of which until gitops-api committed the second step: %s", at.Sub(start).Round(time.Millisecond))
	}

	// A user's second purge, as the two-request contract had it: the store is gone.
	a.purge(t, name, "late-purge", actor, http.StatusNotFound)
	if again := a.history(t, name); len(again) != len(h) {
		t.Fatalf("history went from %d to %d entries after the late purge", len(h), len(again))
	}
}

// TestPurgeAfterRestart: a store left purging, its first step applied by Flux, by a
// gitops-api that stopped before it removed the folder, is finished by the next
// gitops-api at start, under the first request's Request-Id and actor read from Git.
// Before Flux applied the first step, a user's second purge is refused.
//
// To leave it so, the store's shard Kustomization is suspended while the purge is
// requested (so the first gitops-api never sees it applied), gitops-api is stopped,
// and Flux applies the first step meanwhile from a plain file server at gitops-api's
// artifact address serving the artifacts it published.
func TestPurgeAfterRestart(t *testing.T) {
	a := startAPI(t)
	ctx := context.Background()
	const name, requestID, actor = "leftover", "restart-purge-request", "bob@example.com"
	ks := client.ObjectKey{Namespace: "flux-system", Name: store.ShardObjectName(store.Shard(name))}
	retainedStore(t, a, name)

	suspend(t, ks, true)
	t.Cleanup(func() { suspend(t, ks, false) })
	acc := a.purge(t, name, requestID, actor, http.StatusAccepted)
	first := acc.Commit.SHA
	// The publish carrying the first step is what Flux will apply.
	var revision string
	waitFor(t, time.Minute, func() (bool, string) {
		revision = artifactRevision(t, ks)
		return strings.HasSuffix(revision, ":"+first), "ExternalArtifact at " + revision
	})
	if v := a.get(t, name); v.Status.Phase != "purging" || len(v.Status.Steps) < 3 || v.Status.Steps[2].State == "done" {
		t.Fatalf("with the shard suspended: %+v", v.Status)
	}
	// A user's second purge before Flux applied the first would remove the folder
	// while the namespace is still marked prune: disabled: refused.
	a.purge(t, name, "early-purge", actor, http.StatusConflict)

	var restarted time.Time
	a = restartAPI(t, func(addr string) {
		srv := serveArtifacts(t, addr, filepath.Join(apiDataDir, "artifacts"))
		defer srv.Close()
		suspend(t, ks, false)
		if _, err := env.RequestReconcile(ctx, kustomizev1.GroupVersion.WithKind(kustomizev1.KustomizationKind), ks); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, func() (bool, string) {
			var k kustomizev1.Kustomization
			if err := env.Client.Get(ctx, ks, &k); err != nil {
				return false, err.Error()
			}
			return k.Status.LastAppliedRevision == revision, "lastAppliedRevision " + k.Status.LastAppliedRevision
		})
		var ns corev1.Namespace
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "store-" + name}, &ns); err != nil {
			t.Fatal(err)
		}
		if v := ns.Annotations["kustomize.toolkit.fluxcd.io/prune"]; v == "disabled" {
			t.Fatalf("namespace still prune: %s after the first step was applied", v)
		}
		restarted = time.Now()
	})

	got, _, _ := a.events(t, "/api/v1/stores/"+name+"/events", "").phases(t, 3*time.Minute)
	if got[len(got)-1] != store.PhaseDeleted {
		t.Fatalf("after the restart: phases %v, want deleted at the end", got)
	}
	t.Logf("restarted gitops-api finished the purge %s after it started", time.Since(restarted).Round(time.Millisecond))
	wantNamespaceGone(t, name)
	h := wantPurgeCommits(t, a, name, first, requestID, actor)
	wantRequestEnded(t, a, requestID, h[0].Commit.SHA)
}

// retainedStore creates name, waits until it is ready, deletes it and waits until
// it is retained.
func retainedStore(t *testing.T, a *gitopsAPI, name string) {
	t.Helper()
	a.do(t, http.MethodPost, "/api/v1/stores", createBody(name, ""), http.StatusAccepted)
	if got, _, _ := a.events(t, "/api/v1/stores/"+name+"/events", "").phases(t, 3*time.Minute); got[len(got)-1] != store.PhaseReady {
		t.Fatalf("create: phases %v", got)
	}
	a.do(t, http.MethodDelete, "/api/v1/stores/"+name, nil, http.StatusAccepted)
	if got, _, _ := a.events(t, "/api/v1/stores/"+name+"/events", "").phases(t, 3*time.Minute); got[len(got)-1] != store.PhaseRetained {
		t.Fatalf("delete: phases %v", got)
	}
}

// accepted is the part of a 202 these tests read.
type accepted struct {
	RequestID string        `json:"requestId"`
	Phase     store.Phase   `json:"phase"`
	Commit    *store.Commit `json:"commit"`
}

// purge sends DELETE ?purge=true as actor under requestID.
func (a *gitopsAPI) purge(t *testing.T, name, requestID, actor string, want int) accepted {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, a.URL+"/api/v1/stores/"+name+"?purge=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", requestID)
	req.Header.Set("X-Actor", actor)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("DELETE %s?purge=true: %d, want %d: %s", name, resp.StatusCode, want, body)
	}
	var out accepted
	if want == http.StatusAccepted {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func (a *gitopsAPI) history(t *testing.T, name string) []store.Entry {
	t.Helper()
	var h struct {
		Items []store.Entry `json:"items"`
	}
	if err := json.Unmarshal(a.do(t, http.MethodGet, "/api/v1/stores/"+name+"/history", nil, http.StatusOK), &h); err != nil {
		t.Fatal(err)
	}
	return h.Items
}

// wantPurgeCommits checks the store's history in Git: exactly two commits under
// requestID, the first step (commit first) and after it the folder's removal, both
// by actor.
func wantPurgeCommits(t *testing.T, a *gitopsAPI, name, first, requestID, actor string) []store.Entry {
	t.Helper()
	h := a.history(t, name)
	var mine []store.Entry
	for _, e := range h {
		if e.RequestID == requestID {
			mine = append(mine, e)
		}
	}
	if len(mine) != 2 || len(h) < 2 || h[0].RequestID != requestID || h[1].RequestID != requestID {
		t.Fatalf("history %+v: want the two newest commits under %s", h, requestID)
	}
	for _, e := range mine {
		if e.Actor != actor {
			t.Fatalf("commit %s by %q, want %q", e.Commit.SHA, e.Actor, actor)
		}
	}
	// The first step's Action trailer is the writer's (delete: the folder stays)
	// until the lifecycle writes purge for both steps.
	if h[1].Commit.SHA != first || (h[1].Action != store.ActionPurge && h[1].Action != store.ActionDelete) {
		t.Fatalf("older purge commit %+v, want the first step %s", h[1], first)
	}
	if h[0].Action != store.ActionPurge || h[0].Commit.SHA == first {
		t.Fatalf("newest commit %+v, want the folder's removal", h[0])
	}
	t.Logf("purge commits: %s (%s) and %s (%s), Request-Id %s, Actor %s", h[1].Commit.SHA[:12], h[1].Action, h[0].Commit.SHA[:12], h[0].Action, requestID, actor)
	return h
}

// wantRequestEnded checks that the request reports where it ended: the folder's
// removal.
func wantRequestEnded(t *testing.T, a *gitopsAPI, requestID, commit string) {
	t.Helper()
	var out accepted
	if err := json.Unmarshal(a.do(t, http.MethodGet, "/api/v1/requests/"+requestID, nil, http.StatusOK), &out); err != nil {
		t.Fatal(err)
	}
	if out.Phase != store.PhaseDeleted || out.Commit == nil || out.Commit.SHA != commit {
		t.Fatalf("request %s: %+v, want phase deleted at %s", requestID, out, commit)
	}
}

func wantNamespaceGone(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Get(context.Background(), client.ObjectKey{Name: "store-" + name}, &corev1.Namespace{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("namespace store-%s: %v, want not found", name, err)
	}
}

// storePhases reads an all-stores stream for name's statuses until phase, returning
// the distinct phases in order, the last status and when a status about each commit
// first arrived.
func storePhases(t *testing.T, s *stream, name string, until store.Phase, timeout time.Duration) ([]store.Phase, status.Status, map[string]time.Time) {
	t.Helper()
	var seen []store.Phase
	var last status.Status
	commits := map[string]time.Time{}
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.C:
			if !ok {
				t.Fatalf("stream ended; %s went %v", name, seen)
			}
			if ev.Type != "status" {
				continue
			}
			st := ev.status(t)
			if st.Store != name {
				continue
			}
			last = st
			if _, ok := commits[st.Commit]; !ok {
				commits[st.Commit] = time.Now()
			}
			if len(seen) == 0 || seen[len(seen)-1] != st.Phase {
				seen = append(seen, st.Phase)
				t.Logf("%s: %s %s", st.Store, st.Phase, st.Message)
			}
			if st.Phase == until {
				return seen, last, commits
			}
		case <-deadline:
			t.Fatalf("%s not %s within %s: %v; component logs in %s", name, until, timeout, seen, env.LogDir)
		}
	}
}

// suspend sets the Kustomization's spec.suspend, as `flux suspend|resume ks` does.
func suspend(t *testing.T, key client.ObjectKey, on bool) {
	t.Helper()
	k := &kustomizev1.Kustomization{}
	k.Namespace, k.Name = key.Namespace, key.Name
	patch := fmt.Appendf(nil, `{"spec":{"suspend":%t}}`, on)
	if err := env.Client.Patch(context.Background(), k, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("suspend=%t on %s: %v", on, key, err)
	}
}

// artifactRevision is the revision of the shard's ExternalArtifact (key names the
// shard's Kustomization, which has the same name).
func artifactRevision(t *testing.T, key client.ObjectKey) string {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "ExternalArtifact"})
	if err := env.Client.Get(context.Background(), key, u); err != nil {
		return err.Error()
	}
	rev, _, _ := unstructured.NestedString(u.Object, "status", "artifact", "revision")
	return rev
}

// serveArtifacts serves dir under /artifacts/ at addr, as gitops-api does.
func serveArtifacts(t *testing.T, addr, dir string) *http.Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.StripPrefix("/artifacts/", http.FileServer(http.Dir(dir))), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("artifact server: %v", err)
		}
	}()
	return srv
}
