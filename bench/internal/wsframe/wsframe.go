package wsframe

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// Parse decodes the frame header at the start of b.
//
// It returns the header and the number of bytes it occupies. n == 0 with a
// nil error means b does not yet hold the whole header. The only error is
// ws.ErrHeaderLengthMSB (a 64-bit length with its top bit set).
func Parse(b []byte) (h ws.Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 & 0x70) >> 4
	h.OpCode = ws.OpCode(b0 & 0x0f)
	n = 2
	switch l := b1 & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, ws.ErrHeaderLengthMSB
		}
		h.Length = int64(u)
		n = 10
	default:
		h.Length = int64(l)
	}
	if b1&0x80 != 0 {
		if len(b) < n+4 {
			return h, 0, nil
		}
		h.Masked = true
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// Size returns the encoded size of a header with the given payload length,
// masked or not.
func Size(length int64, masked bool) int {
	n := 2
	switch {
	case length > 0xffff:
		n = 10
	case length > 125:
		n = 4
	}
	if masked {
		n += 4
	}
	return n
}

// Put encodes h at the start of b and returns the number of bytes written.
// b must hold at least Size(h.Length, h.Masked) bytes.
func Put(b []byte, h ws.Header) int {
	b0 := h.Rsv<<4 | byte(h.OpCode)
	if h.Fin {
		b0 |= 0x80
	}
	var mask byte
	if h.Masked {
		mask = 0x80
	}
	n := 2
	switch {
	case h.Length > 0xffff:
		_ = b[9]
		b[1] = 127 | mask
		binary.BigEndian.PutUint64(b[2:10], uint64(h.Length))
		n = 10
	case h.Length > 125:
		_ = b[3]
		b[1] = 126 | mask
		binary.BigEndian.PutUint16(b[2:4], uint16(h.Length))
		n = 4
	default:
		_ = b[1]
		b[1] = byte(h.Length) | mask
	}
	b[0] = b0
	if h.Masked {
		n += copy(b[n:n+4], h.Mask[:])
	}
	return n
}
