package fleet

import (
	"bytes"

	"github.com/storefleet/storefleet/internal/store"
)

// sameFiles reports whether a change's files are exactly the folder's current ones:
// then the change asks for nothing, and committing it would only put a commit in
// the audit log that changed nothing (and move the store's ETag for no reason).
func sameFiles(old, next []store.File) bool {
	if len(old) != len(next) {
		return false
	}
	cur := make(map[string][]byte, len(old))
	for _, f := range old {
		cur[f.Path] = f.Content
	}
	for _, f := range next {
		c, ok := cur[f.Path]
		if !ok || !bytes.Equal(c, f.Content) {
			return false
		}
	}
	return true
}

// unchanged is the outcome of a change that changes nothing: no commit, and for a
// dry run an empty list of changes (not an absent one: the client asked what would
// change, and the answer is nothing).
func unchanged(m store.Meta, st store.Store, state store.State, action store.Action) store.Outcome {
	out := store.Outcome{RequestID: m.RequestID, Store: st.Name, Action: action, Phase: state.Phase(), State: store.RequestUnchanged}
	if m.DryRun {
		out.DryRun, out.State, out.Changes = true, store.RequestDryRun, []store.Diff{}
	}
	return out
}
