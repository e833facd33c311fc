package status

import "context"

// Finish is one look of the purger at one store (tests of its decisions).
func (p *Purger) Finish(ctx context.Context, name string) (retry bool, err error) {
	p.defaults()
	return p.finish(ctx, name)
}

// ReadyToPurge is the Tracker's rule for the second purge step.
func (t *Tracker) ReadyToPurge(name string) bool {
	_, ok := t.readyToPurge(name)
	return ok
}

// DesiredOf is what the Tracker holds for the store: its commit and the revision
// that carried it, once the publish queue reported one.
func (t *Tracker) DesiredOf(name string) Desired {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.stores[name]; ok {
		return e.desired
	}
	return Desired{}
}
