package e2e

import (
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/storefleet/storefleet/internal/store"
)

// kubeProxy passes TCP (TLS included, untouched) between gitops-api and the API
// server on loopback, and can hold every byte in both directions: the API server
// then answers nothing, to gitops-api, as a server too busy to answer would.
type kubeProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	open   chan struct{} // closed while bytes pass
	conns  []net.Conn
}

func newKubeProxy(t *testing.T, target string) *kubeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &kubeProxy{ln: ln, target: target, open: make(chan struct{})}
	close(p.open)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *kubeProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

func (p *kubeProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			open := p.open
			p.mu.Unlock()
			<-open
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold stops every byte until release.
func (p *kubeProxy) hold() {
	p.mu.Lock()
	p.open = make(chan struct{})
	p.mu.Unlock()
}

func (p *kubeProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

func (p *kubeProxy) close() {
	p.release()
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// kubeconfig is the environment's kubeconfig with the proxy as the server. The API
// server's certificate names 127.0.0.1, so TLS checks out through it.
func (p *kubeProxy) kubeconfig(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + p.ln.Addr().String()
	}
	name := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// apiServerAddr is host:port of the environment's API server.
func apiServerAddr(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		u := c.Server
		if len(u) > len("https://") {
			return u[len("https://"):]
		}
	}
	t.Fatal("no server in the environment's kubeconfig")
	return ""
}

// TestCreateAnswersBeforePublish: the 202 of a create is at the durable point (the
// commit pushed), not after its shard's publish. gitops-api reaches the API server
// through a proxy that then holds every byte: the publish of the new store's shard
// cannot finish, and yet the create is answered, the store shows committed and the
// publish queue holds its shard. Once the API server answers again the store
// reaches ready with no further request.
func TestCreateAnswersBeforePublish(t *testing.T) {
	startAPI(t)
	px := newKubeProxy(t, apiServerAddr(t))
	kubeconfig := px.kubeconfig(t)
	a := restartAPI(t, func(string) { apiKubeconfig = kubeconfig })
	t.Cleanup(func() {
		px.release()
		restartAPI(t, func(string) { apiKubeconfig = "" })
	})

	// Through the proxy, the new process leads and publishes: a first store gets
	// applied (its shard published, fetched and applied by Flux).
	all := a.events(t, "/api/v1/events", "")
	a.do(t, http.MethodPost, "/api/v1/stores", createBody("async-warm", ""), http.StatusAccepted)
	all.phasesOf(t, "async-warm", 3*time.Minute, store.PhaseApplied, store.PhaseInstalling, store.PhaseReady)

	const name = "async-shop"
	px.hold()
	t0 := time.Now()
	a.do(t, http.MethodPost, "/api/v1/stores", createBody(name, ""), http.StatusAccepted)
	t.Logf("create answered in %v with the API server held", time.Since(t0).Round(time.Millisecond))
	// Still held: nothing reached the cluster, so the answer did not wait for it.
	// (Should the watcher have noticed the silence already, the phase is unknown.)
	if v := a.get(t, name); v.Status.Phase != string(store.PhaseCommitted) && v.Status.Phase != string(store.PhaseUnknown) {
		t.Fatalf("while the API server is held: %+v, want committed", v.Status)
	}
	if depth := sum(scrape(t)["storefleet_shard_publish_queue_depth"], nil); depth < 1 {
		t.Fatalf("publish queue depth %v while the shard's publish is held, want at least 1", depth)
	}
	px.release()

	got, _, _ := all.phasesOf(t, name, 3*time.Minute, store.PhaseReady)
	wantOrdered(t, got, append([]store.Phase{store.PhaseRequested}, installWay...), store.PhaseCommitted)
}
