// Command coredns is the test node's cluster DNS: CoreDNS's server with only the
// plugins the node's Corefile uses (internal/testenv node.go) linked in. CoreDNS's
// own main links every plugin it ships, the cloud DNS providers' SDKs among them,
// which tripled the cold build for code the node never runs (docs/node.md, "Cold
// cost").
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// The plugin chain's order, as CoreDNS's generated list has it, cut to the
	// plugins linked above: a Corefile naming any other is refused at start.
	dnsserver.Directives = []string{
		"bind", "ready", "health", "errors", "log", "cache", "kubernetes", "loop", "forward",
	}
}

func main() { coremain.Run() }
