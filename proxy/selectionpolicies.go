package proxy

import "sync"

// roundRobin is smooth weighted round robin (as in NGINX): every pick adds
// each backend's weight to its credit and takes the backend with the most
// credit, which spreads a heavy backend's turns evenly instead of in runs.
type roundRobin struct {
	mu     sync.Mutex
	credit []int
}

func (rr *roundRobin) pick(bs []*backend) int {
	if len(bs) == 0 {
		return -1
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.credit) != len(bs) {
		rr.credit = make([]int, len(bs))
	}
	total, best := 0, 0
	for i, b := range bs {
		w := int(b.weight.Load())
		rr.credit[i] += w
		total += w
		if rr.credit[i] > rr.credit[best] {
			best = i
		}
	}
	rr.credit[best] -= total
	return best
}
