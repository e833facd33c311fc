package fleet

import "time"

// SetDomainWait shortens how long a domain check waits for the index, for a test;
// the returned func restores it.
func SetDomainWait(d time.Duration) func() {
	old := domainWait
	domainWait = d
	return func() { domainWait = old }
}
