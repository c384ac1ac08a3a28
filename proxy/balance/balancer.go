package balance

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// overprovision is Envoy's priority-level overprovisioning factor: a tier
// keeps all of its traffic until fewer than 1/1.4 ≈ 71% of its weight is
// healthy, because a tier running at that fraction is assumed to have the
// headroom to absorb the rest.
const overprovision = 1.4

// Balancer picks backends for new sessions. Pick is safe for concurrent use
// with itself and with the Backend setters: it reads an immutable view that
// the setters replace (copy-on-write), so the hot path takes no lock except
// round robin's short one around its credits.
type Balancer struct {
	self     Locality
	mode     LocalityMode
	policy   Policy
	backends []*Backend
	tiers    []int8   // tiers[i] is the tier of backends[i] in this mode
	hashes   []uint64 // hashes[i] is xxhash of backends[i].Addr
	index    map[*Backend]int

	mu   sync.Mutex // serialises rebuilds
	view atomic.Pointer[view]
}

// view is what Pick reads: the available (healthy, not draining) backends
// grouped by tier, nearest first, with each tier's share of new sessions.
// Everything but round robin's credits is immutable once published.
type view struct {
	tiers  []tier
	shares [numTiers]float64 // by tier number, for TierShares
}

type tier struct {
	cum     float64 // cumulative share: picked when the draw is below cum
	members []member
	uniform bool    // all effective weights equal: hash skips the logarithm
	alias   []alias // weighted sampling for p2c (and hash without a key)
	rr      *rrState
}

type member struct {
	be   *Backend
	max  int64   // MaxSessions
	w    float64 // effective weight: Weight × slow-start factor
	invW float64
	ew   int64  // w in thousandths, for round robin's integer credits
	hash uint64 // xxhash of Addr
}

type rrState struct {
	mu     sync.Mutex
	credit []int64
}

// New returns a Balancer over backends, placed relative to self. Backends
// are deduplicated by pointer and by Addr (the first wins) and nil ones are
// dropped, because Addr is the identity sticky hashing relies on. A Backend
// may belong to several Balancers, e.g. the old and new one during a reload.
func New(self Locality, mode LocalityMode, policy Policy, backends []*Backend) *Balancer {
	b := &Balancer{
		self:   self,
		mode:   mode,
		policy: policy,
		index:  make(map[*Backend]int, len(backends)),
	}
	seen := make(map[string]bool, len(backends))
	for _, be := range backends {
		if be == nil || seen[be.Addr] {
			continue
		}
		seen[be.Addr] = true
		t := 0
		if mode != Off {
			t = tierOf(self, be.Loc)
		}
		b.index[be] = len(b.backends)
		b.backends = append(b.backends, be)
		b.tiers = append(b.tiers, int8(t))
		b.hashes = append(b.hashes, xxhash.Sum64String(be.Addr))
	}
	// Register before the first build: a change landing in between then
	// triggers a rebuild that sees it, rather than being lost.
	for _, be := range b.backends {
		be.addOwner(b)
	}
	b.rebuild()
	return b
}

// Tier is the locality tier be is grouped in (TierZone … TierAny; always 0
// with locality off), or -1 if be is not one of b's backends. In strict mode
// tiers 2 and 3 are reported but never served.
func (b *Balancer) Tier(be *Backend) int {
	i, ok := b.index[be]
	if !ok {
		return -1
	}
	return int(b.tiers[i])
}

// TierShares is the fraction of new sessions each tier gets under the
// current health view, indexed by tier; they sum to 1, or to 0 when no
// backend is available.
func (b *Balancer) TierShares() [4]float64 { return b.view.Load().shares }

// Policy is the policy b was built with.
func (b *Balancer) Policy() Policy { return b.policy }

