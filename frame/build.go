package frame

import (
	"encoding/binary"
	"math/rand/v2"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// AppendClose appends a Close frame with code and reason to dst and returns
// the extended slice. It does not allocate when dst has room for
// 2+4+2+len(reason) more bytes (at most 133).
//
// mask must be non-nil for frames toward a backend (wsgate is the client on
// that connection) and nil for frames toward a client (RFC 6455 5.1).
//
// The frame is always one the peer will accept, because an injected frame
// that breaks the protocol would turn a clean close into a failed one:
//   - code 0 or 1005 (ws.StatusNoStatusRcvd) means "no code" and yields an
//     empty payload; a reason cannot be sent without a code, so it is dropped.
//   - a reason longer than 123 bytes is cut at a rune boundary to fit the
//     125-byte limit of control frames (ws.NewCloseFrameBody cuts at a byte
//     and can leave invalid UTF-8).
//   - a reason that is not valid UTF-8 is dropped (RFC 6455 5.5.1).
//
// Other codes are written as given; sending one that ParseClose would reject
// (see ValidCloseCode) is the caller's mistake.
func AppendClose(dst []byte, code ws.StatusCode, reason string, mask *[4]byte) []byte {
	h := ws.Header{Fin: true, OpCode: ws.OpClose}
	if code == 0 || code == ws.StatusNoStatusRcvd {
		return appendHeaderMask(dst, h, mask)
	}
	reason = fitReason(reason)
	h.Length = int64(2 + len(reason))
	dst = appendHeaderMask(dst, h, mask)
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	dst = append(dst, reason...)
	if mask != nil {
		ws.Cipher(dst[start:], *mask, 0)
	}
	return dst
}

// fitReason returns the longest prefix of reason, ending on a rune boundary,
// that fits a Close payload next to the code, or "" if reason is not UTF-8.
func fitReason(reason string) string {
	const limit = ws.MaxControlFramePayloadSize - 2
	if len(reason) > limit {
		cut := limit
		// Back up over continuation bytes to the start of the rune that
		// straddles the limit; at most utf8.UTFMax-1 steps for valid text.
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	if !utf8.ValidString(reason) {
		return ""
	}
	return reason
}

// AppendPing appends a Ping frame carrying payload to dst and returns the
// extended slice; payload itself is not modified. It does not allocate when
// dst has room for 2+4+len(payload) more bytes. mask is as for AppendClose.
//
// Bytes of payload beyond 125 are dropped: a longer control frame is a
// protocol violation the peer would fail the connection for, and a ping's
// payload only needs to be recognisable in the matching Pong.
func AppendPing(dst []byte, payload []byte, mask *[4]byte) []byte {
	if len(payload) > ws.MaxControlFramePayloadSize {
		payload = payload[:ws.MaxControlFramePayloadSize]
	}
	h := ws.Header{Fin: true, OpCode: ws.OpPing, Length: int64(len(payload))}
	dst = appendHeaderMask(dst, h, mask)
	start := len(dst)
	dst = append(dst, payload...)
	if mask != nil {
		ws.Cipher(dst[start:], *mask, 0)
	}
	return dst
}

func appendHeaderMask(dst []byte, h ws.Header, mask *[4]byte) []byte {
	if mask != nil {
		h.Masked = true
		h.Mask = *mask
	}
	return AppendHeader(dst, h)
}

// MaskSource generates masking keys for the frames wsgate sends to backends.
// It is not safe for concurrent use: keep one per reactor (event loop), which
// also keeps package-level state out of the hot path.
//
// It is a PCG generator from math/rand/v2, not a cryptographic one, and that
// is enough here. RFC 6455 10.3 asks for unpredictable keys so that script
// in a browser, which chooses the payload bytes, cannot choose the bytes that
// appear on the wire and poison an intermediary's cache. wsgate masks only
// the frames it builds itself (Close and Ping, whose contents it chooses);
// client frames are relayed with the client's own mask. Nobody who could
// exploit a predictable key controls those payloads, so the keys only need
// to vary, which PCG does at a few nanoseconds per key and 16 bytes of state.
//
// The zero value works but every zero MaskSource yields the same sequence;
// use NewMaskSource with a per-reactor seed (for example from crypto/rand).
type MaskSource struct {
	pcg rand.PCG
}

// NewMaskSource returns a MaskSource seeded with seed.
func NewMaskSource(seed uint64) *MaskSource {
	m := new(MaskSource)
	m.Seed(seed)
	return m
}

// Seed resets m to the sequence for seed, so a MaskSource can live inside
// another struct without a separate allocation.
func (m *MaskSource) Seed(seed uint64) {
	// PCG takes 128 bits of seed; the second word is a fixed odd constant
	// (from SplitMix64) so that different seeds give different streams.
	m.pcg.Seed(seed, 0x9e3779b97f4a7c15)
}

// Next returns a new masking key.
func (m *MaskSource) Next() [4]byte {
	var k [4]byte
	// PCG's high bits are its best-mixed ones.
	binary.LittleEndian.PutUint32(k[:], uint32(m.pcg.Uint64()>>32))
	return k
}
