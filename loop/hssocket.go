package loop

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// edgeWatcher is a socket in a reactor's epoll set that no session owns
// yet: a listening socket, a client in its handshake, an upstream being
// dialed or waiting warm. The reactor calls onEdge, on its goroutine, for
// each readiness of the socket; it must not block.
type edgeWatcher interface {
	onEdge(events uint32)
}

// hsSocket is a socket between its accept or dial and its session: one
// goroutine at a time owns it (the dialer, the handshake) and reads and
// writes it directly, while the reactor, which watches it edge-triggered,
// only passes each edge on (edge, ready). Clients and upstreams share it.
type hsSocket struct {
	fd int
	r  *reactor
	// edge: the reactor passed on an edge that the owner has not taken.
	edge atomic.Bool
	// waiting: the owner is parked on ready, or about to be; the reactor
	// then wakes it through ready, and yields its P to it (readied): an
	// owner still running elsewhere would find the edge without parking.
	// An owner sets waiting after it made ready and before it looks at
	// edge, the reactor sets edge before it looks at waiting, so one of
	// them sees the other's: no edge is missed.
	waiting atomic.Bool
	// ready is made by the owner's first wait: a handshake that runs on
	// the reactor never waits, and a channel for every socket cost each
	// upgrade two allocations. The reactor reads it only once it has seen
	// waiting set. It may hold a wake-up for an edge already taken.
	ready chan struct{}

	// Owned by whoever owns the socket.
	in  []byte // read, not yet consumed: in[off:]
	off int
	// pooled is inputPool's holder of in's array while in is a pooled
	// buffer: putting it back as it came costs no allocation, where a
	// fresh pointer to in would.
	pooled *[]byte
	timer  *time.Timer
	// outArmed: the socket is watched for EPOLLOUT too, since a write
	// found its send buffer full.
	outArmed bool
	// drained: the last read (tryFill) took all the kernel held.
	drained bool
	// hup: an edge reported the peer's hang-up or an error. Set and read
	// on the reactor only (see quiet).
	hup bool
}

// hsEvents is how a reactor watches a socket before its session:
// edge-triggered, so that input the owner has not read yet does not wake
// the reactor again and again.
const hsEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// quiet says that the socket has nothing unread and no edge untaken: its
// last read took all the kernel held, and no edge has come since. Such a
// socket joins its session as it is watched (edge-triggered, for input and
// hang-up, like a session's socket) with no epoll_ctl. Only the reactor,
// owning the socket, may ask.
func (h *hsSocket) quiet() bool {
	return h.drained && !h.hup && !h.outArmed && !h.edge.Load()
}

// noteEdge records what quiet needs of an edge; the reactor calls it.
func (h *hsSocket) noteEdge(events uint32) {
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		h.hup = true
	}
}

// signal passes an edge on to the owner; the reactor calls it.
func (h *hsSocket) signal() {
	h.edge.Store(true)
	if !h.waiting.Load() {
		return // the owner looks at edge before it parks
	}
	select {
	case h.ready <- struct{}{}:
		h.r.readied = true
	default: // one pending wake-up is enough: the owner reads to EAGAIN
	}
}

// takeEdge reports whether an edge came since the owner last took one.
func (h *hsSocket) takeEdge() bool { return h.edge.Swap(false) }

// inputPool holds the handshake's read buffers: a socket has none until its
// handshake reads, and gives it back when its session starts.
var inputPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// Buffered is what the other end sent that has not been consumed.
func (h *hsSocket) Buffered() []byte { return h.in[h.off:] }

// Consume drops the first n buffered bytes.
func (h *hsSocket) Consume(n int) {
	h.off += n
	if h.off == len(h.in) {
		h.in, h.off = h.in[:0], 0
	}
}

// errBufferFull: Fill was asked to keep more than its limit.
var errBufferFull = errors.New("buffer full")

// fill reads more of what the other end sends, waiting until deadline for
// it; see Upstream.Fill. wait says an edge is due before anything can be
// read (a request just went out), which saves a read that would find
// nothing.
func (h *hsSocket) fill(deadline time.Time, limit int, wait bool) error {
	h.drained = false
	if err := h.makeRoom(limit); err != nil {
		return err
	}
	if wait {
		if err := h.wait(deadline); err != nil {
			return err
		}
	}
	for {
		n, e := sockRecv(h.fd, h.in[len(h.in):cap(h.in)])
		if n > 0 {
			h.in = h.in[:len(h.in)+n]
			return nil
		}
		switch {
		case n == 0 && e == 0:
			return io.EOF
		case e == unix.EINTR:
			continue
		case e != unix.EAGAIN:
			return e
		}
		if err := h.wait(deadline); err != nil {
			return err
		}
	}
}

