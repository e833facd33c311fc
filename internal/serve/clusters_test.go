package serve

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// kubeconfigFile writes a kubeconfig that loads (nothing is dialled at check).
func kubeconfigFile(t *testing.T, server string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "` + server + `"}
users:
- name: u
  user: {token: "t"}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --cluster-kubeconfig adds clusters beside the default one; its variable is the
// same list, replaced as a whole by the flag; every mistake is a usage error naming
// the flag or variable that has it.
func TestClusterKubeconfigs(t *testing.T) {
	a, b := kubeconfigFile(t, "https://127.0.0.1:1"), kubeconfigFile(t, "https://127.0.0.1:2")
	c, err := parse([]string{"--kubeconfig", a, "--cluster", "eu", "--cluster-kubeconfig", "us=" + b}, vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(c.kube.clusters); !slices.Equal(got, []string{"eu", "us"}) || c.kube.clusters[1].kubeconfig != b {
		t.Fatalf("served %v (%+v)", got, c.kube.clusters)
	}
	// Only named clusters, the default among them; the variable's form.
	c, err = parse([]string{"--cluster", "us"}, vars(map[string]string{clusterKubeconfigEnv: "eu=" + a + ", us=" + b}))
	if err != nil || !slices.Equal(names(c.kube.clusters), []string{"eu", "us"}) {
		t.Fatalf("from the variable: %v %v", names(c.kube.clusters), err)
	}
	// The flag replaces the variable's list.
	c, err = parse([]string{"--cluster", "us", "--cluster-kubeconfig", "us=" + b}, vars(map[string]string{clusterKubeconfigEnv: "eu=/nonexistent"}))
	if err != nil || !slices.Equal(names(c.kube.clusters), []string{"us"}) {
		t.Fatalf("flag over variable: %v %v", names(c.kube.clusters), err)
	}
	// None configured: no cluster, as before.
	if c, err := parse(nil, vars(nil)); err != nil || len(c.kube.clusters) != 0 {
		t.Fatalf("no cluster: %v %v", c.kube.clusters, err)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--kubeconfig", a, "--cluster-kubeconfig", "us"}, nil, `--cluster-kubeconfig "us" must be NAME=PATH`},
		{[]string{"--kubeconfig", a, "--cluster-kubeconfig", "=" + b}, nil, "must be NAME=PATH"},
		{[]string{"--kubeconfig", a, "--cluster-kubeconfig", "Not_A_Name=" + b}, nil, "not a cluster name"},
		{[]string{"--kubeconfig", a, "--cluster", "eu", "--cluster-kubeconfig", "eu=" + b}, nil, "cluster eu is already served, by --cluster eu"},
		{[]string{"--cluster", "us", "--cluster-kubeconfig", "us=" + a, "--cluster-kubeconfig", "us=" + b}, nil, "cluster us is already served, by --cluster-kubeconfig us="},
		{[]string{"--kubeconfig", a, "--cluster-kubeconfig", "us=" + a}, nil, "already reaches cluster local"},
		{[]string{"--kubeconfig", a, "--cluster-kubeconfig", "us=/nonexistent/kubeconfig"}, nil, `--cluster-kubeconfig "us=/nonexistent/kubeconfig"`},
		{[]string{"--cluster", "eu", "--cluster-kubeconfig", "us=" + b}, nil, `--cluster "eu", the cluster of new stores, is not served`},
		{nil, map[string]string{clusterKubeconfigEnv: "us"}, clusterKubeconfigEnv + ` "us" must be NAME=PATH`},
	} {
		_, err := parse(tc.args, vars(tc.env))
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want a usage error with %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// --cluster-artifact-url gives a served cluster the artifact URL its own Flux
// reaches; the others keep the default. Its variable is the same list, replaced
// as a whole by the flag; every mistake is a usage error naming the flag or
// variable and the item.
func TestClusterArtifactURLs(t *testing.T) {
	a, b := kubeconfigFile(t, "https://127.0.0.1:1"), kubeconfigFile(t, "https://127.0.0.1:2")
	base := []string{"--kubeconfig", a, "--cluster", "eu", "--cluster-kubeconfig", "us=" + b}
	urls := func(c config) map[string]string {
		out := map[string]string{}
		for _, s := range c.kube.clusters {
			out[s.name] = s.artifactURL
		}
		return out
	}
	c, err := parse(append(base, "--cluster-artifact-url", "us=https://artifacts.eu.example.com:9443"), vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := urls(c); got["us"] != "https://artifacts.eu.example.com:9443" || got["eu"] != "" {
		t.Fatalf("artifact URLs %v, want us's own and eu's default", got)
	}
	c, err = parse(base, vars(map[string]string{clusterArtifactURLEnv: "eu=http://a.example:1, us=http://b.example:2"}))
	if got := urls(c); err != nil || got["eu"] != "http://a.example:1" || got["us"] != "http://b.example:2" {
		t.Fatalf("from the variable: %v %v", got, err)
	}
	c, err = parse(append(base, "--cluster-artifact-url", "eu=http://c.example:3"), vars(map[string]string{clusterArtifactURLEnv: "us=http://b.example:2"}))
	if got := urls(c); err != nil || got["eu"] != "http://c.example:3" || got["us"] != "" {
		t.Fatalf("flag over variable: %v %v", got, err)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--cluster-artifact-url", "us"}, nil, `--cluster-artifact-url "us" must be NAME=URL`},
		{[]string{"--cluster-artifact-url", "=http://a.example"}, nil, "must be NAME=URL"},
		{[]string{"--cluster-artifact-url", "asia=http://a.example"}, nil, `--cluster-artifact-url "asia=http://a.example": cluster asia is not served; served: eu, us`},
		{[]string{"--cluster-artifact-url", "us=a.example:9091"}, nil, `--cluster-artifact-url "us=a.example:9091": must be an http:// or https:// URL`},
		{[]string{"--cluster-artifact-url", "us=https://u:p@a.example"}, nil, "must carry no user, query or fragment"},
		{[]string{"--cluster-artifact-url", "us=http://a.example", "--cluster-artifact-url", "us=http://b.example"}, nil,
			`--cluster-artifact-url "us=http://b.example": cluster us already has its artifact URL, from --cluster-artifact-url us=http://a.example`},
		{nil, map[string]string{clusterArtifactURLEnv: "asia=http://a.example"}, clusterArtifactURLEnv + ` "asia=http://a.example": cluster asia is not served`},
	} {
		_, err := parse(append(slices.Clone(base), tc.args...), vars(tc.env))
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want a usage error with %q", tc.args, tc.env, err, tc.want)
		}
	}
	// No cluster served: the flag has nothing to name.
	if _, err := parse([]string{"--cluster-artifact-url", "local=http://a.example"}, vars(nil)); err == nil || !strings.Contains(err.Error(), "cluster local is not served; served: none") {
		t.Errorf("no cluster: %v", err)
	}
}
