package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// IngressClassName is the node's default IngressClass, served by the test
// process itself (ingressRouter).
const IngressClassName = "storefleet-testenv"

// ingressController is the IngressClass's controller name.
const ingressController = "storefleet.io/testenv-ingress"

// ingressRouter is the node's ingress controller: a reverse proxy in the test
// process that routes each request by its Host and path to the Service an
// Ingress names, dialled at the Service's cluster IP from inside the node's
// namespace (kube-proxy picks the Pod). It replaced Traefik, whose build cost
// 9.5 cold minutes of CI for what this does in a page (docs/node.md, "Cold
// cost"); what it leaves out (TLS, annotations, Ingress status) no test and no
// chart here relies on.
type ingressRouter struct {
	n       *Node
	proxy   *httputil.ReverseProxy
	servers []*http.Server
	wg      sync.WaitGroup
}

// backendKey carries the chosen backend from the handler to the proxy's Rewrite.
type backendKey struct{}

// startIngress makes the router the cluster's default IngressClass and serves it
// at IngressAddr inside the namespace and at IngressURL on the host's loopback
// (make dev, curl).
func (n *Node) startIngress(ctx context.Context) error {
	class := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: %s
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec:
  controller: %s
`, IngressClassName, ingressController)
	if err := n.env.Apply(ctx, []byte(class)); err != nil {
		return fmt.Errorf("node: ingress class: %w", err)
	}
	r := &ingressRouter{n: n}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(backendKey{}).(*url.URL))
			// The shop builds its links from the Host it was asked for.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		// The reason goes to the client (a shop restarting refuses connections
		// for a while), not to the test process's stderr.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "storefleet-testenv ingress: "+err.Error(), http.StatusBadGateway)
		},
		Transport: &http.Transport{
			DialContext:         n.ns.DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	in, err := n.ns.Listen(n.IngressAddr())
	if err != nil {
		return fmt.Errorf("node: ingress in the namespace: %w", err)
	}
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		in.Close()
		return err
	}
	for _, l := range []net.Listener{in, host} {
		srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
		r.servers = append(r.servers, srv)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = srv.Serve(l)
		}()
	}
	n.ingress = r
	n.IngressURL = "http://" + host.Addr().String()
	return nil
}

// IngressAddr is where the node's ingress serves every Ingress inside the
// node's namespace (e.g. with Node.HTTPClient and the store's host as the
// request's Host).
func (n *Node) IngressAddr() string { return n.IP + ":80" }

func (r *ingressRouter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	target, err := r.backend(req.Context(), req.Host, req.URL.Path)
	if err != nil {
		http.Error(w, "storefleet-testenv ingress: "+err.Error(), http.StatusNotFound)
		return
	}
	r.proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), backendKey{}, target)))
}

// backend finds the Ingress rule for host (port ignored) with the longest path
// prefix of path, read from the API server on each request (a test environment
// serves few requests, and nothing can be stale), and returns its Service's
// cluster address.
func (r *ingressRouter) backend(ctx context.Context, host, path string) (*url.URL, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	var list networkingv1.IngressList
	if err := r.n.env.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	var (
		best    *networkingv1.IngressServiceBackend
		bestNS  string
		bestLen = -1
	)
	for _, ing := range list.Items {
		if c := ing.Spec.IngressClassName; c != nil && *c != IngressClassName {
			continue
		}
		for _, rule := range ing.Spec.Rules {
			if rule.Host != host || rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				prefix := p.Path
				if prefix == "" {
					prefix = "/"
				}
				exact := p.PathType != nil && *p.PathType == networkingv1.PathTypeExact
				match := path == prefix || (!exact && (prefix == "/" || strings.HasPrefix(path, strings.TrimSuffix(prefix, "/")+"/")))
				if match && p.Backend.Service != nil && len(prefix) > bestLen {
					best, bestNS, bestLen = p.Backend.Service, ing.Namespace, len(prefix)
				}
			}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no Ingress rule for host %q and path %q", host, path)
	}
	var svc corev1.Service
	if err := r.n.env.Client.Get(ctx, client.ObjectKey{Namespace: bestNS, Name: best.Name}, &svc); err != nil {
		return nil, err
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, fmt.Errorf("service %s/%s has no cluster IP", bestNS, best.Name)
	}
	port := best.Port.Number
	if best.Port.Name != "" {
		for _, sp := range svc.Spec.Ports {
			if sp.Name == best.Port.Name {
				port = sp.Port
			}
		}
	}
	if port == 0 {
		return nil, fmt.Errorf("service %s/%s has no port %q", bestNS, best.Name, best.Port.Name)
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port)))}, nil
}

// Close stops both listeners and the connections they serve.
func (r *ingressRouter) Close() error {
	var errs []error
	for _, s := range r.servers {
		errs = append(errs, s.Close())
	}
	r.wg.Wait()
	for i, err := range errs {
		if errors.Is(err, http.ErrServerClosed) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}
