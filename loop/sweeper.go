package loop

import (
	"sort"
	"time"
)

const (
	// sweepTick is the period of the coarse clock and of the backlog check:
	// a stalled direction over its bound is closed within two ticks.
	sweepTick = 10 * time.Millisecond
	// stallGrace is how long a flush must have been blocked before its
	// backlog counts. A flush blocks only once the kernel's socket buffers
	// toward the reader are full; a reader that keeps up empties them well
	// within this even on a loaded machine, while netpoll, which reads
	// megabytes at a time, can leave a burst in the input for a moment.
	// A reader that stops is found within stallGrace plus two ticks.
	stallGrace = int64(50 * time.Millisecond)
	// A backlog floodFactor times the bound is a flood, not a burst:
	// netpoll reads at most 8 MiB at a time, so no healthy burst gets
	// there, and at loopback speed 50 ms of flood would be ~70 MB. It is
	// judged after floodGrace.
	floodFactor = 16
	floodGrace  = int64(10 * time.Millisecond)
	// timerEvery makes the idle, ping and closing-deadline checks run every
	// timerEvery ticks: they are measured in seconds.
	timerEvery = 10
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
// MaxBufferedBytes and, when the sum of all backlogs passes
// MaxBufferedTotal, the largest ones until it does not.
func (l *Loop) checkBacklogs(stalled []stalledDir) []stalledDir {
	now := l.nowNano()
	var total int64
	for _, c := range l.reg.snapshot() {
		for i := range c {
			sl := &c[i]
			for dir := range 2 {
				fs := sl.flushStart[dir].Load()
				if fs == 0 || now-fs < floodGrace {
					continue
				}
				s := sl.sess.Load()
				if s == nil || s.state.Load() == sessFinished {
					continue
				}
				d := &s.c2b
				if Direction(dir) == BackendToClient {
					d = &s.b2c
				}
				buffered := sl.inflight[dir].Load() + int64(d.src.conn.Reader().Len())
				if now-fs < stallGrace && buffered <= floodFactor*l.cfg.MaxBufferedBytes {
					continue
				}
				if buffered > l.cfg.MaxBufferedBytes {
					s.slowConsumer(Direction(dir), false)
					continue
				}
				total += buffered
				stalled = append(stalled, stalledDir{s, Direction(dir), buffered})
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
	stopReading(d.src.conn)
	s.loop.log.Warn("slow consumer", "side", d.dst.side.String(), "cause", cause.String())
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
