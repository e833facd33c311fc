package app

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storefleet/storefleet/internal/render"
)

// A cluster whose serve runs with settings other than the local defaults (helm-wait
// on, an ingress namespace of its own, as production does) and has just changed two
// of them (the ingress namespace, and two Flux controller shards), re-rendered with
// --serve-env from that serve's own environment: every store's files become exactly
// what serve renders with those settings, NetworkPolicies included, which the flag
// form refuses (TestRerenderRefusesAClusterOfOtherOptions); a second run commits
// nothing.
func TestRerenderServeEnv(t *testing.T) {
	was := render.LocalOptions()
	was.DisableWait = false
	was.IngressNamespace = "gateway-old"
	was.FluxShards = 1
	f, stores := newRerenderFleet(t, was)

	t.Setenv("STOREFLEET_HELM_WAIT", "on")
	t.Setenv("STOREFLEET_STORE_INGRESS_NAMESPACE", "gateway")
	t.Setenv("STOREFLEET_FLUX_SHARDS", "2")
	out, stderr, err := rerenderRun("--repo", f.remote, "--serve-env", "--actor", "ops@example.com")
	if err != nil {
		t.Fatalf("rerender --serve-env: %v\n%s", err, stderr)
	}
	t.Log(out)
	f.git("pull", "--quiet", "--ff-only", "origin", "main")
	now := was
	now.IngressNamespace, now.FluxShards = "gateway", 2
	was.Shards, now.Shards = rerenderShards, rerenderShards
	changed := 0
	for _, s := range stores {
		before, err := render.Renderer{Options: was}.Render(s.s, s.st)
		if err != nil {
			t.Fatal(err)
		}
		after, err := render.Renderer{Options: now}.Render(s.s, s.st)
		if err != nil {
			t.Fatal(err)
		}
		differs := false
		for i, file := range after {
			differs = differs || !bytes.Equal(before[i].Content, file.Content)
			b, err := os.ReadFile(filepath.Join(f.work, filepath.FromSlash(file.Path)))
			if err != nil || !bytes.Equal(b, file.Content) {
				t.Errorf("%s is not what serve renders with its environment (%v):\n%s", file.Path, err, b)
			}
		}
		if differs {
			changed++
		}
	}
	if want := fmt.Sprintf("re-rendered %d of %d stores", changed, len(stores)); changed == 0 || !strings.Contains(out, want) {
		t.Errorf("want %q in the output:\n%s", want, out)
	}

	head := f.git("rev-parse", "HEAD")
	out, stderr, err = rerenderRun("--repo", f.remote, "--serve-env", "--actor", "ops@example.com")
	if err != nil || !strings.Contains(out, "nothing to commit") {
		t.Fatalf("second run: %v\n%s%s", err, out, stderr)
	}
	f.git("pull", "--quiet", "--ff-only", "origin", "main")
	if now := f.git("rev-parse", "HEAD"); now != head {
		t.Errorf("the second run committed %s", now)
	}
}

// --serve-env takes the options from serve's environment alone: a flag that would
// also set them, or a variable serve would refuse, is a usage mistake (exit code 2)
// naming it, before anything is cloned.
func TestRerenderServeEnvRefuses(t *testing.T) {
	base := []string{"--repo", "unused", "--actor", "ops", "--serve-env"}
	for _, flag := range []string{"--flux-shards", "--chart-source", "--chart-oci-url", "--chart-repository"} {
		v := map[string]string{"--flux-shards": "2", "--chart-source": "oci", "--chart-oci-url": "oci://x/c", "--chart-repository": "mine"}[flag]
		out, stderr, err := rerenderRun(append(base, flag, v)...)
		if ExitCode(err) != 2 || !strings.Contains(stderr, flag) || out != "" {
			t.Errorf("%s with --serve-env: exit %d, stdout %q, stderr %q; want a usage error naming it", flag, ExitCode(err), out, stderr)
		}
	}
	for name, value := range map[string]string{
		"STOREFLEET_HELM_WAIT":    "sometimes",
		"STOREFLEET_FLUX_SHARDS":  "two",
		"STOREFLEET_CHART_SOURCE": "git",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			out, stderr, err := rerenderRun(base...)
			flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "STOREFLEET_")), "_", "-")
			if ExitCode(err) != 2 || !(strings.Contains(stderr, name) || strings.Contains(stderr, "--"+flag)) || out != "" {
				t.Errorf("%s=%s: exit %d, stdout %q, stderr %q; want a usage error naming it", name, value, ExitCode(err), out, stderr)
			}
		})
	}
}
