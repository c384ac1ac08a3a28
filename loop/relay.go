package loop

import (
	"bytes"

	"github.com/gobwas/ws"
	"github.com/valyala/bytebufferpool"

	"github.com/wsgate/wsgate/frame"
)

// direction relays frames from src to dst. Only the session's reactor runs
// it.
type direction struct {
	// What the relay reads for every batch comes first (see Session).
	s          *Session
	src, dst   *peer
	remaining  int64 // payload bytes of the current data frame not yet relayed
	carry      *bytebufferpool.ByteBuffer
	srcDone    bool // src's frames are no longer read (Close received, violation)
	discard    bool // frames from src are no longer forwarded
	fromClient bool
	dir        Direction
	v          frame.Validator

	frames, bytes uint64
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

// relay walks and forwards buf, which was just read from src. Everything
// in it is relayed, dropped, or (a split frame header or control frame)
// kept in the carry buffer for the next read.
func (d *direction) relay(buf []byte) {
	for len(buf) > 0 && !d.srcDone {
		if d.carry != nil {
			buf = d.fillCarry(buf)
			continue
		}
		buf = d.walk(buf)
	}
}

// walk relays a run of whole frames (and the start of the last one) from the
// front of buf, as one write, and returns what it did not consume: the rest
// after a control frame that needs handling. A frame header or control frame
// cut off by the end of buf goes to the carry buffer.
func (d *direction) walk(buf []byte) []byte {
	if !d.discard && d.remaining == 0 && d.s.aborting() {
		// wsgate is closing the session: nothing new goes out after the
		// frame in progress, but src is still read for its Close.
		d.discard = true
	}
	var (
		off, fwd int
		frames   uint64
		sawFrame bool
	)
	for off < len(buf) {
		if d.remaining > 0 {
			k := int64(len(buf) - off)
			if k > d.remaining {
				k = d.remaining
			}
			d.remaining -= k
			off += int(k)
			fwd = off
			continue
		}
		h, n, err := frame.ParseHeader(buf[off:])
		if err == nil && n > 0 {
			err = d.v.Check(h)
		}
		if err != nil {
			d.emit(buf[:fwd], frames, sawFrame)
			d.violation(err)
			return nil
		}
		if n == 0 {
			d.emit(buf[:fwd], frames, sawFrame)
			d.startCarry(buf[off:])
			return nil
		}
		sawFrame = true
		if frame.IsControl(h.OpCode) {
			total := n + int(h.Length)
			if off+total > len(buf) {
				d.emit(buf[:fwd], frames, sawFrame)
				d.startCarry(buf[off:])
				return nil
			}
			if d.special(h, buf[off+n:off+total]) {
				d.emit(buf[:fwd], frames, sawFrame)
				d.control(buf[off : off+total])
				return buf[off+total:]
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
	d.emit(buf[:fwd], frames, sawFrame)
	return nil
}

// emit forwards a run of frames to dst in one write.
func (d *direction) emit(run []byte, frames uint64, sawFrame bool) {
	s := d.s
	now := s.r.now
	if sawFrame && d.fromClient {
		s.lastClient = now
	}
	if len(run) == 0 || d.discard {
		return
	}
	if d.dst.forward(run, d.remaining > 0) {
		s.lastActive = now
		d.count(frames, len(run))
	}
}

func (d *direction) startCarry(b []byte) {
	d.carry = bytebufferpool.Get()
	d.carry.B = append(d.carry.B[:0], b...)
}

// special reports whether a control frame needs more than forwarding: a
// Close ends src's stream, and a Pong may answer wsgate's own ping.
func (d *direction) special(h ws.Header, payload []byte) bool {
	switch h.OpCode {
	case ws.OpClose:
		return true
	case ws.OpPong:
		return d.fromClient && d.s.pingSent != 0
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
		d.src.closeRecv = true
		s.setCause(CauseClosed)
		if !d.discard && d.dst.forwardClose(f) {
			d.count(1, len(f))
			if d.fromClient {
				if s.codeToBackend == 0 {
					s.codeToBackend = int(code)
				}
			} else {
				if s.codeToClient == 0 {
					s.codeToClient = int(code)
				}
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
			s.pingSent = 0
			return
		}
		if !d.discard && d.dst.forward(f, false) {
			d.count(1, len(f))
		}
	}
}

// fillCarry completes a frame header, or a whole control frame, that was
// split across reads, from the bytes that follow it, and returns the rest.
func (d *direction) fillCarry(buf []byte) []byte {
	c := d.carry.B
	for {
		need, _ := frameNeed(c)
		if len(c) >= need {
			break
		}
		k := need - len(c)
		if k > len(buf) {
			k = len(buf)
		}
		if k == 0 {
			d.carry.B = c
			return nil
		}
		// Once the header is in, a control frame's payload is needed too:
		// frameNeed grows need on the next turn.
		c = append(c, buf[:k]...)
		buf = buf[k:]
	}
	d.carry.B = c
	h, n, err := frame.ParseHeader(c)
	if err == nil {
		err = d.v.Check(h)
	}
	if err != nil {
		d.dropCarry()
		d.violation(err)
		return nil
	}
	if d.fromClient {
		d.s.lastClient = d.s.r.now
	}
	if frame.IsControl(h.OpCode) {
		if d.special(h, c[n:]) {
			d.control(c)
		} else if !d.discard && d.dst.forward(c, false) {
			d.count(1, len(c))
		}
		d.dropCarry()
		return buf
	}
	if d.remaining == 0 && d.s.aborting() {
		d.discard = true
	}
	d.remaining = int64(h.Length)
	if !d.discard && d.dst.forward(c[:n], h.Length > 0) {
		d.count(1, n)
	}
	d.dropCarry()
	return buf
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
	d.src.closeRecv = true
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
	d.frames += frames
	d.bytes += uint64(n)
	c := d.s.r.relayed
	c.frames[d.dir].Add(frames)
	c.bytes[d.dir].Add(uint64(n))
}
