package loop

import (
	"bytes"
	"sync/atomic"

	"github.com/cloudwego/netpoll"
	"github.com/gobwas/ws"
	"github.com/valyala/bytebufferpool"

	"github.com/wsgate/wsgate/frame"
)

const (
	// peekWindow bounds how much input one walk looks at in place. Peek
	// copies when the window spans two netpoll buffer nodes, so it stays
	// small; payload beyond it is forwarded without being looked at.
	peekWindow = 64 << 10
	// maxBatch bounds one write to the other connection, so a flush holds
	// at most this much input and a backlog shows up as queued input.
	maxBatch = 256 << 10
	// maxControlFrame is the largest control frame on the wire.
	maxControlFrame = ws.MaxHeaderSize + 125
)

// direction relays frames from src to dst. Only src's OnRequest goroutine
// runs it, one call at a time, so its fields need no lock.
type direction struct {
	s          *Session
	dir        Direction
	src, dst   *peer
	fromClient bool
	v          frame.Validator

	remaining int64 // payload bytes of the current data frame not yet relayed
	carry     *bytebufferpool.ByteBuffer
	srcDone   bool // src's frames are no longer read (Close received, violation)
	discard   bool // frames from src are no longer forwarded

	frames, bytes atomic.Uint64
}

func (d *direction) init(s *Session, dir Direction, src, dst *peer, deflate bool, maxMessage int64) {
	d.s, d.dir, d.src, d.dst = s, dir, src, dst
	d.fromClient = dir == ClientToBackend
	d.v.Init(d.fromClient, deflate, maxMessage)
}

func (d *direction) dropCarry() {
	if d.carry != nil {
		bytebufferpool.Put(d.carry)
		d.carry = nil
	}
}

// pump relays everything src has received. netpoll calls OnRequest again
// at once while input remains, so pump consumes all of it: relayed,
// discarded, or moved to the carry buffer.
func (d *direction) pump() { d.pumpFrom(d.src.conn.Reader()) }

func (d *direction) pumpFrom(r netpoll.Reader) {
	for {
		avail := r.Len()
		if avail <= 0 {
			return
		}
		if d.srcDone {
			r.Skip(avail)
			r.Release()
			return
		}
		if d.carry != nil {
			d.fillCarry(r)
			continue
		}
		d.walk(r, avail)
	}
}

type walkStop uint8

const (
	stopNone walkStop = iota
	stopCarry
	stopControl
	stopViolation
)

// walk relays one run of frames from the start of the input.
func (d *direction) walk(r netpoll.Reader, avail int) {
	s := d.s
	if !d.discard && d.remaining == 0 && s.aborting() {
		// wsgate is closing the session: nothing new goes out after the
		// frame in progress, but src is still read for its Close.
		d.discard = true
	}
	win := avail
	if win > peekWindow {
		win = peekWindow
	}
	buf, err := r.Peek(win)
	if err != nil {
		r.Skip(avail)
		r.Release()
		return
	}
	limit := avail
	if limit > maxBatch {
		limit = maxBatch
	}
	var (
		off, fwd int
		frames   uint64
		stop     walkStop
		ctlLen   int
		verr     error
		sawFrame bool
	)
	for off < win && off < limit {
		if d.remaining > 0 {
			k := int64(limit - off)
			if k > d.remaining {
				k = d.remaining
			}
			d.remaining -= k
			off += int(k)
			fwd = off
			continue
		}
		h, n, err := frame.ParseHeader(buf[off:])
		if err != nil {
			stop, verr = stopViolation, err
			break
		}
		if n == 0 {
			if win == avail {
				stop = stopCarry
			}
			break
		}
		if err := d.v.Check(h); err != nil {
			stop, verr = stopViolation, err
			break
		}
		sawFrame = true
		if frame.IsControl(h.OpCode) {
			total := n + int(h.Length)
			if off+total > win {
				if win == avail {
					stop = stopCarry
				}
				break
			}
			if d.special(h, buf[off+n:off+total]) {
				stop, ctlLen = stopControl, total
				break
			}
			off += total
			fwd = off
			frames++
			continue
		}
		off += n
		fwd = off
		frames++
		d.remaining = int64(h.Length)
	}
	if fwd == 0 && stop == stopNone {
		// Nothing whole fits the window (it cannot happen with a window
		// larger than a header): keep the bytes rather than spin.
		stop = stopCarry
	}
	now := s.loop.nowNano()
	if sawFrame && d.fromClient {
		s.lastClient.Store(now)
	}
	if fwd > 0 {
		if d.discard {
			r.Skip(fwd)
		} else {
			p, _ := r.Next(fwd)
			if d.dst.forward(nil, p, d.remaining > 0) {
				s.lastActive.Store(now)
				d.count(frames, fwd)
			}
		}
		r.Release()
	}
	switch stop {
	case stopCarry:
		rest := r.Len()
		if rest > maxControlFrame {
			rest = maxControlFrame
		}
		p, _ := r.Next(rest)
		d.carry = bytebufferpool.Get()
		d.carry.B = append(d.carry.B[:0], p...)
		r.Release()
	case stopControl:
		p, _ := r.Peek(ctlLen)
		d.control(p)
		r.Skip(ctlLen)
		r.Release()
	case stopViolation:
		d.violation(verr)
		r.Skip(r.Len())
		r.Release()
	}
}

