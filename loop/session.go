package loop

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

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
	CauseCloseTimeout          // a closing handshake begun by a Close did not finish within close_timeout
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
	// OnEnd, if set, is told once when both connections are closed.
	OnEnd EndHandler
	// Attrs are added to the session's log lines (pool, backend, client).
	Attrs []slog.Attr
	// Head is written to the client before anything relayed: the 101
	// response. The session's reactor writes it, once it watches the
	// client's socket for the session, so that a client's first frames —
	// sent after it reads the 101 — can only reach the relay. It may be
	// the upstream's input, consumed: Upgrade copies it if the session
	// cannot write it before Upgrade returns.
	Head []byte
}

// EndHandler is told of a session's end. An interface rather than a
// func, so that the handshake's own per-session record can be it: a
// method value per session cost an allocation.
type EndHandler interface {
	SessionEnded(EndReport)
}

// EndFunc makes a function an EndHandler.
type EndFunc func(EndReport)

// SessionEnded calls f.
func (f EndFunc) SessionEnded(r EndReport) { f(r) }

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

// Session is a client and a backend connection in frame relay. It lives on
// one reactor, whose goroutine alone runs its relay, timers and close
// handshake; the few methods other goroutines call hand their work over.
type Session struct {
	// The relay's state comes first, in the order a batch from one side
	// reads it: the session's clock fields, then each side followed by
	// the direction it sends (the fields a batch reads first in each).
	// With 1,000 sessions, a session's state is out of the cache by the
	// time its next message comes: the first loads of the peer and of the
	// peer it writes to were 5% of a throughput-1k profile. Grouping
	// halved the cache lines a batch touches but not those stalls (each
	// side's first line still misses), and took the struct from 760 to
	// 696 bytes; see bench/RESULTS.md, 2026-11-25.
	r          *reactor
	state      atomic.Int32 // also read by other goroutines
	lastActive int64        // reactor time of the last relayed frame
	lastClient int64        // reactor time of the last frame from the client
	pingSent   int64        // reactor time of an unanswered keepalive ping (0: none)
	client     peer
	c2b        direction
	backend    peer
	b2c        direction

	loop   *Loop
	params SessionParams
	start  time.Time
	idx    int // in the reactor's session list (-1: not in it)

	// Read by other goroutines.
	cause      atomic.Int32
	closeAsked atomic.Bool // Close was called; its work is on the way to the reactor

	// Owned by the reactor goroutine.
	adopted       int // sockets handed over by the handshake (2: the session runs)
	started       bool
	closeDeadline int64
	codeToClient  int
	codeToBackend int
	// deferred is a Close asked for before the session started.
	deferred *deferredClose
}

type deferredClose struct {
	cause               Cause
	toClient, toBackend ws.StatusCode
}

func (s *Session) initPeers() {
	s.idx = -1
	s.client = peer{r: s.r, sess: s, side: SideClient, fd: -1, pendingFd: -1, from: &s.c2b, into: &s.b2c, blockedIdx: -1}
	s.backend = peer{r: s.r, sess: s, side: SideBackend, fd: -1, pendingFd: -1, from: &s.b2c, into: &s.c2b, blockedIdx: -1}
	cfg := &s.loop.cfg
	s.c2b.init(s, ClientToBackend, &s.client, &s.backend, s.params.Deflate, cfg.MaxMessageBytes)
	s.b2c.init(s, BackendToClient, &s.backend, &s.client, s.params.Deflate, cfg.MaxMessageBytes)
}

// Cause returns why the session is closing or closed (CauseNone while open).
func (s *Session) Cause() Cause { return Cause(s.cause.Load()) }

// setCause records the first reason the session started to close.
func (s *Session) setCause(c Cause) {
	s.cause.CompareAndSwap(int32(CauseNone), int32(c))
	if s.closeDeadline == 0 {
		s.closeDeadline = s.r.now + int64(s.loop.cfg.CloseTimeout)
	}
}

