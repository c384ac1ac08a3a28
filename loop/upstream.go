package loop

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/netpoll"
)

const (
	upIdle int32 = iota // dialed, waiting in a warm pool or for its handshake
	upHandshake
	upHandoff // upgraded: the close callback hands the socket to a reactor
	upRelay
	upClosed
)

// Upstream is a TCP connection to a backend, dialed ahead of need (warm) or
// for one client. It serves one session: a WebSocket session ends its TCP
// connection.
//
// Until the session starts, the connection has no OnRequest: netpoll then
// wakes a goroutine blocked in Peek on the first bytes that arrive, so the
// handshake can read the backend's response where it is. A hang-up is
// still noticed, through OnDisconnect.
type Upstream struct {
	// mu orders the handshake's writes before netpoll frees the
	// connection's buffers: the close callback takes it, and netpoll runs
	// its own finalizer after the callbacks wsgate adds.
	mu     sync.Mutex
	closed bool // under mu

	conn netpoll.Connection
	addr string
	// handed is closed by the close callback that took the socket over
	// (fd, leftover) for a session.
	handed   chan struct{}
	fd       int
	leftover []byte
	state    atomic.Int32
	sess     atomic.Pointer[Session]
	onClose  atomic.Pointer[func()]
}

type onDisconnectSetter interface {
	SetOnDisconnect(netpoll.OnDisconnect) error
}

// Dial connects to a backend at addr within timeout and ctx's deadline.
func (l *Loop) Dial(ctx context.Context, addr string, timeout time.Duration) (*Upstream, error) {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout || timeout <= 0 {
			timeout = left
		}
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("dial %s: %w", addr, context.DeadlineExceeded)
	}
	conn, err := dialConn(addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	u := &Upstream{conn: conn, addr: addr, handed: make(chan struct{}), fd: -1}
	conn.AddCloseCallback(u.onClosed)
	if ds, ok := conn.(onDisconnectSetter); ok {
		ds.SetOnDisconnect(u.onDisconnect)
	}
	if !conn.IsActive() {
		conn.Close()
		return nil, fmt.Errorf("dial %s: closed by backend", addr)
	}
	return u, nil
}

// dialConn connects to addr within timeout. Backends are literal addresses
// in practice, which dialAddrPort connects to without netpoll's dialer; a
// host name (or an IPv6 address with a zone) goes through netpoll's, which
// resolves it.
func dialConn(addr string, timeout time.Duration) (netpoll.Connection, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Zone() == "" {
		return dialAddrPort(ap, timeout)
	}
	start := time.Now()
	conn, err := netpoll.DialConnection("tcp", addr, timeout)
	if err != nil && time.Since(start) >= timeout {
		// netpoll reports its timeout as a bare "i/o timeout", which the
		// dial metrics would count as an error.
		return nil, fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
	}
	return conn, err
}

// Addr is the backend address.
func (u *Upstream) Addr() string { return u.addr }

// Conn is the connection, for the handshake to write the request and read
// the response while it owns the upstream.
func (u *Upstream) Conn() netpoll.Connection { return u.conn }

// Claim takes an idle upstream for a handshake. It fails if the backend
// closed it, spoke before being asked (a backend in that state cannot serve
// a session), or another handshake took it.
func (u *Upstream) Claim() bool {
	if !u.conn.IsActive() || u.conn.Reader().Len() > 0 {
		return false
	}
	return u.state.CompareAndSwap(upIdle, upHandshake)
}

// OnClose sets a function called once the connection closes while it is
// not in a session (warm pools use it to replace the connection).
func (u *Upstream) OnClose(f func()) { u.onClose.Store(&f) }

// Close closes an upstream that will not be used.
func (u *Upstream) Close() {
	u.state.Store(upClosed)
	u.conn.Close()
}

// handOff makes the upstream the backend side of s: netpoll lets go of the
// connection and s's reactor gets its socket.
func (u *Upstream) handOff(s *Session) {
	u.sess.Store(s)
	if !u.state.CompareAndSwap(upHandshake, upHandoff) {
		// The backend hung up between its 101 and now.
		s.adopt(SideBackend, -1, nil)
		return
	}
	// With no OnRequest, netpoll runs the close callbacks here: ours takes
	// a duplicate of the socket and the input read so far; netpoll's own
	// then frees the poll operator, waiting out a read its poller may have
	// had in progress, and keeps a non-empty input buffer. Whatever that
	// read brought is collected after Close, so no byte the backend sent
	// behind its 101 is lost.
	u.conn.Close()
	<-u.handed
	leftover := u.leftover
	u.leftover = nil
	r := u.conn.Reader()
	if n := r.Len(); n > 0 {
		if b, err := r.Next(n); err == nil {
			leftover = append(leftover, b...)
		}
		r.Release()
	}
	s.adopt(SideBackend, u.fd, leftover)
}

// onDisconnect runs when the backend hangs up. Without an OnRequest netpoll
// leaves closing to its user, so that close callbacks run; in a session
// (OnRequest set) netpoll closes it itself after the last input is pumped.
func (u *Upstream) onDisconnect(context.Context, netpoll.Connection) {
	u.conn.Close()
}

// Send writes p to the backend and flushes it, unless the connection has
// closed. The handshake uses it while it owns the upstream.
func (u *Upstream) Send(p []byte) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return fmt.Errorf("write to %s: connection closed", u.addr)
	}
	w := u.conn.Writer()
	if _, err := w.WriteBinary(p); err != nil {
		return fmt.Errorf("write to %s: %w", u.addr, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write to %s: %w", u.addr, err)
	}
	return nil
}

func (u *Upstream) onClosed(conn netpoll.Connection) error {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	for {
		st := u.state.Load()
		if st == upHandoff {
			if !u.state.CompareAndSwap(upHandoff, upRelay) {
				continue
			}
			fd, leftover, err := takeOver(conn)
			if err != nil {
				u.sess.Load().loop.log.Warn("hand over backend connection", "addr", u.addr, "err", err.Error())
			}
			u.fd, u.leftover = fd, leftover
			close(u.handed)
			return nil
		}
		if st == upRelay || st == upClosed {
			break
		}
		if u.state.CompareAndSwap(st, upClosed) {
			break
		}
	}
	if u.state.Load() == upRelay {
		return nil
	}
	if f := u.onClose.Load(); f != nil {
		(*f)()
	}
	return nil
}