// rebuild publishes a new view from the backends' current state.
func (b *Balancer) rebuild() {
	b.mu.Lock()
	defer b.mu.Unlock()

	// One array for all tiers' members, carved by a counting pass, keeps a
	// rebuild of a large pool to a handful of allocations.
	var count [numTiers]int
	for i, be := range b.backends {
		if t := b.tiers[i]; be.available() && (b.mode != Strict || t <= TierRegion) {
			count[t]++
		}
	}
	all := make([]member, 0, count[0]+count[1]+count[2]+count[3])
	var members [numTiers][]member
	for t, c := range count {
		members[t], all = all[:0:c], all[c:c]
	}
	var total, healthy [numTiers]float64
	for i, be := range b.backends {
		t := int(b.tiers[i])
		if b.mode == Strict && t > TierRegion {
			continue
		}
		w := float64(be.weight())
		total[t] += w
		if !be.available() || len(members[t]) == cap(members[t]) {
			// Not available, or it became so after the counting pass
			// (its own change will rebuild again).
			continue
		}
		// Health is measured on configured weight, not slow-start weight:
		// a warming backend is healthy, it just gets less of its tier.
		healthy[t] += w
		ew := w * be.WeightFactor()
		members[t] = append(members[t], member{
			be:   be,
			max:  be.MaxSessions,
			w:    ew,
			invW: 1 / ew,
			ew:   max(1, int64(math.Round(ew*1000))),
			hash: b.hashes[i],
		})
	}

	// Envoy's priority load: each tier offers min(1, 1.4·h) of the
	// traffic, nearest first; if all tiers together offer less than 1 the
	// offers are scaled up so that the traffic still goes somewhere.
	var offer [numTiers]float64
	sum := 0.0
	for t := range numTiers {
		if total[t] > 0 {
			offer[t] = min(1, overprovision*healthy[t]/total[t])
			sum += offer[t]
		}
	}
	v := &view{}
	if sum > 0 {
		norm := min(1, sum)
		left, cum, last := 1.0, 0.0, -1
		for t := range numTiers {
			if len(members[t]) == 0 {
				continue
			}
			share := min(left, offer[t]/norm)
			left -= share
			cum += share
			v.shares[t] = share
			tv := tier{cum: cum, members: members[t], uniform: true}
			for _, m := range tv.members {
				if m.w != tv.members[0].w {
					tv.uniform = false
					break
				}
			}
			switch b.policy {
			case RoundRobin:
				tv.rr = &rrState{credit: make([]int64, len(tv.members))}
			case P2C, Hash:
				tv.alias = buildAlias(tv.members)
			}
			if share > 0 {
				last = len(v.tiers)
			}
			v.tiers = append(v.tiers, tv)
		}
		// Rounding must not leave draws in [cum, 1) with nowhere to go.
		if last >= 0 {
			for i := last; i < len(v.tiers); i++ {
				v.tiers[i].cum = 1
			}
		}
	}
	b.view.Store(v)
}

// Pick returns the backend for a new session, or nil if no backend can take
// it. key is the sticky key for the Hash policy (nil or empty: no
// stickiness, P2C) and is ignored by the other policies. exclude, if not nil,
// vetoes backends, typically the ones a retry already failed to dial; it
// must be cheap and must not call Pick (round robin calls it under a lock).
//
// The caller should Acquire the returned backend at once so that
// concurrent picks see the session. Pick does not allocate.
func (b *Balancer) Pick(key []byte, exclude func(*Backend) bool) *Backend {
	v := b.view.Load()
	if len(v.tiers) == 0 {
		return nil
	}
	hashed := b.policy == Hash && len(key) > 0
	var kh, r uint64
	if hashed {
		kh = xxhash.Sum64(key)
		r = mix(kh, tierSalt)
	} else {
		r = rand.Uint64()
	}
	c := v.choose(unit(r))
	if be := b.pickIn(&v.tiers[c], hashed, kh, exclude); be != nil {
		return be
	}
	// The chosen tier is full or excluded: overflow to the others, nearest
	// first, including tiers whose share is 0 (capacity beats locality).
	for i := range v.tiers {
		if i == c {
			continue
		}
		if be := b.pickIn(&v.tiers[i], hashed, kh, exclude); be != nil {
			return be
		}
	}
	return nil
}

// choose returns the index of the tier whose share interval holds u.
func (v *view) choose(u float64) int {
	for i := range v.tiers {
		if u < v.tiers[i].cum {
			return i
		}
	}
	return len(v.tiers) - 1
}

func (b *Balancer) pickIn(t *tier, hashed bool, kh uint64, exclude func(*Backend) bool) *Backend {
	switch {
	case hashed:
		return t.rendezvous(kh, exclude)
	case b.policy == RoundRobin:
		return t.roundRobin(exclude)
	case b.policy == LeastSessions:
		return t.leastSessions(exclude)
	default:
		return t.p2c(exclude)
	}
}

func (m *member) eligible(exclude func(*Backend) bool) bool {
	return m.be.available() && !m.be.full(m.max) && (exclude == nil || !exclude(m.be))
}

