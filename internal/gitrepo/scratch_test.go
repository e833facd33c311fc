package gitrepo

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkScratch(b *testing.B) {
	url, _ := httpFleet(b, 10000)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		t0, c0 := time.Now(), cpuNow()
		r, err := Open(ctx, Options{URL: url})
		if err != nil {
			b.Fatal(err)
		}
		fmt.Println("open wall", time.Since(t0), "cpu", cpuNow()-c0)
		r.Close()
	}
}
