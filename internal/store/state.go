package store

// State is which of its lives a store's files in the fleet repository describe: what
// Git says the store should be. Phase is where the store really is; a state is the
// phase the store reaches once the cluster has applied it.
type State string

const (
	// StateActive: namespace, policy and the HelmRelease; the store runs.
	StateActive State = "active"
	// StateRetained: the HelmRelease is gone (Helm uninstalls the app), the namespace
	// and its volumes stay, pruning disabled.
	StateRetained State = "retained"
	// StatePurging: as retained, but the namespace may be pruned; the next step
	// removes the folder and with it the namespace and the data.
	StatePurging State = "purging"
	// StatePurged: the folder is gone; Flux deletes the namespace and the data.
	StatePurged State = "purged"
)

// States lists every state in the order a store passes through them.
var States = []State{StateActive, StateRetained, StatePurging, StatePurged}

// StateOf is the state whose Phase is p, for a phase that a state implies.
func StateOf(p Phase) (State, bool) {
	for _, s := range States {
		if s.Phase() == p {
			return s, true
		}
	}
	return "", false
}

// Phase is the phase a store in this state shows while nothing is known of the
// cluster (no cluster connected): an active store is committed, a purged one
// deleted.
func (s State) Phase() Phase {
	switch s {
	case StateActive:
		return PhaseCommitted
	case StateRetained:
		return PhaseRetained
	case StatePurging:
		return PhasePurging
	case StatePurged:
		return PhaseDeleted
	}
	return ""
}

// Action is what a change does to a store; it becomes the commit's Action trailer.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
	ActionPurge  Action = "purge"
)

// RequestState is where one request is: being decided, committed, refused or failed,
// decided with nothing to commit, or only shown (a dry run).
type RequestState string

const (
	RequestPending   RequestState = "pending"
	RequestCommitted RequestState = "committed"
	RequestFailed    RequestState = "failed"
	RequestDryRun    RequestState = "dryRun"
	// RequestUnchanged: the change asked for what the store already is (a patch
	// that changes nothing), so no commit was made; the outcome has no commit, the
	// store's last commit stays what it was.
	RequestUnchanged RequestState = "unchanged"
)
