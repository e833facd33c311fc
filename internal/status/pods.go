package status

import (
	"fmt"
	"strings"

	"github.com/storefleet/storefleet/internal/store"
)

// Container is one container's state as the phase rule needs it: the kubelet's
// view of why it does not run. internal/kube reads it from a Pod's status; the
// Tracker keeps only the worst one per store (Worse), never the Pods.
type Container struct {
	Pod, Name string
	// Init is set for an init container: the Pod's main containers wait on it.
	Init bool
	// Waiting is state.waiting.reason (CrashLoopBackOff, ImagePullBackOff, …) and
	// WaitingMessage its message; empty while the container runs or has ended.
	Waiting, WaitingMessage string
	// Terminated is set when the container, or its last run (lastState), ended:
	// ExitCode, Reason (Error, OOMKilled, …) and the last line of the termination
	// message (which, with terminationMessagePolicy FallbackToLogsOnError, is the
	// tail of its log).
	Terminated bool
	ExitCode   int32
	Reason     string
	LastLine   string
	Restarts   int32
}

// troubleWaiting are the waiting reasons after which a container will not run
// without someone changing something, ranked. ContainerCreating and
// PodInitializing are the way to running; ErrImagePull is a first failed pull,
// which ImagePullBackOff follows if it lasts; a failed exit alone is followed by a
// restart (CrashLoopBackOff) or ends its Pod (which then counts for nothing).
var troubleWaiting = map[string]int{
	"CrashLoopBackOff":           3,
	"CreateContainerConfigError": 2,
	"CreateContainerError":       2,
	"RunContainerError":          2,
	"InvalidImageName":           2,
	"ImagePullBackOff":           2,
	"ErrImageNeverPull":          2,
}

// CrashLoopRestarts is the restarts from which a container in CrashLoopBackOff
// counts: one that failed once while something it needs was starting (its
// database) is not a crash loop yet, and the store is not failed for it.
const CrashLoopRestarts = 2

// severity ranks c: 0 is no trouble.
func (c Container) severity() int {
	if c.Waiting == "CrashLoopBackOff" && c.Restarts < CrashLoopRestarts {
		return 0
	}
	return troubleWaiting[c.Waiting]
}

// Trouble reports whether c keeps its Pod from serving.
func (c Container) Trouble() bool { return c.severity() > 0 }

// Worse reports whether a is worse than b: higher severity, then more restarts,
// then the name order (so the choice among equals does not depend on the order Pods
// are listed in, and the status does not flap between them).
func Worse(a, b Container) bool {
	if sa, sb := a.severity(), b.severity(); sa != sb {
		return sa > sb
	}
	if a.Restarts != b.Restarts {
		return a.Restarts > b.Restarts
	}
	if a.Pod != b.Pod {
		return a.Pod < b.Pod
	}
	return a.Name < b.Name
}

// Worst is the worst container in cs that is in trouble; ok is false when none is.
func Worst(cs []Container) (Container, bool) {
	var w Container
	found := false
	for _, c := range cs {
		if c.Trouble() && (!found || Worse(c, w)) {
			w, found = c, true
		}
	}
	return w, found
}

// reason is the store's Reason for a container in trouble: the kubelet's waiting
// reason, or the exit's.
func (c Container) reason() string {
	switch {
	case c.Waiting != "":
		return c.Waiting
	case c.Reason != "":
		return c.Reason
	}
	return "Error"
}

// message says, for a person, what the container does and why.
func (c Container) message() string {
	var b strings.Builder
	kind := "container"
	if c.Init {
		kind = "init container"
	}
	fmt.Fprintf(&b, "%s %s of pod %s: %s", kind, c.Name, c.Pod, c.reason())
	if c.Terminated {
		fmt.Fprintf(&b, ", exit code %d", c.ExitCode)
		if c.Reason != "" && c.Reason != c.reason() {
			fmt.Fprintf(&b, " (%s)", c.Reason)
		}
	}
	if c.Restarts > 0 {
		fmt.Fprintf(&b, ", restarted %d times", c.Restarts)
	}
	if c.LastLine != "" {
		fmt.Fprintf(&b, "; last line: %s", c.LastLine)
	} else if c.WaitingMessage != "" && c.Waiting != "CrashLoopBackOff" {
		// CrashLoopBackOff's own message only repeats the back-off and the Pod's
		// name; an image pull's says which image and why.
		fmt.Fprintf(&b, "; %s", c.WaitingMessage)
	}
	return b.String()
}

// podFailure turns an active store's result failed when one of its containers is
// in trouble: whatever Helm says (still installing until its timeout, a generic
// timeout after it, or ready because the release was installed without waiting),
// the store does not serve, and the container says why. A store being deleted is
// left alone: its Pods are going away.
func podFailure(r Result, c *Container) Result {
	if c == nil || !c.Trouble() {
		return r
	}
	switch r.Phase {
	case store.PhaseInstalling, store.PhaseUpgrading, store.PhaseFailed, store.PhaseReady:
	default:
		return r
	}
	if r.Phase == store.PhaseReady {
		r.Done = len(r.Steps) - 1
	}
	helm := ""
	if r.Phase == store.PhaseFailed && r.Message != "" {
		helm = "; helm: " + r.Reason + ": " + r.Message
	}
	r.Phase, r.Reason, r.Message = store.PhaseFailed, c.reason(), c.message()+helm
	return r
}
