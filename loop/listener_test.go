package loop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// testHandshaker plays the proxy for the listener tests: it reads the
// request head and either refuses it (path /refuse) or passes it to the
// backend at backend and upgrades on its answer.
type testHandshaker struct {
	t       *testing.T
	l       *Loop
	backend string
	calls   atomic.Int64
	// sameReactor, movedReactor count upgrades whose client was accepted
	// on the upstream's reactor, and on another one.
	sameReactor, movedReactor atomic.Int64
	noDelay                   atomic.Int64 // clients whose socket had TCP_NODELAY on
	seen                      chan string  // if set, gets each client's address
}

const refusal = "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"

func (h *testHandshaker) ServeHandshake(c *ClientConn) {
	h.calls.Add(1)
	if h.seen != nil {
		h.seen <- c.RemoteAddrPort().String()
	}
	if v, err := unix.GetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err == nil && v != 0 {
		h.noDelay.Add(1)
	}
	var end int
	for {
		if end = bytes.Index(c.Buffered(), []byte("\r\n\r\n")); end >= 0 {
			end += 4
			break
		}
		if err := c.Fill(8 << 10); err != nil {
			return
		}
	}
	head := append([]byte(nil), c.Buffered()[:end]...)
	c.Consume(end)
	if bytes.Contains(head, []byte(" /refuse ")) {
		if bytes.Contains(head, []byte("Late: ")) {
			// Input that arrives after the handshake's last read stays
			// in the kernel when it answers.
			time.Sleep(20 * time.Millisecond)
		}
		c.Write([]byte(refusal))
		return
	}
	up, err := h.l.Dial(context.Background(), h.backend, time.Second)
	if err != nil || !up.Claim() {
		h.t.Errorf("dial backend: %v", err)
		return
	}
	if err := up.Send(head, c.Deadline()); err != nil {
		h.t.Errorf("send: %v", err)
		up.Close()
		return
	}
	for bytes.Index(up.Buffered(), []byte("\r\n\r\n")) < 0 {
		if err := up.Fill(c.Deadline(), 8<<10); err != nil {
			h.t.Errorf("backend answer: %v", err)
			up.Close()
			return
		}
	}
	n := bytes.Index(up.Buffered(), []byte("\r\n\r\n")) + 4
	answer := append([]byte(nil), up.Buffered()[:n]...)
	up.Consume(n)
	if c.r == up.r {
		h.sameReactor.Add(1)
	} else {
		h.movedReactor.Add(1)
	}
	c.Upgrade(up, SessionParams{Head: answer})
	// Head is the caller's again once Upgrade returns: a session that
	// starts later (on a goroutine's upgrade, always) writes its own copy.
	for i := range answer {
		answer[i] = 'x'
	}
}

const (
	testRequest  = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	testSwitched = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
)

// listening starts a loop with cfg and a listener on loopback served by a
// testHandshaker, whose backends answer every request with a 101 and
// then play the backend's end of a session; backends delivers their
// connections.
func listening(t *testing.T, cfg Config) (l *Loop, ln *Listener, h *testHandshaker, backends chan *os.File) {
	t.Helper()
	l, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	bln := listenTCP(t, "tcp4", "127.0.0.1:0")
	backends = make(chan *os.File, 64)
	go func() {
		for {
			c, err := bln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					c.Close()
					break
				}
				if line == "\r\n" {
					c.Write([]byte(testSwitched))
					f, _ := c.(*net.TCPConn).File()
					c.Close()
					backends <- f
					break
				}
			}
		}
	}()
	h = &testHandshaker{t: t, l: l, backend: bln.Addr().String()}
	ln, err = l.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.stopAccepting)
	return l, ln, h, backends
}

