package api

import (
	"context"
	"sort"
	"strings"

	"github.com/storefleet/storefleet/internal/fleet"
	"github.com/storefleet/storefleet/internal/store"
)

// canonicalFlags is the part of the query an Idempotency-Key's fingerprint covers:
// the flags that are set, by name, so "?purge=1" and "?purge=true" are one request
// and "?dryRun=false" is the same as no query. Dry runs are never bound to a key, so
// dryRun never shows here.
func canonicalFlags(q map[string]bool) []byte {
	var set []string
	for k, v := range q {
		if v {
			set = append(set, k+"=true")
		}
	}
	sort.Strings(set)
	return []byte(strings.Join(set, "&"))
}

// create and update run a change that carries a client's Idempotency-Key as a dry run
// first. The service binds a key to the first outcome of its request, also to a
// refusal of the input; a client that fixes its input and retries under the same key
// would be told the key was used for another request. Input is judged by the service
// (defaults, the current store), so the API cannot check it alone; the dry run does,
// and a refusal for the input is answered without the key being bound.
//
// A key the service already knows is left to the service: a retry gets the first
// outcome even if the store has changed since so much that the same input would now
// be refused.
func (a *api) create(ctx context.Context, in store.Store, m fleet.Meta) (fleet.Outcome, error) {
	err := a.precheck(ctx, m, func(dry fleet.Meta) error {
		_, err := a.svc.Create(ctx, in, dry)
		return err
	})
	if err != nil {
		return fleet.Outcome{}, err
	}
	return a.svc.Create(ctx, in, m)
}

func (a *api) update(ctx context.Context, name string, change func(store.Store) (store.Store, error), m fleet.Meta) (fleet.Outcome, error) {
	err := a.precheck(ctx, m, func(dry fleet.Meta) error {
		_, err := a.svc.Update(ctx, name, change, dry)
		return err
	})
	if err != nil {
		return fleet.Outcome{}, err
	}
	return a.svc.Update(ctx, name, change, m)
}

// precheck returns the input error of a dry run of a keyed change whose key is new,
// or nil. Any other outcome of the dry run (a conflict, a missing store, a failure)
// is left for the real run to decide and record.
func (a *api) precheck(ctx context.Context, m fleet.Meta, run func(fleet.Meta) error) error {
	if !m.ClientKey || m.DryRun {
		return nil
	}
	if _, err := a.svc.Request(ctx, m.RequestID); store.ErrorCode(err) != store.ENOTFOUND {
		return nil
	}
	dry := m
	dry.DryRun = true
	if err := run(dry); refusedInput(err) {
		return err
	}
	return nil
}

// refusedInput reports whether err refuses the request for what it asks (a 422), as
// opposed to the state it meets or a failure.
func refusedInput(err error) bool {
	switch store.ErrorCode(err) {
	case store.EINVALID:
		return true
	case store.ECONFLICT:
		// A conflict naming fields (a plan with less storage, an immutable field) is
		// about the input; one without is about the store's state.
		return len(store.FieldErrors(err)) > 0
	}
	return false
}
