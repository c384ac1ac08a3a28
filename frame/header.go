package frame

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// Bits of the first two header bytes (RFC 6455 5.2).
const (
	bitFin    = 0x80
	bitsRsv   = 0x70
	bitsOp    = 0x0f
	bitMasked = 0x80
	bitsLen7  = 0x7f

	len16Marker = 126
	len64Marker = 127

	// ws.Header.Rsv holds the three RSV bits shifted down, RSV1 highest.
	rsv1 = 0x4
)

// IsControl reports whether op is a control opcode. RFC 6455 5.5 defines
// control frames by the opcode's high bit, so reserved control opcodes
// (0xB-0xF) count too; Validator.Check rejects those separately.
func IsControl(op ws.OpCode) bool { return op&0x8 != 0 }

// ParseHeader parses a frame header at the start of p without copying.
// It returns the header and its encoded length n. If p holds fewer bytes than
// the full header, it returns n == 0 and err == nil: the caller waits for
// more input. On error n is 0 and err is a *Violation.
//
// It rejects what is wrong in the encoding alone: a 64-bit length with the
// most significant bit set, and a length not in the minimal encoding, which
// RFC 6455 5.2 requires. Everything else (opcodes, RSV, masking, sequence)
// depends on the connection and is Validator's job.
//
// Errors are reported only once the whole header is present, so the result
// depends on p[:n] alone and a caller never sees an error for a prefix of a
// header that turns out to be valid.
func ParseHeader(p []byte) (h ws.Header, n int, err error) {
	if len(p) < ws.MinHeaderSize {
		return h, 0, nil
	}
	b0, b1 := p[0], p[1]
	len7 := b1 & bitsLen7
	n = 2
	switch len7 {
	case len16Marker:
		n = 4
	case len64Marker:
		n = 10
	}
	masked := b1&bitMasked != 0
	if masked {
		n += 4
	}
	if len(p) < n {
		return h, 0, nil
	}

	switch len7 {
	case len16Marker:
		l := binary.BigEndian.Uint16(p[2:4])
		if l < len16Marker {
			return ws.Header{}, 0, ErrNonMinimalLength
		}
		h.Length = int64(l)
	case len64Marker:
		l := binary.BigEndian.Uint64(p[2:10])
		if l>>63 != 0 {
			return ws.Header{}, 0, ErrLength63
		}
		if l <= 0xffff {
			return ws.Header{}, 0, ErrNonMinimalLength
		}
		h.Length = int64(l)
	default:
		h.Length = int64(len7)
	}

	h.Fin = b0&bitFin != 0
	h.Rsv = (b0 & bitsRsv) >> 4
	h.OpCode = ws.OpCode(b0 & bitsOp)
	if masked {
		h.Masked = true
		copy(h.Mask[:], p[n-4:n])
	}
	return h, n, nil
}

// AppendHeader appends the minimal encoding of h to dst. It exists so that
// wsgate can build frames into memory it already owns (ws.WriteHeader needs
// an io.Writer and allocates its buffer). h.Length must be in [0, 2^63);
// Rsv and OpCode are masked to their 3 and 4 bits.
func AppendHeader(dst []byte, h ws.Header) []byte {
	b0 := (h.Rsv<<4)&bitsRsv | byte(h.OpCode)&bitsOp
	if h.Fin {
		b0 |= bitFin
	}
	if h.Length < 0 {
		// Only a caller's bug gets here; encoding it would corrupt the stream.
		panic("frame: AppendHeader with negative length")
	}
	var b1 byte
	if h.Masked {
		b1 = bitMasked
	}
	switch {
	case h.Length < len16Marker:
		dst = append(dst, b0, b1|byte(h.Length))
	case h.Length <= 0xffff:
		dst = append(dst, b0, b1|len16Marker)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, b1|len64Marker)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}
