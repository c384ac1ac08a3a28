package loop

import (
	"sync"
	"sync/atomic"

	"github.com/cloudwego/netpoll"
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

// peer is one end of a session: its connection, the lock that serializes
// everything written to it (netpoll refuses concurrent flushes), and where
// it stands in the closing handshake.
type peer struct {
	conn netpoll.Connection
	sess *Session
	side Side
	// in is the direction that writes into this peer; its index selects the
	// slot fields that publish a stalled flush.
	in Direction

	wmu          sync.Mutex
	dead         bool   // under wmu: the connection is closed; nothing more is written
	midFrame     bool   // under wmu: the frame being written to this peer is incomplete
	pending      []byte // under wmu: an injected frame waiting for a frame boundary
	pendingClose bool

	closeSent atomic.Bool // a Close frame was written to this peer
	closeRecv atomic.Bool // this peer sent a Close (or its stream was abandoned)
	lost      atomic.Bool // its TCP connection is gone
	closed    atomic.Bool // onClosed has run
	// stopAfterClose: once this peer has been sent its Close, stop reading
	// it (it flooded a receiver that fell behind).
	stopAfterClose atomic.Bool
	readStopped    atomic.Bool // its input can grow no more
}

// done reports whether nothing more is expected of this peer.
func (p *peer) done() bool {
	return p.lost.Load() || (p.closeSent.Load() && p.closeRecv.Load())
}

// flush sends what has been written, publishing the flush to the sweeper
// while it runs so that a stalled reader is noticed.
func (p *peer) flush(inflight int) error {
	sl := p.sess.slot
	sl.inflight[p.in].Store(int64(inflight))
	sl.flushStart[p.in].Store(p.sess.loop.nowNano())
	err := p.conn.Writer().Flush()
	sl.flushStart[p.in].Store(0)
	return err
}

// forward writes relayed bytes (a, then b) to this peer. midAfter says
// whether they end inside a frame. It reports false when the bytes were
// dropped because this peer is closed or has been sent its Close.
func (p *peer) forward(a, b []byte, midAfter bool) bool {
	p.wmu.Lock()
	if p.dead || p.closeSent.Load() {
		p.wmu.Unlock()
		return false
	}
	w := p.conn.Writer()
	n := len(a) + len(b)
	if len(a) > 0 {
		w.WriteBinary(a)
	}
	if len(b) > 0 {
		w.WriteBinary(b)
	}
	p.midFrame = midAfter
	wroteClose := false
	if !midAfter && p.pending != nil {
		w.WriteBinary(p.pending)
		n += len(p.pending)
		wroteClose = p.pendingClose
		p.pending, p.pendingClose = nil, false
	}
	err := p.flush(n)
	if wroteClose && err == nil {
		p.closeSent.Store(true)
	}
	p.wmu.Unlock()
	if err != nil {
		p.broken()
	}
	if wroteClose {
		p.sess.maybeFinish()
	}
	return true
}

// forwardClose relays a Close frame from the other side and records that
// this peer has now been sent its Close.
func (p *peer) forwardClose(f []byte) bool {
	p.wmu.Lock()
	if p.dead || p.closeSent.Load() {
		p.wmu.Unlock()
		return false
	}
	p.conn.Writer().WriteBinary(f)
	p.pending, p.pendingClose = nil, false
	err := p.flush(len(f))
	if err == nil {
		p.closeSent.Store(true)
	}
	p.wmu.Unlock()
	if err != nil {
		p.broken()
	}
	return true
}

// inject writes a frame of wsgate's own at the next frame boundary. It may
// block while the peer does not read, so it never runs on the sweeper or
// the poller.
func (p *peer) inject(f []byte, isClose bool) {
	p.wmu.Lock()
	if p.dead || p.closeSent.Load() || (p.pendingClose && !isClose) {
		p.wmu.Unlock()
		return
	}
	if p.midFrame {
		// The relay writes it when the frame in progress ends; a Close
		// supersedes a waiting ping.
		p.pending, p.pendingClose = f, isClose
		p.wmu.Unlock()
		return
	}
	p.conn.Writer().WriteBinary(f)
	err := p.flush(len(f))
	if isClose && err == nil {
		p.closeSent.Store(true)
		if p.stopAfterClose.Load() {
			// Under wmu the connection cannot be closed, so its fd is
			// still this socket's.
			stopReading(p.conn)
			p.readStopped.Store(true)
		}
	}
	p.wmu.Unlock()
	if err != nil {
		p.broken()
	}
}

// broken handles a failed write: the connection cannot carry the session
// any more. Closing it runs onClosed, which tells the session.
func (p *peer) broken() {
	p.conn.Close()
}

// onClosed runs from netpoll's close callbacks, before netpoll frees the
// connection's buffers: taking wmu here waits out a write in progress, so
// nothing writes to a connection whose buffers are gone.
func (p *peer) onClosed() {
	if p.closed.Swap(true) {
		return
	}
	p.wmu.Lock()
	p.dead = true
	p.pending = nil
	p.wmu.Unlock()
	p.lost.Store(true)
	p.sess.peerLost(p)
}
