package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/gitrepo"
	"github.com/storefleet/storefleet/internal/render"
	"github.com/storefleet/storefleet/internal/store"
	"github.com/storefleet/storefleet/internal/testenv"
)

// replicaProc is one `gitops-api serve` process of the three.
type replicaProc struct {
	id  string
	cmd *exec.Cmd
	url string
	log string
	// artifacts is the replica's own artifact listener (--artifacts-listen).
	artifacts string
	dead      atomic.Bool
}

// The replicas write their own fleet cluster folder (stores/replicas/) and publish into
// their own Flux namespace, with their own Lease there, so the package's gitops-api (the
// other tests', cluster local, flux-system) neither competes with them nor publishes
// their shards.
const (
	repCluster = "replicas"
	repFluxNS  = "replicas-flux"
	repLease   = "storefleet-publisher"
)

func buildGitopsAPI(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gitops-api")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gitops-api")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build gitops-api: %v\n%s", err, out)
	}
	return bin
}

func startReplica(t *testing.T, bin string, i int, artifactURL string) *replicaProc {
	t.Helper()
	id := fmt.Sprintf("replica-%d", i)
	logPath := filepath.Join(env.LogDir, "gitops-api-"+id+".log")
	logF, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// Each replica's own artifact listener, on a port picked now so that the
	// stand-in Service can name it.
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	artifacts := "http://" + al.Addr().String()
	al.Close()
	cmd := exec.Command(bin, "serve",
		"--artifacts-listen", strings.TrimPrefix(artifacts, "http://"),
		"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--fleet-url", env.FleetURL,
		"--kubeconfig", env.Kubeconfig, "--cluster", repCluster, "--flux-namespace", repFluxNS,
		"--shard-depends-on", "none", "--shard-retry-interval", "5s",
		"--chart-repository", "storefleet", "--chart-versions", env.ChartRepoURL+"/index.yaml",
		"--publish-interval", "2s", "--fetch-interval", "1s",
		"--lease-name", repLease, "--lease-identity", id, "--lease-duration", "6s", "--lease-renew-deadline", "4s",
		"--artifact-url", artifactURL,
		// No GitRepository of theirs applies chart-sources/replicas/ (applySharedSource
		// puts their chart source in the cluster): nothing to ask to fetch.
		"--fleet-source", "none",
		"--shutdown-grace", "5s", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	cmd.Stderr = logF
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &replicaProc{id: id, cmd: cmd, log: logPath, artifacts: artifacts}
	t.Cleanup(func() {
		if !p.dead.Load() {
			_ = cmd.Process.Signal(os.Interrupt)
		}
		_ = cmd.Wait()
		logF.Close()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "gitops-api listening on "); ok {
				lines <- u
			}
		}
		close(lines)
	}()
	select {
	case u, ok := <-lines:
		if !ok {
			t.Fatalf("%s exited before listening; log %s", id, logPath)
		}
		p.url = u
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s did not listen within 2 minutes; log %s", id, logPath)
	}
	return p
}

