package store

import (
	"context"
	"errors"
)

// Charts is the chart source as far as the lifecycle needs it: which versions of an
// engine's chart it offers. A store committed with a version the source lacks would
// sit in Git with a HelmRelease Flux can never install, so such a version is refused
// before it reaches Git. Adapters live beside the source they read
// (internal/chartindex).
type Charts interface {
	// Versions returns every version of the engine's chart the source offers, or
	// ErrVersionsUnknown when the source cannot tell (an OCI registry has no index
	// to read). Any other error means the source could not be read just now.
	Versions(ctx context.Context, e Engine) ([]string, error)
}

// ErrVersionsUnknown: the chart source offers no list of versions, so any well-formed
// version is accepted and Flux is the first to find out whether it exists.
var ErrVersionsUnknown = errors.New("the chart source does not list its versions")
