package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrReported means the error has already been written to stderr in full; main only sets the exit code.
var ErrReported = errors.New("reported")

// usageError is a command-line mistake (exit code 2). cmd is the command whose --help
// the hint after the message names ("gitops-api render"); empty for gitops-api itself.
type usageError struct{ msg, cmd string }

func (e usageError) Error() string { return e.msg }

// ExitCode is the process exit code for an error returned by Run: 0 for nil, 2 for usage errors, 1 otherwise.
func ExitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands is every subcommand. The API server registers "serve" here.
var commands = map[string]command{
	"render":   {summary: "print every file a store gets in the fleet repository", run: runRender},
	"reshard":  {summary: "move every store to its shard under a new shard count, in one commit", run: runReshard},
	"rerender": {summary: "render every store again for a new --flux-shards or chart source, in one commit", run: runRerender},
	"version":  {summary: "print the version, commit and Go version gitops-api was built with", run: runVersion},
}

// Run runs gitops-api with args (without the program name).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return report(dispatch(ctx, args, stdin, stdout, stderr), stderr)
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("%w: %w", ErrReported, usageError{msg: "no command given"})
	}
	switch args[0] {
	case "-h", "--help":
		usage(stdout)
		return nil
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return nil
		}
		// `gitops-api help render` is `gitops-api render --help`.
		return dispatch(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
	}
	c, ok := commands[args[0]]
	if !ok {
		return usageError{msg: fmt.Sprintf("unknown command %q", args[0])}
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr)
}

// report writes a usage error to stderr, once, as one message and a hint where to
// read more, so that main, seeing ErrReported, does not write it again. Other errors
// are left to main.
func report(err error, stderr io.Writer) error {
	var u usageError
	if err == nil || errors.Is(err, ErrReported) || !errors.As(err, &u) {
		return err
	}
	cmd := u.cmd
	if cmd == "" {
		cmd = "gitops-api"
	}
	fmt.Fprintf(stderr, "error: %s\nRun '%s --help' for usage.\n", u.msg, cmd)
	return fmt.Errorf("%w: %w", ErrReported, err)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: gitops-api <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'gitops-api <command> --help' for a command's flags.")
}