// upgradeClient connects to ln, sends the request with first, a frame,
// right behind it in the same write, and reads the 101.
func upgradeClient(t *testing.T, ln *Listener, first []byte) (*os.File, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.(*net.TCPConn).File()
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	f.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := f.Write(append([]byte(testRequest), first...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(f)
	var head strings.Builder
	for !strings.HasSuffix(head.String(), "\r\n\r\n") {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the 101: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
	}
	if head.String() != testSwitched {
		t.Fatalf("client got %q, want the backend's 101", head.String())
	}
	return f, br
}

// The listener accepts on the reactors, a handshake upgrades, and the
// session relays both ways, including the frame the client sent in the
// same segment as its request. With two reactors the client's socket
// moves to the upstream's reactor for half the sessions; both kinds must
// relay.
func TestListenerUpgradesAndRelays(t *testing.T) {
	for _, reactors := range []int{1, 2} {
		t.Run(map[int]string{1: "one reactor", 2: "two reactors"}[reactors], func(t *testing.T) {
			fds, goroutines := openFDs(t), runtime.NumGoroutine()
			// Cleanups run last first: these after the loop's and the
			// backends' own.
			t.Cleanup(func() {
				checkNoFDLeak(t, fds)
				checkNoGoroutineLeak(t, goroutines)
			})
			l, ln, h, backends := listening(t, Config{Reactors: reactors})
			// Which reactor accepts is the kernel's choice, and dials take
			// turns; the two can keep in step. With two reactors, go on,
			// a dial's turn skipped each time, until both kinds came up.
			clients := 8
			for i := 0; i < clients; i++ {
				upgradeAndRelay(t, ln, backends, i)
				if reactors > 1 && i == clients-1 && clients < 16 && (h.sameReactor.Load() == 0 || h.movedReactor.Load() == 0) {
					l.pickReactor()
					clients++
				}
			}
			if reactors > 1 && (h.sameReactor.Load() == 0 || h.movedReactor.Load() == 0) {
				t.Errorf("%d upgrades on the accepting reactor, %d moved: the test did not cover both", h.sameReactor.Load(), h.movedReactor.Load())
			}
			if n := h.noDelay.Load(); n != int64(clients) {
				t.Errorf("%d of %d accepted clients had TCP_NODELAY", n, clients)
			}
			waitSessions(t, l, 0)
		})
	}
}

// upgradeAndRelay upgrades client i through ln, checks that its session
// relays both ways (its first frame sent in the request's segment), and
// closes both ends; backends delivers the backends' ends.
func upgradeAndRelay(t *testing.T, ln *Listener, backends chan *os.File, i int) {
	t.Helper()
	first := []byte{'f', byte(i)}
	client, br := upgradeClient(t, ln, maskedFrame(ws.OpBinary, true, first))
	backend := <-backends
	defer client.Close()
	defer backend.Close()
	f, err := ws.ReadFrame(backend)
	if err != nil {
		t.Fatalf("client %d: backend read: %v", i, err)
	}
	ws.Cipher(f.Payload, f.Header.Mask, 0)
	if !bytes.Equal(f.Payload, first) {
		t.Fatalf("client %d: first frame %q, want %q", i, f.Payload, first)
	}
	payload := []byte{'b', byte(i)}
	ws.WriteFrame(backend, ws.NewBinaryFrame(payload))
	if f, err := ws.ReadFrame(br); err != nil || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("client %d: got %q, %v; want %q", i, f.Payload, err, payload)
	}
}

// A refused client gets the whole answer and then an orderly end of
// stream, although it sent bytes behind its request that nobody read: a
// close with unread input would send a reset, which can destroy the answer
// before the client reads it.
func TestListenerRefusalEndsWithFin(t *testing.T) {
	_, ln, h, _ := listening(t, Config{Reactors: 1})
	for i := range 20 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /refuse HTTP/1.1\r\nHost: x\r\nLate: yes\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // read by the handshake
		if _, err := c.Write([]byte(strings.Repeat("unread", 200))); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("client %d: %v after %q", i, err, got)
		}
		if string(got) != refusal {
			t.Fatalf("client %d got %q, want %q", i, got, refusal)
		}
	}
	if h.calls.Load() != 20 {
		t.Fatalf("%d handshakes, want 20", h.calls.Load())
	}
}

// A client that connects and says nothing costs no handshake: the reactor
// closes it at the handshake deadline (at its next tick). One that hangs up
// at once is closed at once. Neither reaches the Handshaker.
func TestListenerSilentClients(t *testing.T) {
	fds := openFDs(t)
	t.Cleanup(func() { checkNoFDLeak(t, fds) })
	const timeout = 300 * time.Millisecond
	l, ln, h, _ := listening(t, Config{Reactors: 1, HandshakeTimeout: timeout})
	quitter, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	quitter.Close()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	silent.SetReadDeadline(start.Add(5 * time.Second))
	n, err := silent.Read(make([]byte, 1))
	waited := time.Since(start)
	if n != 0 || err != io.EOF {
		t.Fatalf("silent client: read %d, %v; want the end of stream", n, err)
	}
	if waited < timeout-50*time.Millisecond {
		t.Fatalf("silent client closed after %v, before the handshake timeout %v", waited, timeout)
	}
	if h.calls.Load() != 0 {
		t.Fatalf("%d handshakes for clients that sent nothing", h.calls.Load())
	}
	silent.Close()
	ln.stopAccepting()
	l.Close()
}

