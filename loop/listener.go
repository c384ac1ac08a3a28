package loop

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/netpoll"
)

// Handshaker serves the HTTP upgrade of a new client connection. It runs on
// the connection's own OnRequest goroutine when the first bytes arrive, owns
// the connection until it returns, and may block until c.Deadline(). It ends
// either by calling c.Upgrade, after which the connection relays frames, or
// by answering with an HTTP error and returning; a connection that was not
// upgraded is closed when ServeHandshake returns.
type Handshaker interface {
	ServeHandshake(c *ClientConn)
}

const (
	ccNew int32 = iota
	ccHandshake
	ccHandoff // upgraded: the close callback hands the socket to a reactor
	ccRelay
	ccClosed
)

// ClientConn is an accepted client connection.
type ClientConn struct {
	conn     netpoll.Connection
	loop     *Loop
	state    atomic.Int32
	deadline time.Time
	timer    *time.Timer
	sess     atomic.Pointer[Session]
}

// Conn is the client's netpoll connection, for the handshake to read and
// write while it owns it.
func (c *ClientConn) Conn() netpoll.Connection { return c.conn }

// Deadline is when the handshake must be done.
func (c *ClientConn) Deadline() time.Time { return c.deadline }

// RemoteAddr is the client's address.
func (c *ClientConn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// Listener accepts client connections on one address.
type Listener struct {
	loop *Loop
	ln   netpoll.Listener
	evl  netpoll.EventLoop
	h    Handshaker
	once sync.Once
	done chan struct{}
}

// Addr is the address the listener accepts on.
func (ln *Listener) Addr() net.Addr { return ln.ln.Addr() }

type ctxKey struct{}

// Listen accepts WebSocket clients on addr and hands each to h.
func (l *Loop) Listen(addr string, h Handshaker) (*Listener, error) {
	if l.isDraining() {
		return nil, errDraining
	}
	npln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	ln := &Listener{loop: l, ln: npln, h: h, done: make(chan struct{})}
	evl, err := netpoll.NewEventLoop(ln.onRequest, netpoll.WithOnPrepare(ln.onPrepare))
	if err != nil {
		npln.Close()
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	ln.evl = evl
	go func() {
		defer close(ln.done)
		if err := evl.Serve(npln); err != nil {
			l.log.Debug("listener stopped", "addr", addr, "err", err)
		}
	}()
	l.mu.Lock()
	l.listeners = append(l.listeners, ln)
	l.mu.Unlock()
	return ln, nil
}

// onPrepare runs on the poller for every accepted connection. The timer
// closes a client that sends nothing at all: netpoll would never run its
// OnRequest.
func (ln *Listener) onPrepare(conn netpoll.Connection) context.Context {
	c := &ClientConn{conn: conn, loop: ln.loop}
	c.deadline = time.Now().Add(ln.loop.cfg.HandshakeTimeout)
	c.timer = time.AfterFunc(ln.loop.cfg.HandshakeTimeout, func() {
		if c.state.CompareAndSwap(ccNew, ccClosed) {
			conn.Close()
		}
	})
	conn.AddCloseCallback(c.onClosed)
	return context.WithValue(context.Background(), ctxKey{}, c)
}

// onClosed runs once netpoll has let go of the connection: after an upgrade
// it hands the socket to the session's reactor.
func (c *ClientConn) onClosed(conn netpoll.Connection) error {
	c.timer.Stop()
	for {
		switch st := c.state.Load(); st {
		case ccHandoff:
			if !c.state.CompareAndSwap(ccHandoff, ccRelay) {
				continue
			}
			s := c.sess.Load()
			fd, leftover, err := takeOver(conn)
			if err != nil {
				c.loop.log.Warn("hand over client connection", "err", err.Error())
			}
			s.adopt(SideClient, fd, leftover)
			return nil
		case ccRelay, ccClosed:
			return nil
		default:
			if c.state.CompareAndSwap(st, ccClosed) {
				return nil
			}
		}
	}
}

func (ln *Listener) onRequest(ctx context.Context, conn netpoll.Connection) error {
	c, _ := ctx.Value(ctxKey{}).(*ClientConn)
	if c == nil {
		return conn.Close()
	}
	if !c.state.CompareAndSwap(ccNew, ccHandshake) {
		r := conn.Reader()
		r.Skip(r.Len())
		r.Release()
		return nil
	}
	c.timer.Stop()
	ln.h.ServeHandshake(c)
	if c.sess.Load() != nil {
		// Upgraded: the connection was closed on netpoll's side, and its
		// close callback passes the socket on when this returns.
		return nil
	}
	c.state.CompareAndSwap(ccHandshake, ccClosed)
	r := conn.Reader()
	r.Skip(r.Len())
	r.Release()
	return conn.Close()
}

// stopAccepting closes the listening socket; sessions stay.
func (ln *Listener) stopAccepting() {
	ln.once.Do(func() { ln.ln.Close() })
}

// close stops the event loop once no session is left.
func (ln *Listener) close() {
	ln.stopAccepting()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = ln.evl.Shutdown(ctx)
}

// Upgrade switches c and up to frame relay. The handshake calls it after it
// has relayed the backend's 101 and consumed both heads from the inputs;
// bytes that follow them are the sessions' first frames. The session runs
// on the reactor that has watched the backend's socket since its dial; the
// client's socket moves there from netpoll.
func (c *ClientConn) Upgrade(up *Upstream, p SessionParams) (*Session, error) {
	l := c.loop
	s := &Session{loop: l, r: up.r, params: p, start: time.Now()}
	s.initPeers()
	l.stats.SessionsActive.Add(1)
	c.sess.Store(s)
	up.handOff(s)
	if c.state.CompareAndSwap(ccHandshake, ccHandoff) {
		// Inside the handshake's OnRequest netpoll defers the close
		// callback until that returns.
		c.conn.Close()
	} else {
		// The client left during the handshake.
		s.adopt(SideClient, -1, nil)
	}
	return s, nil
}
