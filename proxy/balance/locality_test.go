package balance

import (
	"math"
	"testing"
)

func TestTierOf(t *testing.T) {
	cases := []struct {
		self, l Locality
		want    int
	}{
		{here, here, TierZone},
		{here, zoneB, TierRegion},
		{here, region, TierCloud},
		{here, cloud, TierAny},
		// Same zone name in another region is not the same zone.
		{here, Locality{"aws", "eu-west-2", "eu-west-1a"}, TierCloud},
		// Unknown never matches.
		{Locality{}, Locality{}, TierAny},
		{Locality{"aws", "", ""}, Locality{"aws", "", ""}, TierCloud},
	}
	for _, c := range cases {
		if got := tierOf(c.self, c.l); got != c.want {
			t.Errorf("tierOf(%v, %v) = %d, want %d", c.self, c.l, got, c.want)
		}
	}
	bs := []*Backend{{Addr: "a", Loc: here}, {Addr: "b", Loc: cloud}}
	b := New(here, Prefer, P2C, bs)
	if b.Tier(bs[0]) != 0 || b.Tier(bs[1]) != 3 || b.Tier(&Backend{}) != -1 {
		t.Errorf("Tier: %d %d %d", b.Tier(bs[0]), b.Tier(bs[1]), b.Tier(&Backend{}))
	}
	if off := New(here, Off, P2C, bs); off.Tier(bs[1]) != 0 {
		t.Errorf("Tier with locality off = %d, want 0", off.Tier(bs[1]))
	}
}

// tierFraction picks n times and returns the fraction that landed on each
// tier (by b.Tier).
func tierFraction(b *Balancer, p Policy, n int) [numTiers]float64 {
	var c [numTiers]int
	for i := range n {
		be := b.Pick(key(i), nil)
		if be == nil {
			continue
		}
		be.Acquire()
		c[b.Tier(be)]++
		if p != LeastSessions {
			be.Release()
		}
	}
	var f [numTiers]float64
	for i := range c {
		f[i] = float64(c[i]) / float64(n)
	}
	return f
}

func TestSpillShares(t *testing.T) {
	cases := []struct {
		name    string
		healthy [numTiers]int // healthy out of 10 in each tier (−1: tier empty)
		want    [numTiers]float64
	}{
		{"all healthy", [4]int{10, 10, 10, 10}, [4]float64{1, 0, 0, 0}},
		{"tier0 at 70%", [4]int{7, 10, 10, 10}, [4]float64{0.98, 0.02, 0, 0}},
		{"tier0 at 60%", [4]int{6, 10, 10, 10}, [4]float64{0.84, 0.16, 0, 0}},
		{"tier0 down", [4]int{0, 10, 10, 10}, [4]float64{0, 1, 0, 0}},
		{"cascade", [4]int{5, 1, 10, 10}, [4]float64{0.7, 0.14, 0.16, 0}},
		{"no tier0", [4]int{-1, 6, 10, -1}, [4]float64{0, 0.84, 0.16, 0}},
		// Offers sum to 0.42+0.28 = 0.7 < 1: scaled up to 0.6 / 0.4.
		{"degraded", [4]int{3, 2, -1, -1}, [4]float64{0.6, 0.4, 0, 0}},
	}
	locs := [numTiers]Locality{here, zoneB, region, cloud}
	for _, c := range cases {
		var bs []*Backend
		for tier, h := range c.healthy {
			if h < 0 {
				continue
			}
			tb := equal(10, "t"+string(rune('0'+tier)), locs[tier])
			for i := h; i < 10; i++ {
				tb[i].SetHealthy(false)
			}
			bs = append(bs, tb...)
		}
		b0 := New(here, Prefer, RoundRobin, bs)
		shares := b0.TierShares()
		for i := range shares {
			if math.Abs(shares[i]-c.want[i]) > 1e-9 {
				t.Errorf("%s: TierShares = %v, want %v", c.name, shares, c.want)
				break
			}
		}
		for _, p := range policies {
			b := New(here, Prefer, p, bs)
			got := tierFraction(b, p, picks)
			t.Logf("%s/%s: tier fractions %.4f", c.name, p, got)
			for i := range got {
				if math.Abs(got[i]-c.want[i]) > 0.02 {
					t.Errorf("%s/%s: tier fractions %.4f, want %v ±0.02", c.name, p, got, c.want)
					break
				}
			}
			for _, be := range bs {
				if be.Active() != 0 && p != LeastSessions {
					t.Fatalf("leak")
				}
				be.active.Store(0)
			}
		}
	}
}

