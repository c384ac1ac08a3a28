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

// onEdge runs on the accepting reactor for each edge of the client's
// socket. The first edge with input starts the handshake on a goroutine of
// its own, as late as possible: a client that connects and says nothing
// costs no goroutine, only its place in the reactor's fresh list.
func (c *ClientConn) onEdge(events uint32) {
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
		n, e := rawRead(c.fd, buf[:])
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
	up.handOff(s)
	if c.r != up.r {
		// Accepted on another reactor: leave its set, so that only the
		// session's reactor sees the socket from now on.
		_ = rawEpollCtl(c.r.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		s.adopt(SideClient, c.fd, leftover)
	} else {
		s.adoptWatched(SideClient, c.fd, leftover)
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

// acceptBatch bounds the connections one reactor accepts per readiness, so
// that a burst of new clients does not hold up the sessions' relay; the
// listening socket is level-triggered and reports the rest at once.
const acceptBatch = 64

// acceptWatch is a listener's socket in one reactor's set.
type acceptWatch struct {
	ln     *Listener
	r      *reactor
	events uint32
	paused bool // out of the set for a tick: the process ran out of descriptors
}

// onEdge accepts what is pending, on the reactor.
func (w *acceptWatch) onEdge(uint32) {
	ln := w.ln
	ln.mu.RLock()
	defer ln.mu.RUnlock()
	if ln.closed || w.paused {
		return
	}
	r := w.r
	timeout := r.l.cfg.HandshakeTimeout
	for range acceptBatch {
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
			hsSocket: hsSocket{fd: fd, r: r, ready: make(chan struct{}, 1)},
			ln:       ln,
			deadline: time.Now().Add(timeout),
			remote:   remote,
		}
		if err := r.watch(fd, c, hsEvents); err != nil {
			r.l.log.Warn("accept", "addr", ln.addr.String(), "err", err.Error())
			rawClose(fd)
			continue
		}
		r.fresh.add(c)
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