// Once the listener stops accepting, new connections are refused while a
// handshake in progress completes.
func TestListenerStopAccepting(t *testing.T) {
	_, ln, _, backends := listening(t, Config{Reactors: 1})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(testRequest[:10])) // the handshake is under way
	time.Sleep(20 * time.Millisecond)
	ln.stopAccepting()
	if c2, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c2.Close()
		t.Fatal("a connection was accepted after stopAccepting")
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte(testRequest[10:]))
	got := make([]byte, len(testSwitched))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != testSwitched {
		t.Fatalf("handshake under way: got %q, %v", got, err)
	}
	(<-backends).Close()
}

// Listen takes what net.Listen takes: a host name, an empty host (every
// address, IPv6 and IPv4 on one socket), literal addresses; and fails with
// the address in its error otherwise.
func TestListenAddresses(t *testing.T) {
	l := testLoop(t)
	h := &testHandshaker{t: t, l: l}
	dialable := func(addr string, ln *Listener, via string) {
		t.Helper()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		c, err := net.DialTimeout("tcp", net.JoinHostPort(via, port), time.Second)
		if err != nil {
			t.Errorf("listening on %q (%s): dial via %s: %v", addr, ln.Addr(), via, err)
			return
		}
		c.Close()
	}
	v6 := false
	if c, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		v6 = true
		c.Close()
	}
	for _, tc := range []struct {
		addr string
		via  []string
	}{
		{"127.0.0.1:0", []string{"127.0.0.1"}},
		{"localhost:0", []string{"127.0.0.1"}},
		{":0", []string{"127.0.0.1", "::1"}},
		{"0.0.0.0:0", []string{"127.0.0.1"}},
		{"[::1]:0", []string{"::1"}},
	} {
		ln, err := l.Listen(tc.addr, h)
		if err != nil {
			if !v6 && strings.Contains(tc.addr, "::") {
				continue
			}
			t.Errorf("Listen(%q): %v", tc.addr, err)
			continue
		}
		for _, via := range tc.via {
			if via == "::1" && !v6 {
				continue
			}
			dialable(tc.addr, ln, via)
		}
		ln.stopAccepting()
	}
	taken, err := l.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.stopAccepting()
	for _, bad := range []string{taken.Addr().String(), "127.0.0.1:99999", "no-such-host.invalid:80", "127.0.0.1"} {
		if ln, err := l.Listen(bad, h); err == nil {
			ln.stopAccepting()
			t.Errorf("Listen(%q) succeeded", bad)
		} else if !strings.Contains(err.Error(), bad) {
			t.Errorf("Listen(%q): error %q does not name the address", bad, err)
		}
	}
}