// Health changes after New reach the view.
func TestSpillFollowsHealth(t *testing.T) {
	t0 := equal(10, "z", here)
	t1 := equal(10, "r", zoneB)
	b := New(here, Prefer, P2C, append(append([]*Backend{}, t0...), t1...))
	if s := b.TierShares(); s[0] != 1 {
		t.Fatalf("shares %v", s)
	}
	for _, be := range t0[:4] {
		be.SetHealthy(false)
	}
	if s := b.TierShares(); math.Abs(s[0]-0.84) > 1e-9 || math.Abs(s[1]-0.16) > 1e-9 {
		t.Fatalf("with 4 of 10 down: shares %v", s)
	}
	// Draining counts as not healthy for the tier's share.
	t0[4].SetDraining(true)
	if s := b.TierShares(); math.Abs(s[0]-0.7) > 1e-9 {
		t.Fatalf("with 4 down, 1 draining: shares %v", s)
	}
	for _, be := range t0[:5] {
		be.SetHealthy(true)
	}
	t0[4].SetDraining(false)
	if s := b.TierShares(); s[0] != 1 {
		t.Fatalf("after recovery: shares %v", s)
	}
}

// Hash picks the tier from the key: a key sticks to its tier (and backend)
// while the health view is unchanged.
func TestHashTierSticky(t *testing.T) {
	t0 := equal(10, "z", here)
	t1 := equal(10, "r", zoneB)
	for _, be := range t0[:4] {
		be.SetHealthy(false)
	}
	bs := append(append([]*Backend{}, t0...), t1...)
	a, b := New(here, Prefer, Hash, bs), New(here, Prefer, Hash, bs)
	for i := range 10_000 {
		x, y, z := a.Pick(key(i), nil), a.Pick(key(i), nil), b.Pick(key(i), nil)
		if x != y || x != z {
			t.Fatalf("key %d: %s, %s, %s", i, x.Addr, y.Addr, z.Addr)
		}
	}
}

func TestStrict(t *testing.T) {
	local := equal(4, "z", here)
	near := equal(4, "r", zoneB)
	far := append(equal(4, "c", region), equal(4, "a", cloud)...)
	bs := append(append(append([]*Backend{}, local...), near...), far...)
	for _, p := range policies {
		b := New(here, Strict, p, bs)
		for _, be := range local {
			be.SetHealthy(false)
		}
		// Region-local backends serve all of it.
		for i := range 10_000 {
			be := b.Pick(key(i), nil)
			if be == nil || b.Tier(be) != TierRegion {
				t.Fatalf("%s: picked %v", p, be)
			}
		}
		for _, be := range near {
			be.SetHealthy(false)
		}
		// Nothing healthy in the region: nothing, though far ones are up.
		for i := range 1000 {
			if be := b.Pick(key(i), nil); be != nil {
				t.Fatalf("%s: strict picked %s outside the region", p, be.Addr)
			}
		}
		if s := b.TierShares(); s != [4]float64{} {
			t.Errorf("%s: shares %v with nothing in region", p, s)
		}
		for _, be := range append(append([]*Backend{}, local...), near...) {
			be.SetHealthy(true)
		}
	}
	// A proxy with no region has nothing local in strict mode.
	if be := New(Locality{}, Strict, P2C, bs).Pick(nil, nil); be != nil {
		t.Errorf("strict without a location picked %s", be.Addr)
	}
}

// Strict mode and overflow: when everything in the region is at its cap the
// session is refused rather than sent away.
func TestStrictFull(t *testing.T) {
	local := []*Backend{{Addr: "l", Loc: here, MaxSessions: 1}}
	far := equal(3, "f", cloud)
	b := New(here, Strict, LeastSessions, append(local, far...))
	be := b.Pick(nil, nil)
	if be != local[0] {
		t.Fatalf("picked %v", be)
	}
	be.Acquire()
	if be := b.Pick(nil, nil); be != nil {
		t.Fatalf("strict overflowed to %s", be.Addr)
	}
	// Prefer overflows instead.
	if be := New(here, Prefer, LeastSessions, append(local, far...)).Pick(nil, nil); be == nil || be == local[0] {
		t.Fatalf("prefer with local full picked %v", be)
	}
}

// Off: one tier, so a 60%-healthy local zone gets its weight's share of
// the healthy backends, not 84%.
func TestOff(t *testing.T) {
	local := equal(10, "z", here)
	far := equal(10, "a", cloud)
	for _, be := range local[6:] {
		be.SetHealthy(false)
	}
	bs := append(append([]*Backend{}, local...), far...)
	for _, p := range policies {
		b := New(here, Off, p, bs)
		counts := map[*Backend]int{}
		for i := range picks {
			be := b.Pick(key(i), nil)
			be.Acquire()
			counts[be]++
			if p != LeastSessions {
				be.Release()
			}
		}
		want := map[*Backend]float64{}
		for _, be := range bs {
			if be.Healthy() {
				want[be] = 1
			}
		}
		t.Run(p.String(), func(t *testing.T) { checkShares(t, counts, want, 0.05) })
		for _, be := range bs {
			be.active.Store(0)
		}
	}
}
