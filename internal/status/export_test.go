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
