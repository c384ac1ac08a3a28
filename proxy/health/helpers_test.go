package health

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

// backend is a real HTTP + WebSocket server on loopback that a test can
// kill (listener closed, every connection dropped) and restart on the same
// port.
type backend struct {
	t    *testing.T
	addr string

	mu    sync.Mutex
	srv   *http.Server
	conns map[net.Conn]struct{} // hijacked WebSocket connections
	dead  chan struct{}         // closed by kill; releases the mute handler

	// closeCodes receives the close code each /ws session ended with, so
	// a test can see that checks close politely.
	closeCodes chan int
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{t: t, addr: "127.0.0.1:0", closeCodes: make(chan int, 64)}
	b.start()
	t.Cleanup(b.kill)
	return b
}

func (b *backend) start() {
	b.t.Helper()
	var ln net.Listener
	var err error
	// Rebinding a just-closed port can race the kernel briefly; bounded.
	for deadline := time.Now().Add(2 * time.Second); ; {
		ln, err = net.Listen("tcp", b.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("listen %s: %v", b.addr, err)
	}
	b.mu.Lock()
	b.addr = ln.Addr().String()
	b.conns = make(map[net.Conn]struct{})
	b.dead = make(chan struct{})
	b.srv = &http.Server{Handler: b.mux(b.dead), ReadHeaderTimeout: 5 * time.Second}
	srv := b.srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (b *backend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return
	}
	_ = b.srv.Close()
	for c := range b.conns {
		_ = c.Close()
	}
	close(b.dead)
	b.srv = nil
}

func (b *backend) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *backend) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	_ = c.Close()
}

func (b *backend) mux(dead <-chan struct{}) http.Handler {
	up := websocket.Upgrader{}
	upgrade := func(w http.ResponseWriter, r *http.Request) *websocket.Conn {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return nil
		}
		if !b.track(c.NetConn()) {
			_ = c.Close()
			return nil
		}
		return c
	}
	// readLoop is where gorilla answers Ping with Pong and Close with Close.
	readLoop := func(c *websocket.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, _, err := c.ReadMessage()
			if err == nil {
				continue
			}
			code := -1
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			select {
			case b.closeCodes <- code:
			default:
			}
			return
		}
	}
	m := http.NewServeMux()
	m.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	m.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	m.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		// An endless 200 body: the check must not wait for its end.
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 32<<10)
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})
	m.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if c := upgrade(w, r); c != nil {
			defer b.untrack(c.NetConn())
			readLoop(c)
		}
	})
	m.HandleFunc("/ws-chatty", func(w http.ResponseWriter, r *http.Request) {
		if c := upgrade(w, r); c != nil {
			defer b.untrack(c.NetConn())
			for range 5 {
				_ = c.WriteMessage(websocket.TextMessage, []byte("welcome"))
			}
			_ = c.WriteMessage(websocket.BinaryMessage, make([]byte, 4096))
			readLoop(c)
		}
	})
	m.HandleFunc("/ws-mute", func(w http.ResponseWriter, r *http.Request) {
		// Upgrades, then never reads, so gorilla never answers the Ping.
		if c := upgrade(w, r); c != nil {
			defer b.untrack(c.NetConn())
			select {
			case <-dead:
			case <-time.After(10 * time.Second):
			}
		}
	})
	return m
}

// rawServer accepts TCP connections and runs serve on each; it closes the
// listener and every connection at cleanup.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if serve != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					serve(c)
				}()
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// silentServer accepts TCP and never writes a byte.
func silentServer(t *testing.T) string { return rawServer(t, nil) }

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	return reservedClosedAddr(t, [4]byte{127, 0, 0, 1})
}

// reservedClosedAddr returns an address whose port stays bound, without
// SO_REUSEADDR and never listening, for the life of the test: connects to
// it are refused, and no other listener or outgoing connection on the
// machine can take the port meanwhile. Listening and closing to find a
// "free" port lets a parallel test reuse it, which once turned a closed
// port into somebody else's HTTP server.
func reservedClosedAddr(t *testing.T, ip [4]byte) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: ip}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	in := sa.(*syscall.SockaddrInet4)
	return net.JoinHostPort(net.IP(in.Addr[:]).String(), strconv.Itoa(in.Port))
}

// fakeUpgradeServer answers any request with the given raw response head
// and then holds the connection open.
func fakeUpgradeServer(t *testing.T, head string) string {
	return rawServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, head)
		_, _ = io.Copy(io.Discard, c) // until the client or cleanup closes
	})
}

type event struct {
	at      time.Time
	target  string
	state   bool // StateChanged rather than Checked
	ok      bool // Checked: success; StateChanged: healthy
	latency time.Duration
	err     error
	reason  string
}

// recorder is a Delegate that keeps every call in order.
type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) StateChanged(target string, healthy bool, reason string) {
	r.mu.Lock()
	r.events = append(r.events, event{at: time.Now(), target: target, state: true, ok: healthy, reason: reason})
	r.mu.Unlock()
}

func (r *recorder) Checked(target string, ok bool, latency time.Duration, err error) {
	r.mu.Lock()
	r.events = append(r.events, event{at: time.Now(), target: target, ok: ok, latency: latency, err: err})
	r.mu.Unlock()
}

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawWSServer upgrades each connection with gobwas/ws and hands the
// connection to serve, for backends that misbehave in ways real servers
// libraries will not.
func rawWSServer(t *testing.T, serve func(net.Conn)) string {
	return rawServer(t, func(c net.Conn) {
		if _, err := ws.Upgrade(c); err != nil {
			return
		}
		serve(c)
	})
}

// pongServer answers Pings and ignores everything else, Close included.
func pongServer(t *testing.T) string {
	return rawWSServer(t, func(c net.Conn) {
		for {
			f, err := ws.ReadFrame(c)
			if err != nil {
				return
			}
			if f.Header.OpCode == ws.OpPing {
				f = ws.UnmaskFrameInPlace(f)
				if ws.WriteFrame(c, ws.NewPongFrame(f.Payload)) != nil {
					return
				}
			}
		}
	})
}
