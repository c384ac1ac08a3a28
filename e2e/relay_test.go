package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

var echoSizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20}

// backendPaths are echo endpoints on each backend implementation.
var backendPaths = []struct{ name, path string }{
	{"gorilla-backend", "/g/echo?b=echo"},
	{"coder-backend", "/c/echo"},
}

// TestEchoGorillaClient: text and binary messages from empty to 16 MiB
// (max_message_bytes) round-trip byte for byte, through both backends.
func TestEchoGorillaClient(t *testing.T) {
	e := sharedEnv(t)
	for _, be := range backendPaths {
		t.Run(be.name, func(t *testing.T) {
			c, _ := dialGorilla(t, e.url(be.path), nil, nil)
			for _, mt := range []int{websocket.TextMessage, websocket.BinaryMessage} {
				for i, n := range echoSizes {
					msg := payload(n, mt == websocket.TextMessage, uint64(i))
					if err := c.WriteMessage(mt, msg); err != nil {
						t.Fatalf("write %d bytes: %v", n, err)
					}
					gt, got, err := c.ReadMessage()
					if err != nil {
						t.Fatalf("read echo of %d bytes: %v", n, err)
					}
					if gt != mt {
						t.Fatalf("echo of a %d-byte message has type %d, want %d", n, gt, mt)
					}
					sameBytes(t, fmt.Sprintf("echo of %d-byte type-%d message", n, mt), got, msg)
				}
			}
			closeGorilla(t, c)
		})
	}
}

