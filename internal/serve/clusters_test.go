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
