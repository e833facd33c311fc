package testenv

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IngressClassName is the node's default IngressClass, served by Traefik.
const IngressClassName = "traefik"

// ingressPingPort is Traefik's health entry point on the namespace's loopback.
const ingressPingPort = 8082

// startIngress runs Traefik in the node's namespace as the cluster's default
// ingress controller, serving every Ingress on the node's address, port 80. It
// reads Ingresses, Services and EndpointSlices with a service account token
// (Traefik's Kubernetes provider takes a bearer token, not a client certificate),
// through the API forwarder inside the namespace.
func (n *Node) startIngress(ctx context.Context, caFile string) error {
	e := n.env
	objs := fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: traefik, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: storefleet-node-traefik}
rules:
- apiGroups: [""]
  resources: [services, secrets, nodes, endpoints]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, ingressclasses]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses/status]
  verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: storefleet-node-traefik}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: storefleet-node-traefik}
subjects:
- {kind: ServiceAccount, name: traefik, namespace: %[1]s}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: %[2]s
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec:
  controller: traefik.io/ingress-controller
`, nodeSystemNamespace, IngressClassName)
	if err := e.Apply(ctx, []byte(objs)); err != nil {
		return fmt.Errorf("node: ingress objects: %w", err)
	}
	// A token for as long as an environment can live (make dev sessions included).
	expiry := int64((365 * 24 * time.Hour).Seconds())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "traefik", Namespace: nodeSystemNamespace}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}
	if err := e.Client.SubResource("token").Create(ctx, sa, tr); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("node: token for traefik: %w", err)
	}
	p, err := n.start("traefik", n.Tools.Traefik, []string{
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
		"--log.level=INFO",
		"--entryPoints.web.address=" + n.IP + ":80",
		"--entryPoints.ping.address=127.0.0.1:" + strconv.Itoa(ingressPingPort),
		"--ping=true", "--ping.entryPoint=ping",
		"--providers.kubernetesingress=true",
		"--providers.kubernetesingress.endpoint=" + e.Config.Host,
		// A flag, as Traefik takes it (no file option); root alone runs nodes here.
		"--providers.kubernetesingress.token=" + tr.Status.Token,
		"--providers.kubernetesingress.certAuthFilePath=" + caFile,
	}, true)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitHTTP(rctx, p, n.HTTPClient(), fmt.Sprintf("http://127.0.0.1:%d/ping", ingressPingPort)); err != nil {
		return err
	}
	// People (make dev, curl) reach the shops from the host: a forwarder on the
	// host's loopback to the ingress inside the namespace, the one way in.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	n.ingressFwd = newForwarder(l, func(ctx context.Context) (net.Conn, error) {
		return n.ns.DialContext(ctx, "tcp", n.IngressAddr())
	})
	n.IngressURL = "http://" + l.Addr().String()
	return nil
}

// IngressAddr is where the node's ingress controller serves every Ingress
// (reachable inside the node's namespace, e.g. with Node.HTTPClient and the
// store's host as the request's Host).
func (n *Node) IngressAddr() string { return n.IP + ":80" }
