//go:build unix

package gitrepo

import (
	"errors"
	"os"
	"syscall"
)

// flockWorks: the kernel releases an flock when its holder dies, however it dies, which
// is what tells a live writer's ref lock from a dead one's.
const flockWorks = true

// tryFlock takes an exclusive flock on f without waiting; false if another open file
// holds one.
func tryFlock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, syscall.EINTR):
			continue
		}
		return false, err
	}
}

// waitFlock takes an exclusive flock on f, waiting for its holder.
func waitFlock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
