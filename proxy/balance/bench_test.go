package balance

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkPick measures one pick (plus the Acquire/Release the caller
// does) on the pool of benchPool; hash picks cycle through 1024 keys.
func BenchmarkPick(b *testing.B) {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "session-%016x", i*2654435761)
	}
	for _, p := range policies {
		for _, n := range []int{10, 1000} {
			bal := New(here, Prefer, p, benchPool(n))
			b.Run(fmt.Sprintf("%s/%d", p, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					be := bal.Pick(keys[i&1023], nil)
					be.Acquire()
					be.Release()
					i++
				}
			})
		}
	}
}

// BenchmarkPickParallel is BenchmarkPick from GOMAXPROCS goroutines, to
// show what contention (round robin's lock, the shared counters) costs.
func BenchmarkPickParallel(b *testing.B) {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "session-%016x", i*2654435761)
	}
	for _, p := range policies {
		for _, n := range []int{10, 1000} {
			bal := New(here, Prefer, p, benchPool(n))
			b.Run(fmt.Sprintf("%s/%d", p, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						be := bal.Pick(keys[i&1023], nil)
						be.Acquire()
						be.Release()
						i++
					}
				})
			})
		}
	}
}

// BenchmarkRebuild is the cost of one health change on the pool's view.
func BenchmarkRebuild(b *testing.B) {
	for _, n := range []int{10, 1000} {
		bs := benchPool(n)
		// Kept alive: backends hold their balancers weakly, and a collected
		// one is not rebuilt.
		bal := New(here, Prefer, P2C, bs)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			on := false
			for b.Loop() {
				bs[1].SetHealthy(on)
				on = !on
			}
		})
		runtime.KeepAlive(bal)
	}
}
