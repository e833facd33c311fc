package store

import (
	"context"
	"io"
	"time"
)

// Components are the parts of each engine's chart that run as Pods, as the charts'
// app.kubernetes.io/component label names them (charts/<engine>/templates). A logs
// request names one of these or none (every component).
var Components = map[Engine][]string{
	WooCommerce: {"wordpress", "mysql"},
	Medusa:      {"medusa", "postgresql", "redis"},
}

// StoreLabel is the label every object of a store's chart carries, with the store's
// name as its value: the Pods of a store are found by it.
const StoreLabel = "storefleet.io/store"

// Limits of a logs request.
const (
	// MaxTailLines bounds LogOptions.TailLines: a tail is for reading, not for
	// exporting a Pod's whole history through the API.
	MaxTailLines = 10000
	// DefaultTailLines is the tail when a request asks for none and no Since: the
	// recent past, not everything the containers ever wrote.
	DefaultTailLines = 100
)

// LogOptions select what a logs request reads.
type LogOptions struct {
	// Component is one of Components[engine]; empty reads every component.
	Component string
	// Follow keeps the stream open for new lines until the request's context ends
	// or every container read has stopped.
	Follow bool
	// TailLines is how many of each container's last lines to start with; 0 means
	// no limit by count (Since then bounds it).
	TailLines int64
	// Since starts with the lines written in this last span; 0 means no limit by
	// time.
	Since time.Duration
}

// Logs reads a store's Pod logs (internal/kube over the Kubernetes API). Every line
// is prefixed by "<pod>/<container> " so that lines of several Pods and containers
// read together can be told apart; lines of one container keep their order, lines
// of different containers interleave as they arrive.
type Logs interface {
	// StoreLogs opens the logs of store s's running Pods. It fails with
	// ErrNoRunningPods (code ECONFLICT) when no Pod of the selected component runs;
	// otherwise the stream is open when it returns, and reading it blocks until
	// lines arrive (Follow) or ends after the last line. Closing it, or the end of
	// ctx, ends every read behind it.
	StoreLogs(ctx context.Context, s Store, o LogOptions) (io.ReadCloser, error)
}

// ErrNoRunningPods is StoreLogs' answer for a store with nothing to read: its Pods
// are not scheduled yet, were removed, or are all finished.
var ErrNoRunningPods = &Error{Code: ECONFLICT, Message: "the store has no running pods"}
