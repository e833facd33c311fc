package faults

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/storefleet/storefleet/internal/testfs"
)

// mountTmpfs mounts a tmpfs of size (mount's syntax, "16m") on a new directory, so the
// process's data folder is a real filesystem that fills up. It needs root (or
// CAP_SYS_ADMIN); without, the test fails saying so unless FAULT_SKIP_TMPFS is set.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("FAULT_SKIP_TMPFS") != "" {
			t.Skipf("mount tmpfs: %v (FAULT_SKIP_TMPFS is set)", err)
		}
		t.Fatalf("mount a %s tmpfs on %s: %v: the full-disk test needs root or CAP_SYS_ADMIN; set FAULT_SKIP_TMPFS=1 to skip it", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// The data folder (embedded fleet repository, the writer's clone, the request log)
// is a small tmpfs that is filled to the last byte under a running process. While it
// is full every write is answered 503 + Retry-After and nothing lands; reads still
// answer. Once the filler is removed, with no restart and no hand repair, writes
// land again, the very requests refused before succeed once each when retried with
// their keys, and git fsck --strict finds nothing wrong, before and after a restart.
func TestFullDisk(t *testing.T) {
	data := mountTmpfs(t, "16m")
	bound := envDuration(t, "FAULT_RESTART_BOUND", time.Minute)
	client := &http.Client{Timeout: time.Minute}
	p := start(t, "--data-dir", data)
	bare := filepath.Join(data, "fleet.git")

	for i := range 3 {
		name := fmt.Sprintf("before-%d", i)
		if a, err := do(client, "POST", p.url+"/api/v1/stores", "key-"+name, "application/json", createBody(name)); err != nil || a.status != http.StatusAccepted {
			t.Fatalf("create %s before the disk is full: %v %v\n%s", name, a, err, p.logs.tail())
		}
	}

	free := testfs.Fill(t, data)
	const tries = 10
	var refused []string
	for i := range tries {
		name := fmt.Sprintf("full-%d", i)
		a, err := do(client, "POST", p.url+"/api/v1/stores", "key-"+name, "application/json", createBody(name))
		if err != nil {
			t.Fatalf("create %s on the full disk: %v", name, err)
		}
		switch a.status {
		case http.StatusServiceUnavailable:
			checkUnavailable(t, "create on the full disk", a)
			refused = append(refused, "key-"+name)
		default:
			t.Errorf("create %s on the full disk: %v, want 503", name, a)
		}
		if i == 0 {
			t.Logf("create on the full disk: %v", a)
		}
	}
	patch, err := do(client, "PATCH", p.url+"/api/v1/stores/before-0", "key-patch-full", "application/merge-patch+json", `{"settings":{"title":"full"}}`)
	if err != nil || patch.status != http.StatusServiceUnavailable {
		t.Errorf("patch on the full disk: %v %v, want 503", patch, err)
	} else {
		checkUnavailable(t, "patch on the full disk", patch)
		refused = append(refused, "key-patch-full")
	}
	if a, err := do(client, "GET", p.url+"/api/v1/stores/before-1", "", "", ""); err != nil || a.status != http.StatusOK {
		t.Errorf("read on the full disk: %v %v, want 200", a, err)
	}
	ready, _ := do(client, "GET", p.url+"/readyz", "", "", "")
	t.Logf("/readyz on the full disk: %v", ready)
	landed := requestIDs(t, bare)
	for _, id := range refused {
		if landed[id] != 0 {
			t.Errorf("request %s was answered 503 on the full disk but is in the fleet repository", id)
		}
	}

	free()
	t0 := time.Now()
	var recovered time.Duration
	for {
		a, err := do(client, "POST", p.url+"/api/v1/stores", "key-after", "application/json", createBody("after"))
		if err == nil && a.status == http.StatusAccepted {
			recovered = time.Since(t0)
			break
		}
		if err != nil || a.status != http.StatusServiceUnavailable {
			t.Fatalf("create once space is freed: %v %v\n%s", a, err, p.logs.tail())
		}
		if time.Since(t0) > bound {
			t.Fatalf("writes did not work again within %v of freeing space (liveness bound): %v\n%s", bound, a, p.logs.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The refused requests, retried with their keys, land once each.
	for i := range tries {
		name := fmt.Sprintf("full-%d", i)
		if a, err := do(client, "POST", p.url+"/api/v1/stores", "key-"+name, "application/json", createBody(name)); err != nil || a.status != http.StatusAccepted {
			t.Errorf("retry of %s once space is freed: %v %v", name, a, err)
		}
	}
	if a, err := do(client, "PATCH", p.url+"/api/v1/stores/before-0", "key-patch-full", "application/merge-patch+json", `{"settings":{"title":"full"}}`); err != nil || a.status != http.StatusAccepted {
		t.Errorf("retry of the patch once space is freed: %v %v", a, err)
	}
	landed = requestIDs(t, bare)
	for _, id := range append(refused, "key-after") {
		if landed[id] != 1 {
			t.Errorf("request %s is on %d commits, want 1", id, landed[id])
		}
	}
	fsck(t, data)
	p.stop(t)

	// A restart finds everything whole.
	p2 := start(t, "--data-dir", data)
	if a, err := do(client, "POST", p2.url+"/api/v1/stores", "key-restarted", "application/json", createBody("restarted")); err != nil || a.status != http.StatusAccepted {
		t.Errorf("create after a restart: %v %v\n%s", a, err, p2.logs.tail())
	}
	if a, err := do(client, "GET", p2.url+"/api/v1/stores/full-9", "", "", ""); err != nil || a.status != http.StatusOK {
		t.Errorf("a store created after the disk was freed, read after a restart: %v %v", a, err)
	}
	p2.stop(t)
	fsck(t, data)
	t.Logf("FIGURES full-disk: tmpfs=16m refused-while-full=%d/%d (all 503 + Retry-After, none landed) "+
		"first-write-after-freeing=%v (no restart) fsck=clean readyz-while-full=%d",
		len(refused), tries+1, recovered.Round(time.Millisecond), ready.status)
}
