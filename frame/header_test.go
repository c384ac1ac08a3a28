package frame

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/gobwas/ws"
)

// encode is the reference encoder for valid headers: gobwas/ws's own.
func encode(t testing.TB, h ws.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := ws.WriteHeader(&buf, h)
	if err != nil {
		t.Fatalf(
			"ws.WriteHeader(%+v): %v",
			h, err,
		)
	}
	return buf.Bytes()
}

var testMask = [4]byte{0xa1, 0xb2, 0xc3, 0xd4}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		h    ws.Header
		n    int
		err  error
	}{
		{
			name: "empty text",
			in:   []byte{0x81, 0x00},
			h:    ws.Header{Fin: true, OpCode: ws.OpText},
			n:    2,
		},
		{
			name: "7-bit 125 masked",
			in:   []byte{0x82, 0x80 | 125, 1, 2, 3, 4},
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: 125},
			n:    6,
		},
		{
			name: "all rsv bits, no fin, continuation",
			in:   []byte{0x70, 0x05},
			h:    ws.Header{Rsv: 0x7, OpCode: ws.OpContinuation, Length: 5},
			n:    2,
		},
		{
			name: "rsv1 only",
			in:   []byte{0xc1, 0x01},
			h:    ws.Header{Fin: true, Rsv: 0x4, OpCode: ws.OpText, Length: 1},
			n:    2,
		},
		{
			name: "reserved opcode parses (validation is Validator's)",
			in:   []byte{0x8b, 0x00},
			h:    ws.Header{Fin: true, OpCode: 0xb},
			n:    2,
		},
		{
			name: "16-bit 126",
			in:   []byte{0x82, 126, 0x00, 126},
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 126},
			n:    4,
		},
		{
			name: "16-bit 65535 masked",
			in:   []byte{0x82, 0x80 | 126, 0xff, 0xff, 9, 8, 7, 6},
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{9, 8, 7, 6}, Length: 65535},
			n:    8,
		},
		{
			name: "64-bit 65536",
			in:   []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0},
			h:    ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65536},
			n:    10,
		},
		{
			name: "64-bit max masked",
			in:   []byte{0x02, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4},
			h:    ws.Header{OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: math.MaxInt64},
			n:    14,
		},
		{
			name: "trailing payload is not consumed",
			in:   []byte{0x81, 0x03, 'a', 'b', 'c', 0x81},
			h:    ws.Header{Fin: true, OpCode: ws.OpText, Length: 3},
			n:    2,
		},
		{
			name: "16-bit encoding of 0",
			in:   []byte{0x82, 126, 0, 0},
			err:  ErrNonMinimalLength,
		},
		{
			name: "16-bit encoding of 125",
			in:   []byte{0x82, 126, 0, 125},
			err:  ErrNonMinimalLength,
		},
		{
			name: "64-bit encoding of 0",
			in:   []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0},
			err:  ErrNonMinimalLength,
		},
		{
			name: "64-bit encoding of 125",
			in:   []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 125},
			err:  ErrNonMinimalLength,
		},
		{
			name: "64-bit encoding of 126",
			in:   []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 126},
			err:  ErrNonMinimalLength,
		},
		{
			name: "64-bit encoding of 65535 masked",
			in:   []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4},
			err:  ErrNonMinimalLength,
		},
		{
			name: "64-bit MSB set",
			in:   []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0},
			err:  ErrLength63,
		},
		{
			name: "64-bit all ones",
			in:   []byte{0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			err:  ErrLength63,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := ParseHeader(tc.in)
			if err != tc.err {
				t.Fatalf(
					"err = %v, want %v",
					err, tc.err,
				)
			}
			if h != tc.h || n != tc.n {
				t.Fatalf(
					"got %+v, n=%d; want %+v, n=%d",
					h, n, tc.h, tc.n,
				)
			}
			if err != nil {
				return
			}
			// Every prefix of a complete header is "wait for more", never an error.
			for k := 0; k < n; k++ {
				ph, pn, perr := ParseHeader(tc.in[:k])
				if pn != 0 || perr != nil || ph != (ws.Header{}) {
					t.Fatalf(
						"prefix of %d bytes: got %+v, n=%d, err=%v; want zero, 0, nil",
						k, ph, pn, perr,
					)
				}
			}
		})
	}
}

// TestParseHeaderSplitInvalid checks that an invalid header is reported only
// once complete: until then the caller just waits.
func TestParseHeaderSplitInvalid(t *testing.T) {
	in := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4}
	for k := 0; k < len(in); k++ {
		_, n, err := ParseHeader(in[:k])
		if n != 0 || err != nil {
			t.Fatalf(
				"prefix %d: n=%d, err=%v",
				k, n, err,
			)
		}
	}
	_, n, err := ParseHeader(in)
	if n != 0 || err != ErrNonMinimalLength {
		t.Fatalf(
			"full: n=%d, err=%v",
			n, err,
		)
	}
}

// testLengths covers each encoding and both sides of every boundary.
var testLengths = []int64{
	0, 1, 125, 126, 127, 1000, 65535, 65536, 65537,
	1 << 32, math.MaxInt64 - 1, math.MaxInt64,
}

// allHeaders enumerates every first byte, masked and unmasked, over
// testLengths.
func allHeaders(yield func(ws.Header) bool) {
	for b0 := range 256 {
		for _, masked := range []bool{false, true} {
			for _, l := range testLengths {
				h := ws.Header{
					Fin:    b0&0x80 != 0,
					Rsv:    byte(b0&0x70) >> 4,
					OpCode: ws.OpCode(b0 & 0x0f),
					Length: l,
				}
				if masked {
					h.Masked = true
					h.Mask = testMask
				}
				if !yield(h) {
					return
				}
			}
		}
	}
}

