package e2e

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type frameResult struct {
	f   frame
	err error
}

// reader reads frames in the background until a Close frame or an error,
// delivers each, then closes the channel. Do not touch c's reads meanwhile.
func (c *rawClient) reader() <-chan frameResult {
	ch := make(chan frameResult, 16)
	go func() {
		defer close(ch)
		for {
			c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			f, err := readFrame(c.br, 64<<20)
			ch <- frameResult{f, err}
			if err != nil || f.Op == opClose {
				return
			}
		}
	}()
	return ch
}

func closeCodeOf(t testing.TB, f frame) int {
	t.Helper()
	code, _, err := parseClosePayload(f.Payload)
	if err != nil {
		t.Fatalf("close payload: %v", err)
	}
	return code
}

// slowProxy is a wsgate with max_buffered_bytes = 1MiB in front of the
// gorilla backend.
func slowProxy(t *testing.T) *proxyProc {
	be := sharedBackends(t)
	return startProxy(t, map[string]string{"max_buffered_bytes": `"1MiB"`},
		[]routeCfg{{"*", "/", "gorilla"}},
		[]poolCfg{{"gorilla", 2, []string{be.gorilla.addr}}})
}

const rssGrowthLimitKiB = 64 << 10 // 64 MiB over the pre-test RSS

// tryEcho is a non-fatal echo for background goroutines.
func (c *rawClient) tryEcho(s string, d time.Duration) error {
	c.conn.SetWriteDeadline(time.Now().Add(d))
	if _, err := c.conn.Write(encodeFrame(frame{Fin: true, Op: opText, Masked: true, Payload: []byte(s)})); err != nil {
		return err
	}
	f, err := c.next(d)
	if err != nil {
		return err
	}
	if f.Op != opText || string(f.Payload) != s {
		return fmt.Errorf("echo of %q: got %v", s, f)
	}
	return nil
}

// flowWatch keeps another session echoing back to back in the background,
// to show that one stalled session does not hold up the others.
type flowWatch struct {
	stop    atomic.Bool
	done    chan struct{}
	echoes  atomic.Int64
	maxLat  atomic.Int64 // ns
	err     error
	started time.Time
}

