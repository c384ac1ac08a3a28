package loop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	upDialing   int32 = iota // connecting: the dialer owns the socket
	upIdle                   // connected, waiting in a warm pool or for its handshake
	upHandshake              // claimed: the handshake owns the socket
	upRelay                  // handed to a session
	upClosed
)

// Upstream is a TCP connection to a backend, dialed ahead of need (warm) or
// for one client. It serves one session: a WebSocket session ends its TCP
// connection.
//
// Its socket belongs to one reactor from the dial on, and the session it
// serves runs there: while the handshake uses it, the reactor only wakes
// the handshake's goroutine (Fill, Send), and at the upgrade it starts
// relaying on the same registration, so an upgrade costs no handover of
// the backend's socket.
type Upstream struct {
	hsSocket
	addr string

	state   atomic.Int32
	onClose atomic.Value // IdleCloseHandler

	// answerDue: a request went out since the last read, whose answer
	// will come with an edge. Waiting for the edge before reading saves a
	// read that would find nothing on all but a backend next door.
	answerDue bool

	// A handshake on the reactor awaiting the backend's answer
	// (ClientConn.AwaitAnswer); owned by the reactor.
	answer    func(expired bool) bool
	answerFor *ClientConn
	inAnswer  bool // answer is running: an Upgrade from it runs here
	awaitIdx  int  // in the reactor's awaiting list
}

// Dial connects to a backend at addr within timeout and ctx's deadline.
// Backends are literal addresses in practice; a host name is resolved
// first, and its addresses are tried in turn.
func (l *Loop) Dial(ctx context.Context, addr string, timeout time.Duration) (*Upstream, error) {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout || timeout <= 0 {
			timeout = left
		}
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("dial %s: %w", addr, context.DeadlineExceeded)
	}
	deadline := time.Now().Add(timeout)
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		u, err := l.dialAddrPort(addr, ap, deadline, timeout)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		return u, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	aps, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
			return nil, fmt.Errorf("dial %s: resolve: %w (%w)", addr, err, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("dial %s: resolve: %w", addr, err)
	}
	pn, err := net.DefaultResolver.LookupPort(rctx, "tcp", port)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var lastErr error
	for _, ip := range aps {
		u, err := l.dialAddrPort(addr, netip.AddrPortFrom(ip, uint16(pn)), deadline, timeout)
		if err == nil {
			return u, nil
		}
		lastErr = err
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no address")
	}
	return nil, fmt.Errorf("dial %s: %w", addr, lastErr)
}

// dialAddrPort connects to ap with a socket that one of the loop's
// reactors watches from the start. On loopback and fast LANs the connect
// has completed before anyone could wait for it, so it asks first and
// waits (parked on the reactor's edge, not on a thread) only when it must.
func (l *Loop) dialAddrPort(addr string, ap netip.AddrPort, deadline time.Time, timeout time.Duration) (*Upstream, error) {
	u, connected, err := startDial(l.pickReactor(), addr, ap)
	if err != nil {
		return nil, err
	}
	if err := u.awaitConnect(connected, deadline, timeout); err != nil {
		return nil, err
	}
	return u, nil
}

// startDial opens a socket to ap, watched by r, and starts its connect.
func startDial(r *reactor, addr string, ap netip.AddrPort) (u *Upstream, connected bool, err error) {
	fd, connected, err := startConnect(ap)
	if err != nil {
		return nil, false, err
	}
	u = &Upstream{hsSocket: hsSocket{fd: fd, r: r}, addr: addr}
	events := uint32(hsEvents)
	if !connected {
		events |= unix.EPOLLOUT
	}
	if err := r.watch(fd, u, events); err != nil {
		unix.Close(fd)
		return nil, false, err
	}
	return u, connected, nil
}

// awaitConnect waits until deadline for the connect startDial started,
// and makes the upstream idle; on failure it closes it.
func (u *Upstream) awaitConnect(connected bool, deadline time.Time, timeout time.Duration) error {
	fd := u.fd
	waited := false
	for !connected {
		revents, err := pollOut(fd)
		if err != nil {
			u.release()
			return err
		}
		if revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			err := connectError(fd)
			u.release()
			return err
		}
		if revents&unix.POLLOUT != 0 {
			break
		}
		// A socket still in SYN_SENT polls as nothing at all.
		waited = true
		if err := u.wait(deadline); err != nil {
			u.release()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("connect: no answer within %v: %w", timeout, context.DeadlineExceeded)
			}
			return err
		}
	}
	u.state.Store(upIdle)
	// Edges while dialing were the dialer's to take: a backend that
	// accepted and hung up at once sent its FIN with one of them (or in
	// the same edge as the connect), and the reactor, edge-triggered, will
	// not report it again. Without a wait, a left-over edge says so.
	edge := u.takeEdge() || waited
	if edge && u.peerGone(true) && u.state.CompareAndSwap(upIdle, upClosed) {
		u.release()
		return errors.New("closed by backend as it connected")
	}
	return nil
}

// AwaitConnected waits until deadline for the connect that
// ClientConn.DialNow started, on a goroutine; the upstream is then idle
// (Claim). On failure it is closed.
func (u *Upstream) AwaitConnected(deadline time.Time) error {
	if err := u.awaitConnect(false, deadline, time.Until(deadline).Round(time.Millisecond)); err != nil {
		return fmt.Errorf("dial %s: %w", u.addr, err)
	}
	return nil
}

