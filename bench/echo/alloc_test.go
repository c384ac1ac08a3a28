package echo

import (
	"bytes"
	"net"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/bench/internal/wsframe"
)

// countConn is a net.Conn that counts the bytes written to it.
type countConn struct {
	net.Conn
	n int
}

func (c *countConn) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// Echoing a batch of frames (parse, unmask, rewrite headers in place, one
// write) allocates nothing.
func TestEchoPathDoesNotAllocate(t *testing.T) {
	var in []byte
	for i, size := range []int{64, 64, 3000, 64, 200, 64, 64, 64} { // 3000: its own segment
		h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(size), Masked: true, Mask: [4]byte{1, 2, 3, byte(i)}}
		hb := make([]byte, wsframe.Size(h.Length, true))
		wsframe.Put(hb, h)
		in = append(append(in, hb...), bytes.Repeat([]byte{byte(i)}, size)...)
	}
	cc := &countConn{}
	c := &conn{s: New(Config{}), nc: cc, state: ws.StateServerSide, outEnd: -1}
	c.bufp = bufPool.Get().(*[]byte)
	c.bufPool, c.buf = &bufPool, *c.bufp
	c.iov = make([][]byte, 0, maxIOV)
	allocs := testing.AllocsPerRun(100, func() {
		c.r, c.w = 0, copy(c.buf, in)
		if _, err := c.process(); err != nil {
			t.Fatal(err)
		}
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch", allocs)
	}
	if want := 101 * (len(in) - 8*4); cc.n != want {
		t.Fatalf("wrote %d bytes, want %d", cc.n, want)
	}
}
