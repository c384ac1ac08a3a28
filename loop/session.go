package loop

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
)

// Cause says why a session ended.
type Cause int32

const (
	CauseNone            Cause = iota
	CauseClosed                // a closing handshake between client and backend
	CauseClientProtocol        // the client broke RFC 6455
	CauseBackendProtocol       // the backend broke RFC 6455
	CauseClientTooBig          // the client sent a message over max_message_bytes
	CauseBackendTooBig         // the backend sent a message over max_message_bytes
	CauseClientLost            // the client's TCP connection ended without a Close
	CauseBackendLost           // the backend's TCP connection ended without a Close
	CauseIdle                  // no frame in either direction for idle_timeout
	CausePingTimeout           // the client did not answer a keepalive ping
	CauseSlowClient            // the client did not read; its backlog passed max_buffered_bytes
	CauseSlowBackend           // the backend did not read; its backlog passed max_buffered_bytes
	CauseBufferedTotal         // the sum of all backlogs passed max_buffered_total
	CauseShutdown              // wsgate is stopping
	CauseCloseTimeout          // a closing handshake did not finish within close_timeout
	CauseDrain                 // its backend is being drained
	CauseRebalance             // moved off an overloaded backend
	CauseBackendRemoved        // its backend left the configuration
)

var causeNames = [...]string{
	"none", "closed", "client_protocol_error", "backend_protocol_error",
	"client_message_too_big", "backend_message_too_big", "client_lost",
	"backend_lost", "idle_timeout", "ping_timeout", "slow_client",
	"slow_backend", "buffered_total", "shutdown", "close_timeout",
	"drain", "rebalance", "backend_removed",
}

func (c Cause) String() string {
	if c >= 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "unknown"
}

// Causes lists every cause, for metrics that want all label values up front.
func Causes() []Cause {
	out := make([]Cause, 0, len(causeNames)-1)
	for c := CauseClosed; int(c) < len(causeNames); c++ {
		out = append(out, c)
	}
	return out
}

// SessionParams is what the handshake learned that the relay needs.
type SessionParams struct {
	// Deflate: permessage-deflate was negotiated, so RSV1 is allowed.
	Deflate bool
	// OnEnd, if set, is called once when both connections are closed.
	OnEnd func(EndReport)
	// Attrs are added to the session's log lines (pool, backend, client).
	Attrs []slog.Attr
}

// EndReport describes a finished session.
type EndReport struct {
	Cause Cause
	// CodeToClient and CodeToBackend are the close codes the two sides were
	// sent, relayed or wsgate's own (0: none was sent).
	CodeToClient, CodeToBackend int
	Duration                    time.Duration
	Frames, Bytes               [2]uint64 // by Direction
}

const (
	sessOpen int32 = iota
	sessClosing
	sessFinished
)

// keepalivePayload marks wsgate's own pings, so that the client's Pong to
// one is absorbed instead of reaching a backend that never pinged.
const keepalivePayload = "wsgate-keepalive"

// Session is a client and a backend connection in frame relay.
type Session struct {
	loop   *Loop
	slot   *slot
	params SessionParams
	start  time.Time

	client, backend peer
	c2b, b2c        direction

	state         atomic.Int32
	cause         atomic.Int32
	codeToClient  atomic.Int32
	codeToBackend atomic.Int32
	closeDeadline atomic.Int64

	lastActive atomic.Int64 // coarse time of the last relayed frame
	lastClient atomic.Int64 // coarse time of the last frame from the client
	pingSent   atomic.Int64 // coarse time of an unanswered keepalive ping (0: none)

	refs atomic.Int32 // two connections plus running injections
}

func (s *Session) initPeers() {
	s.client.sess, s.client.side, s.client.in = s, SideClient, BackendToClient
	s.backend.sess, s.backend.side, s.backend.in = s, SideBackend, ClientToBackend
	cfg := &s.loop.cfg
	s.c2b.init(s, ClientToBackend, &s.client, &s.backend, s.params.Deflate, cfg.MaxMessageBytes)
	s.b2c.init(s, BackendToClient, &s.backend, &s.client, s.params.Deflate, cfg.MaxMessageBytes)
}

// Cause returns why the session is closing or closed (CauseNone while open).
func (s *Session) Cause() Cause { return Cause(s.cause.Load()) }

// setCause records the first reason the session started to close.
func (s *Session) setCause(c Cause) {
	s.cause.CompareAndSwap(int32(CauseNone), int32(c))
	if dl := s.loop.nowNano() + int64(s.loop.cfg.CloseTimeout); !s.closeDeadline.CompareAndSwap(0, dl) {
		return
	}
}

// aborting reports whether wsgate has decided to close the session: relays
// stop forwarding new frames and the injected Close frames follow.
func (s *Session) aborting() bool { return s.state.Load() != sessOpen }

