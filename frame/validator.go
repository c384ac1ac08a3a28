package frame

import "github.com/gobwas/ws"

// Validator holds the per-direction state of one stream of frames. The zero
// value validates frames from a backend (unmasked) with no extension and no
// size limit; call Init to choose. It is not safe for concurrent use, which
// matches how it is used: one reader per direction.
type Validator struct {
	fromClient bool
	allowRSV1  bool
	inMessage  bool
	// maxMessage <= 0 disables the limit and the bookkeeping for it.
	maxMessage int64
	// msgLen is the sum of the payload lengths of the open message's frames
	// so far, counting the frame being checked once Check returns nil.
	msgLen int64
}

// Init (re)sets the validator.
//
// fromClient: frames come from the client and must be masked; otherwise they
// come from the backend and must not be (RFC 6455 5.1).
//
// allowRSV1: permessage-deflate was negotiated. RFC 7692 6 then allows RSV1
// on the first frame of a data message only, never on continuation or control
// frames. RSV2 and RSV3 are never allowed, because wsgate negotiates no
// extension that defines them and cannot relay what it does not understand.
//
// maxMessage limits the sum of the payload lengths of one data message across
// its fragments; 0 (or less) means unlimited. With permessage-deflate these
// are compressed lengths: wsgate never inflates, so the limit bounds what it
// relays, not what the receiver will inflate.
func (v *Validator) Init(fromClient, allowRSV1 bool, maxMessage int64) {
	*v = Validator{
		fromClient: fromClient,
		allowRSV1:  allowRSV1,
		maxMessage: maxMessage,
	}
}

// InMessage reports whether a fragmented data message is open. Control frames
// may still be injected between its fragments (RFC 6455 5.4); data frames may
// not.
func (v *Validator) InMessage() bool { return v.inMessage }

// Check validates the next header of the stream and, if it is valid, updates
// the fragmentation state. It returns nil or a *Violation. A rejected header
// leaves the state unchanged, though a connection that produced one should be
// failed anyway.
//
// The size limit is checked against the declared length as each header
// arrives, before its payload, so a frame too big to be allowed is refused
// without buffering any of it.
//
// ws.CheckHeader covers part of this but is looser: with an extension
// negotiated it accepts any RSV bits on any frame, including RSV2/RSV3 and
// RSV1 on continuation and control frames, it knows nothing of sizes, and it
// returns strings rather than close codes. Doing the few comparisons here is
// simpler than translating its errors and keeps the order of checks ours.
func (v *Validator) Check(h ws.Header) error {
	switch h.OpCode {
	case ws.OpContinuation, ws.OpText, ws.OpBinary, ws.OpClose, ws.OpPing, ws.OpPong:
	default:
		// Also catches values above 0xF, which a ws.Header built in code
		// (not parsed) could hold.
		return ErrReservedOpcode
	}
	if h.Masked != v.fromClient {
		if v.fromClient {
			return ErrUnmasked
		}
		return ErrMasked
	}
	if h.Length < 0 {
		// ParseHeader never yields this; a negative length can only mean
		// a 64-bit length with its top bit set.
		return ErrLength63
	}
	control := IsControl(h.OpCode)
	if h.Rsv != 0 {
		if h.Rsv&^rsv1 != 0 || !v.allowRSV1 {
			return ErrRSV
		}
		if control {
			return ErrRSV1Control
		}
		if h.OpCode == ws.OpContinuation {
			return ErrRSV1Continuation
		}
	}

	if control {
		if h.Length > ws.MaxControlFramePayloadSize {
			return ErrControlTooLong
		}
		if !h.Fin {
			return ErrControlFragmented
		}
		// Control frames are not part of the message they interrupt.
		return nil
	}

	msgLen := v.msgLen
	if h.OpCode == ws.OpContinuation {
		if !v.inMessage {
			return ErrUnexpectedContinuation
		}
	} else {
		if v.inMessage {
			return ErrExpectedContinuation
		}
		msgLen = 0
	}
	if v.maxMessage > 0 {
		// Written as a subtraction so that a declared length near 2^63
		// cannot overflow the sum.
		if h.Length > v.maxMessage-msgLen {
			return ErrMessageTooBig
		}
		msgLen += h.Length
	}
	v.msgLen = msgLen
	v.inMessage = !h.Fin
	return nil
}
