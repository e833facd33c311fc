// Package app is the gitops-api command line: Run dispatches to subcommands (render, reshard, rerender and
// version; serve is added by the API). It owns flags, help, error reporting and exit codes, the same for every
// subcommand (flags spelt --flag, help on stdout, a usage mistake reported once with a hint and exit code 2),
// nothing else: each subcommand calls into the internal packages. reshard and rerender are the exceptions that
// drive the git CLI themselves (fleetclone.go, shared by both): each rewrites every store folder in one commit,
// which the API's writer (one change per store) has no way to make.
package app
