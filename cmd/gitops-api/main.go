// Command gitops-api is Storefleet's API server and tooling. main is only a stub: everything lives in
// package app so it can be tested without a process.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/storefleet/storefleet/cmd/gitops-api/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, app.ErrReported) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(app.ExitCode(err))
	}
}
