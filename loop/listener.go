package loop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Handshaker serves the HTTP upgrade of a new client connection. It runs on
// a goroutine of its own, started when the client's first bytes arrive,
// owns the connection until it returns, and may block until c.Deadline().
// It ends either by calling c.Upgrade, after which the connection relays
// frames, or by answering with an HTTP error and returning; a connection
// that was not upgraded is closed when ServeHandshake returns.
type Handshaker interface {
	ServeHandshake(c *ClientConn)
}

// ReactorHandshaker is a Handshaker that takes the first steps of a
// handshake on the reactor, where a goroutine would cost more than the
// steps: on loopback and in a data centre, a request that arrives whole
// and a warm connection to a backend on the same reactor
// (ClientConn.SameReactor) make an upgrade that never waits but for the
// backend's answer (ClientConn.AwaitAnswer).
type ReactorHandshaker interface {
	Handshaker
	// StartHandshake runs on the accepting reactor at the client's first
	// input, which is there to read (ClientConn.TryFill). It must not
	// block. It owns c from then on, and ends by upgrading c from an
	// awaited answer, or by handing the rest of the handshake to a
	// goroutine (ClientConn.Go), which may block as ServeHandshake does.
	StartHandshake(c *ClientConn)
}

const (
	ccNew       int32 = iota // accepted, nothing received: the reactor's
	ccHandshake              // the handshake's goroutine owns it
	ccRelay                  // upgraded: the session's
	ccClosed
)

// ClientConn is an accepted client connection in its handshake. The reactor
// that accepted it watches its socket and wakes the handshake's goroutine,
// which reads and writes the socket itself (Fill, Write).
type ClientConn struct {
	hsSocket
	ln       *Listener
	state    atomic.Int32
	deadline time.Time
	remote   netip.AddrPort
	addr     net.Addr // remote as a net.Addr, made when first asked
	freshIdx int      // in the reactor's list of clients that sent nothing yet
	// handOff: the handshake's rest, for a goroutine that starts when the
	// reactor's callback at hand returns (Go).
	handOff func()
}

// Deadline is when the handshake must be done.
func (c *ClientConn) Deadline() time.Time { return c.deadline }

// RemoteAddrPort is the client's address.
func (c *ClientConn) RemoteAddrPort() netip.AddrPort { return c.remote }

// RemoteAddr is the client's address as a net.Addr.
func (c *ClientConn) RemoteAddr() net.Addr {
	if c.addr == nil {
		c.addr = net.TCPAddrFromAddrPort(c.remote)
	}
	return c.addr
}

// Fill reads more of what the client sends, waiting until the handshake's
// deadline (os.ErrDeadlineExceeded) for it; io.EOF when the client has
// closed its side. The buffer starts at 4 KiB and grows up to limit bytes.
func (c *ClientConn) Fill(limit int) error {
	if err := c.fill(c.deadline, limit, false); err != nil {
		if err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		return fmt.Errorf("read from client: %w", err)
	}
	return nil
}