// roundRobin is NGINX's smooth weighted round robin: every eligible member
// earns its weight in credit, the richest is picked and pays the total.
// Heavy members' turns come spread out rather than in runs. Ineligible
// members earn nothing, as NGINX skips its failed peers.
func (t *tier) roundRobin(exclude func(*Backend) bool) *Backend {
	rr := t.rr
	rr.mu.Lock()
	defer rr.mu.Unlock()
	var total int64
	best := -1
	for i := range t.members {
		m := &t.members[i]
		if !m.eligible(exclude) {
			continue
		}
		rr.credit[i] += m.ew
		total += m.ew
		if best < 0 || rr.credit[i] > rr.credit[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	rr.credit[best] -= total
	return t.members[best].be
}

// leastSessions scans for the lowest (active+1)/weight. The +1 makes weight
// decide among idle backends; starting at a random member spreads ties so
// that concurrent picks do not all land on the first idle backend.
func (t *tier) leastSessions(exclude func(*Backend) bool) *Backend {
	n := len(t.members)
	start := int(rand.Uint64N(uint64(n)))
	best := -1
	var bestA float64
	for j := range n {
		i := start + j
		if i >= n {
			i -= n
		}
		m := &t.members[i]
		if !m.eligible(exclude) {
			continue
		}
		a := float64(m.be.active.Load() + 1)
		if best < 0 || a*t.members[best].w < bestA*m.w {
			best, bestA = i, a
		}
	}
	if best < 0 {
		return nil
	}
	return t.members[best].be
}

// p2c draws two members in proportion to weight and keeps the one with
// fewer sessions per weight, the first on a tie. Drawing by weight (rather
// than uniformly and then comparing weights) is what makes an idle pool
// split exactly by weight while busy ones still avoid the hot backend.
func (t *tier) p2c(exclude func(*Backend) bool) *Backend {
	for range 3 {
		i, j := sample(t.alias, rand.Uint64()), sample(t.alias, rand.Uint64())
		mi, mj := &t.members[i], &t.members[j]
		oki := mi.eligible(exclude)
		okj := oki
		if j != i {
			okj = mj.eligible(exclude)
		}
		switch {
		case oki && okj:
			if float64(mj.be.active.Load())*mi.w < float64(mi.be.active.Load())*mj.w {
				return mj.be
			}
			return mi.be
		case oki:
			return mi.be
		case okj:
			return mj.be
		}
	}
	// Mostly full or excluded: find whatever is left rather than give up.
	return t.leastSessions(exclude)
}

// rendezvous is weighted highest-random-weight hashing: each member scores
// -w/ln(u) with u uniform in (0,1) from hash(key, member), and the highest
// score wins. That score is the weighted-exponential race of Schindelhauer
// and Schomaker, so a member wins with probability w/Σw, and a member's
// score does not depend on the others: removing one moves only its keys,
// adding one takes only the keys it now wins. Ineligible members are passed
// over and the key goes to its next-best member, so it comes back when they
// recover. Eligibility is checked only for a new leader, which keeps the
// exclude calls to about ln(n) per pick.
func (t *tier) rendezvous(kh uint64, exclude func(*Backend) bool) *Backend {
	best := -1
	if t.uniform {
		// Equal weights: -w/ln(u) rises with u, so the raw hash orders
		// members the same way without a logarithm.
		var bestH uint64
		for i := range t.members {
			m := &t.members[i]
			h := mix(kh, m.hash)
			if (best < 0 || h > bestH) && m.eligible(exclude) {
				best, bestH = i, h
			}
		}
	} else {
		// Minimising -ln(u)/w is maximising -w/ln(u). Since -ln(u) ≥ 1-u,
		// (1-u)/w bounds the score from below and rules most members out
		// without the logarithm: only about one in Σw/w comes close. The
		// bound is shaded by 1e-9 so that rounding in Log near u = 1 cannot
		// make it skip a member the exact comparison would take.
		bestS := math.Inf(1)
		for i := range t.members {
			m := &t.members[i]
			u := unitOpen(mix(kh, m.hash))
			if (1-u)*m.invW*(1-1e-9) >= bestS {
				continue
			}
			s := -math.Log(u) * m.invW
			if s < bestS && m.eligible(exclude) {
				best, bestS = i, s
			}
		}
	}
	if best < 0 {
		return nil
	}
	return t.members[best].be
}

// tierSalt separates the key's tier draw from its per-backend scores.
const tierSalt = 0x9e3779b97f4a7c15

// mix combines a key hash with a backend hash (or the salt) through
// MurmurHash3's fmix64 finaliser: every output bit depends evenly on every
// input bit, so one key's scores for different backends behave as
// independent draws. It is seedless on purpose: the mapping must be the same
// in every proxy process.
func mix(a, b uint64) uint64 {
	x := a ^ b
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// unit maps x to [0, 1) using its top 53 bits.
func unit(x uint64) float64 { return float64(x>>11) * 0x1p-53 }

// unitOpen maps x to (0, 1), so that its logarithm is finite and negative.
func unitOpen(x uint64) float64 { return (float64(x>>11) + 0.5) * 0x1p-53 }
