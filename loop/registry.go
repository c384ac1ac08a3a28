package loop

import (
	"sync"
	"sync/atomic"
)

// slotsPerChunk sizes the registry's growth step. Chunks never move, so a
// session keeps a stable pointer to its slot and the sweeper reads slots
// without taking the registry lock.
const slotsPerChunk = 1024

// slot is what the sweeper reads of a session on every fast tick. It is kept
// apart from Session so the scan walks dense memory: for 10,000 sessions the
// fast scan touches about 400 KB.
type slot struct {
	sess atomic.Pointer[Session]
	// flushStart is the coarse time a direction entered a Flush that has not
	// returned (0: not flushing); inflight is what that flush holds.
	flushStart [2]atomic.Int64
	inflight   [2]atomic.Int64

	// Only the sweeper uses these, to tell a reader that falls behind
	// from one that stopped: the flush it last saw, the receiver's
	// acknowledged byte count then, and when it last saw progress. It
	// resets them itself when it finds a new session in the slot (seen),
	// so add need not touch them.
	seen       *Session
	seenFlush  [2]int64
	seenAcked  [2]uint64
	progressAt [2]int64
}

type slotChunk [slotsPerChunk]slot

// registry hands out slots to sessions and lets the sweeper and Shutdown
// visit every live session.
type registry struct {
	mu     sync.Mutex
	chunks []*slotChunk
	free   []*slot
	live   int
}

func (r *registry) add(s *Session) *slot {
	r.mu.Lock()
	if len(r.free) == 0 {
		c := new(slotChunk)
		r.chunks = append(r.chunks, c)
		for i := slotsPerChunk - 1; i >= 0; i-- {
			r.free = append(r.free, &c[i])
		}
	}
	sl := r.free[len(r.free)-1]
	r.free = r.free[:len(r.free)-1]
	r.live++
	r.mu.Unlock()
	sl.flushStart[0].Store(0)
	sl.flushStart[1].Store(0)
	sl.inflight[0].Store(0)
	sl.inflight[1].Store(0)
	sl.sess.Store(s)
	return sl
}

func (r *registry) remove(sl *slot) {
	sl.sess.Store(nil)
	r.mu.Lock()
	r.free = append(r.free, sl)
	r.live--
	r.mu.Unlock()
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live
}

func (r *registry) snapshot() []*slotChunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chunks[:len(r.chunks):len(r.chunks)]
}

// each calls fn for every live session, without holding the lock.
func (r *registry) each(fn func(*Session)) {
	for _, c := range r.snapshot() {
		for i := range c {
			if s := c[i].sess.Load(); s != nil {
				fn(s)
			}
		}
	}
}