// aborting reports whether wsgate has decided to close the session: relays
// stop forwarding new frames and the injected Close frames follow.
func (s *Session) aborting() bool { return s.state.Load() != sessOpen }

// abort closes the session from wsgate's side: Close toClient to the client
// and toBackend to the backend (0: none), each at a frame boundary. The
// first cause wins.
func (s *Session) abort(c Cause, toClient, toBackend ws.StatusCode) {
	if !s.started {
		if s.deferred == nil {
			s.deferred = &deferredClose{c, toClient, toBackend}
		}
		return
	}
	if !s.state.CompareAndSwap(sessOpen, sessClosing) {
		return
	}
	s.setCause(c)
	// A direction between frames drops from now on, so its source may be
	// read (for its Close) even while its receiver is blocked.
	for _, d := range [2]*direction{&s.c2b, &s.b2c} {
		if d.remaining == 0 {
			d.discard = true
		}
	}
	if toBackend != 0 && s.backend.fd >= 0 && !s.backend.closeSent {
		if s.codeToBackend == 0 {
			s.codeToBackend = int(toBackend)
		}
		var mask [4]byte
		putMask(&mask)
		s.backend.inject(frame.AppendClose(nil, toBackend, "", &mask), true)
	}
	if toClient != 0 && s.client.fd >= 0 && !s.client.closeSent {
		if s.codeToClient == 0 {
			s.codeToClient = int(toClient)
		}
		s.client.inject(frame.AppendClose(nil, toClient, "", nil), true)
	}
	s.client.sync()
	s.backend.sync()
	s.maybeFinish()
}

// Close closes the session from wsgate's side with the given close codes
// (0: none to that side), each at a frame boundary, and waits for the
// closing handshakes as for any other close. It is how drains and
// rebalancing end sessions. Any goroutine may call it.
func (s *Session) Close(c Cause, toClient, toBackend int) {
	s.closeAsked.Store(true)
	s.r.post(func() { s.abort(c, ws.StatusCode(toClient), ws.StatusCode(toBackend)) })
}

// Done reports whether the session has started to close.
func (s *Session) Done() bool {
	return s.closeAsked.Load() || s.aborting() || s.Cause() != CauseNone
}

// ping sends a keepalive Ping to the client.
func (s *Session) ping() {
	s.loop.stats.PingsSent.Add(1)
	s.client.inject(s.loop.pingFrame, false)
}

// peerLost is told by a peer whose TCP connection has closed.
func (s *Session) peerLost(p *peer) {
	if !p.closeRecv {
		if p.side == SideBackend {
			s.abort(CauseBackendLost, 1012, 0)
		} else {
			s.abort(CauseClientLost, 0, 1001)
		}
	}
	s.maybeFinish()
}

// maybeFinish ends the session once neither side owes anything: the
// client's connection is closed then, the backend's when it has closed it.
func (s *Session) maybeFinish() {
	if !s.started || !s.client.done() || !s.backend.done() {
		return
	}
	if b := &s.backend; !b.lost && !b.eof {
		// RFC 6455 §7.1.1: the server closes TCP first. To the client
		// wsgate is the server and closes at once; to the backend it is
		// the client, and waits for the backend's FIN (within the close
		// deadline). Closing first would leave a TIME_WAIT on wsgate's
		// side for every session, which runs a proxy out of ephemeral
		// ports towards a busy backend.
		s.setCause(CauseClosed)
		if s.client.fd >= 0 {
			s.client.release()
		}
		b.sync()
		return
	}
	s.finish()
}

