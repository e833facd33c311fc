package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMain lets the tests run this test binary as gitops-api itself: with
// GITOPS_API_TEST_MAIN=1 it runs main and exits with main's code.
func TestMain(m *testing.M) {
	if os.Getenv("GITOPS_API_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// gitopsAPI runs gitops-api with args in dir and returns its exit code and output.
func gitopsAPI(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GITOPS_API_TEST_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// What a user sees: an unknown flag is one line of error and one of hint, printed
// once, and exit code 2, whichever the subcommand.
func TestUnknownFlagExitsTwoAndSaysSoOnce(t *testing.T) {
	for _, sub := range []string{"serve", "render", "version"} {
		code, stdout, stderr := gitopsAPI(t, t.TempDir(), sub, "--bogus")
		want := "error: unknown flag: --bogus\nRun 'gitops-api " + sub + " --help' for usage.\n"
		if code != 2 || stdout != "" || stderr != want {
			t.Errorf("gitops-api %s --bogus: exit %d, stdout %q, stderr %q; want exit 2, stderr %q", sub, code, stdout, stderr, want)
		}
	}
}

// A bad serve option stops the process with exit code 2 before it creates the data
// dir (the embedded fleet repository and the clone live there).
func TestServeBadOptionExitsTwoBeforeTheDataDir(t *testing.T) {
	dir := t.TempDir()
	seed, err := filepath.Abs(filepath.Join("..", "..", "fleet"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := gitopsAPI(t, dir, "serve", "--listen", "127.0.0.1:0", "--seed-dir", seed, "--medusa-image", "medusa")
	if code != 2 || stderr != "error: --medusa-image \"medusa\": must be repository:tag\nRun 'gitops-api serve --help' for usage.\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve created its data dir: %v", err)
	}
}
