package status

import (
	"fmt"

	"github.com/storefleet/storefleet/internal/store"
)

// Desired is the fleet repository's side of a store.
type Desired struct {
	State store.State
	// Commit is the fleet commit that last changed the store.
	Commit string
	// Version is the chart version the store asks for (active stores).
	Version string
	// Shard is the store's shard (three hex digits): ExternalArtifact and
	// Kustomization stores-<shard> carry it to the cluster.
	Shard string
	// Cluster is the cluster whose Flux applies the store (the key of its
	// ClusterView): "" when the Tracker watches one cluster.
	Cluster string
	// Revision is the shard artifact revision that carried this change
	// ("main@sha1:<commit>"); empty until the publish queue reports it (Queue,
	// Tracker.Carried), and when there is no cluster.
	Revision string
}

// Condition is one Kubernetes status condition, as much as status needs.
type Condition struct {
	Status  string // True | False | Unknown
	Reason  string
	Message string
}

func (c *Condition) is(s string) bool { return c != nil && c.Status == s }

// Release is a store's HelmRelease as status sees it.
type Release struct {
	Generation         int64
	ObservedGeneration int64
	// ChartVersion is what the HelmRelease asks for: its storefleet.io/version
	// annotation (store.AnnotationVersion), or spec.chart.spec.version in one
	// written before the shared chart sources.
	ChartVersion string
	// Installed: the history holds a release that was deployed at some point.
	Installed bool
	// LastAction is status.lastAttemptedReleaseAction (install | upgrade) and
	// LastAttemptedGeneration the generation it was for.
	LastAction              string
	LastAttemptedGeneration int64
	// LatestChartVersion is the chart version of the newest release in history.
	LatestChartVersion string

	Ready, Stalled, Released, Drifted *Condition

	InstallFailures, UpgradeFailures int64
	// InstallRetries and UpgradeRetries are spec.{install,upgrade}.remediation.retries
	// (a negative value retries for ever).
	InstallRetries, UpgradeRetries int64
	Deleting                       bool
}

// Cluster is the cluster's side of one store.
type Cluster struct {
	Connected bool
	// SourceFetched: the store's shard artifact includes Desired.Commit.
	SourceFetched bool
	// Applied: the shard Kustomization's lastAppliedRevision includes Desired.Commit.
	Applied bool
	// Source and Apply are the Ready conditions of the shard's ExternalArtifact and
	// Kustomization, for the message while a store waits on them.
	Source, Apply *Condition
	// Release is nil when the store has no HelmRelease.
	Release *Release
	// NamespaceExists: the store's namespace exists (terminating or not).
	NamespaceExists bool
	// Pods is the worst container in trouble among the store's Pods (Worst); nil
	// when every container runs or is on its way.
	Pods *Container
}

// Result is where a store is.
type Result struct {
	Phase   store.Phase
	Reason  string
	Message string
	// Steps are the steps of the store's current way (Steps(lifecycle, installed))
	// and Done how many of them are complete.
	Steps []string
	Done  int
	// Drifted reports Flux's drift detection (the cluster differs from the release).
	Drifted      bool
	DriftMessage string
	Generation   int64
}

// Step names. The active way ends in installing|upgrading then ready.
const (
	StepCommitted     = "committed"
	StepSourceFetched = "sourceFetched"
	StepApplied       = "applied"
	StepInstalling    = "installing"
	StepUpgrading     = "upgrading"
	StepReady         = "ready"
	StepReleaseGone   = "releaseRemoved"
	StepRetained      = "retained"
	StepNamespaceGone = "namespaceRemoved"
	StepDeleted       = "deleted"
)

