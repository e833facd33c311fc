package app

import (
	"context"
	"io"
	"os"

	"github.com/storefleet/storefleet/internal/serve"
)

func init() {
	commands["serve"] = command{summary: "serve the REST API (default: 127.0.0.1:8080 on a local fleet repository)", run: runServe}
}

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	return serve.Run(ctx, args, os.Getenv, stdout, stderr)
}
