package access_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/storefleet/storefleet/internal/access"
	"github.com/storefleet/storefleet/internal/store"
)

// TestGuardOnTheFleet: the mass-deletion guard with the fleet counting removals in
// Git: past the limit a delete is refused without admin and force, nothing is
// committed, and with both it lands.
func TestGuardOnTheFleet(t *testing.T) {
	f := newFleet(t)
	svc := access.NewService(f, f, access.Options{Limits: access.Limits{RemovalsPerHour: 2}})
	ctx := context.Background()
	for i := range 4 {
		if _, err := f.Create(ctx, shop(fmt.Sprintf("s%d", i), "shop-a"), meta()); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"s0", "s1"} {
		if _, err := svc.Delete(as(editorA), n, false, meta()); err != nil {
			t.Fatalf("delete %s under the limit: %v", n, err)
		}
	}
	force := meta()
	force.Force = true
	for _, c := range []struct {
		p *store.Principal
		m store.Meta
	}{{editorA, meta()}, {editorA, force}, {adminA, meta()}, {nil, meta()}} {
		if _, err := svc.Delete(as(c.p), "s2", false, c.m); store.ErrorCode(err) != store.EFORBIDDEN {
			t.Errorf("%v delete past the limit (force %v): %v, want forbidden", c.p, c.m.Force, err)
		}
	}
	if v, _ := f.Get(ctx, "s2"); v.State != store.StateActive {
		t.Fatalf("a refused delete changed the store: %s", v.State)
	}
	if _, err := svc.Delete(as(adminA), "s2", false, force); err != nil {
		t.Fatalf("admin with force: %v", err)
	}
	if v, _ := f.Get(ctx, "s2"); v.State != store.StateRetained {
		t.Fatalf("the forced delete did not land: %s", v.State)
	}
}

// TestQuotaOnTheFleet: the quota with the fleet counting a tenant's stores.
func TestQuotaOnTheFleet(t *testing.T) {
	f := newCheckedFleet(t)
	svc := access.NewService(f, f, access.Options{Limits: access.Limits{StoresPerTenant: 2}})
	for i, want := range []string{"", "", store.EINVALID} {
		_, err := svc.Create(as(editorA), shop(fmt.Sprintf("a%d", i), ""), meta())
		if store.ErrorCode(err) != want {
			t.Errorf("shop-a's store %d: %v, want %q", i+1, err, want)
		}
	}
	if _, err := svc.Create(as(editorB), shop("b0", ""), meta()); err != nil {
		t.Errorf("shop-b's first store: %v", err)
	}
	// A deleted store still counts: it holds its name and its data.
	if _, err := svc.Delete(as(editorA), "a0", false, meta()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(as(editorA), shop("a3", ""), meta()); store.ErrorCode(err) != store.EINVALID {
		t.Errorf("over quota with a deleted store: %v, want invalid", err)
	}
}

// TestQuotaConcurrent: creates racing in one replica do not overshoot the quota
// (the fleet does not count creates still in flight; the decorator serialises
// check and create per tenant).
func TestQuotaConcurrent(t *testing.T) {
	f := newCheckedFleet(t)
	svc := access.NewService(f, f, access.Options{Limits: access.Limits{StoresPerTenant: 3}})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, err := svc.Create(as(editorA), shop(fmt.Sprintf("c%d", i), ""), meta())
			errs <- err
		}()
	}
	landed := 0
	for range 8 {
		switch err := <-errs; store.ErrorCode(err) {
		case "":
			landed++
		case store.EINVALID:
		default:
			t.Errorf("create: %v", err)
		}
	}
	if n, err := f.Stores(context.Background(), "shop-a"); landed != 3 || n != 3 || err != nil {
		t.Errorf("%d creates landed, the fleet counts %d (%v); want 3", landed, n, err)
	}
}