// finish closes both TCP connections and reports the session.
func (s *Session) finish() {
	if s.state.Swap(sessFinished) == sessFinished {
		return
	}
	s.setCause(CauseClosed)
	s.client.release()
	s.backend.release()
	s.c2b.dropCarry()
	s.b2c.dropCarry()
	s.r.sessions.remove(s)
	l := s.loop
	l.stats.SessionsActive.Add(-1)
	r := EndReport{
		Cause:         s.Cause(),
		CodeToClient:  s.codeToClient,
		CodeToBackend: s.codeToBackend,
		Duration:      time.Since(s.start),
		Frames:        [2]uint64{s.c2b.frames, s.b2c.frames},
		Bytes:         [2]uint64{s.c2b.bytes, s.b2c.bytes},
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
		s.params.OnEnd.SessionEnded(r)
	}
}

// adopt takes over one of the session's sockets (fd < 0: the connection
// was already gone), with the input read past the handshake. Any goroutine
// may call it; the session starts on its reactor once both sides are in.
func (s *Session) adopt(side Side, fd int, leftover []byte) {
	s.adoptOn(side, fd, joinAdd, leftover, false)
}

// joinKind is how a socket joins its session's epoll registration.
type joinKind uint8

const (
	joinAdd   joinKind = iota // not in the reactor's epoll set yet
	joinMod                   // in it: modified, which reports what came meanwhile
	joinQuiet                 // in it as a session's socket is, nothing unread (hsSocket.quiet)
)

// adoptOn is adopt for a socket that may be in the reactor's epoll set
// already (join), called on the reactor's goroutine (here) or not.
func (s *Session) adoptOn(side Side, fd int, join joinKind, leftover []byte, here bool) {
	if here {
		s.r.adopt(s, side, fd, join, leftover)
		return
	}
	s.r.post(func() { s.r.adopt(s, side, fd, join, leftover) })
}

func (r *reactor) adopt(s *Session, side Side, fd int, join joinKind, leftover []byte) {
	p := &s.client
	if side == SideBackend {
		p = &s.backend
	}
	p.leftover = leftover
	p.pendingFd = fd
	p.pendingJoin = join
	s.adopted++
	if s.adopted < 2 {
		r.waiting.add(s)
		return
	}
	r.waiting.remove(s)
	// Both sockets join the epoll set only now: a socket read before the
	// session starts would relay ahead of the 101 and of the other side.
	for _, p := range [2]*peer{&s.client, &s.backend} {
		if fd := p.pendingFd; fd >= 0 {
			p.pendingFd = -1
			var err error
			if p.pendingJoin == joinAdd {
				err = r.register(p, fd)
			} else {
				err = r.attach(p, fd, p.pendingJoin == joinQuiet)
			}
			if err != nil {
				r.l.log.Warn("adopt connection", "side", p.side.String(), "err", err.Error())
				unix.Close(fd)
			}
		}
		if p.fd < 0 {
			p.lost = true
		}
	}
	r.startSession(s)
}

// startSession runs a session whose two sockets are both in the reactor.
func (r *reactor) startSession(s *Session) {
	s.started = true
	r.sessions.add(s)
	s.lastActive, s.lastClient = r.now, r.now
	if r.stopping || r.l.isDraining() {
		s.abort(CauseShutdown, 1001, 1001)
	} else if dc := s.deferred; dc != nil {
		s.deferred = nil
		s.abort(dc.cause, dc.toClient, dc.toBackend)
	}
	if h := s.params.Head; h != nil {
		s.params.Head = nil
		s.client.send(h)
	}
	// Frames each side sent right behind the handshake.
	for _, p := range [2]*peer{&s.client, &s.backend} {
		if lo := p.leftover; lo != nil {
			p.leftover = nil
			p.from.relay(lo)
		}
	}
	for _, p := range [2]*peer{&s.client, &s.backend} {
		if p.lost && s.state.Load() != sessFinished {
			s.peerLost(p)
		}
	}
	s.maybeFinish()
}

// putMask fills a masking key for a frame wsgate sends to a backend.
// RFC 6455 wants keys a browser's script cannot predict; wsgate's frames
// carry no script-chosen bytes, so varied keys from the runtime's
// per-thread generator are enough and cost no lock.
func putMask(m *[4]byte) {
	v := rand.Uint32()
	m[0], m[1], m[2], m[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
