package loop

import (
	"bytes"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// TestReactorWakesFromPark: a reactor with nothing to do parks in Go's
// poller on its epoll descriptor; a frame arriving then must wake it at
// once, not at the next tick of the timers (tickEvery), which is when a
// lost wake-up would be noticed. Each echo round trip below needs two
// wake-ups of a parked reactor; were they lost, 40 round trips would take
// about 40 ticks (10 s) instead of milliseconds.
func TestReactorWakesFromPark(t *testing.T) {
	_, client, backend := runningSession(t, Config{Reactors: 1})

	const trips = 40
	start := time.Now()
	for i := range trips {
		time.Sleep(time.Millisecond) // let the reactor park
		payload := []byte{byte(i), 'p', 'i', 'n', 'g'}
		if _, err := client.Write(maskedFrame(ws.OpBinary, true, payload)); err != nil {
			t.Fatal(err)
		}
		f, err := ws.ReadFrame(backend)
		if err != nil {
			t.Fatalf("round trip %d: backend read: %v", i, err)
		}
		ws.Cipher(f.Payload, f.Header.Mask, 0)
		if !bytes.Equal(f.Payload, payload) {
			t.Fatalf("round trip %d: backend got %q, want %q", i, f.Payload, payload)
		}
		time.Sleep(time.Millisecond)
		if err := ws.WriteFrame(backend, ws.NewBinaryFrame(payload)); err != nil {
			t.Fatal(err)
		}
		f, err = ws.ReadFrame(client)
		if err != nil {
			t.Fatalf("round trip %d: client read: %v", i, err)
		}
		if !bytes.Equal(f.Payload, payload) {
			t.Fatalf("round trip %d: client got %q, want %q", i, f.Payload, payload)
		}
	}
	// A quarter of what lost wake-ups would cost: generous for a loaded
	// machine, far short of trips ticks.
	if took, limit := time.Since(start), time.Duration(trips*tickEvery/4); took > limit {
		t.Fatalf("%d round trips took %v (limit %v): the parked reactor was woken by its tick, not by the events", trips, took, limit)
	}
}

// TestReactorReadsOnAfterFullRead: a read that fills the reactor's scratch
// buffer may leave input in the kernel, which no new readiness will
// announce (the sender is done), so the reactor must ask epoll again
// rather than park. Each message below is three reads' worth, all in the
// client socket's queue before the reactor reads; were the rest left to
// the timers' tick, each would take two ticks (500 ms).
func TestReactorReadsOnAfterFullRead(t *testing.T) {
	r, client, backend := runningSession(t, Config{Reactors: 1, MaxMessageBytes: 1 << 20})
	// Room for a whole message in the client's queue: the write returns
	// before the reactor has read anything, and nothing arrives after.
	if err := unix.SetsockoptInt(int(client.Fd()), unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20); err != nil {
		t.Fatal(err)
	}

	const trips = 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), 3*len(r.scratch)/16-1)
	start := time.Now()
	for i := range trips {
		time.Sleep(time.Millisecond) // let the reactor park
		if _, err := client.Write(maskedFrame(ws.OpBinary, true, payload)); err != nil {
			t.Fatal(err)
		}
		f, err := ws.ReadFrame(backend)
		if err != nil {
			t.Fatalf("message %d: backend read: %v", i, err)
		}
		ws.Cipher(f.Payload, f.Header.Mask, 0)
		if !bytes.Equal(f.Payload, payload) {
			t.Fatalf("message %d: backend got %d bytes, not the %d sent", i, len(f.Payload), len(payload))
		}
	}
	if took, limit := time.Since(start), time.Duration(trips*tickEvery/4); took > limit {
		t.Fatalf("%d messages of %d bytes took %v (limit %v): the reactor parked with input left", trips, len(payload), took, limit)
	}
}

// runningSession starts a loop with one running reactor and a session on it
// between two socket pairs, and returns the reactor and the remote ends the
// test plays: the client and the backend.
func runningSession(t *testing.T, cfg Config) (r *reactor, client, backend *os.File) {
	t.Helper()
	l, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	r = l.reactors[0]
	s := &Session{loop: l, r: r, start: time.Now()}
	s.initPeers()
	l.stats.SessionsActive.Add(1)
	cfd, client := socketPair(t)
	bfd, backend := socketPair(t)
	t.Cleanup(func() { client.Close(); backend.Close() })
	s.adopt(SideClient, cfd, nil)
	s.adopt(SideBackend, bfd, nil)
	return r, client, backend
}
