package app

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// fakeBuild makes version read bi, as a binary built from a Git checkout would carry.
func fakeBuild(t *testing.T, bi *debug.BuildInfo) {
	t.Helper()
	old := readBuildInfo
	readBuildInfo = func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	t.Cleanup(func() { readBuildInfo = old })
}

var stamped = &debug.BuildInfo{
	GoVersion: "go1.26.8",
	Main:      debug.Module{Path: "github.com/storefleet/storefleet", Version: "v0.4.0"},
	Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "126d4ad0f7996c7d33feb0727a424312121f0235"},
		{Key: "vcs.time", Value: "2026-11-27T06:15:00Z"},
		{Key: "vcs.modified", Value: "true"},
	},
}

func TestVersionText(t *testing.T) {
	fakeBuild(t, stamped)
	out, stderr, err := run("version")
	if err != nil {
		t.Fatalf("%v %s", err, stderr)
	}
	for _, want := range []string{
		"Version:     v0.4.0\n",
		"Commit:      126d4ad0f7996c7d33feb0727a424312121f0235 (dirty)\n",
		"Commit time: 2026-11-27T06:15:00Z\n",
		"Go version:  go1.26.8\n",
		"Platform:    " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionJSONAndYAML(t *testing.T) {
	fakeBuild(t, stamped)
	want := versionInfo{Version: "v0.4.0", Commit: "126d4ad0f7996c7d33feb0727a424312121f0235",
		CommitTime: "2026-11-27T06:15:00Z", TreeState: "dirty", GoVersion: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH}
	for _, args := range [][]string{{"--output", "json"}, {"-o", "json"}, {"--output=yaml"}, {"-o", "yaml"}} {
		out, stderr, err := run(append([]string{"version"}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr)
		}
		var got versionInfo
		if err := yaml.UnmarshalStrict([]byte(out), &got); err != nil { // YAML is a superset of JSON
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if got != want {
			t.Errorf("%v: %+v, want %+v", args, got, want)
		}
	}
	out, _, _ := run("version", "-o", "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["commitTime"] == nil || m["treeState"] != "dirty" {
		t.Errorf("json field names: %v %v", err, m)
	}
	if _, stderr, err := run("version", "-o", "xml"); ExitCode(err) != 2 || !strings.Contains(stderr, `--output must be json or yaml, not "xml"`) {
		t.Errorf("-o xml: %v %q", err, stderr)
	}
}

// Without VCS stamping (go build -buildvcs=false, a linked Git worktree, a test
// binary) version says what it knows and does not invent a commit.
func TestVersionWithoutVCS(t *testing.T) {
	fakeBuild(t, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/storefleet/storefleet", Version: "(devel)"}})
	out, _, err := run("version")
	if err != nil || !strings.Contains(out, "Version:     (devel)\n") || !strings.Contains(out, "Commit:      unknown\n") {
		t.Errorf("%v\n%s", err, out)
	}
	out, _, _ = run("version", "-o", "json")
	if strings.Contains(out, "commit") || strings.Contains(out, "treeState") {
		t.Errorf("json claims a commit:\n%s", out)
	}
	fakeBuild(t, nil)
	out, _, err = run("version")
	if err != nil || !strings.Contains(out, "Version:     unknown\n") || !strings.Contains(out, "Go version:  "+runtime.Version()+"\n") {
		t.Errorf("no build info: %v\n%s", err, out)
	}
}

// The real build information of this (test) binary: the Go version it was built with.
func TestVersionReadsTheBuild(t *testing.T) {
	out, _, err := run("version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got versionInfo
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.GoVersion != runtime.Version() || got.Version == "" {
		t.Errorf("%v %+v", err, got)
	}
}
