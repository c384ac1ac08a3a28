package loop

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/frame"
)

func testLoop(t *testing.T) *Loop {
	t.Helper()
	l, err := New(Config{MaxMessageBytes: 16 << 20, Reactors: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// socketPair returns a non-blocking socket for a peer and a blocking file
// for the test to play the remote end.
func socketPair(t *testing.T) (int, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	return fds[0], os.NewFile(uintptr(fds[1]), "remote")
}

// relayFixture is a session whose two sockets are registered with a reactor
// that does not run: the test drives the relay itself, on its goroutine.
type relayFixture struct {
	s       *Session
	r       *reactor
	backend *os.File // the backend's end
	out     chan int64
	drained bool // the backend's end is being read
	// clientGone is closed when the client's end has read EOF: wsgate
	// closed the client's socket.
	clientGone chan struct{}
}

func newRelayFixture(t *testing.T, drainBackend bool) *relayFixture {
	t.Helper()
	l := testLoop(t)
	r, err := newReactor(l, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.closeDescriptors)
	s := &Session{loop: l, r: r, start: time.Now()}
	s.initPeers()
	cfd, cf := socketPair(t)
	bfd, bf := socketPair(t)
	for _, reg := range []struct {
		p  *peer
		fd int
	}{{&s.client, cfd}, {&s.backend, bfd}} {
		if err := r.register(reg.p, reg.fd); err != nil {
			t.Fatal(err)
		}
	}
	s.adopted, s.started = 2, true
	r.sessions.add(s)
	if drainBackend {
		// Room enough that the relay's writes do not block while the
		// draining goroutine catches up.
		for _, fd := range []int{cfd, bfd} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20); err != nil {
				t.Fatal(err)
			}
		}
	}
	f := &relayFixture{s: s, r: r, backend: bf, out: make(chan int64, 1), clientGone: make(chan struct{})}
	go func() { io.Copy(io.Discard, cf); cf.Close(); close(f.clientGone) }()
	if drainBackend {
		f.drainBackend()
	}
	t.Cleanup(func() {
		if s.state.Load() != sessFinished {
			s.finish()
		}
	})
	return f
}

func (f *relayFixture) drainBackend() {
	f.drained = true
	go func() {
		n, _ := io.Copy(io.Discard, f.backend)
		f.backend.Close()
		f.out <- n
	}()
}

func maskedFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload)), Masked: true, Mask: [4]byte{1, 2, 3, 4}}
	b := frame.AppendHeader(nil, h)
	p := append([]byte(nil), payload...)
	ws.Cipher(p, h.Mask, 0)
	return append(b, p...)
}

// feed relays b as if it had just been read from the client, and waits
// for a blocked backend to take it, as the reactor would.
func (f *relayFixture) feed(b []byte) {
	f.s.c2b.relay(b)
	for f.s.backend.out != nil && f.drained {
		f.s.backend.onWritable()
	}
}

// TestRelayAllocs proves that relaying frames in steady state — small and
// large data frames, fragments, pings, and headers split across reads —
// allocates nothing.
func TestRelayAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this test without it too")
	}
	f := newRelayFixture(t, true)
	small := maskedFrame(ws.OpText, true, []byte("hello, wsgate"))
	big := maskedFrame(ws.OpBinary, true, make([]byte, 60<<10))
	ping := maskedFrame(ws.OpPing, true, []byte("p"))
	frag := append(maskedFrame(ws.OpText, false, []byte("ab")), maskedFrame(ws.OpContinuation, true, []byte("cd"))...)
	batch := append(append(append([]byte(nil), small...), ping...), frag...)
	splitA, splitB := small[:3], small[3:]
	bigA, bigB := big[:20<<10], big[20<<10:]
	// Warm up bytebufferpool before counting.
	for range 50 {
		f.feed(batch)
		f.feed(splitA)
		f.feed(splitB)
	}
	cases := []struct {
		name string
		run  func()
	}{
		{"batch", func() { f.feed(batch) }},
		{"60KiB frame", func() { f.feed(big) }},
		{"frame across reads", func() { f.feed(bigA); f.feed(bigB) }},
		{"split header", func() { f.feed(splitA); f.feed(splitB) }},
	}
	for _, c := range cases {
		before := f.s.c2b.bytes
		if a := testing.AllocsPerRun(200, c.run); a != 0 {
			t.Errorf("%s: %.1f allocations per run, want 0", c.name, a)
		}
		if f.s.c2b.bytes == before {
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
	f := newRelayFixture(t, true)
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
		f.feed(all[i : i+n])
		i += n
	}
	if f.s.aborting() {
		t.Fatalf("session aborted: %v", f.s.Cause())
	}
	f.r.closeFd(&f.s.backend)
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
	f := newRelayFixture(t, true)
	f.feed([]byte{0x81, 0x01, 'x'})
	if got := f.s.Cause(); got != CauseClientProtocol {
		t.Fatalf("cause %v, want %v", got, CauseClientProtocol)
	}
	if c, b := f.s.codeToClient, f.s.codeToBackend; c != 1002 || b != 1001 {
		t.Fatalf("close codes to client %d, backend %d; want 1002, 1001", c, b)
	}
	if !f.s.client.closeSent || !f.s.backend.closeSent {
		t.Fatalf("Close frames queued: client %v, backend %v; want both", f.s.client.closeSent, f.s.backend.closeSent)
	}
}

