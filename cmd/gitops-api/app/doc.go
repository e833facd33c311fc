// Package app is the gitops-api command line: Run dispatches to subcommands (render today; serve is added
// by the API). It owns flags and exit codes, nothing else: each subcommand calls into the internal
// packages.
package app