// TestParseHeaderMatchesGobwas compares ParseHeader with ws.ReadHeader and
// AppendHeader with ws.WriteHeader on every valid header shape, each split at
// every byte boundary.
func TestParseHeaderMatchesGobwas(t *testing.T) {
	for h := range allHeaders {
		enc := encode(t, h)
		want, err := ws.ReadHeader(bytes.NewReader(enc))
		if err != nil || want != h {
			t.Fatalf(
				"ws.ReadHeader(%x) = %+v, %v; want %+v",
				enc, want, err, h,
			)
		}
		withPayload := append(enc, 0xee, 0xee)
		got, n, err := ParseHeader(withPayload)
		if err != nil || got != want || n != len(enc) || n != ws.HeaderSize(h) {
			t.Fatalf(
				"ParseHeader(%x) = %+v, %d, %v; want %+v, %d",
				withPayload, got, n, err, want, len(enc),
			)
		}
		for k := range len(enc) {
			_, n, err := ParseHeader(enc[:k])
			if n != 0 || err != nil {
				t.Fatalf(
					"ParseHeader(%x) = n %d, %v; want 0, nil",
					enc[:k], n, err,
				)
			}
		}
		app := AppendHeader([]byte{0xaa}, h)
		if !bytes.Equal(app[1:], enc) || app[0] != 0xaa {
			t.Fatalf(
				"AppendHeader(%+v) = %x; want aa%x",
				h, app, enc,
			)
		}
	}
}

// TestReadHeaderAcceptsNonMinimal records why ParseHeader cannot simply
// mirror ws.ReadHeader: gobwas accepts lengths in non-minimal encodings.
func TestReadHeaderAcceptsNonMinimal(t *testing.T) {
	in := []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5}
	h, err := ws.ReadHeader(bytes.NewReader(in))
	if err != nil || h.Length != 5 {
		t.Fatalf(
			"ws.ReadHeader = %+v, %v",
			h, err,
		)
	}
	if ws.HeaderSize(h) == len(in) {
		t.Fatalf(
			"HeaderSize(%+v) = %d, expected it to differ from the wire size",
			h, len(in),
		)
	}
	_, err = ws.ReadHeader(bytes.NewReader([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}))
	if !errors.Is(err, ws.ErrHeaderLengthMSB) {
		t.Fatalf(
			"ws.ReadHeader with MSB: %v",
			err,
		)
	}
}

func TestAppendHeaderNegativeLengthPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatalf(
				"%s",
				"no panic",
			)
		}
	}()
	AppendHeader(nil, ws.Header{Length: -1})
}

func TestIsControl(t *testing.T) {
	for op := range ws.OpCode(16) {
		if got, want := IsControl(op), op.IsControl(); got != want {
			t.Errorf(
				"IsControl(%#x) = %v, want %v",
				op, got, want,
			)
		}
	}
}

func TestViolations(t *testing.T) {
	all := []*Violation{
		ErrNonMinimalLength, ErrLength63, ErrUnmasked, ErrMasked,
		ErrReservedOpcode, ErrRSV, ErrRSV1Continuation, ErrRSV1Control,
		ErrControlTooLong, ErrControlFragmented, ErrUnexpectedContinuation,
		ErrExpectedContinuation, ErrMessageTooBig, ErrBadClosePayload,
	}
	seen := map[string]bool{}
	for _, v := range all {
		want := ws.StatusProtocolError
		if v == ErrMessageTooBig {
			want = ws.StatusMessageTooBig
		}
		if v.Code != want {
			t.Errorf(
				"%q: code %d, want %d",
				v.Reason, v.Code, want,
			)
		}
		if seen[v.Reason] {
			t.Errorf(
				"duplicate reason %q",
				v.Reason,
			)
		}
		seen[v.Reason] = true
		if v.Error() != v.Reason {
			t.Errorf(
				"Error() = %q",
				v.Error(),
			)
		}
		// A violation's reason goes into the Close frame as is.
		f := AppendClose(nil, v.Code, v.Reason, nil)
		code, reason, err := ParseClose(f[2:], nil, nil)
		if err != nil || code != v.Code || string(reason) != v.Reason {
			t.Errorf(
				"%q does not survive a Close frame: %d %q %v",
				v.Reason, code, reason, err,
			)
		}
	}
}

func TestParseHeaderAllocs(t *testing.T) {
	inputs := [][]byte{
		{0x81, 0x05},
		{0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4},
		{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5},
		{0x82},
	}
	for _, in := range inputs {
		allocs := testing.AllocsPerRun(1000, func() {
			_, _, _ = ParseHeader(in)
		})
		if allocs != 0 {
			t.Errorf(
				"ParseHeader(%x): %v allocs",
				in, allocs,
			)
		}
	}
	dst := make([]byte, 0, ws.MaxHeaderSize)
	h := ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Length: 1 << 40}
	if allocs := testing.AllocsPerRun(1000, func() {
		_ = AppendHeader(dst[:0], h)
	}); allocs != 0 {
		t.Errorf(
			"AppendHeader: %v allocs",
			allocs,
		)
	}
}

var sinkHeader ws.Header

func BenchmarkParseHeader(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{
			name: "7bit",
			in:   []byte{0x81, 0x05},
		},
		{
			name: "7bit-masked",
			in:   []byte{0x81, 0x85, 1, 2, 3, 4},
		},
		{
			name: "16bit-masked",
			in:   []byte{0x82, 0x80 | 126, 0x10, 0x00, 1, 2, 3, 4},
		},
		{
			name: "64bit-masked",
			in:   []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4},
		},
		{
			name: "incomplete",
			in:   []byte{0x82, 0x80 | 127, 0, 0},
		},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h, _, _ := ParseHeader(bc.in)
				sinkHeader = h
			}
		})
	}
}
