package health

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

func TestCheckKinds(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	silent := silentServer(t)
	closed := closedPort(t)
	wrongAccept := fakeUpgradeServer(t, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBhY2NlcHQ=\r\n\r\n")
	noClose := pongServer(t)
	closesFirst := rawWSServer(t, func(c net.Conn) {
		_ = ws.WriteFrame(c, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")))
		_, _ = io.Copy(io.Discard, c)
	})
	flood := rawWSServer(t, func(c net.Conn) {
		for range 1000 {
			if ws.WriteFrame(c, ws.NewTextFrame([]byte("spam"))) != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, c)
	})
	bigFrame := rawWSServer(t, func(c net.Conn) {
		_ = ws.WriteHeader(c, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 8 << 20})
		_, _ = io.Copy(io.Discard, c)
	})
	masked := rawWSServer(t, func(c net.Conn) {
		_ = ws.WriteFrame(c, ws.MaskFrame(ws.NewTextFrame([]byte("hi"))))
		_, _ = io.Copy(io.Discard, c)
	})
	hugeHead := fakeUpgradeServer(t, "HTTP/1.1 200 OK\r\nX-Pad: "+strings.Repeat("a", 64<<10))

	const timeout = 400 * time.Millisecond
	tests := []struct {
		name    string
		kind    Kind
		target  string
		path    string
		wantErr string // "" means the check must pass
		timeout bool   // failure must be the deadline, not a quick refusal
	}{
		{"tcp healthy", TCP, b.addr, "", "", false},
		{"tcp closed port", TCP, closed, "", "connect", false},
		{"tcp silent server passes", TCP, silent, "", "", false},

		{"http healthy", HTTP, b.addr, "/healthz", "", false},
		{"http endless body", HTTP, b.addr, "/stream", "", false},
		{"http 500", HTTP, b.addr, "/500", "status 500", false},
		{"http 404", HTTP, b.addr, "/nope", "status 404", false},
		{"http closed port", HTTP, closed, "/healthz", "connect", false},
		{"http silent server", HTTP, silent, "/healthz", "read response", true},
		{"http endless head", HTTP, hugeHead, "/", "exceeds", false},

		{"websocket healthy", WebSocket, b.addr, "/ws", "", false},
		{"websocket skips greeting frames", WebSocket, b.addr, "/ws-chatty", "", false},
		{"websocket closed port", WebSocket, closed, "/ws", "connect", false},
		{"websocket silent server", WebSocket, silent, "/ws", "read upgrade response", true},
		{"websocket no pong", WebSocket, b.addr, "/ws-mute", "await pong", true},
		{"websocket backend ignores close", WebSocket, noClose, "/", "", false},
		{"websocket close before pong", WebSocket, closesFirst, "/", "closed before pong: 1001", false},
		{"websocket data flood", WebSocket, flood, "/", "no pong within", false},
		{"websocket oversized frame", WebSocket, bigFrame, "/", "byte frame before pong", false},
		{"websocket masked server frame", WebSocket, masked, "/", "masked", false},
		{"websocket wrong accept", WebSocket, wrongAccept, "/ws", "Sec-WebSocket-Accept", false},
		{"websocket plain 200", WebSocket, b.addr, "/healthz", "want 101", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			err := Check(ctx, tc.kind, tc.target, tc.path)
			elapsed := time.Since(start)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if elapsed >= timeout {
					t.Fatalf("passed only after %v", elapsed)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
			prefix := tc.kind.String() + " check " + tc.target + ": "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("error %q lacks context prefix %q", err, prefix)
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != tc.timeout {
				t.Fatalf("errors.Is(DeadlineExceeded) = %v, want %v (err %v)", got, tc.timeout, err)
			}
			if tc.timeout && elapsed < timeout-50*time.Millisecond {
				t.Fatalf("timed out after only %v", elapsed)
			}
			if elapsed > timeout+time.Second {
				t.Fatalf("took %v, well past the %v timeout", elapsed, timeout)
			}
		})
	}
}

func TestWebSocketCheckClosesNormally(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := Check(ctx, WebSocket, b.addr, "/ws"); err != nil {
		t.Fatal(err)
	}
	// A backend that answers Close must not cost the check the closeWait.
	if d := time.Since(start); d >= closeWait {
		t.Fatalf("check took %v against a backend that answers Close", d)
	}
	select {
	case code := <-b.closeCodes:
		if code != websocket.CloseNormalClosure {
			t.Fatalf("backend saw close code %d, want 1000", code)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("backend never saw the session end")
	}
}

func TestCheckWithoutDeadlineIsBounded(t *testing.T) {
	t.Parallel()
	silent := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	// Cancellation alone, without a deadline, must interrupt a blocked read.
	time.AfterFunc(150*time.Millisecond, cancel)
	start := time.Now()
	err := Check(ctx, WebSocket, silent, "/ws")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancel took %v to take effect", d)
	}
}

func TestCheckRejectsBadPath(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"healthz", "/a b", "/x\r\nEvil: 1"} {
		err := Check(context.Background(), HTTP, "127.0.0.1:1", p)
		if err == nil || !strings.Contains(err.Error(), "path") {
			t.Errorf("path %q: err = %v, want a path error", p, err)
		}
	}
}

func TestParseKind(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]Kind{"tcp": TCP, "HTTP": HTTP, " websocket ": WebSocket} {
		got, err := ParseKind(s)
		if err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", s, got, err, want)
		}
		if got.String() != strings.ToLower(strings.TrimSpace(s)) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := ParseKind("udp"); err == nil {
		t.Error("ParseKind(udp) succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config invalid: %v", err)
	}
	bad := []Config{
		{Kind: Kind(7)},
		{Interval: -1},
		{Timeout: -1},
		{HealthyThreshold: -1},
		{UnhealthyThreshold: -2},
		{Kind: HTTP, Path: "nope"},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
	d := Config{}.withDefaults()
	if d.Interval != DefaultInterval || d.Timeout != DefaultTimeout ||
		d.HealthyThreshold != DefaultHealthyThreshold || d.UnhealthyThreshold != DefaultUnhealthyThreshold ||
		d.Path != DefaultPath {
		t.Fatalf("withDefaults = %+v", d)
	}
}
