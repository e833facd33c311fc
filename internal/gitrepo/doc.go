// Package gitrepo owns the fleet Git repository: it is the only package that imports
// go-git.
//
// It keeps one long-lived bare clone of the fleet branch (in memory or on disk, never a
// worktree), applies store changes to it by writing blobs and only the trees on the path
// to each changed store folder, and pushes a pack holding just the new objects with a
// compare-and-swap on the branch; an on-disk clone takes the same pack before the push,
// answering its objects from memory until a background merge folds such packs into one
// (recent.go). One writer goroutine per branch turns the changes queued
// while a push is in flight into the next commit (group commit); each change still gets
// its own Result, and a conflicting or invalid change never fails its neighbours.
//
// Git history is the audit log: every commit carries a readable summary and, per change,
// the trailers Store, Action, Cluster, Tenant, Actor, On-Behalf-Of and Request-Id (Tenant
// and On-Behalf-Of only when set), which `git log --grep` and
// `git interpret-trailers --parse` read. Actor and On-Behalf-Of take an authenticated
// subject as it is ("https://issuer#sub", "system:serviceaccount:ns:name") but never a
// line break or other control character, which would forge a trailer. A Request-Id already seen in recent history (or
// by this process) is not applied twice, unless the change says it Continues that
// request (a purge's second step, committed under the first one's id); a change that leaves the folder as it is makes
// no commit, and a commit removes only the folders of stores purged explicitly in it — a
// batch purging more than Options.MaxPurges stores is refused unless each purge is forced.
//
// Transport: any remote go-git speaks (HTTPS with basic or bearer auth, SSH with a key
// checked against known_hosts, a local path). Over smart HTTP a push is one POST whose
// old value is the compare-and-swap; a local bare repository is written directly (one
// pack + index per commit, then git's own ref lock-file protocol). Fetches negotiate
// upload-pack directly and read the pack in one pass (go-git's parser inflated every
// object twice). Seed creates the embedded default repository from the fleet/ skeleton.
//
// Every write answers within its deadline (Options.WriteTimeout or the caller's):
// landed; certain that nothing landed and never will (ErrUnreachable, ErrRefused,
// ErrStorage, ErrNotPushed); or ErrOutcomeUnknown when the deadline cut a push off in
// flight. Those wait in limbo (resolve.go, kept beside an on-disk clone) until the
// remote answers and the branch tells; FindRequest answers from limbo, the Request-Id
// index and one bounded walk of history. Contention is retried with jittered back-off
// until the deadline.
//
// Nothing wedges, nothing lies. A ref lock left by a writer that died (kill -9) is
// taken over with a warning naming it, at once when it is this package's (it keeps its
// locks flocked and marked), after a bound when it may be git's. Nothing names an
// object before the object is written, so a full or failing disk fails a write with
// ErrStorage having pushed nothing and moved nothing, and the next write after space is
// freed lands without a restart. Open checks an on-disk clone's tip and the trees above
// the store folders and clones again, with a warning, when they are not all there.
// Writable tells a readiness check, without pushing, whether a write could land now,
// and if not, why in words anyone may read (Cause: ref lock held, storage full or not
// permitted, remote unreachable or refusing); its remote check is one request for the
// remote's refs, bounded to 2 s. OpenBackground lets a server start while the remote
// is down: it reads from the clone it has and fetches in the background (bounded,
// jittered back-off) until the remote answers; Synced says when.
// No error, log line or file of this package holds the credentials of a remote URL;
// Redactor is that rule for the callers' own logs and errors.
//
// For the shard publisher it reads without writing: Subtrees lists a folder's child
// trees at a commit (which shards changed), Archive writes a folder as a deterministic
// gzipped tar (the artifact Flux applies for a shard; same tree, same bytes). ShardsAt
// gives the fleet's shard count at any commit, so a publisher that starts in the middle
// of a reshard can tell, from an artifact's commit alone, which shards still wait for the move.
//
// The package knows the fleet layout (stores/<cluster>/<shard>/<name>/, see
// docs/design.md) only as far as it must to list stores and to guard deletions; it knows
// nothing about what the files in a store folder mean. A create that carries its
// tenant's quota (Change.StoresPerTenant) is checked against the tenant's store folders
// in the tree its commit is built on, so replicas writing one branch cannot overshoot
// it; which tenant a folder belongs to it asks Options.TenantOf (tenants.go). A purge
// applied earlier in the same commit gives its place back. The count is kept by tree
// hash. Where a quota is configured (Options.TenantQuota) it is made in the
// background after Open (warmtenants.go, before the shared-file warm-up below, in the
// same goroutine), so the first check after a start reads only the folders new since,
// not every store folder on the writer; without one no tenant is counted at start.
//
// It also owns the shared files beside them (chart-sources/<cluster>/<name>.yaml):
// written by the commit of a change that needs one (Change.Shared), and removed by the
// commit of a change that may leave one unused (Change.Unshared) when no store folder
// of the cluster, as that commit leaves the tree, names <name> (unshare.go). The
// decision is the writer's, on the tree it pushes, so a concurrent create of the same
// version can never lose its source. What each store folder names is kept by tree
// hash, and read for the whole fleet in the background after Open (a few folders per
// short read lock, stopped by Close), so the first such commit after a start does not
// read every store folder.
package gitrepo
