package status

import (
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

func cond(status, reason, msg string) *Condition {
	return &Condition{Status: status, Reason: reason, Message: msg}
}

func TestCompute(t *testing.T) {
	active := Desired{State: store.StateActive, Commit: "c1", Version: "0.1.0"}
	upgrade := Desired{State: store.StateActive, Commit: "c2", Version: "0.1.1"}
	applied := Cluster{Connected: true, SourceFetched: true, Applied: true, NamespaceExists: true}
	with := func(c Cluster, hr *Release) Cluster { c.Release = hr; return c }
	fresh := &Release{Generation: 1, ChartVersion: "0.1.0", InstallRetries: 3, UpgradeRetries: 3}
	readyHR := &Release{Generation: 1, ObservedGeneration: 1, ChartVersion: "0.1.0", Installed: true, LatestChartVersion: "0.1.0",
		Ready: cond("True", "InstallSucceeded", "Helm install succeeded"), InstallRetries: 3, UpgradeRetries: 3}
	staleReady := *readyHR // the spec changed (generation 2), the controller has not caught up
	staleReady.Generation, staleReady.ChartVersion = 2, "0.1.1"
	upgraded := staleReady
	upgraded.ObservedGeneration, upgraded.LatestChartVersion = 2, "0.1.1"
	upgraded.Ready = cond("True", "UpgradeSucceeded", "Helm upgrade succeeded")
	installFailing := *fresh
	installFailing.ObservedGeneration, installFailing.InstallFailures = 1, 2
	installFailing.Ready = cond("False", "InstallFailed", "Helm install failed: boom")
	installExhausted := installFailing
	installExhausted.InstallFailures = 4
	unlimited := installExhausted
	unlimited.InstallRetries = -1
	stalled := installFailing
	stalled.Stalled = cond("True", "RetriesExceeded", "Failed to install after 4 attempt(s)")
	upgradeFailing := staleReady
	upgradeFailing.ObservedGeneration, upgradeFailing.UpgradeFailures = 2, 1
	upgradeFailing.Ready = cond("False", "UpgradeFailed", "Helm upgrade failed")
	upgradeExhausted := upgradeFailing
	upgradeExhausted.UpgradeFailures = 4
	drifted := *readyHR
	drifted.Drifted = cond("True", "DriftDetected", "Deployment shop-app changed")
	readyOldChart := upgraded // Ready at the new generation but history still shows the old chart
	readyOldChart.LatestChartVersion = "0.1.0"
	deletingHR := *readyHR
	deletingHR.Deleting = true
	// helm-controller records the deployed release in history before Ready says so.
	installMidway := *fresh
	installMidway.Installed, installMidway.LastAction, installMidway.LastAttemptedGeneration = true, "install", 1
	installMidway.LatestChartVersion = "0.1.0"
	upgradeAttempted := staleReady
	upgradeAttempted.LastAction, upgradeAttempted.LastAttemptedGeneration = "upgrade", 2
	upgradeNotYet := staleReady // the last attempt (install) was for generation 1
	upgradeNotYet.LastAction, upgradeNotYet.LastAttemptedGeneration = "install", 1
	upgradeRunning := upgradeNotYet // seen here: the attempt is recorded before its action
	upgradeRunning.LastAttemptedGeneration = 2
	upgradeRunning.Ready = cond("Unknown", "Progressing", "Running 'upgrade' action")
	// helm-controller read a stale HelmChart, found the release in sync and marked
	// generation 2 observed; the upgrade to 0.1.1 runs afterwards (seen in CI).
	upgradeAfterNoop := upgradeRunning
	upgradeAfterNoop.ObservedGeneration = 2

	tests := []struct {
		name   string
		d      Desired
		c      Cluster
		phase  store.Phase
		done   int
		reason string
	}{
		{"cluster unreachable", active, Cluster{Connected: false, SourceFetched: true, Applied: true, Release: readyHR}, store.PhaseUnknown, 0, "ClusterUnreachable"},
		{"committed", active, Cluster{Connected: true}, store.PhaseCommitted, 1, ""},
		{"committed, source failing", active, Cluster{Connected: true, Source: cond("False", "GitOperationFailed", "auth")}, store.PhaseCommitted, 1, "GitOperationFailed"},
		{"source fetched", active, Cluster{Connected: true, SourceFetched: true}, store.PhaseSourceFetched, 2, ""},
		{"source fetched, apply failing", active, Cluster{Connected: true, SourceFetched: true, Apply: cond("False", "BuildFailed", "kustomize")}, store.PhaseSourceFetched, 2, "BuildFailed"},
		{"applied, no HelmRelease yet", active, applied, store.PhaseApplied, 3, ""},
		{"applied, HelmRelease being deleted", active, with(applied, &deletingHR), store.PhaseApplied, 3, ""},
		{"HelmRelease not reconciled yet", active, with(applied, fresh), store.PhaseInstalling, 3, ""},
		{"installing, retrying a failure", active, with(applied, &installFailing), store.PhaseInstalling, 3, "InstallFailed"},
		{"install midway, history already shows it deployed", active, with(applied, &installMidway), store.PhaseInstalling, 3, ""},
		{"install retries exhausted", active, with(applied, &installExhausted), store.PhaseFailed, 3, "InstallFailed"},
		{"unlimited retries never exhaust", active, with(applied, &unlimited), store.PhaseInstalling, 3, "InstallFailed"},
		{"stalled", active, with(applied, &stalled), store.PhaseFailed, 3, "RetriesExceeded"},
		{"ready", active, with(applied, readyHR), store.PhaseReady, 5, "InstallSucceeded"},
		{"ready with drift", active, with(applied, &drifted), store.PhaseReady, 5, "InstallSucceeded"},
		{"upgrade: HelmRelease still at the old spec", upgrade, with(applied, readyHR), store.PhaseApplied, 3, ""},
		{"upgrade: Ready from the previous generation", upgrade, with(applied, &staleReady), store.PhaseUpgrading, 3, ""},
		{"upgrade: attempted at this generation", upgrade, with(applied, &upgradeAttempted), store.PhaseUpgrading, 3, ""},
		{"upgrade: new generation, last attempt was the install", upgrade, with(applied, &upgradeNotYet), store.PhaseUpgrading, 3, ""},
		{"upgrade: running, action not recorded yet", upgrade, with(applied, &upgradeRunning), store.PhaseUpgrading, 3, "Progressing"},
		{"upgrade: running after a no-op pass observed the generation", upgrade, with(applied, &upgradeAfterNoop), store.PhaseUpgrading, 3, "Progressing"},
		{"upgrade: retrying", upgrade, with(applied, &upgradeFailing), store.PhaseUpgrading, 3, "UpgradeFailed"},
		{"upgrade: retries exhausted", upgrade, with(applied, &upgradeExhausted), store.PhaseFailed, 3, "UpgradeFailed"},
		{"upgrade: ready at the new generation", upgrade, with(applied, &upgraded), store.PhaseReady, 5, "UpgradeSucceeded"},
		{"upgrade: ready but history shows the old chart", upgrade, with(applied, &readyOldChart), store.PhaseUpgrading, 3, ""},
		{"upgrade: not fetched yet", upgrade, Cluster{Connected: true, Release: readyHR}, store.PhaseCommitted, 1, ""},
		{"delete: committed", Desired{State: store.StateRetained, Commit: "c3"}, Cluster{Connected: true, Release: readyHR}, store.PhaseDeleting, 1, ""},
		{"delete: applied, release still there", Desired{State: store.StateRetained}, with(applied, readyHR), store.PhaseDeleting, 3, "InstallSucceeded"},
		{"delete: release gone", Desired{State: store.StateRetained}, applied, store.PhaseRetained, 5, ""},
		{"purge step 1 not applied", Desired{State: store.StatePurging}, Cluster{Connected: true, SourceFetched: true, NamespaceExists: true}, store.PhasePurging, 2, ""},
		{"purge step 1 applied", Desired{State: store.StatePurging}, applied, store.PhasePurging, 3, ""},
		{"purge step 2 applied, namespace terminating", Desired{State: store.StatePurged}, applied, store.PhasePurging, 3, ""},
		{"purge step 1 applied, namespace gone anyway", Desired{State: store.StatePurging}, Cluster{Connected: true, SourceFetched: true, Applied: true}, store.PhasePurging, 3, ""},
		{"purged", Desired{State: store.StatePurged}, Cluster{Connected: true, SourceFetched: true, Applied: true}, store.PhaseDeleted, 5, ""},
		{"purged but unreachable", Desired{State: store.StatePurged}, Cluster{}, store.PhaseUnknown, 0, "ClusterUnreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Compute(tt.d, tt.c)
			if r.Phase != tt.phase || r.Done != tt.done || r.Reason != tt.reason {
				t.Fatalf("Compute = phase %s done %d reason %q (%s); want %s %d %q", r.Phase, r.Done, r.Reason, r.Message, tt.phase, tt.done, tt.reason)
			}
			if r.Phase != store.PhaseUnknown && r.Message == "" && r.Phase != store.PhaseReady {
				t.Errorf("phase %s has no message", r.Phase)
			}
			if r.Phase.Terminal() != (r.Done == len(r.Steps) || r.Phase == store.PhaseFailed) {
				t.Errorf("phase %s terminal=%v but done %d of %d", r.Phase, r.Phase.Terminal(), r.Done, len(r.Steps))
			}
		})
	}
}