// TestEchoCoderClient is TestEchoGorillaClient with coder/websocket as the client.
func TestEchoCoderClient(t *testing.T) {
	e := sharedEnv(t)
	for _, be := range backendPaths {
		t.Run(be.name, func(t *testing.T) {
			c, _ := dialCoder(t, e.url(be.path), nil)
			ctx := ctxT(t, 60*time.Second)
			for _, mt := range []cws.MessageType{cws.MessageText, cws.MessageBinary} {
				for i, n := range echoSizes {
					msg := payload(n, mt == cws.MessageText, uint64(100+i))
					if err := c.Write(ctx, mt, msg); err != nil {
						t.Fatalf("write %d bytes: %v", n, err)
					}
					gt, got, err := c.Read(ctx)
					if err != nil {
						t.Fatalf("read echo of %d bytes: %v", n, err)
					}
					if gt != mt {
						t.Fatalf("echo type %v, want %v", gt, mt)
					}
					sameBytes(t, fmt.Sprintf("echo of %d-byte %v message", n, mt), got, msg)
				}
			}
			if err := c.Close(cws.StatusNormalClosure, ""); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

// TestFragmentedRaw: a text message in three fragments with a Ping between
// them reaches the backend frame for frame (masked, payloads verbatim), and
// the backend's fragmented echo reaches the client frame for frame.
func TestFragmentedRaw(t *testing.T) {
	e := sharedEnv(t)
	pr := newProbe(t)
	path := pr.q("/raw/frag?b=record")
	c := rawUpgrade(t, e.addrFor(path), path, nil)
	sent := []frame{
		{Fin: false, Op: opText, Payload: []byte("Hel")},
		{Fin: true, Op: opPing, Payload: []byte("mid-message ping")},
		{Fin: false, Op: opCont, Payload: []byte("lo, ")},
		{Fin: true, Op: opCont, Payload: []byte("world")},
	}
	for _, f := range sent {
		c.send(f)
	}
	for i, want := range sent {
		select {
		case got := <-pr.frames:
			if !got.Masked {
				t.Errorf("frame %d reached the backend unmasked", i)
			}
			if got.Fin != want.Fin || got.Op != want.Op || got.Rsv != 0 || string(got.Payload) != string(want.Payload) {
				t.Fatalf("backend frame %d: got %v, want %v", i, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("backend did not receive frame %d", i)
		}
	}
	for i, want := range sent {
		got := c.expectFrame(10 * time.Second)
		if got.Fin != want.Fin || got.Op != want.Op || got.Rsv != 0 || string(got.Payload) != string(want.Payload) {
			t.Fatalf("client frame %d: got %v, want %v", i, got, want)
		}
	}
	c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "done")})
	c.expectClose(1000, 10*time.Second)
	c.expectEOF(5 * time.Second)
	ci := pr.expectClose(t, 1000, 10*time.Second)
	if ci.text != "done" {
		t.Errorf("backend close reason %q, want %q", ci.text, "done")
	}
}

// TestFragmentedToEchoBackends: fragmented messages (raw client, and gorilla
// NextWriter with a small buffer, which flushes several frames) are
// reassembled by the real backends and echoed intact.
func TestFragmentedToEchoBackends(t *testing.T) {
	e := sharedEnv(t)
	for _, be := range backendPaths {
		t.Run("raw/"+be.name, func(t *testing.T) {
			c := rawUpgrade(t, e.addrFor(be.path), be.path, nil)
			parts := [][]byte{payload(1000, false, 1), payload(70000, false, 2), payload(0, false, 3), payload(5, false, 4)}
			var whole []byte
			for i, p := range parts {
				op := opCont
				if i == 0 {
					op = opBinary
				}
				c.send(frame{Fin: i == len(parts)-1, Op: op, Payload: p})
				whole = append(whole, p...)
			}
			// The backend reassembles and may echo in any framing.
			var got []byte
			for i := 0; ; i++ {
				f := c.expectFrame(10 * time.Second)
				if (i == 0 && f.Op != opBinary) || (i > 0 && f.Op != opCont) {
					t.Fatalf("echo frame %d: unexpected %v", i, f)
				}
				got = append(got, f.Payload...)
				if f.Fin {
					break
				}
			}
			sameBytes(t, "reassembled echo", got, whole)
			c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
			c.expectClose(1000, 10*time.Second)
			c.expectEOF(5 * time.Second)
		})
		t.Run("gorilla-nextwriter/"+be.name, func(t *testing.T) {
			d := gorillaDialer
			d.WriteBufferSize = 1024 // each full buffer goes out as one frame
			c, _ := dialGorilla(t, e.url(be.path), &d, nil)
			msg := payload(20000, true, 9)
			w, err := c.NextWriter(websocket.TextMessage)
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(msg); off += 777 {
				if _, err := w.Write(msg[off:min(off+777, len(msg))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			mt, got, err := c.ReadMessage()
			if err != nil || mt != websocket.TextMessage {
				t.Fatalf("read echo: type %d err %v", mt, err)
			}
			sameBytes(t, "echo of a fragmented message", got, msg)
			closeGorilla(t, c)
		})
	}
}

// TestPingPassThrough: a client's Ping goes to the backend, and the backend's
// Pong comes back, for raw, gorilla and coder clients.
func TestPingPassThrough(t *testing.T) {
	e := sharedEnv(t)
	t.Run("raw", func(t *testing.T) {
		pr := newProbe(t)
		path := pr.q("/g/ping?b=echo")
		c := rawUpgrade(t, e.addrFor(path), path, nil)
		for _, data := range []string{"hello-ping", ""} {
			c.send(frame{Fin: true, Op: opPing, Payload: []byte(data)})
			f := c.expectFrame(10 * time.Second)
			if f.Op != opPong || !f.Fin || string(f.Payload) != data {
				t.Fatalf("want Pong %q, got %v", data, f)
			}
			select {
			case got := <-pr.pings:
				if got != data {
					t.Fatalf("backend saw ping %q, want %q", got, data)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the backend never saw the client's ping %q", data)
			}
		}
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		c.expectClose(1000, 10*time.Second)
		c.expectEOF(5 * time.Second)
	})
	t.Run("gorilla", func(t *testing.T) {
		pr := newProbe(t)
		c, _ := dialGorilla(t, e.url(pr.q("/g/ping?b=echo")), nil, nil)
		pongs := make(chan string, 4)
		c.SetPongHandler(func(s string) error { pongs <- s; return nil })
		if err := c.WriteControl(websocket.PingMessage, []byte("gp"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		// Reading the echo of a later message processes the pong first.
		if err := c.WriteMessage(websocket.TextMessage, []byte("after ping")); err != nil {
			t.Fatal(err)
		}
		if _, m, err := c.ReadMessage(); err != nil || string(m) != "after ping" {
			t.Fatalf("echo: %q %v", m, err)
		}
		select {
		case s := <-pongs:
			if s != "gp" {
				t.Fatalf("pong %q, want %q", s, "gp")
			}
		default:
			t.Fatal("no pong before the echo of the next message")
		}
		if got := <-pr.pings; got != "gp" {
			t.Fatalf("backend saw ping %q", got)
		}
		closeGorilla(t, c)
	})
	t.Run("coder", func(t *testing.T) {
		c, _ := dialCoder(t, e.url("/c/ping"), nil)
		ctx := ctxT(t, 20*time.Second)
		readErr := make(chan error, 1)
		go func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					readErr <- err
					return
				}
			}
		}()
		for range 3 {
			pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				t.Fatalf("ping: %v", err)
			}
		}
		if err := c.Close(cws.StatusNormalClosure, ""); err != nil {
			t.Fatalf("close: %v", err)
		}
		<-readErr
	})
}

// TestSubprotocolNegotiation: the offer reaches the backend as is and the
// backend's choice reaches the client; no common protocol means none.
func TestSubprotocolNegotiation(t *testing.T) {
	e := sharedEnv(t)
	t.Run("gorilla", func(t *testing.T) {
		pr := newProbe(t)
		d := gorillaDialer
		d.Subprotocols = []string{"x-unknown", "chat.v2"}
		c, resp := dialGorilla(t, e.url(pr.q("/g/sp?b=echo")), &d, nil)
		if c.Subprotocol() != "chat.v2" {
			t.Errorf("negotiated %q, want chat.v2 (response header %q)", c.Subprotocol(), resp.Header.Get("Sec-WebSocket-Protocol"))
		}
		ri := pr.expectReq(t)
		if got := strings.Join(ri.header.Values("Sec-WebSocket-Protocol"), ", "); got != "x-unknown, chat.v2" {
			t.Errorf("backend saw Sec-WebSocket-Protocol %q", got)
		}
		closeGorilla(t, c)
	})
	t.Run("coder", func(t *testing.T) {
		c, _ := dialCoder(t, e.url("/c/sp"), &cws.DialOptions{Subprotocols: []string{"chat.v1"}})
		if c.Subprotocol() != "chat.v1" {
			t.Errorf("negotiated %q, want chat.v1", c.Subprotocol())
		}
		if err := c.Close(cws.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("none-in-common", func(t *testing.T) {
		d := gorillaDialer
		d.Subprotocols = []string{"x-none"}
		c, resp := dialGorilla(t, e.url("/g/sp?b=echo"), &d, nil)
		if c.Subprotocol() != "" || resp.Header.Get("Sec-WebSocket-Protocol") != "" {
			t.Errorf("negotiated %q, want none", c.Subprotocol())
		}
		closeGorilla(t, c)
	})
}

// TestPermessageDeflate: compression negotiated by client and backend works
// end to end (RSV1 frames pass), and the relayed bytes are the compressed ones.
func TestPermessageDeflate(t *testing.T) {
	e := sharedEnv(t)
	t.Run("negotiated", func(t *testing.T) {
		d := gorillaDialer
		d.EnableCompression = true
		c, resp := dialGorilla(t, e.url("/g/z?b=echo&deflate=1"), &d, nil)
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
			t.Fatalf("permessage-deflate not negotiated; Sec-WebSocket-Extensions %q", ext)
		}
		var before metricSet
		if e.proxy != nil {
			before = e.proxy.metrics(t)
		}
		big := []byte(strings.Repeat("compress me please; ", 10000)) // 200,000 bytes
		msgs := []struct {
			mt int
			b  []byte
		}{{websocket.TextMessage, big}, {websocket.BinaryMessage, payload(3000, false, 5)}, {websocket.TextMessage, []byte("x")}, {websocket.TextMessage, nil}}
		for _, m := range msgs {
			if err := c.WriteMessage(m.mt, m.b); err != nil {
				t.Fatal(err)
			}
			mt, got, err := c.ReadMessage()
			if err != nil || mt != m.mt {
				t.Fatalf("echo: type %d err %v", mt, err)
			}
			sameBytes(t, "compressed echo", got, m.b)
		}
		if e.proxy != nil {
			after := e.proxy.metrics(t)
			delta := after.sum("wsgate_bytes_total", "direction", "client_to_backend") - before.sum("wsgate_bytes_total", "direction", "client_to_backend")
			if delta <= 0 || delta > 20000 {
				t.Errorf("wsgate_bytes_total{client_to_backend} grew by %v for ~203 KB of compressible payload; want compressed bytes (0 < x <= 20000)", delta)
			}
		}
		closeGorilla(t, c)
	})
	t.Run("backend-declines", func(t *testing.T) {
		d := gorillaDialer
		d.EnableCompression = true
		c, resp := dialGorilla(t, e.url("/g/z?b=echo"), &d, nil)
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
			t.Fatalf("extension %q negotiated though the backend does not support it", ext)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("plain")); err != nil {
			t.Fatal(err)
		}
		if _, m, err := c.ReadMessage(); err != nil || string(m) != "plain" {
			t.Fatalf("echo %q %v", m, err)
		}
		closeGorilla(t, c)
	})
}

// TestCookiesPassThrough: Cookie reaches the backend, Set-Cookie the client.
func TestCookiesPassThrough(t *testing.T) {
	e := sharedEnv(t)
	pr := newProbe(t)
	c, resp := dialGorilla(t, e.url(pr.q("/g/cookie?b=echo&setcookie=1")), nil, http.Header{"Cookie": {"session=abc; theme=dark"}})
	ri := pr.expectReq(t)
	if got := ri.header.Get("Cookie"); got != "session=abc; theme=dark" {
		t.Errorf("backend saw Cookie %q", got)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != "srv=xyz; Path=/" {
		t.Errorf("client saw Set-Cookie %q", got)
	}
	closeGorilla(t, c)
}

// TestCloseRelayed: Close frames are relayed both ways with code and reason,
// the closing handshake completes, and TCP is closed only after it.
func TestCloseRelayed(t *testing.T) {
	e := sharedEnv(t)
	t.Run("client-4000-raw", func(t *testing.T) {
		pr := newProbe(t)
		path := pr.q("/g/close?b=echo")
		c := rawUpgrade(t, e.addrFor(path), path, nil)
		c.echo("hi")
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(4000, "bye")})
		c.expectClose(4000, 10*time.Second) // gorilla echoes the code
		c.expectEOF(5 * time.Second)
		ci := pr.expectClose(t, 4000, 10*time.Second)
		if ci.text != "bye" {
			t.Errorf("backend close reason %q, want bye", ci.text)
		}
	})
	t.Run("client-4000-gorilla", func(t *testing.T) {
		pr := newProbe(t)
		c, _ := dialGorilla(t, e.url(pr.q("/g/close?b=echo")), nil, nil)
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(5*time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4000 {
			t.Fatalf("want Close 4000 echoed, got %v", err)
		}
		ci := pr.expectClose(t, 4000, 10*time.Second)
		if ci.text != "bye" {
			t.Errorf("backend close reason %q, want bye", ci.text)
		}
	})
	t.Run("client-4000-coder", func(t *testing.T) {
		pr := newProbe(t)
		c, _ := dialCoder(t, e.url(pr.q("/c/close")), nil)
		if err := c.Close(4000, "bye"); err != nil {
			t.Fatalf("close handshake: %v", err)
		}
		ci := pr.expectClose(t, 4000, 10*time.Second)
		if ci.text != "bye" {
			t.Errorf("backend close reason %q, want bye", ci.text)
		}
	})
	t.Run("backend-4001-raw", func(t *testing.T) {
		pr := newProbe(t)
		path := pr.q("/g/close?b=close&code=4001&reason=later")
		c := rawUpgrade(t, e.addrFor(path), path, nil)
		c.sendText("go")
		if r := c.expectClose(4001, 10*time.Second); r != "later" {
			t.Errorf("close reason %q, want later", r)
		}
		// The backend's Close was relayed; TCP must stay open until we answer.
		c.expectOpen(500 * time.Millisecond)
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(4001, "")})
		c.expectEOF(5 * time.Second)
		pr.expectClose(t, 4001, 10*time.Second)
	})
	t.Run("backend-4001-gorilla", func(t *testing.T) {
		pr := newProbe(t)
		c, _ := dialGorilla(t, e.url(pr.q("/g/close?b=close&code=4001&reason=later")), nil, nil)
		c.WriteMessage(websocket.TextMessage, []byte("go"))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "later" {
			t.Fatalf("want Close 4001 later, got %v", err)
		}
		pr.expectClose(t, 4001, 10*time.Second)
	})
	t.Run("backend-4001-coder-client", func(t *testing.T) {
		pr := newProbe(t)
		c, _ := dialCoder(t, e.url(pr.q("/g/close?b=close&code=4001&reason=later")), nil)
		ctx := ctxT(t, 10*time.Second)
		c.Write(ctx, cws.MessageText, []byte("go"))
		_, _, err := c.Read(ctx)
		if cws.CloseStatus(err) != 4001 {
			t.Fatalf("want Close 4001, got %v", err)
		}
		pr.expectClose(t, 4001, 10*time.Second)
	})
}

// TestConcurrentSessions: 1,000 sessions open at once, each echoing a few
// messages; wsgate_sessions_active reaches 1,000 and falls back to 0.
func TestConcurrentSessions(t *testing.T) {
	e := sharedEnv(t)
	const n = 1000
	const perSession = 4
	conns := make([]*websocket.Conn, n)
	var dialErrs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			path := "/g/many?b=echo"
			if i%2 == 1 {
				path = "/c/many"
			}
			c, _, err := gorillaDialer.Dial(e.url(path), nil)
			if err != nil {
				dialErrs.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if dialErrs.Load() > 0 {
		t.Fatalf("%d of %d dials failed; first: %v", dialErrs.Load(), n, firstErr.Load())
	}
	t.Logf("%d sessions open after %v", n, time.Since(start))
	if e.proxy != nil {
		e.proxy.waitMetric(t, 10*time.Second, "wsgate_sessions_active == 1000", func(ms metricSet) bool {
			v, _ := ms.get("wsgate_sessions_active")
			return v == n
		})
	}
	var failures atomic.Int64
	var firstFail atomic.Value
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			c.SetWriteDeadline(time.Now().Add(60 * time.Second))
			for j := range perSession {
				msg := fmt.Sprintf("session %d message %d %s", i, j, strings.Repeat("x", j*100))
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					failures.Add(1)
					firstFail.CompareAndSwap(nil, err)
					return
				}
				_, got, err := c.ReadMessage()
				if err != nil || string(got) != msg {
					failures.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Errorf("session %d: echo %q err %v", i, got, err))
					return
				}
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(10*time.Second))
			_, _, err := c.ReadMessage()
			if !websocket.IsCloseError(err, 1000) {
				failures.Add(1)
				firstFail.CompareAndSwap(nil, fmt.Errorf("session %d: close: %v", i, err))
			}
			c.Close()
		}()
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d sessions failed; first: %v", failures.Load(), n, firstFail.Load())
	}
	t.Logf("all %d sessions echoed %d messages and closed after %v", n, perSession, time.Since(start))
	if e.proxy != nil {
		e.proxy.waitMetric(t, 10*time.Second, "wsgate_sessions_active == 0", func(ms metricSet) bool {
			v, ok := ms.get("wsgate_sessions_active")
			return ok && v == 0
		})
	}
}

// TestMetricsCounts: the documented series exist and count one session's
// frames, bytes, handshake and close exactly.
func TestMetricsCounts(t *testing.T) {
	needBinary(t)
	e := sharedEnv(t)
	p := e.proxy
	m0 := p.metrics(t)

	pr := newProbe(t)
	path := pr.q("/g/metrics?b=echo")
	c := rawUpgrade(t, p.addr, path, nil)
	for i := range 10 {
		c.send(frame{Fin: true, Op: opBinary, Payload: payload(100, false, uint64(i))})
		f := c.expectFrame(10 * time.Second)
		if f.Op != opBinary || len(f.Payload) != 100 {
			t.Fatalf("echo %d: %v", i, f)
		}
	}
	m1 := p.waitMetric(t, 5*time.Second, "10 frames each way counted", func(ms metricSet) bool {
		return ms.sum("wsgate_frames_total", "direction", "client_to_backend")-m0.sum("wsgate_frames_total", "direction", "client_to_backend") >= 10 &&
			ms.sum("wsgate_frames_total", "direction", "backend_to_client")-m0.sum("wsgate_frames_total", "direction", "backend_to_client") >= 10
	})
	delta := func(name string, kv ...string) float64 { return m1.sum(name, kv...) - m0.sum(name, kv...) }
	for _, dir := range []string{"client_to_backend", "backend_to_client"} {
		if d := delta("wsgate_frames_total", "direction", dir); d != 10 {
			t.Errorf("wsgate_frames_total{direction=%q} grew by %v, want 10", dir, d)
		}
		// 10 payloads of 100 bytes; headers are 2 (+4 mask) bytes if counted.
		if d := delta("wsgate_bytes_total", "direction", dir); d < 1000 || d > 1000+10*14 {
			t.Errorf("wsgate_bytes_total{direction=%q} grew by %v, want 1000 payload bytes (plus at most the headers)", dir, d)
		}
	}
	if v, ok := m1.get("wsgate_sessions_active"); !ok || v != 1 {
		t.Errorf("wsgate_sessions_active = %v (present %v), want 1", v, ok)
	}
	for _, name := range []string{"wsgate_sessions_accepted_total", "wsgate_sessions_upgraded_total", "wsgate_handshake_duration_seconds_count"} {
		if d := delta(name); d != 1 {
			t.Errorf("%s grew by %v, want 1", name, d)
		}
	}
	if d := delta("wsgate_pool_hits_total", "pool", "gorilla"); d != 1 {
		t.Errorf("wsgate_pool_hits_total{pool=gorilla} grew by %v, want 1 (a warm connection was available)", d)
	}
	if d := delta("wsgate_pool_misses_total", "pool", "gorilla"); d != 0 {
		t.Errorf("wsgate_pool_misses_total{pool=gorilla} grew by %v, want 0", d)
	}

	c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
	c.expectClose(1000, 10*time.Second)
	c.expectEOF(5 * time.Second)
	pr.expectClose(t, 1000, 5*time.Second)
	m2 := p.waitMetric(t, 5*time.Second, "session closed counted", func(ms metricSet) bool {
		return ms.sum("wsgate_sessions_closed_total")-m0.sum("wsgate_sessions_closed_total") >= 1
	})
	if d := m2.sum("wsgate_sessions_closed_total") - m0.sum("wsgate_sessions_closed_total"); d != 1 {
		t.Errorf("wsgate_sessions_closed_total grew by %v, want 1", d)
	}
	if len(m2.series("wsgate_sessions_closed_total")) == 0 || m2.series("wsgate_sessions_closed_total")[0]["cause"] == "" {
		t.Errorf("wsgate_sessions_closed_total has no cause label: %v", m2.series("wsgate_sessions_closed_total"))
	}
	if v, _ := m2.get("wsgate_sessions_active"); v != 0 {
		t.Errorf("wsgate_sessions_active = %v after close, want 0", v)
	}

	// A failed handshake counts as accepted and failed (with a reason), not upgraded.
	rc, resp := rawRequest(t, p.addr, requestBytes("GET", "/g/x", "HTTP/1.1", upgradeHeaders(p.addr).set("Sec-WebSocket-Key", "")))
	if resp.StatusCode != 400 {
		t.Errorf("upgrade without Sec-WebSocket-Key: status %d, want 400", resp.StatusCode)
	}
	io.Copy(io.Discard, resp.Body)
	rc.expectEOF(5 * time.Second)
	m3 := p.waitMetric(t, 5*time.Second, "failed handshake counted", func(ms metricSet) bool {
		return ms.sum("wsgate_sessions_failed_total") > m2.sum("wsgate_sessions_failed_total")
	})
	if d := m3.sum("wsgate_sessions_failed_total") - m2.sum("wsgate_sessions_failed_total"); d != 1 {
		t.Errorf("wsgate_sessions_failed_total grew by %v, want 1", d)
	}
	for _, s := range m3.series("wsgate_sessions_failed_total") {
		if s["reason"] == "" {
			t.Errorf("wsgate_sessions_failed_total series without reason: %v", s)
		}
	}
	if d := m3.sum("wsgate_sessions_upgraded_total") - m2.sum("wsgate_sessions_upgraded_total"); d != 0 {
		t.Errorf("wsgate_sessions_upgraded_total grew by %v on a failed handshake", d)
	}
	if d := m3.sum("wsgate_sessions_accepted_total") - m2.sum("wsgate_sessions_accepted_total"); d != 1 {
		t.Errorf("wsgate_sessions_accepted_total grew by %v on a failed handshake, want 1", d)
	}

	// Every documented family is exported.
	text := func() string { _, b, _ := p.adminGet("/metrics"); return string(b) }()
	for _, fam := range []string{
		"wsgate_sessions_accepted_total", "wsgate_sessions_upgraded_total", "wsgate_sessions_failed_total",
		"wsgate_sessions_active", "wsgate_sessions_closed_total", "wsgate_frames_total", "wsgate_bytes_total",
		"wsgate_handshake_duration_seconds_bucket", "wsgate_handshake_duration_seconds_sum",
		"wsgate_upstream_dials_total", "wsgate_pool_hits_total", "wsgate_pool_misses_total",
		"wsgate_slow_consumer_closes_total", "go_goroutines", "process_open_fds",
	} {
		if !strings.Contains(text, "\n"+fam) && !strings.HasPrefix(text, fam) {
			t.Errorf("/metrics lacks %s", fam)
		}
	}
	if ds := m3.series("wsgate_upstream_dials_total"); len(ds) == 0 || ds[0]["pool"] == "" || ds[0]["result"] == "" {
		t.Errorf("wsgate_upstream_dials_total lacks pool/result labels: %v", ds)
	}
	if code, _, err := p.adminGet("/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz: %d %v", code, err)
	}
}
