package balance

import (
	"fmt"
	"math"
	"testing"

	"github.com/cespare/xxhash/v2"
)

const stickyKeys = 100_000

func mapKeys(b *Balancer) []string {
	out := make([]string, stickyKeys)
	for i := range out {
		if be := b.Pick(key(i), nil); be != nil {
			out[i] = be.Addr
		}
	}
	return out
}

func TestStickyRemove(t *testing.T) {
	const n = 10
	bs := equal(n, "st", here)
	before := mapKeys(New(here, Prefer, Hash, bs))
	removed := bs[3].Addr
	rest := append(append([]*Backend{}, bs[:3]...), bs[4:]...)
	after := mapKeys(New(here, Prefer, Hash, rest))

	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
			if before[i] != removed {
				t.Fatalf("key %d moved from %s (not removed) to %s", i, before[i], after[i])
			}
		}
	}
	frac := float64(moved) / stickyKeys
	t.Logf("removing 1 of %d moved %.2f%% of keys", n, frac*100)
	if frac > 1.0/n+0.02 {
		t.Errorf("moved %.4f of keys, want ≤ %.4f", frac, 1.0/n+0.02)
	}
}

func TestStickyAdd(t *testing.T) {
	const n = 10
	bs := equal(n+1, "st", here)
	before := mapKeys(New(here, Prefer, Hash, bs[:n]))
	after := mapKeys(New(here, Prefer, Hash, bs))
	added := bs[n].Addr

	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
			if after[i] != added {
				t.Fatalf("key %d moved from %s to %s, not to the new backend", i, before[i], after[i])
			}
		}
	}
	frac := float64(moved) / stickyKeys
	t.Logf("adding an 11th backend moved %.2f%% of keys", frac*100)
	if want := 1.0 / (n + 1); math.Abs(frac-want) > 0.05*want {
		t.Errorf("moved %.4f of keys, want %.4f ±5%%", frac, want)
	}
}

// Determinism: two balancers built from separate Backend values (as two
// proxy processes would) map every key alike, whatever the input order.
func TestStickyIndependent(t *testing.T) {
	a := pool("ind", here, 1, 2, 3, 1, 5, 1, 1, 2)
	b := pool("ind", here, 1, 2, 3, 1, 5, 1, 1, 2)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	ma, mb := mapKeys(New(here, Prefer, Hash, a)), mapKeys(New(here, Prefer, Hash, b))
	for i := range ma {
		if ma[i] != mb[i] {
			t.Fatalf("key %d: %s vs %s", i, ma[i], mb[i])
		}
	}
}

// Pin the mapping so that a change to the hashing, which would reshuffle
// every sticky session in a rolling upgrade, cannot go unnoticed.
func TestStickyGolden(t *testing.T) {
	b := New(here, Prefer, Hash, pool("g", here, 1, 2, 3))
	var got string
	for i := range 8 {
		got += b.Pick(key(i), nil).Addr[2:3]
	}
	const want = "12121201"
	if got != want {
		t.Errorf("mapping of keys 0..7 = %s, want %s", got, want)
	}
}

// A key whose backend goes down moves to its next-best backend and comes
// back when it recovers; other keys stay.
func TestStickyHealthFlap(t *testing.T) {
	bs := equal(10, "fl", here)
	b := New(here, Prefer, Hash, bs)
	before := mapKeys(b)
	bs[5].SetHealthy(false)
	during := mapKeys(b)
	for i := range before {
		if before[i] != bs[5].Addr && during[i] != before[i] {
			t.Fatalf("key %d moved from healthy %s to %s", i, before[i], during[i])
		}
		if during[i] == bs[5].Addr {
			t.Fatalf("key %d on unhealthy backend", i)
		}
	}
	bs[5].SetHealthy(true)
	after := mapKeys(b)
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("key %d: %s before, %s after recovery", i, before[i], after[i])
		}
	}
}

// Excluding the key's backend (retry after a failed dial) gives its next
// best, the same one a failure of that backend would.
func TestStickyExclude(t *testing.T) {
	bs := equal(10, "ex", here)
	b := New(here, Prefer, Hash, bs)
	for i := range 1000 {
		first := b.Pick(key(i), nil)
		second := b.Pick(key(i), func(be *Backend) bool { return be == first })
		if second == nil || second == first {
			t.Fatalf("key %d: retry got %v", i, second)
		}
		first.SetHealthy(false)
		if got := b.Pick(key(i), nil); got != second {
			t.Fatalf("key %d: with %s down got %s, retry got %s", i, first.Addr, got.Addr, second.Addr)
		}
		first.SetHealthy(true)
	}
}

func ExampleBalancer_Pick() {
	bs := []*Backend{
		{Addr: "10.0.0.1:8080", Loc: Locality{"aws", "eu-west-1", "eu-west-1a"}, Weight: 1},
		{Addr: "10.0.0.2:8080", Loc: Locality{"aws", "eu-west-1", "eu-west-1b"}, Weight: 1},
	}
	b := New(Locality{"aws", "eu-west-1", "eu-west-1a"}, Prefer, Hash, bs)
	be := b.Pick([]byte("user-42"), nil)
	be.Acquire()
	defer be.Release()
	fmt.Println(be.Addr, b.Tier(be))
	// Output: 10.0.0.1:8080 0
}

// Slow start on the hash policy: as a backend's factor rises it only gains
// keys, so a ramp never bounces sessions between the other backends.
func TestStickySlowStart(t *testing.T) {
	bs := equal(10, "ss", here)
	b := New(here, Prefer, Hash, bs)
	warming := bs[7]
	prev := []string(nil)
	for _, f := range []float64{0.1, 0.25, 0.5, 0.75, 1} {
		warming.SetWeightFactor(f)
		cur := mapKeys(b)
		on := 0
		for i := range cur {
			if cur[i] == warming.Addr {
				on++
			}
			if prev != nil && cur[i] != prev[i] && cur[i] != warming.Addr {
				t.Fatalf("factor %v: key %d moved %s → %s", f, i, prev[i], cur[i])
			}
		}
		want := f / (9 + f)
		if got := float64(on) / stickyKeys; math.Abs(got-want) > 0.05*want+0.001 {
			t.Errorf("factor %v: warming backend has %.4f of keys, want %.4f", f, got, want)
		}
		prev = cur
	}
}

// The equal-weight shortcut must pick what the logarithm would, or a pool
// would remap keys when one backend's weight moves off and back.
func TestRendezvousUniformShortcut(t *testing.T) {
	b := New(here, Prefer, Hash, equal(50, "u", here))
	tr := b.view.Load().tiers[0]
	if !tr.uniform {
		t.Fatal("equal weights not detected")
	}
	slow := tr
	slow.uniform = false
	for i := range 20_000 {
		kh := xxhash.Sum64(key(i))
		if x, y := tr.rendezvous(kh, nil), slow.rendezvous(kh, nil); x != y {
			t.Fatalf("key %d: shortcut %s, logarithm %s", i, x.Addr, y.Addr)
		}
	}
}
