package loop

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// closeHandshake runs a client-initiated closing handshake through f: the
// client's Close reaches the backend, the backend answers with its own.
func closeHandshake(t *testing.T, f *relayFixture) {
	t.Helper()
	f.feed(maskedFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")))
	h, err := ws.ReadHeader(f.backend)
	if err != nil || h.OpCode != ws.OpClose || !h.Masked {
		t.Fatalf("backend read %+v, %v; want the client's masked Close", h, err)
	}
	body := make([]byte, h.Length)
	if _, err := f.backend.Read(body); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteFrame(f.backend, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))); err != nil {
		t.Fatal(err)
	}
	f.s.backend.onReadable(unix.EPOLLIN)
}

// TestCloseWaitsForBackendFIN: after a closing handshake wsgate closes the
// client's TCP connection at once (it is the server there) and the
// backend's only when the backend has closed it (wsgate is the client
// there, RFC 6455 §7.1.1), so that no TIME_WAIT is left on wsgate's
// ephemeral ports.
func TestCloseWaitsForBackendFIN(t *testing.T) {
	f := newRelayFixture(t, false)
	s := f.s
	closeHandshake(t, f)
	select {
	case <-f.clientGone:
	case <-time.After(5 * time.Second):
		t.Fatal("client's connection still open after the closing handshake")
	}
	if s.state.Load() == sessFinished || s.backend.fd < 0 {
		t.Fatal("backend's connection closed before the backend closed it")
	}
	if s.backend.interest&unix.EPOLLIN == 0 {
		t.Fatal("backend socket not watched for its FIN")
	}
	f.backend.Close() // the backend's FIN
	s.backend.onReadable(unix.EPOLLIN)
	if s.state.Load() != sessFinished {
		t.Fatal("session not finished after the backend's FIN")
	}
	if c := s.Cause(); c != CauseClosed {
		t.Fatalf("cause %v, want %v", c, CauseClosed)
	}
}

// TestCloseBackendNeverCloses: a backend that keeps its TCP connection open
// after the closing handshake is cut at the close deadline; the session
// still counts as closed normally.
func TestCloseBackendNeverCloses(t *testing.T) {
	f := newRelayFixture(t, false)
	s := f.s
	closeHandshake(t, f)
	<-f.clientGone
	if s.closeDeadline == 0 {
		t.Fatal("no close deadline while waiting for the backend's FIN")
	}
	f.r.now = s.closeDeadline - 1
	f.r.tick()
	if s.state.Load() == sessFinished {
		t.Fatal("cut before the close deadline")
	}
	f.r.now = s.closeDeadline + 1
	f.r.tick()
	if s.state.Load() != sessFinished {
		t.Fatal("not cut at the close deadline")
	}
	if c := s.Cause(); c != CauseClosed {
		t.Fatalf("cause %v, want %v", c, CauseClosed)
	}
	// wsgate's close is the backend's EOF.
	if n, err := f.backend.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("backend read %d, %v after the cut; want EOF", n, err)
	}
}

// A Close that the backend never answers is cut at the close deadline and
// counted as close_timeout; one that wsgate began (here a violation) keeps
// its own cause.
func TestCloseUnansweredCause(t *testing.T) {
	// cutAtDeadline runs the tick just past the session's close deadline
	// and returns the cause the session ended with.
	cutAtDeadline := func(t *testing.T, f *relayFixture) Cause {
		t.Helper()
		f.r.now = f.s.closeDeadline + 1
		f.r.tick()
		if f.s.state.Load() != sessFinished {
			t.Fatal("not cut at the close deadline")
		}
		return f.s.Cause()
	}
	t.Run("client's Close", func(t *testing.T) {
		f := newRelayFixture(t, false)
		f.feed(maskedFrame(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")))
		if h, err := ws.ReadHeader(f.backend); err != nil || h.OpCode != ws.OpClose {
			t.Fatalf("backend read %+v, %v; want the client's Close", h, err)
		}
		if c := f.s.Cause(); c != CauseClosed {
			t.Fatalf("cause %v while the backend owes its Close, want %v", c, CauseClosed)
		}
		if c := cutAtDeadline(t, f); c != CauseCloseTimeout {
			t.Fatalf("cause %v, want %v", c, CauseCloseTimeout)
		}
	})
	t.Run("violation", func(t *testing.T) {
		f := newRelayFixture(t, false)
		// A client's frame must be masked (RFC 6455 5.1).
		unmaskedText, err := ws.CompileFrame(ws.NewTextFrame([]byte("unmasked")))
		if err != nil {
			t.Fatal(err)
		}
		f.feed(unmaskedText)
		if c := f.s.Cause(); c != CauseClientProtocol {
			t.Fatalf("cause %v, want %v", c, CauseClientProtocol)
		}
		if c := cutAtDeadline(t, f); c != CauseClientProtocol {
			t.Fatalf("cause %v after the deadline, want %v", c, CauseClientProtocol)
		}
	})
}
