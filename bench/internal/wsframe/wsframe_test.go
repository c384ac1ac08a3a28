package wsframe

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// Headers encoded by Put decode to the same header with gobwas/ws, and
// headers encoded by gobwas/ws parse back with Parse, at every length
// boundary, and a truncated header is reported as incomplete.
func TestRoundTrip(t *testing.T) {
	for _, length := range []int64{0, 1, 125, 126, 127, 0xffff, 0x10000, 1 << 40} {
		for _, masked := range []bool{false, true} {
			h := ws.Header{Fin: length%2 == 0, Rsv: 0, OpCode: ws.OpBinary, Length: length, Masked: masked}
			if masked {
				h.Mask = [4]byte{1, 2, 3, 4}
			}
			buf := make([]byte, ws.MaxHeaderSize)
			n := Put(buf, h)
			if n != Size(length, masked) || n != ws.HeaderSize(h) {
				t.Fatalf("%+v: Put wrote %d, Size %d, ws.HeaderSize %d", h, n, Size(length, masked), ws.HeaderSize(h))
			}
			got, err := ws.ReadHeader(bytes.NewReader(buf[:n]))
			if err != nil || got != h {
				t.Fatalf("ws.ReadHeader(Put(%+v)) = %+v, %v", h, got, err)
			}
			var w bytes.Buffer
			ws.WriteHeader(&w, h)
			got, m, err := Parse(w.Bytes())
			if err != nil || m != n || got != h {
				t.Fatalf("Parse(ws.WriteHeader(%+v)) = %+v, %d, %v", h, got, m, err)
			}
			for k := range n {
				if _, m, err := Parse(w.Bytes()[:k]); m != 0 || err != nil {
					t.Fatalf("Parse of %d of %d bytes: %d, %v", k, n, m, err)
				}
			}
		}
	}
	if _, _, err := Parse([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}); err != ws.ErrHeaderLengthMSB {
		t.Fatalf("64-bit length with the top bit set: %v", err)
	}
}
