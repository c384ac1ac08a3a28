package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// FuzzParseHeader checks ParseHeader against ws.ReadHeader, the reference
// decoder, and against its own contract, on arbitrary bytes.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5})
	f.Add([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		h, n, err := ParseHeader(p)
		if n < 0 || n > len(p) || n > ws.MaxHeaderSize {
			t.Fatalf(
				"n = %d for %d bytes",
				n, len(p),
			)
		}
		ref, refErr := ws.ReadHeader(bytes.NewReader(p))
		switch {
		case err == nil && n > 0:
			if refErr != nil || ref != h {
				t.Fatalf(
					"ParseHeader(%x) = %+v; ws.ReadHeader = %+v, %v",
					p, h, ref, refErr,
				)
			}
			if n != ws.HeaderSize(h) {
				t.Fatalf(
					"n = %d, ws.HeaderSize = %d",
					n, ws.HeaderSize(h),
				)
			}
			if enc := AppendHeader(nil, h); !bytes.Equal(enc, p[:n]) {
				t.Fatalf(
					"re-encoded %x, wire %x",
					enc, p[:n],
				)
			}
			// The header is complete at n bytes and not before.
			for k := range n {
				_, kn, kerr := ParseHeader(p[:k])
				if kn != 0 || kerr != nil {
					t.Fatalf(
						"prefix %d: n=%d err=%v",
						k, kn, kerr,
					)
				}
			}
		case err == nil:
			if h != (ws.Header{}) {
				t.Fatalf(
					"incomplete but header %+v",
					h,
				)
			}
			if !errors.Is(refErr, io.EOF) && !errors.Is(refErr, io.ErrUnexpectedEOF) {
				t.Fatalf(
					"ParseHeader(%x) wants more; ws.ReadHeader = %+v, %v",
					p, ref, refErr,
				)
			}
		case err == ErrLength63:
			if !errors.Is(refErr, ws.ErrHeaderLengthMSB) {
				t.Fatalf(
					"ErrLength63 but ws.ReadHeader: %v",
					refErr,
				)
			}
		case err == ErrNonMinimalLength:
			// gobwas accepts it; its re-encoding is shorter than the wire.
			wire := 4
			if p[1]&0x7f == 127 {
				wire = 10
			}
			if refErr != nil || ws.HeaderSize(ref)-len(ref.Mask)*boolInt(ref.Masked) >= wire {
				t.Fatalf(
					"ErrNonMinimalLength on %x; ws.ReadHeader = %+v, %v",
					p, ref, refErr,
				)
			}
		default:
			t.Fatalf(
				"unexpected error %v",
				err,
			)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// refCheck is an independent statement of the rules Check enforces, built on
// ws.CheckHeader plus what gobwas leaves out. It reports acceptance only.
type refCheck struct {
	fromClient, deflate bool
	max                 int64
	frag                bool
	sum                 int64
}

func (r *refCheck) check(h ws.Header) bool {
	s := checkHeaderState(r.fromClient, r.deflate, r.frag)
	if ws.CheckHeader(h, s) != nil {
		return false
	}
	if h.Length < 0 || h.OpCode > 0xf {
		return false
	}
	if h.Rsv != 0 && (h.Rsv != 0x4 || !r.deflate || h.OpCode.IsControl() || h.OpCode == ws.OpContinuation) {
		return false
	}
	if h.OpCode.IsControl() {
		return true
	}
	sum := r.sum
	if h.OpCode != ws.OpContinuation {
		sum = 0
	}
	if r.max > 0 {
		if sum+h.Length > r.max || sum+h.Length < 0 {
			return false
		}
		sum += h.Length
	}
	r.sum = sum
	r.frag = !h.Fin
	return true
}

// FuzzValidator feeds Check two kinds of streams. Arbitrary header bytes
// (parsed with ParseHeader; payloads are not needed to validate) must never
// panic and must be judged as refCheck judges them. A stream generated from
// the same bytes to contain only valid frames must be accepted whole.
func FuzzValidator(f *testing.F) {
	f.Add(true, false, int64(0), []byte{0x81, 0x85, 1, 2, 3, 4})
	f.Add(false, true, int64(10), []byte{0x41, 0x04, 0x89, 0x00, 0x80, 0x06})
	f.Fuzz(func(t *testing.T, fromClient, deflate bool, max int64, data []byte) {
		// Arbitrary headers against the reference.
		var v Validator
		v.Init(fromClient, deflate, max)
		ref := refCheck{fromClient: fromClient, deflate: deflate, max: max}
		for p := data; len(p) > 0; {
			h, n, err := ParseHeader(p)
			if err != nil || n == 0 {
				break
			}
			p = p[n:]
			got := v.Check(h)
			if got != nil {
				if _, ok := got.(*Violation); !ok {
					t.Fatalf(
						"%T is not a *Violation",
						got,
					)
				}
			}
			if want := ref.check(h); want != (got == nil) {
				t.Fatalf(
					"Check(%+v) = %v; reference accepts: %v",
					h, got, want,
				)
			}
			if v.InMessage() != ref.frag {
				t.Fatalf(
					"InMessage = %v after %+v, reference %v",
					v.InMessage(), h, ref.frag,
				)
			}
		}

		// A stream of valid frames, generated from data, is all accepted.
		v.Init(fromClient, deflate, max)
		gen := validStream{fromClient: fromClient, deflate: deflate, max: max}
		var wire []byte
		for _, b := range data {
			wire = gen.next(wire[:0], b)
			h, n, err := ParseHeader(wire)
			if err != nil || n != len(wire) {
				t.Fatalf(
					"generated %x: n=%d err=%v",
					wire, n, err,
				)
			}
			if err := v.Check(h); err != nil {
				t.Fatalf(
					"valid frame %+v rejected: %v",
					h, err,
				)
			}
		}
	})
}

// validStream generates valid frame headers, one per input byte.
type validStream struct {
	fromClient, deflate bool
	max                 int64
	open                bool
	sum                 int64
}

func (g *validStream) next(dst []byte, b byte) []byte {
	h := ws.Header{Fin: b&0x80 != 0}
	if g.fromClient {
		h.Masked = true
		h.Mask = [4]byte{b, ^b, b, 0x5a}
	}
	// Lengths from a table so every encoding shows up.
	lengths := [...]int64{0, 1, 125, 126, 65535, 65536, 1 << 40, 1<<63 - 1}
	length := lengths[(b>>2)&7]
	switch kind := b & 3; {
	case kind == 0:
		// Control frame: always legal, in or out of a message.
		h.Fin = true
		h.OpCode = [...]ws.OpCode{ws.OpPing, ws.OpPong, ws.OpClose}[int(b>>5)%3]
		h.Length = min(length, ws.MaxControlFramePayloadSize)
		return AppendHeader(dst, h)
	case g.open:
		h.OpCode = ws.OpContinuation
	default:
		h.OpCode = ws.OpText
		if kind == 2 {
			h.OpCode = ws.OpBinary
		}
		if g.deflate && b&0x20 != 0 {
			h.Rsv = 0x4
		}
		g.sum = 0
	}
	if g.max > 0 {
		length = min(length, g.max-g.sum)
		g.sum += length
	}
	h.Length = length
	g.open = !h.Fin
	return AppendHeader(dst, h)
}

// FuzzParseClose checks ParseClose against ws.ParseCloseFrameData and the
// close code rules, masked and unmasked, and that AppendClose round-trips
// whatever it accepts.
func FuzzParseClose(f *testing.F) {
	f.Add([]byte{0x03, 0xe8, 'o', 'k'}, uint32(0))
	f.Add([]byte{0x03, 0xe8, 0xff}, uint32(0xa1b2c3d4))
	f.Fuzz(func(t *testing.T, payload []byte, maskWord uint32) {
		orig := bytes.Clone(payload)
		code, reason, err := ParseClose(payload, nil, nil)
		if !bytes.Equal(payload, orig) {
			t.Fatalf(
				"%s",
				"payload modified",
			)
		}

		refCode, refReason := ws.ParseCloseFrameData(payload)
		var want error
		switch {
		case len(payload) > ws.MaxControlFramePayloadSize:
			want = ErrControlTooLong
		case len(payload) == 0:
		case len(payload) == 1 || !ValidCloseCode(refCode) || !utf8.ValidString(refReason):
			want = ErrBadClosePayload
		}
		if err != want {
			t.Fatalf(
				"ParseClose(%x) err = %v, want %v",
				payload, err, want,
			)
		}
		if err == nil {
			if len(payload) == 0 {
				if code != ws.StatusNoStatusRcvd || len(reason) != 0 {
					t.Fatalf(
						"empty payload: %d %q",
						code, reason,
					)
				}
			} else if code != refCode || string(reason) != refReason {
				t.Fatalf(
					"ParseClose(%x) = %d %q; gobwas %d %q",
					payload, code, reason, refCode, refReason,
				)
			}
		}

		var mask [4]byte
		binary.BigEndian.PutUint32(mask[:], maskWord)
		masked := bytes.Clone(payload)
		ws.Cipher(masked, mask, 0)
		maskedOrig := bytes.Clone(masked)
		var scratch [125]byte
		mcode, mreason, merr := ParseClose(masked, &mask, scratch[:])
		if merr != err || mcode != code || !bytes.Equal(mreason, reason) {
			t.Fatalf(
				"masked: %d %q %v; unmasked %d %q %v",
				mcode, mreason, merr, code, reason, err,
			)
		}
		if !bytes.Equal(masked, maskedOrig) {
			t.Fatalf(
				"%s",
				"masked payload modified",
			)
		}

		if err == nil {
			fr := AppendClose(nil, code, string(reason), &mask)
			h, n, perr := ParseHeader(fr)
			if perr != nil || n == 0 || int64(len(fr)-n) != h.Length {
				t.Fatalf(
					"AppendClose made %x",
					fr,
				)
			}
			rcode, rreason, rerr := ParseClose(fr[n:], &h.Mask, scratch[:])
			if rerr != nil || rcode != code || !bytes.Equal(rreason, reason) {
				t.Fatalf(
					"round trip: %d %q %v; want %d %q",
					rcode, rreason, rerr, code, reason,
				)
			}
		}
	})
}
