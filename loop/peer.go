package loop

import (
	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"
)

// Side names the two ends of a session.
type Side uint8

const (
	SideClient Side = iota
	SideBackend
)

func (s Side) String() string {
	if s == SideClient {
		return "client"
	}
	return "backend"
}

// peer is one end of a session: its socket, what is waiting to be written
// to it, and where it stands in the closing handshake. Only the session's
// reactor goroutine touches it.
type peer struct {
	// What the relay reads for every batch comes first (see Session).
	r    *reactor
	sess *Session
	fd   int // -1 once closed (or never adopted)
	// from carries the frames read from this peer, into those written to it.
	from, into *direction
	// out holds bytes the socket did not take (nil: none). While it is
	// set the peer is blocked: the other side is not read, so what wsgate
	// holds for a direction is bounded by one read.
	out      *bytebufferpool.ByteBuffer
	interest uint32 // epoll events registered

	midFrame     bool // the stream written to this peer is inside a frame
	pendingClose bool
	closeSent    bool // a Close frame was queued to this peer
	closeRecv    bool // this peer sent a Close (or its stream was abandoned)
	lost         bool // its TCP connection is gone
	eof          bool // it half-closed after its Close; it may still be written

	// The set is edge-triggered: input an edge reported and the peer did
	// not read (while it was not readable, or because a read filled the
	// scratch buffer) is not reported again.
	inputDue     bool // an edge came while the peer was not readable
	rereadQueued bool // in the reactor's rereads
	hangUp       bool // an edge reported the peer's FIN: a short read leaves it unread

	side       Side
	pending    []byte // an injected frame waiting for a frame boundary
	outOff     int
	blockedIdx int   // index in the reactor's blocked list (-1: not blocked)
	progressAt int64 // when the receiver last acknowledged bytes while blocked
	acked      uint64

	leftover    []byte   // input read during the handshake, behind its head
	pendingFd   int      // the adopted socket, until the session starts (-1: none)
	pendingJoin joinKind // how pendingFd joins the epoll set
}

// done reports whether nothing more is expected of this peer.
func (p *peer) done() bool {
	return p.lost || (p.closeSent && p.closeRecv && p.out == nil)
}

// send writes b to the socket, or queues it behind bytes already waiting.
func (p *peer) send(b []byte) {
	if len(b) == 0 || p.fd < 0 {
		return
	}
	if p.out != nil {
		p.out.B = append(p.out.B, b...)
		return
	}
	n, err := writeFd(p.fd, b)
	if err != nil {
		p.lose()
		return
	}
	if n < len(b) {
		p.out = bytebufferpool.Get()
		p.out.B = append(p.out.B[:0], b[n:]...)
		p.outOff = 0
		p.block()
	}
}

// block starts waiting for the socket to drain: watch it for EPOLLOUT and
// stop reading the side that feeds it.
func (p *peer) block() {
	p.progressAt = p.r.now
	p.acked = 0
	p.r.blocked.add(p)
	p.sync()
	if p.into != nil {
		p.into.src.sync()
	}
}

func (p *peer) onWritable() {
	for p.out != nil {
		b := p.out.B[p.outOff:]
		n, err := writeFd(p.fd, b)
		if err != nil {
			p.lose()
			return
		}
		p.outOff += n
		if n < len(b) {
			return
		}
		p.dropOut()
	}
	p.sync()
	if p.into != nil {
		p.into.src.sync()
	}
	p.sess.maybeFinish()
}

func (p *peer) dropOut() {
	if p.out == nil {
		return
	}
	bytebufferpool.Put(p.out)
	p.out, p.outOff = nil, 0
	p.r.blocked.remove(p)
}

// readable says whether the socket should be read: not while the receiver
// of what it sends is blocked, unless what it sends is being dropped.
func (p *peer) readable() bool {
	if p.fd < 0 || p.eof {
		return false
	}
	d := p.from
	if d.dst.out == nil || d.srcDone {
		return true
	}
	return d.discard && d.remaining == 0
}

