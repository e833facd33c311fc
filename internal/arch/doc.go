// Package arch holds no code: its test, TestDependencies, keeps the package picture
// in docs/design.md ("Packages and their arrows") true. It reads the arrows drawn
// there and compares them with what `go list` says the packages import and link.
package arch