// errWouldBlock: the socket has nothing to read, or no room to write, now.
var errWouldBlock = errors.New("would block")

// tryFill reads what the other end has sent without waiting: nil when it
// read anything, errWouldBlock when there was nothing. A read that leaves
// room in the buffer has taken all the kernel held, so the next input
// comes with a new edge; a read that fills it is followed by another.
func (h *hsSocket) tryFill(limit int) error {
	read := false
	h.drained = false
	for {
		if err := h.makeRoom(limit); err != nil {
			if read {
				return nil
			}
			return err
		}
		room := cap(h.in) - len(h.in)
		n, e := sockRecv(h.fd, h.in[len(h.in):cap(h.in)])
		switch {
		case n > 0:
			h.in = h.in[:len(h.in)+n]
			read = true
			if n < room {
				h.drained = true
				return nil
			}
			continue
		case read:
			// What was read first; an error or the end comes again at
			// the next read.
			h.drained = e == unix.EAGAIN
			return nil
		case n == 0 && e == 0:
			return io.EOF
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			h.drained = true
			return errWouldBlock
		}
		return e
	}
}

// tryWrite writes what the socket takes of p now, without waiting.
func (h *hsSocket) tryWrite(p []byte) (int, error) {
	sent := 0
	for sent < len(p) {
		n, e := sockSend(h.fd, p[sent:])
		if n > 0 {
			sent += n
			continue
		}
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return sent, nil
		}
		return sent, e
	}
	return sent, nil
}

// makeRoom makes sure the input buffer has room for another read, within
// limit bytes.
func (h *hsSocket) makeRoom(limit int) error {
	if h.in == nil {
		h.pooled = inputPool.Get().(*[]byte)
		h.in = (*h.pooled)[:0]
	}
	if len(h.in) < cap(h.in) {
		return nil
	}
	switch {
	case h.off > 0:
		n := copy(h.in, h.in[h.off:])
		h.in, h.off = h.in[:n], 0
	case len(h.in) < limit:
		grown := make([]byte, len(h.in), min(2*cap(h.in), limit))
		copy(grown, h.in)
		h.putInput()
		h.in = grown
	default:
		return fmt.Errorf("%w: more than %d bytes", errBufferFull, limit)
	}
	return nil
}

// write sends all of p before deadline.
func (h *hsSocket) write(p []byte, deadline time.Time, watched uint32) error {
	for len(p) > 0 {
		n, e := sockSend(h.fd, p)
		if n > 0 {
			p = p[n:]
			continue
		}
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			return e
		}
		if !h.outArmed {
			// The send buffer is full (a head larger than it, to a peer
			// far away): have the reactor pass on the edge at which it
			// drains.
			h.r.rewatch(h.fd, watched|unix.EPOLLOUT)
			h.outArmed = true
			continue // it may have drained before the watch
		}
		if err := h.wait(deadline); err != nil {
			return err
		}
	}
	return nil
}

func (h *hsSocket) putInput() {
	if h.pooled != nil {
		inputPool.Put(h.pooled)
	}
	h.in, h.off, h.pooled = nil, 0, nil
}

// takeInput returns a copy of what is buffered, or nil, and gives the
// buffer back: the socket is joining its session.
func (h *hsSocket) takeInput() []byte {
	rest := h.copyInput()
	h.putInput()
	return rest
}

// copyInput returns a copy of what is buffered, or nil.
func (h *hsSocket) copyInput() []byte {
	if b := h.Buffered(); len(b) > 0 {
		return append([]byte(nil), b...)
	}
	return nil
}

// wait parks until the reactor passes on an edge of the socket, or
// deadline (zero: none).
func (h *hsSocket) wait(deadline time.Time) error {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		if h.timer == nil {
			h.timer = time.NewTimer(d)
		} else {
			h.timer.Reset(d)
		}
		defer h.timer.Stop()
		expired = h.timer.C
	}
	if h.ready == nil {
		h.ready = make(chan struct{}, 1)
	}
	h.waiting.Store(true)
	defer h.waiting.Store(false)
	for !h.takeEdge() {
		select {
		case <-h.ready:
		case <-expired:
			return os.ErrDeadlineExceeded
		}
	}
	return nil
}

// peerGone reports whether the other end closed the socket, failed, or
// (with data true) sent anything at all. It peeks, so a spurious edge
// changes nothing.
func (h *hsSocket) peerGone(dataCounts bool) bool {
	var b [1]byte
	for {
		switch n, e := rawPeek(h.fd, b[:]); e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case 0:
			return n == 0 || dataCounts
		default:
			return true
		}
	}
}
