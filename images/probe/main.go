// Command probe is the workload of the test node's own tests (internal/testenv):
//
//	probe serve ADDR        answers GET / with the Pod's name and the body of GET
//	                        /resolve?name=N with the addresses N resolves to, using
//	                        the Pod's /etc/resolv.conf (the cluster DNS)
//
// It is a Go program rather than a shell image so the test depends on nothing but
// the node: busybox's wget crashed in an image built the same way.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: probe serve ADDR")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "probe %s\n", host)
	})
	mux.HandleFunc("GET /resolve", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		// The pure-Go resolver reads /etc/resolv.conf as the kubelet wrote it
		// (nameserver, search domains, ndots).
		addrs, err := net.DefaultResolver.LookupHost(ctx, r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, strings.Join(addrs, " "))
	})
	srv := &http.Server{Addr: os.Args[2], Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	// The first line of its log: the node test reads it through the API server.
	fmt.Printf("probe listening on %s\n", os.Args[2])
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
