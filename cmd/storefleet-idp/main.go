// Command storefleet-idp is the test OpenID provider (see internal/testidp).
package main

import (
	"os"

	"github.com/storefleet/storefleet/internal/testidp"
)

func main() { os.Exit(testidp.Main(os.Args[1:], os.Stdout, os.Stderr)) }
