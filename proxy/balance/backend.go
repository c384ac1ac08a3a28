package balance

import (
	"math"
	"sync"
	"sync/atomic"
	"weak"
)

// Locality is where a proxy or a backend runs. An empty field is unknown and
// never equal to anything, so a proxy without a configured location sees
// every backend as "anywhere" instead of wrongly as local.
type Locality struct{ Cloud, Region, Zone string }

// Tiers, nearest first.
const (
	TierZone   = 0 // same cloud, region and zone
	TierRegion = 1 // same cloud and region
	TierCloud  = 2 // same cloud
	TierAny    = 3 // anywhere
	numTiers   = 4
)

// tierOf is the distance from self to l. A zone name means nothing outside
// its region, nor a region outside its cloud, hence the nested comparisons.
func tierOf(self, l Locality) int {
	if self.Cloud == "" || self.Cloud != l.Cloud {
		return TierAny
	}
	if self.Region == "" || self.Region != l.Region {
		return TierCloud
	}
	if self.Zone == "" || self.Zone != l.Zone {
		return TierRegion
	}
	return TierZone
}

// Backend is one upstream of a pool. The exported fields are configuration:
// set them before passing the Backend to New and never change them after;
// a backend whose configuration changes is a new Backend in a new Balancer.
// The methods are safe for concurrent use.
//
// A new Backend is healthy, not draining, at full weight and idle.
type Backend struct {
	// Addr is the backend's identity: sticky hashing depends on it and on
	// nothing else about the backend but its weight, so proxies that agree
	// on the addresses agree on the mapping.
	Addr string
	Loc  Locality
	// Weight is the relative share of sessions; values below 1 count as 1
	// (use SetDraining to take a backend out of rotation).
	Weight int
	// MaxSessions caps Active; a backend at its cap is skipped. 0 is no cap.
	MaxSessions int64

	// unhealthy rather than healthy so that the zero value is usable.
	unhealthy atomic.Bool
	draining  atomic.Bool
	// factor holds math.Float64bits of the slow-start multiplier, 0 for 1,
	// for the same reason.
	factor atomic.Uint64
	active atomic.Int64

	// mu serialises state changes with their view rebuilds so that the last
	// rebuild always sees the last change. owners are weak so a Balancer
	// replaced on reload is not kept alive (and rebuilt) by its backends.
	mu     sync.Mutex
	owners []weak.Pointer[Balancer]
}

// SetHealthy records a health check result. Unhealthy backends get no new
// sessions while any healthy one can take them.
func (b *Backend) SetHealthy(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unhealthy.Swap(!ok) != !ok {
		b.notifyLocked()
	}
}

// Healthy reports the last SetHealthy.
func (b *Backend) Healthy() bool { return !b.unhealthy.Load() }

// SetDraining stops (true) or resumes (false) new sessions to b; sessions
// already there are the caller's to finish.
func (b *Backend) SetDraining(d bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.draining.Swap(d) != d {
		b.notifyLocked()
	}
}

// Draining reports the last SetDraining.
func (b *Backend) Draining() bool { return b.draining.Load() }

// SetWeightFactor scales Weight for slow start. f is clamped to [0.1, 1]
// (NaN counts as 1): below a tenth a warming backend would get almost
// nothing and never warm.
func (b *Backend) SetWeightFactor(f float64) {
	f = clampFactor(f)
	bits := math.Float64bits(f)
	if f == 1 {
		bits = 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.factor.Swap(bits) != bits {
		b.notifyLocked()
	}
}

// WeightFactor reports the slow-start multiplier in effect.
func (b *Backend) WeightFactor() float64 {
	bits := b.factor.Load()
	if bits == 0 {
		return 1
	}
	return math.Float64frombits(bits)
}

func clampFactor(f float64) float64 {
	switch {
	case f != f || f >= 1:
		return 1
	case f < 0.1:
		return 0.1
	}
	return f
}

// Acquire counts a session on b. Call it as soon as Pick returns b, before
// dialling, so that concurrent picks see the session; Release if the dial
// fails and when the session ends.
func (b *Backend) Acquire() { b.active.Add(1) }

// Release undoes one Acquire.
func (b *Backend) Release() { b.active.Add(-1) }

// Active is the number of sessions counted on b.
func (b *Backend) Active() int64 { return b.active.Load() }

func (b *Backend) weight() int {
	if b.Weight < 1 {
		return 1
	}
	return b.Weight
}

// available is whether b may get new sessions apart from its cap; views
// filter on it too, but rechecking the live flags closes the window between
// a change and the rebuild it triggers.
func (b *Backend) available() bool {
	return !b.unhealthy.Load() && !b.draining.Load()
}

// full is whether b is at its cap; max is the snapshot of MaxSessions.
func (b *Backend) full(max int64) bool {
	return max > 0 && b.active.Load() >= max
}

func (b *Backend) addOwner(bal *Balancer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.owners = append(b.owners, weak.Make(bal))
}

// notifyLocked rebuilds the views of every live Balancer holding b and
// forgets the collected ones. Called with b.mu held; rebuild takes the
// Balancer's lock, never another Backend's, so the lock order is fixed.
func (b *Backend) notifyLocked() {
	live := b.owners[:0]
	for _, w := range b.owners {
		if o := w.Value(); o != nil {
			o.rebuild()
			live = append(live, w)
		}
	}
	clear(b.owners[len(live):])
	b.owners = live
}
