package store

import "time"

// Status is where a store is, in the one shape every reader gets it: GET of a store,
// the store list and the event streams. With no cluster connected it holds only what
// the fleet repository says (the phase its state implies and the commit step).
type Status struct {
	Store       string `json:"store,omitempty"`
	Phase       Phase  `json:"phase"`
	Reason      string `json:"reason,omitempty"`
	Message     string `json:"message,omitempty"`
	Percent     int    `json:"percent"`
	CurrentStep string `json:"currentStep,omitempty"`
	Steps       []Step `json:"steps"`
	// Drifted is set when the cluster no longer matches what was applied.
	Drifted      bool   `json:"drifted,omitempty"`
	DriftMessage string `json:"driftMessage,omitempty"`
	// Generation is the HelmRelease's metadata.generation.
	Generation int64 `json:"generation,omitempty"`
	// Commit is the fleet commit the status is about: the store's last change.
	Commit string `json:"commit,omitempty"`
	// ClusterConnected is false when no cluster is configured or it cannot be reached.
	ClusterConnected bool `json:"clusterConnected"`
	// Review is the pull request the store waits on (phase awaiting-approval), or
	// the one that was just closed without merge (phase rejected).
	Review    *Review    `json:"review,omitempty"`
	UpdatedAt *time.Time `json:"updatedAt,omitempty"`
}

// Step is one step of a store's way (committed, source fetched, …) and when it
// completed.
type Step struct {
	Name  string     `json:"name"`
	State string     `json:"state"` // done | current | pending | failed
	Time  *time.Time `json:"time,omitempty"`
	// Commit is set on the committed step: the commit it is about.
	Commit string `json:"commit,omitempty"`
}

// AwaitReview shows a store whose create or change waits on pull request r: until
// it is merged nothing of the change is on the fleet's branch, so the store's own
// phase (or, for a create, none) is not where the change leads yet.
func (s *Status) AwaitReview(r Review) {
	r.Reviewers = append([]string(nil), r.Reviewers...)
	s.Phase, s.Reason = PhaseAwaitingApproval, "AwaitingApproval"
	s.Message = "the change waits for a reviewer's approval on pull request " + r.URL
	s.Review = &r
}
