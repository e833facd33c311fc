// Command storefleet-testenv runs Storefleet's test environment (internal/testenv)
// in the background for local work (`up`, `status`, `down`), and runs a command
// such as gitops-api against it for as long as that command runs (`dev`).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "storefleet-testenv:", err)
		os.Exit(1)
	}
}