// sync brings the epoll registration in line with the peer's state.
func (p *peer) sync() {
	if p.fd < 0 {
		return
	}
	var want uint32
	readable := p.readable()
	if readable {
		want |= peerIn
	}
	if p.out != nil {
		want |= unix.EPOLLOUT
	}
	if want != p.interest {
		// The modification reports input waiting now, edge or none.
		p.r.modify(p, want)
		if readable {
			p.inputDue = false
		}
	}
	if readable && p.inputDue {
		p.inputDue = false
		p.r.reread(p)
	}
}

func (p *peer) onReadable(events uint32) {
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		p.hangUp = true
	}
	if !p.readable() {
		if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			p.lose()
		} else if events&unix.EPOLLIN != 0 {
			p.inputDue = true
		}
		return
	}
	n, err := readFd(p.fd, p.r.scratch)
	switch {
	case n == len(p.r.scratch) || n > 0 && p.hangUp:
		// There may be more, or the FIN behind what was read, and no
		// edge will say so.
		p.r.reread(p)
		p.from.relay(p.r.scratch[:n])
	case n > 0:
		p.from.relay(p.r.scratch[:n])
	case err == unix.EAGAIN:
	case err == nil && p.closeRecv:
		// A half-close after its Close: it may still be owed ours. The
		// session most often ends here, and then the socket is closed
		// without first being taken out of EPOLLIN (an epoll_ctl per
		// session).
		p.eof = true
		p.sess.maybeFinish()
		p.sync()
	default:
		p.lose()
	}
}

// forward writes relayed bytes to this peer. midAfter says whether they end
// inside a frame. It reports false when they were dropped because this peer
// is closed or has been sent its Close.
func (p *peer) forward(b []byte, midAfter bool) bool {
	if p.fd < 0 || p.closeSent {
		return false
	}
	p.send(b)
	p.midFrame = midAfter
	if !midAfter && p.pending != nil {
		f, isClose := p.pending, p.pendingClose
		p.pending, p.pendingClose = nil, false
		p.send(f)
		if isClose {
			p.closeSent = true
			p.sess.maybeFinish()
		}
	}
	return true
}

// forwardClose relays a Close frame from the other side.
func (p *peer) forwardClose(f []byte) bool {
	if p.fd < 0 || p.closeSent {
		return false
	}
	p.pending, p.pendingClose = nil, false
	p.send(f)
	p.closeSent = true
	return true
}

// inject writes a frame of wsgate's own at the next frame boundary.
func (p *peer) inject(f []byte, isClose bool) {
	if p.fd < 0 || p.closeSent || (p.pendingClose && !isClose) {
		return
	}
	if p.midFrame {
		// The relay writes it when the frame in progress ends; a Close
		// supersedes a waiting ping.
		p.pending, p.pendingClose = f, isClose
		return
	}
	p.send(f)
	if isClose {
		p.closeSent = true
	}
}

// lose handles a connection that can no longer carry the session.
func (p *peer) lose() {
	if p.fd < 0 {
		return
	}
	p.release()
	p.sess.peerLost(p)
}

// release closes the socket and frees what waits for it.
func (p *peer) release() {
	p.r.closeFd(p)
	p.dropOut()
	p.lost = true
	p.pending = nil
	if p.into != nil && p.sess.state.Load() != sessFinished {
		// Its sender may have been paused for it; at the session's end
		// the sender is closing too.
		p.into.src.sync()
	}
}

func writeFd(fd int, b []byte) (int, error) {
	for {
		n, e := sockSend(fd, b)
		switch e {
		case 0:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		return 0, e
	}
}

func readFd(fd int, b []byte) (int, error) {
	for {
		n, e := sockRecv(fd, b)
		switch e {
		case 0:
			return n, nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}
