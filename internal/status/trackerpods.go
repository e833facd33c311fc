package status

// SetPods records the worst container in trouble among a store's Pods (Worst);
// nil when none is. Only that one container is kept per store, however many Pods
// the store runs, so memory grows with stores in trouble, not with Pods.
func (t *Tracker) SetPods(name string, c *Container) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, had := t.pods[name]
	switch {
	case c == nil && !had:
		return
	case c == nil:
		delete(t.pods, name)
	case had && old == *c:
		return
	default:
		t.pods[name] = *c
	}
	if e, ok := t.stores[name]; ok {
		t.recompute(e)
	}
}