// Write sends p to the client before the handshake's deadline.
func (c *ClientConn) Write(p []byte) error {
	if err := c.write(p, c.deadline, hsEvents); err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

// Alive reports whether the client still has its side of the connection
// open. It asks the kernel, so it costs a system call.
func (c *ClientConn) Alive() bool { return !c.peerGone(false) }

// ErrWouldBlock: there is nothing to read now (TryFill).
var ErrWouldBlock = errWouldBlock

// TryFill reads what the client has sent, without waiting: ErrWouldBlock
// when there is nothing, io.EOF when the client closed its side. The
// buffer grows up to limit bytes, as with Fill. For StartHandshake.
func (c *ClientConn) TryFill(limit int) error {
	if err := c.tryFill(limit); err != nil {
		if err == io.EOF || err == errWouldBlock || errors.Is(err, errBufferFull) {
			return err
		}
		return fmt.Errorf("read from client: %w", err)
	}
	return nil
}

// SameReactor reports whether up is watched by the reactor that watches c,
// so that an answer awaited on it can upgrade c there (AwaitAnswer).
func (c *ClientConn) SameReactor(up *Upstream) bool { return c.r == up.r }

// DialNow starts a connection to a backend at ap (addr names it in
// errors), watched by the reactor that watches c, without waiting:
// connected says that the connect has completed, as on loopback and in a
// data centre it has, as a rule, and the upstream is idle (Claim). If not,
// a goroutine waits for it with Upstream.AwaitConnected. StartHandshake
// dials so when no warm connection is ready, to send the request at once.
func (c *ClientConn) DialNow(ap netip.AddrPort, addr string) (up *Upstream, connected bool, err error) {
	up, connected, err = startDial(c.r, addr, ap)
	if err != nil {
		return nil, false, fmt.Errorf("dial %s: %w", addr, err)
	}
	if connected {
		// Nothing waited, so no edge was taken: a backend that hung up at
		// once is reported by the next one.
		up.state.Store(upIdle)
	}
	return up, connected, nil
}

// AwaitAnswer has answer called on the reactor, instead of a goroutine
// woken, at each edge of up's socket, and once with expired true when the
// tick finds c's deadline passed, until it returns false. It is for
// StartHandshake, which has claimed up and sent it the request: c and up
// must be on the same reactor, which runs the call. answer must not
// block: it reads with up.TryFill and ends by upgrading c, by handing the
// handshake to a goroutine (Go), or returns true to wait for more.
func (c *ClientConn) AwaitAnswer(up *Upstream, answer func(expired bool) bool) {
	if c.r != up.r || up.answer != nil {
		panic("loop: AwaitAnswer on another reactor's upstream, or twice")
	}
	up.answer, up.answerFor = answer, c
	c.r.awaiting.add(up)
}

// Go hands the rest of the handshake to a goroutine of its own, which owns
// c from then on as ServeHandshake does: f runs once the reactor's callback
// at hand (StartHandshake or an answer) has returned, and c is closed when
// f returns without having upgraded it.
func (c *ClientConn) Go(f func()) { c.handOff = f }

// startHandedOff starts the goroutine that Go asked for, if any; the
// reactor calls it after StartHandshake and each awaited answer.
func (c *ClientConn) startHandedOff() {
	if f := c.handOff; f != nil {
		c.handOff = nil
		c.r.readied = true
		go c.ln.serveWith(c, f)
	}
}

// onEdge runs on the accepting reactor for each edge of the client's
// socket. The first edge with input starts the handshake on a goroutine of
// its own, as late as possible: a client that connects and says nothing
// costs no goroutine, only its place in the reactor's fresh list.
func (c *ClientConn) onEdge(events uint32) {
	c.noteEdge(events)
	switch c.state.Load() {
	case ccNew:
		c.r.fresh.remove(c)
		if events&unix.EPOLLIN == 0 || events&unix.EPOLLRDHUP != 0 && c.peerGone(false) {
			// Failed, or hung up without a byte.
			c.state.Store(ccClosed)
			c.release()
			return
		}
		c.state.Store(ccHandshake)
		if rh, ok := c.ln.h.(ReactorHandshaker); ok {
			rh.StartHandshake(c)
			c.startHandedOff()
			return
		}
		c.r.readied = true
		go c.ln.serve(c)
	case ccHandshake:
		c.signal()
	}
}

// release takes the socket out of the reactor's watch and closes it.
func (c *ClientConn) release() {
	c.r.unwatch(c.fd, c)
	rawClose(c.fd)
	c.putInput()
}

// discardInput reads what the client sent and nobody will read, so that
// closing the socket sends a FIN behind the answer, not a reset that could
// overtake it.
func (c *ClientConn) discardInput() {
	var buf [2048]byte
	for range 32 {
		n, e := sockRecv(c.fd, buf[:])
		if n <= 0 && e != unix.EINTR {
			return
		}
	}
}

// Upgrade switches c and up to frame relay. The handshake calls it after it
// has received the backend's 101 and consumed both heads from the inputs;
// bytes that follow them are the sessions' first frames. The session runs
// on the reactor that has watched the backend's socket since its dial; the
// client's socket joins it there.
func (c *ClientConn) Upgrade(up *Upstream, p SessionParams) (*Session, error) {
	l := c.ln.loop
	s := &Session{loop: l, r: up.r, params: p, start: time.Now()}
	s.initPeers()
	l.stats.SessionsActive.Add(1)
	c.state.Store(ccRelay)
	leftover := c.takeInput()
	c.r.unwatch(c.fd, c)
	// From an awaited answer, this is the session's reactor, and the
	// session starts, writing Head, before Upgrade returns; otherwise it
	// starts later and needs Head of its own.
	here := up.inAnswer
	if !here && p.Head != nil {
		s.params.Head = append([]byte(nil), p.Head...)
	}
	defer up.putInput() // Head may be in it
	up.handOff(s, here)
	switch {
	case c.r != up.r:
		// Accepted on another reactor: leave its set, so that only the
		// session's reactor sees the socket from now on.
		_ = rawEpollCtl(c.r.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		s.adoptOn(SideClient, c.fd, joinAdd, leftover, here)
	case here && c.quiet():
		s.adoptOn(SideClient, c.fd, joinQuiet, leftover, here)
	default:
		s.adoptOn(SideClient, c.fd, joinMod, leftover, here)
	}
	return s, nil
}

// Listener accepts client connections on one address. Its socket is in
// every reactor's epoll set (EPOLLEXCLUSIVE when there are several, so that
// one reactor wakes per new connection); the reactor that accepts a client
// watches it through its handshake.
type Listener struct {
	loop    *Loop
	fd      int
	addr    net.Addr
	h       Handshaker
	watches []*acceptWatch

	// mu: the accepting reactors hold it for reading while they accept;
	// stopAccepting takes it to close the socket, so that no reactor
	// accepts on a descriptor number that meanwhile names another socket.
	mu     sync.RWMutex
	closed bool
}

// Addr is the address the listener accepts on.
func (ln *Listener) Addr() net.Addr { return ln.addr }

// Listen accepts WebSocket clients on addr and hands each to h.
func (l *Loop) Listen(addr string, h Handshaker) (*Listener, error) {
	if l.isDraining() {
		return nil, errDraining
	}
	fd, bound, err := openListener(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	ln := &Listener{loop: l, fd: fd, addr: bound, h: h}
	events := uint32(unix.EPOLLIN)
	if len(l.reactors) > 1 {
		events |= unix.EPOLLEXCLUSIVE
	}
	for _, r := range l.reactors {
		w := &acceptWatch{ln: ln, r: r, events: events}
		if err := r.watch(fd, w, events); err != nil {
			ln.stopAccepting()
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		ln.watches = append(ln.watches, w)
	}
	l.mu.Lock()
	l.listeners = append(l.listeners, ln)
	l.mu.Unlock()
	return ln, nil
}

// serve runs the handshake of c on its own goroutine.
func (ln *Listener) serve(c *ClientConn) {
	ln.h.ServeHandshake(c)
	c.handshakeReturned()
}

// serveWith runs f, the rest of the handshake of c, on its own goroutine.
func (ln *Listener) serveWith(c *ClientConn, f func()) {
	f()
	c.handshakeReturned()
}

// handshakeReturned closes c unless the handshake upgraded it.
func (c *ClientConn) handshakeReturned() {
	if c.state.Load() == ccRelay {
		return
	}
	c.state.Store(ccClosed)
	c.discardInput()
	c.release()
}

// stopAccepting closes the listening socket; sessions and handshakes stay.
func (ln *Listener) stopAccepting() {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.closed {
		return
	}
	ln.closed = true
	for _, w := range ln.watches {
		// A reactor already stopped has closed its set; nothing to undo.
		_ = rawEpollCtl(w.r.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
		w.r.unwatch(ln.fd, w)
	}
	rawClose(ln.fd)
}

// acceptRetries bounds the accepts one readiness makes when a pending
// connection was reset before it could be taken (ECONNABORTED) or a signal
// came (EINTR).
const acceptRetries = 8

// acceptWatch is a listener's socket in one reactor's set.
type acceptWatch struct {
	ln     *Listener
	r      *reactor
	events uint32
	paused bool // out of the set for a tick: the process ran out of descriptors
}

// onEdge accepts one pending connection, on the reactor. The listening
// socket is level-triggered, so the next wait reports it again while more
// are pending: a burst of new clients is taken one per turn of the loop,
// between the sessions' relay, and, unlike accepting until EAGAIN, no
// accept comes back empty (two in three upgrades made one at C=50).
func (w *acceptWatch) onEdge(uint32) {
	ln := w.ln
	ln.mu.RLock()
	defer ln.mu.RUnlock()
	if ln.closed || w.paused {
		return
	}
	r := w.r
	timeout := r.l.cfg.HandshakeTimeout
	for range acceptRetries {
		fd, remote, e := rawAccept(ln.fd)
		switch e {
		case 0:
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED, unix.EPERM, unix.EPROTO:
			continue
		default:
			// Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
			// ENOMEM), or anything unforeseen. Level-triggered, the
			// socket would report the same pending connection at once,
			// forever: leave the set until the next tick, when sessions
			// may have ended and freed what was missing.
			r.l.log.Warn("accept paused", "addr", ln.addr.String(), "err", fmt.Errorf("accept4: %w", e).Error(),
				"retry_in", time.Duration(tickEvery).String())
			_ = rawEpollCtl(r.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
			w.paused = true
			r.pausedAccepts = append(r.pausedAccepts, w)
			return
		}
		c := &ClientConn{
			hsSocket: hsSocket{fd: fd, r: r},
			ln:       ln,
			deadline: time.Now().Add(timeout),
			remote:   remote,
		}
		// More may be pending, and whether the kernel wakes Go's poller
		// on epfd for a level-triggered socket reported before is not
		// to be relied on: a parked reactor asks again first.
		r.more = true
		if err := r.watch(fd, c, hsEvents); err != nil {
			r.l.log.Warn("accept", "addr", ln.addr.String(), "err", err.Error())
			rawClose(fd)
			return
		}
		r.fresh.add(c)
		return
	}
}

// resume puts a paused listener back into the set.
func (w *acceptWatch) resume() {
	w.ln.mu.RLock()
	defer w.ln.mu.RUnlock()
	w.paused = false
	if w.ln.closed {
		return
	}
	ev := unix.EpollEvent{Events: w.events, Fd: int32(w.ln.fd)}
	if e := rawEpollCtl(w.r.epfd, unix.EPOLL_CTL_ADD, w.ln.fd, &ev); e != 0 {
		w.r.l.log.Error("accept resume", "addr", w.ln.addr.String(), "err", fmt.Errorf("epoll_ctl add: %w", e).Error())
	}
}

// expireFresh closes accepted clients that have sent nothing within the
// handshake timeout. It runs on the reactor's tick: a client that never
// speaks costs no timer of its own.
func (r *reactor) expireFresh() {
	now := time.Now()
	for i := len(r.fresh.items) - 1; i >= 0; i-- {
		if i >= len(r.fresh.items) {
			continue
		}
		c := r.fresh.items[i]
		if now.Before(c.deadline) {
			continue
		}
		r.fresh.remove(c)
		c.state.Store(ccClosed)
		c.release()
		if r.l.log.Enabled(context.Background(), slog.LevelDebug) {
			r.l.log.Debug("client sent nothing within the handshake timeout", "client", c.RemoteAddr().String())
		}
	}
	for i := len(r.awaiting.items) - 1; i >= 0; i-- {
		if i >= len(r.awaiting.items) {
			continue
		}
		if u := r.awaiting.items[i]; !now.Before(u.answerFor.deadline) {
			u.runAnswer(true)
		}
	}
	for _, w := range r.pausedAccepts {
		w.resume()
	}
	clear(r.pausedAccepts)
	r.pausedAccepts = r.pausedAccepts[:0]
}

// closeFresh closes the clients that have sent nothing, as the reactor
// stops.
func (r *reactor) closeFresh() {
	for len(r.fresh.items) > 0 {
		c := r.fresh.items[len(r.fresh.items)-1]
		r.fresh.remove(c)
		c.state.Store(ccClosed)
		c.release()
	}
}

// closeAwaiting closes the handshakes that await their backend's answer on
// the reactor, as it stops: nobody will run their answers any more.
func (r *reactor) closeAwaiting() {
	for len(r.awaiting.items) > 0 {
		u := r.awaiting.items[len(r.awaiting.items)-1]
		c := u.answerFor
		u.stopAwaiting()
		u.Close()
		c.state.Store(ccClosed)
		c.release()
	}
}