// abort closes the session from wsgate's side: Close toClient to the client
// and toBackend to the backend (0: none), each at a frame boundary. The
// first cause wins.
func (s *Session) abort(c Cause, toClient, toBackend ws.StatusCode) {
	if !s.state.CompareAndSwap(sessOpen, sessClosing) {
		return
	}
	s.setCause(c)
	// Each side gets its Close on its own goroutine: a side that does not
	// read must not hold up the other's.
	if toBackend != 0 && !s.backend.lost.Load() && s.acquire() {
		s.codeToBackend.CompareAndSwap(0, int32(toBackend))
		go func() {
			defer s.release()
			var mask [4]byte
			putMask(&mask)
			s.backend.inject(frame.AppendClose(nil, toBackend, "", &mask), true)
			s.maybeFinish()
		}()
	}
	if toClient != 0 && !s.client.lost.Load() && s.acquire() {
		s.codeToClient.CompareAndSwap(0, int32(toClient))
		go func() {
			defer s.release()
			s.client.inject(frame.AppendClose(nil, toClient, "", nil), true)
			s.maybeFinish()
		}()
	}
	s.maybeFinish()
}

// Close closes the session from wsgate's side with the given close codes
// (0: none to that side), each at a frame boundary, and waits for the
// closing handshakes as for any other close. It is how drains and
// rebalancing end sessions.
func (s *Session) Close(c Cause, toClient, toBackend int) {
	s.abort(c, ws.StatusCode(toClient), ws.StatusCode(toBackend))
}

// Done reports whether the session has started to close.
func (s *Session) Done() bool { return s.aborting() || s.Cause() != CauseNone }

// ping sends a keepalive Ping to the client.
func (s *Session) ping() {
	if !s.acquire() {
		return
	}
	go func() {
		defer s.release()
		s.loop.stats.PingsSent.Add(1)
		s.client.inject(frame.AppendPing(nil, []byte(keepalivePayload), nil), false)
	}()
}

// peerLost is told by a peer whose TCP connection has closed.
func (s *Session) peerLost(p *peer) {
	if !p.closeRecv.Load() {
		if p.side == SideBackend {
			s.abort(CauseBackendLost, 1012, 0)
		} else {
			s.abort(CauseClientLost, 0, 1001)
		}
	}
	s.maybeFinish()
	s.release()
}

// maybeFinish closes both connections once neither side owes anything.
func (s *Session) maybeFinish() {
	if s.client.done() && s.backend.done() {
		s.finish()
	}
}

// finish closes both TCP connections. The session is reported when both
// close callbacks have run (release).
func (s *Session) finish() {
	if s.state.Swap(sessFinished) == sessFinished {
		return
	}
	s.setCause(CauseClosed)
	s.client.conn.Close()
	s.backend.conn.Close()
}

// acquire takes a reference for work that may touch the session's slot;
// it fails once the session has been released.
func (s *Session) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Session) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	l := s.loop
	l.reg.remove(s.slot)
	l.stats.SessionsActive.Add(-1)
	// Both connections' OnRequest runs have ended before their close
	// callbacks, so the carry buffers are no longer in use.
	s.c2b.dropCarry()
	s.b2c.dropCarry()
	r := EndReport{
		Cause:         s.Cause(),
		CodeToClient:  int(s.codeToClient.Load()),
		CodeToBackend: int(s.codeToBackend.Load()),
		Duration:      time.Since(s.start),
		Frames:        [2]uint64{s.c2b.frames.Load(), s.b2c.frames.Load()},
		Bytes:         [2]uint64{s.c2b.bytes.Load(), s.b2c.bytes.Load()},
	}
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		attrs := append([]slog.Attr{
			slog.String("cause", r.Cause.String()),
			slog.Int("close_to_client", r.CodeToClient),
			slog.Int("close_to_backend", r.CodeToBackend),
			slog.Duration("duration", r.Duration),
			slog.Uint64("bytes_in", r.Bytes[ClientToBackend]),
			slog.Uint64("bytes_out", r.Bytes[BackendToClient]),
		}, s.params.Attrs...)
		l.log.LogAttrs(context.Background(), slog.LevelDebug, "session end", attrs...)
	}
	if s.params.OnEnd != nil {
		s.params.OnEnd(r)
	}
}

// putMask fills a masking key for a frame wsgate sends to a backend.
// RFC 6455 wants keys a browser's script cannot predict; wsgate's frames
// carry no script-chosen bytes, so varied keys from the runtime's
// per-thread generator are enough and cost no lock.
func putMask(m *[4]byte) {
	v := rand.Uint32()
	m[0], m[1], m[2], m[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
