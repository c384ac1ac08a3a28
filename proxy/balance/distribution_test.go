package balance

import "testing"

const picks = 100_000

func TestParse(t *testing.T) {
	for _, p := range policies {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	for _, m := range []LocalityMode{Prefer, Strict, Off} {
		got, err := ParseLocalityMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseLocalityMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if p, err := ParsePolicy(""); err != nil || p != RoundRobin {
		t.Errorf(`ParsePolicy("") = %v, %v`, p, err)
	}
	if m, err := ParseLocalityMode(""); err != nil || m != Prefer {
		t.Errorf(`ParseLocalityMode("") = %v, %v`, m, err)
	}
	if _, err := ParsePolicy("random"); err == nil {
		t.Error("ParsePolicy(random): no error")
	}
	if _, err := ParseLocalityMode("nearest"); err == nil {
		t.Error("ParseLocalityMode(nearest): no error")
	}
}

func TestRoundRobinWeights(t *testing.T) {
	bs := pool("rr", here, 1, 2, 3, 4, 10)
	b := New(here, Prefer, RoundRobin, bs)
	counts := map[*Backend]int{}
	for range picks {
		counts[b.Pick(nil, nil)]++
	}
	checkShares(t, counts, weights(bs), 0.05)
}

// Smooth round robin must interleave: weights 5,1,1 give a,a,b,a,c,a,a
// (NGINX's example), never five a's in a row.
func TestRoundRobinSmooth(t *testing.T) {
	bs := pool("s", here, 5, 1, 1)
	b := New(here, Prefer, RoundRobin, bs)
	want := []*Backend{bs[0], bs[0], bs[1], bs[0], bs[2], bs[0], bs[0]}
	for round := range 3 {
		for i, w := range want {
			if got := b.Pick(nil, nil); got != w {
				t.Fatalf("round %d pick %d = %s, want %s", round, i, got.Addr, w.Addr)
			}
		}
	}
}

// With every pick released before the next, all backends are equally
// loaded (idle) and p2c must split by weight alone.
func TestP2CWeights(t *testing.T) {
	bs := pool("p2c", here, 1, 2, 3, 4, 10)
	b := New(here, Prefer, P2C, bs)
	counts := map[*Backend]int{}
	for range picks {
		be := b.Pick(nil, nil)
		be.Acquire()
		counts[be]++
		be.Release()
	}
	checkShares(t, counts, weights(bs), 0.05)
}

// Held sessions: p2c must follow weights too and keep loads level.
func TestP2CHeld(t *testing.T) {
	bs := pool("p2ch", here, 1, 2, 3, 4, 10)
	b := New(here, Prefer, P2C, bs)
	counts := map[*Backend]int{}
	for range picks {
		be := b.Pick(nil, nil)
		be.Acquire()
		counts[be]++
	}
	checkShares(t, counts, weights(bs), 0.05)
}

// Sessions are held (never released), so least_sessions must fill the
// backends in proportion to weight.
func TestLeastSessionsWeights(t *testing.T) {
	bs := pool("ls", here, 1, 2, 3, 4, 10)
	b := New(here, Prefer, LeastSessions, bs)
	counts := map[*Backend]int{}
	for range picks {
		be := b.Pick(nil, nil)
		be.Acquire()
		counts[be]++
	}
	checkShares(t, counts, weights(bs), 0.05)
	for _, be := range bs {
		if be.Active() != int64(counts[be]) {
			t.Errorf("%s: Active %d, picked %d", be.Addr, be.Active(), counts[be])
		}
	}
}

// Sessions that come and go: the longest-lived pattern, one in four
// released at random, still by weight.
func TestLeastSessionsChurn(t *testing.T) {
	bs := pool("lsc", here, 1, 1, 2, 4)
	b := New(here, Prefer, LeastSessions, bs)
	counts := map[*Backend]int{}
	var held []*Backend
	for i := range picks {
		be := b.Pick(nil, nil)
		be.Acquire()
		counts[be]++
		held = append(held, be)
		if i%4 == 3 {
			j := (i * 7919) % len(held)
			held[j].Release()
			held[j] = held[len(held)-1]
			held = held[:len(held)-1]
		}
	}
	checkShares(t, counts, weights(bs), 0.05)
}

func TestHashWeights(t *testing.T) {
	bs := pool("h", here, 1, 2, 3, 4, 10)
	b := New(here, Prefer, Hash, bs)
	counts := map[*Backend]int{}
	for i := range picks {
		counts[b.Pick(key(i), nil)]++
	}
	checkShares(t, counts, weights(bs), 0.05)
}

// Without a key the hash policy is p2c.
func TestHashNoKey(t *testing.T) {
	bs := pool("hn", here, 1, 3)
	b := New(here, Prefer, Hash, bs)
	counts := map[*Backend]int{}
	for range picks {
		counts[b.Pick(nil, nil)]++
	}
	checkShares(t, counts, weights(bs), 0.05)
}

// Slow start: a factor scales the backend's share within its tier.
func TestWeightFactor(t *testing.T) {
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			bs := pool("wf", here, 1, 1, 1, 1)
			bs[0].SetWeightFactor(0.25)
			b := New(here, Prefer, p, bs)
			counts := map[*Backend]int{}
			for i := range picks {
				be := b.Pick(key(i), nil)
				be.Acquire()
				counts[be]++
				if p != LeastSessions {
					be.Release()
				}
			}
			want := weights(bs)
			want[bs[0]] = 0.25
			checkShares(t, counts, want, 0.05)

			// Back to full weight after the balancer was built: the setter
			// must reach it.
			bs[0].SetWeightFactor(1)
			if got := b.view.Load().tiers[0].members[0].w; got != 1 {
				t.Errorf("after SetWeightFactor(1): effective weight %v", got)
			}
		})
	}
	var be Backend
	for _, c := range []struct{ in, want float64 }{{0, 0.1}, {-1, 0.1}, {0.5, 0.5}, {2, 1}, {nan(), 1}} {
		be.SetWeightFactor(c.in)
		if got := be.WeightFactor(); got != c.want {
			t.Errorf("SetWeightFactor(%v): %v, want %v", c.in, got, c.want)
		}
	}
}

func nan() float64 { var z float64; return z / z }