func watchFlow(c *rawClient) *flowWatch {
	w := &flowWatch{done: make(chan struct{}), started: time.Now()}
	go func() {
		defer close(w.done)
		for i := 0; !w.stop.Load() && time.Since(w.started) < 60*time.Second; i++ {
			t0 := time.Now()
			if err := c.tryEcho(fmt.Sprintf("still flowing %d", i), 2*time.Second); err != nil {
				w.err = err
				return
			}
			if lat := int64(time.Since(t0)); lat > w.maxLat.Load() {
				w.maxLat.Store(lat)
			}
			w.echoes.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

// check stops the watcher and requires that the other session echoed at
// least once while the stalled one was open, each within 2s (and none
// failed).
func (w *flowWatch) check(t *testing.T, during int64) {
	t.Helper()
	w.stop.Store(true)
	<-w.done
	if w.err != nil {
		t.Errorf("another session stopped flowing while one session was stalled: %v", w.err)
	}
	if during < 1 {
		t.Errorf("another session completed no echo while the stalled session was open")
	}
	t.Logf("other session: %d echoes in total, %d during the stall, max latency %v", w.echoes.Load(), during, time.Duration(w.maxLat.Load()))
}

// TestSlowConsumerClient: a client that never reads while its backend pushes
// up to 256 MiB. wsgate's RSS stays bounded, the session is closed with 1008
// to the client and 1001 to the backend, the counter increments once, and
// another session keeps flowing throughout.
func TestSlowConsumerClient(t *testing.T) {
	p := slowProxy(t)
	rss0, err := p.rssKiB()
	if err != nil {
		t.Fatal(err)
	}
	m0 := p.metrics(t)
	other := rawUpgrade(t, p.addr, "/other?b=echo", nil)
	other.echo("before")
	flow := watchFlow(other)

	pr := newProbe(t)
	slow := rawUpgrade(t, p.addr, pr.q("/slow?b=push&max=268435456"), nil)
	start := time.Now()
	echoes0 := flow.echoes.Load()
	// The client does not read until the backend has been told (1001).
	var backendClose closeInfo
	select {
	case backendClose = <-pr.closes:
	case <-time.After(30 * time.Second):
		t.Fatalf("wsgate did not close the session of a client that never reads within 30s")
	}
	during := flow.echoes.Load() - echoes0
	t.Logf("backend got %d after %v", backendClose.code, time.Since(start))
	if backendClose.code != 1001 {
		t.Errorf("backend (the side that reads) got close %d (%v), want 1001", backendClose.code, backendClose.err)
	}
	// Now the client reads: whatever data was in flight, then Close 1008.
	var data int
	for r := range slow.reader() {
		if r.err != nil {
			t.Fatalf("client read error before any Close (after %d data bytes): %v", data, r.err)
		}
		if r.f.Op == opClose {
			if code := closeCodeOf(t, r.f); code != 1008 {
				t.Errorf("the client that does not read got Close %d, want 1008", code)
			}
			break
		}
		data += len(r.f.Payload)
	}
	t.Logf("client drained %d data bytes before the Close", data)
	slow.replyClose(1008)
	select {
	case ev := <-pr.events:
		t.Logf("backend: %s", ev)
	case <-time.After(5 * time.Second):
	}
	flow.check(t, during)
	peak, err := p.peakRSSKiB()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wsgate RSS before %d KiB, peak during the test %d KiB", rss0, peak)
	if growth := peak - rss0; growth > rssGrowthLimitKiB {
		t.Errorf("wsgate peak RSS grew by %d KiB while a client did not read; want under %d KiB", growth, rssGrowthLimitKiB)
	}
	m1 := p.waitMetric(t, 5*time.Second, "slow consumer close counted", func(ms metricSet) bool {
		return ms.sum("wsgate_slow_consumer_closes_total") > m0.sum("wsgate_slow_consumer_closes_total")
	})
	if d := m1.sum("wsgate_slow_consumer_closes_total") - m0.sum("wsgate_slow_consumer_closes_total"); d != 1 {
		t.Errorf("wsgate_slow_consumer_closes_total grew by %v for one closed session, want 1", d)
	}
	other.echo("after")
	other.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
	other.expectClose(1000, 5*time.Second)
	other.expectEOF(5 * time.Second)
}

// TestSlowConsumerBackend: a client flooding a backend that never reads is
// closed with 1001 to the client and 1008 to the backend, with bounded RSS,
// the counter incremented once, and another session flowing throughout.
func TestSlowConsumerBackend(t *testing.T) {
	p := slowProxy(t)
	rss0, err := p.rssKiB()
	if err != nil {
		t.Fatal(err)
	}
	m0 := p.metrics(t)
	other := rawUpgrade(t, p.addr, "/other?b=echo", nil)
	other.echo("before")
	flow := watchFlow(other)

	pr := newProbe(t)
	c := rawUpgrade(t, p.addr, pr.q("/sink?b=sink"), nil)
	pr.expectEvent(t, "sinking", 5*time.Second)

	const floodMax = 256 << 20
	chunk := encodeFrame(frame{Fin: true, Op: opBinary, Masked: true, Payload: payload(64<<10, false, 7)})
	var stop atomic.Bool
	var sent atomic.Int64
	writerDone := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for !stop.Load() && sent.Load() < floodMax && time.Now().Before(deadline) {
			c.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.conn.Write(chunk); err != nil {
				writerDone <- err
				return
			}
			sent.Add(64 << 10)
		}
		writerDone <- nil
	}()

	start := time.Now()
	echoes0 := flow.echoes.Load()
	var closeFrame frame
	select {
	case r, ok := <-c.reader():
		if !ok || r.err != nil {
			t.Fatalf("the flooding client's connection ended without a Close after %v (sent %d bytes): %v", time.Since(start), sent.Load(), r.err)
		}
		if r.f.Op != opClose {
			t.Fatalf("unexpected frame from a backend that sends nothing: %v", r.f)
		}
		closeFrame = r.f
	case <-time.After(30 * time.Second):
		t.Fatalf("wsgate did not close the session of a backend that never reads within 30s (client sent %d bytes)", sent.Load())
	}
	during := flow.echoes.Load() - echoes0
	// Let the backend read now: it must find Close 1008 after the data.
	pr.releaseNow()
	stop.Store(true)
	t.Logf("client got Close after %v, having sent %d bytes", time.Since(start), sent.Load())
	if code := closeCodeOf(t, closeFrame); code != 1001 {
		t.Errorf("the flooding client (which reads) got Close %d, want 1001", code)
	}
	select {
	case err := <-writerDone:
		if err != nil {
			t.Logf("flood writer ended with %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatalf("flood writer stuck")
	}
	c.replyClose(1001)
	pr.expectClose(t, 1008, 15*time.Second)
	flow.check(t, during)
	peak, err := p.peakRSSKiB()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wsgate RSS before %d KiB, peak during the test %d KiB", rss0, peak)
	if growth := peak - rss0; growth > rssGrowthLimitKiB {
		t.Errorf("wsgate peak RSS grew by %d KiB while a backend did not read; want under %d KiB", growth, rssGrowthLimitKiB)
	}
	m1 := p.waitMetric(t, 5*time.Second, "slow consumer close counted", func(ms metricSet) bool {
		return ms.sum("wsgate_slow_consumer_closes_total") > m0.sum("wsgate_slow_consumer_closes_total")
	})
	if d := m1.sum("wsgate_slow_consumer_closes_total") - m0.sum("wsgate_slow_consumer_closes_total"); d != 1 {
		t.Errorf("wsgate_slow_consumer_closes_total grew by %v for one closed session, want 1", d)
	}
	other.echo("after")
	other.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
	other.expectClose(1000, 5*time.Second)
	other.expectEOF(5 * time.Second)
}

// TestPingKeepalive: with ping_interval = 1s and ping_timeout = 1s, a silent
// client is pinged after ~1s and, without a Pong, closed with 1001 ~1s later;
// a client that answers stays connected, and its own pings still reach the
// backend.
func TestPingKeepalive(t *testing.T) {
	be := sharedBackends(t)
	p := startProxy(t, map[string]string{"ping_interval": `"1s"`, "ping_timeout": `"1s"`},
		[]routeCfg{{"*", "/", "gorilla"}},
		[]poolCfg{{"gorilla", 1, []string{be.gorilla.addr}}})

	t.Run("no-pong", func(t *testing.T) {
		pr := newProbe(t)
		c := rawUpgrade(t, p.addr, pr.q("/ka?b=echo"), nil)
		c.echo("hello")
		last := time.Now()
		f := c.expectFrame(4 * time.Second)
		pingAfter := time.Since(last)
		if f.Op != opPing || !f.Fin {
			t.Fatalf("want a Ping from wsgate, got %v", f)
		}
		if pingAfter < 700*time.Millisecond || pingAfter > 2500*time.Millisecond {
			t.Errorf("pinged after %v of silence, want about ping_interval=1s", pingAfter)
		}
		pinged := time.Now()
		c.expectClose(1001, 4*time.Second)
		if d := time.Since(pinged); d < 700*time.Millisecond || d > 2500*time.Millisecond {
			t.Errorf("closed %v after the unanswered Ping, want about ping_timeout=1s", d)
		}
		c.replyClose(1001)
		pr.expectClose(t, 1001, 5*time.Second)
	})
	t.Run("pong-keeps-alive", func(t *testing.T) {
		pr := newProbe(t)
		c := rawUpgrade(t, p.addr, pr.q("/ka?b=echo"), nil)
		frames := c.reader()
		next := func(what string) frame {
			for {
				select {
				case r, ok := <-frames:
					if !ok || r.err != nil {
						t.Fatalf("waiting for %s: connection ended: %v", what, r.err)
					}
					if r.f.Op == opPing {
						c.send(frame{Fin: true, Op: opPong, Payload: r.f.Payload})
						continue
					}
					return r.f
				case <-time.After(5 * time.Second):
					t.Fatalf("waiting for %s: nothing for 5s", what)
				}
			}
		}
		// Silent (apart from Pongs) for 3.5s: several ping intervals.
		pings := 0
		quietUntil := time.After(3500 * time.Millisecond)
	quiet:
		for {
			select {
			case r, ok := <-frames:
				if !ok || r.err != nil {
					t.Fatalf("connection ended while answering pings: %v", r.err)
				}
				if r.f.Op != opPing {
					t.Fatalf("unexpected frame while silent: %v", r.f)
				}
				pings++
				c.send(frame{Fin: true, Op: opPong, Payload: r.f.Payload})
			case <-quietUntil:
				break quiet
			}
		}
		if pings < 2 {
			t.Errorf("got %d pings in 3.5s with ping_interval=1s, want at least 2", pings)
		}
		c.sendText("alive")
		if f := next("echo"); f.Op != opText || string(f.Payload) != "alive" {
			t.Fatalf("echo: %v", f)
		}
		c.send(frame{Fin: true, Op: opPing, Payload: []byte("mine")})
		if f := next("pong"); f.Op != opPong || string(f.Payload) != "mine" {
			t.Fatalf("want the backend's Pong %q, got %v", "mine", f)
		}
		select {
		case s := <-pr.pings:
			if s != "mine" {
				t.Errorf("backend saw ping %q, want mine", s)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("the client's own ping did not reach the backend")
		}
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		if f := next("close"); f.Op != opClose || closeCodeOf(t, f) != 1000 {
			t.Fatalf("want Close 1000, got %v", f)
		}
		c.expectEOF(5 * time.Second)
		pr.expectClose(t, 1000, 5*time.Second)
	})
}

// TestGracefulShutdown: on SIGTERM every live session gets Close 1001 on both
// sides, and wsgate exits 0 once the closing handshakes are done (well
// before drain_timeout), or at drain_timeout when a client never answers.
// The process is gone afterwards, so instead of the goroutine/fd baseline
// this test requires every client connection to be closed by wsgate.
func TestGracefulShutdown(t *testing.T) {
	be := sharedBackends(t)
	routes := []routeCfg{{"*", "/g/", "gorilla"}, {"*", "/c/", "coder"}}
	pools := []poolCfg{{"gorilla", 2, []string{be.gorilla.addr}}, {"coder", 1, []string{be.coder.addr}}}

	t.Run("responsive-peers", func(t *testing.T) {
		p := startProxyOpts(t, map[string]string{"drain_timeout": `"10s"`}, routes, pools, false)
		type sess struct {
			c  *websocket.Conn
			pr *probe
		}
		var ss []sess
		for i := range 6 {
			pr := newProbe(t)
			path := pr.q("/g/drain?b=echo")
			if i%2 == 1 {
				path = pr.q("/c/drain")
			}
			c, _ := dialGorilla(t, "ws://"+p.addr+path, nil, nil)
			c.WriteMessage(websocket.TextMessage, []byte("hi"))
			if _, m, err := c.ReadMessage(); err != nil || string(m) != "hi" {
				t.Fatalf("echo %q %v", m, err)
			}
			ss = append(ss, sess{c, pr})
		}
		rpr := newProbe(t)
		raw := rawUpgrade(t, p.addr, rpr.q("/g/drain?b=echo"), nil)
		raw.echo("hi")

		sigAt := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for i, s := range ss {
			s.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _, err := s.c.ReadMessage() // gorilla answers the Close
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 1001 {
				t.Errorf("session %d: want Close 1001 on SIGTERM, got %v", i, err)
			}
		}
		raw.expectClose(1001, 10*time.Second)
		raw.replyClose(1001)
		for i, s := range ss {
			s.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := s.c.NetConn().Read(make([]byte, 1)); !isClosedErr(err) {
				t.Errorf("session %d: wsgate did not close TCP after the closing handshake: %v", i, err)
			}
			s.pr.expectClose(t, 1001, 5*time.Second)
		}
		rpr.expectClose(t, 1001, 5*time.Second)
		select {
		case <-p.done:
		case <-time.After(12 * time.Second):
			t.Fatalf("wsgate did not exit within drain_timeout (10s) + 2s of SIGTERM")
		}
		took := p.exitAt.Sub(sigAt)
		t.Logf("wsgate exited %v after SIGTERM with code %d", took, p.exitCode)
		if p.exitCode != 0 {
			t.Errorf("exit code %d (%v), want 0", p.exitCode, p.exitErr)
		}
		if took > 5*time.Second {
			t.Errorf("wsgate took %v to exit although every closing handshake completed at once (drain_timeout 10s)", took)
		}
	})
	t.Run("unresponsive-client", func(t *testing.T) {
		p := startProxyOpts(t, map[string]string{"drain_timeout": `"2s"`}, routes, pools, false)
		pr := newProbe(t)
		c := rawUpgrade(t, p.addr, pr.q("/g/drain?b=echo"), nil)
		c.echo("hi")
		sigAt := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		c.expectClose(1001, 5*time.Second) // and never answer it
		select {
		case <-p.done:
		case <-time.After(4 * time.Second):
			t.Fatalf("wsgate did not exit within drain_timeout (2s) + 2s of SIGTERM")
		}
		t.Logf("wsgate exited %v after SIGTERM with code %d", p.exitAt.Sub(sigAt), p.exitCode)
		if p.exitCode != 0 {
			t.Errorf("exit code %d (%v), want 0", p.exitCode, p.exitErr)
		}
		c.expectEOF(2 * time.Second)
		pr.expectClose(t, 1001, 5*time.Second)
	})
}

// throttled reads at most chunk bytes per call, sleeping every before each.
type throttled struct {
	r     interface{ Read([]byte) (int, error) }
	chunk int
	every time.Duration
}

func (t *throttled) Read(p []byte) (int, error) {
	time.Sleep(t.every)
	if len(p) > t.chunk {
		p = p[:t.chunk]
	}
	return t.r.Read(p)
}

// TestSlowButReadingPeer: a peer that reads steadily but slower than the
// other side writes (~3 MB/s) is not a slow consumer: with
// max_buffered_bytes = 1MiB an 8 MiB message must get through in both
// directions (wsgate must apply backpressure, not close the session).
func TestSlowButReadingPeer(t *testing.T) {
	p := slowProxy(t)
	const size = 8 << 20
	t.Run("slow-backend", func(t *testing.T) {
		pr := newProbe(t)
		c := rawUpgrade(t, p.addr, pr.q("/slowread?b=slowread"), nil)
		writeErr := make(chan error, 1)
		go func() {
			writeErr <- c.writeRaw(encodeFrame(frame{Fin: true, Op: opBinary, Masked: true, Payload: payload(size, false, 11)}))
		}()
		f, err := c.next(20 * time.Second)
		if isClosedErr(err) {
			t.Fatalf("wsgate closed the connection without a Close frame (%v) although the backend keeps reading", err)
		}
		if err != nil {
			t.Fatalf("waiting for the backend's answer: %v", err)
		}
		if f.Op == opClose {
			code, reason, _ := parseClosePayload(f.Payload)
			t.Fatalf("wsgate closed the session (Close %d %q) although the backend keeps reading", code, reason)
		}
		if f.Op != opText || string(f.Payload) != fmt.Sprintf("got %d", size) {
			t.Fatalf("backend answer %v, want %q", f, fmt.Sprintf("got %d", size))
		}
		if err := <-writeErr; err != nil {
			t.Fatalf("writing the message: %v", err)
		}
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		c.expectClose(1000, 5*time.Second)
		c.expectEOF(5 * time.Second)
	})
	t.Run("slow-client", func(t *testing.T) {
		pr := newProbe(t)
		c := rawUpgrade(t, p.addr, pr.q(fmt.Sprintf("/slowclient?b=sendbig&n=%d", size)), nil)
		c.sendText("send it")
		c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		f, err := readFrame(&throttled{r: c.br, chunk: 32 << 10, every: 10 * time.Millisecond}, 64<<20)
		if err != nil {
			t.Fatalf("reading slowly: %v", err)
		}
		if f.Op == opClose {
			code, reason, _ := parseClosePayload(f.Payload)
			t.Fatalf("wsgate closed the session (Close %d %q) although the client keeps reading", code, reason)
		}
		if f.Op != opBinary || len(f.Payload) != size {
			t.Fatalf("got %v, want the backend's %d-byte message", f, size)
		}
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		c.expectClose(1000, 5*time.Second)
		c.expectEOF(5 * time.Second)
		pr.expectClose(t, 1000, 5*time.Second)
	})
}

// close_timeout bounds a closing handshake that the backend never
// answers: the client's Close reaches the backend, no Close comes back,
// and wsgate closes both connections once close_timeout has passed
// (checked on its 250 ms tick), counting the session under that cause.
func TestCloseTimeout(t *testing.T) {
	be := sharedBackends(t)
	p := startProxy(t, map[string]string{"close_timeout": `"1s"`},
		[]routeCfg{{"*", "/", "raw"}},
		[]poolCfg{{"raw", 1, []string{be.raw.addr}}})
	m0 := p.metrics(t)
	pr := newProbe(t)
	c := rawUpgrade(t, p.addr, pr.q("/mute?b=mute"), nil)
	c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "bye")})
	sent := time.Now()
	select {
	case f := <-pr.frames:
		if f.Op != opClose {
			t.Fatalf("backend got %v, want the client's Close", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client's Close did not reach the backend")
	}
	// The default close_timeout is 5 s: closing well before shows the
	// setting took effect, closing before 1 s that it was not ignored.
	c.expectEOF(4 * time.Second)
	if waited := time.Since(sent); waited < 900*time.Millisecond || waited > 3*time.Second {
		t.Errorf("client's connection closed %v after its Close, want about close_timeout=1s", waited)
	}
	if ci := pr.expectClose(t, -1, 5*time.Second); ci.err == nil {
		t.Errorf("backend: want its connection cut, got %+v", ci)
	}
	p.waitMetric(t, 5*time.Second, "a session closed by close_timeout", func(ms metricSet) bool {
		return ms.sum("wsgate_sessions_closed_total", "cause", "close_timeout")-m0.sum("wsgate_sessions_closed_total", "cause", "close_timeout") == 1
	})
}
