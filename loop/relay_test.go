package loop

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/frame"
)

// drainedConn returns a netpoll connection whose peer reads and discards
// everything, counting it into got.
func drainedConn(t *testing.T, got chan<- int64) netpoll.Connection {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	conn, err := netpoll.DialConnection("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func testLoop(t *testing.T) *Loop {
	t.Helper()
	l, err := New(Config{MaxMessageBytes: 16 << 20}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// relayFixture is one client-to-backend direction whose input is a netpoll
// LinkBuffer the test fills and whose output is a real socket.
type relayFixture struct {
	s   *Session
	in  *netpoll.LinkBuffer
	out chan int64
}

func newRelayFixture(t *testing.T) *relayFixture {
	l := testLoop(t)
	f := &relayFixture{in: netpoll.NewLinkBuffer(), out: make(chan int64, 1)}
	s := &Session{loop: l, start: time.Now()}
	s.client.conn = drainedConn(t, make(chan int64, 1))
	s.backend.conn = drainedConn(t, f.out)
	s.initPeers()
	s.refs.Store(2)
	s.slot = l.reg.add(s)
	// As in a real session, a closing connection waits for a write in
	// progress before netpoll frees its buffers.
	s.client.conn.AddCloseCallback(func(netpoll.Connection) error { s.client.onClosed(); return nil })
	s.backend.conn.AddCloseCallback(func(netpoll.Connection) error { s.backend.onClosed(); return nil })
	f.s = s
	t.Cleanup(func() {
		s.client.conn.Close()
		s.backend.conn.Close()
	})
	return f
}

func maskedFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: [4]byte{1, 2, 3, 4}}
	b := frame.AppendHeader(nil, h)
	p := append([]byte(nil), payload...)
	ws.Cipher(p, h.Mask, 0)
	return append(b, p...)
}

func (f *relayFixture) feed(t *testing.T, b []byte) {
	t.Helper()
	if _, err := f.in.WriteBinary(b); err != nil {
		t.Fatal(err)
	}
	if err := f.in.Flush(); err != nil {
		t.Fatal(err)
	}
	f.s.c2b.pumpFrom(f.in)
}

// TestRelayAllocs proves that relaying frames in steady state — small and
// large data frames, fragments, pings, and headers split across reads —
// allocates nothing in wsgate's code.
func TestRelayAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this test without it too")
	}
	f := newRelayFixture(t)
	small := maskedFrame(ws.OpText, true, []byte("hello, wsgate"))
	big := maskedFrame(ws.OpBinary, true, make([]byte, 64<<10))
	ping := maskedFrame(ws.OpPing, true, []byte("p"))
	frag := append(maskedFrame(ws.OpText, false, []byte("ab")), maskedFrame(ws.OpContinuation, true, []byte("cd"))...)
	batch := append(append(append([]byte(nil), small...), ping...), frag...)
	splitA, splitB := small[:3], small[3:]
	// Warm up pools (netpoll's mcache, bytebufferpool) before counting.
	for range 50 {
		f.feed(t, batch)
		f.feed(t, big)
		f.feed(t, splitA)
		f.feed(t, splitB)
	}
	cases := []struct {
		name string
		run  func()
	}{
		{"batch", func() { f.feed(t, batch) }},
		{"64KiB frame", func() { f.feed(t, big) }},
		{"split header", func() { f.feed(t, splitA); f.feed(t, splitB) }},
	}
	for _, c := range cases {
		before := f.s.c2b.bytes.Load()
		if a := testing.AllocsPerRun(200, c.run); a != 0 {
			t.Errorf("%s: %.1f allocations per run, want 0", c.name, a)
		}
		if f.s.c2b.bytes.Load() == before {
			t.Errorf("%s: nothing was relayed", c.name)
		}
	}
	if f.s.aborting() {
		t.Fatalf("session aborted: %v", f.s.Cause())
	}
}

// TestRelayByteExact checks that what comes out is exactly what went in,
// whatever the split of the input.
func TestRelayByteExact(t *testing.T) {
	f := newRelayFixture(t)
	var all []byte
	for i := range 40 {
		all = append(all, maskedFrame(ws.OpBinary, true, make([]byte, i*97))...)
		all = append(all, maskedFrame(ws.OpPing, true, []byte{byte(i)})...)
	}
	for i := 0; i < len(all); {
		n := 1 + (i*7)%23
		if i+n > len(all) {
			n = len(all) - i
		}
		f.feed(t, all[i:i+n])
		i += n
	}
	if f.s.aborting() {
		t.Fatalf("session aborted: %v", f.s.Cause())
	}
	f.s.backend.conn.Close()
	select {
	case n := <-f.out:
		if n != int64(len(all)) {
			t.Fatalf("relayed %d bytes, want %d", n, len(all))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend side never closed")
	}
}

// TestRelayRejectsUnmasked checks that a client frame without a mask fails
// the session with 1002 to the client and 1001 to the backend.
func TestRelayRejectsUnmasked(t *testing.T) {
	f := newRelayFixture(t)
	f.feed(t, []byte{0x81, 0x01, 'x'})
	deadline := time.Now().Add(2 * time.Second)
	for f.s.codeToClient.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := f.s.Cause(); got != CauseClientProtocol {
		t.Fatalf("cause %v, want %v", got, CauseClientProtocol)
	}
	if c, b := f.s.codeToClient.Load(), f.s.codeToBackend.Load(); c != 1002 || b != 1001 {
		t.Fatalf("close codes to client %d, backend %d; want 1002, 1001", c, b)
	}
}
