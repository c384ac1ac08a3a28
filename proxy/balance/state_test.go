package balance

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEmpty(t *testing.T) {
	for _, p := range policies {
		if be := New(here, Prefer, p, nil).Pick([]byte("k"), nil); be != nil {
			t.Errorf("%s: empty pool picked %v", p, be)
		}
		bs := equal(3, "d", here)
		for _, be := range bs {
			be.SetHealthy(false)
		}
		if be := New(here, Prefer, p, bs).Pick([]byte("k"), nil); be != nil {
			t.Errorf("%s: all-unhealthy pool picked %s", p, be.Addr)
		}
	}
}

func TestUnhealthyNeverPicked(t *testing.T) {
	for _, p := range policies {
		local := equal(10, "z", here)
		far := equal(10, "a", cloud)
		for i, be := range local {
			if i%3 != 0 {
				be.SetHealthy(false)
			}
		}
		for _, be := range far[:5] {
			be.SetHealthy(false)
		}
		b := New(here, Prefer, p, append(append([]*Backend{}, local...), far...))
		for i := range 20_000 {
			be := b.Pick(key(i), nil)
			if be == nil || !be.Healthy() {
				t.Fatalf("%s: picked %v", p, be)
			}
		}
	}
}

func TestDraining(t *testing.T) {
	for _, p := range policies {
		bs := equal(4, "dr", here)
		b := New(here, Prefer, p, bs)
		bs[1].SetDraining(true)
		for i := range 10_000 {
			if be := b.Pick(key(i), nil); be == bs[1] {
				t.Fatalf("%s: picked draining backend", p)
			}
		}
		bs[1].SetDraining(false)
		seen := false
		for i := range 10_000 {
			seen = seen || b.Pick(key(i), nil) == bs[1]
		}
		if !seen {
			t.Errorf("%s: undrained backend never picked", p)
		}
	}
}

func TestMaxSessions(t *testing.T) {
	for _, p := range policies {
		bs := equal(4, "max", here)
		for i, be := range bs {
			be.MaxSessions = int64(10 * (i + 1)) // 10+20+30+40
		}
		b := New(here, Prefer, p, bs)
		for i := range 100 {
			be := b.Pick(key(i), nil)
			if be == nil {
				t.Fatalf("%s: pick %d: nil with capacity left", p, i)
			}
			be.Acquire()
		}
		for _, be := range bs {
			if be.Active() != be.MaxSessions {
				t.Errorf("%s: %s has %d of %d", p, be.Addr, be.Active(), be.MaxSessions)
			}
		}
		if be := b.Pick([]byte("k"), nil); be != nil {
			t.Errorf("%s: picked %s with every backend full", p, be.Addr)
		}
		bs[2].Release()
		if be := b.Pick([]byte("k"), nil); be != bs[2] {
			t.Errorf("%s: picked %v, want the one with a free slot", p, be)
		}
	}
}

// A full local zone overflows to the next tier under prefer.
func TestOverflowToNextTier(t *testing.T) {
	for _, p := range policies {
		local := []*Backend{{Addr: "l", Loc: here, Weight: 1, MaxSessions: 5}}
		near := equal(2, "n", zoneB)
		b := New(here, Prefer, p, append(local, near...))
		for i := range 20 {
			be := b.Pick(key(i), nil)
			be.Acquire()
			if i < 5 && be != local[0] && p != Hash {
				t.Fatalf("%s: pick %d went to %s with local capacity left", p, i, be.Addr)
			}
		}
		if local[0].Active() != 5 || near[0].Active()+near[1].Active() != 15 {
			t.Errorf("%s: local %d, near %d+%d", p, local[0].Active(), near[0].Active(), near[1].Active())
		}
	}
}

// exclude is honoured by every policy, which is what lets a retry skip the
// backend it failed to dial.
func TestExclude(t *testing.T) {
	for _, p := range policies {
		bs := equal(3, "x", here)
		b := New(here, Prefer, p, bs)
		notFirst := func(be *Backend) bool { return be == bs[0] }
		for i := range 1000 {
			if be := b.Pick(key(i), notFirst); be == nil || be == bs[0] {
				t.Fatalf("%s: picked %v", p, be)
			}
		}
		all := func(*Backend) bool { return true }
		if be := b.Pick(nil, all); be != nil {
			t.Fatalf("%s: picked %s with everything excluded", p, be.Addr)
		}
	}
}

func TestDuplicates(t *testing.T) {
	a := &Backend{Addr: "same", Loc: here}
	b := &Backend{Addr: "same", Loc: here}
	bal := New(here, Prefer, RoundRobin, []*Backend{a, nil, b, a})
	if got := len(bal.view.Load().tiers[0].members); got != 1 {
		t.Fatalf("%d members, want 1", got)
	}
	if bal.Tier(b) != -1 {
		t.Errorf("duplicate was kept")
	}
}

// A Balancer dropped on reload must not be kept alive by its backends.
func TestOwnerCollected(t *testing.T) {
	be := &Backend{Addr: "o", Loc: here}
	for range 3 {
		New(here, Prefer, P2C, []*Backend{be})
	}
	keep := New(here, Prefer, P2C, []*Backend{be})
	runtime.GC()
	be.SetHealthy(false)
	be.mu.Lock()
	n := len(be.owners)
	be.mu.Unlock()
	if n != 1 {
		t.Errorf("%d owners after GC, want 1", n)
	}
	if keep.Pick(nil, nil) != nil {
		t.Error("picked unhealthy backend")
	}
	runtime.KeepAlive(keep)
}

// Picks racing with health, drain and weight changes: run with -race. Every
// pick must come back with a backend because half the pool never changes.
func TestConcurrent(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			stable := equal(8, "s", here)
			flappy := equal(8, "f", zoneB)
			bs := append(append([]*Backend{}, stable...), flappy...)
			b := New(here, Prefer, p, bs)
			var stop atomic.Bool
			var flapper, pickers sync.WaitGroup
			flapper.Go(func() {
				for i := 0; !stop.Load(); i++ {
					be := flappy[i%len(flappy)]
					be.SetHealthy(i%3 != 0)
					be.SetDraining(i%5 == 0)
					be.SetWeightFactor(float64(i%10+1) / 10)
					stable[i%len(stable)].SetWeightFactor(float64(i%7+3) / 10)
				}
			})
			n := 20_000
			if raceEnabled {
				n = 2_000
			}
			for g := range 4 {
				pickers.Go(func() {
					for i := range n {
						be := b.Pick(key(g*n+i), nil)
						if be == nil {
							t.Error("nil pick")
							return
						}
						be.Acquire()
						be.Release()
					}
				})
			}
			pickers.Wait()
			stop.Store(true)
			flapper.Wait()
		})
	}
}