func leaseHolder(t *testing.T) string {
	t.Helper()
	var l coordinationv1.Lease
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: repFluxNS, Name: repLease}, &l)
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestThreeReplicasLeaderKilled: three gitops-api processes on one fleet and one
// cluster, a load spread over their loopback ports (there is no kube-proxy), pushes made
// outside gitops-api meanwhile, and the replica holding the publisher's Lease killed
// with SIGKILL in the middle. Requests to the killed replica may fail at the connection
// (the client then asks another with the same Idempotency-Key); none gets a 5xx; every
// acknowledged store is in Git and reaches ready; another replica takes the Lease and
// publishes.
func TestThreeReplicasLeaderKilled(t *testing.T) {
	ctx := context.Background()
	ns := &unstructured.Unstructured{}
	ns.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"})
	ns.SetName(repFluxNS)
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	// The replicas' shards apply as storefleet-shard of their own Flux namespace.
	if err := env.ApplyShardIdentity(ctx, repFluxNS); err != nil {
		t.Fatal(err)
	}
	bin := buildGitopsAPI(t)
	reps := make([]*replicaProc, 3)
	svc := artifactService(t, reps)
	for i := range reps {
		reps[i] = startReplica(t, bin, i, svc)
	}
	byID := map[string]*replicaProc{}
	for _, r := range reps {
		byID[r.id] = r
	}
	waitFor(t, time.Minute, func() (bool, string) {
		h := leaseHolder(t)
		return byID[h] != nil, "Lease holder " + h
	})
	leader := byID[leaseHolder(t)]
	t.Logf("first leader: %s (%s)", leader.id, leader.url)

	// Outside pushes: an operator's clone writing stores of the same cluster folder.
	outside, err := gitrepo.Open(ctx, gitrepo.Options{URL: env.FleetURL, Dir: t.TempDir() + "/clone.git"})
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	opts := render.LocalOptions()
	opts.Chart.Name = "storefleet"
	rnd := render.Renderer{Options: opts}
	// The stores of this cluster reference the shared chart source in flux-system,
	// written to chart-sources/replicas/, which no Kustomization of the test
	// environment applies (only clusters/local's folder is).
	applySharedSource(t, rnd, store.Store{Name: "source", Engine: store.WooCommerce, Plan: "basic", Cluster: repCluster,
		Settings: store.Settings{AdminEmail: "owner@example.com"}}.WithDefaults(""))
	pushOutside := func(name string) error {
		st := store.Store{Name: name, Engine: store.WooCommerce, Plan: "basic", Cluster: repCluster,
			Settings: store.Settings{AdminEmail: "owner@example.com"}}.WithDefaults("")
		files, err := rnd.Render(st, store.StateActive)
		if err != nil {
			return err
		}
		dir := store.Dir(st.Cluster, st.Name)
		c := gitrepo.Change{Store: st.Name, Cluster: st.Cluster, Dir: dir, Action: gitrepo.ActionCreate, Actor: "operator", RequestID: "outside-" + name}
		for _, f := range files {
			c.Files = append(c.Files, gitrepo.File{Path: strings.TrimPrefix(f.Path, dir+"/"), Content: f.Content})
		}
		// An operator retries a push that lost the race to the replicas' commits (the
		// same Request-Id: applied once).
		var err2 error
		for range 5 {
			err2 = nil
			for _, r := range outside.SubmitAll(ctx, []gitrepo.Change{c}) {
				err2 = r.Err
			}
			if err2 == nil {
				return nil
			}
			time.Sleep(500 * time.Millisecond)
		}
		return err2
	}

	const (
		stores  = 45
		writers = 6
		killAt  = 15 // acknowledged creates before the kill
		pushes  = 5
	)
	var (
		mu        sync.Mutex
		codes     = map[string]int{} // "POST 202", "GET 200", ...
		fiveXX    []string
		connFails int
		acked     = map[string]bool{}
		killed    = make(chan struct{})
		killOnce  sync.Once
		killTime  time.Time
		nAcked    atomic.Int32
	)
	httpc := &http.Client{Timeout: 2 * time.Minute}
	// call sends one request to replica i, or to the next ones while the connection
	// fails (the client's part of "no kube-proxy"), and records the answer.
	call := func(i int, method, path, key, body string) (int, string) {
		for try := range len(reps) {
			r := reps[(i+try)%len(reps)]
			req, _ := http.NewRequest(method, r.url+path, strings.NewReader(body))
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if key != "" {
				req.Header.Set("Idempotency-Key", key)
			}
			res, err := httpc.Do(req)
			if err != nil {
				mu.Lock()
				connFails++
				mu.Unlock()
				if !r.dead.Load() {
					// Only the killed replica may fail at the connection.
					t.Errorf("%s %s on %s (alive): %v", method, path, r.id, err)
				}
				continue
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			mu.Lock()
			codes[fmt.Sprintf("%s %d", method, res.StatusCode)]++
			if res.StatusCode >= 500 {
				fiveXX = append(fiveXX, fmt.Sprintf("%s %s on %s: %d %s", method, path, r.id, res.StatusCode, b))
			}
			mu.Unlock()
			return res.StatusCode, string(b)
		}
		return 0, "every replica failed at the connection"
	}
	names := make(chan int)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				name := fmt.Sprintf("rep-%03d", n)
				body := fmt.Sprintf(`{"name":%q,"engine":"woocommerce","plan":"basic","settings":{"adminEmail":"owner@example.com"}}`, name)
				st, msg := call(n, http.MethodPost, "/api/v1/stores", "key-"+name, body)
				if st != http.StatusAccepted {
					t.Errorf("create %s: %d %s", name, st, msg)
					continue
				}
				mu.Lock()
				acked[name] = true
				mu.Unlock()
				if nAcked.Add(1) == killAt {
					killOnce.Do(func() { close(killed) })
				}
				// Read it back from another replica at once: found there too.
				if st, msg := call(n+1, http.MethodGet, "/api/v1/stores/"+name, "", ""); st != http.StatusOK {
					t.Errorf("GET %s from the next replica right after its 202: %d %s", name, st, msg)
				}
			}
		}()
	}
	var pushWG sync.WaitGroup
	pushWG.Add(1)
	go func() {
		defer pushWG.Done()
		for i := range pushes {
			if err := pushOutside(fmt.Sprintf("rep-out-%d", i)); err != nil {
				t.Errorf("outside push %d: %v", i, err)
			}
			time.Sleep(time.Second)
		}
	}()
	var failover time.Duration
	var newLeader *replicaProc
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		<-killed
		leader = byID[leaseHolder(t)]
		if leader == nil {
			t.Errorf("no replica holds the Lease at the kill")
			return
		}
		leader.dead.Store(true)
		killTime = time.Now()
		if err := leader.cmd.Process.Kill(); err != nil {
			t.Errorf("SIGKILL %s: %v", leader.id, err)
			return
		}
		t.Logf("SIGKILL %s (the Lease holder) after %d acknowledged creates", leader.id, killAt)
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if h := leaseHolder(t); h != "" && h != leader.id {
				failover = time.Since(killTime)
				newLeader = byID[h]
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("no other replica took the Lease within 2 minutes of the kill")
	}()
	for n := range stores {
		names <- n
	}
	close(names)
	wg.Wait()
	loadTook := time.Since(t0)
	pushWG.Wait()
	<-killDone
	if newLeader == nil {
		t.Fatalf("the publisher did not fail over; logs in %s", env.LogDir)
	}
	t.Logf("failover: %s took the Lease %s after the kill (lease duration 6s)", newLeader.id, failover.Round(time.Millisecond))

	// Every acknowledged store and every outside push is in Git.
	out, err := exec.Command("git", "-C", env.FleetRepoPath, "ls-tree", "-d", "-r", "--name-only", "main", "stores/"+repCluster).Output()
	if err != nil {
		t.Fatal(err)
	}
	inGit := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		if strings.Count(d, "/") == 3 {
			inGit[d[strings.LastIndex(d, "/")+1:]] = true
		}
	}
	want := map[string]bool{}
	for n := range acked {
		want[n] = true
	}
	for i := range pushes {
		want[fmt.Sprintf("rep-out-%d", i)] = true
	}
	for n := range want {
		if !inGit[n] {
			t.Errorf("store %s was acknowledged (or pushed) but is not in the fleet repository", n)
		}
	}
	// One commit per acknowledged create: a retry on another replica did not commit twice.
	log, err := exec.Command("git", "-C", env.FleetRepoPath, "log", "--format=%(trailers:key=Store,valueonly,separator=%x20)", "main").Output()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range strings.Fields(string(log)) {
		count[s]++
	}
	for n := range want {
		if count[n] != 1 {
			t.Errorf("store %s was committed %d times", n, count[n])
		}
	}

	// Every one reaches ready, as each surviving replica reports it.
	var alive []*replicaProc
	for _, r := range reps {
		if !r.dead.Load() {
			alive = append(alive, r)
		}
	}
	t1 := time.Now()
	pending := sortedKeys(want)
	lastLog := time.Now()
	waitFor(t, 6*time.Minute, func() (bool, string) {
		var left []string
		phases := map[string]int{}
		for _, n := range pending {
			for _, r := range alive {
				if phase := replicaPhase(r, n); phase != "ready" {
					left = append(left, n+" on "+r.id+": "+phase)
					phases[r.id+" "+strings.Fields(phase + " ?")[0]]++
					break
				}
			}
		}
		if len(left) == 0 {
			return true, ""
		}
		if time.Since(lastLog) > 20*time.Second {
			lastLog = time.Now()
			t.Logf("%s after the load: %d stores not ready yet (%v), e.g. %s", time.Since(t1).Round(time.Second), len(left), phases, left[0])
		}
		return false, fmt.Sprintf("%d not ready, e.g. %s", len(left), left[0])
	})
	readyTook := time.Since(t1)

	// The new leader publishes: a store pushed after the failover, which only a
	// publisher can bring to ready, gets there, and the leader's log says it publishes.
	t2 := time.Now()
	if err := pushOutside("rep-after"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Minute, func() (bool, string) {
		ph := replicaPhase(alive[0], "rep-after")
		return ph == "ready", ph
	})
	afterTook := time.Since(t2)
	if h := leaseHolder(t); h != newLeader.id {
		t.Errorf("the Lease moved on to %q during the test", h)
	}
	if b, err := os.ReadFile(newLeader.log); err != nil || !bytes.Contains(b, []byte("shard publisher: started on this replica")) {
		t.Errorf("%s's log does not show its publisher starting (%v)", newLeader.id, err)
	}
	var eas unstructured.UnstructuredList
	eas.SetGroupVersionKind(schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "ExternalArtifactList"})
	if err := env.Client.List(ctx, &eas, client.InNamespace(repFluxNS)); err != nil {
		t.Fatal(err)
	}
	t.Logf("a store pushed after the failover was ready %s later; %d shard ExternalArtifacts", afterTook.Round(time.Millisecond), len(eas.Items))

	mu.Lock()
	defer mu.Unlock()
	for _, f := range fiveXX {
		t.Errorf("5xx: %s", f)
	}
	answered := 0
	for _, n := range codes {
		answered += n
	}
	t.Logf("figures: %d stores created through 3 replicas (+%d outside pushes) in %s by %d writers; requests answered %d %v; failed at the connection %d (the killed replica); 5xx %d; failover %s; all %d stores ready on every surviving replica %s after the load",
		len(acked), pushes, loadTook.Round(time.Millisecond), writers, answered, codes, connFails, len(fiveXX), failover.Round(time.Millisecond), len(want), readyTook.Round(time.Millisecond))
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// replicaPhase is the store's phase as replica r reports it, or why not.
func replicaPhase(r *replicaProc, name string) string {
	res, err := http.Get(r.url + "/api/v1/stores/" + name)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Sprintf("GET %d", res.StatusCode)
	}
	var v storeView
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return err.Error()
	}
	if v.Status.Phase != "ready" {
		return v.Status.Phase + " " + v.Status.Message
	}
	return "ready"
}

// artifactService stands in for the Service kustomize-controller downloads shard
// artifacts through (there is no kube-proxy here): it passes a request to the live
// replicas' artifact listeners in turn, as a Service would skip an endpoint that is
// gone; any replica serves any current artifact (rebuilt from Git on a miss).
func artifactService(t *testing.T, reps []*replicaProc) string {
	t.Helper()
	c := &http.Client{Timeout: time.Minute}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rp := range reps {
			if rp == nil || rp.dead.Load() {
				continue
			}
			res, err := c.Get(rp.artifacts + r.URL.Path)
			if err != nil {
				continue
			}
			if res.StatusCode != http.StatusOK {
				res.Body.Close()
				continue
			}
			w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
			_, _ = io.Copy(w, res.Body)
			res.Body.Close()
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