// Steps is the way a store in lifecycle l goes.
func Steps(l store.State, installed bool) []string {
	switch l {
	case store.StateRetained:
		return []string{StepCommitted, StepSourceFetched, StepApplied, StepReleaseGone, StepRetained}
	case store.StatePurging, store.StatePurged:
		return []string{StepCommitted, StepSourceFetched, StepApplied, StepNamespaceGone, StepDeleted}
	}
	if installed {
		return []string{StepCommitted, StepSourceFetched, StepApplied, StepUpgrading, StepReady}
	}
	return []string{StepCommitted, StepSourceFetched, StepApplied, StepInstalling, StepReady}
}

// Percent is a UI's progress figure for r: done steps, and half a step for one
// under way.
func (r Result) Percent() int {
	if len(r.Steps) == 0 {
		return 0
	}
	if r.Done >= len(r.Steps) {
		return 100
	}
	p := r.Done * 100 / len(r.Steps)
	if r.Phase == store.PhaseInstalling || r.Phase == store.PhaseUpgrading {
		p += 100 / len(r.Steps) / 2
	}
	return p
}

// Current is the step under way ("" when all are done).
func (r Result) Current() string {
	if r.Done < len(r.Steps) {
		return r.Steps[r.Done]
	}
	return ""
}

// Compute is the phase rule. It needs a configured cluster: without one the
// fleet's own phase (committed, retained, purging) stands.
func Compute(d Desired, c Cluster) Result {
	r := Result{Steps: Steps(d.State, c.Release != nil && c.Release.upgrade())}
	if c.Release != nil {
		r.Generation = c.Release.Generation
		if c.Release.Drifted.is("True") {
			r.Drifted, r.DriftMessage = true, c.Release.Drifted.Message
		}
	}
	if !c.Connected {
		r.Phase, r.Reason, r.Message = store.PhaseUnknown, "ClusterUnreachable", "the cluster cannot be reached; the phase is unknown until it answers again"
		return r
	}
	// The steps shared by every way: the commit reaches the source, then the cluster.
	switch {
	case !c.SourceFetched:
		r.Done = 1
		r.Phase = store.PhaseCommitted
		r.setWaiting("waiting for ExternalArtifact "+shardObject(d.Shard)+" to include the commit", c.Source)
	case !c.Applied:
		r.Done = 2
		r.Phase = store.PhaseSourceFetched
		r.setWaiting("waiting for Kustomization "+shardObject(d.Shard)+" to apply it", c.Apply)
	default:
		r.Done = 3
	}
	switch d.State {
	case store.StateRetained:
		return retained(r, c)
	case store.StatePurging, store.StatePurged:
		return purging(r, d, c)
	}
	if r.Done < 3 {
		return r
	}
	return podFailure(active(r, d, c.Release), c.Pods)
}

// shardObject names the ExternalArtifact and Kustomization of a shard.
func shardObject(shard string) string { return "stores-" + shard }

func (r *Result) setWaiting(msg string, cond *Condition) {
	r.Message = msg
	if cond.is("False") {
		r.Reason = cond.Reason
		r.Message = msg + ": " + cond.Message
	}
}

func active(r Result, d Desired, hr *Release) Result {
	if hr == nil || hr.Deleting {
		r.Phase, r.Message = store.PhaseApplied, "waiting for the HelmRelease"
		return r
	}
	// The Kustomization has applied the commit but the HelmRelease seen is still
	// the previous spec (the two watches deliver independently).
	if d.Version != "" && hr.ChartVersion != "" && hr.ChartVersion != d.Version {
		r.Phase, r.Message = store.PhaseApplied, fmt.Sprintf("waiting for the HelmRelease to ask for chart %s", d.Version)
		return r
	}
	working := store.PhaseInstalling
	if hr.upgrade() {
		working = store.PhaseUpgrading
	}
	current := hr.ObservedGeneration == hr.Generation
	switch {
	case hr.Stalled.is("True"):
		r.Phase, r.Reason, r.Message = store.PhaseFailed, hr.Stalled.Reason, hr.Stalled.Message
		// Stalled says that it gave up (RetriesExceeded); Ready says why.
		if hr.Ready.is("False") && hr.Ready.Message != "" && hr.Ready.Message != r.Message {
			r.Message += "; last failure: " + hr.Ready.Reason + ": " + hr.Ready.Message
		}
	case current && hr.Ready.is("True") && (d.Version == "" || hr.LatestChartVersion == "" || hr.LatestChartVersion == d.Version):
		r.Phase, r.Done = store.PhaseReady, len(r.Steps)
		r.Reason, r.Message = hr.Ready.Reason, hr.Ready.Message
	case current && hr.Ready.is("False") && exhausted(hr):
		r.Phase, r.Reason, r.Message = store.PhaseFailed, hr.Ready.Reason, hr.Ready.Message
	default:
		r.Phase = working
		if hr.Ready != nil && hr.Ready.Status != "True" {
			r.Reason, r.Message = hr.Ready.Reason, hr.Ready.Message
		} else {
			r.Message = "waiting for helm-controller to reconcile generation " + fmt.Sprint(hr.Generation)
		}
	}
	return r
}