func TestStalledCarriesTheCause(t *testing.T) {
	hr := &Release{Generation: 1, ObservedGeneration: 1, InstallFailures: 4, InstallRetries: 3,
		Ready:   cond("False", "InstallFailed", "ConfigMap x is invalid"),
		Stalled: cond("True", "RetriesExceeded", "Failed to install after 4 attempt(s)")}
	r := Compute(Desired{State: store.StateActive}, Cluster{Connected: true, SourceFetched: true, Applied: true, Release: hr})
	if r.Phase != store.PhaseFailed || r.Reason != "RetriesExceeded" ||
		r.Message != "Failed to install after 4 attempt(s); last failure: InstallFailed: ConfigMap x is invalid" {
		t.Fatalf("%+v", r)
	}
}

func TestComputeDrift(t *testing.T) {
	hr := &Release{Generation: 1, ObservedGeneration: 1, Installed: true, Ready: cond("True", "x", ""),
		Drifted: cond("True", "DriftDetected", "Deployment shop-app changed")}
	r := Compute(Desired{State: store.StateActive}, Cluster{Connected: true, SourceFetched: true, Applied: true, Release: hr})
	if !r.Drifted || r.DriftMessage == "" || r.Phase != store.PhaseReady {
		t.Fatalf("drift not reported: %+v", r)
	}
	hr.Drifted = cond("False", "NoDriftDetected", "")
	if r := Compute(Desired{State: store.StateActive}, Cluster{Connected: true, SourceFetched: true, Applied: true, Release: hr}); r.Drifted {
		t.Fatalf("Drifted=False reported as drift")
	}
}

