package loop

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// dialAccepted dials ln through l and accepts the backend's end.
func dialAccepted(t *testing.T, l *Loop, ln net.Listener) (*Upstream, net.Conn) {
	t.Helper()
	u, err := l.Dial(context.Background(), ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	srv, err := ln.Accept()
	if err != nil {
		u.Close()
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return u, srv
}

// claimedUpstream dials a fresh backend and claims the upstream, as a
// handshake would.
func claimedUpstream(t *testing.T) (*Upstream, net.Conn) {
	t.Helper()
	u, srv := dialAccepted(t, testLoop(t), listenTCP(t, "tcp4", "127.0.0.1:0"))
	t.Cleanup(u.Close)
	if !u.Claim() {
		t.Fatal("a fresh upstream could not be claimed")
	}
	return u, srv
}

// A warm upstream whose backend hangs up, or speaks unasked, is closed by
// its reactor and reported through OnClose; it can no longer be claimed.
func TestUpstreamIdleHangUp(t *testing.T) {
	l := testLoop(t)
	ln := listenTCP(t, "tcp4", "127.0.0.1:0")
	for _, tc := range []struct {
		name    string
		backend func(net.Conn)
	}{
		{"close", func(c net.Conn) { c.Close() }},
		{"reset", func(c net.Conn) { c.(*net.TCPConn).SetLinger(0); c.Close() }},
		{"speaks", func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := openFDs(t)
			u, srv := dialAccepted(t, l, ln)
			closed := make(chan struct{})
			u.OnClose(idleClosedFunc(func(*Upstream) { close(closed) }))
			// Idle for a while first: nothing happens without a cause.
			select {
			case <-closed:
				t.Fatal("OnClose ran while the backend was quiet")
			case <-time.After(50 * time.Millisecond):
			}
			tc.backend(srv)
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("the reactor did not notice the backend")
			}
			if u.Claim() {
				t.Error("claimed an upstream the backend gave up")
			}
			u.Close() // a no-op now
			srv.Close()
			checkNoFDLeak(t, before)
		})
	}
}

// A claimed upstream is its handshake's: a hang-up wakes the reader, and
// the reactor neither closes it nor calls OnClose.
func TestUpstreamClaimedHangUp(t *testing.T) {
	l := testLoop(t)
	ln := listenTCP(t, "tcp4", "127.0.0.1:0")
	before := openFDs(t)
	u, srv := dialAccepted(t, l, ln)
	called := make(chan struct{}, 1)
	u.OnClose(idleClosedFunc(func(*Upstream) { called <- struct{}{} }))
	if !u.Claim() {
		t.Fatal("a fresh upstream could not be claimed")
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		srv.Write([]byte("HTTP/1.1 101 Switching"))
		srv.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil {
		err = u.Fill(deadline, 1024)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Fill: %v, want EOF after the partial head", err)
	}
	if got := string(u.Buffered()); got != "HTTP/1.1 101 Switching" {
		t.Errorf("buffered %q", got)
	}
	select {
	case <-called:
		t.Error("OnClose ran for a claimed upstream")
	default:
	}
	u.Close()
	checkNoFDLeak(t, before)
}

func TestUpstreamFillDeadline(t *testing.T) {
	u, _ := claimedUpstream(t)
	start := time.Now()
	err := u.Fill(start.Add(150*time.Millisecond), 1024)
	took := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Fill: %v, want a deadline error", err)
	}
	if took < 140*time.Millisecond || took > 2*time.Second {
		t.Errorf("Fill gave up after %v, want about 150ms", took)
	}
}

// Fill keeps what it read in one buffer up to its limit, and refuses more.
func TestUpstreamFillLimit(t *testing.T) {
	u, srv := claimedUpstream(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB: grows the 4 KiB buffer twice
	go srv.Write(want)
	deadline := time.Now().Add(5 * time.Second)
	for len(u.Buffered()) < len(want) {
		if err := u.Fill(deadline, len(want)); err != nil {
			t.Fatalf("Fill after %d bytes: %v", len(u.Buffered()), err)
		}
	}
	if !bytes.Equal(u.Buffered(), want) {
		t.Fatal("buffered bytes differ from what the backend sent")
	}
	srv.Write([]byte("x"))
	if err := u.Fill(deadline, len(want)); err == nil {
		t.Fatal("Fill read past its limit")
	}
	u.Consume(len(want) - 1)
	if err := u.Fill(deadline, len(want)); err != nil || string(u.Buffered()) != "fx" {
		t.Fatalf("after Consume: %q, %v; want \"fx\"", u.Buffered(), err)
	}
}

// A request larger than the socket's send buffer, to a backend that reads
// only later: Send waits for the reactor's edge rather than failing or
// spinning.
func TestUpstreamSendWaitsForRoom(t *testing.T) {
	u, srv := claimedUpstream(t)
	big := bytes.Repeat([]byte{'r'}, 16<<20)
	got := make(chan int, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		n, _ := io.Copy(io.Discard, io.LimitReader(srv, int64(len(big))))
		got <- int(n)
	}()
	start := time.Now()
	if err := u.Send(big, start.Add(10*time.Second)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("16 MiB sent in %v, before the backend read: the test did not fill the socket", took)
	}
	if n := <-got; n != len(big) {
		t.Errorf("backend read %d bytes, want %d", n, len(big))
	}

	// And gives up at its deadline when the backend never reads.
	start = time.Now()
	err := u.Send(big, start.Add(200*time.Millisecond))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send to a backend that does not read: %v, want a deadline error", err)
	}
}

// idleClosedFunc makes a function an IdleCloseHandler.
type idleClosedFunc func(*Upstream)

func (f idleClosedFunc) IdleClosed(u *Upstream) { f(u) }
