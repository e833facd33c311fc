package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/storefleet/storefleet/internal/testenv"
)

// hostState is what of the host the node must not change: its interfaces, its
// iptables rules, its forwarding switch, the named network namespaces.
type hostState struct {
	links, iptables, ipForward, netns, tunables, paths string
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

func readHost(t *testing.T) hostState {
	t.Helper()
	out := func(name string, args ...string) string {
		b, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		return string(b)
	}
	var links []string
	for _, l := range strings.Split(out("ip", "-o", "link", "show"), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			links = append(links, f[1])
		}
	}
	var rules []string
	for _, l := range strings.Split(out("iptables-save"), "\n") {
		if !strings.HasPrefix(l, "#") {
			rules = append(rules, counters.ReplaceAllString(l, ""))
		}
	}
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	ents, _ := os.ReadDir("/run/netns")
	var ns []string
	for _, e := range ents {
		ns = append(ns, e.Name())
	}
	// The host-wide sysctls the kubelet sets when it starts; the node puts them back.
	var tun []string
	for _, k := range []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
		"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"} {
		v, _ := os.ReadFile("/proc/sys/" + k)
		tun = append(tun, k+"="+strings.TrimSpace(string(v)))
	}
	// Paths the kubelet, the CNI library and containerd's shims create outside
	// the node's folder, and the /run/netns mount `ip netns add` makes.
	var paths []string
	for _, p := range []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni",
		"/run/containerd", "/opt/containerd", "/run/netns", "/run/storefleet"} {
		if _, err := os.Lstat(p); err == nil {
			paths = append(paths, p)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 4 && (f[4] == "/run/netns" || strings.HasPrefix(f[4], "/run/netns/")) {
			paths = append(paths, "mount "+f[4])
		}
	}
	return hostState{strings.Join(links, " "), strings.Join(rules, "\n"), string(fwd), strings.Join(ns, " "),
		strings.Join(tun, " "), strings.Join(paths, " ")}
}

