// Command pause is the Pod sandbox process of the test node: it does nothing but
// keep the Pod's namespaces alive, reap orphans re-parented to it (it is PID 1
// when the Pod shares its PID namespace) and exit cleanly on SIGTERM or SIGINT, so
// a Pod stops at once instead of waiting out its grace period.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
