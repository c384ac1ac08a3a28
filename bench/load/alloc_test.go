package load

import (
	"net"
	"testing"

	"github.com/gobwas/ws"
	"github.com/wsgate/wsgate/bench/internal/wsframe"
)

// discardConn is a net.Conn that accepts every write.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// The per-message path of a throughput session allocates nothing: building
// and writing a batch, parsing echoes and recording their latency.
func TestThroughputPathDoesNotAllocate(t *testing.T) {
	cfg := &Config{Size: 64, InFlight: 8}
	s := newTPSession(discardConn{}, nil, cfg)

	// Eight server frames (unmasked echoes) in the read buffer.
	var echoes []byte
	payload := make([]byte, 64)
	for i := range 8 {
		copy(payload, s.payload)
		putU64(payload[8:], uint64(i))
		h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 64}
		hb := make([]byte, wsframe.Size(64, false))
		wsframe.Put(hb, h)
		echoes = append(append(echoes, hb...), payload...)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := s.send(8); err != nil {
			t.Fatal(err)
		}
		s.received = 0
		s.fr.r, s.fr.w = 0, copy(s.fr.buf, echoes)
		for {
			h, p, ok, err := s.fr.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			sentAt, err := s.check(h, p)
			if err != nil {
				t.Fatal(err)
			}
			s.hist.RecordValue(max(1000, mono()-sentAt))
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of 8 messages", allocs)
	}
	if s.received != 8 {
		t.Fatalf("parsed %d echoes", s.received)
	}
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}