// When the process runs out of descriptors, accept fails with EMFILE while
// the connection stays queued: the listener leaves the reactor's set (a
// level-triggered socket would report it again at once, and the reactor
// would spin), says so in the log, and accepts again once descriptors are
// free.
func TestListenerPausesWithoutDescriptors(t *testing.T) {
	var paused atomic.Int64
	log := slog.New(recordHandler(func(r slog.Record) {
		if r.Message == "accept paused" {
			paused.Add(1)
		}
	}))
	l, err := New(Config{Reactors: 1}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := &testHandshaker{t: t, l: l, seen: make(chan string, 8)}
	ln, err := l.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.stopAccepting()
	listenTCP(t, "tcp4", "127.0.0.1:0") // the runtime's poller exists from here on
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(openFDs(t) + 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	// An os.File an earlier test dropped would free its descriptor when a
	// finalizer closes it, in the middle of this test: collect them first.
	runtime.GC()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	// Take every free descriptor but one, which the client's socket takes.
	var filler []int
	defer func() {
		for _, fd := range filler {
			unix.Close(fd)
		}
	}()
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		filler = append(filler, fd)
	}
	unix.Close(filler[len(filler)-1])
	filler = filler[:len(filler)-1]
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with one descriptor free: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("GET /refuse HTTP/1.1\r\n\r\n"))

	var cpuBefore unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &cpuBefore)
	wallBefore := time.Now()
	for paused.Load() == 0 && time.Since(wallBefore) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if paused.Load() == 0 {
		t.Fatal("accept out of descriptors was never logged")
	}
	time.Sleep(600 * time.Millisecond) // a few ticks out of descriptors
	var cpuAfter unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &cpuAfter)
	used := time.Duration(cpuAfter.Utime.Nano() + cpuAfter.Stime.Nano() - cpuBefore.Utime.Nano() - cpuBefore.Stime.Nano())
	if wall := time.Since(wallBefore); used > wall/2 {
		t.Errorf("the process used %v of CPU in %v out of descriptors: the reactor spins on the listener", used, wall)
	}
	if h.calls.Load() != 0 {
		t.Fatalf("a handshake ran without a descriptor for its client: %s (the client is %s)", <-h.seen, c.LocalAddr())
	}
	for _, fd := range filler {
		unix.Close(fd)
	}
	filler = nil
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != refusal {
		t.Fatalf("after descriptors were freed: got %q, %v; want the refusal", got, err)
	}
}

// recordHandler passes every record to a function.
type recordHandler func(slog.Record)

func (h recordHandler) Enabled(context.Context, slog.Level) bool      { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error { h(r); return nil }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h recordHandler) WithGroup(string) slog.Handler                 { return h }

func waitSessions(t *testing.T, l *Loop, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); l.Sessions() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, want %d", l.Sessions(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkNoGoroutineLeak waits for the goroutines to fall back to before.
func checkNoGoroutineLeak(t *testing.T, before int) {
	t.Helper()
	var n int
	for deadline := time.Now().Add(3 * time.Second); ; {
		if n = runtime.NumGoroutine(); n <= before || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A reactor accepts one connection per readiness of the listening socket,
// which, level-triggered, reports the rest at the next wait. Connections
// that queue up while the reactor is busy must all be taken at once, in
// both wait modes. A reactor parked in Go's poller is woken by new
// readiness only: had it parked with silent clients still queued (a client
// that has sent something wakes it as it joins the set), it would take one
// per tick (tickEvery), a quarter of a second each.
func TestListenerAcceptsAQueue(t *testing.T) { eachWait(t, testListenerAcceptsAQueue) }

func testListenerAcceptsAQueue(t *testing.T, wait waitMode) {
	fds := openFDs(t)
	t.Cleanup(func() { checkNoFDLeak(t, fds) })
	l, ln, _, _ := listening(t, Config{Reactors: 1, wait: wait})
	const clients = 12
	busy := make(chan struct{})
	l.reactors[0].post(func() { <-busy })
	for range clients {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if n := acceptQueue(t, ln); n < clients-1 {
		t.Fatalf("%d connections queued while the reactor was busy, want %d", n, clients)
	}
	start := time.Now()
	close(busy)
	// Taken at one per tick, the queue would need clients ticks; taken at
	// once, a fraction of one, however loaded the machine.
	limit := time.Duration(clients * tickEvery / 4)
	for n := acceptQueue(t, ln); n > 0; n = acceptQueue(t, ln) {
		if waited := time.Since(start); waited > limit {
			t.Fatalf("%d of %d queued connections still not accepted after %v: the reactor waits with connections pending", n, clients, waited)
		}
		time.Sleep(time.Millisecond)
	}
	ln.stopAccepting()
	l.Close()
}

// acceptQueue is how many connections wait in ln's accept queue: the
// receive queue that /proc/net/tcp shows for a listening socket.
func acceptQueue(t *testing.T, ln *Listener) int {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf(":%04X", ln.Addr().(*net.TCPAddr).Port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		// local_address rem_address st tx_queue:rx_queue; 0A is LISTEN.
		if len(f) > 4 && strings.HasSuffix(f[1], local) && f[3] == "0A" {
			var tx, rx int
			if _, err := fmt.Sscanf(f[4], "%x:%x", &tx, &rx); err != nil {
				t.Fatalf("/proc/net/tcp queue %q: %v", f[4], err)
			}
			return rx
		}
	}
	t.Fatalf("listener %s not in /proc/net/tcp", ln.Addr())
	return 0
}