// podReport describes every Pod and the recent events, for a failed wait.
func podReport(c client.Client) string {
	ctx := context.Background()
	var b strings.Builder
	var pods corev1.PodList
	if err := c.List(ctx, &pods); err != nil {
		return err.Error()
	}
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s/%s node=%q phase=%s", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			fmt.Fprintf(&b, " [%s ready=%v restarts=%d", cs.Name, cs.Ready, cs.RestartCount)
			if w := cs.State.Waiting; w != nil {
				fmt.Fprintf(&b, " waiting %s: %s", w.Reason, w.Message)
			}
			if t := cs.State.Terminated; t != nil {
				fmt.Fprintf(&b, " terminated %s (%d): %s", t.Reason, t.ExitCode, t.Message)
			}
			b.WriteString("]")
		}
		for _, cond := range p.Status.Conditions {
			if cond.Status != corev1.ConditionTrue && cond.Message != "" {
				fmt.Fprintf(&b, " %s: %s", cond.Type, cond.Message)
			}
		}
		b.WriteString("\n")
	}
	var events corev1.EventList
	if err := c.List(ctx, &events); err == nil {
		for _, e := range events.Items {
			if e.Type != corev1.EventTypeNormal {
				fmt.Fprintf(&b, "event %s %s/%s %s: %s\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
	}
	return b.String()
}

var reportClient client.Client

// waitScale is the minutes a Deployment gets to become available: generous, as
// the machine is shared and the wait is a deadline, not a measurement.
var waitScale = 3

// startNode starts an environment whose node imports images, and returns it with
// each image's reference by name (the shops' charts are pointed at them).
func startNode(t testing.TB, images ...string) (*testenv.Env, map[string]string) {
	t.Helper()
	testenv.RequireNode(t)
	e := testenv.StartT(t, testenv.Options{Node: true, NodeImages: images})
	reportClient = e.Client
	refs := map[string]string{}
	for _, img := range e.Node.Images {
		refs[img.Name] = img.Ref
		t.Logf("image %s: %s (built in %ds on this machine)", img.Name, img.Ref, img.BuildSeconds)
	}
	return e, refs
}

func wait(t testing.TB, what string, d time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		ok, msg := check()
		if ok {
			return
		}
		last = msg
		if time.Now().After(deadline) {
			t.Fatalf("%s: gave up after %s: %s\n%s", what, d, last, podReport(reportClient))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNodeRunsPods brings a node up, runs a Deployment behind a Service, a Pod
// with a volume from the provisioner, reads logs through the API server, then
// stops the environment and checks the host is as it was.
func TestNodeRunsPods(t *testing.T) {
	testenv.RequireNode(t)
	before := readHost(t)
	othersAtStart := testenv.NodesRunning()
	e := testenv.StartT(t, testenv.Options{Node: true, NodeImages: []string{"probe"}})
	n := e.Node
	for _, p := range e.Phases {
		t.Logf("phase %-60s %s", p.Name, p.After.Round(10*time.Millisecond))
	}
	ctx := context.Background()
	c := e.Client
	reportClient = c
	probeRef := n.Images[len(n.Images)-1].Ref

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "probe"}
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "probe"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "probe", Image: probeRef, ImagePullPolicy: corev1.PullNever,
					Args:  []string{"serve", ":8080"},
					Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					// The kubelet probes the Pod's address from the node's namespace.
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}}},
				}}},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "probe"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
			Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	for _, o := range []client.Object{dep, svc} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	wait(t, "Deployment available", time.Duration(waitScale)*time.Minute, func() (bool, string) {
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKeyFromObject(dep), &d); err != nil {
			return false, err.Error()
		}
		return d.Status.ReadyReplicas == replicas, fmt.Sprintf("%d/%d ready", d.Status.ReadyReplicas, replicas)
	})
	t.Logf("2 Pods Running and ready %s after create", time.Since(t0).Round(10*time.Millisecond))

	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace("probe"), client.MatchingLabels(labels)); err != nil {
		t.Fatal(err)
	}
	var podNames []string
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName != testenv.NodeName {
			t.Fatalf("pod %s: phase %s on %q", p.Name, p.Status.Phase, p.Spec.NodeName)
		}
		podNames = append(podNames, p.Name)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	hc := n.HTTPClient()
	get := func(url string) (string, error) {
		resp, err := hc.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("%s: %s: %s", url, resp.Status, b)
		}
		return strings.TrimSpace(string(b)), nil
	}

	// The Service, through kube-proxy's rules, from inside the node's namespace;
	// both Pods answer in time (the rules pick one at random per connection).
	seen := map[string]bool{}
	wait(t, "Service answers from both Pods", 2*time.Minute, func() (bool, string) {
		body, err := get("http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/")
		if err != nil {
			return false, err.Error()
		}
		seen[strings.TrimPrefix(body, "probe ")] = true
		return len(seen) == 2, fmt.Sprintf("answered by %v", seen)
	})
	for _, p := range podNames {
		if !seen[p] {
			t.Fatalf("Service answered from %v, want the Pods %v", seen, podNames)
		}
	}

	// DNS: the node's CoreDNS from the namespace, and a Pod's own resolver (its
	// resolv.conf from the kubelet, short name through the search domains).
	addrs, err := n.Resolver().LookupHost(ctx, "probe.probe.svc.cluster.local")
	if err != nil || !slices.Equal(addrs, []string{svc.Spec.ClusterIP}) {
		t.Fatalf("CoreDNS: probe.probe.svc.cluster.local = %v, %v; want %s", addrs, err, svc.Spec.ClusterIP)
	}
	podIP := pods.Items[0].Status.PodIP
	body, err := get("http://" + net.JoinHostPort(podIP, "8080") + "/resolve?name=probe")
	if err != nil || body != svc.Spec.ClusterIP {
		t.Fatalf("in-Pod resolution of \"probe\": %q, %v; want %s", body, err, svc.Spec.ClusterIP)
	}

	// Logs through the API server, which reaches the kubelet only through the
	// environment's egress proxy.
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rc, err := cs.CoreV1().Pods("probe").GetLogs(podNames[0], &corev1.PodLogOptions{}).Stream(ctx)
	if err != nil {
		t.Fatalf("pod logs through the API server: %v", err)
	}
	_, _ = io.Copy(&buf, rc)
	rc.Close()
	if !strings.Contains(buf.String(), "probe listening on :8080") {
		t.Fatalf("pod logs through the API server: %q", buf.String())
	}

	// A claim on the default StorageClass binds once its Pod is scheduled, and
	// the Pod's write lands in the node's volumes folder.
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "probe"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	busybox := n.Images[1].Ref
	writer := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "writer", Namespace: "probe"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "w", Image: busybox, ImagePullPolicy: corev1.PullNever,
				Command:      []string{"/bin/sh", "-c", "echo kept > /data/marker"},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		},
	}
	for _, o := range []client.Object{pvc, writer} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, "writer Pod succeeded on a bound volume", 3*time.Minute, func() (bool, string) {
		var p corev1.Pod
		if err := c.Get(ctx, client.ObjectKeyFromObject(writer), &p); err != nil {
			return false, err.Error()
		}
		if p.Status.Phase == corev1.PodFailed {
			t.Fatalf("writer Pod failed: %+v", p.Status)
		}
		return p.Status.Phase == corev1.PodSucceeded, string(p.Status.Phase)
	})
	if err := c.Get(ctx, client.ObjectKeyFromObject(pvc), pvc); err != nil {
		t.Fatal(err)
	}
	markers, _ := filepath.Glob(filepath.Join(n.Dir, "volumes", "*", "marker"))
	if pvc.Status.Phase != corev1.ClaimBound || len(markers) != 1 {
		t.Fatalf("claim %s, markers %v", pvc.Status.Phase, markers)
	}

	// A plan change grows the claim: the API accepts it (the StorageClass allows
	// expansion), nothing resizes the folder, the data stays (docs/node.md,
	// "Volumes and plan changes").
	// A merge patch, as a plan change's apply is, not an update of the copy read
	// above: kube-controller-manager and the provisioner write the claim too, and an
	// update carrying the old resourceVersion failed on their write ("the object has
	// been modified").
	grown := client.MergeFrom(pvc.DeepCopy())
	pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	if err := c.Patch(ctx, pvc, grown); err != nil {
		t.Fatalf("growing the claim: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pvc), pvc); err != nil {
		t.Fatal(err)
	}
	capacity := pvc.Status.Capacity[corev1.ResourceStorage]
	if got, _ := os.ReadFile(markers[0]); string(got) != "kept\n" {
		t.Fatalf("after growing the claim the volume holds %q", got)
	}
	t.Logf("claim grown to 2Gi: accepted; status.capacity %s (nothing resizes a local-path volume)", capacity.String())

	// Tear-down: nothing of the node is left, the host is as it was.
	if err := e.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if left := n.Leftovers(); len(left) > 0 {
		t.Fatalf("left after Stop:\n%s", strings.Join(left, "\n"))
	}
	if left := e.Leftovers(); len(left) > 0 {
		t.Fatalf("processes left after Stop:\n%s", strings.Join(left, "\n"))
	}
	if others := max(othersAtStart, testenv.NodesRunning()); others > 0 {
		t.Logf("host comparison skipped: %d other node(s) run on this machine", others)
		return
	}
	after := readHost(t)
	if after != before {
		t.Fatalf("host changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// answer sends req and returns the status code and the body; a request that fails
// is code 0 with the error for a body, so a wait can say why it is still waiting.
func answer(hc *http.Client, req *http.Request) (int, string) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
