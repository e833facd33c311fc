package store

import (
	"context"
	"errors"
	"fmt"
)

// The phases of a change that waits for a reviewer (a pull request to the fleet
// repository): it is proposed, then merged into the fleet's branch (from there on the
// usual committed … ready) or closed without merge.
const (
	// PhaseAwaitingApproval: the change is on a branch of its own with a pull request
	// open; nothing of it is on the fleet's branch yet.
	PhaseAwaitingApproval Phase = "awaiting-approval"
	// PhaseMerged: the pull request was merged; the change is on the fleet's branch
	// and Flux is about to see it.
	PhaseMerged Phase = "merged"
	// PhaseRejected: the pull request was closed without merge; nothing of the change
	// reached the fleet's branch, and nothing ever will (terminal).
	PhaseRejected Phase = "rejected"
)

// The states of a request under review.
const (
	// RequestAwaitingApproval: proposed, waiting for a reviewer (Outcome.Review
	// names the pull request).
	RequestAwaitingApproval RequestState = "awaiting-approval"
	// RequestRejected: the pull request was closed without merge.
	RequestRejected RequestState = "rejected"
)

// ReviewSubject is what a review policy decides on: the request's action and the
// store as the change leaves it.
type ReviewSubject struct {
	Action  Action
	Plan    string
	Engine  string
	Tenant  string
	Cluster string
}

// ReviewPolicy tells which changes need a reviewer's approval before they reach the
// fleet's branch; the rest are committed directly (internal/review reads it from a
// file).
type ReviewPolicy interface {
	Requires(s ReviewSubject) bool
}

// Review is a change's pull request, as an Outcome reports it.
type Review struct {
	// Required: the policy sends the change to review (a dry run tells it before
	// anything is proposed).
	Required bool   `json:"required"`
	URL      string `json:"url,omitempty"`
	Number   int    `json:"number,omitempty"`
	Branch   string `json:"branch,omitempty"`
	// Commit is the branch's commit that carries the change.
	Commit string `json:"commit,omitempty"`
	// Reviewers are the users and teams asked to review, as last seen.
	Reviewers []string `json:"reviewers,omitempty"`
	// Checks is the commit's combined status as last seen: pending, success,
	// failure or error; empty before it is known.
	Checks string `json:"checks,omitempty"`
}

// Proposed is what a reviewing Repository's Submit returns instead of a commit on
// the fleet's branch: the change is durable on a branch of its own and waits for a
// reviewer. It is an error value only so that the port keeps one signature; the
// lifecycle answers it as accepted (awaiting-approval).
type Proposed struct {
	Review Review
}

func (p *Proposed) Error() string {
	return fmt.Sprintf("proposed for review as %s", p.Review.URL)
}

// AsProposed returns the proposal in err's chain, if any.
func AsProposed(err error) (*Proposed, bool) {
	var p *Proposed
	ok := errors.As(err, &p)
	return p, ok
}

// BranchCommit is a change's commit on a branch of its own.
type BranchCommit struct {
	Branch string
	Commit string
	// Base is the fleet branch's commit the change was made on.
	Base string
	// NoOp: the fleet's branch already has the change; nothing was pushed.
	NoOp bool
}

// Proposer puts a change on a branch of its own, made on the fleet branch's tip as
// the writer would commit it there, and pushes it (internal/gitrepo). Pushing the
// same branch again replaces it: that brings a proposal onto a moved base.
type Proposer interface {
	Propose(ctx context.Context, branch string, c Change) (BranchCommit, error)
	// ReadProposal reads back the change a proposal branch holds (a pull request
	// of an earlier run) and the commit it is: ErrNotFound when the branch is gone.
	ReadProposal(ctx context.Context, branch string) (Change, BranchCommit, error)
	BranchDropper
}

// BranchDropper removes a proposal branch once its pull request is closed
// (internal/gitrepo); a branch already gone is not an error.
type BranchDropper interface {
	DropBranch(ctx context.Context, branch string) error
}

// Delivery is one webhook delivery from the review host, as received.
type Delivery struct {
	// Event is the event's name (X-GitHub-Event), ID the delivery's id
	// (X-GitHub-Delivery), Signature the X-Hub-Signature-256 header as sent.
	Event, ID, Signature string
	Payload              []byte
}

// DeliveryReceiver takes webhook deliveries. Receive checks the signature and
// queues the delivery; it returns at once, EUNAUTHORIZED when the signature is
// missing or wrong, EINVALID when the payload cannot be read. A delivery already
// received is accepted and ignored.
type DeliveryReceiver interface {
	Receive(ctx context.Context, d Delivery) error
}

// Proposal is a change waiting for a reviewer, as the reviewing Repository holds it.
type Proposal struct {
	Store  string
	Action Action
	Review Review
	// Files are the store's folder as the change leaves it: a proposed create has no
	// folder on the fleet's branch, so its spec is read from here. Nil for a removal
	// and for a pull request adopted after a restart (its change is learnt again only
	// when the request is retried).
	Files []File
}

// ProposalLister is implemented by a Repository that sends changes to review
// (internal/github): a store's own view shows the pull request it waits on, and a
// proposed create is listed before anything of it is on the fleet's branch.
type ProposalLister interface {
	// OpenProposals returns the changes whose pull request is open.
	OpenProposals() []Proposal
}
