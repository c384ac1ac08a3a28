package loop

import (
	"sort"
	"time"
)

const (
	// stallGrace: a receiver that has left wsgate blocked (its socket and
	// the kernel's buffers full) and acknowledged nothing for this long is
	// a slow consumer. A receiver that keeps reading, even slower than its
	// sender, is not cut for a burst (a 16 MiB message to a phone): TCP
	// flow control slows its sender instead. The sender sees a slow
	// reader's progress only through window updates, which Linux sends
	// when half the receive buffer is free: at 3 MB/s into a 4 MB buffer
	// that is every ~700 ms, hence seconds, not milliseconds.
	stallGrace = int64(2 * time.Second)
)

// tick enforces the session timers and the stall rule. It runs on the
// reactor every tickEvery: one pass over the reactor's sessions instead of
// a timer per session reset on every frame.
func (r *reactor) tick() {
	now := r.now
	cfg := &r.l.cfg
	idle := int64(cfg.IdleTimeout)
	pingEvery := int64(cfg.PingInterval)
	pingWait := int64(cfg.PingTimeout)
	for i := len(r.sessions.items) - 1; i >= 0; i-- {
		if i >= len(r.sessions.items) {
			continue
		}
		s := r.sessions.items[i]
		if dl := s.closeDeadline; dl != 0 && now > dl {
			// A closing handshake that the other side never answered,
			// or a backend that kept TCP open after it. A handshake that
			// a Close began and that never got its answer says so; one
			// that wsgate began (a violation, idle, a slow peer...) keeps
			// its first cause, which says more, and one that completed
			// counts as closed.
			if !s.client.closeRecv || !s.client.closeSent || !s.backend.closeRecv || !s.backend.closeSent {
				s.cause.CompareAndSwap(int32(CauseClosed), int32(CauseCloseTimeout))
			}
			s.finish()
			continue
		}
		if s.aborting() {
			continue
		}
		if idle > 0 && now-s.lastActive >= idle {
			s.abort(CauseIdle, 1001, 1001)
			continue
		}
		if pingEvery > 0 {
			if s.pingSent != 0 {
				if now-s.pingSent >= pingWait {
					s.abort(CausePingTimeout, 1001, 1001)
				}
			} else if now-s.lastClient >= pingEvery {
				s.pingSent = now
				s.ping()
			}
		}
	}
	r.checkStalls()
	r.expireFresh()
}

// checkStalls closes sessions whose receiver on one side has stopped
// reading: blocked, and no byte acknowledged (TCP_INFO bytes_acked) for
// stallGrace. When the bytes wsgate holds for blocked receivers, over all
// reactors, pass MaxBufferedTotal, the largest holders go first.
func (r *reactor) checkStalls() {
	now := r.now
	var total int64
	for i := len(r.blocked.items) - 1; i >= 0; i-- {
		if i >= len(r.blocked.items) {
			continue
		}
		p := r.blocked.items[i]
		total += int64(len(p.out.B) - p.outOff)
		if p.sess.aborting() {
			continue
		}
		if acked, ok := bytesAcked(p.fd); ok && acked != p.acked {
			p.acked, p.progressAt = acked, now
		}
		if now-p.progressAt >= stallGrace {
			p.sess.slowConsumer(p.into.dir, false)
		}
	}
	r.buffered.Store(total)
	limit := r.l.cfg.MaxBufferedTotal
	if limit <= 0 || r.l.bufferedTotal() <= limit || len(r.blocked.items) == 0 {
		return
	}
	over := r.l.bufferedTotal() - limit
	byHeld := make([]*peer, 0, len(r.blocked.items))
	for _, p := range r.blocked.items {
		if !p.sess.aborting() {
			byHeld = append(byHeld, p)
		}
	}
	sort.Slice(byHeld, func(i, j int) bool {
		return len(byHeld[i].out.B)-byHeld[i].outOff > len(byHeld[j].out.B)-byHeld[j].outOff
	})
	for _, p := range byHeld {
		if over <= 0 {
			break
		}
		if p.out == nil || p.sess.aborting() {
			continue
		}
		over -= int64(len(p.out.B) - p.outOff)
		p.sess.slowConsumer(p.into.dir, true)
	}
}

// slowConsumer closes a session whose direction dir has backed up: Close
// 1008 to the side that does not read, 1001 to the side that sends.
func (s *Session) slowConsumer(dir Direction, overTotal bool) {
	if s.aborting() {
		return
	}
	d := &s.c2b
	cause := CauseSlowBackend
	if dir == BackendToClient {
		d = &s.b2c
		cause = CauseSlowClient
	}
	if overTotal {
		cause = CauseBufferedTotal
		s.loop.stats.BufferedTotalCloses.Add(1)
	} else {
		s.loop.stats.SlowConsumerCloses.Add(1)
	}
	s.loop.log.Warn("slow consumer", "side", d.dst.side.String(), "cause", cause.String())
	if dir == BackendToClient {
		s.abort(cause, 1008, 1001)
	} else {
		s.abort(cause, 1001, 1008)
	}
}
