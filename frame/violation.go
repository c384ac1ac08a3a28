package frame

import "github.com/gobwas/ws"

// Violation is a protocol error with the close code wsgate must send to the
// peer that caused it. Reason is short enough to fit a Close frame and does
// not echo peer data, so it can be sent as is.
type Violation struct {
	Code   ws.StatusCode
	Reason string
}

// Error returns the reason only: building a longer string would allocate on
// a path that runs when a peer misbehaves, which an attacker controls.
func (v *Violation) Error() string { return v.Reason }

// The violations frame reports. They are shared values so that returning
// them never allocates and callers can compare with ==; treat them as
// read-only.
var (
	// Header encoding (ParseHeader).
	ErrNonMinimalLength = &Violation{ws.StatusProtocolError, "payload length not minimally encoded"}
	ErrLength63         = &Violation{ws.StatusProtocolError, "payload length has most significant bit set"}

	// Frame sequence (Validator.Check).
	ErrUnmasked               = &Violation{ws.StatusProtocolError, "client frame not masked"}
	ErrMasked                 = &Violation{ws.StatusProtocolError, "server frame masked"}
	ErrReservedOpcode         = &Violation{ws.StatusProtocolError, "reserved opcode"}
	ErrRSV                    = &Violation{ws.StatusProtocolError, "reserved bits set without negotiated extension"}
	ErrRSV1Continuation       = &Violation{ws.StatusProtocolError, "RSV1 set on continuation frame"}
	ErrRSV1Control            = &Violation{ws.StatusProtocolError, "RSV1 set on control frame"}
	ErrControlTooLong         = &Violation{ws.StatusProtocolError, "control frame payload longer than 125 bytes"}
	ErrControlFragmented      = &Violation{ws.StatusProtocolError, "fragmented control frame"}
	ErrUnexpectedContinuation = &Violation{ws.StatusProtocolError, "continuation frame outside fragmented message"}
	ErrExpectedContinuation   = &Violation{ws.StatusProtocolError, "new data frame inside fragmented message"}
	ErrMessageTooBig          = &Violation{ws.StatusMessageTooBig, "message too big"}

	// Close payload (ParseClose).
	ErrBadClosePayload = &Violation{ws.StatusProtocolError, "invalid close frame payload"}
)
