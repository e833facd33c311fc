// Package nodetest holds the tests of the test environment's worker node
// (testenv.Options.Node): Pods run, Services answer, DNS resolves, volumes bind, logs
// stream through the API server, and tear-down leaves nothing on the host. They
// live apart from package testenv so they do not also start that package's shared
// environment. They need root and the Debian packages of `make deps`: without root
// they skip with the reason (CI runs as root), as root without the packages they fail
// (testenv.RequireNode).
package nodetest