func TestPercentAndCurrent(t *testing.T) {
	tests := []struct {
		r       Result
		percent int
		current string
	}{
		{Result{Phase: store.PhaseCommitted, Steps: Steps(store.StateActive, false), Done: 1}, 20, StepSourceFetched},
		{Result{Phase: store.PhaseInstalling, Steps: Steps(store.StateActive, false), Done: 3}, 70, StepInstalling},
		{Result{Phase: store.PhaseUpgrading, Steps: Steps(store.StateActive, true), Done: 3}, 70, StepUpgrading},
		{Result{Phase: store.PhaseReady, Steps: Steps(store.StateActive, true), Done: 5}, 100, ""},
		{Result{Phase: store.PhaseDeleted, Steps: Steps(store.StatePurged, false), Done: 5}, 100, ""},
		{Result{}, 0, ""},
	}
	for _, tt := range tests {
		if got := tt.r.Percent(); got != tt.percent {
			t.Errorf("%s done %d: percent %d, want %d", tt.r.Phase, tt.r.Done, got, tt.percent)
		}
		if got := tt.r.Current(); got != tt.current {
			t.Errorf("%s done %d: current %q, want %q", tt.r.Phase, tt.r.Done, got, tt.current)
		}
	}
}

func TestEveryPhaseIsListedOnce(t *testing.T) {
	seen := map[store.Phase]bool{}
	for _, p := range store.Phases {
		if seen[p] {
			t.Fatalf("%s listed twice", p)
		}
		seen[p] = true
	}
	// 13 from the status issue, and awaiting-approval, merged, rejected from
	// review by pull request (issue 16).
	if len(seen) != 16 {
		t.Fatalf("%d phases, the issues name 16", len(seen))
	}
}
