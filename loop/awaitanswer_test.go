package loop

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// reactorHandshaker plays the proxy's fast way (StartHandshake): on the
// reactor it reads the request, sends it on a warm upstream and awaits the
// answer there; whatever it cannot do without waiting goes to a goroutine
// through Go, which answers 502 unless the backend answered 101.
type reactorHandshaker struct {
	t    *testing.T
	l    *Loop
	warm chan *Upstream

	dial                          atomic.Pointer[netip.AddrPort] // the backend, when no upstream is warm
	onReactor, handedOff, expired atomic.Int64
	dialErrors                    atomic.Int64
	upgradedOnReactor             atomic.Int64 // upgrades done in an answer
}

const badGateway = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

func (h *reactorHandshaker) ServeHandshake(c *ClientConn) {
	h.t.Error("ServeHandshake called for a ReactorHandshaker")
}

func (h *reactorHandshaker) StartHandshake(c *ClientConn) {
	h.onReactor.Add(1)
	if err := c.TryFill(8 << 10); err != nil {
		h.t.Errorf("TryFill at the first input: %v", err)
	}
	end := bytes.Index(c.Buffered(), []byte("\r\n\r\n"))
	if end < 0 {
		c.Go(func() { h.blocking(c, nil, false) }) // a request in pieces
		return
	}
	head := append([]byte(nil), c.Buffered()[:end+4]...)
	c.Consume(len(head))
	var up *Upstream
	select {
	case up = <-h.warm:
	default:
		// None warm: dial from the reactor.
		var connected bool
		var err error
		ap := *h.dial.Load()
		up, connected, err = c.DialNow(ap, ap.String())
		if err != nil {
			h.dialErrors.Add(1)
			c.Go(func() { h.blocking(c, nil, true) })
			return
		}
		if !connected {
			h.t.Error("a connect on loopback did not complete at once")
			c.Go(func() {
				up.AwaitConnected(c.Deadline())
				h.blocking(c, up, true)
			})
			return
		}
	}
	if !up.Claim() || !c.SameReactor(up) {
		h.t.Error("warm upstream not claimable on the client's reactor")
		up.Close()
		c.Go(func() {})
		return
	}
	if n, err := up.SendNow(head); err != nil || n != len(head) {
		h.t.Errorf("SendNow: %d of %d, %v", n, len(head), err)
	}
	c.AwaitAnswer(up, func(expired bool) bool {
		if expired {
			h.expired.Add(1)
			c.Go(func() { h.blocking(c, up, true) })
			return false
		}
		n := -1
		for n < 0 {
			switch err := up.TryFill(8 << 10); err {
			case nil:
			case ErrWouldBlock:
				return true
			default:
				c.Go(func() { h.blocking(c, up, true) })
				return false
			}
			n = bytes.Index(up.Buffered(), []byte("\r\n\r\n"))
		}
		// The 101 goes to the client from up's input, uncopied, as the
		// proxy's does.
		answer := up.Buffered()[:n+4]
		if string(answer) != testSwitched {
			c.Go(func() { h.blocking(c, up, true) })
			return false
		}
		up.Consume(len(answer))
		c.Upgrade(up, SessionParams{Head: answer})
		h.upgradedOnReactor.Add(1)
		return false
	})
}

// blocking is the rest on a goroutine: it reads the request unless read and
// answers 502 (the backend, if any, did not say 101 in time).
func (h *reactorHandshaker) blocking(c *ClientConn, up *Upstream, requestRead bool) {
	h.handedOff.Add(1)
	if up != nil {
		up.Close()
	}
	for !requestRead && bytes.Index(c.Buffered(), []byte("\r\n\r\n")) < 0 {
		if err := c.Fill(8 << 10); err != nil {
			return
		}
	}
	c.Write([]byte(badGateway))
}

// answeringBackend listens on loopback and answers each request as answer
// says: "101" (then plays the backend's end of a session, delivered on
// conns), "close" (hangs up without a word), "cut" (half a head and a
// FIN) or "silent".
func answeringBackend(t *testing.T, answer func() string) (addr string, conns chan *os.File) {
	bln := listenTCP(t, "tcp4", "127.0.0.1:0")
	conns = make(chan *os.File, 64)
	go func() {
		for {
			c, err := bln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						c.Close()
						return
					}
					if line != "\r\n" {
						continue
					}
					switch answer() {
					case "101":
						c.Write([]byte(testSwitched))
						f, _ := c.(*net.TCPConn).File()
						c.Close()
						conns <- f
					case "close":
						c.Close()
					case "cut": // a head cut short: its piece and the FIN in one edge
						c.Write([]byte("HTTP/1.1 101 Swi"))
						c.(*net.TCPConn).CloseWrite()
						t.Cleanup(func() { c.Close() })
					default: // silent until the test ends
						t.Cleanup(func() { c.Close() })
					}
					return
				}
			}()
		}
	}()
	return bln.Addr().String(), conns
}

// reactorListening starts a one-reactor loop whose listener is served by a
// reactorHandshaker with warm upstreams to a backend answering as answer
// says.
func reactorListening(t *testing.T, cfg Config, warm int, answer func() string) (*Loop, *Listener, *reactorHandshaker, chan *os.File) {
	t.Helper()
	cfg.Reactors = 1
	l, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	addr, conns := answeringBackend(t, answer)
	h := &reactorHandshaker{t: t, l: l, warm: make(chan *Upstream, warm)}
	ap := netip.MustParseAddrPort(addr)
	h.dial.Store(&ap)
	for range warm {
		up, err := l.Dial(context.Background(), addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(up.Close) // a no-op for one that a session took
		h.warm <- up
	}
	ln, err := l.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.stopAccepting)
	return l, ln, h, conns
}

