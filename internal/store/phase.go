package store

// Phase is where a store is in its life, as status reports it (committed → source fetched → applied →
// installing → ready/failed; then deleting → retained → purging on the way out).
type Phase string

const (
	PhaseCommitted     Phase = "committed"
	PhaseSourceFetched Phase = "sourceFetched"
	PhaseApplied       Phase = "applied"
	PhaseInstalling    Phase = "installing"
	PhaseReady         Phase = "ready"
	PhaseFailed        Phase = "failed"
	PhaseDeleting      Phase = "deleting"
	PhaseRetained      Phase = "retained"
	PhasePurging       Phase = "purging"
)

// The phases status adds to those the fleet knows without a cluster (see Phase).
const (
	// PhaseRequested: a change was received and is being committed.
	PhaseRequested Phase = "requested"
	// PhaseUpgrading: a store that was installed before is being upgraded to a new generation.
	PhaseUpgrading Phase = "upgrading"
	// PhaseDeleted: purged; the namespace and the data are gone.
	PhaseDeleted Phase = "deleted"
	// PhaseUnknown: the cluster cannot be reached, so where the store is cannot be told.
	PhaseUnknown Phase = "unknown"
)

// Phases lists every phase in the order a store passes through them.
var Phases = []Phase{
	PhaseRequested, PhaseAwaitingApproval, PhaseMerged, PhaseCommitted, PhaseSourceFetched, PhaseApplied,
	PhaseInstalling, PhaseUpgrading, PhaseReady, PhaseFailed, PhaseRejected, PhaseDeleting, PhaseRetained, PhasePurging, PhaseDeleted, PhaseUnknown,
}

// Terminal reports whether a store stays in the phase until someone changes it: a stream of its progress
// can end there.
func (p Phase) Terminal() bool {
	switch p {
	case PhaseReady, PhaseFailed, PhaseRejected, PhaseRetained, PhaseDeleted:
		return true
	}
	return false
}
