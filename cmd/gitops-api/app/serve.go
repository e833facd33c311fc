package app

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/storefleet/storefleet/internal/serve"
)

func init() {
	commands["serve"] = command{summary: "serve the REST API (default: 127.0.0.1:8080 on a local fleet repository)", run: runServe}
}

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	c := serve.NewCommand("gitops-api serve", os.Getenv)
	h := helpText{usage: "gitops-api serve [flags]", about: c.Help, more: c.Env}
	if helped, err := parseFlags(c.Flags, h, args, stdout); helped || err != nil {
		return err
	}
	err := c.Run(ctx, stdout, stderr)
	// serve checks its whole configuration before it starts anything: a mistake there
	// is the command line's, like an unknown flag.
	var ue *serve.UsageError
	if errors.As(err, &ue) {
		return usageError{msg: ue.Error(), cmd: c.Flags.Name()}
	}
	return err
}
