package balance

import (
	"fmt"
	"testing"
)

// benchPool is n backends spread over the zone and the region with mixed
// weights and a quarter of the zone down, so that picks exercise the tier
// draw, both weight paths and the health filter.
func benchPool(n int) []*Backend {
	bs := make([]*Backend, n)
	for i := range bs {
		loc := here
		if i%2 == 1 {
			loc = zoneB
		}
		bs[i] = &Backend{Addr: fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256), Loc: loc, Weight: 1 + i%3}
		if i%8 == 0 {
			bs[i].SetHealthy(false)
		}
	}
	return bs
}

func TestPickAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	k := []byte("sticky-session-id")
	for _, n := range []int{10, 1000} {
		bs := benchPool(n)
		skip := bs[3]
		exclude := func(be *Backend) bool { return be == skip }
		for _, p := range policies {
			b := New(here, Prefer, p, bs)
			for _, c := range []struct {
				name    string
				key     []byte
				exclude func(*Backend) bool
			}{{"plain", nil, nil}, {"key", k, nil}, {"exclude", k, exclude}} {
				got := testing.AllocsPerRun(1000, func() {
					be := b.Pick(c.key, c.exclude)
					be.Acquire()
					be.Release()
				})
				if got != 0 {
					t.Errorf("%s/%d/%s: %v allocs per Pick", p, n, c.name, got)
				}
			}
		}
	}
}