// upgrade tells an upgrade from an install. History alone is not enough (a first
// install shows a deployed release in history before Ready says so), and neither is
// status.lastAttemptedReleaseAction (it still says install while the upgrade of a
// new generation runs).
func (hr *Release) upgrade() bool {
	switch {
	case hr.LastAction == "upgrade" && hr.LastAttemptedGeneration == hr.Generation:
		return true
	case hr.Installed && hr.ObservedGeneration > 0 && hr.ObservedGeneration < hr.Generation:
		return true // released at an earlier generation; this one is pending or running
	case hr.ObservedGeneration == 0:
		return false // nothing finished yet: the first install
	case hr.Installed && hr.LatestChartVersion != "" && hr.ChartVersion != "" && hr.LatestChartVersion != hr.ChartVersion:
		// A deployed release on another chart version: whatever runs is an upgrade.
		// helm-controller can read its cached HelmChart before the new version
		// reaches it, find the release in sync with the old chart and record the
		// new generation as observed (install still the last action) before the
		// real upgrade starts: CI saw exactly that after an apiserver restart.
		return true
	case hr.LastAction == "install" && hr.LastAttemptedGeneration == hr.Generation:
		return false
	}
	return hr.Installed
}

// exhausted is helm-controller's RetriesExhausted for the action that failed:
// install until something was deployed, upgrade afterwards.
func exhausted(hr *Release) bool {
	if hr.upgrade() {
		return hr.UpgradeRetries >= 0 && hr.UpgradeFailures > hr.UpgradeRetries
	}
	return hr.InstallRetries >= 0 && hr.InstallFailures > hr.InstallRetries
}

func retained(r Result, c Cluster) Result {
	if r.Done < 3 {
		r.Phase = store.PhaseDeleting
		return r
	}
	if c.Release != nil {
		r.Phase, r.Message = store.PhaseDeleting, "waiting for helm-controller to uninstall the release"
		if c.Release.Ready != nil {
			r.Reason = c.Release.Ready.Reason
		}
		return r
	}
	r.Phase, r.Done = store.PhaseRetained, len(r.Steps)
	r.Message = "release removed, namespace and data retained; DELETE with ?purge=true to remove the data"
	if !c.NamespaceExists {
		r.Message = "release removed; the namespace was not found"
	}
	return r
}

func purging(r Result, d Desired, c Cluster) Result {
	if d.State == store.StatePurged && r.Done == 3 && !c.NamespaceExists {
		r.Phase, r.Done, r.Message = store.PhaseDeleted, len(r.Steps), "namespace and data removed"
		return r
	}
	r.Phase = store.PhasePurging
	if r.Done == 3 {
		if d.State == store.StatePurging {
			// gitops-api's Purger commits the second step now (a client may too).
			r.Message = "namespace made prunable; removing the store folder next, then Flux deletes the namespace and the data"
		} else {
			r.Message = "waiting for the namespace to be deleted"
		}
	}
	return r
}