// TestRelayBackpressure: when the backend stops reading, wsgate keeps at
// most one read's worth for it and stops reading the client; once the
// backend reads again, everything arrives and the client is read again.
func TestRelayBackpressure(t *testing.T) {
	f := newRelayFixture(t, false)
	chunk := make([]byte, 16<<10)
	frameBytes := maskedFrame(ws.OpBinary, true, make([]byte, 8<<20))
	var fed int
	for off := 0; off < len(frameBytes) && f.s.backend.out == nil; off += len(chunk) {
		end := min(off+len(chunk), len(frameBytes))
		f.feed(frameBytes[off:end])
		fed = end
	}
	if f.s.backend.out == nil {
		t.Fatalf("the backend never blocked after %d bytes", fed)
	}
	if held := len(f.s.backend.out.B) - f.s.backend.outOff; held > len(chunk) {
		t.Errorf("wsgate holds %d bytes for the blocked backend, want at most one read (%d)", held, len(chunk))
	}
	if f.s.client.interest&unix.EPOLLIN != 0 || f.s.client.readable() {
		t.Errorf("the client is still read while its backend is blocked (interest %#x)", f.s.client.interest)
	}
	if f.s.backend.interest&unix.EPOLLOUT == 0 {
		t.Errorf("the blocked backend is not watched for EPOLLOUT (interest %#x)", f.s.backend.interest)
	}
	if len(f.r.blocked.items) != 1 || f.r.blocked.items[0] != &f.s.backend {
		t.Errorf("blocked list %v, want the backend alone", f.r.blocked.items)
	}
	f.drainBackend()
	f.drained = false
	deadline := time.Now().Add(5 * time.Second)
	for f.s.backend.out != nil && time.Now().Before(deadline) {
		f.s.backend.onWritable()
		time.Sleep(time.Millisecond)
	}
	if f.s.backend.out != nil {
		t.Fatal("the backend's queue never drained")
	}
	if f.s.client.interest&unix.EPOLLIN == 0 {
		t.Errorf("the client is not read again after its backend drained (interest %#x)", f.s.client.interest)
	}
	if len(f.r.blocked.items) != 0 {
		t.Errorf("blocked list %v after draining, want empty", f.r.blocked.items)
	}
	f.r.closeFd(&f.s.backend)
	select {
	case n := <-f.out:
		if n != int64(fed) {
			t.Fatalf("backend received %d bytes, want %d", n, fed)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend side never closed")
	}
}

// TestStopClosesHalfAdopted: a session that got one of its sockets but
// not the other when its reactor stops still closes that socket and is
// reported, so nothing leaks.
func TestStopClosesHalfAdopted(t *testing.T) {
	l, err := New(Config{Reactors: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan EndReport, 1)
	s := &Session{loop: l, r: l.reactors[0], start: time.Now(),
		params: SessionParams{OnEnd: EndFunc(func(r EndReport) { ended <- r })}}
	s.initPeers()
	l.stats.SessionsActive.Add(1)
	fd, remote := socketPair(t)
	defer remote.Close()
	s.adopt(SideClient, fd, nil)
	l.Close()
	select {
	case r := <-ended:
		if r.Cause != CauseShutdown {
			t.Errorf("cause %v, want %v", r.Cause, CauseShutdown)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the half-adopted session was never reported")
	}
	remote.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := remote.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read from the handed-over socket's peer: %d, %v; want EOF (socket closed)", n, err)
	}
	if n := l.Sessions(); n != 0 {
		t.Errorf("%d sessions active after stop, want 0", n)
	}
}
