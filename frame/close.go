package frame

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// ParseClose reads the code and reason of a Close frame payload.
//
// A masked payload (mask != nil) is unmasked into scratch, never in place:
// payload normally points into the input buffer whose bytes wsgate forwards
// verbatim, still masked. With len(scratch) >= len(payload) it does not
// allocate; a [125]byte on the caller's stack always suffices. A smaller
// scratch still works, at the cost of an allocation. An unmasked payload is
// read in place and reason aliases it.
//
// An empty payload yields code 1005 (ws.StatusNoStatusRcvd), as RFC 6455
// 7.1.5 says, with no error; ws.ParseCloseFrameData returns 0 instead.
//
// It returns ErrBadClosePayload for a payload of length 1, a code that must
// not appear on the wire (see ValidCloseCode), or a reason that is not valid
// UTF-8; and ErrControlTooLong for more than 125 bytes, which Validator.Check
// would already have refused.
func ParseClose(payload []byte, mask *[4]byte, scratch []byte) (code ws.StatusCode, reason []byte, err error) {
	switch {
	case len(payload) == 0:
		return ws.StatusNoStatusRcvd, nil, nil
	case len(payload) == 1:
		return 0, nil, ErrBadClosePayload
	case len(payload) > ws.MaxControlFramePayloadSize:
		return 0, nil, ErrControlTooLong
	}
	if mask != nil {
		p := append(scratch[:0], payload...)
		ws.Cipher(p, *mask, 0)
		payload = p
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(payload))
	reason = payload[2:]
	if !ValidCloseCode(code) || !utf8.Valid(reason) {
		return 0, nil, ErrBadClosePayload
	}
	return code, reason, nil
}

// ValidCloseCode reports whether code may appear in a Close frame on the
// wire: 1000-1003 and 1007-1014 (RFC 6455 7.4.1 and the IANA WebSocket Close
// Code Number registry), 3000-3999 (registered for libraries and frameworks)
// and 4000-4999 (private use). 1004 is reserved, 1005, 1006 and 1015 are for
// reporting only and MUST NOT be sent, and the rest is unassigned.
//
// ws.CheckCloseFrameData differs: it rejects 1012-1014, which IANA has since
// registered (Service Restart, Try Again Later, Bad Gateway), and accepts
// codes of 5000 and above, which no range defines.
func ValidCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
