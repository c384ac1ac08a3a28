package proxy

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/balance"
)

// trackedSession is a backend's handle on one of its sessions. The session
// may end before the handshake gets to register it; ended says so. It also
// holds what the session's end needs and its log attributes, so that a
// session costs the handshake one allocation here.
type trackedSession struct {
	s     *loop.Session
	ended bool // under the backend's smu

	b      *backend
	bb     *balance.Backend
	client netip.AddrPort
	attrs  [3]slog.Attr // pool, backend, client: loop.SessionParams.Attrs
}

// SessionEnded is the session's loop.SessionParams.OnEnd.
func (t *trackedSession) SessionEnded(r loop.EndReport) {
	t.bb.Release()
	t.b.untrack(t)
	t.b.srv.sessionEnded(r)
}

// track registers a session that has just been upgraded on b.
func (b *backend) track(t *trackedSession, s *loop.Session) {
	b.smu.Lock()
	t.s = s
	if !t.ended {
		b.sessions[t] = struct{}{}
	}
	b.smu.Unlock()
}

// untrack is the session's end.
func (b *backend) untrack(t *trackedSession) {
	b.smu.Lock()
	t.ended = true
	delete(b.sessions, t)
	b.smu.Unlock()
	b.active.Add(-1)
}

func (b *backend) liveSessions() []*loop.Session {
	b.smu.Lock()
	out := make([]*loop.Session, 0, len(b.sessions))
	for t := range b.sessions {
		if t.s != nil {
			out = append(out, t.s)
		}
	}
	b.smu.Unlock()
	return out
}

// drain stops new sessions on b and closes its sessions with 1001, one at
// a time, spread evenly over period, so that their clients' reconnects do
// not arrive as one storm. cause says why (drain, or removal by a reload).
func (b *backend) drain(period time.Duration, cause loop.Cause) {
	b.draining.Store(true)
	b.smu.Lock()
	b.drainGen++
	gen := b.drainGen
	b.smu.Unlock()
	sessions := b.liveSessions()
	b.srv.log.Info("draining backend", "pool", b.pool.Load().name, "backend", b.addr, "sessions", len(sessions), "period", period)
	b.srv.m.drains.WithLabelValues(b.pool.Load().name, b.addr).Inc()
	go func() {
		step := time.Duration(0)
		if len(sessions) > 0 {
			step = period / time.Duration(len(sessions))
		}
		// Each close has its time from the start, so that neither the
		// closes' own cost nor a late wake-up stretches the drain past
		// its period.
		start := time.Now()
		t := time.NewTimer(step)
		defer t.Stop()
		for i, s := range sessions {
			select {
			case <-t.C:
			case <-b.srv.stopping:
				return
			}
			t.Reset(time.Until(start.Add(time.Duration(i+2) * step)))
			b.smu.Lock()
			stale := b.drainGen != gen
			b.smu.Unlock()
			if stale {
				return
			}
			s.Close(cause, 1001, 1001)
		}
	}()
}

// undrain lets b take new sessions again and stops a drain in progress.
func (b *backend) undrain() {
	b.smu.Lock()
	b.drainGen++
	b.smu.Unlock()
	b.draining.Store(false)
}
