// Package githttp serves bare Git repositories over smart HTTP on loopback by running
// git's own http-backend as a CGI program.
//
// It exists so that every test and the local test environment talk to a real Git
// server (the same one a production Git host speaks to clients), not to a mocked
// transport: the fleet writer pushes to it, source-controller clones from it, and
// outside pushes race against the writer through it.
package githttp
