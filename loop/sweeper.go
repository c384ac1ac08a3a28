package loop

import (
	"sort"
	"time"
)

const (
	// sweepTick is the period of the coarse clock and of the backlog check.
	sweepTick = 10 * time.Millisecond
	// stallGrace: a direction whose backlog is over max_buffered_bytes is a
	// slow consumer once its receiver has acknowledged nothing for this
	// long. A receiver that keeps reading, even slower than its sender, is
	// not cut for a burst (a 16 MiB message to a phone). The sender sees a
	// slow reader's progress only through TCP window updates, which Linux
	// sends when half the receive buffer is free: at 3 MB/s into a 4 MB
	// buffer that is every ~700 ms, hence seconds, not milliseconds.
	// Memory meanwhile is bounded by the flood cap.
	stallGrace = int64(2 * time.Second)
	// floodFactor caps a backlog whatever the receiver does: at
	// floodFactor times max_buffered_bytes the session is a slow consumer
	// at once. It is what bounds memory against a fast sender and a
	// receiver that reads, but too slowly.
	floodFactor = 16
	// closeGrace is how long the sender of a flood gets for its Close to
	// go out before the session is cut.
	closeGrace = int64(200 * time.Millisecond)
	// timerEvery makes the idle, ping and closing-deadline checks run every
	// timerEvery ticks: they are measured in seconds.
	timerEvery = 25
)

// sweep advances the coarse clock and enforces the memory bounds and the
// session timers. One goroutine does it for every session, instead of a
// timer per session reset on every frame.
func (l *Loop) sweep() {
	defer close(l.sweepDone)
	t := time.NewTicker(sweepTick)
	defer t.Stop()
	var stalled []stalledDir
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			l.now.Store(now.UnixNano())
		}
		stalled = l.checkBacklogs(stalled[:0])
		if n%timerEvery == 0 {
			l.checkTimers()
		}
	}
}

type stalledDir struct {
	s        *Session
	dir      Direction
	buffered int64
}

// checkBacklogs closes sessions whose backlog in one direction passed
// MaxBufferedBytes while its receiver made no progress, or passed the flood
// cap; and, when the sum of all backlogs passes MaxBufferedTotal, the
// largest ones until it does not. Only directions blocked in a flush can
// have a backlog: one that is not blocked forwards what it reads at once.
func (l *Loop) checkBacklogs(stalled []stalledDir) []stalledDir {
	now := l.nowNano()
	limit := l.cfg.MaxBufferedBytes
	var total int64
	for _, c := range l.reg.snapshot() {
		for i := range c {
			sl := &c[i]
			for dir := range 2 {
				fs := sl.flushStart[dir].Load()
				if fs == 0 {
					continue
				}
				s := sl.sess.Load()
				if s == nil || s.state.Load() == sessFinished {
					continue
				}
				if s != sl.seen {
					sl.seen = s
					sl.seenFlush, sl.seenAcked, sl.progressAt = [2]int64{}, [2]uint64{}, [2]int64{}
				}
				if fs != sl.seenFlush[dir] {
					// A flush began since the last look: the receiver
					// took the previous one.
					sl.seenFlush[dir], sl.progressAt[dir], sl.seenAcked[dir] = fs, now, 0
				}
				d := &s.c2b
				if Direction(dir) == BackendToClient {
					d = &s.b2c
				}
				buffered := sl.inflight[dir].Load() + int64(d.src.conn.Reader().Len())
				if buffered > floodFactor*limit {
					if s.aborting() {
						closingFor := now - (s.closeDeadline.Load() - int64(l.cfg.CloseTimeout))
						if !d.src.readStopped.Load() && closingFor > closeGrace {
							// The sender's Close did not get out, so
							// its input still grows: cut.
							s.finish()
						}
					} else {
						s.slowConsumer(Direction(dir), false)
					}
					continue
				}
				total += buffered
				stalled = append(stalled, stalledDir{s, Direction(dir), buffered})
				if buffered <= limit || s.aborting() {
					continue
				}
				if acked, ok := bytesAcked(d.dst.conn); ok {
					if acked != sl.seenAcked[dir] && sl.seenAcked[dir] != 0 {
						sl.progressAt[dir] = now
					}
					sl.seenAcked[dir] = acked
				}
				if now-sl.progressAt[dir] >= stallGrace {
					s.slowConsumer(Direction(dir), false)
				}
			}
		}
	}
	if l.cfg.MaxBufferedTotal > 0 && total > l.cfg.MaxBufferedTotal {
		sort.Slice(stalled, func(i, j int) bool { return stalled[i].buffered > stalled[j].buffered })
		for _, sd := range stalled {
			if total <= l.cfg.MaxBufferedTotal {
				break
			}
			total -= sd.buffered
			sd.s.slowConsumer(sd.dir, true)
		}
	}
	return stalled
}

// slowConsumer closes a session whose direction dir has backed up: Close
// 1008 to the side that does not read, 1001 to the side that floods, and no
// more reading from the latter.
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
	// The sending side is read no more once its Close is out, so its
	// backlog cannot grow while the other side's Close waits.
	d.src.stopAfterClose.Store(true)
	if dir == BackendToClient {
		s.abort(cause, 1008, 1001)
	} else {
		s.abort(cause, 1001, 1008)
	}
}

// checkTimers enforces idle_timeout, keepalive pings and the deadline of
// closing handshakes.
func (l *Loop) checkTimers() {
	now := l.nowNano()
	idle := int64(l.cfg.IdleTimeout)
	pingEvery := int64(l.cfg.PingInterval)
	pingWait := int64(l.cfg.PingTimeout)
	l.reg.each(func(s *Session) {
		switch s.state.Load() {
		case sessFinished:
			return
		case sessClosing:
			if dl := s.closeDeadline.Load(); dl != 0 && now > dl {
				s.setCause(CauseCloseTimeout)
				s.finish()
			}
			return
		}
		if dl := s.closeDeadline.Load(); dl != 0 && now > dl {
			// A relayed closing handshake that the other side never
			// answered.
			s.setCause(CauseCloseTimeout)
			s.finish()
			return
		}
		if idle > 0 && now-s.lastActive.Load() >= idle {
			s.abort(CauseIdle, 1001, 1001)
			return
		}
		if pingEvery > 0 {
			if sent := s.pingSent.Load(); sent != 0 {
				if now-sent >= pingWait {
					s.abort(CausePingTimeout, 1001, 1001)
				}
			} else if now-s.lastClient.Load() >= pingEvery {
				s.pingSent.Store(now)
				s.ping()
			}
		}
	})
}