// Addr is the backend address.
func (u *Upstream) Addr() string { return u.addr }

// Claim takes an idle upstream for a handshake. It fails if the backend
// closed it (or spoke before being asked: a backend in that state cannot
// serve a session), or another handshake took it.
func (u *Upstream) Claim() bool {
	return u.state.CompareAndSwap(upIdle, upHandshake)
}

// IdleCloseHandler is told, on the reactor's goroutine, that a backend
// closed a connection while it waited idle (warm pools use it to replace
// the connection). It must not block.
type IdleCloseHandler interface {
	IdleClosed(*Upstream)
}

// OnClose sets who is told if the backend closes the connection while it
// waits idle. An interface rather than a func: a pool's handler is one
// value for all its connections, where a closure per connection cost
// every upgrade two allocations.
func (u *Upstream) OnClose(h IdleCloseHandler) { u.onClose.Store(h) }

// Close closes an upstream that will not be used. An upstream in a session
// is the session's to close.
func (u *Upstream) Close() {
	for {
		st := u.state.Load()
		if st == upRelay || st == upClosed {
			return
		}
		if u.state.CompareAndSwap(st, upClosed) {
			u.release()
			return
		}
	}
}

// release takes the socket out of its reactor's watch and closes it; the
// caller has moved the state to upClosed (or owns a socket still dialing).
// Closing the only descriptor of the socket also takes it out of the epoll
// set; an edge the reactor already took for it finds no upstream, or
// another socket that got the same number, which the owner of that one
// tolerates as a spurious wake-up.
func (u *Upstream) release() {
	u.r.unwatch(u.fd, u)
	rawClose(u.fd)
	u.putInput()
}

// Send writes p to the backend before deadline. The handshake uses it while
// it owns the upstream.
func (u *Upstream) Send(p []byte, deadline time.Time) error {
	if err := u.write(p, deadline, hsEvents); err != nil {
		return fmt.Errorf("write to %s: %w", u.addr, err)
	}
	u.answerDue = true
	return nil
}

// SendNow writes to the backend what its socket takes of p now, without
// waiting; the rest, if any, is for Send.
func (u *Upstream) SendNow(p []byte) (int, error) {
	n, err := u.tryWrite(p)
	if n > 0 {
		u.answerDue = true
	}
	if err != nil {
		return n, fmt.Errorf("write to %s: %w", u.addr, err)
	}
	return n, nil
}

// TryFill reads what the backend has sent, without waiting: ErrWouldBlock
// when there is nothing yet, io.EOF when it closed the connection. The
// buffer grows up to limit bytes, as with Fill.
func (u *Upstream) TryFill(limit int) error {
	u.answerDue = false
	if err := u.tryFill(limit); err != nil {
		if err == io.EOF || err == errWouldBlock {
			return err
		}
		return fmt.Errorf("read from %s: %w", u.addr, err)
	}
	return nil
}

// Fill reads more of what the backend sends, waiting until deadline for it.
// The buffer starts at 4 KiB and grows, when full, up to limit bytes; past
// that Fill fails. It returns io.EOF when the backend has closed the
// connection.
func (u *Upstream) Fill(deadline time.Time, limit int) error {
	due := u.answerDue
	u.answerDue = false
	if err := u.fill(deadline, limit, due); err != nil {
		if err == io.EOF {
			return err
		}
		return fmt.Errorf("read from %s: %w", u.addr, err)
	}
	return nil
}

// handOff makes the upstream the backend side of s, which runs on the
// upstream's reactor; what the backend sent behind its 101 is the
// session's first input from it. here: the caller runs on that reactor.
func (u *Upstream) handOff(s *Session, here bool) {
	if !u.state.CompareAndSwap(upHandshake, upRelay) {
		s.adoptOn(SideBackend, -1, joinAdd, nil, here)
		return
	}
	join := joinMod
	if here && u.quiet() {
		join = joinQuiet
	}
	// The input buffer stays until Upgrade is done with it: it may hold
	// the session's Head.
	leftover := u.copyInput()
	u.r.unwatch(u.fd, u)
	s.adoptOn(SideBackend, u.fd, join, leftover, here)
}

// onEdge runs on the reactor for an edge of the upstream's socket.
func (u *Upstream) onEdge(events uint32) {
	u.noteEdge(events)
	switch u.state.Load() {
	case upRelay, upClosed:
		return
	case upHandshake:
		if u.answer != nil {
			u.runAnswer(false)
			return
		}
	case upIdle:
		if u.peerGone(true) && u.state.CompareAndSwap(upIdle, upClosed) {
			u.release()
			if h, _ := u.onClose.Load().(IdleCloseHandler); h != nil {
				h.IdleClosed(u)
			}
			return
		}
		// Quiet, or claimed since: the edge may be the claimer's.
	}
	u.signal()
}

// runAnswer calls the answer awaited on the reactor and forgets it once it
// is done with.
func (u *Upstream) runAnswer(expired bool) {
	f, c := u.answer, u.answerFor
	u.inAnswer = true
	more := f(expired)
	u.inAnswer = false
	if !more || expired {
		u.stopAwaiting()
	}
	c.startHandedOff()
}

func (u *Upstream) stopAwaiting() {
	if u.answer == nil {
		return
	}
	u.answer, u.answerFor = nil, nil
	u.r.awaiting.remove(u)
}
