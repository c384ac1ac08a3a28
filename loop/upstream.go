package loop

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cloudwego/netpoll"
)

const (
	upIdle int32 = iota // dialed, waiting in a warm pool or for its handshake
	upHandshake
	upRelay
	upClosed
)

// Upstream is a TCP connection to a backend, dialed ahead of need (warm) or
// for one client. It serves one session: a WebSocket session ends its TCP
// connection.
type Upstream struct {
	conn  netpoll.Connection
	addr  string
	state atomic.Int32
	sess  atomic.Pointer[Session]
	// ready is closed when the handshake phase ends; an OnRequest that
	// finds the handshake still reading waits on it instead of spinning.
	ready   chan struct{}
	onClose atomic.Pointer[func()]
}

// Dial connects to a backend at addr within timeout.
func (l *Loop) Dial(ctx context.Context, addr string, timeout time.Duration) (*Upstream, error) {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout = left
		}
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("dial %s: %w", addr, context.DeadlineExceeded)
	}
	conn, err := netpoll.DialConnection("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	u := &Upstream{conn: conn, addr: addr, ready: make(chan struct{})}
	// An OnRequest must be set for netpoll to run close callbacks when a
	// backend hangs up a connection nobody reads yet.
	conn.SetOnRequest(u.onRequest)
	conn.AddCloseCallback(u.closed)
	if !conn.IsActive() {
		return nil, fmt.Errorf("dial %s: closed by backend", addr)
	}
	return u, nil
}

// Addr is the backend address.
func (u *Upstream) Addr() string { return u.addr }

// Conn is the connection, for the handshake to write the request and read
// the response while it owns the upstream.
func (u *Upstream) Conn() netpoll.Connection { return u.conn }

// Alive reports whether the connection is still open and unused.
func (u *Upstream) Alive() bool {
	return u.state.Load() == upIdle && u.conn.IsActive()
}

// Claim takes an idle upstream for a handshake; it fails if the backend
// closed it or another handshake took it.
func (u *Upstream) Claim() bool {
	return u.conn.IsActive() && u.state.CompareAndSwap(upIdle, upHandshake)
}

// OnClose sets a function called once the connection closes while it is
// not in a session (warm pools use it to replace the connection).
func (u *Upstream) OnClose(f func()) { u.onClose.Store(&f) }

// Close closes an upstream that will not be used.
func (u *Upstream) Close() {
	if u.state.Swap(upClosed) == upHandshake {
		close(u.ready)
	}
	u.conn.Close()
}

func (u *Upstream) attach(s *Session) bool {
	u.sess.Store(s)
	ok := u.state.CompareAndSwap(upHandshake, upRelay)
	close(u.ready)
	return ok && u.conn.IsActive()
}

func (u *Upstream) onRequest(_ context.Context, conn netpoll.Connection) error {
	for {
		switch u.state.Load() {
		case upRelay:
			u.sess.Load().b2c.pump()
			return nil
		case upHandshake:
			// The handshake reads the response itself; wait until it is
			// done with the input.
			<-u.ready
			continue
		case upIdle:
			// A backend that speaks before it is asked is not fit to
			// serve a session.
			u.state.Store(upClosed)
			conn.Close()
		}
		r := conn.Reader()
		r.Skip(r.Len())
		r.Release()
		return nil
	}
}

func (u *Upstream) closed(netpoll.Connection) error {
	if s := u.sess.Load(); s != nil {
		s.backend.onClosed()
		return nil
	}
	if u.state.Swap(upClosed) == upHandshake {
		close(u.ready)
	}
	if f := u.onClose.Load(); f != nil {
		(*f)()
	}
	return nil
}
