package loop

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// Session sockets are watched edge-triggered, so input that an edge
// reported and the relay left in the kernel is reported by nothing else.
// These tests send what only a reread finds.

// A burst many times the scratch buffer, sent at once to a backend that
// does not read at first: every read fills the buffer, the backend's
// socket fills and pauses the client, and when the backend reads, all of
// it arrives, byte for byte, though the client sends nothing more.
func TestEdgeBurstAcrossBackpressure(t *testing.T) {
	for _, onReactor := range []bool{true, false} {
		name := "goroutine"
		if onReactor {
			name = "reactor"
		}
		t.Run(name, func(t *testing.T) { testEdgeBurst(t, onReactor) })
	}
}

// edgeSession upgrades a client through a one-reactor loop, on the
// reactor or on a goroutine. Its close timeout is an hour: a session that
// waits for it does not end within a test.
func edgeSession(t *testing.T, onReactor bool, first []byte) (client *os.File, backend *os.File, l *Loop) {
	t.Helper()
	var ln *Listener
	var conns chan *os.File
	cfg := Config{Reactors: 1, MaxMessageBytes: 16 << 20, CloseTimeout: time.Hour}
	if onReactor {
		l, ln, _, conns = reactorListening(t, cfg, 1, func() string { return "101" })
	} else {
		l, ln, _, conns = listening(t, cfg)
	}
	client, _ = upgradeClient(t, ln, first)
	backend = <-conns
	t.Cleanup(func() { backend.Close() })
	return client, backend, l
}

func testEdgeBurst(t *testing.T, onReactor bool) {
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	t.Cleanup(func() {
		checkNoFDLeak(t, fds)
		checkNoGoroutineLeak(t, goroutines)
	})
	first := maskedFrame(ws.OpBinary, true, []byte("first"))
	client, backend, l := edgeSession(t, onReactor, first)
	if f, err := ws.ReadFrame(backend); err != nil || string(unmasked(f)) != "first" {
		t.Fatalf("backend's first frame: %q, %v", unmasked(f), err)
	}

	const frames, size = 48, 64 << 10 // 3 MiB
	var burst, want bytes.Buffer
	for i := range frames {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		p[0], p[size-1] = byte(i), byte(i)
		burst.Write(maskedFrame(ws.OpBinary, true, p))
		want.Write(p)
	}
	sent := make(chan error, 1)
	go func() {
		_, err := client.Write(burst.Bytes())
		sent <- err
	}()
	// Let the relay fill the backend's socket and pause the client.
	time.Sleep(100 * time.Millisecond)
	backend.SetDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	for got.Len() < want.Len() {
		f, err := ws.ReadFrame(backend)
		if err != nil {
			t.Fatalf("backend read after %d of %d bytes: %v", got.Len(), want.Len(), err)
		}
		got.Write(unmasked(f))
	}
	if err := <-sent; err != nil {
		t.Fatalf("client write: %v", err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatal("the burst arrived changed")
	}
	client.Close()
	backend.Close()
	waitSessions(t, l, 0)
}

// A backend's Close and its FIN in one segment, after the client's Close:
// the read that takes the Close leaves the FIN unread, and the session
// must end on it — not at the close deadline.
func TestEdgeCloseAndFINInOneSegment(t *testing.T) {
	for _, onReactor := range []bool{true, false} {
		name := "goroutine"
		if onReactor {
			name = "reactor"
		}
		t.Run(name, func(t *testing.T) {
			fds, goroutines := openFDs(t), runtime.NumGoroutine()
			t.Cleanup(func() {
				checkNoFDLeak(t, fds)
				checkNoGoroutineLeak(t, goroutines)
			})
			client, backend, l := edgeSession(t, onReactor, nil)
			closing := maskedFrame(ws.OpClose, true, []byte{0x03, 0xe8})
			if _, err := client.Write(closing); err != nil {
				t.Fatal(err)
			}
			backend.SetDeadline(time.Now().Add(5 * time.Second))
			if f, err := ws.ReadFrame(backend); err != nil || f.Header.OpCode != ws.OpClose {
				t.Fatalf("backend got %v, %v; want the client's Close", f.Header.OpCode, err)
			}
			// Corked, the Close waits for the FIN and leaves with it.
			onFd(t, backend, func(fd int) error {
				return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_CORK, 1)
			})
			if _, err := backend.Write(ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "")))); err != nil {
				t.Fatal(err)
			}
			onFd(t, backend, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) })
			// wsgate closes its end once it has read the FIN.
			backend.SetDeadline(time.Now().Add(5 * time.Second))
			if n, err := io.Copy(io.Discard, backend); err != nil || n != 0 {
				t.Fatalf("backend end: %d bytes, %v; want an end of stream from wsgate", n, err)
			}
			client.SetDeadline(time.Now().Add(3 * time.Second))
			if rest, err := io.ReadAll(client); err != nil || len(rest) < 2 || ws.OpCode(rest[0]&0xf) != ws.OpClose {
				t.Fatalf("client got %x, %v; want the backend's Close and the end", rest, err)
			}
			waitSessions(t, l, 0)
		})
	}
}

// onFd runs f on the file's descriptor without making it blocking (as Fd
// would), so that its deadlines still hold.
func onFd(t *testing.T, file *os.File, f func(fd int) error) {
	t.Helper()
	rc, err := file.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatal(ferr)
	}
}

func unmasked(f ws.Frame) []byte {
	if f.Header.Masked {
		ws.Cipher(f.Payload, f.Header.Mask, 0)
	}
	return f.Payload
}

// A frame the client sends while the reactor awaits the backend's answer
// comes with an edge the handshake does not read: the client's socket must
// not join its session as if nothing were waiting.
func TestEdgeFrameBeforeTheAnswer(t *testing.T) {
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	t.Cleanup(func() {
		checkNoFDLeak(t, fds)
		checkNoGoroutineLeak(t, goroutines)
	})
	asked, answered := make(chan struct{}), make(chan struct{})
	l, ln, h, conns := reactorListening(t, Config{}, 1, func() string {
		close(asked) // the request came through: the reactor awaits the answer
		<-answered
		return "101"
	})
	c := requestingClient(t, ln)
	<-asked
	if _, err := c.Write(maskedFrame(ws.OpBinary, true, []byte("early"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // its edge comes and goes
	close(answered)
	backend := <-conns
	defer backend.Close()
	backend.SetDeadline(time.Now().Add(5 * time.Second))
	if f, err := ws.ReadFrame(backend); err != nil || string(unmasked(f)) != "early" {
		t.Fatalf("backend got %q, %v; want the client's early frame", unmasked(f), err)
	}
	if h.upgradedOnReactor.Load() != 1 {
		t.Errorf("%d upgrades on the reactor, want 1", h.upgradedOnReactor.Load())
	}
	c.Close()
	backend.Close()
	waitSessions(t, l, 0)
}
