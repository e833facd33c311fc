package gitrepo

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/storefleet/storefleet/internal/store"
)

// Each failure that proves nothing landed reaches the domain as unavailable with its
// cause, also through the redaction every remote error passes.
func TestUnavailableCauses(t *testing.T) {
	red := newRedactor("https://user:secret@git.example.com/fleet.git")
	for _, tc := range []struct {
		err   error
		cause store.Cause
	}{
		{storageErr("write pack", &fs.PathError{Op: "write", Path: "/data/x", Err: syscall.ENOSPC}), store.CauseStorageFull},
		{storageErr("write pack", &fs.PathError{Op: "open", Path: "/data/x", Err: syscall.EACCES}), store.CauseStoragePermission},
		{storageErr("write pack", &fs.PathError{Op: "open", Path: "/data/x", Err: syscall.EROFS}), store.CauseStoragePermission},
		{red.err(fmt.Errorf("%w: dial https://user:secret@git.example.com: refused", ErrUnreachable)), store.CauseRemoteUnreachable},
		{red.err(fmt.Errorf("%w: 403 from https://user:secret@git.example.com", ErrRefused)), store.CauseRemoteRefused},
		{fmt.Errorf("%w: the deadline passed", ErrNotPushed), store.CauseDeadline},
	} {
		e := unavailable(tc.err)
		if e.Code != store.EUNAVAILABLE || e.Cause != tc.cause {
			t.Errorf("%v: code %s cause %s, want unavailable %s", tc.err, e.Code, e.Cause, tc.cause)
		}
	}
	if certain(errors.New("connection reset by peer")) {
		t.Error("a broken connection proves nothing, but was taken as certain")
	}
}
