package balance

import (
	"fmt"
	"math"
	"testing"
)

var (
	here   = Locality{Cloud: "aws", Region: "eu-west-1", Zone: "eu-west-1a"}
	zoneB  = Locality{Cloud: "aws", Region: "eu-west-1", Zone: "eu-west-1b"}
	region = Locality{Cloud: "aws", Region: "us-east-1", Zone: "us-east-1a"}
	cloud  = Locality{Cloud: "gcp", Region: "europe-west1", Zone: "europe-west1-b"}
)

var policies = []Policy{RoundRobin, LeastSessions, P2C, Hash}

// pool returns one backend per weight, all at loc, named prefix-i.
func pool(prefix string, loc Locality, weights ...int) []*Backend {
	bs := make([]*Backend, len(weights))
	for i, w := range weights {
		bs[i] = &Backend{Addr: fmt.Sprintf("%s-%d:443", prefix, i), Loc: loc, Weight: w}
	}
	return bs
}

func equal(n int, prefix string, loc Locality) []*Backend {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return pool(prefix, loc, w...)
}

func key(i int) []byte { return fmt.Appendf(nil, "session-%d", i) }

// checkShares fails unless counts[be] / total is within rel (relative) of
// be's share of want.
func checkShares(t *testing.T, counts map[*Backend]int, want map[*Backend]float64, rel float64) {
	t.Helper()
	var total int
	for _, c := range counts {
		total += c
	}
	var wsum float64
	for _, w := range want {
		wsum += w
	}
	for be, w := range want {
		exp := w / wsum
		got := float64(counts[be]) / float64(total)
		if math.Abs(got-exp) > rel*exp {
			t.Errorf("%s: share %.4f, want %.4f ±%.0f%%", be.Addr, got, exp, rel*100)
		}
	}
	for be, c := range counts {
		if _, ok := want[be]; !ok && c > 0 {
			t.Errorf("%s: picked %d times, want never", be.Addr, c)
		}
	}
}

func weights(bs []*Backend) map[*Backend]float64 {
	m := make(map[*Backend]float64, len(bs))
	for _, b := range bs {
		m[b] = float64(b.Weight)
	}
	return m
}
