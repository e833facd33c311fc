package status

import (
	"slices"
	"testing"
)

// OnConnected (the connection gauge) is told whether every cluster heard of
// answers: one cluster lost is 0 whatever the others do; a cluster that never
// answered yet keeps it 0.
func TestViewsConnectedAll(t *testing.T) {
	var got []bool
	tr := New(Options{OnConnected: func(ok bool) { got = append(got, ok) }})
	defer tr.Close()
	a, b := tr.View("a"), tr.View("b")
	a.SetConnected(true)  // only a heard of: all answer
	b.SetConnected(false) // b never answered: not all
	b.SetConnected(true)
	a.SetConnected(false)
	a.SetConnected(false) // no change, nothing told
	if want := []bool{true, false, true, false}; !slices.Equal(got, want) {
		t.Fatalf("OnConnected %v, want %v", got, want)
	}
	if a.Connected() || !b.Connected() || tr.Connected() {
		t.Fatalf("a %v b %v default %v", a.Connected(), b.Connected(), tr.Connected())
	}
}