// The whole upgrade runs on the reactor — request, warm upstream, answer,
// session — with no goroutine, and the session relays both ways, the frame
// sent in the request's segment first.
func TestAwaitAnswerUpgradesOnReactor(t *testing.T) {
	t.Run("warm", func(t *testing.T) { testUpgradesOnReactor(t, true) })
	t.Run("dialed", func(t *testing.T) { testUpgradesOnReactor(t, false) })
}

func testUpgradesOnReactor(t *testing.T, warm bool) {
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	t.Cleanup(func() {
		checkNoFDLeak(t, fds)
		checkNoGoroutineLeak(t, goroutines)
	})
	const clients = 8
	nwarm := 0
	if warm {
		nwarm = clients
	}
	l, ln, h, conns := reactorListening(t, Config{}, nwarm, func() string { return "101" })
	for i := range clients {
		upgradeAndRelay(t, ln, conns, i)
	}
	if got := h.upgradedOnReactor.Load(); got != clients {
		t.Errorf("%d of %d upgrades done on the reactor (%d handed off)", got, clients, h.handedOff.Load())
	}
	waitSessions(t, l, 0)
}

// Whatever the reactor cannot finish goes on on a goroutine, and each ends
// with the client answered and nothing left open: a request in two
// pieces, a backend that hangs up without answering, and one that says
// nothing until the handshake deadline (which the reactor's tick keeps).
func TestAwaitAnswerHandsOff(t *testing.T) {
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	t.Cleanup(func() {
		checkNoFDLeak(t, fds)
		checkNoGoroutineLeak(t, goroutines)
	})
	var mode atomic.Value
	mode.Store("close")
	const timeout = 600 * time.Millisecond
	_, ln, h, _ := reactorListening(t, Config{HandshakeTimeout: timeout}, 3, func() string { return mode.Load().(string) })

	ask := func(t *testing.T, parts ...string) (string, time.Duration) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		for i, p := range parts {
			if i > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := c.Write([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		return string(got), time.Since(start)
	}

	t.Run("request in pieces", func(t *testing.T) {
		got, _ := ask(t, testRequest[:10], testRequest[10:])
		if got != badGateway || h.handedOff.Load() != 1 {
			t.Fatalf("got %q, %d handed off; want the goroutine's 502", got, h.handedOff.Load())
		}
	})
	// handedOffAtOnce asks with the whole request and wants the
	// goroutine's 502, handed off as the handOffs-th, well before the
	// deadline: the backend's FIN was seen when it came (missed stands
	// for what was missed otherwise).
	handedOffAtOnce := func(t *testing.T, handOffs int64, missed string) {
		t.Helper()
		got, took := ask(t, testRequest)
		if got != badGateway || h.handedOff.Load() != handOffs || h.expired.Load() != 0 {
			t.Fatalf("got %q, %d handed off, %d expired", got, h.handedOff.Load(), h.expired.Load())
		}
		if took > timeout/2 {
			t.Errorf("answered after %v: %s", took, missed)
		}
	}
	t.Run("backend hangs up", func(t *testing.T) {
		handedOffAtOnce(t, 2, "the hang-up was not seen at once")
	})
	t.Run("backend cuts its answer short", func(t *testing.T) {
		mode.Store("cut")
		handedOffAtOnce(t, 3, "the FIN behind the piece was not seen")
	})
	t.Run("backend silent", func(t *testing.T) {
		mode.Store("silent")
		got, took := ask(t, testRequest)
		if got != badGateway || h.expired.Load() != 1 {
			t.Fatalf("got %q, %d expired", got, h.expired.Load())
		}
		// The tick runs every 250 ms.
		if took < timeout || took > timeout+time.Second {
			t.Errorf("answered after %v, want the deadline %v (plus a tick)", took, timeout)
		}
	})
}

// A reactor that stops while a handshake awaits its answer closes both
// sockets: the client sees the end of the stream.
func TestAwaitAnswerClosedAtStop(t *testing.T) {
	fds := openFDs(t)
	t.Cleanup(func() { checkNoFDLeak(t, fds) })
	l, ln, h, _ := reactorListening(t, Config{}, 1, func() string { return "silent" })
	c := requestingClient(t, ln)
	deadline := time.Now().Add(2 * time.Second)
	for h.onReactor.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the request on its way to the backend
	ln.stopAccepting()
	l.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 0 {
		t.Fatalf("client read %q, %v; want the end of the stream", got, err)
	}
	if n := h.handedOff.Load(); n != 0 {
		t.Errorf("%d handed off", n)
	}
}

// A dial from the reactor to a port nobody listens on fails at once on
// loopback, and the handshake goes on on a goroutine, which answers.
func TestAwaitAnswerDialRefused(t *testing.T) {
	fds := openFDs(t)
	t.Cleanup(func() { checkNoFDLeak(t, fds) })
	_, ln, h, _ := reactorListening(t, Config{}, 0, func() string { return "101" })
	dead := listenTCP(t, "tcp4", "127.0.0.1:0")
	ap := netip.MustParseAddrPort(dead.Addr().String())
	h.dial.Store(&ap)
	dead.Close()
	c := requestingClient(t, ln)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != badGateway {
		t.Fatalf("got %q, %v; want the 502", got, err)
	}
	if h.dialErrors.Load() != 1 || h.handedOff.Load() != 1 {
		t.Fatalf("%d dial errors, %d handed off; want 1 and 1", h.dialErrors.Load(), h.handedOff.Load())
	}
}

// requestingClient connects to ln and sends the upgrade request; the
// connection closes when the test ends.
func requestingClient(t *testing.T, ln *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(testRequest)); err != nil {
		t.Fatal(err)
	}
	return c
}