// special reports whether a control frame needs more than forwarding: a
// Close ends src's stream, and a Pong may answer wsgate's own ping.
func (d *direction) special(h ws.Header, payload []byte) bool {
	switch h.OpCode {
	case ws.OpClose:
		return true
	case ws.OpPong:
		return d.fromClient && d.s.pingSent.Load() != 0
	}
	return false
}

// control handles a whole control frame f (header and payload) that
// special picked out.
func (d *direction) control(f []byte) {
	s := d.s
	h, n, _ := frame.ParseHeader(f)
	var mask *[4]byte
	if h.Masked {
		mask = &h.Mask
	}
	var scratch [125]byte
	switch h.OpCode {
	case ws.OpClose:
		code, _, err := frame.ParseClose(f[n:], mask, scratch[:])
		if err != nil {
			d.violation(err)
			return
		}
		d.srcDone = true
		d.src.closeRecv.Store(true)
		s.setCause(CauseClosed)
		if !d.discard && d.dst.forwardClose(f) {
			d.count(1, len(f))
			if d.fromClient {
				s.codeToBackend.CompareAndSwap(0, int32(code))
			} else {
				s.codeToClient.CompareAndSwap(0, int32(code))
			}
		}
		s.maybeFinish()
	case ws.OpPong:
		p := f[n:]
		if mask != nil {
			p = scratch[:len(p)]
			copy(p, f[n:])
			ws.Cipher(p, *mask, 0)
		}
		if bytes.Equal(p, []byte(keepalivePayload)) {
			s.pingSent.Store(0)
			return
		}
		if !d.discard && d.dst.forward(nil, f, false) {
			d.count(1, len(f))
		}
	}
}

// fillCarry completes a frame header, or a whole control frame, that was
// split across reads, from the bytes that follow it.
func (d *direction) fillCarry(r netpoll.Reader) {
	c := d.carry.B
	for {
		need, _ := frameNeed(c)
		if len(c) >= need {
			break
		}
		k := need - len(c)
		if avail := r.Len(); k > avail {
			k = avail
		}
		if k == 0 {
			d.carry.B = c
			return
		}
		// Once the header is in, a control frame's payload is needed too:
		// frameNeed grows need on the next turn.
		p, _ := r.Next(k)
		c = append(c, p...)
		r.Release()
	}
	d.carry.B = c
	h, n, err := frame.ParseHeader(c)
	if err == nil {
		err = d.v.Check(h)
	}
	if err != nil {
		d.dropCarry()
		d.violation(err)
		return
	}
	if d.fromClient {
		d.s.lastClient.Store(d.s.loop.nowNano())
	}
	if frame.IsControl(h.OpCode) {
		if d.special(h, c[n:]) {
			d.control(c)
		} else if !d.discard && d.dst.forward(nil, c, false) {
			d.count(1, len(c))
		}
		d.dropCarry()
		return
	}
	if d.remaining == 0 && d.s.aborting() {
		d.discard = true
	}
	if !d.discard && d.dst.forward(c[:n], nil, h.Length > 0) {
		d.count(1, n)
	}
	d.remaining = int64(h.Length)
	d.dropCarry()
}

// frameNeed says how many bytes of c must be present to act on the frame
// that starts it: its header, or for a control frame header and payload.
func frameNeed(c []byte) (need int, complete bool) {
	if len(c) < 2 {
		return 2, false
	}
	need = 2
	switch c[1] & 0x7f {
	case 126:
		need += 2
	case 127:
		need += 8
	}
	if c[1]&0x80 != 0 {
		need += 4
	}
	if len(c) < need {
		return need, false
	}
	if ws.OpCode(c[0] & 0x0f).IsControl() {
		// Longer control frames are rejected by the validator.
		if l := int(c[1] & 0x7f); l <= 125 {
			return need + l, true
		}
	}
	return need, true
}

// violation fails the session for a frame that breaks RFC 6455 or a limit.
func (d *direction) violation(err error) {
	d.srcDone = true
	d.src.closeRecv.Store(true)
	code := ws.StatusProtocolError
	if v, ok := err.(*frame.Violation); ok {
		code = v.Code
	}
	tooBig := code == ws.StatusMessageTooBig
	s := d.s
	switch {
	case d.fromClient && tooBig:
		s.abort(CauseClientTooBig, ws.StatusMessageTooBig, ws.StatusGoingAway)
	case d.fromClient:
		s.abort(CauseClientProtocol, ws.StatusProtocolError, ws.StatusGoingAway)
	case tooBig:
		s.abort(CauseBackendTooBig, ws.StatusGoingAway, ws.StatusMessageTooBig)
	default:
		// 1014 (bad gateway) tells the client the fault is upstream.
		s.abort(CauseBackendProtocol, 1014, ws.StatusProtocolError)
	}
	s.loop.log.Warn("frame rejected", "side", d.src.side.String(), "err", err.Error(), "session_cause", s.Cause().String())
}

func (d *direction) count(frames uint64, n int) {
	d.frames.Add(frames)
	d.bytes.Add(uint64(n))
	st := &d.s.loop.stats
	st.Frames[d.dir].Add(frames)
	st.Bytes[d.dir].Add(uint64(n))
}
