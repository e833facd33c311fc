package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// readBuildInfo is debug.ReadBuildInfo; tests replace it, since a test binary carries
// no VCS information.
var readBuildInfo = debug.ReadBuildInfo

// versionInfo is what `gitops-api version` prints. It comes from the build
// information the Go toolchain embeds, so a plain `go build` is enough: no linker
// flags to forget.
type versionInfo struct {
	// Version is the main module's: a tag, a pseudo-version, or (devel) for a build in
	// a checkout that go could not version.
	Version string `json:"version"`
	// Commit and CommitTime are the commit built (vcs.revision, vcs.time). They are
	// absent when go did not stamp them: -buildvcs=false, a build outside a Git
	// checkout, or in a linked Git worktree, whose .git go does not recognise.
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commitTime,omitempty"`
	// TreeState is "dirty" when the tree had uncommitted changes (vcs.modified),
	// "clean" otherwise; absent without a commit. kubectl names it the same.
	TreeState string `json:"treeState,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := readBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if v.Commit != "" {
		v.TreeState = "clean"
		if modified {
			v.TreeState = "dirty"
		}
	}
	return v
}

var versionHelp = helpText{
	usage: "gitops-api version [--output json|yaml]",
	about: "Prints the version, commit and Go version gitops-api was built with, from the build information\n" +
		"the Go toolchain embeds. Without --output, as text for people; json and yaml are for scripts.",
	short: map[string]string{"output": "o"},
}

func runVersion(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	var output string
	fs := newFlagSet("gitops-api version")
	fs.StringVar(&output, "output", "", "output format: json or yaml; empty = text")
	fs.StringVar(&output, "o", "", "short for --output")
	if helped, err := parseFlags(fs, versionHelp, args, stdout); helped || err != nil {
		return err
	}
	v := currentVersion()
	switch output {
	case "":
		tw := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
		orUnknown := func(s string) string {
			if s == "" {
				return "unknown"
			}
			return s
		}
		commit := orUnknown(v.Commit)
		if v.TreeState == "dirty" {
			commit += " (dirty)"
		}
		fmt.Fprintf(tw, "Version:\t%s\n", v.Version)
		fmt.Fprintf(tw, "Commit:\t%s\n", commit)
		fmt.Fprintf(tw, "Commit time:\t%s\n", orUnknown(v.CommitTime))
		fmt.Fprintf(tw, "Go version:\t%s\n", v.GoVersion)
		fmt.Fprintf(tw, "Platform:\t%s\n", v.Platform)
		return tw.Flush()
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	return usageError{msg: fmt.Sprintf("--output must be json or yaml, not %q", output), cmd: fs.Name()}
}
